using ClinicalFed.Federation;

namespace ClinicalFed.Core.Tests.Federation;

public sealed class AggregationMathTests
{
    [Fact]
    public void Accumulate_adds_weighted_values()
    {
        float[] acc = [1, 2, 3];
        AggregationMath.Accumulate(acc, [1, -1, 0.5f], 2);
        Assert.Equal([3f, 0f, 4f], acc);
    }

    [Fact]
    public void Accumulate_difference_weights_values_minus_reference()
    {
        float[] acc = [10, 0, 0];
        AggregationMath.AccumulateDifference(acc, [3, 5, 7], [1, 1, 1], 0.5f);
        Assert.Equal([11f, 2f, 3f], acc);
    }

    [Fact]
    public void Accumulate_difference_covers_vectors_longer_than_one_chunk()
    {
        // 1000 elements crosses the 256-element chunks of the stack buffer, including a partial last chunk.
        var values = Enumerable.Range(0, 1000).Select(i => (float)i).ToArray();
        var reference = Enumerable.Range(0, 1000).Select(i => i * 0.5f).ToArray();
        var acc = new float[1000];
        AggregationMath.AccumulateDifference(acc, values, reference, 2);
        for (int i = 0; i < 1000; i++) Assert.Equal(i, acc[i]); // 2 · (i − i/2)
    }

