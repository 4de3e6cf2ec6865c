using System.Text.Json.Serialization;
using ClinicalFed.Trees;

namespace ClinicalFed.Federation;

/// <summary>
/// The JSON header of a site's update file (schemas/update.schema.json): who sent it for which round, how many
/// examples it was trained on, what its payload holds, and the SHA-256 of the payload.
/// </summary>
public sealed record UpdateHeader
{
    public const int CurrentFormatVersion = 1;

    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = CurrentFormatVersion;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    [JsonPropertyName("round")] public required int Round { get; init; }

    [JsonPropertyName("site")] public required string Site { get; init; }

    /// <summary>Training examples behind the update; the weight of the update in example-weighted strategies.</summary>
    [JsonPropertyName("example_count")] public required long ExampleCount { get; init; }

    /// <summary><see cref="ParameterKinds.Full"/> or <see cref="ParameterKinds.Delta"/>.</summary>
    [JsonPropertyName("parameter_kind")] public required string ParameterKind { get; init; }

    /// <summary>float32: the number of float32 values in the payload. tree-ensemble: the number of features the trees read.</summary>
    [JsonPropertyName("dimension")] public required int Dimension { get; init; }

    /// <summary>Metrics of local training or validation (loss, AUROC, ...); aggregates only.</summary>
    [JsonPropertyName("local_metrics")] public IReadOnlyDictionary<string, double> LocalMetrics { get; init; } = new Dictionary<string, double>();

