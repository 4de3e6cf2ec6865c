using System.Text.Json;
using ClinicalFed.Federation;

namespace ClinicalFed.Learning.Trees;

/// <summary>
/// How every site grows trees in a tree federation (<c>tree-bagging</c> or <c>tree-cyclic</c>), carried in the round
/// manifest's strategy options under <c>client_</c> keys, as <see cref="ClientTrainingSettings"/> is for logistic
/// regression: trees per site (bagging: the site's whole ensemble; cyclic: the trees a site adds in its turn), leaves
/// per tree, learning rate, minimum examples per leaf, the seed base. The defaults are <c>clinicalfed simulate</c>'s.
/// </summary>
public sealed record TreeClientSettings
{
    public const string TreesKey = "client_trees";
    public const string LeavesKey = "client_leaves";
    public const string LearningRateKey = "client_tree_learning_rate";
    public const string MinExamplesPerLeafKey = "client_min_examples_per_leaf";
    public const string DepthKey = "client_tree_depth";
    public const string FeaturesPerTreeKey = "client_tree_features";
    public const string BinsKey = "client_tree_bins";
    public const string DpPatientWeightKey = "client_dp_patient_weight";

    /// <summary>Bagging: the trees of each site's ensemble; cyclic: the trees a site adds in each of its turns.</summary>
    public int Trees { get; init; } = 100;
    public int Leaves { get; init; } = 31;
    public double LearningRate { get; init; } = 0.1;
    public int MinExamplesPerLeaf { get; init; } = 50;
    public int Seed { get; init; } = 1;
    /// <summary>Maximum depth of a tree (0: limited by <see cref="Leaves"/> only).</summary>
    public int Depth { get; init; }
    /// <summary>Features each tree may split on, drawn per tree from the seed (0: all).</summary>
    public int FeaturesPerTree { get; init; }
    /// <summary>Value bins per feature (2 to 255).</summary>
    public int Bins { get; init; } = TreeBoostingOptions.MaxBinsLimit;

    /// <summary>Differentially private trees (the patient as the unit, <see cref="PrivateTreeBoosting"/>): each site's
    /// ε budget over the whole federation (null: no DP). Uses the <c>client_dp_</c> keys of logistic regression.</summary>
    public double? DpEpsilon { get; init; }
    public double DpDelta { get; init; } = 1e-5;
    /// <summary>σ; null: calibrated so that <see cref="DpRounds"/> turns spend the budget.</summary>
    public double? DpNoiseMultiplier { get; init; }
    /// <summary>W: a patient's rows weigh at most W together.</summary>
    public double DpPatientWeight { get; init; } = 1;
    /// <summary>Turns (rounds in which it trains) each site plans its budget for: 1 for bagging.</summary>
    public int DpRounds { get; init; } = 1;

    public bool DifferentiallyPrivate => DpEpsilon is not null;

    /// <summary>
    /// The trees' shape from the choices given, the rest defaulted: for differentially private trees depth 4, 8 features
    /// drawn per tree, 32 bins and learning rate 0.3 (few queries per tree, and little noise in each); otherwise leaves
    /// only, every feature, 255 bins and learning rate 0.1. <c>simulate</c> and <c>federation create</c> start from it.
    /// </summary>
    public static TreeClientSettings Shaped(bool privately, int? depth, int? featuresPerTree, int? bins, double? learningRate) => new()
    {
        Depth = depth ?? (privately ? 4 : 0),
        FeaturesPerTree = featuresPerTree ?? (privately ? 8 : 0),
        Bins = bins ?? (privately ? 32 : TreeBoostingOptions.MaxBinsLimit),
        LearningRate = learningRate ?? (privately ? 0.3 : new TreeClientSettings().LearningRate),
    };

    /// <summary>Queries of one site's turn: the cuts, (depth + 1) per tree, and the base score in its first turn
    /// when it starts from its own prevalence.</summary>
    public long DpQueriesPerTurn(bool baseScore) => PrivateTreeBoosting.Queries(Trees, Depth, baseScore);

    /// <summary>σ of every query: <see cref="DpNoiseMultiplier"/>, or the smallest that keeps <see cref="DpRounds"/>
    /// turns (the first with a base score) within (ε, δ).</summary>
    public double DpSigma() => DpNoiseMultiplier ?? Privacy.HistogramPrivacy.Calibrate(DpEpsilon ?? throw new InvalidOperationException("not differentially private"), DpDelta,
        DpQueriesPerTurn(baseScore: true) + (DpRounds - 1) * DpQueriesPerTurn(baseScore: false));

