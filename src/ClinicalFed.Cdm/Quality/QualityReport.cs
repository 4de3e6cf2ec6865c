using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;

namespace ClinicalFed.Cdm.Quality;

/// <summary>Per measurement quality: missingness, implausible values and unit problems (aggregates only).</summary>
public sealed record MeasurementQualityEntry
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("unit")] public string? Unit { get; init; }
    [JsonPropertyName("plausible_min")] public double? PlausibleMin { get; init; }
    [JsonPropertyName("plausible_max")] public double? PlausibleMax { get; init; }
    [JsonPropertyName("observations")] public long Observations { get; init; }
    /// <summary>Fraction of rows (ICU hours or encounters) in which the measurement was not taken.</summary>
    [JsonPropertyName("missing_fraction")] public double MissingFraction { get; init; }
    [JsonPropertyName("implausible")] public long Implausible { get; init; }
    [JsonPropertyName("implausible_fraction")] public double ImplausibleFraction { get; init; }
    [JsonPropertyName("unit_problems")] public IReadOnlyDictionary<string, long> UnitProblems { get; init; } = new Dictionary<string, long>();
    [JsonPropertyName("unit_missing")] public long UnitMissing { get; init; }
    [JsonPropertyName("unit_converted")] public long UnitConverted { get; init; }
}

/// <summary>A count that is withheld when it is small (it could single out a patient), with the threshold used.</summary>
public sealed record BinCount([property: JsonPropertyName("bin")] string Bin, [property: JsonPropertyName("count")] long? Count, [property: JsonPropertyName("suppressed")] bool Suppressed = false);

