using ClinicalFed.Statistics;

namespace ClinicalFed.Core.Tests.Statistics;

public sealed class StatisticsSetTests
{
    internal static readonly string[] Columns = ["age", "bmi", "visits", "lab_never_measured"];

    internal static readonly HistogramSpec[] Histograms =
    [
        new(0, 100, 50),
        new(15, 45, 30),
        new(0, 10, 10),
        new(0, 1, 4),
    ];

    /// <summary>Rows × 4 columns with missing values, out-of-range values and many ties.</summary>
    internal static float[] Dataset(int rows, int seed)
    {
        var random = new Random(seed);
        var data = new float[rows * Columns.Length];
        for (int r = 0; r < rows; r++)
        {
            Span<float> row = data.AsSpan(r * Columns.Length, Columns.Length);
            row[0] = random.NextDouble() < 0.05 ? float.NaN : (float)(random.NextDouble() * 110 - 5); // under/overflow too
            row[1] = random.NextDouble() < 0.2 ? float.NaN : (float)(18 + random.NextDouble() * 20);
            row[2] = random.Next(0, 4); // integers: ties on bin edges
            row[3] = float.NaN;
        }

        return data;
    }

    [Fact]
    public void Compute_summarises_each_column_of_a_row_major_table()
    {
        float[] rows =
        [
            1, 10, 0, float.NaN,
            3, float.NaN, 2, float.NaN,
            float.NaN, 30, 2, float.NaN,
        ];

        StatisticsSet set = StatisticsSet.Compute("A", "spec", "1.0", Columns, Histograms, rows, 4);

        Assert.Equal(StatisticsSet.SiteScope, set.Scope);
        Assert.Equal(["A"], set.Sites);
        Assert.Equal(3, set.Rows);
        Assert.Equal(1, set.FormatVersion);
        Assert.Equal(Columns, set.Features.Select(f => f.Name));
        Assert.Equal((2L, 1L, 4.0), (set.Features[0].Count, set.Features[0].Missing, set.Features[0].Sum));
        Assert.Equal((2L, 1L, 1000.0), (set.Features[1].Count, set.Features[1].Missing, set.Features[1].SumOfSquares));
        Assert.Equal(4.0 / 3, set.Features[2].Mean, 12);
        Assert.Equal((0L, 3L), (set.Features[3].Count, set.Features[3].Missing));
        Assert.Equal(20, set.FindFeature("bmi")!.Mean);
    }

    [Fact]
    public void Compute_rejects_infinity_with_feature_and_row()
    {
        float[] rows = [1, 20, 0, 0, 2, float.NegativeInfinity, 0, 0];

        var ex = Assert.Throws<ArgumentException>(() => StatisticsSet.Compute("A", "spec", "1.0", Columns, Histograms, rows, 4));

        Assert.Contains("'bmi'", ex.Message);
        Assert.Contains("row 1", ex.Message);
    }

    [Fact]
    public void Compute_rejects_mismatched_shapes()
    {
        Assert.Throws<ArgumentException>(() => StatisticsSet.Compute("A", "s", "1", Columns, Histograms, new float[7], 4));
        Assert.Throws<ArgumentException>(() => StatisticsSet.Compute("A", "s", "1", Columns, Histograms, new float[8], 3));
        Assert.Throws<ArgumentException>(() => StatisticsSet.Compute("A", "s", "1", Columns, Histograms[..3], new float[8], 4));
        Assert.Throws<ArgumentException>(() => StatisticsSet.Compute("A", "s", "1", ["a", "a", "b", "c"], Histograms, new float[8], 4));
    }

    [Fact]
    public void Builder_AddRow_AddRows_and_Compute_agree()
    {
        float[] data = Dataset(300, seed: 11);
        var perRow = new StatisticsBuilder("A", "spec", "1.0", Columns, Histograms);
        for (int r = 0; r < 300; r++)
        {
            perRow.AddRow(data.AsSpan(r * 4, 4));
        }

        var chunked = new StatisticsBuilder("A", "spec", "1.0", Columns, Histograms);
        chunked.AddRows(data.AsSpan(0, 4 * 7));
        chunked.AddRows(data.AsSpan(4 * 7));

        StatisticsSet computed = StatisticsSet.Compute("A", "spec", "1.0", Columns, Histograms, data, 4);

        AssertSameStatistics(computed, perRow.Build());
        AssertSameStatistics(computed, chunked.Build());
        Assert.Equal(300, chunked.Rows);
    }

