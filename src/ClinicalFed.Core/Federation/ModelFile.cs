using System.Text.Json.Serialization;
using ClinicalFed.Trees;

namespace ClinicalFed.Federation;

/// <summary>
/// The JSON header of a model file (schemas/model.schema.json): a round's global model (<c>site</c> null) or one
/// site's personalized model, with what produced it.
/// </summary>
public sealed record ModelHeader
{
    public const int CurrentFormatVersion = 1;

    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = CurrentFormatVersion;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    /// <summary>The round that produced the model.</summary>
    [JsonPropertyName("round")] public required int Round { get; init; }

    /// <summary>Null for a global model; the site a personalized model belongs to.</summary>
    [JsonPropertyName("site")]
    [JsonRequired]
    public string? Site { get; init; }

    /// <summary><see cref="ModelKinds.Logistic"/> or <see cref="ModelKinds.Trees"/>.</summary>
    [JsonPropertyName("kind")] public required string Kind { get; init; }

    /// <summary>float32-le: the number of parameters. lightgbm-text, tree-ensemble: the number of input features.</summary>
    [JsonPropertyName("dimension")] public required int Dimension { get; init; }

    [JsonPropertyName("feature_spec_id")] public required string FeatureSpecId { get; init; }

    [JsonPropertyName("feature_spec_version")] public required string FeatureSpecVersion { get; init; }

    /// <summary>The strategy (or personalization method) that produced the model.</summary>
    [JsonPropertyName("strategy")] public required string Strategy { get; init; }

    /// <summary>Sites whose updates contributed, sorted.</summary>
    [JsonPropertyName("sites")] public required IReadOnlyList<string> Sites { get; init; }

    /// <summary>Training examples behind the contributing updates.</summary>
    [JsonPropertyName("example_count")] public required long ExampleCount { get; init; }

    [JsonPropertyName("metrics")] public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    [JsonPropertyName("created_at")] public required DateTimeOffset CreatedAt { get; init; }

    /// <summary><see cref="PayloadEncodings.Float32LittleEndian"/> (default), <see cref="PayloadEncodings.LightGbmText"/> or <see cref="PayloadEncodings.TreeEnsemble"/>.</summary>
    [JsonPropertyName("payload_encoding")] public string PayloadEncoding { get; init; } = PayloadEncodings.Float32LittleEndian;

    /// <summary>Payload length in bytes (4 × dimension for float32-le); filled in by <see cref="ModelFile"/>.</summary>
    [JsonPropertyName("payload_bytes")] public long PayloadBytes { get; init; }

    /// <summary>Lower-case hex SHA-256 of the payload; filled in by <see cref="ModelFile"/>.</summary>
    [JsonPropertyName("payload_sha256")] public string PayloadSha256 { get; init; } = "";

    /// <summary>True for a global model (no site).</summary>
    [JsonIgnore] public bool IsGlobal => Site is null;

    /// <summary>Every problem with the header (empty when valid), each naming its field.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (FormatVersion != CurrentFormatVersion)
            p.Add($"'format_version' is {FormatVersion}; this reader supports {CurrentFormatVersion}");
        Add(p, FederationNames.Problem(Federation, "'federation'"));
        Add(p, FederationNames.RoundProblem(Round, "'round'"));
        if (Site is not null) Add(p, FederationNames.Problem(Site, "'site'"));
        if (!ModelKinds.All.Contains(Kind)) p.Add($"'kind' is '{Kind}'; expected one of {string.Join(", ", ModelKinds.All)}");
        if (Dimension is < 1 or > WireLimits.MaxDimension) p.Add($"'dimension' is {Dimension}; expected 1 to {WireLimits.MaxDimension}");
        if (string.IsNullOrWhiteSpace(FeatureSpecId)) p.Add("'feature_spec_id' is missing or empty");
        if (string.IsNullOrWhiteSpace(FeatureSpecVersion)) p.Add("'feature_spec_version' is missing or empty");
        if (string.IsNullOrWhiteSpace(Strategy)) p.Add("'strategy' is missing or empty");
        if (Sites is null) p.Add("'sites' is missing");
        else
        {
            for (int i = 0; i < Sites.Count; i++) Add(p, FederationNames.Problem(Sites[i], $"'sites[{i}]'"));
            if (Sites.Distinct(StringComparer.Ordinal).Count() != Sites.Count) p.Add("'sites' lists a site more than once");
        }