/// <summary>
/// <c>quality-report.json</c>: a site's data-quality report — aggregates only, safe to share with the other sites for
/// the federated check (<see cref="QualityComparison"/>). Schema: <c>schemas/quality-report.schema.json</c>.
/// </summary>
public sealed class QualityReport
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("site")] public string Site { get; set; } = "";
    [JsonPropertyName("task")] public string Task { get; set; } = "";
    [JsonPropertyName("feature_spec_id")] public string FeatureSpecId { get; set; } = "";
    [JsonPropertyName("feature_spec_version")] public string FeatureSpecVersion { get; set; } = "";
    [JsonPropertyName("generated_at")] public DateTimeOffset GeneratedAt { get; set; }
    [JsonPropertyName("resources")] public Dictionary<string, long> Resources { get; } = [];
    [JsonPropertyName("patients")] public long Patients { get; set; }
    [JsonPropertyName("encounters")] public long Encounters { get; set; }
    [JsonPropertyName("rows")] public long Rows { get; set; }
    [JsonPropertyName("positives")] public long Positives { get; set; }
    [JsonPropertyName("label_prevalence")] public double LabelPrevalence { get; set; }
    [JsonPropertyName("positive_encounters")] public long PositiveEncounters { get; set; }
    [JsonPropertyName("encounter_prevalence")] public double EncounterPrevalence { get; set; }
    [JsonPropertyName("excluded")] public IReadOnlyDictionary<string, long> Excluded { get; set; } = new Dictionary<string, long>();
    [JsonPropertyName("conversion_rejected")] public long ConversionRejected { get; set; }
    [JsonPropertyName("conversion_rejected_by_kind")] public IReadOnlyDictionary<string, long> ConversionRejectedByKind { get; set; } = new Dictionary<string, long>();
    [JsonPropertyName("measurements")] public List<MeasurementQualityEntry> Measurements { get; } = [];
    [JsonPropertyName("column_missing_fraction")] public IReadOnlyDictionary<string, double> ColumnMissingFraction { get; set; } = new Dictionary<string, double>();
    [JsonPropertyName("min_cell_count")] public int MinCellCount { get; set; }
    [JsonPropertyName("age_distribution")] public List<BinCount> AgeDistribution { get; } = [];
    [JsonPropertyName("age_median")] public double? AgeMedian { get; set; }
    [JsonPropertyName("sex_distribution")] public List<BinCount> SexDistribution { get; } = [];
    [JsonPropertyName("male_fraction")] public double? MaleFraction { get; set; }

    // Populate: measurements, resources and the distributions are get-only, so Read must fill them rather than skip them.
    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, PreferredObjectCreationHandling = JsonObjectCreationHandling.Populate };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static QualityReport Read(string path)
    {
        try { return JsonSerializer.Deserialize<QualityReport>(File.ReadAllText(path), JsonOptions) ?? throw new CdmException($"{path}: empty quality report"); }
        catch (JsonException e) { throw new CdmException($"{path}: not a quality report: {e.Message}", e); }
    }

    private static readonly (string Bin, double Lo, double Hi)[] AgeBins =
        [("0-17", 0, 18), ("18-29", 18, 30), ("30-39", 30, 40), ("40-49", 40, 50), ("50-59", 50, 60), ("60-69", 60, 70), ("70-79", 70, 80), ("80-89", 80, 90), ("90+", 90, 1000)];

    /// <summary>Builds the report from a CDM folder. Counts below <paramref name="minCellCount"/> in the demographic
    /// distributions are withheld.</summary>
    /// <param name="summary">The summary of a feature extraction already run on this CDM with the task's shipped
    /// spec (saves extracting again); null to extract here.</param>
    public static QualityReport Build(string cdmDirectory, string? task = null, string? site = null, int minCellCount = 5, Action<double>? progress = null, TimeProvider? time = null, FeatureSummary? summary = null)
    {
        var store = new CdmStore(cdmDirectory);
        var convert = ConversionReport.Read(Path.Combine(cdmDirectory, CdmWriter.ReportFileName));
        var encounters = store.Encounters();
        task ??= encounters.Any(e => e.IsIcuStay) ? "sepsis" : "readmission";
        var spec = FeatureSpec.Load(task);
        if (summary is not null && (summary.FeatureSpecId != spec.Id || summary.FeatureSpecVersion != spec.Version))
            throw new CdmException($"the feature summary is for {summary.FeatureSpecId} {summary.FeatureSpecVersion}, the quality report uses {spec.Id} {spec.Version}");
        summary ??= FeatureExtraction.Extract(spec, store, null, progress);
        var r = new QualityReport
        {
            Site = site ?? convert.Site, Task = task, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version,
            GeneratedAt = (time ?? TimeProvider.System).GetUtcNow(),
            Rows = summary.Rows, Positives = summary.Positives, LabelPrevalence = Math.Round(summary.Prevalence, 6),
            PositiveEncounters = summary.PositiveEncounters, Encounters = encounters.Count,
            EncounterPrevalence = summary.Encounters == 0 ? 0 : Math.Round((double)summary.PositiveEncounters / summary.Encounters, 6),
            Excluded = summary.Excluded, ConversionRejected = convert.RejectedTotal, ConversionRejectedByKind = convert.RejectedByKind,
            ColumnMissingFraction = summary.ColumnMissingFraction, MinCellCount = minCellCount,
        };
        foreach (var (k, v) in convert.ResourcesWritten) r.Resources[k] = v;
        foreach (var m in summary.Measurements)
        {
            var sm = spec.Measurements.First(x => x.Name == m.Name);
            long total = m.Used + m.Implausible + m.UnitProblems.Values.Sum();
            r.Measurements.Add(new MeasurementQualityEntry
            {
                Name = m.Name, Unit = m.Unit,
                PlausibleMin = double.IsFinite(sm.PlausibleMin) ? sm.PlausibleMin : null, PlausibleMax = double.IsFinite(sm.PlausibleMax) ? sm.PlausibleMax : null,
                Observations = total, MissingFraction = Math.Round(1 - m.RowsMeasuredFraction, 6), Implausible = m.Implausible,
                ImplausibleFraction = total == 0 ? 0 : Math.Round((double)m.Implausible / total, 6),
                UnitProblems = m.UnitProblems, UnitMissing = m.UnitMissing, UnitConverted = m.UnitConverted,
            });
        }
        // Demographics: age at each patient's latest encounter, sex from Patient.gender.
        var patients = store.Patients();
        r.Patients = patients.Count;
        var lastStart = encounters.Where(e => e.Start is not null).GroupBy(e => e.PatientId).ToDictionary(g => g.Key, g => g.Max(e => e.Start!.Value));
        var ages = new List<double>();
        foreach (var p in patients)
            if (p.BirthDate is { } bd && lastStart.TryGetValue(p.Id, out var s))
                ages.Add((s.UtcDateTime - bd.ToDateTime(TimeOnly.MinValue)).TotalDays / 365.25);
        ages.Sort();
        r.AgeMedian = ages.Count == 0 ? null : Math.Round(ages[ages.Count / 2], 1);
        foreach (var (bin, lo, hi) in AgeBins) r.AgeDistribution.Add(Cell(bin, ages.Count(a => a >= lo && a < hi), minCellCount));
        r.AgeDistribution.Add(Cell("unknown", patients.Count - ages.Count, minCellCount));
        foreach (var g in new[] { "female", "male", "other", "unknown" })
            r.SexDistribution.Add(Cell(g, patients.Count(p => (p.Gender ?? "unknown") == g), minCellCount));
        long known = patients.Count(p => p.Gender is "male" or "female");
        r.MaleFraction = known == 0 ? null : Math.Round((double)patients.Count(p => p.Gender == "male") / known, 4);
        return r;
    }

    private static BinCount Cell(string bin, long count, int k) => count > 0 && count < k ? new BinCount(bin, null, true) : new BinCount(bin, count);

    /// <summary>A readable text version for the site's data team.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Data quality — site {Site}, task {Task} ({FeatureSpecId} {FeatureSpecVersion})");
        sb.AppendLine($"  patients {Patients:N0}, encounters {Encounters:N0}, rows {Rows:N0}, positives {Positives:N0} (prevalence {LabelPrevalence:P2}; per stay {EncounterPrevalence:P2})");
        sb.AppendLine($"  resources: {string.Join(", ", Resources.Select(kv => $"{kv.Key} {kv.Value:N0}"))}");
        if (ConversionRejected > 0) sb.AppendLine($"  conversion rejected {ConversionRejected:N0}: {string.Join(", ", ConversionRejectedByKind.Select(kv => $"{kv.Key} {kv.Value:N0}"))}");
        foreach (var (k, v) in Excluded) sb.AppendLine($"  excluded {k}: {v:N0}");
        sb.AppendLine($"  age median {AgeMedian?.ToString("F1") ?? "n/a"}; male {MaleFraction?.ToString("P1") ?? "n/a"}; age bins {string.Join(", ", AgeDistribution.Select(b => $"{b.Bin}:{(b.Suppressed ? "<" + MinCellCount : b.Count)}"))}");
        sb.AppendLine($"  {"measurement",-18} {"unit",-9} {"missing",8} {"obs",10} {"implausible",11} unit problems");
        foreach (var m in Measurements)
            sb.AppendLine($"  {m.Name,-18} {m.Unit,-9} {m.MissingFraction,8:P1} {m.Observations,10:N0} {m.Implausible,11:N0} {(m.UnitProblems.Count == 0 ? "" : string.Join(", ", m.UnitProblems.Select(kv => $"{kv.Key}:{kv.Value}")))}{(m.UnitMissing > 0 ? $" no unit:{m.UnitMissing}" : "")}");
        return sb.ToString();
    }
}
