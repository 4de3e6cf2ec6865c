using System.Text.Json.Serialization;
using ClinicalFed.Contribution;
using ClinicalFed.Learning;

namespace ClinicalFed.Cli.Simulation;

/// <summary>One site's contribution in <c>report.json</c>.</summary>
public sealed record SiteContribution
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    /// <summary>Shapley value, summed over rounds (utility: validation AUROC, see <see cref="ContributionReport.Utility"/>).</summary>
    [JsonPropertyName("shapley")] public double Shapley { get; init; }
    /// <summary>Leave-one-out value, summed over rounds.</summary>
    [JsonPropertyName("leave_one_out")] public double LeaveOneOut { get; init; }
    /// <summary>1 = the largest Shapley value.</summary>
    [JsonPropertyName("rank")] public int Rank { get; init; }
}

/// <summary>The <c>contribution</c> section of <c>report.json</c>.</summary>
public sealed record ContributionReport
{
    [JsonPropertyName("method")] public required string Method { get; init; }
    [JsonPropertyName("utility")] public required string Utility { get; init; }
    [JsonPropertyName("coalitions_evaluated")] public long CoalitionsEvaluated { get; init; }
    [JsonPropertyName("sites")] public required IReadOnlyList<SiteContribution> Sites { get; init; }
    /// <summary>With --downweight-contributors: sites whose summed Shapley value turned negative, and the first round they were left out of.</summary>
    [JsonPropertyName("excluded")] public IReadOnlyList<ExcludedContributor> Excluded { get; init; } = [];
}

/// <summary>A site down-weighted to zero for a negative contribution.</summary>
public sealed record ExcludedContributor(
    [property: JsonPropertyName("site")] string Site,
    [property: JsonPropertyName("from_round")] int FromRound,
    [property: JsonPropertyName("shapley")] double Shapley);

/// <summary>
/// Round-wise contribution scoring by federated evaluation. After each round, every coalition of that round's uploads
/// (or a sample of permutations) forms a candidate model: the round's starting global model moved by the coalition's
/// example-weighted mean delta (FedAvg of the coalition; the empty coalition is the starting model). Each site scores
/// every candidate on its own validation patients and shares only the AUROC; the utility of a coalition is the
/// validation-size-weighted mean of those AUROCs. Shapley and leave-one-out values per round are summed over rounds
/// (round-wise Shapley, as in GTG-Shapley, Liu et al. 2022).
/// </summary>
internal sealed class ContributionScoring
{
    public const string Exact = "exact";
    public const string Sampled = "sampled";

    private readonly IReadOnlyList<PreparedSite> _sites;
    private readonly int _width;
    private readonly string _method;
    private readonly int _permutations;
    private readonly Random _random;
    private readonly double[] _shapley;
    private readonly double[] _leaveOneOut;
    private long _coalitions;

    public ContributionScoring(IReadOnlyList<PreparedSite> sites, int width, string method, int permutations, int seed)
    {
        if (method is not (Exact or Sampled)) throw new ArgumentException($"contribution method '{method}' (expected {Exact} or {Sampled})", nameof(method));
        _sites = sites;
        _width = width;
        _method = sites.Count > ContributionMath.MaxExactSites ? Sampled : method;
        _permutations = permutations;
        _random = new Random(seed);
        _shapley = new double[sites.Count];
        _leaveOneOut = new double[sites.Count];
    }

    /// <summary>
    /// Scores one round: <paramref name="updates"/> are the uploaded full models (index into the sites, model,
    /// example count) that started from <paramref name="start"/>.
    /// </summary>
    public void AddRound(LinearWeights start, IReadOnlyList<(int Site, float[] Parameters, long Examples)> updates)
    {
        if (updates.Count == 0) return;
        var startVector = start.ToParameterVector();
        double Utility(int mask)
        {
            _coalitions++;
            var candidate = (float[])startVector.Clone();
            double examples = 0;
            foreach (var (_, _, n) in updates.Where((_, k) => (mask & (1 << k)) != 0)) examples += n;
            if (examples > 0)
            {
                for (int k = 0; k < updates.Count; k++)
                {
                    if ((mask & (1 << k)) == 0) continue;
                    var (_, p, n) = updates[k];
                    float w = (float)(n / examples);
                    for (int j = 0; j < candidate.Length; j++) candidate[j] += w * (p[j] - startVector[j]);
                }
            }

            return ValidationAuroc(LinearWeights.FromParameterVector(candidate));
        }

        var phi = _method == Exact
            ? ContributionMath.ExactShapley(updates.Count, Utility)
            : ContributionMath.SampledShapley(updates.Count, Utility, _permutations, _random);
        var loo = ContributionMath.LeaveOneOut(updates.Count, Utility);
        for (int k = 0; k < updates.Count; k++)
        {
            _shapley[updates[k].Site] += phi[k];
            _leaveOneOut[updates[k].Site] += loo[k];
        }
    }