        if (ExampleCount < 0) p.Add($"'example_count' is {ExampleCount}; it may not be negative");
        FederationJson.CheckMetrics(Metrics, "metrics", p);
        if (PayloadEncoding == PayloadEncodings.Float32LittleEndian)
        {
            if (PayloadBytes != 4L * Dimension)
                p.Add($"'payload_bytes' is {PayloadBytes}; a float32-le payload of 'dimension' {Dimension} has {4L * Dimension}");
        }
        else if (PayloadEncoding is PayloadEncodings.LightGbmText or PayloadEncodings.TreeEnsemble)
        {
            if (Kind != ModelKinds.Trees) p.Add($"'payload_encoding' {PayloadEncoding} is only allowed for 'kind' trees, not '{Kind}'");
            if (PayloadBytes is < 1 or > WireLimits.MaxOpaquePayloadBytes)
                p.Add($"'payload_bytes' is {PayloadBytes}; expected 1 to {WireLimits.MaxOpaquePayloadBytes}");
        }
        else
        {
            p.Add($"'payload_encoding' is '{PayloadEncoding}'; expected one of {string.Join(", ", PayloadEncodings.All)}");
        }

        if (!FederationJson.IsSha256Hex(PayloadSha256)) p.Add($"'payload_sha256' is '{PayloadSha256}'; expected 64 lower-case hex digits");
        return p;
    }

    private static void Add(List<string> problems, string? problem)
    {
        if (problem is not null) problems.Add(problem);
    }
}

/// <summary>
/// A global or personalized model in memory, and its file format (<c>.cfm</c>): magic <c>"CFMD\n"</c>, the header
/// length as int32 little-endian, the UTF-8 JSON <see cref="ModelHeader"/>, then <c>payload_bytes</c> bytes of
/// payload — float32 little-endian parameters, or for tree models a ClinicalFed tree ensemble (<c>tree-ensemble</c>,
/// what the round aggregator writes; parsed and checked on every read) or an opaque LightGBM text model. Instances are
/// always consistent: the factories fill in <c>payload_encoding</c>, <c>payload_bytes</c> and <c>payload_sha256</c>.
/// </summary>
public sealed class ModelFile
{
    public const string Extension = ".cfm";

    private readonly float[] _parameters;
    private readonly byte[] _opaque;
    private readonly TreeEnsembleModel? _ensemble;

    private ModelFile(ModelHeader header, float[] parameters, byte[] opaque, TreeEnsembleModel? ensemble = null)
    {
        Header = header;
        _parameters = parameters;
        _opaque = opaque;
        _ensemble = ensemble;
    }

    /// <summary>The 5 magic bytes, <c>"CFMD\n"</c>.</summary>
    public static ReadOnlySpan<byte> Magic => "CFMD\n"u8;

    public ModelHeader Header { get; }

    /// <summary>The float32 parameters; empty for an opaque payload.</summary>
    public ReadOnlySpan<float> Parameters => _parameters;

    /// <summary>The payload bytes of a tree model (LightGBM text, or the tree ensemble's binary form); empty for float32 parameters.</summary>
    public ReadOnlySpan<byte> OpaquePayload => _opaque;

    /// <summary>True when the payload is float32 parameters.</summary>
    public bool HasParameters => Header.PayloadEncoding == PayloadEncodings.Float32LittleEndian;

    /// <summary>True when the payload is a tree ensemble (<see cref="PayloadEncodings.TreeEnsemble"/>).</summary>
    public bool HasTreeEnsemble => _ensemble is not null;

    /// <summary>
    /// The tree ensemble of a <see cref="PayloadEncodings.TreeEnsemble"/> payload, parsed and checked when the model
    /// was built or read. Throws <see cref="InvalidOperationException"/> for other payloads.
    /// </summary>
    public TreeEnsembleModel TreeEnsemble => _ensemble
        ?? throw new InvalidOperationException($"the model's payload is {Header.PayloadEncoding}, not {PayloadEncodings.TreeEnsemble}");

