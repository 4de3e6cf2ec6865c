using ClinicalFed.Learning.Trees;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Tests.Trees;

public class GradientTreeBoosterTests
{
    [Fact]
    public void Booster_decreases_training_loss_with_every_tree_and_matches_LightGbm_quality()
    {
        var train = TreeTestData.Site("A", 3000, seed: 301, missingRate: 0.2);
        var test = TreeTestData.Site("A", 3000, seed: 302, missingRate: 0.2);
        var model = GradientTreeBooster.Train(train, new TreeBoostingOptions { NumberOfTrees = 40, NumberOfLeaves = 15, LearningRate = 0.1 });
        Assert.Equal(40, model.Trees.Count);
        double previous = double.PositiveInfinity;
        for (int t = 0; t <= model.Trees.Count; t += 5)
        {
            double loss = TreeTestData.LogLoss(model.Prefix(t).ScoreTable(train), train.Labels);
            Assert.True(loss < previous, $"training loss after {t} trees is {loss}, was {previous}");
            previous = loss;
        }
        var lightGbm = MlNetTreeTrainer.TrainLightGbm(train, new MlNetTreeOptions { NumberOfTrees = 40, NumberOfLeaves = 15, NumberOfThreads = 1 });
        double ours = TreeTestData.Auroc(model.ScoreTable(test), test.Labels), theirs = TreeTestData.Auroc(lightGbm.ScoreTable(test), test.Labels);
        Assert.True(ours > 0.75, $"booster AUROC {ours:F4}");
        Assert.True(ours > theirs - 0.015, $"booster AUROC {ours:F4} vs LightGBM {theirs:F4}");
    }

    [Fact]
    public void Trained_ensemble_round_trips_through_bytes()
    {
        var site = TreeTestData.Site("A", 1500, seed: 5, missingRate: 0.2);
        var model = GradientTreeBooster.Train(site, new TreeBoostingOptions { NumberOfTrees = 15, NumberOfLeaves = 8 });
        var back = TreeEnsembleModel.FromBytes(model.ToBytes());
        Assert.True(model.StructurallyEquals(back));
        Assert.Equal(model.ScoreTable(site), back.ScoreTable(site));
    }

    [Fact]
    public void Boosting_in_two_calls_equals_boosting_in_one()
    {
        // The second call starts from Score() of the first call's model; the one-call run continues from its own
        // internal (binned) margins. Bit-identical results mean binned routing ≡ threshold routing, NaN included.
        var site = TreeTestData.Site("A", 2000, seed: 310, missingRate: 0.3);
        var options = new TreeBoostingOptions { NumberOfTrees = 12, NumberOfLeaves = 10, MaxBins = 16, RowSubsample = 0.8, Seed = 9 };
        var once = GradientTreeBooster.Train(site, options);
        var half = GradientTreeBooster.Train(site, options with { NumberOfTrees = 6 });
        var twice = GradientTreeBooster.Boost(half, site, options with { NumberOfTrees = 6 });
        Assert.True(once.StructurallyEquals(twice));
    }

    [Fact]
    public void Boosting_a_matrix_row_subset_equals_boosting_a_table_of_those_rows()
    {
        var site = TreeTestData.Site("A", 1200, seed: 315, missingRate: 0.2);
        int[] rows = Enumerable.Range(0, site.Rows).Where(i => i % 3 != 0).Reverse().ToArray();
        var subset = TreeTestData.Table("A", rows.SelectMany(i => site.Row(i).ToArray()).ToArray(), rows.Select(i => site.Labels[i]).ToArray());
        var options = new TreeBoostingOptions { NumberOfTrees = 5, NumberOfLeaves = 8 };
        var start = TreeEnsembleModel.Constant(TreeTestData.Features, -0.5);
        var fromMatrix = GradientTreeBooster.Boost(start, FeatureMatrix.FromTable(site, rows), options);
        var fromTable = GradientTreeBooster.Boost(start, subset, options);
        Assert.True(fromMatrix.StructurallyEquals(fromTable));
    }

    [Fact]
    public void Boosting_continues_an_existing_ensemble_without_changing_it()
    {
        var site = TreeTestData.Site("A", 1500, seed: 401, missingRate: 0.2);
        var start = MlNetTreeTrainer.TrainLightGbm(site, new MlNetTreeOptions { NumberOfTrees = 5, NumberOfLeaves = 8, NumberOfThreads = 1 });
        var grown = GradientTreeBooster.Boost(start, site, new TreeBoostingOptions { NumberOfTrees = 10, NumberOfLeaves = 8 });
        Assert.Equal(15, grown.Trees.Count);
        Assert.True(start.StructurallyEquals(grown.Prefix(5)));
        Assert.True(TreeTestData.LogLoss(grown.ScoreTable(site), site.Labels) < TreeTestData.LogLoss(start.ScoreTable(site), site.Labels));
    }

    [Fact]
    public void Booster_learns_from_missingness()
    {
        // Only the missingness of x5 carries signal in x5; the trees must route NaN of x5 on its own.
        var site = TreeTestData.Site("A", 4000, seed: 320, missingRate: 0.4);
        var model = GradientTreeBooster.Train(site, new TreeBoostingOptions { NumberOfTrees = 30, NumberOfLeaves = 8 });
        var x5Splits = model.Trees.SelectMany(t => Enumerable.Range(0, t.NodeCount).Where(i => t.SplitFeature[i] == 5)).Count();
        Assert.True(x5Splits > 0);
        var present = new float[TreeTestData.Features];
        var missing = (float[])present.Clone();
        missing[5] = float.NaN;
        Assert.True(model.Score(missing) - model.Score(present) > 0.3, $"{model.Score(missing) - model.Score(present):F3}");
    }

    [Fact]
    public void Bad_input_is_rejected()
    {
        var site = TreeTestData.Site("A", 200, seed: 330);
        var values = (float[])site.Values.Clone();
        values[3] = float.PositiveInfinity;
        var start = TreeEnsembleModel.Constant(TreeTestData.Features, 0);
        Assert.Throws<ArgumentException>(() => GradientTreeBooster.Boost(start, values, site.Labels, site.Columns, new TreeBoostingOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientTreeBooster.Train(site, new TreeBoostingOptions { MaxBins = 256 }));
        var renamed = TreeEnsembleModel.Constant(TreeTestData.Features, 0, TreeTestData.Names.Reverse().ToArray());
        Assert.Throws<ArgumentException>(() => GradientTreeBooster.Boost(renamed, site, new TreeBoostingOptions()));
        Assert.Throws<ArgumentException>(() => GradientTreeBooster.Boost(TreeEnsembleModel.Constant(3, 0), site, new TreeBoostingOptions()));
    }
}
