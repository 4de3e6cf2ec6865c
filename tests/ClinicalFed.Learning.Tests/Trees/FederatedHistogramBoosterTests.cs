using ClinicalFed.Data;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Tests.Trees;

public sealed class FederatedHistogramBoosterTests
{
    private static readonly TreeEnsembleModel Start = TreeTestData.HistogramStart;

    private static float[][] Cuts(int maxBins, params FeatureTable[] sites) => TreeTestData.MergedCuts(maxBins, sites);

    private static (TreeEnsembleModel Model, FederatedHistogramBooster Booster) Federate(TreeBoostingOptions options, float[][] cuts, params FeatureTable[] sites)
    {
        var parts = sites.Select((s, i) => new HistogramBoostingSite(Start, FeatureMatrix.FromTable(s), cuts, options with { Seed = options.Seed + i })).ToList();
        var booster = new FederatedHistogramBooster(Start, parts, cuts, options);
        return (booster.AddTrees(options.NumberOfTrees), booster);
    }

    [Fact]
    public void One_site_federation_is_the_site_booster_bit_for_bit()
    {
        // 1,000 rows (≤ 1,024 sketch points): the site's sketch is exact, so the federation's cuts are its own.
        var site = TreeTestData.Site("A", 1000, seed: 501, missingRate: 0.3);
        var options = new TreeBoostingOptions { NumberOfTrees = 8, NumberOfLeaves = 9, MaxBins = 16, RowSubsample = 0.8, Seed = 4 };
        var (federated, _) = Federate(options, Cuts(16, site), site);
        var alone = GradientTreeBooster.Boost(Start, site, options);
        Assert.True(alone.StructurallyEquals(federated));
    }

