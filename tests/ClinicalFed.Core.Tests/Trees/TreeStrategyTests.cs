using System.Text.Json;
using ClinicalFed.Core.Tests.Federation;
using ClinicalFed.Federation;
using ClinicalFed.Trees;

namespace ClinicalFed.Core.Tests.Trees;

public sealed class TreeStrategyTests
{
    [Fact]
    public void Tree_bagging_of_two_updates_is_the_example_weighted_merge_in_manifest_order()
    {
        var strategy = StrategyFactory.CreateTree(new StrategySpec { Name = StrategyNames.TreeBagging });
        strategy.Begin(null, TreeTestModels.Manifest(sites: ["A", "B"]));
        strategy.Accumulate(TreeTestModels.Header("B", 3, TreeTestModels.B), TreeTestModels.B); // arrives first, listed second
        strategy.Accumulate(TreeTestModels.Header("A", 1, TreeTestModels.A), TreeTestModels.A);
        Assert.Equal(2, strategy.AcceptedCount);
        var merged = strategy.Finish();

        // Shares 1/4 and 3/4 (see TreeBaggingTests): base −0.625, tree weights 0.25, 0.375, 0.75; A's tree first.
        Assert.Equal(-0.625, merged.BaseScore, 15);
        Assert.Equal([0.25, 0.375, 0.75], merged.TreeWeights);
        Assert.Same(TreeTestModels.A.Trees[0], merged.Trees[0]);
        Assert.Equal(-0.5, merged.Score([0f, -3f]), 15);
        Assert.Null(strategy.CaptureState());
    }

    [Fact]
    public void Uniform_tree_bagging_ignores_example_counts()
    {
        var spec = StrategySpec.From(new TreeBaggingOptions { Weighting = UpdateWeighting.Uniform });
        var strategy = StrategyFactory.CreateTree(spec);
        strategy.Begin(null, TreeTestModels.Manifest() with { Strategy = spec });
        strategy.Accumulate(TreeTestModels.Header("A", 1, TreeTestModels.A), TreeTestModels.A);
        strategy.Accumulate(TreeTestModels.Header("B", 99, TreeTestModels.B), TreeTestModels.B);
        var merged = strategy.Finish();
        Assert.Equal(-0.25, merged.BaseScore, 15);
        Assert.Equal([0.5, 0.25, 0.5], merged.TreeWeights);
    }

    [Fact]
    public void Rejected_tree_updates_leave_the_round_unchanged()
    {
        var strategy = new TreeBaggingStrategy();
        strategy.Begin(null, TreeTestModels.Manifest(sites: ["A", "B"]));
        strategy.Accumulate(TreeTestModels.Header("A", 1, TreeTestModels.A), TreeTestModels.A);

        UpdateRejectedException Reject(UpdateHeader h, TreeEnsembleModel m) => Assert.Throws<UpdateRejectedException>(() => strategy.Accumulate(h, m));
        Assert.Contains("the payload is float32; tree-bagging aggregates tree ensembles", Reject(TestData.Header("B", 3, dimension: 2), TreeTestModels.B).Reason);
        Assert.Contains("already contributed", Reject(TreeTestModels.Header("A", 1, TreeTestModels.A), TreeTestModels.A).Reason);
        Assert.Contains("not among the round's expected sites", Reject(TreeTestModels.Header("Z", 1, TreeTestModels.A), TreeTestModels.A).Reason);
        Assert.Contains("example_count is 0", Reject(TreeTestModels.Header("B", 0, TreeTestModels.B), TreeTestModels.B).Reason);
        var wide = TreeEnsembleModel.Constant(3, 0);
        Assert.Contains("dimension 3 does not match the model's 2", Reject(TreeTestModels.Header("B", 3, wide), wide).Reason);
        Assert.Contains("the ensemble reads 3 features but the header says 2", Reject(TreeTestModels.Header("B", 3, TreeTestModels.B), wide).Reason);

        strategy.Accumulate(TreeTestModels.Header("B", 3, TreeTestModels.B), TreeTestModels.B);
        Assert.True(TreeBagging.Merge([new SiteEnsemble(TreeTestModels.A, 1), new SiteEnsemble(TreeTestModels.B, 3)]).StructurallyEquals(strategy.Finish()));
    }