    [JsonPropertyName("created_at")] public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>
    /// <see cref="UpdatePayloadEncodings.TreeEnsemble"/>, or null (the field is absent) for float32 values, the
    /// default: float32 updates leave the field out, so they are exactly the files written before it existed.
    /// </summary>
    [JsonPropertyName("payload_encoding")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PayloadEncoding { get; init; }

    /// <summary>Payload length in bytes; required for tree-ensemble (filled in by <see cref="UpdateFile.Write(Stream, UpdateHeader, TreeEnsembleModel)"/>), absent for float32 (4 × dimension if given).</summary>
    [JsonPropertyName("payload_bytes")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? PayloadBytes { get; init; }

    /// <summary>Lower-case hex SHA-256 of the payload bytes; <see cref="UpdateFile.Write(Stream, UpdateHeader, ReadOnlySpan{float})"/> fills it in.</summary>
    [JsonPropertyName("payload_sha256")] public string PayloadSha256 { get; init; } = "";

    /// <summary>What the site's differentially private training cost (<see cref="ClinicalFed.Privacy.UpdatePrivacy"/>); absent without DP.</summary>
    [JsonPropertyName("privacy")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ClinicalFed.Privacy.UpdatePrivacy? Privacy { get; init; }

    /// <summary>
    /// Base64 ECDSA P-256 SHA-256 signature (IEEE P1363, 64 bytes) by the site's signing key over the whole header
    /// without this field (<see cref="ClinicalFed.Privacy.Signing.UpdateSignature"/>); absent when unsigned.
    /// </summary>
    [JsonPropertyName("signature")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Signature { get; init; }

    /// <summary>True when the payload is a tree ensemble rather than float32 values.</summary>
    [JsonIgnore] public bool IsTreeEnsemble => PayloadEncoding == UpdatePayloadEncodings.TreeEnsemble;

    /// <summary>True when the payload is a compressed delta (int8, int4 or topk) that decodes to <c>dimension</c> float32 values.</summary>
    [JsonIgnore] public bool IsCompressed => UpdatePayloadEncodings.IsCompressed(PayloadEncoding);

    /// <summary>True when the payload is plain float32 values (the encoding is absent or float32).</summary>
    [JsonIgnore] public bool IsPlainFloat32 => PayloadEncoding is null or UpdatePayloadEncodings.Float32;

    /// <summary>Every problem with the header (empty when valid), each naming its field.</summary>
    public IReadOnlyList<string> Validate() => Validate(requireHash: true);

    internal List<string> Validate(bool requireHash)
    {
        var p = new List<string>();
        if (FormatVersion != CurrentFormatVersion)
            p.Add($"'format_version' is {FormatVersion}; this reader supports {CurrentFormatVersion}");
        Add(p, FederationNames.Problem(Federation, "'federation'"));
        Add(p, FederationNames.RoundProblem(Round, "'round'"));
        Add(p, FederationNames.Problem(Site, "'site'"));
        if (ExampleCount < 0) p.Add($"'example_count' is {ExampleCount}; it may not be negative");
        if (!ParameterKinds.All.Contains(ParameterKind))
            p.Add($"'parameter_kind' is '{ParameterKind}'; expected one of {string.Join(", ", ParameterKinds.All)}");
        if (Dimension is < 1 or > WireLimits.MaxDimension) p.Add($"'dimension' is {Dimension}; expected 1 to {WireLimits.MaxDimension}");
        if (IsTreeEnsemble)
        {
            if (ParameterKind != ParameterKinds.Full)
                p.Add($"'parameter_kind' is '{ParameterKind}'; a tree-ensemble payload is the site's whole ensemble, so it must be '{ParameterKinds.Full}'");
            if (PayloadBytes is not (>= 1 and <= WireLimits.MaxOpaquePayloadBytes))
                p.Add($"'payload_bytes' is {PayloadBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "missing"}; a tree-ensemble payload needs 1 to {WireLimits.MaxOpaquePayloadBytes}");
        }
        else if (IsCompressed)
        {
            if (ParameterKind != ParameterKinds.Delta)
                p.Add($"'parameter_kind' is '{ParameterKind}'; a compressed ({PayloadEncoding}) payload is a difference from the global model, so it must be '{ParameterKinds.Delta}'");
            if (PayloadBytes is not (>= 1 and <= WireLimits.MaxOpaquePayloadBytes))
                p.Add($"'payload_bytes' is {PayloadBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "missing"}; a {PayloadEncoding} payload needs 1 to {WireLimits.MaxOpaquePayloadBytes}");
        }
        else if (PayloadEncoding is not (null or UpdatePayloadEncodings.Float32))
        {
            p.Add($"'payload_encoding' is '{PayloadEncoding}'; expected one of {string.Join(", ", UpdatePayloadEncodings.All)} (absent means {UpdatePayloadEncodings.Float32})");
        }
        else if (PayloadBytes is { } bytes && bytes != 4L * Dimension)
        {
            p.Add($"'payload_bytes' is {bytes}; a float32 payload of 'dimension' {Dimension} has {4L * Dimension}");
        }

        FederationJson.CheckMetrics(LocalMetrics, "local_metrics", p);
        if (Privacy is not null) p.AddRange(Privacy.Validate());
        if (Signature is not null && !ClinicalFed.Privacy.Signing.UpdateSignature.IsWellFormed(Signature))
            p.Add("'signature' is not the base64 of a 64-byte ECDSA P-256 signature (IEEE P1363)");
        if (requireHash && !FederationJson.IsSha256Hex(PayloadSha256))
            p.Add($"'payload_sha256' is '{PayloadSha256}'; expected 64 lower-case hex digits");
        return p;
    }

    private static void Add(List<string> problems, string? problem)
    {
        if (problem is not null) problems.Add(problem);
    }
}

/// <summary>
/// A site's update file (<c>.cfu</c>): magic <c>"CFUP\n"</c>, the header length as int32 little-endian, the UTF-8
/// JSON <see cref="UpdateHeader"/>, then the payload its <c>payload_encoding</c> names: exactly <c>dimension</c>
/// float32 little-endian values (the default), or a tree ensemble of <c>payload_bytes</c> bytes (<c>tree-ensemble</c>,
/// <see cref="TreeEnsembleModel.ToBytes"/>). Read streaming: the header first, then a float32 payload straight into a
/// caller's buffer, so an aggregator needs one buffer for all updates; a tree ensemble is read whole and parsed. Every
/// read check (framing, header fields, payload length, SHA-256, finite values or a valid ensemble of
/// <c>dimension</c> features, nothing after the payload) fails with a <see cref="FederationDataException"/> naming
/// the file and the field.
/// </summary>
public static class UpdateFile
{
    public const string Extension = ".cfu";

    /// <summary>The 5 magic bytes, <c>"CFUP\n"</c>.</summary>
    public static ReadOnlySpan<byte> Magic => "CFUP\n"u8;

    /// <summary>
    /// Writes a float32 update. The payload must hold <c>header.Dimension</c> finite values; the header's
    /// <c>payload_sha256</c> is computed here (an existing value must match). Returns the header as written.
    /// Nothing is written when a check fails.
    /// </summary>
    public static UpdateHeader Write(Stream destination, UpdateHeader header, ReadOnlySpan<float> payload)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(header);
        // float32 is the default and is left out of the header, which stays exactly what earlier writers wrote.
        var normalized = header.PayloadEncoding == UpdatePayloadEncodings.Float32 ? header with { PayloadEncoding = null } : header;
        var problems = normalized.Validate(requireHash: false);
        if (normalized.IsTreeEnsemble) problems.Add("'payload_encoding' is tree-ensemble; write a tree ensemble with the TreeEnsembleModel overload");
        if (normalized.IsCompressed) problems.Add($"'payload_encoding' is {normalized.PayloadEncoding}; write a compressed delta with WriteCompressed");
        if (payload.Length != header.Dimension)
            problems.Add($"'dimension' is {header.Dimension} but the payload holds {payload.Length} values");
        FramedFile.CheckFinite(payload, 0, problems);
        string sha = FramedFile.Sha256Hex(payload);
        var written = Finish(normalized, sha, problems);
        FramedFile.WriteFrame(destination, Magic, FederationJson.Serialize(written, indented: false));
        FramedFile.WriteFloats(destination, payload);
        return written;
    }

    /// <summary>
    /// Writes a tree-ensemble update: the header's <c>payload_encoding</c> becomes tree-ensemble and its
    /// <c>payload_bytes</c> and <c>payload_sha256</c> are computed here (an existing hash must match). The ensemble must
    /// read <c>header.Dimension</c> features and the parameter kind must be full. Returns the header as written;
    /// nothing is written when a check fails.
    /// </summary>
    public static UpdateHeader Write(Stream destination, UpdateHeader header, TreeEnsembleModel ensemble)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(ensemble);
        var bytes = ensemble.ToBytes();
        var tree = header with { PayloadEncoding = UpdatePayloadEncodings.TreeEnsemble, PayloadBytes = bytes.LongLength };
        var problems = tree.Validate(requireHash: false);
        if (ensemble.FeatureCount != header.Dimension)
            problems.Add($"'dimension' is {header.Dimension} but the tree ensemble reads {ensemble.FeatureCount} features");
        var written = Finish(tree, FramedFile.Sha256Hex(bytes), problems);
        FramedFile.WriteFrame(destination, Magic, FederationJson.Serialize(written, indented: false));
        destination.Write(bytes);
        return written;
    }

    /// <summary>The header with its hash, after checking a given hash; throws listing every problem.</summary>
    private static UpdateHeader Finish(UpdateHeader header, string sha, List<string> problems)
    {
        if (header.PayloadSha256.Length > 0 && header.PayloadSha256 != sha)
            problems.Add($"'payload_sha256' is '{header.PayloadSha256}' but the payload hashes to '{sha}'");
        string origin = $"update of site '{header.Site}' for round {header.Round}";
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return header with { PayloadSha256 = sha };
    }

    /// <summary>Reads and validates the header; the stream is left at the first payload byte.</summary>
    public static UpdateHeader ReadHeader(Stream source, string origin = "update") => ReadHeader(source, origin, out _);

    private static UpdateHeader ReadHeader(Stream source, string origin, out byte[] json)
    {
        ArgumentNullException.ThrowIfNull(source);
        json = FramedFile.ReadFrame(source, Magic, WireLimits.MaxHeaderBytes, "update", origin);
        var header = FederationJson.Deserialize<UpdateHeader>(json, origin);
        var problems = header.Validate();
        if (problems.Count > 0) throw new FederationDataException(origin, problems.Select(p => "header field " + p).ToList());
        return header;
    }

    /// <summary>
    /// Reads the float32 payload that follows <paramref name="header"/> into <paramref name="destination"/> (whose
    /// length must equal the header's dimension), verifying length, SHA-256, finiteness and that nothing follows. On
    /// failure the destination's contents are unspecified. A tree-ensemble update is an error here
    /// (<see cref="ReadTreeEnsemble(Stream, UpdateHeader, string)"/> reads it).
    /// </summary>
    public static void ReadPayload(Stream source, UpdateHeader header, Span<float> destination, string origin = "update") =>
        ReadPayload(source, header, destination, origin, verifyHash: true);

    /// <summary>
    /// As <see cref="ReadPayload(Stream, UpdateHeader, Span{float}, string)"/>; with <paramref name="verifyHash"/> false
    /// the SHA-256 is not recomputed (length, finiteness and trailing bytes still are): for a payload whose hash was
    /// verified when it was stored and that provably has not changed since.
    /// </summary>
    public static void ReadPayload(Stream source, UpdateHeader header, Span<float> destination, string origin, bool verifyHash)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(header);
        if (header.IsTreeEnsemble)
            throw new FederationDataException(origin, "header field 'payload_encoding' is tree-ensemble: the payload is a tree ensemble, not float32 values");
        if (destination.Length != header.Dimension)
            throw new FederationDataException(origin, $"header field 'dimension' is {header.Dimension} but {destination.Length} values were expected");
        if (header.IsCompressed)
        {
            ReadCompressed(source, header, destination, origin);
            return;
        }

        var problems = FramedFile.ReadFloatPayload(source, destination, verifyHash ? header.PayloadSha256 : null);
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
    }

    /// <summary>Reads a whole float32 update file: header, then payload into <paramref name="destination"/>. Returns the header.</summary>
    public static UpdateHeader ReadPayload(Stream source, Span<float> destination, string origin = "update")
    {
        var header = ReadHeader(source, origin);
        ReadPayload(source, header, destination, origin);
        return header;
    }

    /// <summary>Reads a whole float32 update file into a new array.</summary>
    public static (UpdateHeader Header, float[] Payload) Read(Stream source, string origin = "update")
    {
        var header = ReadHeader(source, origin);
        var payload = new float[header.IsTreeEnsemble ? 0 : header.Dimension];
        ReadPayload(source, header, payload, origin);
        return (header, payload);
    }

    /// <summary>
    /// Reads the tree-ensemble payload that follows <paramref name="header"/> and parses it, verifying length,
    /// SHA-256, that nothing follows, that it is a valid ensemble and that it reads <c>dimension</c> features. A
    /// float32 update is an error here.
    /// </summary>
    public static TreeEnsembleModel ReadTreeEnsemble(Stream source, UpdateHeader header, string origin = "update")
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(header);
        if (!header.IsTreeEnsemble)
            throw new FederationDataException(origin, $"header field 'payload_encoding' is {header.PayloadEncoding ?? UpdatePayloadEncodings.Float32}: the payload is float32 values, not a tree ensemble");
        var (_, ensemble) = ReadTreePayload(source, header, origin);
        return ensemble;
    }

