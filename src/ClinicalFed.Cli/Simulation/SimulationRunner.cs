using System.Diagnostics;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Simulation;

/// <summary>
/// <c>clinicalfed simulate</c>: N sites in one process over the folder store. Each site prepares its own data, the
/// sites train locally and upload only parameters, the round aggregator combines them with the chosen strategy, and
/// every site evaluates on its own protocol test split. Baselines (local-only, centralized) and personalization run
/// beside the federation so the report compares them on the same rows.
/// </summary>
public static class SimulationRunner
{
    public const string Federation = "simulation";

    public static SimulationReport Run(SimulationOptions o, Action<string, double>? progress = null, TimeProvider? time = null) => RunWithPreparation(o, progress, time).Report;

    /// <summary>Runs the simulation and also returns the sites' preparation (feature summaries, CDM folders).</summary>
    public static (SimulationReport Report, SitePreparation.Result Preparation) RunWithPreparation(SimulationOptions o, Action<string, double>? progress = null, TimeProvider? time = null)
    {
        var errors = o.Validate();
        if (errors.Count > 0) throw new ArgumentException(string.Join("\n", errors));
        time ??= TimeProvider.System;
        var root = Path.GetFullPath(o.OutputDirectory);
        Directory.CreateDirectory(root);
        var storeRoot = Path.Combine(root, "store");
        if (Directory.Exists(storeRoot)) Directory.Delete(storeRoot, recursive: true); // a fresh federation per run
        var total = Stopwatch.StartNew();
        var prep = SitePreparation.Run(o.Task, o.Sites, o.Splits, Path.Combine(root, "work"), progress);
        var seconds = new Dictionary<string, double>(prep.Seconds.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 2)));
        var spec = FeatureSpec.Load(o.Task);
        var store = new LocalFolderStore(storeRoot);
        // The merged statistics beside the rounds, where a serverless federation keeps them: scoring (clinicalfed serve)
        // imputes and standardizes a bedside row with exactly these.
        store.PutFederatedStatisticsAsync(Federation, prep.Federated).GetAwaiter().GetResult();
        var run = o.Model == "logistic"
            ? LogisticSimulation.Run(o, prep.Sites, spec, store, seconds, progress, time)
            : TreeSimulation.Run(o, prep.Sites, spec, store, seconds, progress, time);
        seconds["total"] = Math.Round(total.Elapsed.TotalSeconds, 2);
        var report = new SimulationReport
        {
            Task = o.Task, Model = o.Model, TreeMode = o.Model == "trees" ? o.TreeMode : null,
            Strategy = o.Model == "trees" ? o.TreeMode switch { "cyclic" => StrategyNames.TreeCyclic, "histogram" => TreeSimulation.HistogramStrategy, _ => StrategyNames.TreeBagging } : o.Strategy,
            RoundsRequested = o.Rounds, Seed = o.Seed, FeatureSpec = $"{spec.Id} {spec.Version}",
            Sites = run.Sites, Rounds = run.Rounds, BytesUploaded = run.Bytes, Seconds = seconds, Notes = run.Notes, Privacy = run.Privacy,
            Rejected = run.Extras.Rejected, Contribution = run.Extras.Contribution, Robustness = run.Extras.Robustness, Hierarchy = run.Extras.Hierarchy, Async = run.Extras.Async,
            Compression = run.Extras.Compression,
        };
        File.WriteAllText(Path.Combine(root, "report.json"), report.ToJson());
        File.WriteAllText(Path.Combine(root, "report.html"), HtmlReport.Render(report));
        return (report, prep);
    }

    internal sealed record RunResult(IReadOnlyList<SiteResult> Sites, IReadOnlyList<RoundResult> Rounds, BytesUploaded Bytes, IReadOnlyList<string> Notes, PrivacyReport? Privacy = null)
    {
        public SimulationExtras Extras { get; init; } = new();
    }

    internal static float[] Predict(LinearWeights w, float[] x, int d)
    {
        int n = x.Length / d;
        var p = new float[n];
        for (int i = 0; i < n; i++) p[i] = (float)w.Probability(x.AsSpan(i * d, d));
        return p;
    }

    internal static (double Auroc, double Auprc, BinaryMetrics Full) Evaluate(float[] probabilities, float[] labels)
    {
        var m = Metrics.Evaluate(probabilities, labels);
        return (Math.Round(m.Auroc, 6), Math.Round(m.Auprc, 6), m);
    }

    internal static double[][] Roc(BinaryMetrics m) => m.Roc.Select(p => new[] { Math.Round(p.FalsePositiveRate, 5), Math.Round(p.TruePositiveRate, 5) }).ToArray();

    internal static CalibrationBin[] Calibration(BinaryMetrics m) =>
        m.Calibration.Select(b => new CalibrationBin(Math.Round(b.MeanPredicted ?? 0, 5), Math.Round(b.ObservedRate ?? 0, 5), b.Count)).ToArray();
}
