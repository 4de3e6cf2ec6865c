using ClinicalFed.Data;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Testing;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Tests.Trees;

public class FederatedTreeTests
{
    private static readonly MlNetTreeOptions SiteOptions = new() { NumberOfTrees = 15, NumberOfLeaves = 8, MinimumExampleCountPerLeaf = 10, NumberOfThreads = 1, Seed = 5 };

    // Three non-IID sites: shifted covariates, different prevalence and missingness.
    private static FeatureTable[] TrainSites() =>
    [
        TreeTestData.Site("A", 1000, seed: 101, shift: 0.0, intercept: -1.0, missingRate: 0.1),
        TreeTestData.Site("B", 700, seed: 102, shift: 0.4, intercept: -1.6, missingRate: 0.3),
        TreeTestData.Site("C", 500, seed: 103, shift: -0.3, intercept: -0.6, missingRate: 0.05),
    ];

    private static FeatureTable[] TestSites() =>
    [
        TreeTestData.Site("A", 1500, seed: 201, shift: 0.0, intercept: -1.0, missingRate: 0.1),
        TreeTestData.Site("B", 1500, seed: 202, shift: 0.4, intercept: -1.6, missingRate: 0.3),
        TreeTestData.Site("C", 1500, seed: 203, shift: -0.3, intercept: -0.6, missingRate: 0.05),
    ];

    private static double Auroc(TreeEnsembleModel model, FeatureTable test) => TreeTestData.Auroc(model.ScoreTable(test), test.Labels);

    [Fact]
    public void Bagging_merge_is_exactly_the_example_weighted_average_of_site_scores()
    {
        var sites = TrainSites();
        var models = new[]
        {
            MlNetTreeTrainer.TrainLightGbm(sites[0], SiteOptions),
            MlNetTreeTrainer.TrainLightGbm(sites[1], SiteOptions),
            GradientTreeBooster.Train(sites[2], new TreeBoostingOptions { NumberOfTrees = 10, NumberOfLeaves = 8 }),
        };
        var merged = TreeBagging.Merge(models.Select((m, k) => new SiteEnsemble(m, sites[k].Rows)).ToArray());
        double total = sites.Sum(s => s.Rows);
        Assert.Equal(models.Sum(m => m.Trees.Count), merged.Trees.Count);
        Assert.Equal(sites.Select((s, k) => s.Rows / total * models[k].BaseScore).Sum(), merged.BaseScore, 12);

        foreach (var row in TreeTestRows.Random(500, 9, merged, nanRate: 0.2))
        {
            double expected = 0;
            for (int k = 0; k < models.Length; k++) expected += sites[k].Rows / total * models[k].Score(row);
            Assert.Equal(expected, merged.Score(row), 1e-12);
        }
        // The merged ensemble travels and loads like any other.
        Assert.True(merged.StructurallyEquals(TreeEnsembleModel.FromBytes(merged.ToBytes())));
    }

    [Fact]
    public void Bagging_of_FastTree_sites_matches_the_weighted_average_and_beats_the_smallest_site()
    {
        var train = TrainSites().Select(TreeTestData.Imputed).ToArray();
        var test = TreeTestData.Imputed(TreeTestData.Pool(TestSites()));
        var models = train.Select(t => MlNetTreeTrainer.TrainFastTree(t, SiteOptions)).ToArray();
        var merged = TreeBagging.Merge(models.Select((m, k) => new SiteEnsemble(m, train[k].Rows)).ToArray());
        double total = train.Sum(s => s.Rows);
        var rows = TreeTestRows.Random(200, 10, merged, nanRate: 0.1);
        foreach (var row in rows)
            Assert.Equal(models.Select((m, k) => train[k].Rows / total * m.Score(row)).Sum(), merged.Score(row), 12);
        Assert.True(Auroc(merged, test) > Auroc(models[2], test), $"bagged {Auroc(merged, test):F4} vs smallest site {Auroc(models[2], test):F4}");
    }

    [Fact]
    public void Cyclic_boosting_across_three_sites_approaches_a_centralized_model()
    {
        var train = TrainSites();
        var test = TreeTestData.Pool(TestSites());
        var options = new TreeBoostingOptions { NumberOfTrees = 10, NumberOfLeaves = 8, LearningRate = 0.1, NumberOfThreads = 1 };
        int turns = 0;
        var cyclic = CyclicTreeBoosting.Run(train, rounds: 2, options, afterTurn: (_, _, m) => { turns++; Assert.Equal(10 * turns, m.Trees.Count); });
        Assert.Equal(6, turns);
        Assert.Equal(60, cyclic.Trees.Count);

        var pooled = TreeTestData.Pool(train);
        var central = GradientTreeBooster.Train(pooled, options with { NumberOfTrees = 60 });
        var centralLightGbm = MlNetTreeTrainer.TrainLightGbm(pooled, new MlNetTreeOptions { NumberOfTrees = 60, NumberOfLeaves = 8, NumberOfThreads = 1 });
        double aCyclic = Auroc(cyclic, test), aCentral = Auroc(central, test), aLgbm = Auroc(centralLightGbm, test);
        var localOnly = train.Select(s => Auroc(GradientTreeBooster.Train(s, options with { NumberOfTrees = 60 }), test)).ToArray();

        Assert.True(aCyclic > aCentral - 0.02, $"cyclic {aCyclic:F4} vs centralized booster {aCentral:F4}");
        Assert.True(aCyclic > aLgbm - 0.02, $"cyclic {aCyclic:F4} vs centralized LightGBM {aLgbm:F4}");
        Assert.True(aCyclic > localOnly.Average(), $"cyclic {aCyclic:F4} vs mean site-only {localOnly.Average():F4}");
        // Every site's turn is needed: the ensemble after the first turn (site A only) is clearly worse.
        Assert.True(Auroc(cyclic.Prefix(10), test) < aCyclic - 0.005);
    }

    [Fact]
    public void Local_trees_personalize_the_global_ensemble_for_a_site_that_differs()
    {
        // Site C has an effect (x6) the others do not have.
        var shared = new[] { TreeTestData.Site("A", 1500, 501), TreeTestData.Site("B", 1500, 502, shift: 0.3) };
        var cTrain = TreeTestData.Site("C", 1200, 503, siteEffect: 1.5);
        var cTest = TreeTestData.Site("C", 1200, 504, siteEffect: 1.5);
        var options = new TreeBoostingOptions { NumberOfTrees = 10, NumberOfLeaves = 8 };
        var global = CyclicTreeBoosting.Run([.. shared, cTrain], rounds: 2, options);

        var personal = LocalTreePersonalization.AddLocalTrees(global, cTrain, options with { NumberOfTrees = 15 });
        Assert.Equal(global.Trees.Count + 15, personal.Trees.Count);
        Assert.True(global.StructurallyEquals(LocalTreePersonalization.GlobalPart(personal, global.Trees.Count)));
        double before = TreeTestData.LogLoss(global.ScoreTable(cTest), cTest.Labels);
        double after = TreeTestData.LogLoss(personal.ScoreTable(cTest), cTest.Labels);
        Assert.True(after < before - 0.01, $"site C held-out log-loss {before:F4} → {after:F4}");
        Assert.True(Auroc(personal, cTest) > Auroc(global, cTest));
        // The local trees learned the site-specific feature.
        var localFeatures = personal.Trees.Skip(global.Trees.Count).SelectMany(t => t.SplitFeature.ToArray());
        Assert.Contains(6, localFeatures);
    }
}
