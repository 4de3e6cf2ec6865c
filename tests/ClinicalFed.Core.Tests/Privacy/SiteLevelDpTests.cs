using System.Security.Cryptography;
using System.Text.Json;
using ClinicalFed.Core.Tests.Federation;
using ClinicalFed.Federation;
using ClinicalFed.Privacy;

namespace ClinicalFed.Core.Tests.Privacy;

public sealed class SiteLevelDpTests
{
    private static IAggregationStrategy Uniform() => StrategyFactory.Create(StrategyNames.FedAvg, new Dictionary<string, JsonElement> { ["weighting"] = JsonSerializer.SerializeToElement("uniform") });

    [Fact]
    public void Clipping_scales_only_longer_deltas_to_the_bound()
    {
        float[] d = [3, 4];
        Assert.Equal(0.2f, SiteLevelDpMath.ClipToNorm(d, 1), 6);
        Assert.Equal([0.6f, 0.8f], d.Select(v => (float)Math.Round(v, 6)));
        float[] small = [0.3f, 0.4f];
        Assert.Equal(1f, SiteLevelDpMath.ClipToNorm(small, 1));
        Assert.Equal([0.3f, 0.4f], small);
        Assert.Equal(0.5, SiteLevelDpMath.NoiseStd(new SiteDpOptions { ClipNorm = 2, NoiseMultiplier = 1 }, 4), 12); // z·C/n = 1·2/4
    }

    [Fact]
    public void Noise_has_the_requested_standard_deviation()
    {
        var values = new float[200_000];
        SiteLevelDpMath.AddGaussianNoise(values, 0.5, new SecureGaussian(RandomNumberGenerator.Create()));
        double mean = values.Average(v => (double)v);
        double std = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
        Assert.Equal(0, mean, 0.01);
        Assert.Equal(0.5, std, 0.01);
    }

    [Fact]
    public void Server_side_clipping_gives_the_clipped_uniform_mean_plus_noise_and_spends_budget()
    {
        var accountant = new SiteDpAccountant(new SiteDpOptions { ClipNorm = 1, NoiseMultiplier = 1e-9 }, federationSites: 2);
        var dp = new SiteLevelDpStrategy(Uniform(), accountant, new SecureGaussian(RandomNumberGenerator.Create()));
        float[] g = [1, 1];
        dp.Begin(TestData.Global(g), TestData.Manifest(dimension: 2, round: 1, sites: ["A", "B"]));
        dp.Accumulate(TestData.Header("A", 100, 2, 1), [4, 5]);        // Δ = [3, 4] → clipped [0.6, 0.8]
        dp.Accumulate(TestData.Header("B", 1, 2, 1, ParameterKinds.Delta), [0.2f, 0]); // within the bound
        var result = dp.Finish();
        // g + uniform mean of clipped deltas = [1 + (0.6 + 0.2)/2, 1 + 0.8/2] = [1.4, 1.4]
        TestData.AssertClose([1.4f, 1.4f], result, 1e-5);
        Assert.Equal(5e-10, dp.LastNoiseStd, 15);
        Assert.Single(accountant.EpsilonPerRound);
        Assert.True(accountant.EpsilonTotal > 0);
    }

    [Fact]
    public void Client_mode_rejects_an_update_the_site_did_not_clip()
    {
        var dp = new SiteLevelDpStrategy(Uniform(), new SiteDpAccountant(new SiteDpOptions { ClipNorm = 1, Mode = SiteDpModes.Client }, 2),
            new SecureGaussian(RandomNumberGenerator.Create()));
        dp.Begin(null, TestData.Manifest(dimension: 2, sites: ["A", "B"]));
        var e = Assert.Throws<UpdateRejectedException>(() => dp.Accumulate(TestData.Header("A", 1, 2), [3, 4]));
        Assert.Contains("exceeds the clip norm 1", e.Reason);
        dp.Accumulate(TestData.Header("B", 1, 2), [0.6f, 0.8f]);
        Assert.Equal(1, dp.AcceptedCount);
    }

    [Fact]
    public void The_accountant_matches_the_RDP_accountant_and_refuses_a_round_over_the_target()
    {
        var options = new SiteDpOptions { ClipNorm = 1, NoiseMultiplier = 1.1, Delta = 1e-5, TargetEpsilon = 10 };
        var accountant = new SiteDpAccountant(options, federationSites: 5);
        for (int r = 0; r < 3; r++) accountant.Spend(5); // every site every round: q = 1
        Assert.Equal(RdpAccountant.Epsilon(1.0, 1.1, 3, 1e-5), accountant.EpsilonTotal, 9);
        var tight = new SiteDpAccountant(options with { TargetEpsilon = accountant.EpsilonTotal + 1e-6 }, 5);
        for (int r = 0; r < 3; r++) tight.Spend(5);
        Assert.Throws<PrivacyBudgetExceededException>(() => tight.EnsureCanSpend(5));
        var dp = new SiteLevelDpStrategy(Uniform(), tight, new SecureGaussian(RandomNumberGenerator.Create()));
        Assert.Throws<PrivacyBudgetExceededException>(() => dp.Begin(null, TestData.Manifest(dimension: 2, sites: ["A", "B", "C", "D", "E"])));
    }

    [Fact]
    public void Options_and_example_weighting_are_refused_with_every_problem()
    {
        var e = Assert.Throws<ArgumentException>(() => new SiteLevelDpStrategy(new FedAvgStrategy(),
            new SiteDpAccountant(new SiteDpOptions { ClipNorm = 0, NoiseMultiplier = -1, Mode = "both" }, 2), new SecureGaussian(RandomNumberGenerator.Create())));
        foreach (var part in new[] { "clip_norm", "noise_multiplier", "mode", "weighting=uniform" }) Assert.Contains(part, e.Message);
    }
}
