using System.Diagnostics;
using System.Text;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Simulation;

/// <summary>
/// Federated gradient-boosted trees (the project's second-order histogram booster, which can continue any ensemble):
/// <b>bagging</b> (each site trains its own ensemble; the global model is their example-weighted average) or
/// <b>cyclic boosting</b> (sites take turns adding trees fitted to the current ensemble's residuals on their rows).
/// Personalization adds local trees on top of the global ensemble, kept when they help on the site's validation patients.
/// </summary>
internal static class TreeSimulation
{
    public static SimulationRunner.RunResult Run(SimulationOptions o, IReadOnlyList<PreparedSite> sites, FeatureSpec spec, LocalFolderStore store,
        Dictionary<string, double> seconds, Action<string, double>? progress, TimeProvider time)
    {
        int d = sites[0].Width;
        int threads = Math.Max(1, Environment.ProcessorCount);
        var names = sites[0].Columns;
        TreeBoostingOptions Options(int trees, int seed) => new()
        {
            NumberOfTrees = trees, NumberOfLeaves = o.Leaves, LearningRate = 0.1, MinExamplesPerLeaf = 50, L2Regularization = 1.0,
            Seed = seed, NumberOfThreads = threads,
        };
        FeatureMatrix Matrix(PreparedSite s) => new(s.TrainX, d, s.TrainY);
        TreeEnsembleModel Start(IEnumerable<PreparedSite> ss) =>
            CyclicTreeBoosting.InitialModel(d, ss.Select(s => ((double)s.TrainY.Sum(), (double)s.TrainRows)), names.ToArray());
        float[] Predict(TreeEnsembleModel m, float[] x) => m.ScoreRows(x, d, threads).Select(z => (float)(1 / (1 + Math.Exp(-z)))).ToArray();

        var sw = Stopwatch.StartNew();
        var local = new TreeEnsembleModel[sites.Count];
        for (int i = 0; i < sites.Count; i++)
        {
            local[i] = GradientTreeBooster.Boost(Start([sites[i]]), Matrix(sites[i]), Options(o.Trees, o.Seed + i));
            progress?.Invoke("local-only baselines", (i + 1.0) / sites.Count);
        }
        seconds["local_only"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        sw.Restart();

        var (pooledX, pooledY) = PreparedSite.PoolTraining(sites);
        var centralized = GradientTreeBooster.Boost(Start(sites), new FeatureMatrix(pooledX, d, pooledY), Options(o.Trees, o.Seed + 999));
        pooledX = []; pooledY = [];
        progress?.Invoke("centralized baseline", 1);
        seconds["centralized"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        sw.Restart();

        var rounds = new List<RoundResult>();
        var bytesPerSite = sites.ToDictionary(s => s.Name, _ => 0L);
        TreeEnsembleModel global;
        void Record(int round, TreeEnsembleModel model, long bytes, double secs)
        {
            var rr = new RoundResult { Round = round, BytesUploaded = bytes, Seconds = Math.Round(secs, 2) };
            foreach (var s in sites)
            {
                var (auroc, auprc, _) = SimulationRunner.Evaluate(Predict(model, s.TestX), s.TestY);
                rr.Auroc[s.Name] = auroc;
                rr.Auprc[s.Name] = auprc;
            }
            rounds.Add(rr);
        }
        if (o.TreeMode == "bagging")
        {
            // One-shot: every site uploads its own ensemble (the local-only models), merged by example count.
            global = TreeBagging.Merge(sites.Select((s, i) => new SiteEnsemble(local[i], s.TrainRows)).ToList());
            long total = 0;
            for (int i = 0; i < sites.Count; i++) { long b = local[i].ToBytes().Length; bytesPerSite[sites[i].Name] += b; total += b; }
            Record(1, global, total, sw.Elapsed.TotalSeconds);
        }
        else
        {
            // Each turn adds trees fitted to the current ensemble's residuals; the trees per turn are chosen so the
            // whole federation grows about as many trees as a local model.
            int perTurn = Math.Max(1, o.Trees / Math.Max(1, o.Rounds * sites.Count / 2));
            global = Start(sites);
            for (int r = 0; r < o.Rounds; r++)
            {
                var roundWatch = Stopwatch.StartNew();
                long roundBytes = 0;
                for (int i = 0; i < sites.Count; i++)
                {
                    int before = global.Trees.Count;
                    global = GradientTreeBooster.Boost(global, Matrix(sites[i]), Options(perTurn, o.Seed + 1000 * r + i));
                    long b = global.ToBytes().Length - global.Prefix(before).ToBytes().Length; // the site uploads its new trees only
                    bytesPerSite[sites[i].Name] += b;
                    roundBytes += b;
                    progress?.Invoke($"cyclic round {r + 1}/{o.Rounds}", (i + 1.0) / sites.Count);
                }
                Record(r + 1, global, roundBytes, roundWatch.Elapsed.TotalSeconds);
            }
        }
        seconds["federated"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        sw.Restart();
        int lastRound = rounds.Count - 1;
        // Model files in the store: LightGBM model text, which ML.NET loads through LightGbm(Stream) as a normal model.
        ModelFile TreeModel(TreeEnsembleModel m, string? site, long examples) => ModelFile.FromOpaque(new ModelHeader
        {
            Federation = SimulationRunner.Federation, Round = lastRound, Site = site, Kind = ModelKinds.Trees, Dimension = d,
            FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version, Strategy = o.TreeMode, Sites = site is null ? sites.Select(x => x.Name).ToList() : [site],
            ExampleCount = examples, CreatedAt = time.GetUtcNow(),
        }, Encoding.UTF8.GetBytes(m.ToLightGbmModelText()), PayloadEncodings.LightGbmText);
        store.PutGlobalModelAsync(TreeModel(global, null, sites.Sum(x => (long)x.TrainRows))).GetAwaiter().GetResult();

        var results = new List<SiteResult>();
        for (int i = 0; i < sites.Count; i++)
        {
            var s = sites[i];
            var (valX, valY) = (s.ValidationX, s.ValidationY);
            var withLocal = GradientTreeBooster.Boost(global, Matrix(s), Options(Math.Max(5, o.Trees / 5), o.Seed + 31 * i));
            // Log-odds interpolations α·global + (1−α)·local (a two-model bagging merge).
            var candidates = new Dictionary<string, TreeEnsembleModel> { ["global"] = global, ["local trees on global"] = withLocal, ["local"] = local[i] };
            foreach (var a in new[] { 0.25, 0.5, 0.75 })
                candidates[$"interpolation α={a:0.##}"] = TreeBagging.Merge([new SiteEnsemble(global, a), new SiteEnsemble(local[i], 1 - a)]);
            bool both = valY.Any(y => y == 1) && valY.Any(y => y == 0);
            var validation = candidates.ToDictionary(kv => kv.Key, kv => both ? Math.Round(Metrics.Auroc(Predict(kv.Value, valX), valY), 6) : double.NaN);
            var best = validation.Where(kv => !double.IsNaN(kv.Value)).OrderByDescending(kv => kv.Value).Select(kv => kv.Key).FirstOrDefault() ?? "global";
            store.PutPersonalizedModelAsync(TreeModel(candidates[best], s.Name, s.TrainRows)).GetAwaiter().GetResult();
            var evals = new Dictionary<string, (double Auroc, double Auprc, BinaryMetrics Full)>
            {
                ["local"] = SimulationRunner.Evaluate(Predict(local[i], s.TestX), s.TestY),
                ["centralized"] = SimulationRunner.Evaluate(Predict(centralized, s.TestX), s.TestY),
                ["federated"] = SimulationRunner.Evaluate(Predict(global, s.TestX), s.TestY),
                ["personalized"] = SimulationRunner.Evaluate(Predict(candidates[best], s.TestX), s.TestY),
            };
            results.Add(new SiteResult
            {
                Name = s.Name, TrainRows = s.TrainRows, ValidationRows = s.ValidationY.Length, TestRows = s.TestRows, TestPositives = (long)s.TestY.Sum(),
                Auroc = BaselineMetrics.From(evals["local"].Auroc, evals["centralized"].Auroc, evals["federated"].Auroc, evals["personalized"].Auroc),
                Auprc = BaselineMetrics.From(evals["local"].Auprc, evals["centralized"].Auprc, evals["federated"].Auprc, evals["personalized"].Auprc),
                Personalization = new PersonalizationChoice(best switch { "local trees on global" => "local-trees", _ when best.StartsWith("interpolation", StringComparison.Ordinal) => "interpolation", _ => best },
                    best, validation.Where(kv => !double.IsNaN(kv.Value)).ToDictionary()),
                Roc = evals.ToDictionary(kv => kv.Key, kv => SimulationRunner.Roc(kv.Value.Full)),
                Calibration = evals.ToDictionary(kv => kv.Key, kv => SimulationRunner.Calibration(kv.Value.Full)),
            });
            progress?.Invoke("personalization", (i + 1.0) / sites.Count);
        }
        seconds["personalization_and_evaluation"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        var notes = new List<string>
        {
            "Every model trains on each site's training patients minus its validation patients (about 1 in 6); the validation patients only choose the personalization.",
            $"Trees: the project's second-order histogram booster, {o.Leaves} leaves, learning rate 0.1; local-only and centralized {o.Trees} trees; " +
            (o.TreeMode == "bagging" ? "bagging merges the sites' local ensembles weighted by example count (one exchange)." : $"cyclic boosting over {o.Rounds} rounds."),
            "Tree ensembles travel as ClinicalFed's compact ensemble encoding (TreeEnsembleModel.ToBytes); bytes_uploaded counts those bytes. Site ensembles are exchanged in-process, not yet through the store's update files; the global and personalized ensembles are written to the store as LightGBM model text.",
        };
        return new SimulationRunner.RunResult(results, rounds, new BytesUploaded { Total = bytesPerSite.Values.Sum(), PerSite = bytesPerSite }, notes);
    }
}
