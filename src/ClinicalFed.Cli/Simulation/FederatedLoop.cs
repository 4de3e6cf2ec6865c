using System.Diagnostics;
using System.Text.Json.Serialization;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Simulation;

/// <summary>An update the aggregator refused, in <c>report.json</c>.</summary>
public sealed record RejectedReport(
    [property: JsonPropertyName("round")] int Round,
    [property: JsonPropertyName("site")] string Site,
    [property: JsonPropertyName("reason")] string Reason);

/// <summary>The <c>hierarchy</c> section of <c>report.json</c>.</summary>
public sealed record HierarchyReport
{
    [JsonPropertyName("regions")] public required IReadOnlyDictionary<string, IReadOnlyList<string>> Regions { get; init; }
    /// <summary>Largest |hierarchical − flat| over every parameter of every round's global model (flat: the same updates, one FedAvg).</summary>
    [JsonPropertyName("max_abs_diff_vs_flat")] public double MaxAbsDiffVsFlat { get; init; }
    [JsonPropertyName("note")] public string Note { get; init; } = "";
}

/// <summary>One federated run of a simulation: the primary one, or a comparison (clean, FedAvg under attack, ...).</summary>
internal sealed record FederationVariant(string Name, string Federation, string Strategy, IReadOnlyList<SiteAttack> Attacks, bool Primary)
{
    /// <summary>How the sites compress their updates (null: plain float32).</summary>
    public Compression.CompressionSpec? Compression { get; init; }
}

/// <summary>What one <see cref="FederatedLoop"/> run produced.</summary>
internal sealed class FederationOutcome
{
    public required LinearWeights Global { get; set; }
    public List<RoundResult> Rounds { get; } = [];
    public Dictionary<string, long> BytesPerSite { get; init; } = [];
    /// <summary>Payload bytes the sites sent, and what the same updates take as float32.</summary>
    public long PayloadBytes { get; set; }
    public long Float32PayloadBytes { get; set; }
    /// <summary>With compression: each round's encoding and payload bytes.</summary>
    public List<CompressedRound> CompressedRounds { get; } = [];
    public List<RejectedReport> Rejected { get; } = [];
    public ContributionReport? Contribution { get; set; }
    public HierarchyReport? Hierarchy { get; set; }
    public double SecAggSiteSeconds { get; set; }
    public double SecAggAggregatorSeconds { get; set; }
    public List<string> Notes { get; } = [];
    public required PrivateSimulation Privacy { get; init; }
    /// <summary>The site-level DP account of the run (null without --dp-site-clip).</summary>
    public Privacy.SiteDpAccountant? SiteDp { get; set; }
}