    [Fact]
    public void Tree_strategies_check_the_manifest_and_the_global_model()
    {
        var bagging = new TreeBaggingStrategy();
        Assert.Throws<InvalidOperationException>(() => bagging.Finish());
        Assert.Throws<InvalidOperationException>(() => bagging.CaptureState());
        var logistic = TreeTestModels.Manifest() with { Model = TestData.Manifest().Model };
        Assert.Contains("model kind is 'logistic'", Assert.Throws<ArgumentException>(() => bagging.Begin(null, logistic)).Message);
        Assert.Contains("names strategy 'fedavg'", Assert.Throws<ArgumentException>(() => bagging.Begin(null, TreeTestModels.Manifest(StrategyNames.FedAvg))).Message);
        var round1 = TreeTestModels.Manifest(round: 1);
        Assert.Contains("the global model's payload is float32-le; tree-bagging aggregates tree ensembles",
            Assert.Throws<ArgumentException>(() => bagging.Begin(TestData.Global([1, 2]), round1)).Message);
        Assert.Contains("has dimension 3, the manifest 2",
            Assert.Throws<ArgumentException>(() => bagging.Begin(TreeTestModels.Global(TreeEnsembleModel.Constant(3, 0)), round1)).Message);
        var state = ServerState.Create("sepsis", 0, StrategyNames.FedAvgM, 1, [("velocity", [0f])]);
        Assert.Contains("belongs to strategy 'fedavgm', not 'tree-bagging'", Assert.Throws<ArgumentException>(() => bagging.RestoreState(state)).Message);
        var own = ServerState.Create("sepsis", 0, StrategyNames.TreeBagging, 1, [("x", [0f])]);
        Assert.Contains("tree-bagging keeps no server state", Assert.Throws<ArgumentException>(() => bagging.RestoreState(own)).Message);

        bagging.Begin(null, TreeTestModels.Manifest());
        Assert.Contains("no update was accepted", Assert.Throws<InvalidOperationException>(() => bagging.Finish()).Message);

        // The float strategies refuse tree ensembles the same way.
        var fedavg = new FedAvgStrategy();
        fedavg.Begin(null, TestData.Manifest(dimension: 2));
        Assert.Contains("the payload is tree-ensemble; fedavg averages float32 parameters",
            Assert.Throws<UpdateRejectedException>(() => fedavg.Accumulate(TreeTestModels.Header("A", 1, TreeTestModels.A), new float[2])).Reason);
        Assert.Contains("tree-ensemble; fedavg averages float32 parameters",
            Assert.Throws<ArgumentException>(() => new FedAvgStrategy().Begin(TreeTestModels.Global(TreeTestModels.A), TestData.Manifest(dimension: 2, round: 1))).Message);
    }

    [Fact]
    public void Tree_cyclic_takes_the_turn_s_ensemble_when_it_extends_the_global_model()
    {
        var global = TreeTestModels.Global(TreeTestModels.A);
        var grown = TreeTestModels.A.Append([DecisionTree.Constant(0.3)]);
        var manifest = TreeTestModels.Manifest(StrategyNames.TreeCyclic, sites: ["B"], round: 1);
        var strategy = StrategyFactory.CreateTree(manifest.Strategy);
        Assert.IsType<TreeCyclicStrategy>(strategy);

        strategy.Begin(global, manifest);
        var e = Assert.Throws<UpdateRejectedException>(() => strategy.Accumulate(TreeTestModels.Header("B", 5, TreeTestModels.B, round: 1), TreeTestModels.B));
        Assert.Contains("does not extend the round's global model", e.Reason);
        strategy.Accumulate(TreeTestModels.Header("B", 5, grown, round: 1), grown);
        Assert.Same(grown, strategy.Finish());
        Assert.Null(strategy.CaptureState());

        // A round without a global model takes any ensemble; a turn has exactly one site.
        strategy.Begin(null, TreeTestModels.Manifest(StrategyNames.TreeCyclic, sites: ["B"]));
        strategy.Accumulate(TreeTestModels.Header("B", 5, TreeTestModels.B), TreeTestModels.B);
        Assert.Same(TreeTestModels.B, strategy.Finish());
        Assert.Contains("exactly one site, not 2",
            Assert.Throws<ArgumentException>(() => strategy.Begin(null, TreeTestModels.Manifest(StrategyNames.TreeCyclic))).Message);
    }

    [Fact]
    public void Factory_builds_tree_strategies_and_keeps_the_families_apart()
    {
        Assert.Equal(["tree-bagging", "tree-cyclic"], StrategyFactory.TreeNames);
        Assert.IsType<TreeBaggingStrategy>(StrategyFactory.CreateAny(new StrategySpec { Name = "tree-bagging" }));
        Assert.IsType<FedAvgStrategy>(StrategyFactory.CreateAny(new StrategySpec { Name = "fedavg" }));
        Assert.Equal("tree-cyclic", StrategyFactory.CreateTree(new TreeCyclicOptions()).Name);
        Assert.Contains("build it with CreateTree", Assert.Throws<ArgumentException>(() => StrategyFactory.Create("tree-bagging")).Message);
        Assert.Contains("build it with Create", Assert.Throws<ArgumentException>(() => StrategyFactory.CreateTree(new FedAvgOptions())).Message);

        var uniform = new Dictionary<string, JsonElement> { ["weighting"] = JsonSerializer.SerializeToElement("uniform") };
        Assert.Equal(new TreeBaggingOptions { Weighting = UpdateWeighting.Uniform }, StrategyFactory.ParseOptions("tree-bagging", uniform));
        var bad = new Dictionary<string, JsonElement>
        {
            ["server_momentum"] = JsonSerializer.SerializeToElement(0.9),
            ["client_trees_per_turn"] = JsonSerializer.SerializeToElement(6),
        };
        var e = Assert.Throws<StrategyOptionsException>(() => StrategyFactory.ParseOptions("tree-cyclic", bad));
        Assert.Equal(["unknown option 'server_momentum' for strategy 'tree-cyclic' (known: weighting; keys starting with 'client_' are passed to the sites)"], e.Problems);
        Assert.Contains("tree-bagging, tree-cyclic", Assert.Throws<ArgumentException>(() => StrategyFactory.ParseOptions("bagging", null)).Message);

        foreach (StrategyOptions options in new StrategyOptions[] { new TreeBaggingOptions { Weighting = UpdateWeighting.Uniform }, new TreeCyclicOptions() })
        {
            var manifest = TreeTestModels.Manifest(options.StrategyName) with { Strategy = StrategySpec.From(options) };
            var parsed = RoundManifest.Parse(manifest.ToJsonBytes());
            Assert.Equal(options, StrategyFactory.ParseOptions(parsed.Strategy.Name, parsed.Strategy.Options));
        }
    }
}
