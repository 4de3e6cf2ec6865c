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

    /// <summary>Bagging: the trees of each site's ensemble; cyclic: the trees a site adds in each of its turns.</summary>
    public int Trees { get; init; } = 100;
    public int Leaves { get; init; } = 31;
    public double LearningRate { get; init; } = 0.1;
    public int MinExamplesPerLeaf { get; init; } = 50;
    public int Seed { get; init; } = 1;

    /// <summary>Every problem at once (empty when valid), each naming its option key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (Trees is < 1 or > 10_000) p.Add($"'{TreesKey}' is {Trees}; expected 1 to 10000");
        if (Leaves is < 2 or > 1024) p.Add($"'{LeavesKey}' is {Leaves}; expected 2 to 1024");
        if (!(LearningRate > 0 && LearningRate <= 1)) p.Add($"'{LearningRateKey}' is {LearningRate}; expected a number in (0, 1]");
        if (MinExamplesPerLeaf is < 1 or > 1_000_000) p.Add($"'{MinExamplesPerLeafKey}' is {MinExamplesPerLeaf}; expected 1 to 1000000");
        return p;
    }

    /// <summary>The <c>client_</c> options to put in a strategy spec.</summary>
    public IReadOnlyDictionary<string, JsonElement> ToClientOptions() => new Dictionary<string, JsonElement>(StringComparer.Ordinal)
    {
        [TreesKey] = JsonSerializer.SerializeToElement(Trees),
        [LeavesKey] = JsonSerializer.SerializeToElement(Leaves),
        [LearningRateKey] = JsonSerializer.SerializeToElement(LearningRate),
        [MinExamplesPerLeafKey] = JsonSerializer.SerializeToElement(MinExamplesPerLeaf),
        [ClientTrainingSettings.SeedKey] = JsonSerializer.SerializeToElement(Seed),
    };

    /// <summary>Reads the settings from a round's strategy spec (defaults for absent keys); throws listing every problem.</summary>
    public static TreeClientSettings From(StrategySpec strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        var problems = new List<string>();
        var o = strategy.Options;
        var d = new TreeClientSettings();
        var settings = new TreeClientSettings
        {
            Trees = ClientTrainingSettings.ReadInt(o, TreesKey, d.Trees, problems),
            Leaves = ClientTrainingSettings.ReadInt(o, LeavesKey, d.Leaves, problems),
            LearningRate = ClientTrainingSettings.ReadDouble(o, LearningRateKey, d.LearningRate, problems),
            MinExamplesPerLeaf = ClientTrainingSettings.ReadInt(o, MinExamplesPerLeafKey, d.MinExamplesPerLeaf, problems),
            Seed = ClientTrainingSettings.ReadInt(o, ClientTrainingSettings.SeedKey, d.Seed, problems),
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
        NumberOfTrees = trees, NumberOfLeaves = Leaves, LearningRate = LearningRate, MinExamplesPerLeaf = MinExamplesPerLeaf,
        L2Regularization = 1.0, Seed = seed, NumberOfThreads = Math.Max(1, threads),
    };
}
