using ClinicalFed.Data;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Trees;

/// <summary>
/// Federated cyclic boosting: the ensemble travels from site to site; each site adds
/// <see cref="TreeBoostingOptions.NumberOfTrees"/> trees fitted on its own rows to the residuals (log-loss gradients)
/// of the current global ensemble — the current ensemble's raw scores are the boosting's initial margins — and passes
/// the grown ensemble on. Only the ensemble moves; rows never leave a site.
/// </summary>
public static class CyclicTreeBoosting
{
    /// <summary>The starting model: a constant at the log-odds of the pooled prevalence, computed from each site's
    /// (positives, rows) counts — aggregates only.</summary>
    public static TreeEnsembleModel InitialModel(int featureCount, IEnumerable<(double Positives, double Total)> siteCounts, IReadOnlyList<string>? featureNames = null)
    {
        double pos = 0, total = 0;
        foreach (var (p, t) in siteCounts) { pos += p; total += t; }
        return TreeEnsembleModel.Constant(featureCount, TreeEnsembleModel.LogOdds(pos, total), featureNames);
    }

    /// <summary>A site's (positives, rows) counts, the only thing <see cref="InitialModel"/> needs from it.</summary>
    public static (double Positives, double Total) Counts(FeatureTable table)
    {
        double pos = 0;
        foreach (var l in table.Labels) if (l > 0.5f) pos++;
        return (pos, table.Rows);
    }

    /// <summary>One site's turn: <paramref name="current"/> plus the site's new trees.</summary>
    public static TreeEnsembleModel SiteTurn(TreeEnsembleModel current, FeatureTable siteData, TreeBoostingOptions options) =>
        GradientTreeBooster.Boost(current, siteData, options);

    /// <summary>Simulates <paramref name="rounds"/> full cycles over <paramref name="sites"/> in order, starting from
    /// <paramref name="initial"/> or, when null, from <see cref="InitialModel"/>. The result has
    /// rounds × sites × NumberOfTrees trees. <paramref name="afterTurn"/> sees every intermediate ensemble.</summary>
    public static TreeEnsembleModel Run(IReadOnlyList<FeatureTable> sites, int rounds, TreeBoostingOptions options, TreeEnsembleModel? initial = null,
        Action<int, int, TreeEnsembleModel>? afterTurn = null)
    {
        ArgumentNullException.ThrowIfNull(sites);
        if (sites.Count == 0) throw new ArgumentException("no sites");
        if (rounds < 1) throw new ArgumentOutOfRangeException(nameof(rounds));
        var model = initial ?? InitialModel(sites[0].Columns, sites.Select(Counts), sites[0].Header.Columns.ToArray());
        for (int round = 0; round < rounds; round++)
            for (int k = 0; k < sites.Count; k++)
            {
                // A distinct seed per turn keeps row subsampling (if enabled) independent across turns.
                var turnOptions = options with { Seed = GradientTreeBooster.MixSeed(options.Seed, round, k) };
                model = SiteTurn(model, sites[k], turnOptions);
                afterTurn?.Invoke(round, k, model);
            }
        return model;
    }
}

/// <summary>
/// Personalization: a site keeps the global ensemble and adds a few local trees fitted to the residuals of the global
/// ensemble on its own rows (the same mechanism as a cyclic turn, but the result stays at the site). The first
/// <see cref="TreeEnsembleModel.Trees"/> of the result are the global ones, unchanged.
/// </summary>
public static class LocalTreePersonalization
{
    public static TreeEnsembleModel AddLocalTrees(TreeEnsembleModel global, FeatureTable siteData, TreeBoostingOptions options) =>
        GradientTreeBooster.Boost(global, siteData, options);

    /// <summary>The shared part of a personalized model (its first <paramref name="globalTreeCount"/> trees).</summary>
    public static TreeEnsembleModel GlobalPart(TreeEnsembleModel personalized, int globalTreeCount) => personalized.Prefix(globalTreeCount);
}