    [Fact]
    public void Builder_row_with_infinity_is_not_added()
    {
        var builder = new StatisticsBuilder("A", "spec", "1.0", Columns, Histograms);
        builder.AddRow([1, 20, 0, 0]);

        Assert.Throws<ArgumentException>(() => builder.AddRow([2, 20, float.PositiveInfinity, 0]));
        Assert.Throws<ArgumentException>(() => builder.AddRows([3, 20, 0, 0, 4, 20, 0, float.PositiveInfinity]));

        StatisticsSet set = builder.Build();
        Assert.Equal(1, set.Rows);
        Assert.All(set.Features, f => Assert.Equal(1, f.Count + f.Missing));
    }

    [Fact]
    public void Features_of_a_set_are_read_only()
    {
        StatisticsSet set = StatisticsSet.Compute("A", "spec", "1.0", Columns, Histograms, Dataset(5, 1), 4);

        Assert.Throws<InvalidOperationException>(() => set.Features[0].Add(1f));
        FeatureStatistics copy = set.Features[0].Clone();
        copy.Add(1f);
        Assert.Equal(set.Features[0].Count + 1, copy.Count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Merging_three_random_site_splits_equals_the_pooled_statistics(int seed)
    {
        const int rows = 4000;
        float[] pooledData = Dataset(rows, seed);
        var random = new Random(seed * 101);
        var parts = new List<float>[] { [], [], [] };
        for (int r = 0; r < rows; r++)
        {
            parts[random.Next(3)].AddRange(pooledData.AsSpan(r * 4, 4).ToArray());
        }

        // Three sites, three different ways of computing.
        StatisticsSet siteA = StatisticsSet.Compute("A", "spec", "1.0", Columns, Histograms, parts[0].ToArray(), 4);
        var builderB = new StatisticsBuilder("B", "spec", "1.0", Columns, Histograms);
        float[] b = parts[1].ToArray();
        for (int r = 0; r < b.Length / 4; r++)
        {
            builderB.AddRow(b.AsSpan(r * 4, 4));
        }

        var builderC = new StatisticsBuilder("C", "spec", "1.0", Columns, Histograms);
        builderC.AddRows(parts[2].ToArray());

        StatisticsSet merged = StatisticsSet.Merge([builderC.Build(), siteA, builderB.Build()]);
        StatisticsSet pooled = StatisticsSet.Compute("pooled", "spec", "1.0", Columns, Histograms, pooledData, 4);

        Assert.Equal(StatisticsSet.FederatedScope, merged.Scope);
        Assert.Equal(["C", "A", "B"], merged.Sites);
        Assert.Equal(pooled.Rows, merged.Rows);
        for (int c = 0; c < Columns.Length; c++)
        {
            FeatureStatistics m = merged.Features[c];
            FeatureStatistics p = pooled.Features[c];
            Assert.Equal(p.Name, m.Name);
            Assert.Equal(p.Count, m.Count);
            Assert.Equal(p.Missing, m.Missing);
            Assert.Equal(p.BinCounts, m.BinCounts);
            Assert.Equal(p.Min, m.Min);
            Assert.Equal(p.Max, m.Max);
            AssertRelativelyClose(p.Sum, m.Sum);
            AssertRelativelyClose(p.SumOfSquares, m.SumOfSquares);
            Assert.Equal(p.Median, m.Median);
            Assert.Equal(p.Quantile(0.9), m.Quantile(0.9));
        }

        Assert.True(pooled.Features[0].BinCounts[0] > 0, "the dataset exercises the underflow bin");
        Assert.True(pooled.Features[0].BinCounts[^1] > 0, "the dataset exercises the overflow bin");
    }

    [Fact]
    public void Merge_reports_every_mismatch_in_one_exception()
    {
        string[] columns = ["age", "bmi", "sex"];
        HistogramSpec[] histograms = [new(0, 100, 10), new(15, 45, 30), new(0, 2, 2)];
        float[] row = [50, 20, 1];
        StatisticsSet a = StatisticsSet.Compute("A", "spec", "1.0", columns, histograms, row, 3);
        StatisticsSet b = StatisticsSet.Compute("B", "spec", "1.1", columns, histograms, row, 3);
        StatisticsSet c = StatisticsSet.Compute(
            "C", "other-spec", "1.0", ["age", "weight", "sex"], [new(0, 120, 10), new(15, 45, 30), new(0, 2, 2)], row, 3);
        StatisticsSet aAgain = StatisticsSet.Compute("A", "spec", "1.0", columns, histograms, row, 3);

        var ex = Assert.Throws<StatisticsMergeException>(() => StatisticsSet.Merge([a, b, c, aAgain]));

        Assert.Equal(5, ex.Problems.Count);
        Assert.Contains("set #2 (site 'B') has feature_spec_version '1.1' but set #1 (site 'A') has '1.0'", ex.Message);
        Assert.Contains("set #3 (site 'C') has feature_spec_id 'other-spec' but set #1 (site 'A') has 'spec'", ex.Message);
        Assert.Contains("set #3 (site 'C') has feature 'age' histogram [0, 120) in 10 bins but set #1 (site 'A') has [0, 100) in 10 bins", ex.Message);
        Assert.Contains("set #3 (site 'C') has column 1 named 'weight' but set #1 (site 'A') has 'bmi'", ex.Message);
        Assert.Contains("site 'A' appears in both set #1 (site 'A') and set #4 (site 'A')", ex.Message);
        Assert.StartsWith("Cannot merge statistics sets (5 problems)", ex.Message);
    }

    [Fact]
    public void Merge_reports_a_different_number_of_columns_with_the_missing_and_extra_names()
    {
        StatisticsSet a = StatisticsSet.Compute("A", "spec", "1.0", ["x", "y"], [new(0, 1, 1), new(0, 1, 1)], [0.5f, 0.5f], 2);
        StatisticsSet b = StatisticsSet.Compute("B", "spec", "1.0", ["x", "z", "w"], [new(0, 1, 1), new(0, 1, 1), new(0, 1, 1)], [0.5f, 0.5f, 0.5f], 3);

        var ex = Assert.Throws<StatisticsMergeException>(() => StatisticsSet.Merge([a, b]));

        Assert.Contains("set #2 (site 'B') has 3 features but set #1 (site 'A') has 2 (missing 'y'; extra 'z', 'w').", ex.Message);
        Assert.Contains("column 1 named 'z'", ex.Message);
    }

    [Fact]
    public void Merge_of_merged_sets_rejects_a_site_counted_twice()
    {
        StatisticsSet a = StatisticsSet.Compute("A", "spec", "1.0", Columns, Histograms, Dataset(3, 1), 4);
        StatisticsSet b = StatisticsSet.Compute("B", "spec", "1.0", Columns, Histograms, Dataset(3, 2), 4);
        StatisticsSet ab = StatisticsSet.Merge([a, b]);

        var ex = Assert.Throws<StatisticsMergeException>(() => StatisticsSet.Merge([ab, b]));

        Assert.Contains("site 'B' appears in both set #1 (federated: 'A', 'B') and set #2 (site 'B')", ex.Message);
        Assert.Single(ex.Problems);
    }

    [Fact]
    public void Merge_needs_at_least_one_set()
    {
        Assert.Throws<ArgumentException>(() => StatisticsSet.Merge([]));
    }

    [Fact]
    public void Constructor_rejects_features_whose_totals_differ_from_rows()
    {
        var feature = new FeatureStatistics("x", new HistogramSpec(0, 1, 1));
        feature.Add(0.5f);

        var ex = Assert.Throws<ArgumentException>(() => new StatisticsSet("site", ["A"], "spec", "1", 2, [feature]));
        Assert.Contains("Feature 'x' has count 1 + missing 0 = 1, but the set has 2 rows", ex.Message);
        Assert.Throws<ArgumentException>(() => new StatisticsSet("site", ["A", "B"], "spec", "1", 1, [feature]));
        Assert.Throws<ArgumentException>(() => new StatisticsSet("global", ["A"], "spec", "1", 1, [feature]));
    }

    internal static void AssertSameStatistics(StatisticsSet expected, StatisticsSet actual)
    {
        Assert.Equal(expected.Scope, actual.Scope);
        Assert.Equal(expected.Sites, actual.Sites);
        Assert.Equal(expected.FeatureSpecId, actual.FeatureSpecId);
        Assert.Equal(expected.FeatureSpecVersion, actual.FeatureSpecVersion);
        Assert.Equal(expected.Rows, actual.Rows);
        Assert.Equal(expected.Features.Count, actual.Features.Count);
        for (int c = 0; c < expected.Features.Count; c++)
        {
            FeatureStatistics e = expected.Features[c];
            FeatureStatistics a = actual.Features[c];
            Assert.Equal(e.Name, a.Name);
            Assert.Equal(e.Histogram, a.Histogram);
            Assert.Equal(e.Count, a.Count);
            Assert.Equal(e.Missing, a.Missing);
            Assert.Equal(e.BinCounts, a.BinCounts);
            Assert.Equal(e.Min, a.Min);
            Assert.Equal(e.Max, a.Max);
            AssertRelativelyClose(e.Sum, a.Sum);
            AssertRelativelyClose(e.SumOfSquares, a.SumOfSquares);
        }
    }

    private static void AssertRelativelyClose(double expected, double actual)
    {
        double tolerance = 1e-9 * Math.Max(1, Math.Abs(expected));
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"expected {expected:R}, got {actual:R}");
    }
}
