using ClinicalFed.Cli.Simulation;

namespace ClinicalFed.Cli.Tests;

public sealed class QualityBenchmarkTests
{
    [Theory]
    [InlineData("3", new[] { 3 })]
    [InlineData("1-5", new[] { 1, 2, 3, 4, 5 })]
    [InlineData("1-3, 7", new[] { 1, 2, 3, 7 })]
    [InlineData("9,2", new[] { 9, 2 })]
    [InlineData("4-4", new[] { 4 })]
    public void Seeds_are_a_list_of_seeds_and_ranges(string text, int[] expected) =>
        Assert.Equal(expected, QualityBenchmark.ParseSeeds(text));

    [Fact]
    public void Every_bad_seed_is_reported_at_once()
    {
        var e = Assert.Throws<ArgumentException>(() => QualityBenchmark.ParseSeeds("0,x,5-2,2,2,1-60,-3"));
        Assert.StartsWith("--seeds: ", e.Message);
        Assert.Contains("'0': seeds run from 1 to 1000000", e.Message);
        Assert.Contains("'x' is not a seed", e.Message);
        Assert.Contains("'5-2': a range runs from the smaller seed to the larger", e.Message);
        Assert.Contains("seed 2 appears more than once", e.Message);
        Assert.Contains("'1-60': more than 50 seeds", e.Message);
        Assert.Contains("'-3' is not a seed", e.Message);
        Assert.Contains("60 seeds: at most 50", Assert.Throws<ArgumentException>(() => QualityBenchmark.ParseSeeds("1-40,41-60")).Message);
    }
}

[Collection(CliCollection.Name)]
public sealed class BenchQualityCommandTests
{
    [Fact]
    public void Bad_seeds_are_refused_before_any_data_is_read()
    {
        using var tmp = new TempDir();
        var (exit, _, err) = Cli.Run("bench", "quality", "--suite", "physionet-topk", "--seeds", "0-2", "--data", tmp["no-data"], "--out", tmp["out"]);
        Assert.Equal(2, exit);
        Assert.Contains("--seeds: '0-2': seeds run from 1 to 1000000", err);
        Assert.False(Directory.Exists(tmp["out"]));
    }

    /// <summary>Hand-computed: A moves 0.01 (seeds 1–2), 0.015 (2–3), 0.005 (1–3); B the same; ties go to the earlier pair, then A.</summary>
    [Fact]
    public void The_seed_spread_is_the_largest_site_difference_between_two_seeds()
    {
        var runs = new List<(int, IReadOnlyDictionary<string, double>)>
        {
            (1, new Dictionary<string, double> { ["A"] = 0.80, ["B"] = 0.70 }),
            (2, new Dictionary<string, double> { ["A"] = 0.81, ["B"] = 0.69 }),
            (3, new Dictionary<string, double> { ["B"] = 0.705, ["A"] = 0.795 }),
        };
        var spread = QualityBenchmark.Spread(runs)!;
        Assert.Equal((0.015, "A", "2,3"), (spread.MaxSiteDifference, spread.Site, string.Join(',', spread.Seeds)));

        // With A gone from seed 3, B moves most: 0.04 between seeds 2 and 3.
        runs[2] = (3, new Dictionary<string, double> { ["B"] = 0.73 });
        spread = QualityBenchmark.Spread(runs)!;
        Assert.Equal((0.04, "B", "2,3"), (spread.MaxSiteDifference, spread.Site, string.Join(',', spread.Seeds)));
        Assert.Null(QualityBenchmark.Spread(runs.Take(1).ToList()));
    }
}
