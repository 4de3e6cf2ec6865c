using System.Diagnostics;
using System.Text.Json;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Quality;
using ClinicalFed.Statistics;

namespace ClinicalFed.Cli.Demo;

/// <summary>Options of the demo, validated all at once.</summary>
public sealed record DemoOptions(string OutputDirectory, int PatientsPerSite = 800, int Seed = 20261123)
{
    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (string.IsNullOrWhiteSpace(OutputDirectory)) e.Add("--out: required");
        if (PatientsPerSite is < 50 or > 100_000) e.Add($"--patients: {PatientsPerSite} (expected 50 to 100000)");
        return e;
    }
}

/// <summary>What one demo site went through.</summary>
public sealed record DemoSite(string Name, int Patients, long Rows, long Positives, double Prevalence, long Observations, long Rejected, double HrMissing, double LactateMissing, long ImputedCells);

public sealed record DemoResult(string OutputDirectory, IReadOnlyList<DemoSite> Sites, QualityComparison Comparison, StatisticsSet Federated, IReadOnlyDictionary<string, double> Seconds);

/// <summary>
/// The site pipeline end to end on data the project generates itself: seeded synthetic ICU extracts for four
/// non-IID hospitals → FHIR CDM → data quality and the federated quality check → hourly sepsis features →
/// federated statistics (aggregates only) → local imputation with the agreed medians.
/// </summary>
public static class DemoRunner
{
    public static DemoResult Run(DemoOptions o, Action<string, double>? progress = null)
    {
        var errors = o.Validate();
        if (errors.Count > 0) throw new ArgumentException(string.Join("\n", errors));
        var root = Path.GetFullPath(o.OutputDirectory);
        Directory.CreateDirectory(root);
        string Dir(string name) => Path.Combine(root, name);
        var seconds = new Dictionary<string, double>();
        var sw = Stopwatch.StartNew();
        void Phase(string name) { seconds[name] = Math.Round(sw.Elapsed.TotalSeconds, 2); sw.Restart(); }

        var profiles = SyntheticIcuGenerator.DefaultSites(o.PatientsPerSite);
        Directory.CreateDirectory(Dir("ehr"));
        for (int i = 0; i < profiles.Count; i++)
        {
            SyntheticIcuGenerator.Generate(profiles[i], o.Seed + i, Path.Combine(Dir("ehr"), profiles[i].Name + ".csv.gz"));
            progress?.Invoke("generate EHR extracts", (i + 1.0) / profiles.Count);
        }
        Phase("generate");

        var reports = new List<QualityReport>();
        var stats = new List<StatisticsSet>();
        var convertReports = new List<ConversionReport>();
        var summaries = new List<FeatureSummary>();
        for (int i = 0; i < profiles.Count; i++)
        {
            var name = profiles[i].Name;
            var cdm = Path.Combine(Dir("cdm"), name);
            convertReports.Add(CdmConverter.Convert(new ConvertOptions(Path.Combine(Dir("ehr"), name + ".csv.gz"), name, cdm, "physionet2019"),
                f => progress?.Invoke($"convert {name}", f)));
            var features = Path.Combine(Dir("features"), name);
            var summary = FeatureExtraction.Run(new FeatureOptions("sepsis", cdm, features, name), f => progress?.Invoke($"features {name}", f));
            summaries.Add(summary);
            var q = QualityReport.Build(cdm, "sepsis", name, summary: summary);
            Directory.CreateDirectory(Dir("quality"));
            File.WriteAllText(Path.Combine(Dir("quality"), name + ".json"), q.ToJson());
            File.WriteAllText(Path.Combine(Dir("quality"), name + ".txt"), q.ToText());
            reports.Add(q);
            var s = SiteStatistics.Compute(features, name);
            Directory.CreateDirectory(Dir("stats"));
            File.WriteAllText(Path.Combine(Dir("stats"), name + ".json"), s.ToJson());
            stats.Add(s);
        }
        Phase("convert, features, quality, site statistics");

        var comparison = QualityComparison.Compare(reports);
        File.WriteAllText(Path.Combine(Dir("quality"), "compare.json"), comparison.ToJson());
        File.WriteAllText(Path.Combine(Dir("quality"), "compare.txt"), comparison.ToText());
        var federated = StatisticsSet.Merge(stats);
        File.WriteAllText(Path.Combine(Dir("stats"), "federated.json"), federated.ToJson());
        Phase("federated quality check and statistics");

        var sites = new List<DemoSite>();
        for (int i = 0; i < profiles.Count; i++)
        {
            var name = profiles[i].Name;
            var (_, filled) = SiteStatistics.Impute(Path.Combine(Dir("features"), name), federated, ImputationMethod.Median, Path.Combine(Dir("imputed"), name));
            var q = reports[i];
            sites.Add(new DemoSite(name, (int)q.Patients, summaries[i].Rows, summaries[i].Positives, summaries[i].Prevalence,
                convertReports[i].ResourcesWritten.GetValueOrDefault("Observation"), convertReports[i].RejectedTotal,
                q.Measurements.First(m => m.Name == "hr").MissingFraction, q.Measurements.First(m => m.Name == "lactate").MissingFraction, filled));
            progress?.Invoke("impute", (i + 1.0) / profiles.Count);
        }
        Phase("imputation");
        var result = new DemoResult(root, sites, comparison, federated, seconds);
        File.WriteAllText(Path.Combine(root, "demo-summary.json"), JsonSerializer.Serialize(new
        {
            format_version = 1,
            seed = o.Seed,
            patients_per_site = o.PatientsPerSite,
            sites = sites.Select(s => new { name = s.Name, patients = s.Patients, rows = s.Rows, positives = s.Positives, prevalence = Math.Round(s.Prevalence, 5), observations = s.Observations, rejected = s.Rejected, hr_missing = s.HrMissing, lactate_missing = s.LactateMissing, imputed_cells = s.ImputedCells }),
            quality_flags = comparison.Flags,
            federated_rows = federated.Rows,
            seconds,
        }, new JsonSerializerOptions { WriteIndented = true }));
        return result;
    }
}
