using ClinicalFed.Cli.Simulation;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Trees;

namespace ClinicalFed.Cli.Site;

/// <summary>
/// The site agent in a federation of model kind <c>trees</c>: the project's histogram booster, exactly as
/// <c>clinicalfed simulate --model trees</c> grows trees (<see cref="TreeClientSettings"/> from the manifest).
/// <list type="bullet">
/// <item><b>tree-bagging</b> (one round): the site grows its whole ensemble from its own prevalence and uploads it;
/// the aggregator averages the ensembles in log-odds, weighted by example count.</item>
/// <item><b>tree-cyclic</b> (a round per turn): in its turn the site adds <c>client_trees</c> trees, fitted to the
/// residuals of the round's global ensemble on its own rows, and uploads the grown ensemble, which becomes the next
/// global model. The first turn starts from that site's own prevalence (<c>simulate</c> starts from the pooled one,
/// which it can count; a real federation shares no label counts).</item>
/// </list>
/// At the end the site personalizes on its own, choosing on its validation patients among the candidates
/// <c>simulate</c> tries (the global ensemble, local trees grown on it, a local-only ensemble, log-odds interpolations
/// of global and local), and writes the choice to its work folder (nothing of it leaves the site).
/// </summary>
public sealed partial class SiteAgent
{
    /// <summary>
    /// The site's personalized model of the final round, left in its work folder (a model file: float32 parameters,
    /// or LightGBM text for trees) for <c>clinicalfed serve --personalized</c>.
    /// </summary>
    public const string PersonalizedModelFileName = "personalized-model.cfm";

    /// <summary>Writes <paramref name="model"/> to the work folder's <see cref="PersonalizedModelFileName"/> (atomically) and returns its path.</summary>
    private string WritePersonalizedModel(ModelFile model)
    {
        string path = Path.Combine(Path.GetFullPath(_o.WorkDirectory), PersonalizedModelFileName);
        Commands.StatsCommand.WriteAtomically(path, model.ToBytes());
        return path;
    }

    private bool _trees;

    /// <summary>Bagging: the ensemble this run grew and uploaded, which is also the site's local-only candidate.</summary>
    private TreeEnsembleModel? _ownEnsemble;

    private static int Threads => Math.Max(1, Environment.ProcessorCount);

    /// <summary>A constant ensemble at the log-odds of the site's own prevalence (its training rows).</summary>
    private static TreeEnsembleModel OwnStart(PreparedSite prepared) =>
        CyclicTreeBoosting.InitialModel(prepared.Width, [(prepared.TrainY.Sum(y => (double)y), prepared.TrainRows)], prepared.Columns.ToArray());

    private async Task GrowAndUploadAsync(FederationConfig config, RoundManifest manifest, PreparedSite prepared, CancellationToken cancellationToken)
    {
        var settings = TreeClientSettings.From(manifest.Strategy);
        int d = prepared.Width;
        TreeEnsembleModel? global = null;
        if (manifest.GlobalModel is not null && GlobalModelPath.TryParse(manifest.GlobalModel, out var gf, out int gr))
        {
            var model = await _store.GetGlobalModelAsync(gf, gr, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"round {manifest.Round} starts from {manifest.GlobalModel}, which is not in the store");
            global = model.TreeEnsemble;
        }

        var own = OwnStart(prepared);
        TreeEnsembleModel start;
        int seed;
        if (manifest.Strategy.Name == StrategyNames.TreeCyclic)
        {
            // The seed scheme of simulate's cyclic boosting: seed + 1000·pass + the site's place in the turn order, from the
            // active sites when this agent started. If sites register or withdraw meanwhile only the seed can differ from
            // the coordinator's count; which site trains is always the manifest's.
            var order = config.ActiveSites.ToList();
            int place = Math.Max(0, order.IndexOf(_o.Site));
            seed = settings.Seed + 1000 * (manifest.Round / Math.Max(1, order.Count)) + place;
            start = global ?? own;
        }
        else
        {
            // Bagging: every site's ensemble from its own prevalence, seeded by its place in the manifest (simulate's local models).
            seed = settings.Seed + manifest.Sites.ToList().IndexOf(_o.Site);
            start = own;
        }

        TreeEnsembleModel grown;
        Privacy.UpdatePrivacy? privacy = null;
        if (settings.DifferentiallyPrivate)
        {
            // Differentially private trees: the ledger in the work folder refuses (throws) a turn that would exceed the
            // site's budget, before training and therefore before any upload. A turn that starts from the site's own
            // prevalence measures it with noise (one more query) instead of counting it.
            var privateStart = start == own ? null : start;
            long queries = settings.DpQueriesPerTurn(baseScore: privateStart is null);
            double sigma = settings.DpSigma();
            string ledgerPath = Path.Combine(Path.GetFullPath(_o.WorkDirectory), Privacy.PrivacyBudgetLedger.FileName);
            var ledger = Privacy.PrivacyBudgetLedger.LoadOrCreate(ledgerPath, settings.DpEpsilon!.Value, settings.DpDelta);
            var spend = ledger.Spend(1, sigma, queries, _o.Site);
            ledger.Save(ledgerPath);
            grown = PrivateTreeBoosting.Boost(privateStart, ClientTraining.GroupedMatrix(prepared.TrainX, d, prepared.TrainY, prepared.TrainPatients), settings.Boosting(settings.Trees, seed, Threads),
                settings.DpPatientWeight, sigma, new Privacy.SecureGaussian(System.Security.Cryptography.RandomNumberGenerator.Create()), prepared.Columns.ToArray());
            privacy = new Privacy.UpdatePrivacy
            {
                Mechanism = Privacy.PrivacyMechanisms.HistogramGaussian, EpsilonRound = spend.EpsilonRound, EpsilonTotal = spend.EpsilonTotal, Delta = settings.DpDelta,
                NoiseMultiplier = sigma, ClipNorm = settings.DpPatientWeight, SamplingRate = 1, Steps = queries,
            };
            _log($"round {manifest.Round}: differentially private trees spent ε = {spend.EpsilonRound:0.###} this round, {spend.EpsilonTotal:0.###} in total of {ledger.EpsilonBudget:0.###} (δ = {settings.DpDelta:G3}, σ = {sigma:0.###}, {queries} queries)");
        }
        else
        {
            grown = GradientTreeBooster.Boost(start, new FeatureMatrix(prepared.TrainX, d, prepared.TrainY), settings.Boosting(settings.Trees, seed, Threads));
        }
        if (manifest.Strategy.Name == StrategyNames.TreeBagging) _ownEnsemble = grown;
        var header = new UpdateHeader
        {
            Federation = manifest.Federation, Round = manifest.Round, Site = _o.Site, ExampleCount = prepared.TrainRows,
            ParameterKind = ParameterKinds.Full, Dimension = d, CreatedAt = _time.GetUtcNow(),
            LocalMetrics = new Dictionary<string, double>(StringComparer.Ordinal) { ["trees_added"] = grown.Trees.Count - start.Trees.Count },
            Privacy = privacy,
        };
        header = Privacy.Signing.UpdateSignature.Sign(header, grown, _signingKey!);
        if (!await UploadOnceAsync(manifest.Round, () => _uploader.UploadTreeUpdateAsync(header, grown, cancellationToken)).ConfigureAwait(false)) return;
        _log($"round {manifest.Round}: grew {grown.Trees.Count - start.Trees.Count} tree(s) on {prepared.TrainRows:N0} rows ({manifest.Strategy.Name}); uploaded an ensemble of {grown.Trees.Count} tree(s)");
    }

