using System.Security.Cryptography;
using ClinicalFed.Data;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Privacy;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Tests.Trees;

public sealed class PrivateHistogramBoostingTests
{
    private static readonly TreeEnsembleModel Start = TreeTestData.HistogramStart;

    private static float[][] Cuts(int maxBins, params FeatureTable[] sites) => TreeTestData.MergedCuts(maxBins, sites);

    private static HistogramNoise Noise(double sd, double cap = 1) => new(cap, sd, new SecureGaussian(RandomNumberGenerator.Create()));

    /// <summary>The table's rows as a matrix in which every <paramref name="rowsPerPatient"/> consecutive rows are one patient.</summary>
    private static FeatureMatrix Patients(FeatureTable t, int rowsPerPatient) =>
        new(t.Values, t.Columns, t.Labels, groupIds: Enumerable.Range(0, t.Rows).Select(i => i / rowsPerPatient).ToArray(), groupCount: (t.Rows + rowsPerPatient - 1) / rowsPerPatient);

    private static void AssertSameTrees(TreeEnsembleModel expected, TreeEnsembleModel actual, double leafTolerance)
    {
        Assert.Equal(expected.Trees.Count, actual.Trees.Count);
        for (int t = 0; t < expected.Trees.Count; t++)
        {
            DecisionTree e = expected.Trees[t], a = actual.Trees[t];
            Assert.True(e.SplitFeature.SequenceEqual(a.SplitFeature) && e.Threshold.SequenceEqual(a.Threshold), $"tree {t}: splits differ");
            Assert.True(e.LeftChild.SequenceEqual(a.LeftChild) && e.RightChild.SequenceEqual(a.RightChild) && e.DefaultLeft.SequenceEqual(a.DefaultLeft), $"tree {t}: shape differs");
            for (int l = 0; l < e.LeafCount; l++) Assert.Equal(e.LeafValue[l], a.LeafValue[l], leafTolerance);
        }
    }

    [Fact]
    public void Private_sites_without_noise_grow_the_plain_trees_and_send_every_nodes_sums()
    {
        // One row per patient and a cap of 1: every row weighs 1, as without privacy. Zero noise: the only difference
        // left is that a child's sums come from the sites instead of the histogram's cumulative sums.
        var sites = TreeTestData.NonIidSites(601, 700, 500, 300);
        var options = new TreeBoostingOptions { NumberOfTrees = 6, NumberOfLeaves = 8, MaxDepth = 4, MaxBins = 32 };
        var cuts = Cuts(32, sites);
        var plain = new FederatedHistogramBooster(Start, sites.Select(s => new HistogramBoostingSite(Start, FeatureMatrix.FromTable(s), cuts, options)).ToList(), cuts, options);
        var parts = sites.Select(s => new HistogramBoostingSite(Start, Patients(s, 1), cuts, options, Noise(0))).ToList();
        var private0 = new FederatedHistogramBooster(Start, parts, cuts, options);
        var expected = plain.AddTrees(6);
        var actual = private0.AddTrees(6);
        AssertSameTrees(expected, actual, 1e-9);
        Assert.All(parts, p => Assert.True(p.Private));
        Assert.Equal([700, 500, 300], parts.Select(p => p.Patients));

        // Traffic: every exchange carries the node's three sums after its histogram.
        int slots = cuts.Sum(c => c.Length + 2);
        long exchanges = 6 + actual.Trees.Sum(t => (long)t.NodeCount);
        Assert.All(private0.BytesPerSite, b => Assert.Equal(8 * exchanges * (3L * slots + 3), b));
    }

    [Fact]
    public void A_patients_rows_share_one_weight_in_gradients_hessians_and_counts()
    {
        // Three rows per patient and a cap of 1: every row weighs 1/3. Without noise, the federation of one site grows
        // the trees of the booster on the same rows weighted 1/3 (counts are weights too; proportional counts make the
        // same choices once the minimum leaf size is out of the way).
        var site = TreeTestData.Site("A", 900, seed: 611, missingRate: 0.2);
        var options = new TreeBoostingOptions { NumberOfTrees = 5, NumberOfLeaves = 8, MaxDepth = 3, MaxBins = 16, MinExamplesPerLeaf = 1 };
        var cuts = Cuts(16, site);
        var part = new HistogramBoostingSite(Start, Patients(site, 3), cuts, options, Noise(0));
        Assert.Equal(300, part.Patients);
        var federated = new FederatedHistogramBooster(Start, [part], cuts, options).AddTrees(5);
        var weighted = GradientTreeBooster.Boost(Start, site.Values, site.Labels, site.Columns, options, Enumerable.Repeat(1f / 3, site.Rows).ToArray());
        AssertSameTrees(weighted, federated, 1e-6);

        // The root's count is the patients', not the rows'.
        var rows = part.BeginTree(null);
        var histogram = new double[3 * part.HistogramSlots];
        var (_, _, count) = rows.Root(histogram);
        Assert.Equal(300, count, 9);
    }

