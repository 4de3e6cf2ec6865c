using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClinicalFed.Cdm.Quality;

/// <summary>One reason a site stands out from the others.</summary>
public sealed record QualityFlag(
    [property: JsonPropertyName("site")] string Site,
    [property: JsonPropertyName("metric")] string Metric,
    [property: JsonPropertyName("value")] double Value,
    [property: JsonPropertyName("others_median")] double OthersMedian,
    [property: JsonPropertyName("reason")] string Reason);

/// <summary>Thresholds of the federated data-quality check, validated when built.</summary>
public sealed record ComparisonOptions(
    [property: JsonPropertyName("prevalence_ratio")] double PrevalenceRatio = 2.0,
    [property: JsonPropertyName("prevalence_min_difference")] double PrevalenceMinDifference = 0.005,
    [property: JsonPropertyName("missing_difference")] double MissingDifference = 0.30,
    [property: JsonPropertyName("implausible_fraction")] double ImplausibleFraction = 0.01,
    [property: JsonPropertyName("age_median_difference")] double AgeMedianDifference = 10,
    [property: JsonPropertyName("male_fraction_difference")] double MaleFractionDifference = 0.15)
{
    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (PrevalenceRatio <= 1) e.Add("prevalence ratio must exceed 1");
        if (MissingDifference is <= 0 or >= 1) e.Add("missing difference must be in (0, 1)");
        if (ImplausibleFraction is <= 0 or >= 1) e.Add("implausible fraction must be in (0, 1)");
        if (AgeMedianDifference <= 0) e.Add("age median difference must be positive");
        if (MaleFractionDifference is <= 0 or >= 1) e.Add("male fraction difference must be in (0, 1)");
        return e;
    }
}

/// <summary>
/// The federated data-quality check hospitals run before training: each site's quality report (aggregates only)
/// is compared with the median of the other sites, and sites far from the rest are flagged — label prevalence,
/// missingness per measurement, implausible values, unit problems, age and sex mix.
/// </summary>
public sealed class QualityComparison
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("task")] public string Task { get; init; } = "";
    [JsonPropertyName("sites")] public IReadOnlyList<string> Sites { get; init; } = [];
    [JsonPropertyName("options")] public ComparisonOptions Options { get; init; } = new();
    [JsonPropertyName("flags")] public List<QualityFlag> Flags { get; } = [];
    [JsonPropertyName("outlier_sites")] public IReadOnlyList<string> OutlierSites => Flags.Select(f => f.Site).Distinct().Order().ToList();

    public static QualityComparison Compare(IReadOnlyList<QualityReport> reports, ComparisonOptions? options = null)
    {
        options ??= new ComparisonOptions();
        var errors = options.Validate();
        if (reports.Count < 2) errors = [.. errors, "at least two site reports are needed"];
        var tasks = reports.Select(r => r.Task).Distinct().ToList();
        if (tasks.Count > 1) errors = [.. errors, $"reports are for different tasks ({string.Join(", ", tasks)})"];
        var dup = reports.GroupBy(r => r.Site).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (dup.Count > 0) errors = [.. errors, $"site(s) given twice: {string.Join(", ", dup)}"];
        if (errors.Count > 0) throw new CdmException("quality --compare: " + string.Join("; ", errors));

        var c = new QualityComparison { Task = tasks[0], Sites = reports.Select(r => r.Site).ToList(), Options = options };
        for (int i = 0; i < reports.Count; i++)
        {
            var me = reports[i];
            var others = reports.Where((_, j) => j != i).ToList();
            double prevOthers = Median(others.Select(o => o.LabelPrevalence));
            if (Math.Abs(me.LabelPrevalence - prevOthers) >= options.PrevalenceMinDifference &&
                (me.LabelPrevalence > prevOthers * options.PrevalenceRatio || me.LabelPrevalence * options.PrevalenceRatio < prevOthers))
                c.Flags.Add(new(me.Site, "label_prevalence", me.LabelPrevalence, prevOthers, $"label prevalence differs from the others by more than {options.PrevalenceRatio}x"));
            foreach (var m in me.Measurements)
            {
                var peer = others.Select(o => o.Measurements.FirstOrDefault(x => x.Name == m.Name)).Where(x => x is not null).ToList();
                if (peer.Count == 0) continue;
                double miss = Median(peer.Select(p => p!.MissingFraction));
                if (Math.Abs(m.MissingFraction - miss) > options.MissingDifference)
                    c.Flags.Add(new(me.Site, $"missing_fraction:{m.Name}", m.MissingFraction, miss, $"{m.Name} missingness differs from the others by more than {options.MissingDifference:P0}"));
                double imp = Median(peer.Select(p => p!.ImplausibleFraction));
                if (m.ImplausibleFraction > options.ImplausibleFraction && m.ImplausibleFraction > 5 * imp)
                    c.Flags.Add(new(me.Site, $"implausible_fraction:{m.Name}", m.ImplausibleFraction, imp, $"{m.Name} has {m.ImplausibleFraction:P1} implausible values"));
                long unitProblems = m.UnitProblems.Values.Sum();
                if (unitProblems > 0)
                    c.Flags.Add(new(me.Site, $"unit_problems:{m.Name}", unitProblems, Median(peer.Select(p => (double)p!.UnitProblems.Values.Sum())),
                        $"{m.Name} has {unitProblems:N0} values in units that cannot be converted to {m.Unit} ({string.Join(", ", m.UnitProblems.Keys)})"));
            }
            if (me.AgeMedian is { } age && others.Where(o => o.AgeMedian is not null).Select(o => o.AgeMedian!.Value).ToList() is { Count: > 0 } oa && Math.Abs(age - Median(oa)) > options.AgeMedianDifference)
                c.Flags.Add(new(me.Site, "age_median", age, Median(oa), $"median age differs from the others by more than {options.AgeMedianDifference} years"));
            if (me.MaleFraction is { } mf && others.Where(o => o.MaleFraction is not null).Select(o => o.MaleFraction!.Value).ToList() is { Count: > 0 } om && Math.Abs(mf - Median(om)) > options.MaleFractionDifference)
                c.Flags.Add(new(me.Site, "male_fraction", mf, Median(om), $"male share differs from the others by more than {options.MaleFractionDifference:P0}"));
        }
        return c;
    }

    public static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToList();
        if (v.Count == 0) return double.NaN;
        return v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }

    public string ToJson() => JsonSerializer.Serialize(this, QualityReport.JsonOptions);

    public string ToText()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Federated data-quality check — task {Task}, sites {string.Join(", ", Sites)}");
        if (Flags.Count == 0) sb.AppendLine("  no site stands out");
        foreach (var f in Flags) sb.AppendLine($"  [{f.Site}] {f.Metric}: {f.Value:G4} vs others {f.OthersMedian:G4} — {f.Reason}");
        return sb.ToString();
    }
}
