namespace ClinicalFed.Contribution;

/// <summary>
/// Data-valuation of federated sites from a utility over coalitions: leave-one-out, exact Shapley values and Monte-Carlo
/// permutation Shapley values. A coalition is a bit mask over the sites (bit i set: site i's update is in the
/// aggregate); the utility is any number that grows with model quality, measured by federated evaluation (each site
/// scores a candidate model on its own validation patients and shares only the metric). Utilities are asked for once
/// per coalition and remembered, so the cost is the number of distinct coalitions evaluated.
/// </summary>
public static class ContributionMath
{
    /// <summary>The most sites <see cref="ExactShapley"/> enumerates (2^n coalitions).</summary>
    public const int MaxExactSites = 16;

    /// <summary>Leave-one-out: <c>u(all) − u(all without i)</c> for each site.</summary>
    public static double[] LeaveOneOut(int sites, Func<int, double> utility)
    {
        var u = Memoized(sites, utility);
        int all = AllMask(sites);
        var values = new double[sites];
        for (int i = 0; i < sites; i++) values[i] = u(all) - u(all & ~(1 << i));
        return values;
    }

    /// <summary>
    /// Exact Shapley values: <c>φ_i = Σ_{S ⊆ N∖{i}} |S|! (n − |S| − 1)! / n! · (u(S ∪ {i}) − u(S))</c>. Efficient:
    /// the values sum to <c>u(all) − u(∅)</c>. Needs 2^n utilities; n at most <see cref="MaxExactSites"/>.
    /// </summary>
    public static double[] ExactShapley(int sites, Func<int, double> utility)
    {
        if (sites > MaxExactSites) throw new ArgumentOutOfRangeException(nameof(sites), sites, $"exact Shapley values enumerate 2^n coalitions; use SampledShapley above {MaxExactSites} sites");
        var u = Memoized(sites, utility);
        // weight[k] = k! (n − k − 1)! / n!, computed as 1 / (n · C(n − 1, k)).
        var weight = new double[sites];
        for (int k = 0; k < sites; k++) weight[k] = 1.0 / (sites * Binomial(sites - 1, k));
        var values = new double[sites];
        for (int mask = 0; mask <= AllMask(sites); mask++)
        {
            int size = System.Numerics.BitOperations.PopCount((uint)mask);
            for (int i = 0; i < sites; i++)
            {
                if ((mask & (1 << i)) != 0) continue;
                values[i] += weight[size] * (u(mask | (1 << i)) - u(mask));
            }
        }

        return values;
    }

    /// <summary>
    /// Monte-Carlo Shapley values (Castro et al. 2009): the mean marginal contribution of each site over
    /// <paramref name="permutations"/> random orders of the sites, drawn from <paramref name="random"/>. Unbiased; each
    /// permutation costs at most n new utilities (fewer once coalitions repeat).
    /// </summary>
    public static double[] SampledShapley(int sites, Func<int, double> utility, int permutations, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfLessThan(permutations, 1);
        var u = Memoized(sites, utility);
        var values = new double[sites];
        var order = Enumerable.Range(0, sites).ToArray();
        for (int p = 0; p < permutations; p++)
        {
            random.Shuffle(order);
            int mask = 0;
            double previous = u(0);
            foreach (int i in order)
            {
                mask |= 1 << i;
                double current = u(mask);
                values[i] += current - previous;
                previous = current;
            }
        }

        for (int i = 0; i < sites; i++) values[i] /= permutations;
        return values;
    }

    /// <summary>Site indices from the highest value to the lowest (ties by index).</summary>
    public static int[] Ranking(IReadOnlyList<double> values) =>
        Enumerable.Range(0, values.Count).OrderByDescending(i => values[i]).ThenBy(i => i).ToArray();

    private static Func<int, double> Memoized(int sites, Func<int, double> utility)
    {
        ArgumentNullException.ThrowIfNull(utility);
        if (sites is < 1 or > 30) throw new ArgumentOutOfRangeException(nameof(sites), sites, "1 to 30 sites");
        var known = new Dictionary<int, double>();
        return mask =>
        {
            if (known.TryGetValue(mask, out double v)) return v;
            v = utility(mask);
            if (!double.IsFinite(v)) throw new ArgumentException($"the utility of coalition {mask} is {v}; it must be finite", nameof(utility));
            known[mask] = v;
            return v;
        };
    }

    private static int AllMask(int sites) => (1 << sites) - 1;

    private static double Binomial(int n, int k)
    {
        double c = 1;
        for (int j = 1; j <= k; j++) c = c * (n - k + j) / j;
        return c;
    }
}
