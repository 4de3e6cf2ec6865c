using System.Text.Json.Serialization;
using ClinicalFed.Federation;

namespace ClinicalFed.Cli.Simulation;

/// <summary>One federated run in the <c>robustness</c> comparison.</summary>
public sealed record RobustnessRun
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("strategy")] public required string Strategy { get; init; }
    [JsonPropertyName("attacks")] public required IReadOnlyList<string> Attacks { get; init; }
    /// <summary>Final federated test AUROC of every honest site.</summary>
    [JsonPropertyName("honest_auroc")] public required IReadOnlyDictionary<string, double> HonestAuroc { get; init; }
    /// <summary>Largest drop of an honest site's AUROC below the clean run (null for the clean run itself).</summary>
    [JsonPropertyName("max_honest_drop_vs_clean")] public double? MaxHonestDropVsClean { get; init; }
    [JsonPropertyName("rejected")] public int Rejected { get; init; }
    [JsonPropertyName("auroc_per_round")] public required IReadOnlyList<double> MeanHonestAurocPerRound { get; init; }
}

/// <summary>The <c>robustness</c> section: the attacked run beside the clean run and FedAvg under the same attack.</summary>
public sealed record RobustnessReport
{
    [JsonPropertyName("malicious_sites")] public required IReadOnlyList<string> MaliciousSites { get; init; }
    [JsonPropertyName("runs")] public required IReadOnlyList<RobustnessRun> Runs { get; init; }
}

/// <summary>The sections of <c>report.json</c> beyond the baselines: experiments a run may add.</summary>
internal sealed record SimulationExtras
{
    public IReadOnlyList<RejectedReport> Rejected { get; init; } = [];
    public ContributionReport? Contribution { get; init; }
    public RobustnessReport? Robustness { get; init; }
    public HierarchyReport? Hierarchy { get; init; }
    public AsyncReport? Async { get; init; }
    public CompressionReport? Compression { get; init; }
}

/// <summary>The <c>compression</c> section: bytes and quality of the compressed run against the same run in float32.</summary>
public sealed record CompressionReport
{
    [JsonPropertyName("encoding")] public required string Encoding { get; init; }
    /// <summary>Top-k: the factor on the kept remainder (null without error feedback or for quantization).</summary>
    [JsonPropertyName("error_feedback_decay")] public double? ErrorFeedbackDecay { get; init; }
    /// <summary>Top-k: epochs of the refit of the chosen coordinates (0: none; null for quantization).</summary>
    [JsonPropertyName("refit_epochs")] public int? RefitEpochs { get; init; }
    /// <summary>Top-k: the dense encoding of the last round (null: top-k to the end, and for quantization).</summary>
    [JsonPropertyName("final_round_encoding")] public string? FinalRoundEncoding { get; init; }
    /// <summary>Payload bytes the sites sent (compressed), over the whole federation.</summary>
    [JsonPropertyName("payload_bytes")] public long PayloadBytes { get; init; }
    /// <summary>What the same updates take as float32 payloads.</summary>
    [JsonPropertyName("float32_payload_bytes")] public long Float32PayloadBytes { get; init; }
    [JsonPropertyName("payload_ratio")] public double PayloadRatio { get; init; }
    /// <summary>Whole update files (header included), compressed run and float32 run.</summary>
    [JsonPropertyName("file_bytes")] public long FileBytes { get; init; }
    [JsonPropertyName("uncompressed_file_bytes")] public long UncompressedFileBytes { get; init; }
    [JsonPropertyName("auroc")] public required IReadOnlyDictionary<string, double> Auroc { get; init; }
    [JsonPropertyName("uncompressed_auroc")] public required IReadOnlyDictionary<string, double> UncompressedAuroc { get; init; }
    /// <summary>Largest |compressed − uncompressed| final test AUROC over the sites.</summary>
    [JsonPropertyName("max_abs_auroc_diff")] public double MaxAbsAurocDiff { get; init; }
    /// <summary>Per round: the encoding the sites used, their payload bytes, and the mean test AUROC of both runs.</summary>
    [JsonPropertyName("rounds")] public required IReadOnlyList<CompressedRoundReport> Rounds { get; init; }

    private static double? MeanAuroc(IReadOnlyList<RoundResult> rounds, int round)
    {
        var values = rounds.FirstOrDefault(x => x.Round == round)?.Auroc.Values.Where(double.IsFinite).ToList();
        return values is { Count: > 0 } ? Math.Round(values.Average(), 6) : null;
    }

