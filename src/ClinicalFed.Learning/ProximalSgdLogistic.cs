using Microsoft.ML;
using Microsoft.ML.Trainers;
using LinearTransformer = Microsoft.ML.Data.BinaryPredictionTransformer<
    Microsoft.ML.Calibrators.CalibratedModelParametersBase<
        Microsoft.ML.Trainers.LinearBinaryModelParameters, Microsoft.ML.Calibrators.PlattCalibrator>>;

namespace ClinicalFed.Learning;

/// <summary>
/// ClinicalFed's FedProx logistic regression client as an ML.NET estimator: <see cref="ProximalSgdOptimizer"/>
/// (mini-batch SGD with an L2 penalty, the proximal term μ/2‖θ − θ_global‖², class weights, a learning-rate schedule and a
/// per-unit gradient hook) started from the global weights. <see cref="Fit(IDataView)"/> returns the same transformer
/// type as ML.NET's L-BFGS logistic regression (built by <see cref="LinearModelAdapter"/>), so it composes with ML.NET
/// pipelines, evaluation and model saving.
/// </summary>
public sealed class ProximalSgdLogistic : IEstimator<LinearTransformer>
{
    private readonly MLContext _mlContext;
    private readonly IGradientProcessor? _processor;

    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="options">Settings (null: defaults).</param>
    /// <param name="globalWeights">The global model to start from and to stay near (null: zeros).</param>
    /// <param name="gradientProcessor">Per-unit gradient hook, e.g. <see cref="L2NormClipper"/> (null: none).</param>
    public ProximalSgdLogistic(
        MLContext mlContext,
        ProximalSgdOptions? options = null,
        LinearWeights? globalWeights = null,
        IGradientProcessor? gradientProcessor = null)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        Options = options ?? new ProximalSgdOptions();
        Options.Validate();
        GlobalWeights = globalWeights;
        _processor = gradientProcessor;
    }

    public ProximalSgdOptions Options { get; }

    /// <summary>The weights <see cref="Fit(IDataView)"/> starts from (null: zeros).</summary>
    public LinearWeights? GlobalWeights { get; }

    /// <summary>Trains from <see cref="GlobalWeights"/>.</summary>
    public LinearTransformer Fit(IDataView input) => Fit(input, GlobalWeights);

    /// <summary>Trains from <paramref name="globalWeights"/> (null: zeros).</summary>
    public LinearTransformer Fit(IDataView input, LinearWeights? globalWeights)
    {
        ProximalSgdResult result = Train(input, globalWeights);
        return LinearModelAdapter.CreateTransformer(_mlContext, result.Weights, Options.FeatureColumnName, input.Schema);
    }

    /// <summary>Trains from the weights of an ML.NET linear model, like L-BFGS's warm start.</summary>
    public LinearTransformer Fit(IDataView input, LinearModelParameters initialModel)
    {
        ArgumentNullException.ThrowIfNull(initialModel);
        return Fit(input, LinearModelAdapter.GetWeights(initialModel));
    }

    /// <summary>Trains and returns the weights with the run's details (losses per epoch, steps, time).</summary>
    public ProximalSgdResult Train(IDataView input, LinearWeights? globalWeights)
    {
        ArgumentNullException.ThrowIfNull(input);
        FeatureMatrix data = DataViewReader.ToMatrix(
            input,
            Options.FeatureColumnName,
            Options.LabelColumnName,
            Options.ExampleWeightColumnName,
            Options.SamplingUnit == SamplingUnit.Group ? Options.GroupColumnName : null);
        return ProximalSgdOptimizer.Train(data, globalWeights, Options, _processor);
    }

    /// <summary>
    /// The output schema: the input plus Score, Probability and PredictedLabel. ML.NET's SchemaShape.Column constructor is
    /// internal, so this asks an L-BFGS logistic regression with the same columns, whose output is identical.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        _mlContext.BinaryClassification.Trainers
            .LbfgsLogisticRegression(Options.LabelColumnName, Options.FeatureColumnName, Options.ExampleWeightColumnName)
            .GetOutputSchema(inputSchema);
}
