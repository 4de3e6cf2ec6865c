using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;
using LinearTransformer = Microsoft.ML.Data.BinaryPredictionTransformer<
    Microsoft.ML.Calibrators.CalibratedModelParametersBase<
        Microsoft.ML.Trainers.LinearBinaryModelParameters, Microsoft.ML.Calibrators.PlattCalibrator>>;

namespace ClinicalFed.Learning;

/// <summary>
/// The one place that knows ML.NET's internals: converts <see cref="LinearWeights"/> to and from ML.NET linear models.
/// <para>
/// The models it builds have exactly the type ML.NET's L-BFGS logistic regression returns:
/// a <see cref="BinaryPredictionTransformer{TModel}"/> of
/// <see cref="CalibratedModelParametersBase{TSubModel, TCalibrator}"/>&lt;<see cref="LinearBinaryModelParameters"/>, <see cref="PlattCalibrator"/>&gt;
/// (at run time ML.NET's internal <c>ParameterMixingCalibratedModelParameters</c>), with a Platt calibrator of slope −1 and
/// offset 0, so <c>Score</c> = w·x + b and <c>Probability</c> = sigmoid(w·x + b). They score any IDataView with a
/// matching <c>Features</c> column, save with <c>MLContext.Model.Save</c> and load back.
/// </para>
/// <para>
/// ML.NET 5.0.1 exposes no public way to build these from raw weights (the constructors of
/// <see cref="LinearBinaryModelParameters"/>, <see cref="PlattCalibrator"/>, the calibrated wrapper and the transformer
/// are internal), so this class calls them by reflection. All reflection in ClinicalFed lives here. If ML.NET changes,
/// <see cref="VerifyCompatibility"/> (run by a test) fails with an <see cref="MlNetCompatibilityException"/> naming
/// what is missing.
/// </para>
/// </summary>
public static class LinearModelAdapter
{
    /// <summary>The ML.NET version this adapter was written and tested against.</summary>
    public const string TestedMlNetVersion = "5.0.1";

