using ClinicalFed.Contribution;

namespace ClinicalFed.Core.Tests.Contribution;

public sealed class ContributionMathTests
{
    // The glove game: site 0 holds a left glove, sites 1 and 2 right gloves; a coalition is worth 1 with a pair.
    private static double Gloves(int mask) => (mask & 1) != 0 && (mask & 6) != 0 ? 1 : 0;

    [Fact]
    public void Exact_Shapley_of_the_glove_game_is_two_thirds_one_sixth_one_sixth()
    {
        var phi = ContributionMath.ExactShapley(3, Gloves);
        Assert.Equal(2 / 3.0, phi[0], 12);
        Assert.Equal(1 / 6.0, phi[1], 12);
        Assert.Equal(1 / 6.0, phi[2], 12);
    }

    [Fact]
    public void Leave_one_out_of_the_glove_game_credits_only_the_left_glove()
    {
        Assert.Equal([1.0, 0.0, 0.0], ContributionMath.LeaveOneOut(3, Gloves));
    }

    [Fact]
    public void Additive_utilities_give_each_site_its_own_term_and_values_sum_to_the_grand_coalition()
    {
        double[] own = [0.3, -0.1, 0.05, 0.2];
        double U(int mask) => 0.5 + Enumerable.Range(0, 4).Where(i => (mask & (1 << i)) != 0).Sum(i => own[i]);
        var exact = ContributionMath.ExactShapley(4, U);
        for (int i = 0; i < 4; i++) Assert.Equal(own[i], exact[i], 12);
        Assert.Equal(U(15) - U(0), exact.Sum(), 12);
        var sampled = ContributionMath.SampledShapley(4, U, permutations: 3, new Random(1));
        for (int i = 0; i < 4; i++) Assert.Equal(own[i], sampled[i], 12); // additive: every permutation gives the same marginal
        Assert.Equal([0, 3, 2, 1], ContributionMath.Ranking(exact));
    }

    [Fact]
    public void Sampled_Shapley_converges_to_the_exact_values_and_asks_each_coalition_once()
    {
        int calls = 0;
        double U(int mask) { calls++; return Gloves(mask); }
        var sampled = ContributionMath.SampledShapley(3, U, permutations: 3000, new Random(5));
        Assert.Equal(2 / 3.0, sampled[0], 1.5e-2);
        Assert.Equal(1 / 6.0, sampled[1], 1.5e-2);
        Assert.True(calls <= 8, $"{calls} utility calls for 8 coalitions");
    }

    [Fact]
    public void Bad_arguments_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ContributionMath.ExactShapley(17, _ => 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ContributionMath.SampledShapley(3, Gloves, 0, new Random(1)));
        Assert.Throws<ArgumentException>(() => ContributionMath.LeaveOneOut(2, _ => double.NaN));
    }
}
