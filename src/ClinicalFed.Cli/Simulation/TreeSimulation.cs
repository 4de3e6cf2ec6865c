using System.Diagnostics;
using System.Text;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Privacy.SecureAggregation;
using ClinicalFed.Storage;
using ClinicalFed.Trees;

namespace ClinicalFed.Cli.Simulation;

/// <summary>
/// Federated gradient-boosted trees (the project's second-order histogram booster, which can continue any ensemble):
/// <b>bagging</b> (each site trains its own ensemble; the global model is their example-weighted average) or
/// <b>cyclic boosting</b> (sites take turns adding trees fitted to the current ensemble's residuals on their rows).
/// Every exchange goes through the store as the serverless path will: a round manifest, one tree-ensemble update file
/// per site, the round aggregator (strategy <c>tree-bagging</c>, or <c>tree-cyclic</c> with one round per site turn)
/// and the global model file, which the sites read back. Personalization adds local trees on top of the global
/// ensemble, kept when they help on the site's validation patients.
/// </summary>
internal static class TreeSimulation
{
    /// <summary>The strategy named in the report, the round-0 manifest and the global model's header for
    /// <c>--tree-mode histogram</c>. Not a strategy of the round aggregator: <c>federation create</c> does not offer it
    /// and the serverless aggregator does not run it.</summary>
    public const string HistogramStrategy = "tree-histogram";

