using ClinicalFed.Data;
using ClinicalFed.Trees;
using Microsoft.ML;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;

namespace ClinicalFed.Learning.Trees;

/// <summary>Settings shared by the ML.NET FastTree and LightGBM site trainers. The thread count is always passed to
/// the trainer explicitly (left to itself, LightGBM's timings swing roughly tenfold on a small machine).</summary>
public sealed record MlNetTreeOptions
{
    public int NumberOfTrees { get; init; } = 50;
    public int NumberOfLeaves { get; init; } = 15;
    public double LearningRate { get; init; } = 0.1;
    public int MinimumExampleCountPerLeaf { get; init; } = 20;
    public int NumberOfThreads { get; init; } = 1;
    public int Seed { get; init; }

    internal void Validate()
    {
        if (NumberOfTrees < 1) throw new ArgumentOutOfRangeException(nameof(NumberOfTrees));
        if (NumberOfLeaves < 2) throw new ArgumentOutOfRangeException(nameof(NumberOfLeaves));
        if (!(LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate));
        if (MinimumExampleCountPerLeaf < 1) throw new ArgumentOutOfRangeException(nameof(MinimumExampleCountPerLeaf));
        if (NumberOfThreads < 1) throw new ArgumentOutOfRangeException(nameof(NumberOfThreads));
    }
}

/// <summary>
/// Trains a site's own ensemble with ML.NET (FastTree or LightGBM) and extracts it as a <see cref="TreeEnsembleModel"/>
/// — the local step of federated tree bagging.
/// </summary>
public static class MlNetTreeTrainer
{
    /// <summary>ML.NET FastTree on the site's table. FastTree cannot use rows with a missing value: ML.NET would skip
    /// every such row with only a log warning, so a table containing NaN is rejected here; impute first (the site
    /// pipeline's <c>impute</c>) or use <see cref="TrainLightGbm(FeatureTable, MlNetTreeOptions)"/> /
    /// <see cref="GradientTreeBooster"/>, which route missing values natively.</summary>
    public static TreeEnsembleModel TrainFastTree(FeatureTable table, MlNetTreeOptions options) => TrainFastTree(FeatureMatrix.FromTable(table), options);

    /// <inheritdoc cref="TrainFastTree(FeatureTable, MlNetTreeOptions)"/>
    public static TreeEnsembleModel TrainFastTree(FeatureMatrix matrix, MlNetTreeOptions options)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int rowsWithMissing = CountRowsWithMissing(matrix);
        if (rowsWithMissing > 0)
            throw new ArgumentException($"{rowsWithMissing} of {matrix.RowCount} rows have missing values, which ML.NET FastTree would silently skip; impute first or use LightGBM");
        var ml = new MLContext(options.Seed);
        var trainer = ml.BinaryClassification.Trainers.FastTree(new FastTreeBinaryTrainer.Options
        {
            FeatureColumnName = FeatureData.FeaturesColumn,
            LabelColumnName = FeatureData.LabelColumn,
            ExampleWeightColumnName = matrix.Weights is null ? null : FeatureData.WeightColumn,
            RowGroupColumnName = null,
            NumberOfTrees = options.NumberOfTrees,
            NumberOfLeaves = options.NumberOfLeaves,
            LearningRate = options.LearningRate,
            MinimumExampleCountPerLeaf = options.MinimumExampleCountPerLeaf,
            NumberOfThreads = options.NumberOfThreads,
            Seed = options.Seed,
        });
        return TreeEnsembleMlNet.FromFastTree(trainer.Fit(matrix.ToDataView()), matrix.ColumnNames);
    }

    /// <summary>ML.NET LightGBM on the site's table; missing values (NaN) are routed by LightGBM's learned default
    /// directions. Trained deterministically (LightGBM's <c>deterministic</c>, fixed seed, explicit threads), with
    /// sigmoid 1 so the trees are in log-odds units.</summary>
    public static TreeEnsembleModel TrainLightGbm(FeatureTable table, MlNetTreeOptions options) => TrainLightGbm(FeatureMatrix.FromTable(table), options);

    /// <inheritdoc cref="TrainLightGbm(FeatureTable, MlNetTreeOptions)"/>
    public static TreeEnsembleModel TrainLightGbm(FeatureMatrix matrix, MlNetTreeOptions options)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var ml = new MLContext(options.Seed);
        var trainer = ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
        {
            FeatureColumnName = FeatureData.FeaturesColumn,
            LabelColumnName = FeatureData.LabelColumn,
            ExampleWeightColumnName = matrix.Weights is null ? null : FeatureData.WeightColumn,
            RowGroupColumnName = null,
            NumberOfIterations = options.NumberOfTrees,
            NumberOfLeaves = options.NumberOfLeaves,
            LearningRate = options.LearningRate,
            MinimumExampleCountPerLeaf = options.MinimumExampleCountPerLeaf,
            NumberOfThreads = options.NumberOfThreads,
            Seed = options.Seed,
            Deterministic = true,
            Sigmoid = 1.0,
            Verbose = false,
            Silent = true,
        });
        return TreeEnsembleMlNet.FromLightGbm(trainer.Fit(matrix.ToDataView()), matrix.ColumnNames);
    }

    internal static int CountRowsWithMissing(FeatureMatrix matrix)
    {
        int count = 0;
        for (int i = 0; i < matrix.RowCount; i++)
            if (HasNaN(matrix.Features(i))) count++;
        return count;

        static bool HasNaN(ReadOnlySpan<float> row)
        {
            foreach (var x in row) if (float.IsNaN(x)) return true;
            return false;
        }
    }
}
