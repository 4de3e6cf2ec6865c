using ClinicalFed.Cli.Simulation;
using ClinicalFed.Cli.Site;
using ClinicalFed.Data;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Storage;
using ClinicalFed.Trees;

namespace ClinicalFed.Cli.Tests.Site;

/// <summary>
/// Tree federations through the real path: site agents, the coordinator's ticks (what the timer function runs) and a
/// folder store, on the three generated sites.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class TreeFederationAgentTests(ThreeSitesFixture data) : IClassFixture<ThreeSitesFixture>
{
    private const string Fed = "tree-study";
    private static readonly TreeClientSettings Small = new() { Trees = 6, Leaves = 7 };

    /// <summary>
    /// tree-bagging in one round: the aggregator's merged ensemble is the one <c>simulate --model trees --tree-mode
    /// bagging</c> builds from the same sites with the same settings, tree for tree, and every site's global and
    /// personalized test AUROC are simulate's.
    /// </summary>
    [Fact]
    public async Task Bagging_agents_reproduce_simulate()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var federation = new AgentFederation(store, Fed, "sepsis", data.Sources, tmp.Path)
        {
            Rounds = 1, Configure = s => s with { Model = ModelKinds.Trees, Strategy = StrategyNames.TreeBagging, Trees = Small },
        };
        var reports = await federation.RunAsync();

        var sim = SimulationRunner.Run(new SimulationOptions
        {
            Task = "sepsis", Sites = data.Sources, Model = "trees", TreeMode = "bagging", Trees = Small.Trees, Leaves = Small.Leaves,
            OutputDirectory = tmp["sim"], BaselineEpochs = 1,
        });
        var expected = (await new LocalFolderStore(Path.Combine(tmp["sim"], "store")).GetGlobalModelAsync(SimulationRunner.Federation, 0))!.TreeEnsemble;
        var actual = (await store.GetGlobalModelAsync(Fed, 0))!.TreeEnsemble;
        Assert.Equal(3 * Small.Trees, actual.Trees.Count);
        Assert.Equal(expected.ToLightGbmModelText(), actual.ToLightGbmModelText());

        foreach (var r in reports)
        {
            Assert.Equal([0], r.RoundsTrained);
            // The site's test AUROC of the global model is simulate's federated AUROC for it.
            // ... and its personalization makes simulate's choice among the same candidates.
            var simSite = sim.Sites.Single(s => s.Name == r.Site);
            Assert.Equal(simSite.Auroc.Federated!.Value, r.Auroc["global"]!.Value, 6);
            Assert.Equal(simSite.Auroc.Personalized!.Value, r.Auroc["personalized"]!.Value, 6);
            var personalized = ModelFile.Read(File.ReadAllBytes(Path.Combine(federation.WorkDirectory(r.Site), SiteAgent.PersonalizedModelFileName)), "personalized");
            Assert.Equal(ModelKinds.Trees, personalized.Header.Kind);
            Assert.Equal(PayloadEncodings.LightGbmText, personalized.Header.PayloadEncoding);
        }

        // serve --personalized: a site's own file with its federation's round; another federation's round is refused.
        string file = Path.Combine(federation.WorkDirectory(reports[0].Site), SiteAgent.PersonalizedModelFileName);
        var served = Serving.ScoringModel.Load(Path.Combine(tmp["store"], "federations", Fed, "rounds", "00000"), null, file);
        Assert.Equal((ModelKinds.Trees, file), (served.Kind, served.Source));
        var wrong = Assert.Throws<InvalidOperationException>(() =>
            Serving.ScoringModel.Load(Path.Combine(tmp["sim"], "store", "federations", SimulationRunner.Federation, "rounds", "00000"), null, file));
        Assert.Contains($"federation '{Fed}'", wrong.Message);
    }

    /// <summary>
    /// tree-cyclic over two passes: each round expects exactly the site whose turn it is, in registration order; each
    /// global ensemble extends the previous one; and the last one is exactly the ensemble grown turn by turn here
    /// from the sites' own prepared rows (first turn from the first site's own prevalence, seed + 1000·pass + place).
    /// </summary>
    [Fact]
    public async Task Cyclic_agents_take_turns_and_grow_the_expected_ensemble()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var federation = new AgentFederation(store, Fed, "sepsis", data.Sources, tmp.Path)
        {
            Rounds = 6, Quorum = 1, Configure = s => s with { Model = ModelKinds.Trees, Strategy = StrategyNames.TreeCyclic, Trees = Small },
        };
        var reports = await federation.RunAsync();

        var names = data.Sources.Select(s => s.Name).ToArray();
        TreeEnsembleModel? previous = null;
        for (int r = 0; r < 6; r++)
        {
            var manifest = (await store.GetManifestAsync(Fed, r))!;
            Assert.Equal([names[r % 3]], manifest.Sites);
            Assert.Equal(RoundStatuses.Aggregated, (await store.GetRoundResultAsync(Fed, r))!.Status);
            var global = (await store.GetGlobalModelAsync(Fed, r))!.TreeEnsemble;
            Assert.Equal((r + 1) * Small.Trees, global.Trees.Count);
            if (previous is not null) Assert.True(global.Extends(previous), $"round {r}'s ensemble does not extend round {r - 1}'s");
            previous = global;
        }

        // The same boosting, done here from each site's prepared rows (its feature table and the federated statistics).
        var statistics = (await store.GetFederatedStatisticsAsync(Fed))!;
        var prepared = names.Select(n => SitePreparation.Prepare(n,
            FeatureTableFile.Load(Path.Combine(federation.WorkDirectory(n), "features", FeatureTableFile.FileName)), statistics)).ToArray();
        int d = prepared[0].Width;
        var expected = CyclicTreeBoosting.InitialModel(d, [(prepared[0].TrainY.Sum(y => (double)y), prepared[0].TrainRows)], prepared[0].Columns.ToArray());
        for (int r = 0; r < 6; r++)
        {
            var site = prepared[r % 3];
            expected = GradientTreeBooster.Boost(expected, new FeatureMatrix(site.TrainX, d, site.TrainY), Small.Boosting(Small.Trees, Small.Seed + 1000 * (r / 3) + r % 3, 2));
        }
        Assert.Equal(expected.ToLightGbmModelText(), previous!.ToLightGbmModelText());

        foreach (var r in reports)
        {
            int place = Array.IndexOf(names, r.Site);
            Assert.Equal([place, place + 3], r.RoundsTrained);
            Assert.Equal(5, r.FinalRound);
            Assert.Equal([(place, "tree-ensemble"), (place + 3, "tree-ensemble")], r.Uploads.Select(u => (u.Round, u.PayloadEncoding)));
            Assert.All(r.Uploads, u => Assert.True(u.PayloadBytes > 0 && u.Float32Bytes is null));
            FederationHarness.AssertSiteReport(federation.WorkDirectory(r.Site), r);
            var site = prepared[place];
            var probabilities = expected.ScoreRows(site.TestX, d).Select(z => (float)(1 / (1 + Math.Exp(-z)))).ToArray();
            Assert.Equal(Metrics.Auroc(probabilities, site.TestY), r.Auroc["global"]!.Value, 6);
            Assert.NotNull(r.Auroc["personalized"]);
        }
    }

    /// <summary>
    /// Differentially private tree-bagging through the agents: each site grows its ensemble privately, its ledger in
    /// the work folder charges the turn before training, the update header declares what it cost, and a site whose
    /// ledger has no room left refuses to train.
    /// </summary>
    [Fact]
    public async Task Private_bagging_agents_charge_their_ledgers_and_declare_the_cost()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var settings = Small with { Depth = 3, FeaturesPerTree = 4, Bins = 16, DpEpsilon = 5, DpRounds = 1 };
        var federation = new AgentFederation(store, Fed, "sepsis", data.Sources, tmp.Path)
        {
            Rounds = 1, Configure = s => s with { Model = ModelKinds.Trees, Strategy = StrategyNames.TreeBagging, Trees = settings },
        };
        var reports = await federation.RunAsync();
        var manifest = (await store.GetManifestAsync(Fed, 0))!;
        Assert.Equal(settings, TreeClientSettings.From(manifest.Strategy));

        // One turn: the base score, the cuts and 4 levels of each of 6 trees.
        long queries = 2 + 6 * 4;
        double sigma = settings.DpSigma();
        foreach (var r in reports)
        {
            Assert.Equal([0], r.RoundsTrained);
            await using var update = (await store.OpenUpdateAsync(Fed, 0, r.Site))!;
            var (header, ensemble) = ClinicalFed.Federation.UpdateFile.ReadTreeEnsemble(update);
            var cost = header.Privacy!;
            Assert.Equal(ClinicalFed.Privacy.PrivacyMechanisms.HistogramGaussian, cost.Mechanism);
            Assert.Equal((queries, 1.0, 1.0), (cost.Steps, cost.SamplingRate, cost.ClipNorm));
            Assert.Equal(sigma, cost.NoiseMultiplier, 12);
            Assert.InRange(cost.EpsilonTotal, 4.9, 5.0);
            Assert.Equal(cost.EpsilonRound, cost.EpsilonTotal, 12);
            Assert.Equal(6, ensemble.Trees.Count);
            Assert.All(ensemble.Trees, t => Assert.True(t.LeafCount <= 8));
            var ledger = ClinicalFed.Privacy.PrivacyBudgetLedger.LoadOrCreate(Path.Combine(federation.WorkDirectory(r.Site), ClinicalFed.Privacy.PrivacyBudgetLedger.FileName), 5, 1e-5);
            Assert.Equal((queries, 1), (ledger.Steps, ledger.Rounds));
            // The budget is spent: one more turn at this σ does not fit.
            Assert.Throws<ClinicalFed.Privacy.PrivacyBudgetExceededException>(() => ledger.EnsureCanSpend(1, sigma, queries, r.Site));
            // The site's own report says what it spent.
            FederationHarness.AssertSiteReport(federation.WorkDirectory(r.Site), r);
            Assert.Equal(Math.Round(cost.EpsilonTotal, 6), r.Privacy!.EpsilonSpent); // rounded to 6 digits in the report
            Assert.Equal((5.0, 1, queries), (r.Privacy.EpsilonBudget, r.Privacy.Rounds, r.Privacy.Steps));
            Assert.Contains("Differential privacy, the patient as the unit", File.ReadAllText(Path.Combine(federation.WorkDirectory(r.Site), "site-report.html")));
        }
    }
}