/// <summary>
/// The federated rounds of <c>simulate</c> (logistic regression), through the folder store exactly as in a serverless
/// federation: a manifest per round, signed updates from the sites, <see cref="RoundAggregator"/> (or a secure round)
/// closing it. Around that, what a variant asks for: malicious sites (<see cref="SiteAttack"/>), k-of-n and absent
/// sites, regional aggregators between sites and the global aggregator, and contribution scoring.
/// </summary>
internal static class FederatedLoop
{
    public static FederationOutcome Run(SimulationOptions o, FederationVariant variant, IReadOnlyList<PreparedSite> sites, FeatureSpec spec,
        LocalFolderStore store, Action<string, double>? progress, TimeProvider time)
    {
        int d = sites[0].Width;
        string fed = variant.Federation;
        string label = variant.Primary ? "" : $" ({variant.Name})";
        // --strategy-option values configure the run's own strategy (not the plain FedAvg it is compared with).
        var optionValues = variant.Strategy == o.Strategy ? o.ParsedStrategyOptions() : new Dictionary<string, System.Text.Json.JsonElement>();
        if (variant.Strategy == StrategyNames.FedProx) optionValues.TryAdd("proximal_mu", System.Text.Json.JsonSerializer.SerializeToElement(o.ProximalMu));
        // Site-level DP-FedAvg (the primary run only): sites weigh equally, as its sensitivity bound C/n assumes.
        var siteDp = variant.Primary ? o.SiteDp() : null;
        if (siteDp is not null) optionValues["weighting"] = System.Text.Json.JsonSerializer.SerializeToElement("uniform");
        var strategyOptions = StrategyFactory.ParseOptions(variant.Strategy, optionValues);
        // The sites' training settings travel in the manifest (client_ options), exactly as in a serverless federation.
        var strategySpec = StrategySpec.From(strategyOptions, PrivateSimulation.Settings(o, new ClientTrainingSettings
        {
            LocalEpochs = o.LocalEpochs, BatchSize = 256, LearningRate = o.LearningRate, L2 = o.L2, Seed = o.Seed,
        }).ToClientOptions());
        var client = ClientTrainingSettings.From(strategySpec);
        var clientOptions = strategySpec.Options.Where(kv => kv.Key.StartsWith(StrategyOptions.ClientPrefix, StringComparison.Ordinal)).ToDictionary();
        var siteDpAccountant = siteDp is null ? null : new Privacy.SiteDpAccountant(siteDp, sites.Count);
        var siteDpNoise = new Privacy.SecureGaussian(System.Security.Cryptography.RandomNumberGenerator.Create());
        // Site-level DP: the aggregator clips (or checks) and adds the noise; with secure aggregation the sites add it (below).
        var aggregator = new RoundAggregator(store, time, siteDpAccountant is null || o.SecureAggregation ? null
            : strategy => new Privacy.SiteLevelDpStrategy((IAggregationStrategy)strategy, siteDpAccountant, siteDpNoise));
        var dp = new PrivateSimulation(o, sites, client);
        var attacks = variant.Attacks.ToDictionary(a => a.Site, StringComparer.Ordinal);
        var fit = sites.Select((s, i) => attacks.TryGetValue(s.Name, out var a) && a.ChangesLabels
            ? dp.Matrix(s.WithTrainingLabels(a.TrainingLabels(s.TrainY, o.Seed + 7919 * i)))
            : dp.Matrix(s)).ToArray();
        var attackRandom = new Random(o.Seed + 4242);
        var feedback = sites.ToDictionary(s => s.Name, _ => new Compression.ErrorFeedback(), StringComparer.Ordinal);
        var outcome = new FederationOutcome { Global = LinearWeights.Zeros(d), Privacy = dp, BytesPerSite = sites.ToDictionary(s => s.Name, _ => 0L) };
        var model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = d + 1, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version };

        // Regions: each regional aggregator is a federation of its own in the store, whose round model goes up as one update.
        var regions = o.ParsedRegions();
        var regionOf = regions.SelectMany(kv => kv.Value.Select(s => (Site: s, Region: kv.Key))).ToDictionary(x => x.Site, x => x.Region, StringComparer.Ordinal);
        var uploaders = regions.Count > 0 ? regions.Keys.ToList() : sites.Select(s => s.Name).ToList();

        // Signed updates, as site agents send them: one in-memory key per uploader, registered in the federation
        // document with require_signatures, so the aggregator verifies every update exactly as in a real federation.
        var keys = sites.Select(s => s.Name).Concat(regions.Keys).ToDictionary(n => n, _ => Privacy.Signing.SigningKeys.Create(), StringComparer.Ordinal);
        using var disposeKeys = new Privacy.Signing.KeyRing(keys.Values.ToArray());
        void Register(string federation, IEnumerable<string> members) => store.PutFederationAsync(new FederationConfig
        {
            Federation = federation, Description = "clinicalfed simulate (in-process sites)", Model = model,
            Strategy = strategySpec, Rounds = o.Rounds, Quorum = 1, RoundSeconds = 3600, Statistics = false, RequireSignatures = true,
            Sites = members.Select(n => new RegisteredSite
            {
                Name = n, KeySha256 = Storage.Coordination.FederationCoordinator.HashKey(Guid.NewGuid().ToString("N")), Status = SiteStatuses.Active,
                RegisteredAt = time.GetUtcNow(), SigningPublicKey = Privacy.Signing.SigningKeys.PublicKeyBase64(keys[n]),
            }).ToArray(),
            CreatedAt = time.GetUtcNow(),
        }, null).GetAwaiter().GetResult();
        Register(fed, uploaders);
        foreach (var (region, members) in regions) Register(RegionFederation(fed, region), members);

