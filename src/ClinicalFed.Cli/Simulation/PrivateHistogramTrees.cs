using ClinicalFed.Learning;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Privacy;
using ClinicalFed.Statistics;
using ClinicalFed.Trees;

namespace ClinicalFed.Cli.Simulation;

/// <summary>How <c>simulate</c>'s sites grow trees, from its options (<c>--leaves</c>, <c>--tree-features</c>,
/// <c>--tree-depth</c>, <c>--tree-bins</c>, <c>--tree-learning-rate</c>, the <c>--dp-</c> options), with the defaults
/// differential privacy needs when the user gave none (<see cref="TreeClientSettings.Shaped"/>). The
/// shape applies to every tree model of the run (local, centralized, federated, personalized), so that a DP run's
/// references differ from it by the noise alone.</summary>
internal static class TreeSettings
{
    public static TreeClientSettings From(SimulationOptions o) =>
        TreeClientSettings.Shaped(o.DpTrees, o.TreeDepth, o.TreeFeatures, o.TreeBins, o.TreeLearningRate) with
        {
            Leaves = o.Leaves, Seed = o.Seed,
            DpEpsilon = o.DpTrees ? o.DpEpsilon : null, DpDelta = o.DpDelta, DpNoiseMultiplier = o.DpTrees ? o.DpNoiseMultiplier : null,
            DpPatientWeight = o.DpPatientWeight, DpRounds = o.TreeMode == "cyclic" ? o.Rounds : 1,
        };
}

/// <summary>
/// Differential privacy of histogram-mode boosting in <c>simulate --model trees --tree-mode histogram --dp-epsilon E</c>,
/// the patient as the unit (<see cref="HistogramPrivacy"/>): the plan (queries, noise multiplier, each site's noise),
/// the two queries before the first tree (the bin cuts and the base score), and the report's privacy section.
/// </summary>
/// <remarks>
/// The features are standardized with the federation's means and standard deviations before any model sees them, so
/// one public grid (<see cref="PrivateTreeBoosting.Grid"/>, −4 to 8 standard deviations in steps of 0.05) serves every feature: each site
/// sends its patient-weighted counts of present values on it with noise, and the cuts are chosen on the noisy sum
/// (<see cref="HistogramBinning.GridCuts"/>). Those two queries are sent unmasked, so every site adds the whole noise
/// to them; with secure aggregation the histograms of the trees carry a 1/sites share each.
/// </remarks>
internal sealed class PrivateHistogramTrees
{
    private readonly SimulationOptions _o;
    private readonly SecureGaussian _gaussian;
    private readonly int _sites;
    private readonly int _features;

    public PrivateHistogramTrees(SimulationOptions o, TreeBoostingOptions coordinator, IReadOnlyList<PreparedSite> siteData, int features, SecureGaussian gaussian)
    {
        int sites = siteData.Count;
        _o = o;
        _gaussian = gaussian;
        _sites = sites;
        _features = features;
        // Each site's training rows with their patients (the privacy unit), and its rows' weights min(1, W / rows).
        _matrices = siteData.Select(s => ClientTraining.GroupedMatrix(s.TrainX, features, s.TrainY, s.TrainPatients)).ToArray();
        _weights = _matrices.Select(m => PrivateTreeBoosting.RowWeights(m, o.DpPatientWeight)).ToArray();
        double budget = o.DpEpsilon ?? throw new ArgumentException("DP trees need --dp-epsilon");
        Queries = HistogramPrivacy.Queries(o.Trees, coordinator.MaxDepth);
        NoiseMultiplier = o.DpNoiseMultiplier ?? HistogramPrivacy.Calibrate(budget, o.DpDelta, Queries);
        Guarantee = HistogramPrivacy.Guarantee(NoiseMultiplier, Queries, o.DpDelta);
        if (Guarantee.Epsilon > budget * (1 + 1e-9))
            throw new ArgumentException($"--dp-noise {NoiseMultiplier}: {Queries} queries ({o.Trees} trees of depth {coordinator.MaxDepth}, the cuts and the base score) would spend ε = {Guarantee.Epsilon:G4} at δ = {o.DpDelta}, more than --dp-epsilon {budget}; raise the noise or leave --dp-noise out to calibrate it");
        TreeFeatures = coordinator.FeaturesOfTree(features);
        Sensitivity = HistogramPrivacy.Sensitivity(TreeFeatures, o.DpPatientWeight);
        SiteNoise = HistogramPrivacy.SiteNoise(NoiseMultiplier, Sensitivity, sites, o.SecureAggregation);
        _sumNoise = o.SecureAggregation ? NoiseMultiplier * Sensitivity : SiteNoise * Math.Sqrt(sites);
    }

    private readonly double _sumNoise;
    private readonly FeatureMatrix[] _matrices;
    private readonly double[][] _weights;

    /// <summary>Gaussian queries at full sensitivity the run makes.</summary>
    public long Queries { get; }

