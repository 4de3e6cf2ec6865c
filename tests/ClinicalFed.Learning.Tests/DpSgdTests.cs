using System.Numerics.Tensors;
using System.Security.Cryptography;
using ClinicalFed.Privacy;

namespace ClinicalFed.Learning.Tests;

public sealed class DpSgdTests
{
    /// <summary>Wraps DP-SGD's processor and records every unit's gradient after clipping.</summary>
    private sealed class Recorder(IGradientProcessor inner) : IGradientProcessor
    {
        public List<float[]> Units { get; } = [];

        public void ProcessUnit(Span<float> unitGradient)
        {
            inner.ProcessUnit(unitGradient);
            Units.Add(unitGradient.ToArray());
        }

        public double ProcessBatchSum(Span<float> gradientSum, in GradientBatchContext context) => inner.ProcessBatchSum(gradientSum, context);
    }

    [Fact]
    public void A_patient_with_many_rows_has_no_more_influence_than_a_patient_with_one_row()
    {
        // Patient 0: 60 identical rows with large features; patient 1: one copy of that row; patients 2..9: one small row each.
        const int d = 3;
        var rows = new List<float[]>();
        var groups = new List<int>();
        float[] big = [4f, -3f, 5f];
        for (int i = 0; i < 60; i++) { rows.Add(big); groups.Add(0); }
        rows.Add(big); groups.Add(1);
        for (int p = 2; p < 10; p++) { rows.Add([0.1f * p, 0f, -0.1f]); groups.Add(p); }
        var x = rows.SelectMany(r => r).ToArray();
        var y = rows.Select((_, i) => i % 2 == 0 ? 1f : 0f).ToArray();
        var data = new FeatureMatrix(x, d, y, null, [.. groups], 10);

        const float clip = 0.5f;
        var recorder = new Recorder(new DpSgdGradientProcessor(clip, 0, new SecureGaussian(RandomNumberGenerator.Create())));
        var options = new ProximalSgdOptions
        {
            Epochs = 1, BatchSize = 10, SamplingUnit = SamplingUnit.Group, BatchSampling = BatchSampling.Poisson, GroupGradient = GroupGradient.MeanOfRows,
            Momentum = 0, L2 = 0, LearningRate = LearningRateSchedule.Constant(0.1),
        };
        ProximalSgdOptimizer.Train(data, null, options, recorder);

        Assert.Equal(10, recorder.Units.Count); // one gradient per patient, not per row
        Assert.All(recorder.Units, g => Assert.True(TensorPrimitives.Norm(g) <= clip * (1 + 1e-5)));
        var many = recorder.Units[0];
        var one = recorder.Units[1];
        Assert.True(TensorPrimitives.Norm(many) <= TensorPrimitives.Norm(one) + 1e-5);
        Assert.Equal(clip, TensorPrimitives.Norm(one), 4); // the large row was clipped
    }

    [Fact]
    public void Noise_has_standard_deviation_sigma_times_clip_and_the_sum_is_divided_by_the_expected_batch()
    {
        var processor = new DpSgdGradientProcessor(2f, 1.5, new SecureGaussian(RandomNumberGenerator.Create()));
        var sum = new float[200_000];
        double divisor = processor.ProcessBatchSum(sum, new GradientBatchContext(0, 0, Units: 37, ExpectedUnits: 40.5, new Random(1)));
        Assert.Equal(40.5, divisor);
        double mean = sum.Average(v => (double)v);
        double sd = Math.Sqrt(sum.Average(v => (v - mean) * (v - mean)));
        Assert.InRange(mean, -0.03, 0.03);          // 3 s.e. of the mean is 0.02
        Assert.InRange(sd, 3.0 * 0.99, 3.0 * 1.01); // σ·C = 3; s.e. of the s.d. ≈ 0.005
    }

    [Fact]
    public void Secure_gaussian_is_standard_normal()
    {
        var g = new SecureGaussian(RandomNumberGenerator.Create());
        var v = Enumerable.Range(0, 100_000).Select(_ => g.Next()).ToArray();
        Assert.InRange(v.Average(), -0.015, 0.015);
        Assert.InRange(Math.Sqrt(v.Average(z => z * z)), 0.99, 1.01);
        Assert.InRange(v.Count(z => Math.Abs(z) > 1.96) / (double)v.Length, 0.046, 0.054);
    }

    [Fact]
    public void Private_rounds_spend_the_budget_then_the_site_refuses()
    {
        var data = TestData.Logistic(4000, 5, seed: 3, meanRowsPerPatient: 4);
        var settings = new ClientTrainingSettings { BatchSize = 100, LearningRate = 0.1, DpEpsilon = 2, DpDelta = 1e-5, DpClipNorm = 1, DpRounds = 2 };
        var site = new SitePrivacy("A", new PrivacyBudgetLedger(2, 1e-5), RandomNumberGenerator.Create());
        var (r0, p0) = ClientTraining.TrainRoundPrivately(data, null, settings, 0, 0, site);
        var (_, p1) = ClientTraining.TrainRoundPrivately(data, r0.Weights, settings, 1, 0, site);
        var plan = site.Plan(settings, data);

        Assert.Equal(PrivacyMechanisms.DpSgdPatient, p0.Mechanism);
        Assert.Equal(plan.StepsPerRound, p0.Steps);
        Assert.Equal(Math.Min(1, 100.0 / plan.Patients), p0.SamplingRate, 12);
        Assert.Equal(p0.EpsilonRound, p1.EpsilonRound, 9);
        Assert.True(p1.EpsilonTotal is > 1.9 and <= 2.0, $"ε total {p1.EpsilonTotal}");
        Assert.Empty(p1.Validate());
        Assert.Throws<PrivacyBudgetExceededException>(() => ClientTraining.TrainRoundPrivately(data, null, settings, 2, 0, site));
        Assert.Equal(2, site.Ledger.Rounds);
    }

    [Fact]
    public void Dp_settings_travel_in_client_options()
    {
        var settings = new ClientTrainingSettings { DpEpsilon = 3, DpDelta = 1e-6, DpClipNorm = 2, DpRounds = 7, DpNoiseMultiplier = 1.2 };
        var spec = ClinicalFed.Federation.StrategySpec.From(ClinicalFed.Federation.StrategyFactory.ParseOptions("fedavg", null), settings.ToClientOptions());
        Assert.Equal(settings, ClientTrainingSettings.From(spec));
        var plain = new ClientTrainingSettings();
        Assert.DoesNotContain(plain.ToClientOptions().Keys, k => k.StartsWith("client_dp_", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => ClientTraining.TrainRoundPrivately(
            new FeatureMatrix([1f, 2f], 1, [0f, 1f]), null, settings, 0, 0, new SitePrivacy("A", new PrivacyBudgetLedger(3, 1e-6), RandomNumberGenerator.Create())));
    }
}