    [Fact]
    public void What_leaves_a_private_site_is_the_trees_features_with_noise_on_every_number()
    {
        var site = TreeTestData.Site("A", 400, seed: 621);
        var options = new TreeBoostingOptions { NumberOfTrees = 3, NumberOfLeaves = 4, MaxDepth = 2, MaxBins = 8, FeaturesPerTree = 2, Seed = 5 };
        var cuts = Cuts(8, site);
        // Every number a private site sends gets noise; without noise it is sent as it is.
        var sent = new double[9];
        new HistogramBoostingSite(Start, Patients(site, 1), cuts, options, Noise(1)).Release(sent);
        Assert.All(sent, v => Assert.NotEqual(0, v));
        var quiet = new double[] { 1, 2, 3 };
        new HistogramBoostingSite(Start, Patients(site, 1), cuts, options, Noise(0)).Release(quiet);
        Assert.Equal([1, 2, 3], quiet);

        // Only the tree's features travel, with the node's three sums: per exchange 3 numbers per slot of the tree's
        // two features, plus 3.
        var part = new HistogramBoostingSite(Start, Patients(site, 1), cuts, options, Noise(0.5));
        var booster = new FederatedHistogramBooster(Start, [part], cuts, options);
        var model = booster.AddTrees(3);
        long expected = 0;
        for (int t = 0; t < 3; t++)
        {
            int slots = GradientTreeBooster.TreeFeatures(options, cuts.Length, t)!.Sum(f => cuts[f].Length + 2);
            expected += 8L * (1 + model.Trees[t].NodeCount) * (3L * slots + 3);
        }
        Assert.Equal(expected, booster.BytesPerSite[0]);
    }

    [Fact]
    public void Noise_changes_the_trees_and_every_site_of_a_private_federation_must_add_it()
    {
        var a = TreeTestData.Site("A", 600, seed: 631);
        var b = TreeTestData.Site("B", 600, seed: 632, shift: 0.3);
        var options = new TreeBoostingOptions { NumberOfTrees = 3, NumberOfLeaves = 4, MaxDepth = 2, MaxBins = 16 };
        var cuts = Cuts(16, a, b);
        HistogramBoostingSite Site(FeatureTable t, double sd) => new(Start, Patients(t, 1), cuts, options, Noise(sd));
        var quiet = new FederatedHistogramBooster(Start, [Site(a, 0), Site(b, 0)], cuts, options).AddTrees(3);
        var loud = new FederatedHistogramBooster(Start, [Site(a, 20), Site(b, 20)], cuts, options).AddTrees(3);
        Assert.Contains(Enumerable.Range(0, 3), t => !quiet.Trees[t].LeafValue.SequenceEqual(loud.Trees[t].LeafValue));

        var plain = new HistogramBoostingSite(Start, FeatureMatrix.FromTable(b), cuts, options);
        Assert.Contains("sites 1 add no noise", Assert.Throws<ArgumentException>(() => new FederatedHistogramBooster(Start, [Site(a, 1), plain], cuts, options)).Message);
        var noPatients = new FeatureMatrix(a.Values, a.Columns, a.Labels);
        Assert.Contains("needs the rows' patients", Assert.Throws<ArgumentException>(() => new HistogramBoostingSite(Start, noPatients, cuts, options, Noise(1))).Message);
        var weighted = FeatureMatrix.FromTable(a, weights: Enumerable.Repeat(2f, a.Rows).ToArray());
        Assert.Contains("must not bring its own", Assert.Throws<ArgumentException>(() => new HistogramBoostingSite(Start, weighted, cuts, options, Noise(1))).Message);
        Assert.Contains("row subsampling", Assert.Throws<ArgumentException>(() =>
            new HistogramBoostingSite(Start, Patients(a, 1), cuts, options with { RowSubsample = 0.5 }, Noise(1))).Message);
    }

    [Fact]
    public void Features_per_tree_are_drawn_from_the_seed_and_bound_every_split()
    {
        var options = new TreeBoostingOptions { NumberOfTrees = 12, NumberOfLeaves = 6, FeaturesPerTree = 3, Seed = 7, MaxBins = 32 };
        var first = GradientTreeBooster.TreeFeatures(options, 8, 0)!;
        Assert.Equal(3, first.Length);
        Assert.Equal(first.Order(), first);
        Assert.Equal(first, GradientTreeBooster.TreeFeatures(options, 8, 0));
        Assert.Contains(Enumerable.Range(1, 11), t => !GradientTreeBooster.TreeFeatures(options, 8, t)!.SequenceEqual(first));
        Assert.Null(GradientTreeBooster.TreeFeatures(options with { FeaturesPerTree = 0 }, 8, 0));
        Assert.Null(GradientTreeBooster.TreeFeatures(options with { FeaturesPerTree = 8 }, 8, 0));

        // Local boosting and a federation split only on each tree's features.
        var site = TreeTestData.Site("A", 800, seed: 641, missingRate: 0.2);
        var local = GradientTreeBooster.Boost(Start, site, options);
        var cuts = Cuts(32, site);
        var federated = new FederatedHistogramBooster(Start, [new HistogramBoostingSite(Start, FeatureMatrix.FromTable(site), cuts, options)], cuts, options).AddTrees(12);
        foreach (var model in new[] { local, federated })
            for (int t = 0; t < model.Trees.Count; t++)
                Assert.All(model.Trees[t].SplitFeature.ToArray(), f => Assert.Contains(f, GradientTreeBooster.TreeFeatures(options, 8, t)!));
    }