    /// <summary>σ: calibrated to the budget, or <c>--dp-noise</c>.</summary>
    public double NoiseMultiplier { get; }

    /// <summary>(ε, δ) the run spends, per site, for any one of its patients.</summary>
    public PrivacyGuarantee Guarantee { get; }

    /// <summary>Features of a tree's histograms.</summary>
    public int TreeFeatures { get; }

    /// <summary>S of one histogram query.</summary>
    public double Sensitivity { get; }

    /// <summary>The standard deviation (in part bounds) each site adds to every number of a tree's histogram.</summary>
    public double SiteNoise { get; }

    /// <summary>The booster's options under the summed histograms' noise (<see cref="PrivateTreeBoosting.UnderNoise"/>).</summary>
    public TreeBoostingOptions Apply(TreeBoostingOptions options) => PrivateTreeBoosting.UnderNoise(options, _sumNoise);

    /// <summary>Site <paramref name="site"/>'s training matrix with its patients, as <see cref="HistogramBoostingSite"/> needs it.</summary>
    public FeatureMatrix Matrix(int site) => _matrices[site];

    /// <summary>The first query: the cuts from every site's noisy counts on <see cref="PrivateTreeBoosting.Grid"/>.</summary>
    public float[][] Cuts(int maxBins) =>
        PrivateTreeBoosting.NoisyCuts(_matrices.Select((m, i) => (m.Values, _weights[i])).ToList(), _features, NoiseMultiplier, _o.DpPatientWeight, maxBins, _gaussian);

    /// <summary>The second query: the base score from every site's noisy label and weight sums.</summary>
    public TreeEnsembleModel Start(IReadOnlyList<string> names) =>
        PrivateTreeBoosting.BaseModel(_features, _matrices.Select((m, i) => PrivateTreeBoosting.NoisyCounts(m.Labels, _weights[i], NoiseMultiplier, _o.DpPatientWeight, _gaussian)).ToList(), names);

    /// <summary>The report's privacy section.</summary>
    public PrivacyReport Report(IReadOnlyList<HistogramBoostingSite> sites, IReadOnlyList<string> names, TreeBoostingOptions coordinator) => new()
    {
        Unit = "patient",
        Mechanisms =
        [
            $"{PrivacyMechanisms.HistogramGaussian}: histogram-based boosting in which every row of a patient with n rows weighs min(1, {_o.DpPatientWeight}/n), " +
            $"each tree may split on {TreeFeatures} of {_features} features (drawn from the seed) and grows to depth {coordinator.MaxDepth}; every histogram a site sends " +
            $"(per bin the sums of g, h and the weights, each divided by its bound 1, 1/4, 1) has L2 sensitivity {Sensitivity:G4} per patient and gets Gaussian noise " +
            $"from a cryptographic generator of standard deviation {(_o.SecureAggregation ? $"σ·S/√{_sites} at each site (σ·S in the masked sum)" : "σ·S at each site")}. " +
            $"Queries: the bin cuts (noisy counts on a public grid), the base score, and depth + 1 per tree (a patient's rows at one depth are divided among that level's nodes), " +
            $"{Queries} in all, composed in Rényi DP (Gaussian mechanism, no subsampling) and converted to (ε, δ) as Balle et al. 2020.",
        ],
        AggregatorView = _o.SecureAggregation
            ? "The coordinator sees the sum of the sites' masked, noisy histograms (and each site's noisy cut counts and base-score sums, which carry the whole noise). " +
              "Each site's noise is a share of the total, so the guarantee against the coordinator holds when every site adds its share."
            : "The coordinator sees every site's noisy histograms, cut counts and base-score sums; each is (ε, δ)-differentially private with respect to any one patient of that site, " +
              "so the trees, the leaf values and anything computed from them are too.",
        Sites = sites.Select((s, i) => new SitePrivacyReport
        {
            Name = names[i], EpsilonSpent = Math.Round(Guarantee.Epsilon, 6), EpsilonBudget = _o.DpEpsilon, Delta = _o.DpDelta,
            NoiseMultiplier = Math.Round(NoiseMultiplier, 6), ClipNorm = _o.DpPatientWeight, SamplingRate = 1, Steps = Queries, Rounds = _o.Rounds, Patients = s.Patients,
        }).ToList(),
        Notes = Notes("only the federated model is private"),
    };

    /// <summary>The notes of every DP tree report's privacy section; <paramref name="privatePart"/> says what is private.</summary>
    public static IReadOnlyList<string> Notes(string privatePart) =>
    [
        "clip_norm is the patient weight cap W and steps the number of Gaussian queries; sampling_rate 1: every row takes part in every query (no amplification is claimed).",
        $"The local-only, centralized and personalized models are non-private references with the same tree shape: they are trained without noise and never leave the simulation; {privatePart}.",
        "The federated statistics agreed before training (imputation medians, standardization means and standard deviations) are shared aggregates outside this guarantee.",
    ];
}
