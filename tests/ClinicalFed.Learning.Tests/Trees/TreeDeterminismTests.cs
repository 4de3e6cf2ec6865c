using ClinicalFed.Learning.Trees;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Tests.Trees;

public class TreeDeterminismTests
{
    private static readonly MlNetTreeOptions Options = new() { NumberOfTrees = 10, NumberOfLeaves = 8, MinimumExampleCountPerLeaf = 10, NumberOfThreads = 1, Seed = 7 };

    [Fact]
    public void FastTree_with_a_seed_and_one_thread_is_reproducible()
    {
        var site = TreeTestData.Imputed(TreeTestData.Site("A", 1500, 601));
        Assert.Equal(MlNetTreeTrainer.TrainFastTree(site, Options).ToBytes(), MlNetTreeTrainer.TrainFastTree(site, Options).ToBytes());
    }

    [Fact]
    public void LightGbm_with_a_seed_and_explicit_threads_is_reproducible()
    {
        var site = TreeTestData.Site("A", 1500, 602, missingRate: 0.2);
        Assert.Equal(MlNetTreeTrainer.TrainLightGbm(site, Options).ToBytes(), MlNetTreeTrainer.TrainLightGbm(site, Options).ToBytes());
        var two = Options with { NumberOfThreads = 2 };
        Assert.Equal(MlNetTreeTrainer.TrainLightGbm(site, two).ToBytes(), MlNetTreeTrainer.TrainLightGbm(site, two).ToBytes());
    }

    [Fact]
    public void Booster_result_does_not_depend_on_the_thread_count()
    {
        // Large enough that scoring and histograms really run in parallel.
        var site = TreeTestData.Site("A", 9000, 603, missingRate: 0.2);
        var options = new TreeBoostingOptions { NumberOfTrees = 8, NumberOfLeaves = 16, RowSubsample = 0.8, Seed = 3 };
        var one = GradientTreeBooster.Train(site, options with { NumberOfThreads = 1 }).ToBytes();
        var two = GradientTreeBooster.Train(site, options with { NumberOfThreads = 2 }).ToBytes();
        Assert.Equal(one, two);
        var model = TreeEnsembleModel.FromBytes(one);
        Assert.Equal(model.ScoreTable(site, threads: 1), model.ScoreTable(site, threads: 2));
        Assert.Equal(one, GradientTreeBooster.Train(site, options with { NumberOfThreads = 1 }).ToBytes());
        // The seed matters when rows are subsampled.
        Assert.NotEqual(one, GradientTreeBooster.Train(site, options with { Seed = 4 }).ToBytes());
    }

    [Fact]
    public void Cyclic_boosting_is_reproducible()
    {
        var sites = new[] { TreeTestData.Site("A", 800, 604, missingRate: 0.1), TreeTestData.Site("B", 600, 605, shift: 0.5) };
        var options = new TreeBoostingOptions { NumberOfTrees = 4, NumberOfLeaves = 6, RowSubsample = 0.7, Seed = 1 };
        Assert.Equal(CyclicTreeBoosting.Run(sites, 2, options).ToBytes(), CyclicTreeBoosting.Run(sites, 2, options with { NumberOfThreads = 2 }).ToBytes());
    }
}