    /// <summary>Builds an ML.NET linear model (no calibrator) with the given weights and bias.</summary>
    public static LinearBinaryModelParameters CreateLinearModel(MLContext mlContext, LinearWeights weights)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(weights);
        var dense = new VBuffer<float>(weights.Count, weights.ToArray());
        return (LinearBinaryModelParameters)Invoke(Reflected.Instance.LinearModelCtor, [mlContext, dense, weights.Bias, null]);
    }

    /// <summary>
    /// Builds the calibrated model ML.NET's logistic regression produces: the linear model wrapped with a Platt calibrator
    /// of slope −1 and offset 0 (ML.NET's Platt calibrator computes 1 / (1 + exp(slope·score + offset))).
    /// </summary>
    public static CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator> CreateCalibratedModel(
        MLContext mlContext, LinearWeights weights) =>
        CreateCalibratedModel(mlContext, weights, slope: -1, offset: 0);

    /// <summary>Same, with any Platt calibrator (used by tests of calibrator folding).</summary>
    internal static CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator> CreateCalibratedModel(
        MLContext mlContext, LinearWeights weights, double slope, double offset)
    {
        LinearBinaryModelParameters linear = CreateLinearModel(mlContext, weights);
        var calibrator = (PlattCalibrator)Invoke(Reflected.Instance.PlattCtor, [mlContext, slope, offset]);
        return (CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator>)Invoke(
            Reflected.Instance.CalibratedCtor, [mlContext, linear, calibrator]);
    }

    /// <summary>
    /// Builds a scoring transformer, the same type <c>LbfgsLogisticRegression().Fit</c> returns. It adds
    /// <c>Score</c> (w·x + b), <c>Probability</c> (sigmoid) and <c>PredictedLabel</c> (Score &gt; 0).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="weights">The parameters.</param>
    /// <param name="featureColumnName">The vector column the model reads.</param>
    /// <param name="trainingSchema">
    /// The schema the model was trained on (saved with the model). Null: a schema with just the feature column
    /// (Vector&lt;Single, weights.Count&gt;).
    /// </param>
    /// <exception cref="ArgumentException">The training schema's feature column is missing or not a float vector of the model's width.</exception>
    public static LinearTransformer CreateTransformer(
        MLContext mlContext,
        LinearWeights weights,
        string featureColumnName = FeatureData.FeaturesColumn,
        DataViewSchema? trainingSchema = null) =>
        CreateTransformer(mlContext, CreateCalibratedModel(mlContext, weights), featureColumnName, trainingSchema);

    internal static LinearTransformer CreateTransformer(
        MLContext mlContext,
        CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator> model,
        string featureColumnName,
        DataViewSchema? trainingSchema)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(featureColumnName);
        int width = model.SubModel.Weights.Count;
        if (trainingSchema is null)
        {
            var builder = new DataViewSchema.Builder();
            builder.AddColumn(featureColumnName, new VectorDataViewType(NumberDataViewType.Single, width));
            trainingSchema = builder.ToSchema();
        }
        else
        {
            DataViewSchema.Column column = trainingSchema.GetColumnOrNull(featureColumnName)
                ?? throw new ArgumentException($"The training schema has no column '{featureColumnName}'.", nameof(trainingSchema));
            if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType, Size: var size } vector ||
                vector.ItemType != NumberDataViewType.Single || size != width)
            {
                throw new ArgumentException(
                    $"Column '{featureColumnName}' is {column.Type}; the model needs Vector<Single, {width}>.", nameof(trainingSchema));
            }
        }

        return (LinearTransformer)Invoke(
            Reflected.Instance.TransformerCtor,
            [mlContext, model, trainingSchema, featureColumnName, 0f, FeatureData.ScoreColumn]);
    }

    /// <summary>The weights and bias of an ML.NET linear model (any linear model: logistic, SDCA, averaged perceptron, ...).</summary>
    public static LinearWeights GetWeights(LinearModelParameters model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var weights = new float[model.Weights.Count];
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = model.Weights[i];
        }

        return new LinearWeights(weights, model.Bias);
    }

    /// <summary>
    /// The weights of a Platt-calibrated linear model, with the calibrator folded in so that
    /// sigmoid(w'·x + b') equals the model's probability exactly: ML.NET's Platt probability is
    /// 1 / (1 + exp(a·(w·x + b) + c)) = sigmoid(−a·w·x − a·b − c). For logistic regression (a = −1, c = 0) the weights are unchanged.
    /// </summary>
    public static LinearWeights GetWeights(CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator> model)
    {
        ArgumentNullException.ThrowIfNull(model);
        LinearWeights raw = GetWeights(model.SubModel);
        double a = model.Calibrator.Slope;
        double c = model.Calibrator.Offset;
        if (a == -1 && c == 0)
        {
            return raw;
        }

        var w = new float[raw.Count];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = (float)(-a * raw.Weights[i]);
        }

        return new LinearWeights(w, (float)(-a * raw.Bias - c));
    }

    /// <summary>
    /// The weights of a trained or loaded transformer: a binary prediction transformer of a linear model, calibrated
    /// (Platt) or not, possibly the last step of a <see cref="TransformerChain{TLastTransformer}"/> (as
    /// <c>MLContext.Model.Load</c> may return).
    /// </summary>
    /// <exception cref="ArgumentException">The transformer is not a linear binary classifier.</exception>
    public static LinearWeights GetWeights(ITransformer transformer)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        switch (transformer)
        {
            case LinearTransformer calibrated:
                return GetWeights(calibrated.Model);
            case BinaryPredictionTransformer<LinearBinaryModelParameters> plain:
                return GetWeights(plain.Model);
            case IEnumerable<ITransformer> chain when chain.LastOrDefault() is { } last:
                return GetWeights(last);
            default:
                throw new ArgumentException(
                    $"{transformer.GetType().Name} is not a linear binary classifier (expected BinaryPredictionTransformer of a linear or Platt-calibrated linear model).",
                    nameof(transformer));
        }
    }

    /// <summary>
    /// The <see cref="SchemaShape"/> of a schema, as <c>IEstimator.GetOutputSchema</c> takes it (ML.NET's
    /// <c>SchemaShape.Create</c> is internal). For checking a pipeline's output columns before fitting it.
    /// </summary>
    public static SchemaShape ToSchemaShape(DataViewSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return (SchemaShape)Reflected.Instance.SchemaShapeCreate.Invoke(null, [schema])!;
    }

    /// <summary>
    /// Checks that every ML.NET internal this adapter relies on is present with the expected signature, and that a model
    /// built through them scores as expected. Throws <see cref="MlNetCompatibilityException"/> naming the first problem.
    /// Returns the loaded ML.NET version.
    /// </summary>
    public static string VerifyCompatibility()
    {
        _ = Reflected.Instance; // throws when a member is missing
        if (ToSchemaShape(FeatureData.ToDataView(new FeatureMatrix([1f], 1, [0f])).Schema).Count == 0)
        {
            throw new MlNetCompatibilityException("SchemaShape.Create returned no columns.");
        }

        var ml = new MLContext(seed: 0);
        var weights = new LinearWeights([2f, -1f], 0.5f);
        LinearTransformer transformer = CreateTransformer(ml, weights);
        var row = new FeatureMatrix([1f, 3f], 2, [1f]).ToDataView();
        IDataView scored = transformer.Transform(row);
        float score = scored.GetColumn<float>(FeatureData.ScoreColumn).Single();
        float probability = scored.GetColumn<float>(FeatureData.ProbabilityColumn).Single();
        // 2·1 − 1·3 + 0.5 = −0.5
        if (Math.Abs(score - -0.5) > 1e-6 || Math.Abs(probability - LinearWeights.Sigmoid(-0.5)) > 1e-6)
        {
            throw new MlNetCompatibilityException(
                $"a linear model built by reflection scored {score} (probability {probability}) instead of -0.5 ({LinearWeights.Sigmoid(-0.5)}); " +
                "the meaning of LinearBinaryModelParameters or PlattCalibrator has changed.");
        }

        LinearWeights back = GetWeights(transformer);
        if (!back.Equals(weights))
        {
            throw new MlNetCompatibilityException($"weights read back from the model ({back}) differ from those put in ({weights}).");
        }

        return MlNetVersion;
    }

    /// <summary>The informational version of the loaded Microsoft.ML.Data assembly.</summary>
    public static string MlNetVersion =>
        typeof(LinearBinaryModelParameters).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(LinearBinaryModelParameters).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    private static object Invoke(ConstructorInfo ctor, object?[] arguments)
    {
        try
        {
            return ctor.Invoke(arguments);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw; // unreachable
        }
    }

    /// <summary>Finds a non-public instance constructor with exactly these parameter types, or throws a clear error.</summary>
    internal static ConstructorInfo FindConstructor(Type type, string description, params Type[] parameterTypes)
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        ConstructorInfo? ctor = type.GetConstructor(flags, binder: null, parameterTypes, modifiers: null);
        if (ctor is null)
        {
            string found = string.Join("; ", type.GetConstructors(flags).Select(c => "(" + string.Join(", ", c.GetParameters().Select(p => p.ParameterType.Name)) + ")"));
            throw new MlNetCompatibilityException(
                $"{description}: {type.FullName} has no constructor ({string.Join(", ", parameterTypes.Select(t => t.Name))}). " +
                $"Constructors found: {(found.Length == 0 ? "none" : found)}.");
        }

        return ctor;
    }

    /// <summary>Finds a type by name in an assembly, or throws a clear error.</summary>
    internal static Type FindType(Assembly assembly, string fullName, string description) =>
        assembly.GetType(fullName, throwOnError: false)
        ?? throw new MlNetCompatibilityException($"{description}: type {fullName} is not in {assembly.GetName().Name}.");

    /// <summary>The reflected ML.NET internals, resolved once.</summary>
    private sealed class Reflected
    {
        private static readonly Lazy<Reflected> Lazy = new(() => new Reflected(), LazyThreadSafetyMode.ExecutionAndPublication);

        private Reflected()
        {
            LinearModelCtor = FindConstructor(
                typeof(LinearBinaryModelParameters),
                "LinearBinaryModelParameters(env, in VBuffer<float> weights, float bias, ModelStatisticsBase stats)",
                typeof(IHostEnvironment), typeof(VBuffer<float>).MakeByRefType(), typeof(float), typeof(ModelStatisticsBase));
            PlattCtor = FindConstructor(
                typeof(PlattCalibrator), "PlattCalibrator(env, double slope, double offset)",
                typeof(IHostEnvironment), typeof(double), typeof(double));
            Type mixingOpen = FindType(
                typeof(PlattCalibrator).Assembly, "Microsoft.ML.Calibrators.ParameterMixingCalibratedModelParameters`2",
                "the calibrated linear model type LbfgsLogisticRegression returns");
            Type mixing = mixingOpen.MakeGenericType(typeof(LinearBinaryModelParameters), typeof(PlattCalibrator));
            if (!typeof(CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator>).IsAssignableFrom(mixing))
            {
                throw new MlNetCompatibilityException($"{mixing.Name} no longer derives from CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator>.");
            }

            CalibratedCtor = FindConstructor(
                mixing, "ParameterMixingCalibratedModelParameters(env, predictor, calibrator)",
                typeof(IHostEnvironment), typeof(LinearBinaryModelParameters), typeof(PlattCalibrator));
            SchemaShapeCreate = typeof(SchemaShape).GetMethod(
                    "Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(DataViewSchema)])
                ?? throw new MlNetCompatibilityException("SchemaShape.Create(DataViewSchema) is missing.");
            TransformerCtor = FindConstructor(
                typeof(LinearTransformer),
                "BinaryPredictionTransformer(env, model, inputSchema, featureColumn, threshold, thresholdColumn)",
                typeof(IHostEnvironment), typeof(CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator>),
                typeof(DataViewSchema), typeof(string), typeof(float), typeof(string));
        }

        // Lazy caches a failure too, so every later call reports the same clear error.
        public static Reflected Instance => Lazy.Value;

        public ConstructorInfo LinearModelCtor { get; }

        public ConstructorInfo PlattCtor { get; }

        public ConstructorInfo CalibratedCtor { get; }

        public ConstructorInfo TransformerCtor { get; }

        public MethodInfo SchemaShapeCreate { get; }
    }
}

/// <summary>
/// The installed ML.NET no longer has an internal member <see cref="LinearModelAdapter"/> needs. The message names
/// the member; update <c>LinearModelAdapter</c> (the only class that uses ML.NET internals) for the new version.
/// </summary>
public sealed class MlNetCompatibilityException : Exception
{
    public MlNetCompatibilityException(string problem)
        : base(
            $"ClinicalFed's LinearModelAdapter does not work with the loaded ML.NET ({LinearModelAdapter.MlNetVersion}; written for " +
            $"{LinearModelAdapter.TestedMlNetVersion}): {problem} Update src/ClinicalFed.Learning/LinearModelAdapter.cs for this ML.NET version.")
    {
    }
}
