namespace ClinicalFed.Trees;

/// <summary>One site's ensemble and its weight in a bagging merge (normally its training example count).</summary>
public readonly record struct SiteEnsemble(TreeEnsembleModel Model, double Weight);

/// <summary>
/// Federated tree bagging: every site trains its own ensemble, and the merged model is their weighted average. With
/// shares w_k = n_k / Σ n the merged ensemble is every site's trees, concatenated in site order, with each tree's
/// weight multiplied by its site's share, and base score Σ w_k·b_k, so its raw score is exactly Σ_k w_k · score_k(x)
/// (averaging in log-odds).
/// </summary>
public static class TreeBagging
{
    /// <summary>Merges the sites' ensembles in list order (a <see cref="TreeBaggingMerger"/> fed one site at a time).</summary>
    public static TreeEnsembleModel Merge(IReadOnlyList<SiteEnsemble> sites)
    {
        ArgumentNullException.ThrowIfNull(sites);
        if (sites.Count == 0) throw new ArgumentException("no site ensembles to merge");
        var merger = new TreeBaggingMerger();
        for (int k = 0; k < sites.Count; k++) merger.Add(sites[k].Model, sites[k].Weight, k);
        if (!(merger.TotalWeight > 0)) throw new ArgumentException("site weights sum to 0", nameof(sites));
        return merger.Merge();
    }
}

/// <summary>
/// The bagging merge of <see cref="TreeBagging"/>, fed one site ensemble at a time, so that an aggregator holds the
/// ensembles that make up the merged model and nothing else (their trees are shared, not copied). Each site comes
/// with its place in the site order; <see cref="Merge"/> concatenates the sites in that order, whatever order they
/// were added in, and applies the shares with exactly the arithmetic of <see cref="TreeBagging.Merge"/> over the
/// sites in that order, so the merged model does not depend on the order updates arrive or are listed in.
/// </summary>
public sealed class TreeBaggingMerger
{
    private readonly List<(int Order, double Weight, TreeEnsembleModel Model)> _sites = [];
    private TreeEnsembleModel? _firstNamed;

    /// <summary>Site ensembles added so far.</summary>
    public int SiteCount => _sites.Count;

    /// <summary>Sum of the weights added so far.</summary>
    public double TotalWeight { get; private set; }

    /// <summary>
    /// Adds a site's ensemble with weight <paramref name="weight"/> (finite, ≥ 0) at place <paramref name="order"/> of
    /// the site order (sites at the same place keep the order they were added in). Throws
    /// <see cref="ArgumentException"/>, leaving the merger unchanged, when the weight is invalid or the ensemble reads
    /// other features than the ones added before (count, or names when both carry them).
    /// </summary>
    public void Add(TreeEnsembleModel model, double weight, int order)
    {
        if (model is null) throw new ArgumentException("a site ensemble is null", nameof(model));
        if (!(weight >= 0) || !double.IsFinite(weight)) throw new ArgumentException($"site weight {weight} must be finite and >= 0", nameof(weight));
        if (_sites.Count > 0) _sites[0].Model.EnsureSameFeatures(model);
        _firstNamed?.EnsureSameFeatures(model);
        if (model.FeatureNames is not null) _firstNamed ??= model;
        _sites.Add((order, weight, model));
        TotalWeight += weight;
    }

    /// <summary>The weighted average of the ensembles added so far. Throws when there is none or the weights sum to 0.</summary>
    public TreeEnsembleModel Merge()
    {
        if (_sites.Count == 0) throw new InvalidOperationException("no site ensembles to merge");
        var ordered = _sites.OrderBy(s => s.Order).ToArray(); // stable
        double total = 0;
        foreach (var s in ordered) total += s.Weight;
        if (!(total > 0)) throw new InvalidOperationException("site weights sum to 0");

        var trees = new List<DecisionTree>();
        var weights = new List<double>();
        double baseScore = 0;
        foreach (var (_, weight, model) in ordered)
        {
            double share = weight / total;
            baseScore += share * model.BaseScore;
            for (int t = 0; t < model.Trees.Count; t++)
            {
                trees.Add(model.Trees[t]);
                weights.Add(share * model.TreeWeights[t]);
            }
        }

        return new TreeEnsembleModel(ordered[0].Model.FeatureCount, baseScore, trees, weights, _firstNamed?.FeatureNames);
    }
}
