using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClinicalFed.Cli.Simulation;

/// <summary>One metric under the four protocol baselines (null when not run).</summary>
public sealed record BaselineMetrics
{
    [JsonPropertyName("local")] public double? Local { get; init; }
    [JsonPropertyName("centralized")] public double? Centralized { get; init; }
    [JsonPropertyName("federated")] public double? Federated { get; init; }
    [JsonPropertyName("personalized")] public double? Personalized { get; init; }

    /// <summary>Metrics that are undefined (a test split without both classes) become null.</summary>
    public static BaselineMetrics From(double local, double centralized, double federated, double personalized) => new()
    {
        Local = Defined(local), Centralized = Defined(centralized), Federated = Defined(federated), Personalized = Defined(personalized),
    };

    private static double? Defined(double v) => double.IsFinite(v) ? v : null;
}

public sealed record CalibrationBin(
    [property: JsonPropertyName("mean_predicted")] double MeanPredicted,
    [property: JsonPropertyName("observed")] double Observed,
    [property: JsonPropertyName("count")] long Count);

public sealed record SiteResult
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("train_rows")] public long TrainRows { get; init; }
    [JsonPropertyName("validation_rows")] public long ValidationRows { get; init; }
    [JsonPropertyName("test_rows")] public long TestRows { get; init; }
    [JsonPropertyName("test_positives")] public long TestPositives { get; init; }
    [JsonPropertyName("auroc")] public required BaselineMetrics Auroc { get; init; }
    [JsonPropertyName("auprc")] public required BaselineMetrics Auprc { get; init; }
    /// <summary>Which personalization won on the site's validation patients, and every candidate's validation AUROC.</summary>
    [JsonPropertyName("personalization")] public PersonalizationChoice? Personalization { get; init; }
    /// <summary>ROC curve points (false positive rate, true positive rate) per baseline, down-sampled.</summary>
    [JsonPropertyName("roc")] public Dictionary<string, double[][]> Roc { get; init; } = [];
    [JsonPropertyName("calibration")] public Dictionary<string, CalibrationBin[]> Calibration { get; init; } = [];
}

public sealed record PersonalizationChoice(
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("detail")] string Detail,
    [property: JsonPropertyName("validation_auroc")] IReadOnlyDictionary<string, double> ValidationAuroc);

public sealed record RoundResult
{
    [JsonPropertyName("round")] public int Round { get; init; }
    [JsonPropertyName("auroc")] public Dictionary<string, double> Auroc { get; init; } = [];
    [JsonPropertyName("auprc")] public Dictionary<string, double> Auprc { get; init; } = [];
    [JsonPropertyName("bytes_uploaded")] public long BytesUploaded { get; init; }
    [JsonPropertyName("seconds")] public double Seconds { get; init; }
}

public sealed record BytesUploaded
{
    [JsonPropertyName("total")] public long Total { get; init; }
    [JsonPropertyName("per_site")] public Dictionary<string, long> PerSite { get; init; } = [];
}