        var contribution = variant.Primary && o.ContributionMethod != "off" && regions.Count == 0 && !o.SecureAggregation
            ? new ContributionScoring(sites, d, o.ContributionMethod, o.ContributionPermutations, o.Seed + 31) : null;
        var absent = o.ParsedAbsent();
        var participationRandom = new Random(o.Seed + 101);
        double maxFlatDiff = 0;

        for (int r = 0; r < o.Rounds; r++)
        {
            var roundWatch = Stopwatch.StartNew();
            var now = time.GetUtcNow();
            var global = outcome.Global;
            var globalVector = global.ToParameterVector();
            var participants = Enumerable.Range(0, sites.Count)
                .Where(i => !(absent.TryGetValue(sites[i].Name, out var a) && r + 1 >= a.From && r + 1 <= a.To)).ToList();
            if (o.DownweightContributors && contribution is not null && r >= 2)
            {
                // Down-weighting of low contributors, to zero: after two scored rounds, a site whose summed Shapley value
                // is negative (its updates made the others' validation AUROC worse) is no longer asked.
                foreach (int i in participants.Where(i => contribution.Shapley(i) < 0 && !contribution.Excluded.Any(x => x.Site == sites[i].Name)).ToList())
                    contribution.Excluded.Add((sites[i].Name, r + 1, contribution.Shapley(i)));
                participants.RemoveAll(i => contribution.Excluded.Any(x => x.Site == sites[i].Name));
            }
            if (o.Participation is { } k && k < participants.Count)
                participants = participants.OrderBy(_ => participationRandom.Next()).Take(k).Order().ToList();
            if (participants.Count == 0) throw new InvalidOperationException($"round {r + 1}: every site is absent");

            RoundManifest Manifest(string federation, IReadOnlyList<string> expected, int quorum) => new()
            {
                Federation = federation, Round = r, Strategy = federation == fed ? strategySpec : StrategySpec.From(new FedAvgOptions(), clientOptions),
                Model = model, GlobalModel = r == 0 ? null : GlobalModelPath.Format(fed, r - 1),
                Quorum = quorum, Sites = expected.ToList(), OpenedAt = now, Deadline = now.AddHours(1),
            };
            var expected = regions.Count > 0 ? uploaders : participants.Select(i => sites[i].Name).ToList();
            // The quorum leaves room for the sites that may fail: secure-aggregation dropouts, and malicious sites, whose
            // updates the strategy may reject (a round must not fail because an attack was caught).
            int mayFail = (o.SecureAggregation ? o.SecAggDropout : 0) + variant.Attacks.Count(a => expected.Contains(a.Site));
            var manifest = Manifest(fed, expected, Math.Max(1, expected.Count - mayFail));
            store.PutManifestAsync(manifest).GetAwaiter().GetResult();
            foreach (var (region, members) in regions) store.PutManifestAsync(Manifest(RegionFederation(fed, region), members, members.Count)).GetAwaiter().GetResult();

            long roundBytes = 0, roundPayload = 0;
            string? roundEncoding = null;
            var secureInputs = new List<Storage.SecureAggregation.SecureSiteInput>();
            var uploaded = new List<(int Site, float[] Parameters, long Examples)>();
            foreach (int i in participants)
            {
                var (result, privacy) = dp.Train(fit[i], r == 0 ? null : global, client, r, i);
                string target = regionOf.TryGetValue(sites[i].Name, out var reg) ? RegionFederation(fed, reg) : fed;
                var header = new UpdateHeader
                {
                    Federation = target, Round = r, Site = sites[i].Name, ExampleCount = sites[i].TrainRows,
                    ParameterKind = ParameterKinds.Full, Dimension = d + 1, CreatedAt = time.GetUtcNow(),
                    LocalMetrics = ClientTraining.LocalMetrics(result), Privacy = privacy,
                };
                var parameters = result.Weights.ToParameterVector();
                if (attacks.TryGetValue(sites[i].Name, out var attack)) attack.Apply(parameters, globalVector, attackRandom);
                if (siteDp?.Mode == Privacy.SiteDpModes.Client)
                {
                    // Client-side clipping: the site bounds its own difference from the global model before upload.
                    var own = new float[parameters.Length];
                    System.Numerics.Tensors.TensorPrimitives.Subtract(parameters, globalVector, own);
                    Privacy.SiteLevelDpMath.ClipToNorm(own, siteDp.ClipNorm);
                    System.Numerics.Tensors.TensorPrimitives.Add(globalVector, own, parameters);
                }
                outcome.Float32PayloadBytes += 4L * parameters.Length;
                if (variant.Compression is { } configured)
                {
                    // Top-k: a dense 8-bit warm-up round, top-k in between, a dense final round (CompressionSpec.ForRound).
                    var compression = configured.ForRound(r, o.Rounds);
                    roundEncoding = compression.Encoding;
                    // The site sends its delta compressed (top-k with error feedback); the aggregator decodes it.
                    var delta = new float[parameters.Length];
                    System.Numerics.Tensors.TensorPrimitives.Subtract(parameters, globalVector, delta);
                    // Top-k refit: the site trains its k chosen coordinates again with the others held. Not under DP-SGD (an
                    // extra pass outside the accountant), site-level clipping (it would bypass the clip) or an attack.
                    int site = i;
                    Func<int[], float[]>? refit = compression.RefitEpochs > 0 && r > 0 && !client.DifferentiallyPrivate && siteDp is null && attack is null
                        ? chosen => ClientTraining.RefitCoordinates(fit[site], global, client, r, site, chosen, compression.RefitEpochs)
                        : null;
                    var payload = feedback[sites[i].Name].Compress(compression, delta, Compression.UpdateCodec.RoundingRandom(client.Seed, r, i), refit);
                    var decoded = new float[delta.Length];
                    Compression.UpdateCodec.Decode(compression.Encoding, payload, decoded);
                    System.Numerics.Tensors.TensorPrimitives.Add(globalVector, decoded, parameters); // what the aggregator sees
                    uploaded.Add((i, parameters, sites[i].TrainRows));
                    var signed = Privacy.Signing.UpdateSignature.Sign(UpdateFile.Compressed(header, compression.Encoding, payload), keys[sites[i].Name]);
                    using var file = new MemoryStream();
                    UpdateFile.WriteCompressed(file, signed, compression.Encoding, payload);
                    file.Position = 0;
                    store.PutUpdateAsync(target, r, sites[i].Name, file).GetAwaiter().GetResult();
                    outcome.BytesPerSite[sites[i].Name] += file.Length;
                    outcome.PayloadBytes += payload.Length;
                    roundPayload += payload.Length;
                    roundBytes += file.Length;
                    progress?.Invoke($"round {r + 1}/{o.Rounds}{label}", (uploaded.Count + 0.0) / (participants.Count + 1));
                    continue;
                }

                outcome.PayloadBytes += 4L * parameters.Length;
                uploaded.Add((i, parameters, sites[i].TrainRows));
                if (o.SecureAggregation)
                {
                    // Masked through the secure round below: no plain update file is written.
                    var masked = parameters;
                    if (siteDp is not null)
                    {
                        // Distributed noise: this site's share N(0, (z·C/√n)²) on its clipped update, before masking
                        // (on a copy: the site's own model stays as trained).
                        masked = parameters.ToArray();
                        Privacy.SiteLevelDpMath.AddGaussianNoise(masked, Privacy.SiteLevelDpMath.SiteNoiseStd(siteDp, participants.Count), siteDpNoise);
                    }

                    // Under site-level DP every site weighs the same (weight 1), as DP-FedAvg's sensitivity assumes.
                    secureInputs.Add(new Storage.SecureAggregation.SecureSiteInput(sites[i].Name, masked, siteDp is null ? sites[i].TrainRows : 1, header.LocalMetrics, keys[sites[i].Name]));
                }
                else
                {
                    store.PutUpdateAsync(Privacy.Signing.UpdateSignature.Sign(header, parameters, keys[sites[i].Name]), parameters).GetAwaiter().GetResult();
                    long size = new FileInfo(store.FullPath(StoreLayout.Update(target, r, sites[i].Name))).Length;
                    outcome.BytesPerSite[sites[i].Name] += size;
                    roundBytes += size;
                }
                progress?.Invoke($"round {r + 1}/{o.Rounds}{label}", (uploaded.Count + 0.0) / (participants.Count + 1));
            }

            foreach (var (region, members) in regions)
            {
                // The regional aggregator closes its round and forwards its model as one update carrying its sites' examples.
                string rf = RegionFederation(fed, region);
                var regional = aggregator.AggregateAsync(rf, r, closeNow: true).GetAwaiter().GetResult();
                if (regional.Status != RoundOutcomeStatus.Aggregated) throw new InvalidOperationException($"round {r + 1}, region {region}: {regional.Status}: {regional.Message}");
                foreach (var rej in regional.Result!.Rejected) outcome.Rejected.Add(new RejectedReport(r + 1, rej.Site, $"region {region}: {rej.Reason}"));
                var regionalModel = store.GetGlobalModelAsync(rf, r).GetAwaiter().GetResult()!;
                var forwarded = regionalModel.Parameters.ToArray();
                var header = new UpdateHeader
                {
                    Federation = fed, Round = r, Site = region, ExampleCount = regional.Result.ExampleCount, ParameterKind = ParameterKinds.Full,
                    Dimension = d + 1, CreatedAt = time.GetUtcNow(), LocalMetrics = regional.Result.Metrics,
                };
                store.PutUpdateAsync(Privacy.Signing.UpdateSignature.Sign(header, forwarded, keys[region]), forwarded).GetAwaiter().GetResult();
                roundBytes += new FileInfo(store.FullPath(StoreLayout.Update(fed, r, region))).Length;
            }

            RoundOutcome closed;
            if (o.SecureAggregation)
            {
                // Dropout: in the middle round the last K sites (ordinal) mask but never upload; their masks are removed from their Shamir-shared keys.
                var drop = r == o.Rounds / 2 && o.SecAggDropout > 0
                    ? participants.Select(i => sites[i].Name).Order(StringComparer.Ordinal).TakeLast(o.SecAggDropout).ToHashSet(StringComparer.Ordinal) : null;
                var secure = Storage.SecureAggregation.InProcessSecureRound.RunAsync(store, manifest, secureInputs, drop, time: time).GetAwaiter().GetResult();
                closed = secure.Outcome;
                outcome.SecAggSiteSeconds += secure.SiteSeconds;
                outcome.SecAggAggregatorSeconds += secure.AggregatorSeconds;
                if (secure.Dropped.Count > 0) outcome.Notes.Add($"round {r + 1}: {string.Join(", ", secure.Dropped)} dropped after masking; the round completed with the survivors");
                if (siteDpAccountant is not null && closed.Status == RoundOutcomeStatus.Aggregated)
                {
                    // Accounted with the noise that reached the sum: the survivors' shares, z·√(s/n).
                    int survivors = secureInputs.Count - secure.Dropped.Count;
                    siteDpAccountant.Spend(participants.Count, Privacy.SiteLevelDpMath.DistributedNoiseMultiplier(siteDp!, survivors, secureInputs.Count));
                }
                foreach (var s in secureInputs.Where(s => !secure.Dropped.Contains(s.Site)))
                {
                    long size = new FileInfo(store.FullPath(new Storage.SecureAggregation.SecAggStore(store, fed, r).MaskedPath(s.Site))).Length;
                    outcome.BytesPerSite[s.Site] += size;
                    roundBytes += size;
                }
            }
            else closed = aggregator.AggregateAsync(fed, r, closeNow: true).GetAwaiter().GetResult();
            if (closed.Status != RoundOutcomeStatus.Aggregated) throw new InvalidOperationException($"round {r + 1}{label}: {closed.Status}: {closed.Message}");
            foreach (var rej in closed.Result!.Rejected) outcome.Rejected.Add(new RejectedReport(r + 1, rej.Site, rej.Reason));
            var roundModel = store.GetGlobalModelAsync(fed, r).GetAwaiter().GetResult()
                             ?? throw new InvalidOperationException($"round {r + 1}: no global model was written");
            if (regions.Count > 0) maxFlatDiff = Math.Max(maxFlatDiff, FlatDifference(roundModel.Parameters, uploaded, global, strategySpec));
            contribution?.AddRound(global, uploaded);
            outcome.Global = LinearWeights.FromParameterVector(roundModel.Parameters);
            var rr = new RoundResult { Round = r + 1, BytesUploaded = roundBytes, Seconds = Math.Round(roundWatch.Elapsed.TotalSeconds, 2) };
            foreach (var s in sites)
            {
                var (auroc, auprc, _) = SimulationRunner.Evaluate(SimulationRunner.Predict(outcome.Global, s.TestX, d), s.TestY);
                rr.Auroc[s.Name] = auroc;
                rr.Auprc[s.Name] = auprc;
            }
            outcome.Rounds.Add(rr);
            if (roundEncoding is not null) outcome.CompressedRounds.Add(new CompressedRound(r + 1, roundEncoding, roundPayload));
            progress?.Invoke($"round {r + 1}/{o.Rounds}{label}", 1);
        }