    /// <summary>Reads a whole tree-ensemble update file: the header and the parsed ensemble.</summary>
    public static (UpdateHeader Header, TreeEnsembleModel Ensemble) ReadTreeEnsemble(Stream source, string origin = "update")
    {
        var header = ReadHeader(source, origin);
        return (header, ReadTreeEnsemble(source, header, origin));
    }

    /// <summary>
    /// Copies an update file from <paramref name="source"/> to <paramref name="destination"/> while verifying it
    /// completely (the header is copied byte for byte). A float32 payload is copied in constant memory; a tree
    /// ensemble is read whole (at most <see cref="WireLimits.MaxOpaquePayloadBytes"/>) and parsed before it is
    /// copied. Throws <see cref="FederationDataException"/> on the first invalid part; the destination then holds a
    /// partial copy that the caller must discard. Returns the header.
    /// </summary>
    public static UpdateHeader CopyVerified(Stream source, Stream destination, string origin = "update")
    {
        ArgumentNullException.ThrowIfNull(destination);
        var header = ReadHeader(source, origin, out var json);
        FramedFile.WriteFrame(destination, Magic, json);
        if (header.IsTreeEnsemble)
        {
            var (bytes, _) = ReadTreePayload(source, header, origin);
            destination.Write(bytes);
            return header;
        }

        if (header.IsCompressed)
        {
            var compressed = ReadCompressed(source, header, new float[header.Dimension], origin);
            destination.Write(compressed);
            return header;
        }

        var problems = FramedFile.CopyFloatPayload(source, destination, header.Dimension, header.PayloadSha256);
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return header;
    }

