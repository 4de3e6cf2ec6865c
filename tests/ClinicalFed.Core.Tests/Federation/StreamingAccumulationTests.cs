using ClinicalFed.Federation;

namespace ClinicalFed.Core.Tests.Federation;

/// <summary>
/// <see cref="IStreamingAggregationStrategy.AccumulateVerified"/>: the aggregator's one-pass path for payloads the store
/// verified on upload must give exactly the buffered path's model, and a payload that breaks its promise faults the round.
/// </summary>
public sealed class StreamingAccumulationTests
{
    private static PayloadChunkSource Chunks(float[] values, int maxPerCall = int.MaxValue)
    {
        int position = 0;
        return destination =>
        {
            int n = Math.Min(Math.Min(destination.Length, maxPerCall), values.Length - position);
            values.AsSpan(position, n).CopyTo(destination);
            position += n;
            return n;
        };
    }

    [Fact]
    public void Fused_accumulate_and_norm_are_hand_computed_and_bit_identical_to_the_separate_passes()
    {
        // acc = [1, 1, 1] + 2·([3, 0, −1] − [1, 1, 1]) = [5, −1, −3]; Σ d² = 4 + 1 + 4 = 9
        float[] acc = [1, 1, 1];
        double squares = AggregationMath.AccumulateDifferenceWithSquaredNorm(acc, [3, 0, -1], [1, 1, 1], 2f);
        Assert.Equal([5f, -1f, -3f], acc);
        Assert.Equal(9.0, squares);
        // acc += 0.5·[2, −4, 6] = [6, −3, 0]; Σ x² = 4 + 16 + 36 = 56
        Assert.Equal(56.0, AggregationMath.AccumulateWithSquaredNorm(acc, [2, -4, 6], 0.5f));
        Assert.Equal([6f, -3f, 0f], acc);

        var random = new Random(7);
        foreach (int n in new[] { 1, 7, 31, 4096, 4097, 10_003 })
        {
            var x = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var g = Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var start = Enumerable.Range(0, n).Select(_ => (float)random.NextDouble()).ToArray();
            var separate = (float[])start.Clone();
            var fused = (float[])start.Clone();
            AggregationMath.AccumulateDifference(separate, x, g, 37f);
            double sq = AggregationMath.AccumulateDifferenceWithSquaredNorm(fused, x, g, 37f);
            Assert.Equal(separate, fused); // bit for bit: the streaming path must not change models
            Assert.Equal(AggregationMath.L2Distance(x, g), Math.Sqrt(sq), 1e-4);

            separate = (float[])start.Clone();
            fused = (float[])start.Clone();
            AggregationMath.Accumulate(separate, x, 3f);
            sq = AggregationMath.AccumulateWithSquaredNorm(fused, x, 3f);
            Assert.Equal(separate, fused);
            Assert.Equal(AggregationMath.L2Norm(x), Math.Sqrt(sq), 1e-4);
        }
    }

    [Theory]
    [InlineData(StrategyNames.FedAvg)]
    [InlineData(StrategyNames.FedAdam)]
    public void Streamed_updates_give_the_buffered_model_bit_for_bit(string strategyName)
    {
        const int dimension = 100_000; // more than one 64 Ki chunk
        var random = new Random(3);
        float[] Vector() => Enumerable.Range(0, dimension).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var global = TestData.Global(Vector(), round: 0, strategy: strategyName);
        var manifest = TestData.Manifest(strategyName, dimension, round: 1);
        var updates = new[] { ("A", 10L, ParameterKinds.Full, Vector()), ("B", 25L, ParameterKinds.Delta, Vector()), ("C", 7L, ParameterKinds.Full, Vector()) };

        var buffered = StrategyFactory.Create(strategyName);
        buffered.Begin(global, manifest);
        foreach (var (site, n, kind, values) in updates) buffered.Accumulate(TestData.Header(site, n, dimension, 1, kind), values);
        var expected = buffered.Finish();

        var streamed = (IStreamingAggregationStrategy)StrategyFactory.Create(strategyName);
        streamed.Begin(global, manifest);
        foreach (var (site, n, kind, values) in updates)
        {
            double norm = streamed.AccumulateVerified(TestData.Header(site, n, dimension, 1, kind), Chunks(values, maxPerCall: 10_000));
            double expectedNorm = kind == ParameterKinds.Delta ? AggregationMath.L2Norm(values) : AggregationMath.L2Distance(values, global.Parameters);
            Assert.Equal(expectedNorm, norm, expectedNorm * 1e-5);
        }

        Assert.Equal(expected, streamed.Finish());
    }

    [Fact]
    public void A_rejected_header_leaves_the_round_unchanged_and_reads_nothing()
    {
        var strategy = (IStreamingAggregationStrategy)StrategyFactory.Create(StrategyNames.FedAvg);
        strategy.Begin(null, TestData.Manifest());
        bool read = false;
        var e = Assert.Throws<UpdateRejectedException>(() => strategy.AccumulateVerified(TestData.Header("A", 5, round: 4), _ => { read = true; return 0; }));
        Assert.Contains("round 4 is not the open round 0", e.Reason);
        Assert.False(read);
        strategy.AccumulateVerified(TestData.Header("A", 1), Chunks([1, 2, 3]));
        TestData.AssertClose([1, 2, 3], strategy.Finish());
    }

    [Theory]
    [InlineData("short", "ended after 2 of 3 values")]
    [InlineData("nan", "value 1 is NaN")]
    [InlineData("long", "more than its 3 values")]
    [InlineData("throws", "disk gone")]
    public void A_payload_that_breaks_its_verification_faults_the_round(string fault, string message)
    {
        var strategy = (IStreamingAggregationStrategy)StrategyFactory.Create(StrategyNames.FedAvg);
        strategy.Begin(null, TestData.Manifest());
        strategy.AccumulateVerified(TestData.Header("A", 1), Chunks([1, 2, 3]));
        PayloadChunkSource source = fault switch
        {
            "short" => Chunks([1, 2]),
            "nan" => Chunks([1, float.NaN, 3]),
            "long" => Chunks([1, 2, 3, 4]),
            _ => _ => throw new IOException("disk gone"),
        };
        var e = Assert.ThrowsAny<Exception>(() => strategy.AccumulateVerified(TestData.Header("B", 1), source));
        Assert.Contains(message, e.Message);
        Assert.IsNotType<UpdateRejectedException>(e);
        var finish = Assert.Throws<InvalidOperationException>(() => strategy.Finish());
        Assert.Contains("faulted", finish.Message);
        Assert.Throws<InvalidOperationException>(() => strategy.Accumulate(TestData.Header("C", 1), [1, 2, 3]));

        var again = (IStreamingAggregationStrategy)StrategyFactory.Create(StrategyNames.FedAvg); // the aggregator's next attempt
        again.Begin(null, TestData.Manifest());
        again.AccumulateVerified(TestData.Header("A", 1), Chunks([1, 2, 3]));
        TestData.AssertClose([1, 2, 3], again.Finish());
    }
}
