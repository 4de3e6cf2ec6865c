using ClinicalFed.Learning;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Privacy;
using ClinicalFed.Statistics;
using ClinicalFed.Trees;

namespace ClinicalFed.Cli.Simulation;

/// <summary>The trees' shape from <c>simulate</c>'s options (<c>--tree-features</c>, <c>--tree-depth</c>,
/// <c>--tree-bins</c>, <c>--tree-learning-rate</c>), with the defaults differential privacy needs when the user gave
/// none: 8 features per tree, depth 4, 32 bins, learning rate 0.3. It applies to every tree model of the run (local,
/// centralized, federated, personalized), so that the DP run's references differ from it by the noise alone.</summary>
internal sealed record TreeShape(int? Features, int? Depth, int? Bins, double LearningRate)
{
    public static TreeShape From(SimulationOptions o) => o.DpTrees
        ? new(o.TreeFeatures ?? 8, o.TreeDepth ?? 4, o.TreeBins ?? 32, o.TreeLearningRate ?? 0.3)
        : new(o.TreeFeatures, o.TreeDepth, o.TreeBins, o.TreeLearningRate ?? new TreeClientSettings().LearningRate);

    public TreeBoostingOptions Apply(TreeBoostingOptions b) => b with
    {
        FeaturesPerTree = Features ?? 0,
        MaxDepth = Depth ?? 0,
        MaxBins = Bins ?? TreeBoostingOptions.MaxBinsLimit,
        NumberOfLeaves = Depth is { } d ? Math.Min(b.NumberOfLeaves, 1 << Math.Min(d, 20)) : b.NumberOfLeaves,
    };
}

/// <summary>
/// Differential privacy of histogram-mode boosting in <c>simulate --model trees --tree-mode histogram --dp-epsilon E</c>,
/// the patient as the unit (<see cref="HistogramPrivacy"/>): the plan (queries, noise multiplier, each site's noise),
/// the two queries before the first tree (the bin cuts and the base score), and the report's privacy section.
/// </summary>
/// <remarks>
/// The features are standardized with the federation's means and standard deviations before any model sees them, so
/// one public grid (<see cref="Grid"/>, −4 to 8 standard deviations in steps of 0.05) serves every feature: each site
/// sends its patient-weighted counts of present values on it with noise, and the cuts are chosen on the noisy sum
/// (<see cref="HistogramBinning.GridCuts"/>). Those two queries are sent unmasked, so every site adds the whole noise
/// to them; with secure aggregation the histograms of the trees carry a 1/sites share each.
/// </remarks>
internal sealed class PrivateHistogramTrees
{
    /// <summary>The public grid of the cuts query, in standard deviations of the federation's standardization.</summary>
    public static readonly HistogramSpec Grid = new(-4, 8, 240);

    private readonly SimulationOptions _o;
    private readonly SecureGaussian _gaussian;
    private readonly int _sites;
    private readonly int _features;

    public PrivateHistogramTrees(SimulationOptions o, TreeBoostingOptions coordinator, int features, int sites, SecureGaussian gaussian)
    {
        _o = o;
        _gaussian = gaussian;
        _sites = sites;
        _features = features;
        double budget = o.DpEpsilon ?? throw new ArgumentException("DP trees need --dp-epsilon");
        Queries = HistogramPrivacy.Queries(o.Trees, coordinator.MaxDepth);
        NoiseMultiplier = o.DpNoiseMultiplier ?? HistogramPrivacy.Calibrate(budget, o.DpDelta, Queries);
        Guarantee = HistogramPrivacy.Guarantee(NoiseMultiplier, Queries, o.DpDelta);
        if (Guarantee.Epsilon > budget * (1 + 1e-9))
            throw new ArgumentException($"--dp-noise {NoiseMultiplier}: {Queries} queries ({o.Trees} trees of depth {coordinator.MaxDepth}, the cuts and the base score) would spend ε = {Guarantee.Epsilon:G4} at δ = {o.DpDelta}, more than --dp-epsilon {budget}; raise the noise or leave --dp-noise out to calibrate it");
        TreeFeatures = coordinator.FeaturesPerTree is > 0 and var k && k < features ? k : features;
        Sensitivity = HistogramPrivacy.Sensitivity(TreeFeatures, o.DpPatientWeight);
        SiteNoise = HistogramPrivacy.SiteNoise(NoiseMultiplier, Sensitivity, sites, o.SecureAggregation);
        double sumNoise = o.SecureAggregation ? NoiseMultiplier * Sensitivity : SiteNoise * Math.Sqrt(sites);
        // A child's hessian sums up to bins + 1 noisy slots: below twice that noise it is mostly noise.
        MinChildHessian = 2 * Math.Sqrt(coordinator.MaxBins + 2.0) * sumNoise * HistogramPrivacy.PartBounds[1];
    }

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