/// <summary><c>report.json</c> of <c>clinicalfed simulate</c> (schema: schemas/simulation-report.schema.json).</summary>
public sealed record SimulationReport
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("task")] public required string Task { get; init; }
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("tree_mode")] public string? TreeMode { get; init; }
    [JsonPropertyName("strategy")] public required string Strategy { get; init; }
    [JsonPropertyName("rounds_requested")] public int RoundsRequested { get; init; }
    [JsonPropertyName("seed")] public int Seed { get; init; }
    [JsonPropertyName("feature_spec")] public required string FeatureSpec { get; init; }
    [JsonPropertyName("sites")] public required IReadOnlyList<SiteResult> Sites { get; init; }
    [JsonPropertyName("rounds")] public required IReadOnlyList<RoundResult> Rounds { get; init; }
    [JsonPropertyName("bytes_uploaded")] public required BytesUploaded BytesUploaded { get; init; }
    [JsonPropertyName("seconds")] public required IReadOnlyDictionary<string, double> Seconds { get; init; }
    [JsonPropertyName("notes")] public IReadOnlyList<string> Notes { get; init; } = [];
    /// <summary>Differential privacy of the run (null without DP): mechanisms, what the aggregator sees, each site's budget.</summary>
    [JsonPropertyName("privacy")] public PrivacyReport? Privacy { get; init; }
    /// <summary>Updates the aggregator refused, with the round and the reason (empty when none).</summary>
    [JsonPropertyName("rejected")] public IReadOnlyList<RejectedReport> Rejected { get; init; } = [];
    /// <summary>Each site's contribution by federated evaluation (null when off, or not measurable: trees, secure aggregation, regions).</summary>
    [JsonPropertyName("contribution")] public ContributionReport? Contribution { get; init; }
    /// <summary>With --attack: the attacked run beside the clean run and FedAvg under the same attack.</summary>
    [JsonPropertyName("robustness")] public RobustnessReport? Robustness { get; init; }
    /// <summary>With --region: the regional aggregators and the difference from flat FedAvg.</summary>
    [JsonPropertyName("hierarchy")] public HierarchyReport? Hierarchy { get; init; }
    /// <summary>With --async-buffer: simulated time to the target AUROC, synchronous versus buffered asynchronous.</summary>
    [JsonPropertyName("async")] public AsyncReport? Async { get; init; }
    /// <summary>With --compress: payload and file bytes, and final AUROC against the same run in float32.</summary>
    [JsonPropertyName("compression")] public CompressionReport? Compression { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}

/// <summary>One site's differential-privacy budget and spend in a simulation.</summary>
public sealed record SitePrivacyReport
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("epsilon_spent")] public double EpsilonSpent { get; init; }
    [JsonPropertyName("epsilon_budget")] public double? EpsilonBudget { get; init; }
    [JsonPropertyName("delta")] public double Delta { get; init; }
    [JsonPropertyName("noise_multiplier")] public double NoiseMultiplier { get; init; }
    [JsonPropertyName("clip_norm")] public double ClipNorm { get; init; }
    [JsonPropertyName("sampling_rate")] public double SamplingRate { get; init; }
    [JsonPropertyName("steps")] public long Steps { get; init; }
    [JsonPropertyName("rounds")] public int Rounds { get; init; }
    [JsonPropertyName("patients")] public int Patients { get; init; }
}

/// <summary>The <c>privacy</c> section of <c>report.json</c>.</summary>
public sealed record PrivacyReport
{
    /// <summary>The privacy unit ("patient": all rows of one patient are one record).</summary>
    [JsonPropertyName("unit")] public required string Unit { get; init; }
    [JsonPropertyName("mechanisms")] public required IReadOnlyList<string> Mechanisms { get; init; }
    /// <summary>What the aggregator (and anyone reading the store) could see.</summary>
    [JsonPropertyName("aggregator_view")] public required string AggregatorView { get; init; }
    [JsonPropertyName("sites")] public required IReadOnlyList<SitePrivacyReport> Sites { get; init; }
    [JsonPropertyName("notes")] public IReadOnlyList<string> Notes { get; init; } = [];
    /// <summary>Site-level DP-FedAvg at the aggregator (null when off).</summary>
    [JsonPropertyName("site_level")] public SiteLevelPrivacyReport? SiteLevel { get; init; }
}

/// <summary>The <c>privacy.site_level</c> section: DP-FedAvg's clipping, noise and guarantee for any one site's participation.</summary>
public sealed record SiteLevelPrivacyReport
{
    [JsonPropertyName("mode")] public required string Mode { get; init; }
    [JsonPropertyName("clip_norm")] public double ClipNorm { get; init; }
    [JsonPropertyName("noise_multiplier")] public double NoiseMultiplier { get; init; }
    [JsonPropertyName("delta")] public double Delta { get; init; }
    [JsonPropertyName("sites_per_round")] public double SitesPerRound { get; init; }
    [JsonPropertyName("epsilon_per_round")] public required IReadOnlyList<double> EpsilonPerRound { get; init; }
    [JsonPropertyName("epsilon_total")] public double EpsilonTotal { get; init; }
}
