using System.Text.Json.Serialization;

namespace ClinicalFed.Federation;

/// <summary>The JSON header of a server-state file: which strategy's state it is, after which round, and which vectors follow.</summary>
public sealed record ServerStateHeader
{
    public const int CurrentFormatVersion = 1;

    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = CurrentFormatVersion;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    /// <summary>The round whose aggregation produced this state (and its global model).</summary>
    [JsonPropertyName("round")] public required int Round { get; init; }

    [JsonPropertyName("strategy")] public required string Strategy { get; init; }

    /// <summary>Length of each vector.</summary>
    [JsonPropertyName("dimension")] public required int Dimension { get; init; }

    /// <summary>Server optimizer steps taken so far (rounds aggregated with this state).</summary>
    [JsonPropertyName("steps")] public required int Steps { get; init; }

    /// <summary>Names of the vectors in payload order (e.g. <c>velocity</c>; <c>m</c>, <c>v</c>).</summary>
    [JsonPropertyName("vectors")] public required IReadOnlyList<string> Vectors { get; init; }

    [JsonPropertyName("payload_sha256")] public string PayloadSha256 { get; init; } = "";

    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (FormatVersion != CurrentFormatVersion)
            p.Add($"'format_version' is {FormatVersion}; this reader supports {CurrentFormatVersion}");
        if (FederationNames.Problem(Federation, "'federation'") is { } f) p.Add(f);
        if (FederationNames.RoundProblem(Round, "'round'") is { } r) p.Add(r);
        if (string.IsNullOrWhiteSpace(Strategy)) p.Add("'strategy' is missing or empty");
        if (Dimension is < 1 or > WireLimits.MaxDimension) p.Add($"'dimension' is {Dimension}; expected 1 to {WireLimits.MaxDimension}");
        if (Steps < 0) p.Add($"'steps' is {Steps}; it may not be negative");
        if (Vectors is null || Vectors.Count == 0) p.Add("'vectors' must name at least one vector");
        else if (Vectors.Distinct(StringComparer.Ordinal).Count() != Vectors.Count) p.Add("'vectors' repeats a name");
        else if (Vectors.Any(string.IsNullOrWhiteSpace)) p.Add("'vectors' has an empty name");
        if (!FederationJson.IsSha256Hex(PayloadSha256)) p.Add($"'payload_sha256' is '{PayloadSha256}'; expected 64 lower-case hex digits");
        return p;
    }
}

/// <summary>
/// A strategy's server state between rounds (FedAvgM velocity; FedAdam/FedYogi/FedAdagrad moments), so that a
/// stateless aggregator (a serverless function) can resume where the previous round stopped. File format
/// (<c>server-state.bin</c>): magic <c>"CFSS\n"</c>, header length int32 little-endian, UTF-8 JSON
/// <see cref="ServerStateHeader"/>, then the vectors back to back, each <c>dimension</c> float32 little-endian values.
/// </summary>
public sealed class ServerState
{
    private readonly float[][] _vectors;

    private ServerState(ServerStateHeader header, float[][] vectors)
    {
        Header = header;
        _vectors = vectors;
    }

    public static ReadOnlySpan<byte> Magic => "CFSS\n"u8;

    public ServerStateHeader Header { get; }

    public IReadOnlyList<string> VectorNames => Header.Vectors;

    /// <summary>The named vector; throws <see cref="KeyNotFoundException"/> when there is none.</summary>
    public ReadOnlySpan<float> Vector(string name)
    {
        for (int i = 0; i < Header.Vectors.Count; i++)
            if (Header.Vectors[i] == name) return _vectors[i];
        throw new KeyNotFoundException($"server state of strategy '{Header.Strategy}' has no vector '{name}' (it has {string.Join(", ", Header.Vectors)})");
    }

    /// <summary>Builds a state from named vectors of equal length (copied).</summary>
    public static ServerState Create(string federation, int round, string strategy, int steps, IReadOnlyList<(string Name, float[] Values)> vectors)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Count == 0) throw new ArgumentException("at least one vector is needed", nameof(vectors));
        int dimension = vectors[0].Values.Length;
        if (vectors.Any(v => v.Values.Length != dimension)) throw new ArgumentException("all vectors must have the same length", nameof(vectors));
        var copies = vectors.Select(v => (float[])v.Values.Clone()).ToArray();
        var header = new ServerStateHeader
        {
            Federation = federation,
            Round = round,
            Strategy = strategy,
            Dimension = dimension,
            Steps = steps,
            Vectors = vectors.Select(v => v.Name).ToArray(),
            PayloadSha256 = Hash(copies),
        };
        var problems = header.Validate().ToList();
        foreach (var v in copies) FramedFile.CheckFinite(v, 0, problems);
        if (problems.Count > 0) throw new FederationDataException($"server state of strategy '{strategy}' for round {round}", problems);
        return new ServerState(header, copies);
    }

    public void WriteTo(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        FramedFile.WriteFrame(destination, Magic, FederationJson.Serialize(Header, indented: false));
        foreach (var v in _vectors) FramedFile.WriteFloats(destination, v);
    }

    public byte[] ToBytes()
    {
        using var buffer = new MemoryStream();
        WriteTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>Reads and verifies a server-state file (length, SHA-256 over all vectors, finite values, nothing after).</summary>
    public static ServerState Read(Stream source, string origin = "server state")
    {
        ArgumentNullException.ThrowIfNull(source);
        var json = FramedFile.ReadFrame(source, Magic, WireLimits.MaxHeaderBytes, "server state", origin);
        var header = FederationJson.Deserialize<ServerStateHeader>(json, origin);
        var headerProblems = header.Validate();
        if (headerProblems.Count > 0) throw new FederationDataException(origin, headerProblems.Select(p => "header field " + p).ToList());

        // One contiguous read keeps the SHA-256 check identical to the writer's (the hash covers all vectors in order).
        int count = header.Vectors.Count;
        var all = new float[checked(header.Dimension * count)];
        var problems = FramedFile.ReadFloatPayload(source, all, header.PayloadSha256);
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        var vectors = new float[count][];
        for (int i = 0; i < count; i++) vectors[i] = all.AsSpan(i * header.Dimension, header.Dimension).ToArray();
        return new ServerState(header, vectors);
    }

    private static string Hash(float[][] vectors)
    {
        using var buffer = new MemoryStream();
        foreach (var v in vectors) FramedFile.WriteFloats(buffer, v);
        return FramedFile.Sha256Hex(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    }
}
