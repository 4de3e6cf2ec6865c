using System.Diagnostics;
using System.Text.Json;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Quality;
using ClinicalFed.Cli.Simulation;

namespace ClinicalFed.Cli.Demo;

/// <summary>Options of the demo, validated all at once.</summary>
public sealed record DemoOptions(string OutputDirectory, int PatientsPerSite = 2000, int Seed = 20261123, int Rounds = 10)
{
    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (string.IsNullOrWhiteSpace(OutputDirectory)) e.Add("--out: required");
        if (PatientsPerSite is < 50 or > 100_000) e.Add($"--patients: {PatientsPerSite} (expected 50 to 100000)");
        if (Rounds is < 1 or > 200) e.Add($"--rounds: {Rounds} (expected 1 to 200)");
        return e;
    }
}

/// <summary>What one demo site went through.</summary>
public sealed record DemoSite(string Name, int Patients, long Rows, long Positives, double Prevalence, long Observations, long Rejected, double HrMissing, double LactateMissing);

public sealed record DemoResult(string OutputDirectory, IReadOnlyList<DemoSite> Sites, QualityComparison Comparison, SimulationReport Report, IReadOnlyDictionary<string, double> Seconds);

/// <summary>
/// ClinicalFed end to end on data the project generates itself: seeded synthetic ICU extracts for four non-IID
/// hospitals → FHIR CDM → data quality and the federated quality check → hourly sepsis features → federated
/// statistics (aggregates of training rows only) and local imputation → federated logistic regression with
/// local-only, centralized and personalized baselines → report.json and report.html.
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

        var convertReports = new List<ConversionReport>();
        foreach (var p in profiles)
            convertReports.Add(CdmConverter.Convert(new ConvertOptions(Path.Combine(Dir("ehr"), p.Name + ".csv.gz"), p.Name, Path.Combine(Dir("cdm"), p.Name), "physionet2019"),
                f => progress?.Invoke($"convert {p.Name}", f)));
        Phase("convert");

        var (report, prep) = SimulationRunner.RunWithPreparation(new SimulationOptions
        {
            Task = "sepsis", Sites = profiles.Select(p => new SiteSource(p.Name, Path.Combine(Dir("cdm"), p.Name), null)).ToList(),
            OutputDirectory = root, Rounds = o.Rounds, Seed = o.Seed,
        }, progress);
        Phase("features, federated statistics, imputation, training");

        var reports = new List<QualityReport>();
        Directory.CreateDirectory(Dir("quality"));
        foreach (var p in profiles)
        {
            var q = QualityReport.Build(prep.CdmDirectories[p.Name], "sepsis", p.Name, summary: prep.Summaries[p.Name]);
            File.WriteAllText(Path.Combine(Dir("quality"), p.Name + ".json"), q.ToJson());
            File.WriteAllText(Path.Combine(Dir("quality"), p.Name + ".txt"), q.ToText());
            reports.Add(q);
        }
        var comparison = QualityComparison.Compare(reports);
        File.WriteAllText(Path.Combine(Dir("quality"), "compare.json"), comparison.ToJson());
        File.WriteAllText(Path.Combine(Dir("quality"), "compare.txt"), comparison.ToText());
        Phase("quality and the federated quality check");

        var sites = profiles.Select((p, i) =>
        {
            var q = reports[i];
            var s = prep.Summaries[p.Name];
            return new DemoSite(p.Name, (int)q.Patients, s.Rows, s.Positives, s.Prevalence, convertReports[i].ResourcesWritten.GetValueOrDefault("Observation"),
                convertReports[i].RejectedTotal, q.Measurements.First(m => m.Name == "hr").MissingFraction, q.Measurements.First(m => m.Name == "lactate").MissingFraction);
        }).ToList();
        File.WriteAllText(Path.Combine(root, "demo-summary.json"), JsonSerializer.Serialize(new
        {
            format_version = 1,
            seed = o.Seed,
            patients_per_site = o.PatientsPerSite,
            sites = sites.Select(s => new { name = s.Name, patients = s.Patients, rows = s.Rows, positives = s.Positives, prevalence = Math.Round(s.Prevalence, 5), observations = s.Observations, rejected = s.Rejected, hr_missing = s.HrMissing, lactate_missing = s.LactateMissing }),
            quality_flags = comparison.Flags,
            auroc = report.Sites.ToDictionary(s => s.Name, s => s.Auroc),
            report = "report.json",
            seconds,
        }, SimulationReport.JsonOptions));
        return new DemoResult(root, sites, comparison, report, seconds);
    }
}
