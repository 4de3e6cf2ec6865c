using System.Diagnostics;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Simulation;

/// <summary>Federated logistic regression with the project's proximal mini-batch optimizer, its baselines and
/// personalization (fine-tuning, and interpolation between the global and a local model chosen on validation).</summary>
internal static class LogisticSimulation
{
    public static SimulationRunner.RunResult Run(SimulationOptions o, IReadOnlyList<PreparedSite> sites, FeatureSpec spec, LocalFolderStore store,
        Dictionary<string, double> seconds, Action<string, double>? progress, TimeProvider time)
    {
        int d = sites[0].Width;
        var sw = Stopwatch.StartNew();
        ProximalSgdOptions Sgd(int epochs, double mu, int seed, double? lr = null) => new()
        {
            Epochs = epochs, BatchSize = 256, LearningRate = LearningRateSchedule.Cosine(lr ?? o.LearningRate), L2 = (float)o.L2,
            ProximalMu = (float)mu, Seed = seed,
        };
        FeatureMatrix Train(PreparedSite s) => new(s.TrainX, d, s.TrainY);

        // Local-only baselines.
        var local = new LinearWeights[sites.Count];
        for (int i = 0; i < sites.Count; i++)
        {
            local[i] = ProximalSgdOptimizer.Train(Train(sites[i]), null, Sgd(o.BaselineEpochs, 0, o.Seed + 17 * i)).Weights;
            progress?.Invoke("local-only baselines", (i + 1.0) / sites.Count);
        }
        seconds["local_only"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        sw.Restart();

        // Centralized baseline: the privacy-violating upper reference, on the union of the training rows.
        var (pooledX, pooledY) = PreparedSite.PoolTraining(sites);
        var centralized = ProximalSgdOptimizer.Train(new FeatureMatrix(pooledX, d, pooledY), null, Sgd(o.BaselineEpochs, 0, o.Seed + 999)).Weights;
        pooledX = []; pooledY = [];
        progress?.Invoke("centralized baseline", 1);
        seconds["centralized"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        sw.Restart();

        // Federation: manifests, uploads and aggregation through the store, exactly as the serverless path.
        var attacks = o.ParsedAttacks();
        var compression = o.ParsedCompression();
        var primary = FederatedLoop.Run(o, new FederationVariant("primary", SimulationRunner.Federation, o.Strategy, attacks, Primary: true) { Compression = compression },
            sites, spec, store, progress, time);
        var global = primary.Global;
        var rounds = primary.Rounds;
        var bytesPerSite = primary.BytesPerSite;
        var dp = primary.Privacy;
        var client = ClientTrainingSettings.From(store.GetManifestAsync(SimulationRunner.Federation, 0).GetAwaiter().GetResult()!.Strategy);
        var fitMatrices = sites.Select(dp.Matrix).ToArray(); // honest data: personalization happens at each site, on its own rows
        double secAggSiteSeconds = primary.SecAggSiteSeconds, secAggAggregatorSeconds = primary.SecAggAggregatorSeconds;
        var secAggDropouts = primary.Notes;
        seconds["federated"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        if (o.SecureAggregation)
        {
            seconds["secagg_site_masking"] = Math.Round(secAggSiteSeconds, 2);
            seconds["secagg_aggregator"] = Math.Round(secAggAggregatorSeconds, 2);
        }
        sw.Restart();

        // Robustness: the attacked run beside the clean federation (FedAvg, no attack) and plain FedAvg under the same attack.
        RobustnessReport? robustness = null;
        if (attacks.Count > 0 && o.CompareAttacks)
        {
            var runs = new List<(FederationVariant Variant, FederationOutcome Outcome)> { (new("attacked", SimulationRunner.Federation, o.Strategy, attacks, true), primary) };
            // The clean federated run: plain FedAvg with every site honest, the reference the attacked runs are held to.
            var clean = new FederationVariant("clean", SimulationRunner.Federation + "-clean", StrategyNames.FedAvg, [], false) { Compression = compression };
            runs.Insert(0, (clean, FederatedLoop.Run(o, clean, sites, spec, store, progress, time)));
            if (o.Strategy != StrategyNames.FedAvg)
            {
                var plain = new FederationVariant("fedavg-attacked", SimulationRunner.Federation + "-fedavg-attacked", StrategyNames.FedAvg, attacks, false) { Compression = compression };
                runs.Add((plain, FederatedLoop.Run(o, plain, sites, spec, store, progress, time)));
            }
            robustness = RobustnessComparison.Build(sites, attacks, runs);
            seconds["robustness_comparison"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
            sw.Restart();
        }

        // Compression: the same federation with float32 updates, for the report's comparison.
        CompressionReport? compressionReport = null;
        if (compression is not null)
        {
            var plainVariant = new FederationVariant("uncompressed", SimulationRunner.Federation + "-uncompressed", o.Strategy, attacks, false);
            var plain = FederatedLoop.Run(o, plainVariant, sites, spec, store, progress, time);
            compressionReport = CompressionReport.Build(compression, primary, plain);
            seconds["compression_comparison"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
            sw.Restart();
        }

        AsyncReport? asyncReport = null;
        if (o.AsyncBuffer is { } buffer)
        {
            asyncReport = AsyncComparison.Run(sites, fitMatrices, client, o.Rounds, o.ParsedSlow(), buffer, o.TargetAuroc, progress);
            seconds["async_comparison"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
            sw.Restart();
        }

        // Personalization, chosen on each site's own validation patients (carved from its training patients).
        var results = new List<SiteResult>();
        for (int i = 0; i < sites.Count; i++)
        {
            var s = sites[i];
            var (valX, valY) = (s.ValidationX, s.ValidationY);
            var fineTuned = ProximalSgdOptimizer.Train(fitMatrices[i], global, Sgd(1, 0.01, o.Seed + 37 * i, o.LearningRate / 5)).Weights;
            var candidates = new Dictionary<string, LinearWeights> { ["global"] = global, ["fine-tune"] = fineTuned, ["local"] = local[i] };
            foreach (var a in new[] { 0.25, 0.5, 0.75 }) candidates[$"interpolation α={a:0.##}"] = LinearWeights.Interpolate(local[i], global, (float)a);
            var validation = candidates.ToDictionary(kv => kv.Key, kv => valY.Any(y => y == 1) && valY.Any(y => y == 0)
                ? Math.Round(Metrics.Auroc(SimulationRunner.Predict(kv.Value, valX, d), valY), 6) : double.NaN);
            var best = validation.Where(kv => !double.IsNaN(kv.Value)).OrderByDescending(kv => kv.Value).Select(kv => kv.Key).FirstOrDefault() ?? "global";
            var personalized = candidates[best];

            var evals = new Dictionary<string, (double Auroc, double Auprc, BinaryMetrics Full)>
            {
                ["local"] = SimulationRunner.Evaluate(SimulationRunner.Predict(local[i], s.TestX, d), s.TestY),
                ["centralized"] = SimulationRunner.Evaluate(SimulationRunner.Predict(centralized, s.TestX, d), s.TestY),
                ["federated"] = SimulationRunner.Evaluate(SimulationRunner.Predict(global, s.TestX, d), s.TestY),
                ["personalized"] = SimulationRunner.Evaluate(SimulationRunner.Predict(personalized, s.TestX, d), s.TestY),
            };
            results.Add(new SiteResult
            {
                Name = s.Name, TrainRows = s.TrainRows, ValidationRows = s.ValidationY.Length, TestRows = s.TestRows, TestPositives = (long)s.TestY.Sum(),
                Auroc = BaselineMetrics.From(evals["local"].Auroc, evals["centralized"].Auroc, evals["federated"].Auroc, evals["personalized"].Auroc),
                Auprc = BaselineMetrics.From(evals["local"].Auprc, evals["centralized"].Auprc, evals["federated"].Auprc, evals["personalized"].Auprc),
                Personalization = new PersonalizationChoice(best.StartsWith("interpolation", StringComparison.Ordinal) ? "interpolation" : best, best,
                    validation.Where(kv => !double.IsNaN(kv.Value)).ToDictionary()),
                Roc = evals.ToDictionary(kv => kv.Key, kv => SimulationRunner.Roc(kv.Value.Full)),
                Calibration = evals.ToDictionary(kv => kv.Key, kv => SimulationRunner.Calibration(kv.Value.Full)),
            });
            // The site's personalized model file, beside the round's global model in the store.
            store.PutPersonalizedModelAsync(ModelFile.FromParameters(new ModelHeader
            {
                Federation = SimulationRunner.Federation, Round = o.Rounds - 1, Site = s.Name, Kind = ModelKinds.Logistic, Dimension = d + 1,
                FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version, Strategy = o.Strategy, Sites = [s.Name], ExampleCount = s.TrainRows,
                Metrics = validation.Where(kv => kv.Key == best && double.IsFinite(kv.Value)).ToDictionary(_ => "validation_auroc", kv => kv.Value),
                CreatedAt = time.GetUtcNow(),
            }, personalized.ToParameterVector())).GetAwaiter().GetResult();
            progress?.Invoke("personalization", (i + 1.0) / sites.Count);
        }
        seconds["personalization_and_evaluation"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        var bytes = new BytesUploaded { Total = bytesPerSite.Values.Sum(), PerSite = bytesPerSite };
        var notes = new List<string>
        {
            $"Optimizer: the project's proximal mini-batch SGD (batch 256, cosine learning rate from {o.LearningRate}, L2 {o.L2}); {o.LocalEpochs} local epoch(s) per round; baselines {o.BaselineEpochs} epochs.",
            "Imputation medians and standardization come from federated statistics of the sites' training rows (aggregates only).",
            "Every model trains on each site's training patients minus its validation patients (about 1 in 6); the validation patients only choose the personalization.",
        };
        if (o.SecureAggregation)
        {
            notes.Add("Secure aggregation (pairwise additive masking with ECDH P-256, AES-CTR masks, fixed point in Z/2^32, Shamir-shared keys and self masks; " +
                "threshold a strict majority): the aggregator saw only masked vectors (secagg/masked/*.cfm32) and the unmasked sum of the survivors; no plain update file was written. " +
                $"Sites' masking work: {secAggSiteSeconds:F3} s in total; aggregator unmasking: {secAggAggregatorSeconds:F3} s.");
            notes.AddRange(secAggDropouts);
        }
        return new SimulationRunner.RunResult(results, rounds, bytes, notes, SiteLevelPrivacy.Merge(dp.Report(client), primary.SiteDp, sites, o.Rounds))
        {
            Extras = new SimulationExtras
            {
                Rejected = primary.Rejected, Contribution = primary.Contribution, Robustness = robustness, Hierarchy = primary.Hierarchy, Async = asyncReport,
                Compression = compressionReport,
            },
        };
    }
}
