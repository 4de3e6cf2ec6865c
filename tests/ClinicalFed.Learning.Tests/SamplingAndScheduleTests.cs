namespace ClinicalFed.Learning.Tests;

public class SamplingAndScheduleTests
{
    [Fact]
    public void Group_batches_hold_whole_patients_and_each_patient_once_per_epoch()
    {
        // Patients: a = rows 0, 2, 5; b = rows 1, 3; c = row 4.
        var m = new FeatureMatrix(new float[6], 1, new float[6], groupIds: [0, 1, 0, 1, 2, 0], groupCount: 3);
        var sampler = new MiniBatchSampler(m, SamplingUnit.Group, BatchSampling.Shuffle, batchSize: 2, seed: 1);
        Assert.Equal(3, sampler.UnitCount);
        Assert.Equal(2, sampler.StepsPerEpoch);
        Assert.Equal(2.0, sampler.MeanRowsPerUnit);
        Assert.Equal([[0, 2, 5], [1, 3], [4]], Enumerable.Range(0, 3).Select(u => sampler.RowsOf(u).ToArray()));

        for (int epoch = 0; epoch < 3; epoch++)
        {
            IReadOnlyList<int[]> batches = sampler.NextEpoch();
            Assert.Equal([2, 1], batches.Select(b => b.Length));
            Assert.Equal([0, 1, 2], batches.SelectMany(b => b).Order());
        }
    }

    [Fact]
    public void A_coordinate_mask_trains_only_the_chosen_coordinates_and_the_refit_returns_their_change()
    {
        var data = TestData.Logistic(2_000, 4, seed: 5);
        var global = new LinearWeights([0.1f, -0.2f, 0.3f, 0f], 0.5f);
        var settings = new ClientTrainingSettings { BatchSize = 50, LearningRate = 0.1, L2 = 0 };
        var masked = ProximalSgdOptimizer.Train(data, global, settings.ForRound(1, 0), new CoordinateMask([1, 4], 5)).Weights.ToParameterVector();
        var start = global.ToParameterVector();
        // Coordinates 0, 2 and 3 are held (no L2 here); 1 and the bias (index 4) move.
        Assert.Equal([start[0], start[2], start[3]], [masked[0], masked[2], masked[3]]);
        Assert.NotEqual(start[1], masked[1]);
        Assert.NotEqual(start[4], masked[4]);

        var change = ClientTraining.RefitCoordinates(data, global, settings with { LocalEpochs = 1 }, 1, 0, [1, 4], epochs: 1);
        Assert.Equal([masked[1] - start[1], masked[4] - start[4]], change);
        Assert.Throws<ArgumentOutOfRangeException>(() => new CoordinateMask([5], 5));
        Assert.Throws<ArgumentException>(() => ClientTraining.RefitCoordinates(data, global, settings with { DpEpsilon = 1 }, 1, 0, [1], 1));
    }

    [Fact]
    public void Group_units_follow_a_row_subset()
    {
        var m = new FeatureMatrix(new float[6], 1, new float[6], groupIds: [0, 1, 0, 1, 2, 0], groupCount: 3).Subset([4, 2, 0]);
        var sampler = new MiniBatchSampler(m, SamplingUnit.Group, BatchSampling.Shuffle, batchSize: 10, seed: 1);
        Assert.Equal(2, sampler.UnitCount); // patients c (row 4 → position 0) and a (positions 1, 2)
        Assert.Equal([[0], [1, 2]], Enumerable.Range(0, 2).Select(u => sampler.RowsOf(u).ToArray()));
    }

    [Fact]
    public void Poisson_batches_include_each_unit_with_probability_batch_over_units()
    {
        var m = new FeatureMatrix(new float[10_000], 1, new float[10_000]);
        var sampler = new MiniBatchSampler(m, SamplingUnit.Row, BatchSampling.Poisson, batchSize: 100, seed: 3);
        Assert.Equal(100, sampler.StepsPerEpoch);
        Assert.Equal(0.01, sampler.SamplingRate, 12);
        var counts = new int[10_000];
        int total = 0;
        for (int epoch = 0; epoch < 5; epoch++)
        {
            foreach (int[] batch in sampler.NextEpoch())
            {
                Assert.Equal(batch.Distinct().Count(), batch.Length);
                foreach (int u in batch)
                {
                    counts[u]++;
                }

                total += batch.Length;
            }
        }

        // 500 steps × 100 expected units; binomial sd ≈ 222.
        Assert.InRange(total, 50_000 - 1500, 50_000 + 1500);
        Assert.True(counts.Count(c => c > 0) > 9_000);
    }

    [Fact]
    public void Learning_rate_schedules_by_hand()
    {
        var cosine = LearningRateSchedule.Cosine(0.1);
        Assert.Equal(0.1, cosine.Rate(0, 101), 12);
        Assert.Equal(0.05, cosine.Rate(50, 101), 12);
        Assert.Equal(0.0, cosine.Rate(100, 101), 12);
        var warm = LearningRateSchedule.Cosine(0.1, 0.01, warmupSteps: 4);
        Assert.Equal(0.025, warm.Rate(0, 100), 12);
        Assert.Equal(0.1, warm.Rate(4, 100), 12);
        Assert.Equal(0.01, warm.Rate(99, 100), 12);
        Assert.Equal(0.05, LearningRateSchedule.InverseTime(0.1, 0.5).Rate(2, 10), 12);
        Assert.Equal(0.3, LearningRateSchedule.Constant(0.3).Rate(1000, 10), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant(0));
    }

    [Fact]
    public void Class_weights_by_hand()
    {
        Assert.Equal((1f, 1f), ClassWeighting.None.Resolve(10, 90));
        // n / (2·n_c): 100 / 180 and 100 / 20.
        var (negative, positive) = ClassWeighting.Balanced.Resolve(10, 90);
        Assert.Equal(100f / 180f, negative, 6);
        Assert.Equal(5f, positive, 6);
        Assert.Equal((1f, 7f), ClassWeighting.PositiveWeight(7).Resolve(10, 90));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassWeighting.PositiveWeight(-1));
    }

    [Fact]
    public void Clipper_scales_long_gradients_to_the_bound_and_leaves_short_ones()
    {
        var clipper = new L2NormClipper(1f);
        float[] longOne = [3, 4];
        float[] shortOne = [0.3f, 0.4f];
        clipper.ProcessUnit(longOne);
        clipper.ProcessUnit(shortOne);
        Assert.Equal([0.6f, 0.8f], longOne);
        Assert.Equal([0.3f, 0.4f], shortOne);
        Assert.Equal((2L, 1L), (clipper.Units, clipper.ClippedUnits));
    }

    [Fact]
    public void Linear_weights_parameter_vector_round_trip()
    {
        var w = new LinearWeights([1f, 2f], 3f);
        Assert.Equal([1f, 2f, 3f], w.ToParameterVector());
        Assert.Equal(w, LinearWeights.FromParameterVector([1f, 2f, 3f]));
        Assert.Throws<ArgumentException>(() => new LinearWeights([float.NaN], 0));
        Assert.Equal(0.5, LinearWeights.Zeros(3).Probability([1f, 2f, 3f]));
    }
}
