using ClinicalFed.Statistics;

namespace ClinicalFed.Core.Tests.Statistics;

public sealed class FeatureStatisticsTests
{
    private static FeatureStatistics Of(HistogramSpec spec, params float[] values)
    {
        var stats = new FeatureStatistics("x", spec);
        stats.AddRange(values);
        return stats;
    }

    [Fact]
    public void Mean_variance_and_standard_deviation_match_hand_computed_values()
    {
        // 2,4,4,4,5,5,7,9: sum 40, mean 5, sum of squares 232, population variance 232/8 - 25 = 4, sd 2.
        FeatureStatistics stats = Of(new HistogramSpec(0, 10, 10), 2, 4, 4, 4, 5, 5, 7, 9);

        Assert.Equal(8, stats.Count);
        Assert.Equal(40, stats.Sum);
        Assert.Equal(232, stats.SumOfSquares);
        Assert.Equal(5, stats.Mean, 12);
        Assert.Equal(4, stats.Variance, 12);
        Assert.Equal(2, stats.StandardDeviation, 12);
        Assert.Equal(2, stats.Min);
        Assert.Equal(9, stats.Max);
        Assert.Equal([0L, 0, 0, 1, 0, 3, 2, 0, 1, 0, 1, 0], stats.BinCounts);
    }

    [Fact]
    public void Median_interpolates_inside_the_bin_that_holds_the_middle_value()
    {
        // One value per unit bin; target rank 5 * 0.5 = 2.5 lies halfway through bin [2, 3).
        FeatureStatistics stats = Of(new HistogramSpec(0, 5, 5), 0.5f, 1.5f, 2.5f, 3.5f, 4.5f);

        Assert.Equal(2.5, stats.Median, 12);
        Assert.Equal(1.25, stats.Quantile(0.25), 12); // rank 1.25: a quarter into [1, 2)
        Assert.Equal(0.5, stats.Quantile(0), 12); // clamped to the observed min
        Assert.Equal(4.5, stats.Quantile(1), 12); // clamped to the observed max
    }

    [Fact]
    public void Median_clamps_the_bin_to_the_observed_range()
    {
        // A single bin [0, 2) clamped to [1, 1.6]; rank 2 of 4 is halfway: 1.3.
        FeatureStatistics stats = Of(new HistogramSpec(0, 2, 1), 1f, 1.2f, 1.4f, 1.6f);

        Assert.Equal(1.3, stats.Median, 6);
    }

    [Fact]
    public void Median_in_the_underflow_bin_interpolates_from_the_observed_min()
    {
        // Underflow holds -5 and -3, clamped to [-5, 0]; rank 1.5 of 3 is 3/4 of the way: -1.25.
        FeatureStatistics stats = Of(new HistogramSpec(0, 10, 2), -5f, -3f, 1f);

        Assert.Equal([2L, 1, 0, 0], stats.BinCounts);
        Assert.Equal(-1.25, stats.Median, 12);
    }

    [Fact]
    public void Values_at_max_go_to_overflow_and_below_min_to_underflow()
    {
        FeatureStatistics stats = Of(new HistogramSpec(0, 10, 5), -0.001f, 0f, 10f, 10.5f, 9.99f);

        Assert.Equal([1L, 1, 0, 0, 0, 1, 2], stats.BinCounts);
    }

    [Fact]
    public void NaN_is_counted_as_missing_and_excluded_from_the_sums()
    {
        var stats = new FeatureStatistics("x", new HistogramSpec(0, 10, 10));
        stats.Add(float.NaN);
        stats.Add(3f);
        stats.AddRange([float.NaN, 5f, float.NaN]);

        Assert.Equal(2, stats.Count);
        Assert.Equal(3, stats.Missing);
        Assert.Equal(8, stats.Sum);
        Assert.Equal(4, stats.Mean);
        Assert.Equal(0.6, stats.MissingFraction, 12);
        Assert.Equal(2, stats.BinCounts.Sum());
    }

    [Fact]
    public void Empty_statistics_have_NaN_moments_and_median()
    {
        FeatureStatistics stats = Of(new HistogramSpec(0, 10, 10), float.NaN, float.NaN);

        Assert.Equal(0, stats.Count);
        Assert.True(double.IsNaN(stats.Mean));
        Assert.True(double.IsNaN(stats.Variance));
        Assert.True(double.IsNaN(stats.Median));
        Assert.True(double.IsNaN(stats.Min));
        Assert.True(double.IsNaN(stats.Max));
        Assert.Equal(1, stats.MissingFraction);
    }

