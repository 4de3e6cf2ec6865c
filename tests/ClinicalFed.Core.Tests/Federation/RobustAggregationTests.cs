using System.Text.Json;
using ClinicalFed.Federation;

namespace ClinicalFed.Core.Tests.Federation;

public sealed class RobustAggregationTests
{
    [Fact]
    public void Coordinate_median_of_odd_and_even_counts()
    {
        var d = new float[2];
        RobustAggregationMath.CoordinateMedian([[1, 10], [5, -2], [3, 4]], d);
        Assert.Equal([3f, 4f], d);
        RobustAggregationMath.CoordinateMedian([[1, 10], [5, -2], [3, 4], [100, 6]], d);
        Assert.Equal([4f, 5f], d); // (3 + 5) / 2, (4 + 6) / 2
    }

    [Fact]
    public void Trimmed_mean_drops_one_value_at_each_end_of_five()
    {
        var d = new float[1];
        // β = 0.2 of 5 values: drop 1 per side; [−100, 1, 2, 3, 1000] → (1 + 2 + 3) / 3 = 2
        RobustAggregationMath.TrimmedMean([[-100], [1], [2], [3], [1000]], 1, d);
        Assert.Equal(2f, d[0]);
        Assert.Throws<ArgumentException>(() => RobustAggregationMath.TrimmedMean([[1], [2]], 1, d));
    }

    [Fact]
    public void Krum_scores_are_sums_of_squared_distances_to_the_nearest_neighbours_and_never_pick_the_outlier()
    {
        // Points 0, 1, 2 on a line and an outlier at 10; f = 1 → n − f − 2 = 1 nearest neighbour.
        float[][] v = [[0], [1], [2], [10]];
        var scores = RobustAggregationMath.KrumScores(v, 1);
        Assert.Equal([1.0, 1.0, 1.0, 64.0], scores);
        Assert.Equal([0], RobustAggregationMath.KrumSelection(v, 1, 1)); // ties by index
        Assert.Equal([0, 1, 2], RobustAggregationMath.KrumSelection(v, 1, 3));
        Assert.Throws<ArgumentException>(() => RobustAggregationMath.KrumScores([[0], [1], [2]], 1));
    }

    [Fact]
    public void Weiszfeld_finds_the_geometric_median_of_a_triangle_and_resists_an_outlier()
    {
        // Three collinear points: the geometric median is the middle one (the mean would be 34).
        var d = new float[1];
        RobustAggregationMath.GeometricMedian([[0], [2], [100]], [1, 1, 1], d, maxIterations: 1000, tolerance: 1e-9);
        Assert.Equal(2f, d[0], 3);
        // Equilateral triangle: the median is its centroid (Fermat point).
        var c = new float[2];
        float h = (float)Math.Sqrt(3);
        RobustAggregationMath.GeometricMedian([[0, 0], [2, 0], [1, h]], [1, 1, 1], c, maxIterations: 1000, tolerance: 1e-9);
        Assert.Equal(1f, c[0], 4);
        Assert.Equal(h / 3, c[1], 4);
    }

    private static float[] Round(IAggregationStrategy s, float[] global, params (string Site, long N, float[] Values)[] updates)
    {
        var manifest = TestData.Manifest(s.Name, global.Length, round: 1, sites: updates.Select(u => u.Site).ToList(), quorum: Math.Min(4, updates.Length));
        s.Begin(TestData.Global(global, 0, s.Name), manifest);
        foreach (var (site, n, values) in updates) s.Accumulate(TestData.Header(site, n, global.Length, 1), values);
        return s.Finish();
    }

    [Fact]
    public void Robust_strategies_ignore_one_poisoned_site_that_moves_FedAvg()
    {
        float[] g = [1, 1];
        var honest = new[] { ("A", 10L, new float[] { 2, 0 }), ("B", 10L, new float[] { 2.2f, 0.2f }), ("C", 10L, new float[] { 1.8f, -0.2f }), ("D", 10L, new float[] { 2.1f, 0.1f }) };
        var poisoned = honest.Append(("E", 10L, new float[] { -50, 50 })).ToArray();
        Assert.True(Round(new FedAvgStrategy(), g, poisoned)[0] < -5); // (2 + 2.2 + 1.8 + 2.1 − 50) / 5 = −8.38
        TestData.AssertClose([2f, 0.1f], Round(StrategyFactory.Create(StrategyNames.Median), g, poisoned));
        var trimmed = Round(StrategyFactory.Create(StrategyNames.TrimmedMean), g, poisoned); // drops min and max per coordinate
        Assert.Equal((2 + 2.1f + 1.8f) / 3, trimmed[0], 5);
        var krum = (RobustStrategy)StrategyFactory.Create(StrategyNames.Krum);
        var k = Round(krum, g, poisoned);
        Assert.DoesNotContain("E", krum.Selected);
        Assert.InRange(k[0], 1.8f, 2.2f);
        var multi = (RobustStrategy)StrategyFactory.Create(StrategyNames.MultiKrum);
        Round(multi, g, poisoned);
        Assert.Equal(["A", "B", "C", "D"], multi.Selected.Order());
        var geo = Round(StrategyFactory.Create(StrategyNames.GeometricMedian), g, poisoned);
        Assert.InRange(geo[0], 1.7f, 2.3f);
    }

