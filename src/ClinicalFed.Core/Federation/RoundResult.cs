using System.Text.Json.Serialization;

namespace ClinicalFed.Federation;

/// <summary>
/// What the aggregator decided for a round (<c>result.json</c>): which updates it accepted and rejected (with
/// reasons), which expected sites sent nothing, and the example-weighted mean of the accepted local metrics.
/// Layout documented in schemas/store-layout.md.
/// </summary>
public sealed record RoundResult
{
    public const int CurrentFormatVersion = 1;

    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = CurrentFormatVersion;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    [JsonPropertyName("round")] public required int Round { get; init; }

    [JsonPropertyName("strategy")] public required string Strategy { get; init; }

    /// <summary><see cref="RoundStatuses.Aggregated"/> or <see cref="RoundStatuses.QuorumNotMet"/>.</summary>
    [JsonPropertyName("status")] public required string Status { get; init; }

    [JsonPropertyName("quorum")] public required int Quorum { get; init; }

    /// <summary>Accepted updates in the order they were accumulated (site names, ordinal).</summary>
    [JsonPropertyName("accepted")] public required IReadOnlyList<AcceptedUpdate> Accepted { get; init; }

    [JsonPropertyName("rejected")] public required IReadOnlyList<RejectedUpdate> Rejected { get; init; }

    /// <summary>Expected sites with no update when the round closed.</summary>
    [JsonPropertyName("missing")] public required IReadOnlyList<string> Missing { get; init; }

    /// <summary>Sum of the accepted updates' example counts.</summary>
    [JsonPropertyName("example_count")] public required long ExampleCount { get; init; }

    /// <summary>Example-weighted mean of each local metric over the accepted updates that report it.</summary>
    [JsonPropertyName("metrics")] public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>Store path of the global model written for this round; null when the quorum was not met.</summary>
    [JsonPropertyName("global_model")]
    [JsonRequired]
    public string? GlobalModel { get; init; }

    /// <summary>Remarks such as a server state that could not be used.</summary>
    [JsonPropertyName("notes")] public IReadOnlyList<string> Notes { get; init; } = [];

    [JsonPropertyName("completed_at")] public required DateTimeOffset CompletedAt { get; init; }

    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (FormatVersion != CurrentFormatVersion)
            p.Add($"'format_version' is {FormatVersion}; this reader supports {CurrentFormatVersion}");
        if (FederationNames.Problem(Federation, "'federation'") is { } f) p.Add(f);
        if (FederationNames.RoundProblem(Round, "'round'") is { } r) p.Add(r);
        if (string.IsNullOrWhiteSpace(Strategy)) p.Add("'strategy' is missing or empty");
        if (!RoundStatuses.All.Contains(Status)) p.Add($"'status' is '{Status}'; expected one of {string.Join(", ", RoundStatuses.All)}");
        if (Quorum < 1) p.Add($"'quorum' is {Quorum}; it must be at least 1");
        if (Accepted is null) p.Add("'accepted' is missing");
        else
            for (int i = 0; i < Accepted.Count; i++)
            {
                if (FederationNames.Problem(Accepted[i].Site, $"'accepted[{i}].site'") is { } s) p.Add(s);
                if (Accepted[i].ExampleCount < 0) p.Add($"'accepted[{i}].example_count' may not be negative");
            }

        if (Rejected is null) p.Add("'rejected' is missing");
        if (Missing is null) p.Add("'missing' is missing");
        if (ExampleCount < 0) p.Add($"'example_count' is {ExampleCount}; it may not be negative");
        FederationJson.CheckMetrics(Metrics, "metrics", p);
        if (Status == RoundStatuses.Aggregated && GlobalModel is null) p.Add("'global_model' is null but 'status' is aggregated");
        if (Status == RoundStatuses.QuorumNotMet && GlobalModel is not null) p.Add("'global_model' must be null when 'status' is quorum_not_met");
        if (GlobalModel is not null && !GlobalModelPath.TryParse(GlobalModel, out _, out _)) p.Add($"'global_model' '{GlobalModel}' is not a global model path");
        return p;
    }

    public RoundResult EnsureValid(string origin = "round result")
    {
        var problems = Validate();
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return this;
    }

    public byte[] ToJsonBytes()
    {
        EnsureValid();
        return FederationJson.Serialize(this, indented: true);
    }

    public static RoundResult Parse(ReadOnlySpan<byte> utf8Json, string origin = "result.json") =>
        FederationJson.Deserialize<RoundResult>(utf8Json, origin).EnsureValid(origin);
}

/// <summary>An update that went into the round's aggregate.</summary>
public sealed record AcceptedUpdate
{
    [JsonPropertyName("site")] public required string Site { get; init; }

    [JsonPropertyName("example_count")] public required long ExampleCount { get; init; }

    [JsonPropertyName("parameter_kind")] public required string ParameterKind { get; init; }

    /// <summary>L2 norm of the site's change to the global model (‖delta‖, or ‖full − global‖).</summary>
    [JsonPropertyName("update_norm")] public required double UpdateNorm { get; init; }

    [JsonPropertyName("payload_sha256")] public required string PayloadSha256 { get; init; }

    /// <summary>The update's <c>payload_encoding</c> (float32, int8, int4, topk, tree-ensemble; masked for a secure round's survivors).</summary>
    [JsonPropertyName("payload_encoding")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PayloadEncoding { get; init; }

    /// <summary>Bytes of the update's payload as uploaded (null in results written before this field existed).</summary>
    [JsonPropertyName("payload_bytes")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? PayloadBytes { get; init; }
}

/// <summary>An update the aggregator refused, and why.</summary>
public sealed record RejectedUpdate
{
    [JsonPropertyName("site")] public required string Site { get; init; }

    [JsonPropertyName("reason")] public required string Reason { get; init; }
}
