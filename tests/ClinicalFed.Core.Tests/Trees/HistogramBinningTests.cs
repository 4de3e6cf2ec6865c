using ClinicalFed.Trees;

namespace ClinicalFed.Core.Tests.Trees;

public sealed class HistogramBinningTests
{
    [Fact]
    public void GreedyCuts_with_few_values_cuts_between_every_pair_of_neighbours()
    {
        Assert.Equal([1.5f, 3f], HistogramBinning.GreedyCuts([1f, 2f, 4f], [7, 1, 1], maxBins: 3));
        Assert.Empty(HistogramBinning.GreedyCuts([5f], [3], maxBins: 2));
    }

    [Fact]
    public void GreedyCuts_closes_a_bin_once_it_holds_its_share_of_what_is_left()
    {
        // Six values of weight 1 in 3 bins: shares 6/3 = 2, then 4/2 = 2: cuts after the 2nd and the 4th value.
        Assert.Equal([2.5f, 4.5f], HistogramBinning.GreedyCuts([1f, 2f, 3f, 4f, 5f, 6f], [1, 1, 1, 1, 1, 1], maxBins: 3));
        // Weight 5 of 8 on the first value: it fills the first of 2 bins (share 4) on its own.
        Assert.Equal([1.5f], HistogramBinning.GreedyCuts([1f, 2f, 3f, 4f], [5, 1, 1, 1], maxBins: 2));
        // Weight 5 of 8 on the last value: 1 + 1 + 1 never reaches the share 4 before it, and no cut follows the last
        // value, so every value shares one bin.
        Assert.Empty(HistogramBinning.GreedyCuts([1f, 2f, 3f, 4f], [1, 1, 1, 5], maxBins: 2));
    }

    [Fact]
    public void Midpoint_is_never_exactly_zero_unless_the_lower_value_is()
    {
        Assert.Equal(-1f, HistogramBinning.Midpoint(-1f, 1f));
        Assert.Equal(1f, HistogramBinning.Midpoint(0f, 2f));
        Assert.Equal(-float.Epsilon, HistogramBinning.Midpoint(-float.Epsilon, float.Epsilon));
        Assert.Equal(0f, HistogramBinning.Midpoint(0f, float.Epsilon));
        Assert.Equal(2.5f, HistogramBinning.Midpoint(2f, 3f));
        // Neighbouring floats: the midpoint rounds to one of them; the lower one keeps a ≤ t < b.
        float a = 1f, b = MathF.BitIncrement(1f);
        Assert.Equal(a, HistogramBinning.Midpoint(a, b));
    }

    [Fact]
    public void GreedyCuts_refuses_unsorted_values_and_bad_weights()
    {
        Assert.Contains("ascending", Assert.Throws<ArgumentException>(() => HistogramBinning.GreedyCuts([2f, 1f], [1, 1], 4)).Message);
        Assert.Contains("2 values but 1 weights", Assert.Throws<ArgumentException>(() => HistogramBinning.GreedyCuts([1f, 2f], [1], 4)).Message);
        Assert.Contains("weight", Assert.Throws<ArgumentException>(() => HistogramBinning.GreedyCuts([1f, 2f, 3f], [1, double.NaN, 1], 2)).Message);
    }

    [Fact]
    public void A_small_site_sketches_its_values_with_their_counts()
    {
        // Four present values (≤ 4 points): exact, −0 folded into 0, NaN (missing) skipped.
        var sketch = HistogramBinning.Sketch([3f, 1f, 3f, float.NaN, -0f], feature: 0, points: 4);
        Assert.Equal([0f, 1f, 3f], sketch.Values);
        Assert.Equal([1.0, 1.0, 2.0], sketch.Weights);
        Assert.True(BitConverter.SingleToInt32Bits(sketch.Values[0]) == 0, "−0 is sent as +0");
    }

    [Fact]
    public void A_large_site_sketches_order_statistics_each_standing_for_n_over_points_rows()
    {
        // n = 8, 4 points: ranks ⌊(k + ½)·2⌋ = 1, 3, 5, 7 of 1..8 are 2, 4, 6, 8; each stands for 2 rows.
        var sketch = HistogramBinning.Sketch([8f, 7f, 6f, 5f, 4f, 3f, 2f, 1f, float.NaN], feature: 0, points: 4);
        Assert.Equal([2f, 4f, 6f, 8f], sketch.Values);
        Assert.Equal([2.0, 2.0, 2.0, 2.0], sketch.Weights);
        Assert.Equal(8, sketch.Count);
        // Repeats fold together: ranks 1, 3, 5, 7 of 1,1,1,1,1,1,2,2 are 1, 1, 1, 2.
        var folded = HistogramBinning.Sketch([1f, 1f, 1f, 1f, 1f, 1f, 2f, 2f], feature: 0, points: 4);
        Assert.Equal([1f, 2f], folded.Values);
        Assert.Equal([6.0, 2.0], folded.Weights);
    }