    /// <summary>A model with float32 parameters. The array is owned by the model from now on (not copied).</summary>
    public static ModelFile FromParameters(ModelHeader header, float[] parameters)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(parameters);
        var complete = header with
        {
            PayloadEncoding = PayloadEncodings.Float32LittleEndian,
            PayloadBytes = 4L * parameters.Length,
            PayloadSha256 = FramedFile.Sha256Hex(parameters),
        };
        var problems = complete.Validate().ToList();
        if (parameters.Length != header.Dimension)
            problems.Add($"'dimension' is {header.Dimension} but {parameters.Length} parameters were given");
        FramedFile.CheckFinite(parameters, 0, problems);
        if (problems.Count > 0) throw new FederationDataException(Describe(header), problems);
        return new ModelFile(complete, parameters, []);
    }

    /// <summary>
    /// A tree model from its payload bytes: LightGBM text, which ClinicalFed does not interpret, or a tree ensemble's
    /// binary form (<see cref="PayloadEncodings.TreeEnsemble"/>), which is parsed and must read <c>dimension</c>
    /// features. The array is owned by the model.
    /// </summary>
    public static ModelFile FromOpaque(ModelHeader header, byte[] payload, string encoding = PayloadEncodings.LightGbmText)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(payload);
        var complete = header with
        {
            PayloadEncoding = encoding,
            PayloadBytes = payload.LongLength,
            PayloadSha256 = FramedFile.Sha256Hex(payload),
        };
        var problems = complete.Validate().ToList();
        if (encoding == PayloadEncodings.Float32LittleEndian)
            problems.Add("use FromParameters for a float32-le payload");
        var ensemble = problems.Count == 0 && encoding == PayloadEncodings.TreeEnsemble
            ? FramedFile.ParseTreeEnsemble(payload, header.Dimension, problems)
            : null;
        if (problems.Count > 0) throw new FederationDataException(Describe(header), problems);
        return new ModelFile(complete, [], payload, ensemble);
    }

    /// <summary>A tree model whose payload is <paramref name="ensemble"/> (<see cref="PayloadEncodings.TreeEnsemble"/>), reading <c>dimension</c> features.</summary>
    public static ModelFile FromTreeEnsemble(ModelHeader header, TreeEnsembleModel ensemble)
    {
        ArgumentNullException.ThrowIfNull(ensemble);
        return FromOpaque(header, ensemble.ToBytes(), PayloadEncodings.TreeEnsemble);
    }

    /// <summary>Writes the model file.</summary>
    public void WriteTo(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        FramedFile.WriteFrame(destination, Magic, FederationJson.Serialize(Header, indented: false));
        if (HasParameters) FramedFile.WriteFloats(destination, _parameters);
        else destination.Write(_opaque);
    }

    /// <summary>The model file as bytes.</summary>
    public byte[] ToBytes()
    {
        using var buffer = new MemoryStream();
        WriteTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>Reads and validates the header; the stream is left at the first payload byte.</summary>
    public static ModelHeader ReadHeader(Stream source, string origin = "model")
    {
        ArgumentNullException.ThrowIfNull(source);
        var json = FramedFile.ReadFrame(source, Magic, WireLimits.MaxHeaderBytes, "model", origin);
        var header = FederationJson.Deserialize<ModelHeader>(json, origin);
        var problems = header.Validate();
        if (problems.Count > 0) throw new FederationDataException(origin, problems.Select(p => "header field " + p).ToList());
        return header;
    }

    /// <summary>
    /// Reads a whole model file, verifying length, SHA-256, that nothing follows, and the payload: finite values
    /// (float32-le) or a valid ensemble of <c>dimension</c> features (tree-ensemble).
    /// </summary>
    public static ModelFile Read(Stream source, string origin = "model")
    {
        var header = ReadHeader(source, origin);
        if (header.PayloadEncoding == PayloadEncodings.Float32LittleEndian)
        {
            var parameters = new float[header.Dimension];
            var problems = FramedFile.ReadFloatPayload(source, parameters, header.PayloadSha256);
            if (problems.Count > 0) throw new FederationDataException(origin, problems);
            return new ModelFile(header, parameters, []);
        }

        var opaqueProblems = new List<string>();
        var payload = FramedFile.ReadOpaquePayload(source, header.PayloadBytes, header.PayloadSha256, opaqueProblems);
        var ensemble = opaqueProblems.Count == 0 && header.PayloadEncoding == PayloadEncodings.TreeEnsemble
            ? FramedFile.ParseTreeEnsemble(payload, header.Dimension, opaqueProblems)
            : null;
        if (opaqueProblems.Count > 0) throw new FederationDataException(origin, opaqueProblems);
        return new ModelFile(header, [], payload, ensemble);
    }

    public static ModelFile Read(ReadOnlySpan<byte> bytes, string origin = "model")
    {
        using var stream = new MemoryStream(bytes.ToArray(), writable: false);
        return Read(stream, origin);
    }

    private static string Describe(ModelHeader h) =>
        h.Site is null ? $"global model of round {h.Round}" : $"personalized model of site '{h.Site}' for round {h.Round}";
}