        outcome.Contribution = contribution?.Report();
        outcome.SiteDp = siteDpAccountant;
        if (regions.Count > 0)
        {
            outcome.Hierarchy = new HierarchyReport
            {
                Regions = regions, MaxAbsDiffVsFlat = maxFlatDiff,
                Note = $"Each region is a federation of its own in the store ({fed}-region-NAME): its aggregator closes the round with FedAvg and forwards the regional model " +
                       "as one signed update whose example_count is the sum of its sites'; the global aggregator then runs the configured strategy over the regions. " +
                       "max_abs_diff_vs_flat compares every round's global model with one flat FedAvg over the same site updates.",
            };
        }
        return outcome;
    }

    /// <summary>The store federation of a regional aggregator.</summary>
    public static string RegionFederation(string federation, string region) => $"{federation}-region-{region}";

    /// <summary>|hierarchical − flat FedAvg of the same site models| at its largest (only meaningful for FedAvg).</summary>
    private static double FlatDifference(ReadOnlySpan<float> hierarchical, IReadOnlyList<(int Site, float[] Parameters, long Examples)> uploaded, LinearWeights start, StrategySpec spec)
    {
        if (spec.Name != StrategyNames.FedAvg) return double.NaN;
        double examples = uploaded.Sum(u => (double)u.Examples);
        var startVector = start.ToParameterVector();
        double max = 0;
        for (int j = 0; j < hierarchical.Length; j++)
        {
            double flat = startVector[j];
            foreach (var (_, p, n) in uploaded) flat += n / examples * (p[j] - startVector[j]);
            max = Math.Max(max, Math.Abs(hierarchical[j] - flat));
        }
        return max;
    }
}