    [Theory]
    [InlineData(float.PositiveInfinity, "+Infinity")]
    [InlineData(float.NegativeInfinity, "-Infinity")]
    public void Infinity_throws_naming_the_feature(float value, string sign)
    {
        var stats = new FeatureStatistics("heart_rate", new HistogramSpec(0, 200, 20));

        var single = Assert.Throws<ArgumentException>(() => stats.Add(value));
        var range = Assert.Throws<ArgumentException>(() => stats.AddRange([60f, float.NaN, value]));

        Assert.Contains("'heart_rate'", single.Message);
        Assert.Contains(sign, single.Message);
        Assert.Contains("'heart_rate'", range.Message);
        Assert.Contains("index 2", range.Message);
    }

    [Fact]
    public void AddRange_that_hits_infinity_keeps_nothing()
    {
        var stats = new FeatureStatistics("x", new HistogramSpec(0, 10, 10));
        stats.Add(1f);

        Assert.Throws<ArgumentException>(() => stats.AddRange([2f, float.NaN, 3f, float.PositiveInfinity, 4f]));

        Assert.Equal(1, stats.Count);
        Assert.Equal(0, stats.Missing);
        Assert.Equal(1, stats.Sum);
        Assert.Equal(1, stats.BinCounts.Sum());
    }

    [Fact]
    public void Add_and_AddRange_produce_identical_aggregates()
    {
        var spec = new HistogramSpec(-3, 3, 60);
        var random = new Random(7);
        float[] values = Enumerable.Range(0, 1000)
            .Select(i => i % 17 == 0 ? float.NaN : (float)(random.NextDouble() * 8 - 4))
            .ToArray();
        var one = new FeatureStatistics("x", spec);
        foreach (float v in values)
        {
            one.Add(v);
        }

        FeatureStatistics range = Of(spec, values);

        Assert.Equal(one.Count, range.Count);
        Assert.Equal(one.Missing, range.Missing);
        Assert.Equal(one.BinCounts, range.BinCounts);
        Assert.Equal(one.Min, range.Min);
        Assert.Equal(one.Max, range.Max);
        Assert.Equal(one.Sum, range.Sum, 9);
    }

    [Fact]
    public void Merge_of_two_halves_equals_the_whole()
    {
        var spec = new HistogramSpec(0, 10, 10);
        FeatureStatistics left = Of(spec, 2, 4, float.NaN, 4);
        FeatureStatistics right = Of(spec, 4, 5, 5, 7, 9, float.NaN);
        FeatureStatistics whole = Of(spec, 2, 4, float.NaN, 4, 4, 5, 5, 7, 9, float.NaN);

        left.Merge(right);

        Assert.Equal(whole.Count, left.Count);
        Assert.Equal(whole.Missing, left.Missing);
        Assert.Equal(whole.Sum, left.Sum);
        Assert.Equal(whole.SumOfSquares, left.SumOfSquares);
        Assert.Equal(whole.Min, left.Min);
        Assert.Equal(whole.Max, left.Max);
        Assert.Equal(whole.BinCounts, left.BinCounts);
        Assert.Equal(whole.Median, left.Median);
    }

    [Fact]
    public void Merge_with_empty_statistics_keeps_min_and_max()
    {
        var spec = new HistogramSpec(0, 10, 10);
        FeatureStatistics empty = Of(spec, float.NaN);
        FeatureStatistics data = Of(spec, 3, 8);

        empty.Merge(data);
        data.Merge(Of(spec));

        Assert.Equal((3.0, 8.0), (empty.Min, empty.Max));
        Assert.Equal((3.0, 8.0), (data.Min, data.Max));
        Assert.Equal(1, empty.Missing);
    }

    [Fact]
    public void Merge_rejects_a_different_name_or_histogram_naming_the_feature()
    {
        var stats = new FeatureStatistics("age", new HistogramSpec(0, 120, 24));

        var name = Assert.Throws<ArgumentException>(() => stats.Merge(new FeatureStatistics("bmi", new HistogramSpec(0, 120, 24))));
        var spec = Assert.Throws<ArgumentException>(() => stats.Merge(new FeatureStatistics("age", new HistogramSpec(0, 100, 24))));

        Assert.Contains("'bmi'", name.Message);
        Assert.Contains("'age'", name.Message);
        Assert.Contains("'age'", spec.Message);
        Assert.Contains("[0, 100) in 24 bins", spec.Message);
    }

    [Fact]
    public void Quantile_outside_zero_to_one_throws()
    {
        FeatureStatistics stats = Of(new HistogramSpec(0, 1, 2), 0.5f);

        Assert.Throws<ArgumentOutOfRangeException>(() => stats.Quantile(1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => stats.Quantile(double.NaN));
    }

    [Fact]
    public void FromAggregates_rejects_bins_that_do_not_sum_to_count()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            FeatureStatistics.FromAggregates("x", new HistogramSpec(0, 1, 1), 2, 0, 1, 1, 0.5, 0.5, [0L, 1, 0]));

        Assert.Contains("bin_counts sum to 1 but count is 2", ex.Message);
    }
}