    [Fact]
    public void Sketch_names_the_feature_with_an_infinite_value()
    {
        var e = Assert.Throws<ArgumentException>(() => HistogramBinning.SketchColumns([1f, 2f, float.NaN, 0f, float.PositiveInfinity, 5f], columns: 2));
        Assert.Contains("feature 0", e.Message);
    }

    [Fact]
    public void Merged_cuts_of_two_hand_made_sketches()
    {
        var cuts = HistogramBinning.MergeCuts([[new FeatureSketch([1f, 2f], [1, 1])], [new FeatureSketch([2f, 3f], [1, 1])]], maxBins: 255);
        Assert.Equal([1.5f, 2.5f], Assert.Single(cuts));
        // Weights add across sites: value 1 stands for 6 of 8 rows, so 2 bins cut right after it.
        cuts = HistogramBinning.MergeCuts([[new FeatureSketch([1f, 2f], [5, 1])], [new FeatureSketch([1f, 3f, 4f], [1, 0.5, 0.5])]], maxBins: 2);
        Assert.Equal([1.5f], Assert.Single(cuts));
    }

    [Fact]
    public void Merged_exact_sketches_give_the_cuts_of_the_pooled_rows()
    {
        var rng = new Random(17);
        float[] Column(int n, double shift) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() < 0.1 ? float.NaN : MathF.Round((float)(shift + 3 * rng.NextDouble()), 2)).ToArray();
        var columns = new[] { Column(400, 0), Column(700, 1), Column(250, -1) };
        var merged = HistogramBinning.MergeCuts(columns.Select(c => (IReadOnlyList<FeatureSketch>)[HistogramBinning.Sketch(c, 0)]).ToList(), maxBins: 32);
        var (distinct, counts) = HistogramBinning.DistinctCounts(columns.SelectMany(c => c).ToArray(), 0);
        Assert.Equal(HistogramBinning.GreedyCuts(distinct, counts, 32), Assert.Single(merged));
        Assert.Equal(31, merged[0].Length);
    }

    [Fact]
    public void MergeCuts_refuses_sites_that_sketched_different_features()
    {
        var one = new FeatureSketch([1f], [1]);
        var e = Assert.Throws<ArgumentException>(() => HistogramBinning.MergeCuts([[one, one], [one]], 8));
        Assert.Contains("site 1 sketched 1 features, site 0 sketched 2", e.Message);
        e = Assert.Throws<ArgumentException>(() => HistogramBinning.MergeCuts([[new FeatureSketch([1f, float.NaN], [1, 1])]], 8));
        Assert.Contains("site 0, feature 0", e.Message);
    }

    [Fact]
    public void GridCounts_add_row_weights_into_the_grid_bins_of_present_values()
    {
        // Grid [0, 4) in 4 bins, plus underflow (index 0) and overflow (index 5). Two columns, three rows.
        var grid = new ClinicalFed.Statistics.HistogramSpec(0, 4, 4);
        float[] values = [0.5f, float.NaN, 1.5f, 3.9f, -1f, 5f];
        var counts = HistogramBinning.GridCounts(values, 2, [1, 0.5, 2], grid);
        Assert.Equal([2, 1, 0.5, 0, 0, 0], counts[0]);
        Assert.Equal([0, 0, 0, 0, 0.5, 2], counts[1]);
    }

    [Fact]
    public void GridCuts_choose_among_grid_bins_above_the_threshold()
    {
        var grid = new ClinicalFed.Statistics.HistogramSpec(0, 4, 4);
        // Bins 1 ([0, 1)), 3 ([2, 3)) and the overflow clear 0.5; they stand at 0, 2 and 4 with weights 5, 3, 1.
        double[] counts = [0, 5, 0.2, 3, 0, 1];
        Assert.Equal([1f, 3f], HistogramBinning.GridCuts(grid, counts, threshold: 0.5, maxBins: 4));
        // Two bins: the first value's weight 5 fills its share 9/2 at once.
        Assert.Equal([1f], HistogramBinning.GridCuts(grid, counts, threshold: 0.5, maxBins: 2));
        // The underflow bin stands one bin width below the grid: values −1 and 4, one cut between.
        Assert.Equal([1.5f], HistogramBinning.GridCuts(grid, [4, 0, 0, 0, 0, 4], threshold: 0, maxBins: 8));
        // Fewer than two bins above the threshold: no cut.
        Assert.Empty(HistogramBinning.GridCuts(grid, [0, 9, 0, 0, 0, 0], threshold: 0, maxBins: 8));
        Assert.Throws<ArgumentException>(() => HistogramBinning.GridCuts(grid, [1, 2], threshold: 0, maxBins: 8));
    }
}
