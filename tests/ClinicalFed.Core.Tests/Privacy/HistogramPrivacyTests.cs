using System.Security.Cryptography;
using ClinicalFed.Privacy;

namespace ClinicalFed.Core.Tests.Privacy;

public sealed class HistogramPrivacyTests
{
    [Fact]
    public void A_patients_rows_weigh_at_most_the_cap_together()
    {
        // Patient 0 has three rows, patient 1 one, patient 2 two.
        int[] groups = [0, 0, 0, 1, 2, 2];
        Assert.Equal([1 / 3.0, 1 / 3.0, 1 / 3.0, 1, 0.5, 0.5], HistogramPrivacy.PatientRowWeights(groups, 3, cap: 1));
        Assert.Equal([2 / 3.0, 2 / 3.0, 2 / 3.0, 1, 1, 1], HistogramPrivacy.PatientRowWeights(groups, 3, cap: 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => HistogramPrivacy.PatientRowWeights([0, 3], 3, cap: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => HistogramPrivacy.PatientRowWeights(groups, 3, cap: 0));
    }

    [Fact]
    public void Sensitivities_count_three_parts_per_feature_plus_the_node_sums()
    {
        Assert.Equal(Math.Sqrt(27), HistogramPrivacy.Sensitivity(features: 8, cap: 1), 12);      // √(3·(8 + 1))
        Assert.Equal(2 * Math.Sqrt(6), HistogramPrivacy.Sensitivity(features: 1, cap: 2), 12);   // 2·√(3·2)
        Assert.Equal(2, HistogramPrivacy.CountSensitivity(parts: 4, cap: 1), 12);
        Assert.Equal(0.5 * Math.Sqrt(2), HistogramPrivacy.CountSensitivity(parts: 2, cap: 0.5), 12);
    }

    [Fact]
    public void A_run_queries_the_cuts_the_base_score_and_each_depth_level_of_each_tree()
    {
        Assert.Equal(2 + 20 * 5, HistogramPrivacy.Queries(trees: 20, maxDepth: 4));
        Assert.Equal(2, HistogramPrivacy.Queries(trees: 0, maxDepth: 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => HistogramPrivacy.Queries(trees: 5, maxDepth: 0));
    }

    [Fact]
    public void With_secure_aggregation_each_site_adds_a_share_of_the_variance()
    {
        // σ = 2, S = 3: the sum needs standard deviation 6; four masked sites add 6/√4 = 3 each.
        Assert.Equal(6, HistogramPrivacy.SiteNoise(2, 3, sites: 4, secureAggregation: false), 12);
        Assert.Equal(3, HistogramPrivacy.SiteNoise(2, 3, sites: 4, secureAggregation: true), 12);
    }

    [Fact]
    public void The_guarantee_is_that_of_composed_gaussian_queries()
    {
        // One Gaussian query at σ has RDP α/(2σ²); m queries m·α/(2σ²). Hand conversion at σ = 10, m = 50, δ = 1e-5:
        // ε = min over α of 50α/200 + (log(1/δ) − log α)/(α − 1) + log((α − 1)/α).
        double best = double.PositiveInfinity;
        foreach (double a in RdpAccountant.DefaultOrders)
            best = Math.Min(best, 50 * a / 200 + (Math.Log(1e5) - Math.Log(a)) / (a - 1) + Math.Log((a - 1) / a));
        var g = HistogramPrivacy.Guarantee(10, 50, 1e-5);
        Assert.Equal(best, g.Epsilon, 9);
        // Calibration gives the smallest σ within the budget.
        double sigma = HistogramPrivacy.Calibrate(3, 1e-5, 102);
        Assert.True(HistogramPrivacy.Guarantee(sigma, 102, 1e-5).Epsilon <= 3);
        Assert.True(HistogramPrivacy.Guarantee(sigma * 0.99, 102, 1e-5).Epsilon > 3);
    }

    [Fact]
    public void Noise_is_scaled_by_each_parts_bound()
    {
        var gaussian = new SecureGaussian(RandomNumberGenerator.Create());
        const int slots = 40_000;
        var values = new double[3 * slots];
        HistogramPrivacy.AddNoise(values, sd: 2, gaussian);
        for (int part = 0; part < 3; part++)
        {
            double sum = 0, sq = 0;
            for (int i = part; i < values.Length; i += 3) { sum += values[i]; sq += values[i] * values[i]; }
            double mean = sum / slots, sd = Math.Sqrt(sq / slots - mean * mean);
            double expected = 2 * HistogramPrivacy.PartBounds[part];   // 2, 0.5, 2
            // The sample deviation of 40,000 draws is within 1 % (2.8 standard errors) of the truth; 4 % leaves room.
            Assert.InRange(sd, 0.96 * expected, 1.04 * expected);
            Assert.InRange(mean, -0.05 * expected, 0.05 * expected);
        }
        var unchanged = new double[6] { 1, 2, 3, 4, 5, 6 };
        HistogramPrivacy.AddNoise(unchanged, sd: 0, gaussian);
        Assert.Equal([1, 2, 3, 4, 5, 6], unchanged);
        Assert.Throws<ArgumentException>(() => HistogramPrivacy.AddNoise(new double[4], 1, gaussian));
    }
}