    /// <summary>The smallest hessian sum a child may have: twice the noise of a sum over every bin of a feature.</summary>
    public double MinChildHessian { get; }

    /// <summary>The booster's options under differential privacy: splits need children whose hessian stands out of the
    /// noise, and a leaf's value is clipped to ±2 before the learning rate.</summary>
    public TreeBoostingOptions Apply(TreeBoostingOptions options) => options with
    {
        MinChildHessian = Math.Max(options.MinChildHessian, MinChildHessian), MaxLeafOutput = 2, MinExamplesPerLeaf = 1,
    };

    /// <summary>Row weights of a site: min(1, W / the patient's rows).</summary>
    public double[] RowWeights(PreparedSite site)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var groups = site.TrainPatients.Select(p => ids.TryGetValue(p, out int g) ? g : ids[p] = ids.Count).ToArray();
        return HistogramPrivacy.PatientRowWeights(groups, ids.Count, _o.DpPatientWeight);
    }

    /// <summary>The site's training matrix with its patients, as <see cref="HistogramBoostingSite"/> needs it.</summary>
    public static FeatureMatrix Matrix(PreparedSite site, int columns)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var groups = site.TrainPatients.Select(p => ids.TryGetValue(p, out int g) ? g : ids[p] = ids.Count).ToArray();
        return new FeatureMatrix(site.TrainX, columns, site.TrainY, groupIds: groups, groupCount: ids.Count);
    }

    /// <summary>The first query: every site's patient-weighted counts on <see cref="Grid"/> with noise, summed; cuts
    /// where the sum stands three noise deviations above zero.</summary>
    public float[][] Cuts(IReadOnlyList<PreparedSite> sites, int maxBins)
    {
        double sd = NoiseMultiplier * HistogramPrivacy.CountSensitivity(_features, _o.DpPatientWeight);
        var sum = Enumerable.Range(0, _features).Select(_ => new double[Grid.TotalBins]).ToArray();
        foreach (var site in sites)
        {
            var counts = HistogramBinning.GridCounts(site.TrainX, _features, RowWeights(site), Grid);
            for (int f = 0; f < _features; f++)
                for (int b = 0; b < Grid.TotalBins; b++) sum[f][b] += counts[f][b] + sd * _gaussian.Next();
        }
        double threshold = 3 * sd * Math.Sqrt(sites.Count);
        return sum.Select(c => HistogramBinning.GridCuts(Grid, c, threshold, maxBins)).ToArray();
    }

    /// <summary>The second query: every site's patient-weighted sums of labels and of weights with noise; the base
    /// score is the log-odds of their sums (clamped into [0.5, total − 0.5] positives).</summary>
    public TreeEnsembleModel Start(IReadOnlyList<PreparedSite> sites, IReadOnlyList<string> names)
    {
        double sd = NoiseMultiplier * HistogramPrivacy.CountSensitivity(2, _o.DpPatientWeight);
        double positives = 0, total = 0;
        foreach (var site in sites)
        {
            var w = RowWeights(site);
            double p = 0, t = 0;
            for (int r = 0; r < w.Length; r++) { t += w[r]; if (site.TrainY[r] > 0.5f) p += w[r]; }
            positives += p + sd * _gaussian.Next();
            total += t + sd * _gaussian.Next();
        }
        total = Math.Max(total, 2);
        positives = Math.Clamp(positives, 0.5, total - 0.5);
        return CyclicTreeBoosting.InitialModel(_features, [(positives, total)], names);
    }

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
        Notes =
        [
            "clip_norm is the patient weight cap W and steps the number of Gaussian queries; sampling_rate 1: every row takes part in every query (no amplification is claimed).",
            "The local-only, centralized and personalized models are non-private references with the same tree shape: they are trained without noise and never leave the simulation; only the federated model is private.",
            "The federated statistics agreed before training (imputation medians, standardization means and standard deviations) are shared aggregates outside this guarantee.",
        ],
    };
}