    internal static CompressionReport Build(Compression.CompressionSpec spec, FederationOutcome compressed, FederationOutcome plain)
    {
        var a = compressed.Rounds[^1].Auroc;
        var b = plain.Rounds[^1].Auroc;
        var diffs = a.Keys.Select(k => Math.Abs(a[k] - b[k])).Where(double.IsFinite).ToList();
        return new CompressionReport
        {
            Encoding = spec.ToString(),
            ErrorFeedbackDecay = spec.Encoding == UpdatePayloadEncodings.TopK && spec.ErrorFeedback ? spec.FeedbackDecay : null,
            RefitEpochs = spec.Encoding == UpdatePayloadEncodings.TopK ? spec.RefitEpochs : null,
            FinalRoundEncoding = spec.Encoding == UpdatePayloadEncodings.TopK ? spec.FinalEncoding : null,
            PayloadBytes = compressed.PayloadBytes, Float32PayloadBytes = compressed.Float32PayloadBytes,
            PayloadRatio = Math.Round((double)compressed.PayloadBytes / compressed.Float32PayloadBytes, 4),
            FileBytes = compressed.BytesPerSite.Values.Sum(), UncompressedFileBytes = plain.BytesPerSite.Values.Sum(),
            Auroc = a, UncompressedAuroc = b, MaxAbsAurocDiff = diffs.Count > 0 ? Math.Round(diffs.Max(), 6) : double.NaN,
            Rounds = compressed.CompressedRounds.Select(c => new CompressedRoundReport
            {
                Round = c.Round, Encoding = c.Encoding, PayloadBytes = c.PayloadBytes,
                MeanAuroc = MeanAuroc(compressed.Rounds, c.Round), UncompressedMeanAuroc = MeanAuroc(plain.Rounds, c.Round),
            }).ToList(),
        };
    }
}

/// <summary>One round of a compressed run (<c>compression.rounds</c>).</summary>
public sealed record CompressedRoundReport
{
    [JsonPropertyName("round")] public int Round { get; init; }
    /// <summary>int8, int4 or topk: top-k runs warm up with an 8-bit round and end with a dense round (CompressionSpec.ForRound).</summary>
    [JsonPropertyName("encoding")] public required string Encoding { get; init; }
    [JsonPropertyName("payload_bytes")] public long PayloadBytes { get; init; }
    [JsonPropertyName("mean_auroc")] public double? MeanAuroc { get; init; }
    [JsonPropertyName("uncompressed_mean_auroc")] public double? UncompressedMeanAuroc { get; init; }
}

/// <summary>One round of a compressed run as the federated loop saw it.</summary>
internal sealed record CompressedRound(int Round, string Encoding, long PayloadBytes);

/// <summary>Builds the <c>robustness</c> section from the clean, attacked and FedAvg-attacked runs.</summary>
internal static class RobustnessComparison
{
    public static RobustnessReport Build(IReadOnlyList<PreparedSite> sites, IReadOnlyList<SiteAttack> attacks,
        IReadOnlyList<(FederationVariant Variant, FederationOutcome Outcome)> runs)
    {
        var malicious = attacks.Select(a => a.Site).ToHashSet(StringComparer.Ordinal);
        var honest = sites.Select(s => s.Name).Where(n => !malicious.Contains(n)).ToList();
        var clean = runs.FirstOrDefault(r => r.Variant.Attacks.Count == 0).Outcome;
        var cleanFinal = clean?.Rounds[^1].Auroc;
        return new RobustnessReport
        {
            MaliciousSites = malicious.Order(StringComparer.Ordinal).ToList(),
            Runs = runs.Select(r =>
            {
                var final = r.Outcome.Rounds[^1].Auroc;
                return new RobustnessRun
                {
                    Name = r.Variant.Name, Strategy = r.Variant.Strategy,
                    Attacks = r.Variant.Attacks.Select(a => $"{a.Kind}:{a.Site}:{a.Factor.ToString(System.Globalization.CultureInfo.InvariantCulture)}").ToList(),
                    HonestAuroc = honest.ToDictionary(n => n, n => final[n]),
                    MaxHonestDropVsClean = r.Variant.Attacks.Count == 0 || cleanFinal is null ? null : Defined(honest.Select(n => cleanFinal[n] - final[n]))?.Max() is { } drop ? Math.Round(drop, 6) : null,
                    Rejected = r.Outcome.Rejected.Count,
                    MeanHonestAurocPerRound = r.Outcome.Rounds.Select(x => Defined(honest.Select(n => x.Auroc[n])) is { } v ? Math.Round(v.Average(), 6) : double.NaN).ToList(),
                };
            }).ToList(),
        };
    }

    /// <summary>The finite values (sites whose test split lacks a class have no AUROC), or null when there are none.</summary>
    private static List<double>? Defined(IEnumerable<double> values) => values.Where(double.IsFinite).ToList() is { Count: > 0 } v ? v : null;
}