    /// <summary>Every problem at once (empty when valid), each naming its option key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (Trees is < 1 or > 10_000) p.Add($"'{TreesKey}' is {Trees}; expected 1 to 10000");
        if (Leaves is < 2 or > 1024) p.Add($"'{LeavesKey}' is {Leaves}; expected 2 to 1024");
        if (!(LearningRate > 0 && LearningRate <= 1)) p.Add($"'{LearningRateKey}' is {LearningRate}; expected a number in (0, 1]");
        if (MinExamplesPerLeaf is < 1 or > 1_000_000) p.Add($"'{MinExamplesPerLeafKey}' is {MinExamplesPerLeaf}; expected 1 to 1000000");
        if (Depth is < 0 or > 16) p.Add($"'{DepthKey}' is {Depth}; expected 0 (leaves only) to 16");
        if (FeaturesPerTree < 0) p.Add($"'{FeaturesPerTreeKey}' is {FeaturesPerTree}; expected 0 (all) or more");
        if (Bins is < 2 or > TreeBoostingOptions.MaxBinsLimit) p.Add($"'{BinsKey}' is {Bins}; expected 2 to {TreeBoostingOptions.MaxBinsLimit}");
        if (DpEpsilon is not null && Depth < 1) p.Add($"'{DepthKey}' is {Depth}; differentially private trees need a depth (each tree costs depth + 1 queries)");
        ClientTrainingSettings.AddDpBudgetProblems(DpEpsilon, DpDelta, DpNoiseMultiplier, DpRounds, p);
        if (!(DpPatientWeight > 0) || !double.IsFinite(DpPatientWeight)) p.Add($"'{DpPatientWeightKey}' is {DpPatientWeight}; it must be a positive number");
        return p;
    }

    /// <summary>The <c>client_</c> options to put in a strategy spec.</summary>
    /// <remarks>The shape keys appear when they differ from their defaults, the <c>client_dp_</c> keys with DP.</remarks>
    public IReadOnlyDictionary<string, JsonElement> ToClientOptions()
    {
        var o = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
        {
            [TreesKey] = JsonSerializer.SerializeToElement(Trees),
            [LeavesKey] = JsonSerializer.SerializeToElement(Leaves),
            [LearningRateKey] = JsonSerializer.SerializeToElement(LearningRate),
            [MinExamplesPerLeafKey] = JsonSerializer.SerializeToElement(MinExamplesPerLeaf),
            [ClientTrainingSettings.SeedKey] = JsonSerializer.SerializeToElement(Seed),
        };
        if (Depth != 0) o[DepthKey] = JsonSerializer.SerializeToElement(Depth);
        if (FeaturesPerTree != 0) o[FeaturesPerTreeKey] = JsonSerializer.SerializeToElement(FeaturesPerTree);
        if (Bins != TreeBoostingOptions.MaxBinsLimit) o[BinsKey] = JsonSerializer.SerializeToElement(Bins);
        if (DpEpsilon is { } eps)
        {
            ClientTrainingSettings.AddDpBudgetOptions(o, eps, DpDelta, DpNoiseMultiplier, DpRounds);
            o[DpPatientWeightKey] = JsonSerializer.SerializeToElement(DpPatientWeight);
        }
        return o;
    }

    /// <summary>Reads the settings from a round's strategy spec (defaults for absent keys); throws listing every problem.</summary>
    public static TreeClientSettings From(StrategySpec strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        var problems = new List<string>();
        var o = strategy.Options;
        var d = new TreeClientSettings();
        var budget = ClientTrainingSettings.ReadDpBudget(o, d.DpDelta, d.DpRounds, problems);
        var settings = new TreeClientSettings
        {
            Trees = ClientTrainingSettings.ReadInt(o, TreesKey, d.Trees, problems),
            Leaves = ClientTrainingSettings.ReadInt(o, LeavesKey, d.Leaves, problems),
            LearningRate = ClientTrainingSettings.ReadDouble(o, LearningRateKey, d.LearningRate, problems),
            MinExamplesPerLeaf = ClientTrainingSettings.ReadInt(o, MinExamplesPerLeafKey, d.MinExamplesPerLeaf, problems),
            Seed = ClientTrainingSettings.ReadInt(o, ClientTrainingSettings.SeedKey, d.Seed, problems),
            Depth = ClientTrainingSettings.ReadInt(o, DepthKey, d.Depth, problems),
            FeaturesPerTree = ClientTrainingSettings.ReadInt(o, FeaturesPerTreeKey, d.FeaturesPerTree, problems),
            Bins = ClientTrainingSettings.ReadInt(o, BinsKey, d.Bins, problems),
            DpEpsilon = budget.Epsilon, DpDelta = budget.Delta, DpNoiseMultiplier = budget.NoiseMultiplier, DpRounds = budget.Rounds,
            DpPatientWeight = ClientTrainingSettings.ReadDouble(o, DpPatientWeightKey, d.DpPatientWeight, problems),
        };
        problems.AddRange(settings.Validate());
        if (problems.Count > 0) throw new FederationDataException("strategy.options", problems);
        return settings;
    }

    /// <summary>
    /// The booster's options for <paramref name="trees"/> trees with seed <paramref name="seed"/> (the caller's seed
    /// scheme: simulate's and the site agent's agree) on <paramref name="threads"/> threads (the result does not depend
    /// on it).
    /// </summary>
    public TreeBoostingOptions Boosting(int trees, int seed, int threads) => new()
    {
        NumberOfTrees = trees, NumberOfLeaves = Depth > 0 ? Math.Min(Leaves, 1 << Depth) : Leaves, LearningRate = LearningRate, MinExamplesPerLeaf = MinExamplesPerLeaf,
        L2Regularization = 1.0, Seed = seed, NumberOfThreads = Math.Max(1, threads), MaxDepth = Depth, FeaturesPerTree = FeaturesPerTree, MaxBins = Bins,
    };
}
