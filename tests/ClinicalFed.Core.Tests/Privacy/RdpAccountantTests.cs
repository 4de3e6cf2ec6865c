using ClinicalFed.Privacy;

namespace ClinicalFed.Core.Tests.Privacy;

public sealed class RdpAccountantTests
{
    [Theory]
    [InlineData(0.5, 2.0)]
    [InlineData(1.1, 8.0)]
    [InlineData(4.0, 32.0)]
    [InlineData(2.0, 2.5)]
    public void Without_sampling_the_Gaussian_mechanism_has_rdp_alpha_over_two_sigma_squared(double sigma, double alpha)
    {
        Assert.Equal(alpha / (2 * sigma * sigma), RdpAccountant.StepRdp(1.0, sigma, alpha), 12);
    }

    [Theory]
    [InlineData(0.01, 1.1, 2)]
    [InlineData(0.01, 1.1, 8)]
    [InlineData(0.04, 1.5, 20)]
    [InlineData(0.2, 0.8, 5)]
    [InlineData(0.001, 2.0, 64)]
    public void Binomial_expansion_agrees_with_numerical_integration(double q, double sigma, int alpha)
    {
        double binomial = RdpAccountant.LogAInteger(q, sigma, alpha);
        double quadrature = RdpAccountant.LogAByQuadrature(q, sigma, alpha);
        Assert.True(Math.Abs(binomial - quadrature) <= 1e-9 * Math.Max(1, Math.Abs(binomial)), $"binomial {binomial}, quadrature {quadrature}");
    }

    [Fact]
    public void Order_two_matches_the_hand_computed_closed_form()
    {
        // α = 2: A = (1−q)² + 2q(1−q) + q²·e^{1/σ²} = 1 + q²(e^{1/σ²} − 1).
        double q = 0.01, sigma = 1.1;
        double expected = Math.Log(1 + q * q * (Math.Exp(1 / (sigma * sigma)) - 1));
        Assert.Equal(expected, RdpAccountant.StepRdp(q, sigma, 2), 12);
    }

    [Fact]
    public void Matches_the_published_Opacus_reference_value()
    {
        // Opacus' accountant test: σ = 1.5, q = 0.04, 2250 steps, δ = 1e-5 → ε = 7.32911117143 with its default orders
        // (1.1 to 10.9 by 0.1, then 12 to 63) and the same improved conversion.
        var orders = Enumerable.Range(1, 99).Select(x => 1 + x / 10.0).Concat(Enumerable.Range(12, 52).Select(a => (double)a)).ToArray();
        double eps = RdpAccountant.Epsilon(0.04, 1.5, 2250, 1e-5, orders);
        Assert.Equal(7.32911117143, eps, 4);
    }

    [Fact]
    public void Conversion_follows_the_improved_formula()
    {
        // One order by hand: ε = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α).
        double rdp = 0.5, a = 10, delta = 1e-5;
        double expected = rdp - (Math.Log(delta) + Math.Log(a)) / (a - 1) + Math.Log((a - 1) / a);
        var g = RdpAccountant.ToEpsilon([a], [rdp], delta);
        Assert.Equal(expected, g.Epsilon, 12);
        Assert.Equal(a, g.Order);
    }

    [Fact]
    public void Composition_is_linear_in_steps()
    {
        var one = RdpAccountant.Rdp(0.02, 1.0, 1);
        var many = RdpAccountant.Rdp(0.02, 1.0, 500);
        for (int i = 0; i < one.Length; i++) Assert.Equal(500 * one[i], many[i], 9);
        Assert.Equal(0, RdpAccountant.Epsilon(0.02, 1.0, 0, 1e-5));
    }

    [Fact]
    public void Calibration_reaches_the_target_and_is_monotone()
    {
        double sigma = RdpAccountant.CalibrateNoiseMultiplier(3, 1e-5, 0.05, 200);
        double eps = RdpAccountant.Epsilon(0.05, sigma, 200, 1e-5);
        Assert.True(eps <= 3 && eps > 2.99, $"ε = {eps} at σ = {sigma}");
        Assert.True(RdpAccountant.Epsilon(0.05, sigma * 0.99, 200, 1e-5) > 3);

        Assert.True(RdpAccountant.CalibrateNoiseMultiplier(1, 1e-5, 0.05, 200) > sigma);      // smaller ε → more noise
        Assert.True(RdpAccountant.CalibrateNoiseMultiplier(8, 1e-5, 0.05, 200) < sigma);      // larger ε → less noise
        Assert.True(RdpAccountant.CalibrateNoiseMultiplier(3, 1e-5, 0.10, 200) > sigma);      // higher q → more noise
        Assert.True(RdpAccountant.CalibrateNoiseMultiplier(3, 1e-5, 0.05, 800) > sigma);      // more steps → more noise
        Assert.True(RdpAccountant.CalibrateNoiseMultiplier(3, 1e-8, 0.05, 200) > sigma);      // smaller δ → more noise
    }

    [Fact]
    public void Epsilon_decreases_with_noise()
    {
        double previous = double.PositiveInfinity;
        foreach (var s in new[] { 0.6, 0.8, 1.0, 1.5, 2.0, 4.0 })
        {
            double e = RdpAccountant.Epsilon(0.01, s, 10_000, 1e-5);
            Assert.True(e < previous);
            previous = e;
        }
    }
}
