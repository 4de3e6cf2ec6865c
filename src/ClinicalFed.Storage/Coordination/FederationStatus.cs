using System.Text.Json.Serialization;

namespace ClinicalFed.Storage.Coordination;

/// <summary>Phases of a federation.</summary>
public static class FederationPhases
{
    /// <summary>Waiting for the sites' statistics (before round 0).</summary>
    public const string Statistics = "statistics";

    /// <summary>A round is open for uploads.</summary>
    public const string Open = "open";

    /// <summary>The last round was aggregated; nothing more will open.</summary>
    public const string Completed = "completed";
}

/// <summary>
/// A federation's state as <c>RoundStatus</c> reports it (schemas/round-status.schema.json): aggregates only, never
/// keys or rows.
/// </summary>
public sealed record FederationStatus
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    /// <summary><see cref="FederationPhases"/>.</summary>
    [JsonPropertyName("phase")] public required string Phase { get; init; }

    /// <summary>The latest round with a manifest, or null before round 0 opens.</summary>
    [JsonPropertyName("round")] public int? Round { get; init; }

    [JsonPropertyName("rounds")] public required int Rounds { get; init; }

    [JsonPropertyName("strategy")] public required string Strategy { get; init; }

    [JsonPropertyName("quorum")] public required int Quorum { get; init; }

    /// <summary>The open round's deadline, or null.</summary>
    [JsonPropertyName("deadline")] public DateTimeOffset? Deadline { get; init; }

    /// <summary>Active registered sites.</summary>
    [JsonPropertyName("sites")] public required IReadOnlyList<string> Sites { get; init; }

    [JsonPropertyName("withdrawn_sites")] public required IReadOnlyList<string> WithdrawnSites { get; init; }

    /// <summary>Sites with an upload in the current round (or statistics, in the statistics phase).</summary>
    [JsonPropertyName("uploaded")] public required IReadOnlyList<string> Uploaded { get; init; }

    /// <summary>Expected sites that have not uploaded yet.</summary>
    [JsonPropertyName("missing")] public required IReadOnlyList<string> Missing { get; init; }

    /// <summary>Uploads rejected by aggregation, over all rounds, with reasons.</summary>
    [JsonPropertyName("rejected")] public required IReadOnlyList<RejectedUpload> Rejected { get; init; }

    /// <summary>Closed rounds, ascending.</summary>
    [JsonPropertyName("history")] public required IReadOnlyList<RoundSummary> History { get; init; }

    /// <summary>Store path of the newest global model, or null.</summary>
    [JsonPropertyName("latest_global_model")] public string? LatestGlobalModel { get; init; }

    [JsonPropertyName("as_of")] public required DateTimeOffset AsOf { get; init; }
}

public sealed record RejectedUpload
{
    [JsonPropertyName("round")] public required int Round { get; init; }

    [JsonPropertyName("site")] public required string Site { get; init; }

    [JsonPropertyName("reason")] public required string Reason { get; init; }
}

public sealed record RoundSummary
{
    [JsonPropertyName("round")] public required int Round { get; init; }

    /// <summary><c>aggregated</c> or <c>quorum_not_met</c>.</summary>
    [JsonPropertyName("status")] public required string Status { get; init; }

    [JsonPropertyName("accepted")] public required IReadOnlyList<string> Accepted { get; init; }

    [JsonPropertyName("missing")] public required IReadOnlyList<string> Missing { get; init; }

    [JsonPropertyName("example_count")] public required long ExampleCount { get; init; }

    /// <summary>Payload bytes of the accepted uploads (null when the round's result predates the field).</summary>
    [JsonPropertyName("payload_bytes")] public long? PayloadBytes { get; init; }

    /// <summary>Each accepted upload's payload encoding, by site (float32, int8, int4, topk, tree-ensemble or masked).</summary>
    [JsonPropertyName("payload_encodings")] public IReadOnlyDictionary<string, string> PayloadEncodings { get; init; } = new Dictionary<string, string>();

    /// <summary>Example-weighted means of the sites' reported local metrics.</summary>
    [JsonPropertyName("metrics")] public required IReadOnlyDictionary<string, double> Metrics { get; init; }

    [JsonPropertyName("completed_at")] public required DateTimeOffset CompletedAt { get; init; }
}

/// <summary>What one aggregator tick did for one federation.</summary>
public sealed record TickOutcome
{
    [JsonPropertyName("federation")] public required string Federation { get; init; }

    /// <summary>
    /// <c>busy</c> (another invocation holds the lease), <c>waiting</c>, <c>statistics_merged</c>,
    /// <c>round_opened</c>, <c>round_closed</c>, <c>completed</c>, or <c>error</c>.
    /// </summary>
    [JsonPropertyName("action")] public required string Action { get; init; }

    [JsonPropertyName("round")] public int? Round { get; init; }

    [JsonPropertyName("message")] public required string Message { get; init; }
}