    /// <summary>
    /// Writes a compressed delta update (<see cref="ClinicalFed.Compression.UpdateCodec"/>): sets the header's
    /// <c>payload_encoding</c>, <c>payload_bytes</c>, <c>payload_sha256</c> and <c>parameter_kind</c> delta, checks
    /// that the payload decodes to <c>dimension</c> finite values, and returns the header as written.
    /// </summary>
    public static UpdateHeader WriteCompressed(Stream destination, UpdateHeader header, string encoding, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(header);
        if (!UpdatePayloadEncodings.IsCompressed(encoding)) throw new ArgumentException($"'{encoding}' is not a compressed encoding", nameof(encoding));
        var written = Compressed(header, encoding, payload);
        var problems = written.Validate(requireHash: true);
        problems.AddRange(Compression.UpdateCodec.Decode(encoding, payload, new float[header.Dimension]));
        if (problems.Count > 0) throw new FederationDataException("update", problems);
        FramedFile.WriteFrame(destination, Magic, FederationJson.Serialize(written, indented: false));
        destination.Write(payload);
        return written;
    }

    /// <summary>The header a compressed payload is written with (encoding, length, hash, delta kind); for signing before writing.</summary>
    public static UpdateHeader Compressed(UpdateHeader header, string encoding, ReadOnlySpan<byte> payload) => header with
    {
        PayloadEncoding = encoding, PayloadBytes = payload.Length, ParameterKind = ParameterKinds.Delta,
        PayloadSha256 = FramedFile.Sha256Hex(payload),
    };

    /// <summary>Reads and checks a compressed payload (length, SHA-256, nothing after it, decodable and finite) and decodes it into <paramref name="destination"/>.</summary>
    private static byte[] ReadCompressed(Stream source, UpdateHeader header, Span<float> destination, string origin)
    {
        var problems = new List<string>();
        var bytes = FramedFile.ReadOpaquePayload(source, header.PayloadBytes!.Value, header.PayloadSha256, problems);
        if (problems.Count == 0) problems.AddRange(Compression.UpdateCodec.Decode(header.PayloadEncoding!, bytes, destination).Select(p => $"payload ({header.PayloadEncoding}): {p}"));
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return bytes;
    }

    private static (byte[] Bytes, TreeEnsembleModel Ensemble) ReadTreePayload(Stream source, UpdateHeader header, string origin)
    {
        var problems = new List<string>();
        var bytes = FramedFile.ReadOpaquePayload(source, header.PayloadBytes!.Value, header.PayloadSha256, problems);
        var ensemble = problems.Count == 0 ? FramedFile.ParseTreeEnsemble(bytes, header.Dimension, problems) : null;
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return (bytes, ensemble!);
    }
}