    [Fact]
    public void Three_site_federation_grows_the_trees_of_the_pooled_rows()
    {
        // Non-IID sites, each small enough for exact sketches: the merged cuts are the pooled rows' cuts, and every
        // split and leaf equals boosting the pooled rows, up to the order of floating-point additions.
        FeatureTable[] sites =
        [
            TreeTestData.Site("A", 900, seed: 511, missingRate: 0.2),
            TreeTestData.Site("B", 600, seed: 512, shift: 0.5, intercept: -1.5, missingRate: 0.1, siteEffect: 0.8),
            TreeTestData.Site("C", 350, seed: 513, shift: -0.3, missingRate: 0.4),
        ];
        var options = new TreeBoostingOptions { NumberOfTrees = 10, NumberOfLeaves = 12, MaxBins = 32 };
        var cuts = Cuts(32, sites);
        var (federated, booster) = Federate(options, cuts, sites);
        var pooled = TreeTestData.Pool(sites);
        var central = GradientTreeBooster.Boost(Start, pooled, options);

        Assert.Equal(central.Trees.Count, federated.Trees.Count);
        for (int t = 0; t < central.Trees.Count; t++)
        {
            DecisionTree c = central.Trees[t], f = federated.Trees[t];
            Assert.True(c.SplitFeature.SequenceEqual(f.SplitFeature), $"tree {t}: split features differ");
            Assert.True(c.Threshold.SequenceEqual(f.Threshold), $"tree {t}: thresholds differ");
            Assert.True(c.DefaultLeft.SequenceEqual(f.DefaultLeft) && c.LeftChild.SequenceEqual(f.LeftChild) && c.RightChild.SequenceEqual(f.RightChild), $"tree {t}: shape differs");
            for (int l = 0; l < c.LeafCount; l++) Assert.Equal(c.LeafValue[l], f.LeafValue[l], 1e-9);
        }
        var (a, b) = (central.ScoreTable(pooled), federated.ScoreTable(pooled));
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i], 1e-8);

        // Traffic: per tree each site sends the root's histogram with its three sums, then one histogram per split.
        int slots = cuts.Sum(c => c.Length + 2);
        long splits = federated.Trees.Sum(tr => (long)tr.NodeCount);
        long expected = 8L * (options.NumberOfTrees * (3L * slots + 3) + splits * 3L * slots);
        Assert.All(booster.BytesPerSite, bytes => Assert.Equal(expected, bytes));
        Assert.Equal(options.NumberOfTrees + splits, booster.Histograms);
        Assert.True(booster.Validates);
        Assert.Empty(booster.Rejected); // honest histograms pass every check
    }

    [Fact]
    public void Boosting_in_two_calls_equals_boosting_in_one()
    {
        var sites = new[] { TreeTestData.Site("A", 700, seed: 521, missingRate: 0.2), TreeTestData.Site("B", 500, seed: 522, shift: 0.4) };
        var options = new TreeBoostingOptions { NumberOfTrees = 6, NumberOfLeaves = 8, MaxBins = 24 };
        var cuts = Cuts(24, sites);
        var (once, _) = Federate(options, cuts, sites);
        var parts = sites.Select((s, i) => new HistogramBoostingSite(Start, FeatureMatrix.FromTable(s), cuts, options with { Seed = i })).ToList();
        var booster = new FederatedHistogramBooster(Start, parts, cuts, options);
        booster.AddTrees(2);
        var twice = booster.AddTrees(4);
        Assert.True(once.StructurallyEquals(twice));
        Assert.All(parts, p => Assert.Equal(6, p.Trees));
    }

    [Fact]
    public void Masked_histograms_grow_the_trees_of_plain_ones()
    {
        var sites = TreeTestData.NonIidSites(541, 800, 500, 300);
        var options = new TreeBoostingOptions { NumberOfTrees = 6, NumberOfLeaves = 10, MaxBins = 32 };
        var cuts = Cuts(32, sites);
        var (plain, plainBooster) = Federate(options, cuts, sites);

        var keys = sites.Select(_ => ClinicalFed.Privacy.SecureAggregation.PairwiseKeys.Create()).ToArray();
        var parts = sites.Select((s, i) => new HistogramBoostingSite(Start, FeatureMatrix.FromTable(s), cuts, options with { Seed = options.Seed + i })).ToList();
        for (int i = 0; i < parts.Count; i++)
            parts[i].MaskWith(new ClinicalFed.Privacy.SecureAggregation.ExchangeMasker("fed", sites[i].Header.Site, keys[i],
                Enumerable.Range(0, sites.Length).Where(j => j != i).ToDictionary(j => sites[j].Header.Site, j => ClinicalFed.Privacy.SecureAggregation.PairwiseKeys.PublicKeyBase64(keys[j]))));
        // Every site masks, or none.
        var unmasked = new HistogramBoostingSite(Start, FeatureMatrix.FromTable(sites[2]), cuts, options);
        var e = Assert.Throws<ArgumentException>(() => new FederatedHistogramBooster(Start, [parts[0], parts[1], unmasked], cuts, options));
        Assert.Contains("sites 2 do not mask", e.Message);

        var secure = new FederatedHistogramBooster(Start, parts, cuts, options);
        Assert.True(secure.Secure);
        var masked = secure.AddTrees(options.NumberOfTrees);

        // The ring's rounding (about 1e-15 here) may not change a split: the same trees, leaf values within 1e-9.
        for (int t = 0; t < plain.Trees.Count; t++)
        {
            Assert.True(plain.Trees[t].SplitFeature.SequenceEqual(masked.Trees[t].SplitFeature) && plain.Trees[t].Threshold.SequenceEqual(masked.Trees[t].Threshold), $"tree {t} differs");
            for (int l = 0; l < plain.Trees[t].LeafCount; l++) Assert.Equal(plain.Trees[t].LeafValue[l], masked.Trees[t].LeafValue[l], 1e-9);
        }
        Assert.Equal(plainBooster.BytesPerSite, secure.BytesPerSite);
        foreach (var k in keys) k.Dispose();
    }

    [Fact]
    public void The_coordinator_refuses_sites_with_other_cuts_or_another_start()
    {
        var a = TreeTestData.Site("A", 300, seed: 531);
        var b = TreeTestData.Site("B", 300, seed: 532);
        var options = new TreeBoostingOptions { NumberOfTrees = 2, NumberOfLeaves = 4, MaxBins = 16 };
        var cuts = Cuts(16, a, b);
        var own = Cuts(8, b);
        var sameCuts = new HistogramBoostingSite(Start, FeatureMatrix.FromTable(a), cuts, options);
        var otherCuts = new HistogramBoostingSite(Start, FeatureMatrix.FromTable(b), own, options);
        var e = Assert.Throws<ArgumentException>(() => new FederatedHistogramBooster(Start, [sameCuts, otherCuts], cuts, options));
        Assert.Contains("site 1 bins with other cuts", e.Message);
        // Same number of bins, one cut moved: still refused.
        var moved = cuts.Select(c => (float[])c.Clone()).ToArray();
        moved[3][0] = HistogramBinning.Midpoint(moved[3][0] - 0.01f, moved[3][0]);
        var shifted = new HistogramBoostingSite(Start, FeatureMatrix.FromTable(b), moved, options);
        e = Assert.Throws<ArgumentException>(() => new FederatedHistogramBooster(Start, [sameCuts, shifted], cuts, options));
        Assert.Contains("site 1 bins with other cuts (feature 3 differs", e.Message);

        var grown = GradientTreeBooster.Boost(Start, a, options);
        var ahead = new HistogramBoostingSite(grown, FeatureMatrix.FromTable(b), cuts, options);
        e = Assert.Throws<ArgumentException>(() => new FederatedHistogramBooster(Start, [sameCuts, ahead], cuts, options));
        Assert.Contains("site 1 stands at 2 trees, the start ensemble has 0", e.Message);

        Assert.Contains("3 features have cuts", Assert.Throws<ArgumentException>(() =>
            new HistogramBoostingSite(Start, FeatureMatrix.FromTable(a), cuts[..3], options)).Message);
    }

    [Theory]
    [InlineData("counts", "is not a whole number")]
    [InlineData("gradients", "larger than")]
    [InlineData("hessians", "outside [0,")]
    [InlineData("one feature", "covers other rows than feature")]
    [InlineData("more rows", "more than the 400 it declared")]
    [InlineData("node sums", "the node's sums")]
    [InlineData("infinite", "number 1 of its histogram is")]
    public void The_coordinator_leaves_out_a_site_whose_histogram_fails_a_check_and_grows_the_others_trees(string tamper, string reason)
    {
        var sites = TreeTestData.NonIidSites(551, 700, 500, 400);
        var options = new TreeBoostingOptions { NumberOfTrees = 4, NumberOfLeaves = 8, MaxBins = 16 };
        var cuts = Cuts(16, sites);
        var (expected, _) = Federate(options, cuts, sites[0], sites[1]);
        var parts = sites.Select((s, i) => new HistogramBoostingSite(Start, FeatureMatrix.FromTable(s), cuts, options with { Seed = options.Seed + i })).ToList();
        int featureZero = 3 * (cuts[0].Length + 2);
        parts[2].Tamper = tamper switch
        {
            "counts" => v => v[2] += 0.5,
            "gradients" => v => { for (int i = 0; i < v.Length; i += 3) v[i] *= 50; },
            "hessians" => v => { for (int i = 1; i < v.Length; i += 3) v[i] = -v[i] - 1; },
            // Feature 0's histogram of twice the rows: every bin is plausible on its own.
            "one feature" => v => { for (int i = 0; i < featureZero; i++) v[i] *= 2; },
            // Every number doubled: consistent, but twice the rows the site has.
            "more rows" => v => { for (int i = 0; i < v.Length; i++) v[i] *= 2; },
            "node sums" => v => v[^3] += 5,
            "infinite" => v => v[1] = double.PositiveInfinity,
            _ => throw new ArgumentOutOfRangeException(nameof(tamper)),
        };
        var booster = new FederatedHistogramBooster(Start, parts, cuts, options);
        var model = booster.AddTrees(4);
        var (tree, site, why) = Assert.Single(booster.Rejected);
        Assert.Equal((0, 2), (tree, site));
        Assert.Contains(reason, why);
        Assert.Equal([0, 1], booster.ActiveSites);
        // The site failed the first exchange of the first tree: the federation grew the other two sites' trees.
        Assert.True(expected.StructurallyEquals(model));

        // Alone, it leaves no site to grow trees with.
        var alone = new HistogramBoostingSite(Start, FeatureMatrix.FromTable(sites[2]), cuts, options) { Tamper = parts[2].Tamper };
        Assert.Throws<FederatedHistogramBooster.AllSitesRejectedException>(() => new FederatedHistogramBooster(Start, [alone], cuts, options).AddTrees(1));
    }

    [Fact]
    public void A_site_that_trains_on_flipped_labels_passes_the_checks()
    {
        var honest = TreeTestData.Site("A", 600, seed: 561);
        var other = TreeTestData.Site("B", 600, seed: 562);
        var flipped = TreeTestData.Table("B", other.Values, other.Labels.Select(y => 1f - y).ToArray());
        var options = new TreeBoostingOptions { NumberOfTrees = 3, NumberOfLeaves = 6, MaxBins = 16 };
        var cuts = Cuts(16, honest, other);
        var booster = new FederatedHistogramBooster(Start, new[] { honest, flipped }.Select(s => new HistogramBoostingSite(Start, FeatureMatrix.FromTable(s), cuts, options)).ToList(), cuts, options);
        booster.AddTrees(3);
        Assert.Empty(booster.Rejected);
    }
}
