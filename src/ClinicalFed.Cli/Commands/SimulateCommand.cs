using System.CommandLine;
using ClinicalFed.Cli.Simulation;
using Spectre.Console;

namespace ClinicalFed.Cli.Commands;

internal static class SimulateCommand
{
    public static Command Create()
    {
        var task = CliSupport.Required("--task", "sepsis or readmission.");
        var site = new Option<string[]>("--site") { Description = "A site: NAME=PATH, PATH being raw data with its shipped mapping (e.g. hospital_A.csv.gz), FHIR input, or a CDM folder; NAME=PATH:SELECTOR picks a mapping site (e.g. ER=diabetic_data.csv.gz:ER). Repeat per site.", Required = true, AllowMultipleArgumentsPerToken = true };
        var split = new Option<string[]>("--split") { Description = "NAME:K shards a site into K sub-sites (NAME1..NAMEK) by a hash of the patient id.", AllowMultipleArgumentsPerToken = true };
        var model = new Option<string>("--model") { Description = "logistic or trees.", DefaultValueFactory = _ => "logistic" };
        var treeMode = new Option<string>("--tree-mode") { Description = "bagging, cyclic or histogram (trees; histogram: every split chosen on the sum of the sites' gradient histograms, --rounds checkpoints).", DefaultValueFactory = _ => "bagging" };
        var strategy = new Option<string>("--strategy") { Description = "fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad; robust: median, trimmed-mean, krum, multi-krum, geomedian.", DefaultValueFactory = _ => "fedavg" };
        var rounds = new Option<int>("--rounds") { Description = "Federated rounds.", DefaultValueFactory = _ => 10 };
        var output = CliSupport.Required("--out", "Output folder: report.json, report.html, the federation's store and each site's work folder.");
        var epochs = new Option<int>("--epochs") { Description = "Local epochs per round (logistic).", DefaultValueFactory = _ => 1 };
        var baselineEpochs = new Option<int>("--baseline-epochs") { Description = "Epochs of the local-only and centralized baselines (logistic).", DefaultValueFactory = _ => 5 };
        var mu = new Option<double>("--mu") { Description = "FedProx proximal μ (with --strategy fedprox).", DefaultValueFactory = _ => 0.01 };
        var lr = new Option<double>("--learning-rate") { Description = "Initial local learning rate (cosine schedule).", DefaultValueFactory = _ => 0.05 };
        var seed = new Option<int>("--seed") { Description = "Seed of every random choice.", DefaultValueFactory = _ => 1 };
        var trees = new Option<int>("--trees") { Description = "Trees of the local-only and centralized ensembles (the federation grows about as many).", DefaultValueFactory = _ => 100 };
        var leaves = new Option<int>("--leaves") { Description = "Leaves per tree.", DefaultValueFactory = _ => 31 };
        var dpEpsilon = new Option<double?>("--dp-epsilon") { Description = "Record-level differential privacy at every site with this ε budget, the patient as the unit. Logistic: DP-SGD (Poisson sampling, clipping and noise per patient; σ calibrated per site from its patients, --dp-batch and epochs × rounds). Trees: noisy histograms (see --dp-patient-weight, --tree-depth)." };
        var dpDelta = new Option<double>("--dp-delta") { Description = "δ of every site's budget (with --dp-epsilon).", DefaultValueFactory = _ => 1e-5 };
        var dpClip = new Option<double>("--dp-clip") { Description = "Per-patient gradient clipping norm C (with --dp-epsilon).", DefaultValueFactory = _ => 1.0 };
        var dpBatch = new Option<int>("--dp-batch") { Description = "Expected patients per DP-SGD batch (with --dp-epsilon).", DefaultValueFactory = _ => 1024 };
        var dpUnitGradient = new Option<string>("--dp-patient-gradient") { Description = "How a patient's rows form the gradient that is clipped (with --dp-epsilon): mean or sum.", DefaultValueFactory = _ => "mean" };
        var dpNoise = new Option<double?>("--dp-noise") { Description = "Fix the noise multiplier σ instead of calibrating it (with --dp-epsilon; the budget is still enforced)." };
        var secureAggregation = new Option<bool>("--secure-aggregation") { Description = "Secure aggregation (pairwise additive masking, SecAgg+): the aggregator sees only masked vectors and their sum (logistic)." };
        var secaggDropout = new Option<int>("--secagg-dropout") { Description = "With --secure-aggregation: K sites drop out after masking in the middle round; the round still completes.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("simulate", "Simulate a federation of N sites in one process over the folder store: local-only, centralized, federated and personalized models on each site's protocol test split; report.json and report.html.")
            { task, site, split, model, treeMode, strategy, rounds, output, epochs, baselineEpochs, mu, lr, seed, trees, leaves, dpEpsilon, dpDelta, dpClip, dpBatch, dpNoise, dpUnitGradient, secureAggregation, secaggDropout };
        SimulateExperimentOptions.AddTo(cmd);
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var console = CliSupport.Console();
            var splits = new Dictionary<string, int>();
            foreach (var s in pr.GetValue(split) ?? [])
            {
                var parts = s.Split(':');
                if (parts.Length != 2 || !int.TryParse(parts[1], out var k)) throw new ArgumentException($"--split '{s}': expected NAME:K");
                splits[parts[0]] = k;
            }
            var o = new SimulationOptions
            {
                Task = pr.GetValue(task)!, Sites = (pr.GetValue(site) ?? []).Select(SiteSource.Parse).ToList(), Splits = splits,
                Model = pr.GetValue(model)!, TreeMode = pr.GetValue(treeMode)!, Strategy = pr.GetValue(strategy)!, Rounds = pr.GetValue(rounds),
                OutputDirectory = pr.GetValue(output)!, LocalEpochs = pr.GetValue(epochs), BaselineEpochs = pr.GetValue(baselineEpochs),
                ProximalMu = pr.GetValue(mu), LearningRate = pr.GetValue(lr), Seed = pr.GetValue(seed), Trees = pr.GetValue(trees), Leaves = pr.GetValue(leaves),
                DpEpsilon = pr.GetValue(dpEpsilon), DpDelta = pr.GetValue(dpDelta), DpClipNorm = pr.GetValue(dpClip), DpBatchSize = pr.GetValue(dpBatch), DpNoiseMultiplier = pr.GetValue(dpNoise), DpPatientGradient = pr.GetValue(dpUnitGradient)!,
                SecureAggregation = pr.GetValue(secureAggregation), SecAggDropout = pr.GetValue(secaggDropout),
            };
            var report = Run(SimulateExperimentOptions.Apply(pr, o));
            Summarize(console, report, o.OutputDirectory);
            return 0;
        }));
        return cmd;
    }

    internal static SimulationReport Run(SimulationOptions o)
    {
        if (!CliSupport.Interactive) return SimulationRunner.Run(o);
        SimulationReport report = null!;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn()).Start(ctx =>
        {
            var tasks = new Dictionary<string, ProgressTask>();
            report = SimulationRunner.Run(o, (label, f) =>
            {
                if (!tasks.TryGetValue(label, out var t)) tasks[label] = t = ctx.AddTask(Markup.Escape(label), maxValue: 1.0);
                t.Value = f;
            });
            foreach (var t in tasks.Values) t.Value = 1;
        });
        return report;
    }

    internal static void Summarize(IAnsiConsole console, SimulationReport r, string outputDirectory)
    {
        var table = new Table().Title($"{r.Task}, {r.Model}, {r.Strategy}, {r.Rounds.Count} rounds — test AUROC (AUPRC)")
            .AddColumns("site", "test rows", "local", "centralized", "federated", "personalized", "personalization");
        static string F(double? a, double? p) => a is null ? "—" : $"{a:F4} ({p:F3})";
        foreach (var s in r.Sites)
            table.AddRow(s.Name, s.TestRows.ToString("N0"), F(s.Auroc.Local, s.Auprc.Local), F(s.Auroc.Centralized, s.Auprc.Centralized),
                F(s.Auroc.Federated, s.Auprc.Federated), F(s.Auroc.Personalized, s.Auprc.Personalized), Markup.Escape(s.Personalization?.Detail ?? "—"));
        console.Write(table);
        console.MarkupLineInterpolated($"bytes uploaded {r.BytesUploaded.Total:N0}; seconds: {string.Join(", ", r.Seconds.Select(kv => $"{kv.Key} {kv.Value:F1}"))}");
        console.MarkupLineInterpolated($"report: {Path.Combine(Path.GetFullPath(outputDirectory), "report.json")} and report.html");
    }
}
