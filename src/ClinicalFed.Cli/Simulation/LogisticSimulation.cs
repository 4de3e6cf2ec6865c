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
        var strategyOptions = StrategyFactory.ParseOptions(o.Strategy, o.Strategy == StrategyNames.FedProx
            ? new Dictionary<string, System.Text.Json.JsonElement> { ["proximal_mu"] = System.Text.Json.JsonSerializer.SerializeToElement(o.ProximalMu) }
            : null);
        // The sites' training settings travel in the manifest (client_ options), exactly as in a serverless federation.
        var strategySpec = StrategySpec.From(strategyOptions, PrivateSimulation.Settings(o, new ClientTrainingSettings
        {
            LocalEpochs = o.LocalEpochs, BatchSize = 256, LearningRate = o.LearningRate, L2 = o.L2, Seed = o.Seed,
        }).ToClientOptions());
        var client = ClientTrainingSettings.From(strategySpec);
        var aggregator = new RoundAggregator(store, time);
        var rounds = new List<RoundResult>();
        var bytesPerSite = sites.ToDictionary(s => s.Name, _ => 0L);
        var dp = new PrivateSimulation(o, sites, client);
        var fitMatrices = sites.Select(dp.Matrix).ToArray();
        LinearWeights global = LinearWeights.Zeros(d);
        // Signed updates, as site agents send them: one in-memory key per site, registered in the store's federation
        // document with require_signatures, so the aggregator verifies every update exactly as in a real federation.
        var signingKeys = sites.Select(_ => Privacy.Signing.SigningKeys.Create()).ToArray();
        using var disposeKeys = new Privacy.Signing.KeyRing(signingKeys);
        store.PutFederationAsync(new FederationConfig
        {
            Federation = SimulationRunner.Federation, Description = "clinicalfed simulate (in-process sites)",
            Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = d + 1, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version },
            Strategy = strategySpec, Rounds = o.Rounds, Quorum = sites.Count, RoundSeconds = 3600, Statistics = false, RequireSignatures = true,
            Sites = sites.Select((s, i) => new RegisteredSite
            {
                Name = s.Name, KeySha256 = Storage.Coordination.FederationCoordinator.HashKey(Guid.NewGuid().ToString("N")), Status = SiteStatuses.Active,
                RegisteredAt = time.GetUtcNow(), SigningPublicKey = Privacy.Signing.SigningKeys.PublicKeyBase64(signingKeys[i]),
            }).ToArray(),
            CreatedAt = time.GetUtcNow(),
        }, null).GetAwaiter().GetResult();
        double secAggSiteSeconds = 0, secAggAggregatorSeconds = 0;
        var secAggDropouts = new List<string>();
        for (int r = 0; r < o.Rounds; r++)
        {
            var roundWatch = Stopwatch.StartNew();
            var now = time.GetUtcNow();
            var manifest = new RoundManifest
            {
                Federation = SimulationRunner.Federation, Round = r, Strategy = strategySpec,
                Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = d + 1, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version },
                GlobalModel = r == 0 ? null : GlobalModelPath.Format(SimulationRunner.Federation, r - 1),
                Quorum = Math.Max(1, sites.Count - (o.SecureAggregation ? o.SecAggDropout : 0)), Sites = sites.Select(s => s.Name).ToList(), OpenedAt = now, Deadline = now.AddHours(1),
            };
            store.PutManifestAsync(manifest).GetAwaiter().GetResult();
            long roundBytes = 0;
            var secureInputs = new List<Storage.SecureAggregation.SecureSiteInput>();
            for (int i = 0; i < sites.Count; i++)
            {
                var (result, privacy) = dp.Train(fitMatrices[i], r == 0 ? null : global, client, r, i);
                var header = new UpdateHeader
                {
                    Federation = SimulationRunner.Federation, Round = r, Site = sites[i].Name, ExampleCount = sites[i].TrainRows,
                    ParameterKind = ParameterKinds.Full, Dimension = d + 1, CreatedAt = time.GetUtcNow(),
                    LocalMetrics = ClientTraining.LocalMetrics(result), Privacy = privacy,
                };
                var parameters = result.Weights.ToParameterVector();
                if (o.SecureAggregation)
                {
                    // Masked through the secure round below: no plain update file is written.
                    secureInputs.Add(new Storage.SecureAggregation.SecureSiteInput(sites[i].Name, parameters, sites[i].TrainRows, header.LocalMetrics));
                    progress?.Invoke($"round {r + 1}/{o.Rounds}", (i + 1.0) / (sites.Count + 1));
                    continue;
                }
                store.PutUpdateAsync(Privacy.Signing.UpdateSignature.Sign(header, parameters, signingKeys[i]), parameters).GetAwaiter().GetResult();
                long size = new FileInfo(store.FullPath(StoreLayout.Update(SimulationRunner.Federation, r, sites[i].Name))).Length;
                bytesPerSite[sites[i].Name] += size;
                roundBytes += size;
                progress?.Invoke($"round {r + 1}/{o.Rounds}", (i + 1.0) / (sites.Count + 1));
            }
            RoundOutcome outcome;
            if (o.SecureAggregation)
            {
                // Dropout: in the middle round the last K sites (ordinal) mask but never upload; their masks are removed from their Shamir-shared keys.
                var drop = r == o.Rounds / 2 && o.SecAggDropout > 0
                    ? sites.Select(s => s.Name).Order(StringComparer.Ordinal).TakeLast(o.SecAggDropout).ToHashSet(StringComparer.Ordinal) : null;
                var secure = Storage.SecureAggregation.InProcessSecureRound.RunAsync(store, manifest, secureInputs, drop, time: time).GetAwaiter().GetResult();
                outcome = secure.Outcome;
                secAggSiteSeconds += secure.SiteSeconds;
                secAggAggregatorSeconds += secure.AggregatorSeconds;
                if (secure.Dropped.Count > 0) secAggDropouts.Add($"round {r + 1}: {string.Join(", ", secure.Dropped)} dropped after masking; the round completed with the survivors");
                foreach (var s in secureInputs.Where(s => !secure.Dropped.Contains(s.Site)))
                {
                    long size = new FileInfo(store.FullPath(new Storage.SecureAggregation.SecAggStore(store, SimulationRunner.Federation, r).MaskedPath(s.Site))).Length;
                    bytesPerSite[s.Site] += size;
                    roundBytes += size;
                }
            }
            else outcome = aggregator.AggregateAsync(SimulationRunner.Federation, r, closeNow: true).GetAwaiter().GetResult();
            if (outcome.Status != RoundOutcomeStatus.Aggregated) throw new InvalidOperationException($"round {r}: {outcome.Status}: {outcome.Message}");
            var model = store.GetGlobalModelAsync(SimulationRunner.Federation, r).GetAwaiter().GetResult()
                        ?? throw new InvalidOperationException($"round {r}: no global model was written");
            global = LinearWeights.FromParameterVector(model.Parameters);
            var rr = new RoundResult { Round = r + 1, BytesUploaded = roundBytes, Seconds = Math.Round(roundWatch.Elapsed.TotalSeconds, 2) };
            foreach (var s in sites)
            {
                var (auroc, auprc, _) = SimulationRunner.Evaluate(SimulationRunner.Predict(global, s.TestX, d), s.TestY);
                rr.Auroc[s.Name] = auroc;
                rr.Auprc[s.Name] = auprc;
            }
            rounds.Add(rr);
            progress?.Invoke($"round {r + 1}/{o.Rounds}", 1);
        }
        seconds["federated"] = Math.Round(sw.Elapsed.TotalSeconds, 2);
        if (o.SecureAggregation)
        {
            seconds["secagg_site_masking"] = Math.Round(secAggSiteSeconds, 2);
            seconds["secagg_aggregator"] = Math.Round(secAggAggregatorSeconds, 2);
        }
        sw.Restart();

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
        return new SimulationRunner.RunResult(results, rounds, bytes, notes, dp.Report(client));
    }
}