    public static SimulationRunner.RunResult Run(SimulationOptions o, IReadOnlyList<PreparedSite> sites, FeatureSpec spec, LocalFolderStore store,
        Dictionary<string, double> seconds, Action<string, double>? progress, TimeProvider time)
    {
        int d = sites[0].Width;
        int threads = Math.Max(1, Environment.ProcessorCount);
        var names = sites[0].Columns;
        // The site agent's settings of a tree federation (the same booster options), with simulate's --leaves.
        var client = TreeSettings.From(o);
        TreeBoostingOptions Options(int trees, int seed) => client.Boosting(trees, seed, threads);
        FeatureMatrix Matrix(PreparedSite s) => new(s.TrainX, d, s.TrainY);
        TreeEnsembleModel Start(IEnumerable<PreparedSite> ss) =>
            CyclicTreeBoosting.InitialModel(d, ss.Select(s => ((double)s.TrainY.Sum(), (double)s.TrainRows)), names.ToArray());
        float[] Predict(TreeEnsembleModel m, float[] x) => m.ScoreRows(x, d, threads).Select(z => (float)(1 / (1 + Math.Exp(-z)))).ToArray();

        PrivacyReport? privacy = null;
        IReadOnlyList<RejectedReport> rejected = [];
        ContributionReport? contribution = null;
        double contributionSeconds = 0;
        var attacks = o.ParsedAttacks().ToDictionary(a => a.Site, StringComparer.Ordinal);
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
        var aggregator = new RoundAggregator(store, time);
        var strategy = StrategySpec.From(o.TreeMode == "bagging" ? new TreeBaggingOptions() : new TreeCyclicOptions());
        int storeRounds = 0;
        // One round of the store: the sites upload their ensembles, the aggregator closes the round, and the global
        // ensemble is read back from the store. Returns it and the bytes of the update files.
        (TreeEnsembleModel Global, long Bytes) StoreRound(IReadOnlyList<(PreparedSite Site, TreeEnsembleModel Ensemble)> uploads)
        {
            int round = storeRounds++;
            var now = time.GetUtcNow();
            store.PutManifestAsync(new RoundManifest
            {
                Federation = SimulationRunner.Federation, Round = round, Strategy = strategy,
                Model = new ModelSpec { Kind = ModelKinds.Trees, Dimension = d, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version },
                GlobalModel = round == 0 ? null : GlobalModelPath.Format(SimulationRunner.Federation, round - 1),
                Quorum = uploads.Count, Sites = uploads.Select(u => u.Site.Name).ToList(), OpenedAt = now, Deadline = now.AddHours(1),
            }).GetAwaiter().GetResult();
            long bytes = 0;
            foreach (var (site, ensemble) in uploads)
            {
                using var file = new MemoryStream();
                UpdateFile.Write(file, new UpdateHeader
                {
                    Federation = SimulationRunner.Federation, Round = round, Site = site.Name, ExampleCount = site.TrainRows,
                    ParameterKind = ParameterKinds.Full, Dimension = d, CreatedAt = time.GetUtcNow(),
                }, ensemble);
                file.Position = 0;
                store.PutUpdateAsync(SimulationRunner.Federation, round, site.Name, file).GetAwaiter().GetResult();
                long size = new FileInfo(store.FullPath(StoreLayout.Update(SimulationRunner.Federation, round, site.Name))).Length;
                bytesPerSite[site.Name] += size;
                bytes += size;
            }
            var outcome = aggregator.AggregateAsync(SimulationRunner.Federation, round, closeNow: true).GetAwaiter().GetResult();
            if (outcome.Status != RoundOutcomeStatus.Aggregated) throw new InvalidOperationException($"round {round}: {outcome.Status}: {outcome.Message}");
            var model = store.GetGlobalModelAsync(SimulationRunner.Federation, round).GetAwaiter().GetResult()
                        ?? throw new InvalidOperationException($"round {round}: no global model was written");
            return (model.TreeEnsemble, bytes);
        }
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
        // Differentially private bagging and cyclic boosting: every ensemble a site uploads is grown by
        // PrivateTreeBoosting on its own rows (noisy cuts, noisy histograms; a noisy base score where it starts from its
        // own prevalence), each site's spending kept in a ledger of its own, as a site agent keeps it in its work folder.
        var ledgers = client.DifferentiallyPrivate && o.TreeMode != "histogram" ? sites.Select(_ => new ClinicalFed.Privacy.PrivacyBudgetLedger(o.DpEpsilon!.Value, o.DpDelta)).ToArray() : null;
        int cyclicTurnTrees = Math.Max(1, o.Trees / Math.Max(1, o.Rounds * sites.Count / 2));
        double sigma = ledgers is null ? 0 : (client with { Trees = o.TreeMode == "cyclic" ? cyclicTurnTrees : o.Trees }).DpSigma();
        var gaussian = new ClinicalFed.Privacy.SecureGaussian(System.Security.Cryptography.RandomNumberGenerator.Create());
        var grouped = ledgers is null ? null : sites.Select(s => ClientTraining.GroupedMatrix(s.TrainX, d, s.TrainY, s.TrainPatients)).ToArray();
        TreeEnsembleModel Grow(int i, TreeEnsembleModel? start, int trees, int seed)
        {
            if (ledgers is null) return GradientTreeBooster.Boost(start!, Matrix(sites[i]), Options(trees, seed));
            long queries = PrivateTreeBoosting.Queries(trees, client.Depth, baseScore: start is null);
            ledgers[i].Spend(1, sigma, queries, sites[i].Name);
            return PrivateTreeBoosting.Boost(start, grouped![i], Options(trees, seed), o.DpPatientWeight, sigma, gaussian, names);
        }
        if (o.TreeMode == "bagging")
        {
            // One-shot: every site uploads its own ensemble (the local-only models, or with DP private ones), merged by example count.
            var uploads = ledgers is null ? local : sites.Select((_, i) => Grow(i, null, o.Trees, o.Seed + i)).ToArray();
            (global, long total) = StoreRound(sites.Select((s, i) => (s, uploads[i])).ToList());
            Record(1, global, total, sw.Elapsed.TotalSeconds);
        }
        else if (o.TreeMode == "histogram")
        {
            // Histogram-based boosting: the sites agree on bins from their sketches, then every split of every tree
            // is chosen on the sum of the sites' gradient histograms. --rounds checkpoints split the --trees trees.
            // With differential privacy the cuts come from noisy counts on a public grid and the base score from noisy
            // sums instead (PrivateHistogramTrees), and every histogram a site sends carries noise.
            var coordinator = Options(o.Trees, o.Seed);
            var dp = o.DpTrees ? new PrivateHistogramTrees(o, coordinator, sites, d, new ClinicalFed.Privacy.SecureGaussian(System.Security.Cryptography.RandomNumberGenerator.Create())) : null;
            float[][] cuts;
            long[] sketchBytes;
            TreeEnsembleModel start;
            if (dp is null)
            {
                var sketches = sites.Select(s => HistogramBinning.SketchColumns(s.TrainX, d)).ToList();
                cuts = HistogramBinning.MergeCuts(sketches, coordinator.MaxBins);
                sketchBytes = sketches.Select(sk => sk.Sum(f => 12L * f.Values.Length)).ToArray();
                start = Start(sites);
            }
            else
            {
                coordinator = dp.Apply(coordinator);
                cuts = dp.Cuts(coordinator.MaxBins);
                sketchBytes = sites.Select(_ => 8L * d * PrivateTreeBoosting.Grid.TotalBins + 16).ToArray();
                start = dp.Start(names);
            }
            // A malicious site (--attack): trains on changed labels, or tampers with what it sends. The coordinator
            // checks every histogram it can read and leaves out a site whose histogram fails.
            FeatureMatrix SiteMatrix(PreparedSite s, int i) => attacks.TryGetValue(s.Name, out var a) && a.ChangesLabels
                ? new FeatureMatrix(s.TrainX, d, a.TrainingLabels(s.TrainY, o.Seed + 7919 * (i + 1))) : Matrix(s);
            var parts = sites.Select((s, i) => dp is null
                ? new HistogramBoostingSite(start, SiteMatrix(s, i), cuts, Options(o.Trees, o.Seed + i))
                : new HistogramBoostingSite(start, dp.Matrix(i), cuts, dp.Apply(Options(o.Trees, o.Seed + i)),
                    new HistogramNoise(o.DpPatientWeight, dp.SiteNoise, new ClinicalFed.Privacy.SecureGaussian(System.Security.Cryptography.RandomNumberGenerator.Create())))).ToList();
            privacy = dp?.Report(parts, sites.Select(s => s.Name).ToList(), coordinator);
            for (int i = 0; i < sites.Count; i++)
                if (attacks.TryGetValue(sites[i].Name, out var attack) && !attack.ChangesLabels)
                {
                    var random = new Random(o.Seed + 104729 * (i + 1));
                    parts[i].Tamper = v => attack.ApplyToHistogram(v, random);
                }
            // Secure aggregation: every site makes an ECDH key and the public keys go round (through the coordinator, as
            // in the serverless set-up); each site then masks its histograms so that only their sum can be read.
            var keys = o.SecureAggregation ? sites.Select(_ => PairwiseKeys.Create()).ToArray() : [];
            var maskers = new List<ExchangeMasker>();
            try
            {
                for (int i = 0; i < keys.Length; i++)
                {
                    var peers = sites.Select((s, j) => (s.Name, j)).Where(x => x.j != i).ToDictionary(x => x.Name, x => PairwiseKeys.PublicKeyBase64(keys[x.j]));
                    maskers.Add(new ExchangeMasker(SimulationRunner.Federation, sites[i].Name, keys[i], peers));
                    parts[i].MaskWith(maskers[i]);
                }
                var booster = new FederatedHistogramBooster(start, parts, cuts, coordinator);
                long[] before = new long[sites.Count];
                var opened = time.GetUtcNow();
                for (int r = 0; r < o.Rounds; r++)
                {
                    var roundWatch = Stopwatch.StartNew();
                    booster.AddTrees((int)((long)o.Trees * (r + 1) / o.Rounds - (long)o.Trees * r / o.Rounds));
                    long roundBytes = 0;
                    for (int i = 0; i < sites.Count; i++)
                    {
                        long sent = booster.BytesPerSite[i] - before[i] + (r == 0 ? sketchBytes[i] : 0);
                        before[i] = booster.BytesPerSite[i];
                        bytesPerSite[sites[i].Name] += sent;
                        roundBytes += sent;
                    }
                    Record(r + 1, booster.Model, roundBytes, roundWatch.Elapsed.TotalSeconds);
                    progress?.Invoke($"histogram boosting, {booster.Model.Trees.Count}/{o.Trees} trees", (r + 1.0) / o.Rounds);
                }
                global = booster.Model;
                WriteHistogramRound(global, opened);
                if (o.ContributionMethod != "off")
                {
                    // Contribution: every coalition of sites boosts its own ensemble with the federation's cuts and start
                    // (an attacker behaving as it did), and every site scores it on its validation patients.
                    var contributionWatch = Stopwatch.StartNew();
                    int all = (1 << sites.Count) - 1, done = 0;
                    var final = global;
                    double Coalition(int mask)
                    {
                        TreeEnsembleModel model = mask == all ? final : start;
                        if (mask != 0 && mask != all)
                        {
                            var members = Enumerable.Range(0, sites.Count).Where(i => (mask & (1 << i)) != 0).ToList();
                            var memberParts = members.Select(i => new HistogramBoostingSite(start, SiteMatrix(sites[i], i), cuts, Options(o.Trees, o.Seed + i)) { Tamper = parts[i].Tamper }).ToList();
                            try
                            {
                                model = new FederatedHistogramBooster(start, memberParts, cuts, coordinator).AddTrees(o.Trees);
                            }
                            catch (FederatedHistogramBooster.AllSitesRejectedException)
                            {
                                model = start; // a coalition of rejected sites grows nothing
                            }
                        }
                        progress?.Invoke("contribution (one ensemble per coalition)", Math.Min(1, ++done / (double)(1 << sites.Count)));
                        return ContributionScoring.ValidationAuroc(sites, x => Predict(model, x));
                    }
                    contribution = ContributionScoring.ForWholeRuns(sites, o.ContributionMethod, o.ContributionPermutations, o.Seed + 31, Coalition,
                        $"exact Shapley over every coalition of sites, each boosting its own ensemble of {o.Trees} trees with the federation's cuts",
                        "validation-size-weighted mean of the sites' validation AUROC (federated evaluation: only metrics leave the sites) of the coalition's ensemble; the empty coalition is the base score");
                    contributionSeconds = contributionWatch.Elapsed.TotalSeconds;
                }
                // A rejected site's round is the checkpoint whose trees were growing when it failed.
                rejected = booster.Rejected.Select(r => new RejectedReport(
                    Enumerable.Range(0, o.Rounds).First(k => r.Tree < (long)o.Trees * (k + 1) / o.Rounds) + 1, sites[r.Site].Name, r.Reason)).ToList();
            }
            finally
            {
                foreach (var m in maskers) m.Dispose();
                foreach (var k in keys) k.Dispose();
            }
            storeRounds = 1;
        }
        else
        {
            // Each turn adds trees fitted to the current ensemble's residuals; the trees per turn are chosen so the
            // whole federation grows about as many trees as a local model. A turn is a round of the store whose one
            // site uploads the whole ensemble it grew.
            // With DP the first turn starts from its site's noisy prevalence, as a site agent's does (the pooled
            // prevalence would be a query of every site's labels).
            TreeEnsembleModel? current = ledgers is null ? Start(sites) : null;
            global = Start(sites);
            for (int r = 0; r < o.Rounds; r++)
            {
                var roundWatch = Stopwatch.StartNew();
                long roundBytes = 0;
                for (int i = 0; i < sites.Count; i++)
                {
                    var grown = Grow(i, current, cyclicTurnTrees, o.Seed + 1000 * r + i);
                    (global, long b) = StoreRound([(sites[i], grown)]);
                    current = global;
                    roundBytes += b;
                    progress?.Invoke($"cyclic round {r + 1}/{o.Rounds}", (i + 1.0) / sites.Count);
                }
                Record(r + 1, global, roundBytes, roundWatch.Elapsed.TotalSeconds);
            }
        }
        // No round aggregator takes part in histogram mode (the coordinator is the booster). The global ensemble is round
        // 0's model, under a manifest that names the strategy, so that `serve` and `report` read the round like any other.
        void WriteHistogramRound(TreeEnsembleModel model, DateTimeOffset opened)
        {
            var closed = time.GetUtcNow();
            store.PutManifestAsync(new RoundManifest
            {
                Federation = SimulationRunner.Federation, Round = 0, Strategy = new StrategySpec { Name = HistogramStrategy },
                Model = new ModelSpec { Kind = ModelKinds.Trees, Dimension = d, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version },
                GlobalModel = null, Quorum = sites.Count, Sites = sites.Select(s => s.Name).ToList(),
                OpenedAt = opened, Deadline = closed > opened ? closed : opened.AddSeconds(1),
            }).GetAwaiter().GetResult();
            store.PutGlobalModelAsync(ModelFile.FromTreeEnsemble(new ModelHeader
            {
                Federation = SimulationRunner.Federation, Round = 0, Site = null, Kind = ModelKinds.Trees, Dimension = d,
                FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version, Strategy = HistogramStrategy, Sites = sites.Select(s => s.Name).ToList(),
                ExampleCount = sites.Sum(s => (long)s.TrainRows), CreatedAt = time.GetUtcNow(),
            }, model)).GetAwaiter().GetResult();
        }
        if (ledgers is not null) privacy = PrivateLocalTreesReport(o, client, sites, ledgers, sigma);
        seconds["federated"] = Math.Round(sw.Elapsed.TotalSeconds - contributionSeconds, 2);
        if (contribution is not null) seconds["contribution_scoring"] = Math.Round(contributionSeconds, 2);
        sw.Restart();
        int lastRound = storeRounds - 1;
        // Personalized models in the store: LightGBM model text, which ML.NET loads through LightGbm(Stream) as a normal model.
        ModelFile TreeModel(TreeEnsembleModel m, string site, long examples) => ModelFile.FromOpaque(new ModelHeader
        {
            Federation = SimulationRunner.Federation, Round = lastRound, Site = site, Kind = ModelKinds.Trees, Dimension = d,
            FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version, Strategy = o.TreeMode == "histogram" ? HistogramStrategy : o.TreeMode, Sites = [site],
            ExampleCount = examples, CreatedAt = time.GetUtcNow(),
        }, Encoding.UTF8.GetBytes(m.ToLightGbmModelText()), PayloadEncodings.LightGbmText);

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
            $"Trees: the project's second-order histogram booster, {Options(1, 0).NumberOfLeaves} leaves, learning rate {client.LearningRate}" +
            (client.Depth > 0 ? $", depth at most {client.Depth}" : "") + (client.Bins != TreeBoostingOptions.MaxBinsLimit ? $", {client.Bins} bins per feature" : "") +
            (client.FeaturesPerTree > 0 ? $", {client.FeaturesPerTree} features drawn per tree" : "") + $"; local-only and centralized {o.Trees} trees; " +
            o.TreeMode switch
            {
                "bagging" => "bagging merges the sites' local ensembles weighted by example count (one exchange).",
                "histogram" => $"histogram-based boosting of {o.Trees} trees (each split chosen on the sum of the sites' gradient histograms), evaluated after each of {o.Rounds} equal parts.",
                _ => $"cyclic boosting over {o.Rounds} rounds.",
            },
        };
        notes.Add(o.TreeMode == "histogram" && o.DpTrees
            ? "Histogram mode with differential privacy: each site first sends, per feature, its patient-weighted counts of values on a public grid (standardized units, −4 to 8 in steps of 0.05) with Gaussian noise, and the cuts are chosen on the noisy sum; " +
              "then noisy sums of labels and weights set the base score; then, for the root and the smaller child of every split, each site sends the histogram of the tree's features with noise (see privacy). " +
              (o.SecureAggregation ? "With --secure-aggregation the histograms are masked in Z/2^64 and each site adds a share of the noise. " : "") +
              "bytes_uploaded counts the grid counts and the histograms (8 bytes a number). The global ensemble is written to the store as round 0's model."
            : o.TreeMode == "histogram"
            ? $"Histogram mode: each site first sends a sketch of every feature (at most {HistogramBinning.SketchPoints} order statistics, or a small site's values with their counts) and bins its rows at the cuts merged from all sketches; " +
              "then, for the root and for the smaller child of every split, each site sends its histogram of summed gradients, hessians and row counts per bin (8 bytes a number), and the coordinator chooses every split and leaf value on the sum. " +
              (o.SecureAggregation ? "With --secure-aggregation each histogram is masked in Z/2^64 with pairwise masks (ECDH, AES-CTR) that cancel only in the sum over all sites, so the coordinator reads the federation's histograms and no site's; the sketches are not masked. " : "") +
              "bytes_uploaded counts the sketches and histograms. The exchanges run in this process: the serverless path does not offer this mode. The global ensemble is written to the store as round 0's model; personalized ensembles as LightGBM model text."
            : "Site ensembles travel through the store as update files whose payload is ClinicalFed's compact ensemble encoding (tree-ensemble); bytes_uploaded counts those files. " +
            (o.TreeMode == "bagging" ? "The round aggregator merges them (strategy tree-bagging)" : "Each cyclic turn is a round of the store in which the site uploads the whole ensemble it grew (strategy tree-cyclic)") +
            " and writes the global ensemble as a tree-ensemble model file, which the sites read back; personalized ensembles are written as LightGBM model text.");
        if (attacks.Count > 0)
            notes.Add($"Attacks: {string.Join(", ", attacks.Values.Select(a => $"{a.Kind} at {a.Site}"))}. The coordinator checks every histogram before adding it (whole row counts, hessian and gradient sums within what the rows allow, " +
                $"every feature covering the same rows, no more rows than declared) and leaves out a site whose histogram fails; {rejected.Count} site(s) were left out (see rejected). No comparison runs are made in histogram mode.");
        return new SimulationRunner.RunResult(results, rounds, new BytesUploaded { Total = bytesPerSite.Values.Sum(), PerSite = bytesPerSite }, notes, privacy)
        {
            Extras = new SimulationExtras { Rejected = rejected, Contribution = contribution },
        };
    }

    /// <summary>The privacy section of DP bagging or cyclic boosting: each site's ledger.</summary>
    private static PrivacyReport PrivateLocalTreesReport(SimulationOptions o, TreeClientSettings client, IReadOnlyList<PreparedSite> sites,
        ClinicalFed.Privacy.PrivacyBudgetLedger[] ledgers, double sigma) => new()
    {
        Unit = "patient",
        Mechanisms =
        [
            $"{ClinicalFed.Privacy.PrivacyMechanisms.HistogramGaussian}: each site grows the ensemble it uploads on its own rows with differentially private boosting: every row of a patient " +
            $"with n rows weighs min(1, {o.DpPatientWeight}/n); the bin cuts come from noisy counts on a public grid, the base score (where a site starts from its own prevalence) " +
            $"from noisy sums, and every histogram and node sum of its trees (depth {client.Depth}, {client.FeaturesPerTree} features per tree) gets Gaussian noise of σ times its " +
            "sensitivity from a cryptographic generator; Rényi DP accounting of every query of every turn (Gaussian mechanism, no subsampling), converted to (ε, δ) as Balle et al. 2020.",
        ],
        AggregatorView = "The aggregator sees each site's ensembles; they are (ε, δ)-differentially private with respect to any one patient of that site at the ε listed per site, " +
            "so the merged and grown global ensembles, and anything computed from them, are too.",
        Sites = sites.Select((s, i) => new SitePrivacyReport
        {
            Name = s.Name, EpsilonSpent = Math.Round(ledgers[i].EpsilonSpent, 6), EpsilonBudget = o.DpEpsilon, Delta = o.DpDelta, NoiseMultiplier = Math.Round(sigma, 6),
            ClipNorm = o.DpPatientWeight, SamplingRate = 1, Steps = ledgers[i].Steps, Rounds = ledgers[i].Rounds, Patients = s.TrainPatients.Distinct().Count(),
        }).ToList(),
        Notes = PrivateHistogramTrees.Notes("only what the sites upload is private"),
    };
}
