using ClinicalFed.Testing;
using ClinicalFed.Trees;

namespace ClinicalFed.Core.Tests.Trees;

public class TreeEnsembleModelTests
{
    /// <summary>root: x0 ≤ 1 (NaN left) → node 1: x1 ≤ −2 (NaN right) → leaves 0 / 2; right of root → leaf 1.</summary>
    internal static DecisionTree SmallTree() => new(
        splitFeature: [0, 1], threshold: [1f, -2f], defaultLeft: [true, false],
        leftChild: [1, ~0], rightChild: [~1, ~2], leafValue: [0.5, -1.0, 2.0]);

    [Fact]
    public void Score_routes_values_thresholds_and_missing_values()
    {
        var tree = SmallTree();
        Assert.Equal(0.5, tree.Evaluate([1f, -2f]));          // both exactly on the threshold: left, left
        Assert.Equal(2.0, tree.Evaluate([0f, -1.9f]));        // left, right
        Assert.Equal(-1.0, tree.Evaluate([1.0001f, -5f]));    // right
        Assert.Equal(2.0, tree.Evaluate([float.NaN, float.NaN])); // NaN left at the root, NaN right below
        var model = new TreeEnsembleModel(2, 0.25, [tree, DecisionTree.Constant(0.1)], [2.0, -1.0]);
        Assert.Equal(0.25 + 2 * 0.5 - 0.1, model.Score([0f, -3f]), 12);
        Assert.Equal(TreeEnsembleModel.Sigmoid(model.Score([0f, -3f])), model.Probability([0f, -3f]), 12);
        Assert.Throws<ArgumentException>(() => model.Score([0f]));
    }

    [Fact]
    public void Invalid_trees_are_rejected()
    {
        // child pointing backwards (a cycle)
        Assert.Throws<ArgumentException>(() => new DecisionTree([0, 0], [0f, 0f], [false, false], [1, 0], [~0, ~1], [0, 0, 0]));
        // leaf reached twice, another never
        Assert.Throws<ArgumentException>(() => new DecisionTree([0], [0f], [false], [~0], [~0], [0, 0]));
        // wrong leaf count, NaN threshold, infinite leaf
        Assert.Throws<ArgumentException>(() => new DecisionTree([0], [0f], [false], [~0], [~1], [0]));
        Assert.Throws<ArgumentException>(() => new DecisionTree([0], [float.NaN], [false], [~0], [~1], [0, 0]));
        Assert.Throws<ArgumentException>(() => new DecisionTree([0], [0f], [false], [~0], [~1], [0, double.PositiveInfinity]));
        // split feature beyond the model's feature count
        Assert.Throws<ArgumentException>(() => new TreeEnsembleModel(1, 0, [SmallTree()]));
    }

    [Fact]
    public void Binary_form_round_trips_exactly_and_detects_damage()
    {
        var model = new TreeEnsembleModel(2, -0.75, [SmallTree(), DecisionTree.Constant(0.3), SmallTree().ScaleLeaves(0.5)], [1.0, 0.5, 0.25], ["age", "lactate"]);
        var bytes = model.ToBytes();
        var back = TreeEnsembleModel.FromBytes(bytes);
        Assert.True(model.StructurallyEquals(back));
        Assert.Equal(["age", "lactate"], back.FeatureNames!);
        foreach (var row in TreeTestRows.Random(200, 1, model))
            Assert.Equal(model.Score(row), back.Score(row));
        Assert.True(bytes.Length < 250, $"{bytes.Length} bytes");

        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0x10;
        Assert.Throws<InvalidDataException>(() => TreeEnsembleModel.FromBytes(flipped));
        Assert.Throws<InvalidDataException>(() => TreeEnsembleModel.FromBytes(bytes.AsSpan(0, bytes.Length - 3)));
        var future = (byte[])bytes.Clone();
        future[4] = 2;
        Assert.Contains("version", Assert.Throws<InvalidDataException>(() => TreeEnsembleModel.FromBytes(future)).Message);
        Assert.Throws<InvalidDataException>(() => TreeEnsembleModel.FromBytes("nope, not a model"u8));
    }

    [Fact]
    public void Append_prefix_and_unit_weights_keep_the_function()
    {
        var a = new TreeEnsembleModel(2, 0.1, [SmallTree()], [0.5]);
        var grown = a.Append([DecisionTree.Constant(1.0)]);
        Assert.Equal(2, grown.Trees.Count);
        Assert.True(a.StructurallyEquals(grown.Prefix(1)));
        var unit = grown.WithUnitWeights();
        Assert.All(unit.TreeWeights, w => Assert.Equal(1.0, w));
        foreach (var row in TreeTestRows.Random(100, 2, grown))
            Assert.Equal(grown.Score(row), unit.Score(row), 12);
    }

    [Fact]
    public void Extends_recognizes_an_ensemble_grown_from_another()
    {
        var start = new TreeEnsembleModel(2, 0.1, [SmallTree()], [0.5], ["age", "lactate"]);
        var grown = start.Append([DecisionTree.Constant(1.0)]);
        Assert.True(grown.Extends(start));
        Assert.True(start.Extends(start));
        Assert.True(grown.Extends(TreeEnsembleModel.Constant(2, 0.1)));
        Assert.False(start.Extends(grown));                                                       // shorter
        Assert.False(grown.Extends(new TreeEnsembleModel(2, 0.2, [SmallTree()], [0.5])));        // base score
        Assert.False(grown.Extends(new TreeEnsembleModel(2, 0.1, [SmallTree()], [0.25])));       // tree weight
        Assert.False(grown.Extends(new TreeEnsembleModel(2, 0.1, [SmallTree().ShiftLeaves(1)], [0.5]))); // leaves
        Assert.False(grown.Extends(new TreeEnsembleModel(2, 0.1, [SmallTree()], [0.5], ["age", "x"])));  // names
    }

    [Fact]
    public void Leaf_norm_is_the_norm_of_weighted_leaf_values()
    {
        // Trees 1 and 2: weight 2 × leaves [0.5, −1, 2] and weight −1 × leaf [0.1]: √(1 + 4 + 16 + 0.01).
        var model = new TreeEnsembleModel(2, 5.0, [DecisionTree.Constant(9), SmallTree(), DecisionTree.Constant(0.1)], [1.0, 2.0, -1.0]);
        Assert.Equal(Math.Sqrt(21.01), model.LeafNorm(1), 12);
        Assert.Equal(Math.Sqrt(81 + 21.01), model.LeafNorm(), 12);
        Assert.Equal(0, model.LeafNorm(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.LeafNorm(4));
    }
}
