using ClinicalFed.Testing;
using ClinicalFed.Trees;

namespace ClinicalFed.Core.Tests.Trees;

public sealed class TreeBaggingTests
{
    [Fact]
    public void Merge_of_two_sites_weighted_1_and_3_is_the_hand_computed_ensemble()
    {
        // Shares 1/4 and 3/4: base 0.25·0.5 + 0.75·(−1) = −0.625; tree weights 0.25·1, 0.75·0.5, 0.75·1.
        var merged = TreeBagging.Merge([new SiteEnsemble(TreeTestModels.A, 1), new SiteEnsemble(TreeTestModels.B, 3)]);
        Assert.Equal(-0.625, merged.BaseScore, 15);
        Assert.Equal([0.25, 0.375, 0.75], merged.TreeWeights);
        Assert.Same(TreeTestModels.A.Trees[0], merged.Trees[0]);
        Assert.Equal(["age", "lactate"], merged.FeatureNames!);

        // At (0, −3) site A scores 0.5 + 0.5 = 1 and site B −1: 0.25·1 + 0.75·(−1) = −0.5.
        Assert.Equal(-0.5, merged.Score([0f, -3f]), 15);
        foreach (var row in TreeTestRows.Random(200, 3, merged))
            Assert.Equal(0.25 * TreeTestModels.A.Score(row) + 0.75 * TreeTestModels.B.Score(row), merged.Score(row), 12);
    }

    [Fact]
    public void Merger_fed_out_of_order_gives_the_merge_in_site_order()
    {
        var merger = new TreeBaggingMerger();
        merger.Add(TreeTestModels.B, 3, order: 1);
        merger.Add(TreeTestModels.A, 1, order: 0);
        Assert.Equal(2, merger.SiteCount);
        Assert.Equal(4, merger.TotalWeight);
        Assert.True(TreeBagging.Merge([new SiteEnsemble(TreeTestModels.A, 1), new SiteEnsemble(TreeTestModels.B, 3)]).StructurallyEquals(merger.Merge()));
        Assert.True(merger.Merge().StructurallyEquals(merger.Merge())); // Merge does not consume the merger
    }

    [Fact]
    public void Equal_weights_average_the_scores()
    {
        var merged = TreeBagging.Merge([new SiteEnsemble(TreeTestModels.A, 2), new SiteEnsemble(TreeTestModels.B, 2)]);
        Assert.Equal(-0.25, merged.BaseScore, 15);
        Assert.Equal(0, merged.Score([0f, -3f]), 15); // (1 + (−1)) / 2
    }

    [Fact]
    public void Bagging_rejects_mismatched_sites()
    {
        var a = TreeEnsembleModel.Constant(3, 0, ["a", "b", "c"]);
        Assert.Throws<ArgumentException>(() => TreeBagging.Merge([new SiteEnsemble(a, 1), new SiteEnsemble(TreeEnsembleModel.Constant(4, 0), 1)]));
        Assert.Throws<ArgumentException>(() => TreeBagging.Merge([new SiteEnsemble(a, 1), new SiteEnsemble(TreeEnsembleModel.Constant(3, 0, ["a", "x", "c"]), 1)]));
        Assert.Throws<ArgumentException>(() => TreeBagging.Merge([new SiteEnsemble(a, 0), new SiteEnsemble(a, 0)]));
        Assert.Throws<ArgumentException>(() => TreeBagging.Merge([new SiteEnsemble(a, double.NaN)]));
        Assert.Throws<ArgumentException>(() => TreeBagging.Merge([]));

        // Names are checked against the first site that has them, even when an unnamed site came first.
        var merger = new TreeBaggingMerger();
        merger.Add(TreeEnsembleModel.Constant(3, 0), 1, 0);
        merger.Add(a, 1, 1);
        Assert.Throws<ArgumentException>(() => merger.Add(TreeEnsembleModel.Constant(3, 0, ["a", "x", "c"]), 1, 2));
        Assert.Equal(2, merger.SiteCount); // a refused site leaves the merger unchanged
        Assert.Throws<InvalidOperationException>(() => new TreeBaggingMerger().Merge());
    }
}
