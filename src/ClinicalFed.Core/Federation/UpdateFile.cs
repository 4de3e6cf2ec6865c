using System.Text.Json.Serialization;

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

    /// <summary>Number of float32 values in the payload.</summary>
    [JsonPropertyName("dimension")] public required int Dimension { get; init; }

    /// <summary>Metrics of local training or validation (loss, AUROC, ...); aggregates only.</summary>
    [JsonPropertyName("local_metrics")] public IReadOnlyDictionary<string, double> LocalMetrics { get; init; } = new Dictionary<string, double>();

    [JsonPropertyName("created_at")] public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Lower-case hex SHA-256 of the payload bytes; <see cref="UpdateFile.Write"/> fills it in.</summary>
    [JsonPropertyName("payload_sha256")] public string PayloadSha256 { get; init; } = "";

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
        FederationJson.CheckMetrics(LocalMetrics, "local_metrics", p);
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
/// JSON <see cref="UpdateHeader"/>, then exactly <c>dimension</c> float32 little-endian values. Read streaming: the
/// header first, then the payload straight into a caller's buffer, so an aggregator needs one buffer for all updates.
/// Every read check (framing, header fields, payload length, SHA-256, finite values, nothing after the payload) fails
/// with a <see cref="FederationDataException"/> naming the file and the field.
/// </summary>
public static class UpdateFile
{
    public const string Extension = ".cfu";

    /// <summary>The 5 magic bytes, <c>"CFUP\n"</c>.</summary>
    public static ReadOnlySpan<byte> Magic => "CFUP\n"u8;

    /// <summary>
    /// Writes an update. The payload must hold <c>header.Dimension</c> finite values; the header's
    /// <c>payload_sha256</c> is computed here (an existing value must match). Returns the header as written.
    /// Nothing is written when a check fails.
    /// </summary>
    public static UpdateHeader Write(Stream destination, UpdateHeader header, ReadOnlySpan<float> payload)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(header);
        var problems = header.Validate(requireHash: false);
        if (payload.Length != header.Dimension)
            problems.Add($"'dimension' is {header.Dimension} but the payload holds {payload.Length} values");
        FramedFile.CheckFinite(payload, 0, problems);
        string sha = FramedFile.Sha256Hex(payload);
        if (header.PayloadSha256.Length > 0 && header.PayloadSha256 != sha)
            problems.Add($"'payload_sha256' is '{header.PayloadSha256}' but the payload hashes to '{sha}'");
        string origin = $"update of site '{header.Site}' for round {header.Round}";
        if (problems.Count > 0) throw new FederationDataException(origin, problems);

        var written = header with { PayloadSha256 = sha };
        FramedFile.WriteFrame(destination, Magic, FederationJson.Serialize(written, indented: false));
        FramedFile.WriteFloats(destination, payload);
        return written;
    }

    /// <summary>Reads and validates the header; the stream is left at the first payload byte.</summary>
    public static UpdateHeader ReadHeader(Stream source, string origin = "update")
    {
        ArgumentNullException.ThrowIfNull(source);
        var json = FramedFile.ReadFrame(source, Magic, WireLimits.MaxHeaderBytes, "update", origin);
        var header = FederationJson.Deserialize<UpdateHeader>(json, origin);
        var problems = header.Validate();
        if (problems.Count > 0) throw new FederationDataException(origin, problems.Select(p => "header field " + p).ToList());
        return header;
    }

    /// <summary>
    /// Reads the payload that follows <paramref name="header"/> into <paramref name="destination"/> (whose length must
    /// equal the header's dimension), verifying length, SHA-256, finiteness and that nothing follows. On failure the
    /// destination's contents are unspecified.
    /// </summary>
    public static void ReadPayload(Stream source, UpdateHeader header, Span<float> destination, string origin = "update")
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(header);
        if (destination.Length != header.Dimension)
            throw new FederationDataException(origin, $"header field 'dimension' is {header.Dimension} but {destination.Length} values were expected");
        var problems = FramedFile.ReadFloatPayload(source, destination, header.PayloadSha256);
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
    }

    /// <summary>Reads a whole update file: header, then payload into <paramref name="destination"/>. Returns the header.</summary>
    public static UpdateHeader ReadPayload(Stream source, Span<float> destination, string origin = "update")
    {
        var header = ReadHeader(source, origin);
        ReadPayload(source, header, destination, origin);
        return header;
    }

    /// <summary>Reads a whole update file into a new array.</summary>
    public static (UpdateHeader Header, float[] Payload) Read(Stream source, string origin = "update")
    {
        var header = ReadHeader(source, origin);
        var payload = new float[header.Dimension];
        ReadPayload(source, header, payload, origin);
        return (header, payload);
    }

    /// <summary>
    /// Copies an update file from <paramref name="source"/> to <paramref name="destination"/> while verifying it
    /// completely, in constant memory (the header is copied byte for byte). Throws
    /// <see cref="FederationDataException"/> on the first invalid part; the destination then holds a partial copy
    /// that the caller must discard. Returns the header.
    /// </summary>
    public static UpdateHeader CopyVerified(Stream source, Stream destination, string origin = "update")
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var json = FramedFile.ReadFrame(source, Magic, WireLimits.MaxHeaderBytes, "update", origin);
        var header = FederationJson.Deserialize<UpdateHeader>(json, origin);
        var headerProblems = header.Validate();
        if (headerProblems.Count > 0) throw new FederationDataException(origin, headerProblems.Select(p => "header field " + p).ToList());
        FramedFile.WriteFrame(destination, Magic, json);
        var problems = FramedFile.CopyFloatPayload(source, destination, header.Dimension, header.PayloadSha256);
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return header;
    }
}
