namespace ClinicalFed.Federation;

/// <summary>Model kinds a round can train (<c>model.kind</c> of a round manifest, <c>kind</c> of a model header).</summary>
public static class ModelKinds
{
    /// <summary>Logistic regression: a float32 parameter vector (weights then bias).</summary>
    public const string Logistic = "logistic";

    /// <summary>Gradient-boosted trees: <c>tree-ensemble</c> updates and models (a ClinicalFed tree ensemble, CFTE), or
    /// an opaque LightGBM text model; <c>dimension</c> is the number of features the trees read.</summary>
    public const string Trees = "trees";

    public static IReadOnlyList<string> All { get; } = [Logistic, Trees];
}

/// <summary>What an update's payload holds (<c>parameter_kind</c>).</summary>
public static class ParameterKinds
{
    /// <summary>The site's locally trained parameters.</summary>
    public const string Full = "full";

    /// <summary>The site's parameters minus the round's global model (the zero vector in a round without one).</summary>
    public const string Delta = "delta";

    public static IReadOnlyList<string> All { get; } = [Full, Delta];
}

/// <summary>How a model file's payload is encoded (<c>payload_encoding</c> of a model header).</summary>
public static class PayloadEncodings
{
    /// <summary><c>dimension</c> IEEE 754 float32 values, little-endian.</summary>
    public const string Float32LittleEndian = "float32-le";

    /// <summary>A LightGBM text model (UTF-8), opaque to ClinicalFed; tree models only.</summary>
    public const string LightGbmText = "lightgbm-text";

    /// <summary>
    /// A ClinicalFed tree ensemble in its binary form (<c>CFTE</c>, <see cref="ClinicalFed.Trees.TreeEnsembleModel.ToBytes"/>),
    /// reading <c>dimension</c> features; tree models only. Readers parse it, so a damaged ensemble is an error.
    /// </summary>
    public const string TreeEnsemble = "tree-ensemble";

    public static IReadOnlyList<string> All { get; } = [Float32LittleEndian, LightGbmText, TreeEnsemble];
}

/// <summary>
/// How an update's payload is encoded (<c>payload_encoding</c> of an update header). Absent in every update written
/// before tree ensembles travelled through the store, and still left out for float32 payloads, which therefore stay
/// byte for byte what earlier writers wrote and earlier readers read.
/// </summary>
public static class UpdatePayloadEncodings
{
    /// <summary>The default: <c>dimension</c> IEEE 754 float32 values, little-endian.</summary>
    public const string Float32 = "float32";

    /// <summary>
    /// A ClinicalFed tree ensemble (<c>CFTE</c>, <see cref="ClinicalFed.Trees.TreeEnsembleModel.ToBytes"/>) of
    /// <c>payload_bytes</c> bytes, reading <c>dimension</c> features.
    /// </summary>
    public const string TreeEnsemble = PayloadEncodings.TreeEnsemble;

    /// <summary>A delta quantized to 8 bits with stochastic rounding (<see cref="ClinicalFed.Compression.UpdateCodec"/>).</summary>
    public const string Int8 = "int8";

    /// <summary>A delta quantized to 4 bits with stochastic rounding, two values per byte.</summary>
    public const string Int4 = "int4";

    /// <summary>A sparse delta: the k largest-magnitude coordinates, indices then values.</summary>
    public const string TopK = "topk";

    public static IReadOnlyList<string> All { get; } = [Float32, TreeEnsemble, Int8, Int4, TopK];

    /// <summary>The compressed delta encodings.</summary>
    public static IReadOnlyList<string> Compressed { get; } = [Int8, Int4, TopK];

    public static bool IsCompressed(string? encoding) => encoding is Int8 or Int4 or TopK;
}

/// <summary>Outcome of a round (<c>status</c> of a round result).</summary>
public static class RoundStatuses
{
    /// <summary>Quorum met; the new global model was written.</summary>
    public const string Aggregated = "aggregated";

    /// <summary>Fewer accepted updates than the quorum when the round closed; no global model for this round.</summary>
    public const string QuorumNotMet = "quorum_not_met";

    public static IReadOnlyList<string> All { get; } = [Aggregated, QuorumNotMet];
}

/// <summary>Shared limits of the wire formats.</summary>
public static class WireLimits
{
    /// <summary>Largest parameter count accepted (1 GiB of float32).</summary>
    public const int MaxDimension = 1 << 28;

    /// <summary>Largest JSON header of an update, model or server-state file.</summary>
    public const int MaxHeaderBytes = 1 << 20;

    /// <summary>Largest opaque payload: a LightGBM text model, or a tree ensemble in a model or update file.</summary>
    public const long MaxOpaquePayloadBytes = 1L << 30;
}