    [Fact]
    public void Norm_bounding_scales_a_long_update_and_max_update_norm_rejects_it_with_the_reason()
    {
        float[] g = [0, 0];
        var bounded = StrategyFactory.Create(StrategyNames.FedAvg, new Dictionary<string, JsonElement> { ["clip_update_norm"] = JsonSerializer.SerializeToElement(1.0) });
        // A's update [3, 4] (norm 5) becomes [0.6, 0.8]; B's [0.5, 0] stays: mean of the two = [0.55, 0.4]
        var result = Round(bounded, g, ("A", 1, [3, 4]), ("B", 1, [0.5f, 0]));
        Assert.Equal(0.55f, result[0], 6);
        Assert.Equal(0.4f, result[1], 6);

        var screened = StrategyFactory.Create(StrategyNames.Median, new Dictionary<string, JsonElement>
        {
            ["max_update_norm"] = JsonSerializer.SerializeToElement(2.0), ["max_example_count"] = JsonSerializer.SerializeToElement(100),
        });
        screened.Begin(TestData.Global(g, 0, StrategyNames.Median), TestData.Manifest(StrategyNames.Median, 2, round: 1, sites: ["A", "B"]));
        var e = Assert.Throws<UpdateRejectedException>(() => screened.Accumulate(TestData.Header("A", 1000, 2, 1), [3, 4]));
        Assert.Contains("L2 norm 5 exceeds max_update_norm 2", e.Reason);
        Assert.Contains("example_count 1000 exceeds max_example_count 100", e.Reason);
        screened.Accumulate(TestData.Header("B", 5, 2, 1), [1, 1]);
        Assert.Equal([1f, 1f], screened.Finish());
    }

    [Fact]
    public void Robust_options_round_trip_and_report_every_problem()
    {
        var spec = StrategySpec.From(StrategyFactory.ParseOptions(StrategyNames.MultiKrum, new Dictionary<string, JsonElement>
        {
            ["byzantine"] = JsonSerializer.SerializeToElement(2), ["selected"] = JsonSerializer.SerializeToElement(3), ["clip_update_norm"] = JsonSerializer.SerializeToElement(4.5),
        }));
        var back = (KrumOptions)StrategyFactory.ParseOptions(spec.Name, spec.Options);
        Assert.True(back.Multi);
        Assert.Equal((2, 3, 4.5), (back.Byzantine, back.Selected, back.ClipUpdateNorm!.Value));

        var e = Assert.Throws<StrategyOptionsException>(() => StrategyFactory.ParseOptions(StrategyNames.TrimmedMean, new Dictionary<string, JsonElement>
        {
            ["trim_fraction"] = JsonSerializer.SerializeToElement(0.5), ["max_update_norm"] = JsonSerializer.SerializeToElement(-1), ["bogus"] = JsonSerializer.SerializeToElement(1),
        }));
        Assert.Contains(e.Problems, p => p.Contains("trim_fraction", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.Contains("max_update_norm", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.Contains("unknown option 'bogus'", StringComparison.Ordinal));
        Assert.Contains(Assert.Throws<StrategyOptionsException>(() => StrategyFactory.ParseOptions(StrategyNames.Krum,
            new Dictionary<string, JsonElement> { ["byzantine"] = JsonSerializer.SerializeToElement(1.5) })).Problems, p => p.Contains("whole number", StringComparison.Ordinal));
        Assert.Contains(Assert.Throws<StrategyOptionsException>(() => StrategyFactory.ParseOptions(StrategyNames.TreeBagging,
            new Dictionary<string, JsonElement> { ["clip_update_norm"] = JsonSerializer.SerializeToElement(1) })).Problems, p => p.Contains("unknown option", StringComparison.Ordinal));
    }

    [Fact]
    public void Krum_refuses_a_round_whose_quorum_cannot_outvote_its_byzantine_count()
    {
        var krum = StrategyFactory.Create(StrategyNames.Krum);
        var e = Assert.Throws<ArgumentException>(() => krum.Begin(TestData.Global([0f], 0, StrategyNames.Krum), TestData.Manifest(StrategyNames.Krum, 1, round: 1, quorum: 3)));
        Assert.Contains("quorum of at least 4", e.Message);
    }
}
