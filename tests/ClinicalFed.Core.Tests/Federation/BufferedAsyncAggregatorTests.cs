using ClinicalFed.Federation;

namespace ClinicalFed.Core.Tests.Federation;

public sealed class BufferedAsyncAggregatorTests
{
    [Fact]
    public void Staleness_weights_are_one_over_the_square_root_of_one_plus_tau()
    {
        Assert.Equal(1.0, BufferedAsyncAggregator.StalenessWeight(0, 0.5), 12);
        Assert.Equal(0.5, BufferedAsyncAggregator.StalenessWeight(3, 0.5), 12);
        Assert.Equal(1.0, BufferedAsyncAggregator.StalenessWeight(7, 0), 12);
    }

    [Fact]
    public void The_buffer_applies_the_discounted_example_weighted_mean_of_deltas()
    {
        var agg = new BufferedAsyncAggregator([1f, 1f], new BufferedAsyncOptions { BufferSize = 2 });
        Assert.False(agg.Add("A", [2f, 0f], baseVersion: 0, examples: 1));
        Assert.True(agg.Add("B", [0f, 4f], baseVersion: 0, examples: 3));
        // w = [1, 1] + (1·[2, 0] + 3·[0, 4]) / 4 = [1.5, 4]
        Assert.Equal([1.5f, 4f], agg.Global.ToArray());
        Assert.Equal(1, agg.Version);

        // Round 2: A is fresh (version 1), C trained from version 0: staleness 1, discount 1/√2.
        Assert.False(agg.Add("A", [1f, 1f], baseVersion: 1, examples: 1));
        Assert.True(agg.Add("C", [2f, 2f], baseVersion: 0, examples: 1));
        float expected = (float)((1 + 2 / Math.Sqrt(2)) / 2); // (1·1 + (1/√2)·2) / 2
        Assert.Equal(1.5f + expected, agg.Global[0], 5);
        Assert.Equal(4f + expected, agg.Global[1], 5);
        Assert.Equal(2, agg.Version);
    }

    [Fact]
    public void Bad_updates_are_rejected_and_change_nothing()
    {
        var agg = new BufferedAsyncAggregator([0f, 0f], new BufferedAsyncOptions { BufferSize = 1, MaxStaleness = 0 });
        Assert.True(agg.Add("A", [1f, 1f], 0, 1));
        Assert.Contains("staleness 1 exceeds", Assert.Throws<UpdateRejectedException>(() => agg.Add("B", [1f, 1f], 0, 1)).Reason);
        Assert.Contains("version 5", Assert.Throws<UpdateRejectedException>(() => agg.Add("B", [1f, 1f], 5, 1)).Reason);
        Assert.Contains("NaN", Assert.Throws<UpdateRejectedException>(() => agg.Add("B", [float.NaN, 1f], 1, 1)).Reason);
        Assert.Equal([1f, 1f], agg.Global.ToArray());
        Assert.Equal(0, agg.Buffered);
    }

    [Fact]
    public void Options_report_every_problem_at_once()
    {
        var e = Assert.Throws<ArgumentException>(() => new BufferedAsyncAggregator([0f], new BufferedAsyncOptions { BufferSize = 0, ServerLearningRate = -1, StalenessExponent = double.NaN }));
        Assert.Contains("buffer_size", e.Message);
        Assert.Contains("server_learning_rate", e.Message);
        Assert.Contains("staleness_exponent", e.Message);
    }
}
