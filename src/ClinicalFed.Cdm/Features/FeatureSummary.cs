using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClinicalFed.Cdm.Features;

/// <summary>Per measurement: how many observations fed the features and how many were set aside, and why.</summary>
public sealed class MeasurementQuality
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("unit")] public string? Unit { get; init; }
    [JsonPropertyName("observations_used")] public long Used { get; set; }
    [JsonPropertyName("implausible")] public long Implausible { get; set; }
    [JsonPropertyName("unit_problems")] public SortedDictionary<string, long> UnitProblems { get; } = new(StringComparer.Ordinal);
    [JsonPropertyName("unit_missing")] public long UnitMissing { get; set; }
    [JsonPropertyName("unit_converted")] public long UnitConverted { get; set; }
    [JsonPropertyName("outside_stay")] public long OutsideStay { get; set; }
    /// <summary>Rows (hours or encounters) in which the measurement was taken, as a fraction of all rows.</summary>
    [JsonPropertyName("rows_measured_fraction")] public double RowsMeasuredFraction { get; set; }
    [JsonPropertyName("minimum")] public double? Minimum { get; set; }
    [JsonPropertyName("maximum")] public double? Maximum { get; set; }
}

/// <summary><c>features-summary.json</c>: what the extraction produced (aggregates only).</summary>
public sealed class FeatureSummary
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("task")] public required string Task { get; init; }
    [JsonPropertyName("feature_spec_id")] public required string FeatureSpecId { get; init; }
    [JsonPropertyName("feature_spec_version")] public required string FeatureSpecVersion { get; init; }
    [JsonPropertyName("site")] public string Site { get; set; } = "";
    [JsonPropertyName("rows")] public long Rows { get; set; }
    [JsonPropertyName("positives")] public long Positives { get; set; }
    [JsonPropertyName("prevalence")] public double Prevalence { get; set; }
    [JsonPropertyName("patients")] public long Patients { get; set; }
    [JsonPropertyName("encounters")] public long Encounters { get; set; }
    [JsonPropertyName("positive_encounters")] public long PositiveEncounters { get; set; }
    [JsonPropertyName("excluded")] public SortedDictionary<string, long> Excluded { get; } = new(StringComparer.Ordinal);
    [JsonPropertyName("label_source")] public SortedDictionary<string, long> LabelSource { get; } = new(StringComparer.Ordinal);
    [JsonPropertyName("columns")] public required IReadOnlyList<string> Columns { get; init; }
    [JsonPropertyName("column_missing_fraction")] public Dictionary<string, double> ColumnMissingFraction { get; } = [];
    [JsonPropertyName("measurements")] public List<MeasurementQuality> Measurements { get; } = [];
    [JsonPropertyName("seconds")] public double Seconds { get; set; }

    public void Exclude(string reason) => Excluded[reason] = Excluded.GetValueOrDefault(reason) + 1;

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}