    private double ValidationAuroc(LinearWeights w) => ValidationAuroc(_sites, x => SimulationRunner.Predict(w, x, _width));

    /// <summary>Federated evaluation: each site's validation AUROC of <paramref name="predict"/> (validation rows to
    /// probabilities), weighted by its validation rows; only the metric leaves a site.</summary>
    internal static double ValidationAuroc(IReadOnlyList<PreparedSite> sites, Func<float[], float[]> predict)
    {
        double sum = 0, weight = 0;
        foreach (var s in sites)
        {
            if (!s.ValidationY.Any(y => y == 1) || !s.ValidationY.Any(y => y == 0)) continue;
            sum += Metrics.Auroc(predict(s.ValidationX), s.ValidationY) * s.ValidationY.Length;
            weight += s.ValidationY.Length;
        }

        return weight > 0 ? sum / weight : 0.5;
    }

    /// <summary>
    /// Contribution when a coalition's model is a whole run of its own (histogram-mode trees: the coalition's sites
    /// boost an ensemble together): exact Shapley over every coalition (Monte-Carlo permutations with
    /// <paramref name="method"/> sampled or above <see cref="ContributionMath.MaxExactSites"/> sites) and leave-one-out,
    /// each coalition's <paramref name="utility"/> asked once.
    /// </summary>
    internal static ContributionReport ForWholeRuns(IReadOnlyList<PreparedSite> sites, string method, int permutations, int seed, Func<int, double> utility, string methodText, string utilityText)
    {
        var known = new Dictionary<int, double>();
        double U(int mask) => known.TryGetValue(mask, out double u) ? u : known[mask] = utility(mask);
        bool exact = method == Exact && sites.Count <= ContributionMath.MaxExactSites;
        var phi = exact ? ContributionMath.ExactShapley(sites.Count, U) : ContributionMath.SampledShapley(sites.Count, U, permutations, new Random(seed));
        var loo = ContributionMath.LeaveOneOut(sites.Count, U);
        var ranking = ContributionMath.Ranking(phi);
        return new ContributionReport
        {
            Method = exact ? methodText : $"Monte-Carlo Shapley, {permutations} permutations ({methodText})",
            Utility = utilityText,
            CoalitionsEvaluated = known.Count,
            Sites = sites.Select((s, i) => new SiteContribution
            {
                Name = s.Name, Shapley = Math.Round(phi[i], 6), LeaveOneOut = Math.Round(loo[i], 6), Rank = Array.IndexOf(ranking, i) + 1,
            }).ToList(),
        };
    }

    /// <summary>A site's Shapley value summed over the rounds scored so far.</summary>
    public double Shapley(int site) => _shapley[site];

    /// <summary>Sites left out of later rounds for a negative Shapley value (with --downweight-contributors).</summary>
    public List<(string Site, int Round, double Shapley)> Excluded { get; } = [];

    public ContributionReport Report()
    {
        var ranking = ContributionMath.Ranking(_shapley);
        return new ContributionReport
        {
            Method = _method == Exact ? "exact Shapley over every coalition of each round's uploads" : $"Monte-Carlo Shapley, {_permutations} permutations per round",
            Utility = "validation-size-weighted mean of the sites' validation AUROC (federated evaluation: only metrics leave the sites) of the round's start moved by the coalition's FedAvg delta; values summed over rounds",
            CoalitionsEvaluated = _coalitions,
            Excluded = Excluded.Select(x => new ExcludedContributor(x.Site, x.Round, Math.Round(x.Shapley, 6))).ToList(),
            Sites = _sites.Select((s, i) => new SiteContribution
            {
                Name = s.Name, Shapley = Math.Round(_shapley[i], 6), LeaveOneOut = Math.Round(_leaveOneOut[i], 6), Rank = Array.IndexOf(ranking, i) + 1,
            }).ToList(),
        };
    }
}
