using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using LinearTransformer = Microsoft.ML.Data.BinaryPredictionTransformer<
    Microsoft.ML.Calibrators.CalibratedModelParametersBase<
        Microsoft.ML.Trainers.LinearBinaryModelParameters, Microsoft.ML.Calibrators.PlattCalibrator>>;

namespace ClinicalFed.Learning;

/// <summary>Settings of <see cref="FederatedLbfgsLogistic"/>.</summary>
public sealed record FederatedLbfgsOptions
{
    public string FeatureColumnName { get; init; } = FeatureData.FeaturesColumn;
    public string LabelColumnName { get; init; } = FeatureData.LabelColumn;

    /// <summary>A Single column of example weights, or null.</summary>
    public string? ExampleWeightColumnName { get; init; }

    /// <summary>
    /// λ of the L2 penalty on the scale of the mean loss (as <see cref="ProximalSgdOptions.L2"/>): the objective is
    /// weighted mean log-loss + λ/2‖w‖². ML.NET's L-BFGS penalises the summed loss, so ML.NET gets λ × Σ example weights.
    /// </summary>
    public float L2 { get; init; } = 1e-4f;

    /// <summary>L-BFGS stops when the mean relative improvement falls below this.</summary>
    public float OptimizationTolerance { get; init; } = 1e-7f;

    /// <summary>Most L-BFGS iterations in one local fit (bounds the local work per round).</summary>
    public int MaximumNumberOfIterations { get; init; } = 100;

    /// <summary>L-BFGS memory.</summary>
    public int HistorySize { get; init; } = 20;

    /// <summary>Threads ML.NET may use (1 = reproducible; null = ML.NET decides).</summary>
    public int? NumberOfThreads { get; init; } = 1;
}

/// <summary>
/// A federated client step with ML.NET's own optimiser: <c>LbfgsLogisticRegression</c> warm-started from the global
/// weights via <c>Fit(data, LinearModelParameters)</c>, returning the locally updated model (its weights via
/// <see cref="LinearModelAdapter.GetWeights(ITransformer)"/>). ML.NET's L-BFGS has no proximal term; for FedProx use
/// <see cref="ProximalSgdLogistic"/>.
/// <para>
/// A new ML.NET trainer is created for every fit: in ML.NET 5.0.1 a trainer instance remembers the initial model of a
/// warm-started Fit, and a later plain <c>Fit(data)</c> on the same instance silently starts from it again.
/// </para>
/// </summary>
public sealed class FederatedLbfgsLogistic : IEstimator<LinearTransformer>
{
    private readonly MLContext _mlContext;

    public FederatedLbfgsLogistic(MLContext mlContext, FederatedLbfgsOptions? options = null, LinearWeights? globalWeights = null)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        Options = options ?? new FederatedLbfgsOptions();
        if (!(Options.L2 >= 0) || !float.IsFinite(Options.L2))
        {
            throw new ArgumentException($"L2 must be finite and ≥ 0, got {Options.L2}.", nameof(options));
        }

        GlobalWeights = globalWeights;
    }

    public FederatedLbfgsOptions Options { get; }

    /// <summary>The weights <see cref="Fit(IDataView)"/> warm-starts from (null: a cold start from zeros).</summary>
    public LinearWeights? GlobalWeights { get; }

    /// <summary>Fits from <see cref="GlobalWeights"/> (or from zeros).</summary>
    public LinearTransformer Fit(IDataView input) => Fit(input, GlobalWeights);

    /// <summary>Fits warm-started from <paramref name="globalWeights"/> (null: a cold start).</summary>
    public LinearTransformer Fit(IDataView input, LinearWeights? globalWeights)
    {
        ArgumentNullException.ThrowIfNull(input);
        LbfgsLogisticRegressionBinaryTrainer trainer = CreateTrainer(input);
        if (globalWeights is null)
        {
            return trainer.Fit(input);
        }

        int width = FeatureWidth(input);
        if (globalWeights.Count != width)
        {
            throw new ArgumentException($"The global model has {globalWeights.Count} weights but column '{Options.FeatureColumnName}' has {width}.", nameof(globalWeights));
        }

        return trainer.Fit(input, LinearModelAdapter.CreateLinearModel(_mlContext, globalWeights));
    }

    /// <summary>Fits warm-started from an ML.NET linear model.</summary>
    public LinearTransformer Fit(IDataView input, LinearModelParameters initialModel)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(initialModel);
        return CreateTrainer(input).Fit(input, initialModel);
    }

    /// <summary>Fits and returns just the updated weights.</summary>
    public LinearWeights FitWeights(IDataView input, LinearWeights? globalWeights) =>
        LinearModelAdapter.GetWeights(Fit(input, globalWeights).Model);

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        _mlContext.BinaryClassification.Trainers
            .LbfgsLogisticRegression(Options.LabelColumnName, Options.FeatureColumnName, Options.ExampleWeightColumnName)
            .GetOutputSchema(inputSchema);

    /// <summary>A fresh ML.NET trainer whose L2 is λ × (Σ example weights of <paramref name="input"/>).</summary>
    internal LbfgsLogisticRegressionBinaryTrainer CreateTrainer(IDataView input) =>
        _mlContext.BinaryClassification.Trainers.LbfgsLogisticRegression(new LbfgsLogisticRegressionBinaryTrainer.Options
        {
            FeatureColumnName = Options.FeatureColumnName,
            LabelColumnName = Options.LabelColumnName,
            ExampleWeightColumnName = Options.ExampleWeightColumnName,
            L1Regularization = 0,
            L2Regularization = (float)(Options.L2 * TotalWeight(input)),
            OptimizationTolerance = Options.OptimizationTolerance,
            MaximumNumberOfIterations = Options.MaximumNumberOfIterations,
            HistorySize = Options.HistorySize,
            NumberOfThreads = Options.NumberOfThreads,
        });

    private double TotalWeight(IDataView input)
    {
        if (input is FeatureDataView view)
        {
            FeatureMatrix m = view.Matrix;
            if (Options.ExampleWeightColumnName is null)
            {
                return m.RowCount;
            }

            if (Options.ExampleWeightColumnName == FeatureData.WeightColumn && m.Weights is not null)
            {
                double sum = 0;
                for (int i = 0; i < m.RowCount; i++)
                {
                    sum += m.Weight(i);
                }

                return sum;
            }
        }

        if (Options.ExampleWeightColumnName is null)
        {
            if (input.GetRowCount() is long n)
            {
                return n;
            }

            long count = 0;
            using DataViewRowCursor counter = input.GetRowCursor([]);
            while (counter.MoveNext())
            {
                count++;
            }

            return count;
        }

        DataViewSchema.Column column = input.Schema.GetColumnOrNull(Options.ExampleWeightColumnName)
            ?? throw new ArgumentException($"The data has no example weight column '{Options.ExampleWeightColumnName}'.");
        double total = 0;
        using DataViewRowCursor cursor = input.GetRowCursor([column]);
        ValueGetter<float> get = cursor.GetGetter<float>(column);
        float w = 0;
        while (cursor.MoveNext())
        {
            get(ref w);
            total += w;
        }

        return total;
    }

    private int FeatureWidth(IDataView input)
    {
        DataViewSchema.Column column = input.Schema.GetColumnOrNull(Options.FeatureColumnName)
            ?? throw new ArgumentException($"The data has no feature column '{Options.FeatureColumnName}'.");
        return column.Type is VectorDataViewType { Size: > 0 } vector
            ? vector.Size
            : throw new ArgumentException($"Feature column '{Options.FeatureColumnName}' is {column.Type}; a known-size vector is needed.");
    }
}