    [Fact]
    public void Finalize_mean_divides_by_the_total_weight()
    {
        float[] acc = [6, 12, -18];
        AggregationMath.FinalizeMean(acc, 6);
        Assert.Equal([1f, 2f, -3f], acc);
        Assert.Throws<ArgumentOutOfRangeException>(() => AggregationMath.FinalizeMean(acc, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => AggregationMath.FinalizeMean(acc, double.NaN));
    }

    [Fact]
    public void Server_momentum_step_matches_hand_computation()
    {
        // Δ = w − mean = [0.5, −0.5, 0, 2]; v = 0.9 v + Δ = [0.59, −0.5, −0.18, 2.9]; w − 0.5 v = [0.705, 2.25, 3.09, 2.55]
        float[] w = [1, 2, 3, 4];
        float[] v = [0.1f, 0, -0.2f, 1];
        AggregationMath.ServerMomentumStep(w, [0.5f, 2.5f, 3, 2], v, momentum: 0.9f, learningRate: 0.5f);
        TestData.AssertClose([0.59, -0.5, -0.18, 2.9], v);
        TestData.AssertClose([0.705, 2.25, 3.09, 2.55], w);
    }

    [Fact]
    public void Server_momentum_without_momentum_and_unit_rate_lands_on_the_mean()
    {
        float[] w = [1, 2, 3];
        float[] v = new float[3];
        AggregationMath.ServerMomentumStep(w, [4, -5, 6.5f], v, 0, 1);
        Assert.Equal([4f, -5f, 6.5f], w);
    }

    // Shared inputs: w = [1, 2, 3, 0], mean = [1.5, 1, 3, 0.5] so Δ = mean − w = [0.5, −1, 0, 0.5];
    // m starts at 0, v at [0.01, 0.01, 0.01, 0.25]; η = 0.1, β1 = 0.9, β2 = 0.99, τ = 0.01.
    private static (float[] W, float[] M, float[] V) Inputs() => ([1, 2, 3, 0], new float[4], [0.01f, 0.01f, 0.01f, 0.25f]);

    private static readonly float[] Mean = [1.5f, 1, 3, 0.5f];

    [Fact]
    public void FedAdam_step_matches_hand_computation()
    {
        var (w, m, v) = Inputs();
        AggregationMath.FedAdamStep(w, Mean, m, v, 0.1f, 0.9f, 0.99f, 0.01f);
        // m = 0.1 Δ; v = 0.99 v + 0.01 Δ² = [0.0124, 0.0199, 0.0099, 0.25]
        TestData.AssertClose([0.05, -0.1, 0, 0.05], m);
        TestData.AssertClose([0.0124, 0.0199, 0.0099, 0.25], v);
        // w + 0.1 m / (√v + 0.01): 1 + 0.005/0.121355 = 1.0412013; 2 − 0.01/0.151067 = 1.9338044; 3; 0.005/0.51 = 0.0098039
        TestData.AssertClose([1.0412013, 1.9338044, 3.0, 0.0098039], w, 1e-6);
    }

    [Fact]
    public void FedYogi_step_matches_hand_computation_including_sign_zero()
    {
        var (w, m, v) = Inputs();
        AggregationMath.FedYogiStep(w, Mean, m, v, 0.1f, 0.9f, 0.99f, 0.01f);
        // Δ² = [0.25, 1, 0, 0.25]; sign(v − Δ²) = [−1, −1, +1, 0] → v = [0.0125, 0.02, 0.01, 0.25] (last one unchanged)
        TestData.AssertClose([0.0125, 0.02, 0.01, 0.25], v);
        TestData.AssertClose([1.0410498, 1.9339591, 3.0, 0.0098039], w, 1e-6);
    }

    [Fact]
    public void FedAdagrad_step_matches_hand_computation()
    {
        var (w, m, v) = Inputs();
        AggregationMath.FedAdagradStep(w, Mean, m, v, 0.1f, beta1: 0, tau: 0.01f);
        // m = Δ; v = v + Δ² = [0.26, 1.01, 0.01, 0.5]
        TestData.AssertClose([0.5, -1, 0, 0.5], m);
        TestData.AssertClose([0.26, 1.01, 0.01, 0.5], v);
        TestData.AssertClose([1.0961720, 1.9014766, 3.0, 0.0697246], w, 1e-6);
    }

    [Fact]
    public void Adaptive_steps_cover_vectors_longer_than_one_chunk()
    {
        const int n = 600;
        var w = new float[n];
        var mean = Enumerable.Repeat(1f, n).ToArray();
        var m = new float[n];
        var v = Enumerable.Repeat(1f, n).ToArray();
        AggregationMath.FedAdamStep(w, mean, m, v, 1, 0, 0, 1);
        // β1 = β2 = 0: m = Δ = 1, v = Δ² = 1, w = 0 + 1 · 1 / (1 + 1) = 0.5 everywhere
        Assert.All(w, x => Assert.Equal(0.5f, x));
    }

    [Fact]
    public void Norm_distance_and_clipping()
    {
        Assert.Equal(13f, AggregationMath.L2Norm([3, 4, 12]));
        Assert.Equal(5f, AggregationMath.L2Distance([4, 6], [1, 2]));
        // Squares overflow float32 (9e60); the norm must not.
        Assert.Equal(5e30f, AggregationMath.L2Norm([3e30f, 4e30f]), 1e24f);

        float[] x = [3, 4];
        Assert.Equal(5f, AggregationMath.ClipByNorm(x, 1));
        TestData.AssertClose([0.6, 0.8], x);

        float[] small = [3, 4];
        Assert.Equal(5f, AggregationMath.ClipByNorm(small, 10));
        Assert.Equal([3f, 4f], small);
    }

    [Fact]
    public void Arguments_are_checked()
    {
        Assert.Throws<ArgumentException>(() => AggregationMath.Accumulate(new float[3], new float[2], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => AggregationMath.Accumulate(new float[2], new float[2], -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => AggregationMath.FedAdamStep(new float[2], new float[2], new float[2], new float[2], 0.1f, 1f, 0.99f, 1e-3f));
        Assert.Throws<ArgumentOutOfRangeException>(() => AggregationMath.FedYogiStep(new float[2], new float[2], new float[2], new float[2], 0.1f, 0.9f, 0.99f, 0));
        Assert.Throws<ArgumentException>(() => AggregationMath.ServerMomentumStep(new float[2], new float[2], new float[3], 0.9f, 1));
        Assert.Throws<ArgumentException>(() => AggregationMath.ClipByNorm(new[] { float.NaN }, 1));
    }
}