    /// <summary>
    /// Personalizes the final global ensemble on the site (the best of simulate's candidates on its validation
    /// patients), writes the choice to its work folder and returns it.
    /// </summary>
    private TreeEnsembleModel PersonalizeTrees(FederationConfig config, ModelFile globalFile, PreparedSite prepared)
    {
        var settings = TreeClientSettings.From(config.Strategy);
        var global = globalFile.TreeEnsemble;
        int d = prepared.Width;
        int place = Math.Max(0, config.ActiveSites.ToList().IndexOf(_o.Site));
        var train = new FeatureMatrix(prepared.TrainX, d, prepared.TrainY);
        // simulate's candidates: the global ensemble, local trees grown on it, a local-only ensemble as large as a site's
        // share (bagging: its own ensemble; cyclic: the global one's size), and log-odds interpolations of the two.
        int localTrees = config.Strategy.Name == StrategyNames.TreeBagging ? settings.Trees : Math.Max(1, global.Trees.Count);
        // Bagging: the ensemble the site uploaded, when this run grew it (after a restart it is grown again, identically).
        var local = config.Strategy.Name == StrategyNames.TreeBagging && _ownEnsemble is not null
            ? _ownEnsemble
            : GradientTreeBooster.Boost(OwnStart(prepared), train, settings.Boosting(localTrees, settings.Seed + place, Threads));
        var candidates = new Dictionary<string, TreeEnsembleModel>(StringComparer.Ordinal)
        {
            ["global"] = global,
            ["local trees on global"] = GradientTreeBooster.Boost(global, train, settings.Boosting(Math.Max(5, localTrees / 5), settings.Seed + 31 * place, Threads)),
            ["local"] = local,
        };
        foreach (var a in new[] { 0.25, 0.5, 0.75 })
            candidates[string.Create(System.Globalization.CultureInfo.InvariantCulture, $"interpolation α={a:0.##}")] = TreeBagging.Merge([new SiteEnsemble(global, a), new SiteEnsemble(local, 1 - a)]);
        bool validationHasBoth = prepared.ValidationY.Any(y => y == 1) && prepared.ValidationY.Any(y => y == 0);
        // The global ensemble unless another candidate is strictly better on the validation patients.
        string best = "global";
        if (validationHasBoth)
        {
            var validation = candidates.ToDictionary(kv => kv.Key, kv => Metrics.Auroc(TreeProbabilities(kv.Value, prepared.ValidationX, d), prepared.ValidationY));
            foreach (var (name, value) in validation)
                if (value > validation[best]) best = name;
        }
        var personalized = candidates[best];

        var header = new ModelHeader
        {
            Federation = config.Federation, Round = globalFile.Header.Round, Site = _o.Site, Kind = ModelKinds.Trees, Dimension = d,
            FeatureSpecId = config.Model.FeatureSpecId, FeatureSpecVersion = config.Model.FeatureSpecVersion, Strategy = config.Strategy.Name,
            Sites = [_o.Site], ExampleCount = prepared.TrainRows, CreatedAt = _time.GetUtcNow(),
        };
        string path = WritePersonalizedModel(ModelFile.FromOpaque(header, System.Text.Encoding.UTF8.GetBytes(personalized.ToLightGbmModelText()), PayloadEncodings.LightGbmText));
        _log($"personalized: {best} (chosen on the validation patients); written to {path}");

        return personalized;
    }

    /// <summary>σ(score) of every row of <paramref name="rows"/> (row-major, <paramref name="width"/> columns).</summary>
    private static float[] TreeProbabilities(TreeEnsembleModel model, float[] rows, int width) =>
        model.ScoreRows(rows, width, Threads).Select(z => (float)(1 / (1 + Math.Exp(-z)))).ToArray();
}