    [Fact]
    public void Leaf_values_are_clipped_before_the_learning_rate()
    {
        var site = TreeTestData.Site("A", 600, seed: 651);
        var options = new TreeBoostingOptions { NumberOfTrees = 3, NumberOfLeaves = 8, LearningRate = 0.5, MaxLeafOutput = 0.1, MinExamplesPerLeaf = 5 };
        var model = GradientTreeBooster.Boost(Start, site, options);
        var leaves = model.Trees.SelectMany(t => t.LeafValue.ToArray()).ToArray();
        Assert.All(leaves, v => Assert.InRange(Math.Abs(v), 0, 0.05 + 1e-12));
        Assert.Contains(leaves, v => Math.Abs(Math.Abs(v) - 0.05) < 1e-12);
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientTreeBooster.Boost(Start, site, options with { MaxLeafOutput = -1 }));
    }

    [Fact]
    public void One_site_boosts_its_own_rows_privately_within_the_shape_it_was_given()
    {
        var site = TreeTestData.Site("A", 2000, seed: 661, missingRate: 0.2);
        var options = new TreeBoostingOptions { NumberOfTrees = 5, NumberOfLeaves = 8, MaxDepth = 3, MaxBins = 16, FeaturesPerTree = 4, LearningRate = 0.3, Seed = 3 };
        var model = PrivateTreeBoosting.Boost(null, Patients(site, 2), options, cap: 1, noiseMultiplier: 2, new SecureGaussian(RandomNumberGenerator.Create()), TreeTestData.Names);
        Assert.Equal(5, model.Trees.Count);
        for (int t = 0; t < 5; t++)
        {
            var tree = model.Trees[t];
            Assert.True(tree.LeafCount <= 8);
            Assert.All(tree.LeafValue.ToArray(), v => Assert.InRange(Math.Abs(v), 0, 0.3 * PrivateTreeBoosting.MaxLeafOutput + 1e-12));
            Assert.All(tree.SplitFeature.ToArray(), f => Assert.Contains(f, GradientTreeBooster.TreeFeatures(options, 8, t)!));
        }
        // The base score is the noisy prevalence's log-odds: near the site's own (1,000 patients; noise σ·√2 ≈ 2.8 on each sum).
        double prevalence = site.Labels.Average(y => (double)y);
        Assert.InRange(model.BaseScore, Math.Log(prevalence / (1 - prevalence)) - 0.1, Math.Log(prevalence / (1 - prevalence)) + 0.1);
        Assert.Contains("needs a maximum depth", Assert.Throws<ArgumentException>(() =>
            PrivateTreeBoosting.Boost(null, Patients(site, 2), options with { MaxDepth = 0 }, 1, 2, new SecureGaussian(RandomNumberGenerator.Create()))).Message);
    }

    [Fact]
    public void A_turn_costs_the_cuts_and_depth_plus_one_queries_per_tree_and_sigma_covers_the_planned_turns()
    {
        Assert.Equal(102, PrivateTreeBoosting.Queries(trees: 20, maxDepth: 4, baseScore: true));
        Assert.Equal(101, PrivateTreeBoosting.Queries(trees: 20, maxDepth: 4, baseScore: false));
        var settings = new TreeClientSettings { Trees = 6, Depth = 3, DpEpsilon = 4, DpRounds = 3 };
        Assert.Empty(settings.Validate());
        // Three turns: the first with a base score (2 + 24), the others without (1 + 24).
        double sigma = settings.DpSigma();
        Assert.Equal(HistogramPrivacy.Calibrate(4, 1e-5, 26 + 2 * 25), sigma, 12);
        Assert.Equal(0.7, (settings with { DpNoiseMultiplier = 0.7 }).DpSigma());
        // The settings travel in a manifest and come back whole.
        var back = TreeClientSettings.From(ClinicalFed.Federation.StrategySpec.From(new ClinicalFed.Federation.TreeBaggingOptions(), settings.ToClientOptions()));
        Assert.Equal(settings, back);
        Assert.False(new TreeClientSettings().ToClientOptions().ContainsKey(TreeClientSettings.DepthKey));
        var problems = (settings with { Depth = 0, Bins = 1, DpPatientWeight = 0 }).Validate();
        Assert.Contains(problems, p => p.Contains("differentially private trees need a depth", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("'client_tree_bins' is 1", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("'client_dp_patient_weight' is 0", StringComparison.Ordinal));
    }
}
