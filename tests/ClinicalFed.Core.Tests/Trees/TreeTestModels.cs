using ClinicalFed.Core.Tests.Federation;
using ClinicalFed.Federation;
using ClinicalFed.Trees;

namespace ClinicalFed.Core.Tests.Trees;

/// <summary>Two small hand-made site ensembles over 2 features, and tree round manifests, headers and model files.</summary>
internal static class TreeTestModels
{
    /// <summary>Site A: base 0.5, <see cref="TreeEnsembleModelTests.SmallTree"/> with weight 1.</summary>
    public static TreeEnsembleModel A { get; } = new(2, 0.5, [TreeEnsembleModelTests.SmallTree()], [1.0], ["age", "lactate"]);

    /// <summary>Site B: base −1, constants 2 (weight 0.5) and −1 (weight 1); scores −1 everywhere.</summary>
    public static TreeEnsembleModel B { get; } = new(2, -1.0, [DecisionTree.Constant(2.0), DecisionTree.Constant(-1.0)], [0.5, 1.0]);

    public static RoundManifest Manifest(string strategy = StrategyNames.TreeBagging, IReadOnlyList<string>? sites = null, int round = 0, int features = 2) =>
        TestData.Manifest(strategy, dimension: features, round: round, sites: sites ?? ["A", "B"]) with
        {
            Model = new ModelSpec { Kind = ModelKinds.Trees, Dimension = features, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
        };

    /// <summary>The header of a tree-ensemble update carrying <paramref name="ensemble"/>.</summary>
    public static UpdateHeader Header(string site, long examples, TreeEnsembleModel ensemble, int round = 0) =>
        TestData.Header(site, examples, ensemble.FeatureCount, round) with
        {
            PayloadEncoding = UpdatePayloadEncodings.TreeEnsemble,
            PayloadBytes = ensemble.ToBytes().LongLength,
        };

    /// <summary>A round's global tree model.</summary>
    public static ModelFile Global(TreeEnsembleModel ensemble, int round = 0) =>
        ModelFile.FromTreeEnsemble(TestData.Global([0f], round, StrategyNames.TreeBagging).Header with { Kind = ModelKinds.Trees, Dimension = ensemble.FeatureCount }, ensemble);
}
