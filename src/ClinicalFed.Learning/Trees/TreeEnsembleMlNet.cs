using System.Globalization;
using System.Reflection;
using System.Text;
using ClinicalFed.Federation;
using ClinicalFed.Trees;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;

namespace ClinicalFed.Learning.Trees;

/// <summary>
/// The ML.NET side of <see cref="TreeEnsembleModel"/> (which lives in ClinicalFed.Core, without ML.NET): extraction
/// from trained ML.NET FastTree and LightGBM models, LightGBM model text, and loading an ensemble — or a tree model
/// file from the federation store — as an ordinary ML.NET model.
/// </summary>
public static class TreeEnsembleMlNet
{
    // ---------------------------------------------------------------- extraction from ML.NET

    /// <summary>Extracts a trained ML.NET FastTree binary model (what <c>FastTree(...).Fit</c> returns).
    /// The Platt calibrator is folded in, so <see cref="TreeEnsembleModel.Score"/> is the log-odds whose sigmoid is ML.NET's
    /// <c>Probability</c>. ML.NET FastTree never routes missing values specially: a NaN fails <c>x &lt;= t</c> and goes
    /// right, and that is what the extracted trees record.</summary>
    public static TreeEnsembleModel FromFastTree(BinaryPredictionTransformer<CalibratedModelParametersBase<FastTreeBinaryModelParameters, PlattCalibrator>> transformer,
        IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return FromFastTree(transformer.Model, FeatureCountOf(transformer.FeatureColumnType), featureNames);
    }

    /// <inheritdoc cref="FromFastTree(BinaryPredictionTransformer{CalibratedModelParametersBase{FastTreeBinaryModelParameters, PlattCalibrator}}, IReadOnlyList{string}?)"/>
    public static TreeEnsembleModel FromFastTree(CalibratedModelParametersBase<FastTreeBinaryModelParameters, PlattCalibrator> model, int featureCount,
        IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return FromRegressionTreeEnsemble(model.SubModel.TrainedTreeEnsemble, model.Calibrator, featureCount, featureNames, isFastTree: true);
    }

    /// <summary>Extracts an ML.NET LightGBM binary model (trained, or loaded from LightGBM text). ML.NET keeps each
    /// node's missing-value routing only internally (<c>InternalRegressionTree.DefaultValueForMissing</c>); it is read
    /// by reflection, and extraction fails loudly (<see cref="NotSupportedException"/>) if an ML.NET version moves it.</summary>
    public static TreeEnsembleModel FromLightGbm(BinaryPredictionTransformer<CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator>> transformer,
        IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return FromLightGbm(transformer.Model, FeatureCountOf(transformer.FeatureColumnType), featureNames);
    }

    /// <inheritdoc cref="FromLightGbm(BinaryPredictionTransformer{CalibratedModelParametersBase{LightGbmBinaryModelParameters, PlattCalibrator}}, IReadOnlyList{string}?)"/>
    public static TreeEnsembleModel FromLightGbm(CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator> model, int featureCount,
        IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return FromRegressionTreeEnsemble(model.SubModel.TrainedTreeEnsemble, model.Calibrator, featureCount, featureNames, isFastTree: false);
    }

    private static int FeatureCountOf(DataViewType featureColumnType) =>
        featureColumnType is VectorDataViewType { Size: > 0 } v ? v.Size
            : throw new NotSupportedException($"the model's feature column type {featureColumnType} is not a known-size float vector");

    private static TreeEnsembleModel FromRegressionTreeEnsemble(RegressionTreeEnsemble ensemble, PlattCalibrator calibrator, int featureCount,
        IReadOnlyList<string>? featureNames, bool isFastTree)
    {
        // ML.NET: P = 1 / (1 + exp(Slope·s + Offset)), s = Bias + Σ w_t tree_t(x)  ⇒  log-odds = −Slope·s − Offset.
        double scale = -calibrator.Slope;
        var trees = new List<DecisionTree>(ensemble.Trees.Count);
        for (int t = 0; t < ensemble.Trees.Count; t++)
        {
            var tree = ensemble.Trees[t];
            if (tree.CategoricalSplitFlags.Any(c => c))
                throw new NotSupportedException($"tree {t} has a categorical split; only numerical splits are supported");
            int n = tree.NumberOfNodes;
            double factor = scale * ensemble.TreeWeights[t];
            var leaves = tree.LeafValues.Select(v => v * factor).ToArray();
            if (tree.NumberOfLeaves == 1 || n == 0)
            {
                trees.Add(DecisionTree.Constant(leaves.Length > 0 ? leaves[0] : 0));
                continue;
            }
            var thresholds = tree.NumericalSplitThresholds.ToArray();
            var missing = isFastTree ? TryReadDefaultValueForMissing(tree, out _) : ReadDefaultValueForMissing(tree);
            var defaultLeft = new bool[n];
            // ML.NET replaces a NaN by DefaultValueForMissing[node] (when the tree has that array) and then tests <=.
            for (int i = 0; i < n; i++) defaultLeft[i] = missing is not null && missing[i] <= thresholds[i];
            trees.Add(new DecisionTree(tree.NumericalSplitFeatureIndexes.ToArray(), thresholds, defaultLeft,
                tree.LeftChild.ToArray(), tree.RightChild.ToArray(), leaves));
        }
        double baseScore = scale * ensemble.Bias - calibrator.Offset;
        return new TreeEnsembleModel(featureCount, baseScore, trees, null, featureNames);
    }

    private static readonly FieldInfo? InnerTreeField = typeof(RegressionTreeBase).GetField("_tree", BindingFlags.NonPublic | BindingFlags.Instance);

    private static float[]? TryReadDefaultValueForMissing(RegressionTree tree, out bool found)
    {
        found = false;
        var inner = InnerTreeField?.GetValue(tree);
        var field = inner?.GetType().GetField("DefaultValueForMissing", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance);
        if (field is null || field.FieldType != typeof(float[])) return null;
        found = true;
        return (float[]?)field.GetValue(inner);
    }

    private static float[]? ReadDefaultValueForMissing(RegressionTree tree)
    {
        var values = TryReadDefaultValueForMissing(tree, out bool found);
        if (!found)
            throw new NotSupportedException("cannot read the missing-value routing of ML.NET LightGBM trees " +
                "(InternalRegressionTree.DefaultValueForMissing was not found); this ML.NET version is not supported for extraction");
        return values;
    }

    // ---------------------------------------------------------------- LightGBM model text

    /// <summary>
    /// The ensemble as LightGBM model text (format v4, objective <c>binary sigmoid:1</c>), loadable by LightGBM itself
    /// and by ML.NET's public <c>BinaryClassification.Trainers.LightGbm(Stream)</c>. Tree weights are multiplied into
    /// the leaf values and the base score is added to the first tree's leaves (LightGBM has no separate bias), so the
    /// raw score LightGBM or ML.NET computes is <see cref="TreeEnsembleModel.Score"/> and ML.NET's probability is σ(score). Every split is
    /// written with missing type NaN and its default direction.
    /// </summary>
    /// <remarks>
    /// ML.NET does not read LightGBM's default direction directly: it replaces a NaN by <c>threshold</c> (default left)
    /// or <c>threshold + 1</c> (default right) in double, rounds that to float, and drops the whole substitution for a
    /// tree when every substituted value is 0. The writer compensates where it can without changing any decision on
    /// float inputs: a default-right threshold so large that <c>t + 1</c> rounds back to <c>t</c> is written as a double
    /// just inside <c>t</c>'s rounding interval, and in a tree whose substitutes would all be 0 a default-right split at
    /// <c>t = −1</c> is written as <c>−1 + 1e−9</c>. The one case it cannot cover exactly — a tree made only of
    /// default-left splits at threshold 0 — is written with threshold <c>float.Epsilon</c>, which changes the decision for
    /// the single input value <c>float.Epsilon</c>. Models trained here never produce thresholds of exactly 0.
    /// Thresholds must be finite.
    /// </remarks>
    public static string ToLightGbmModelText(this TreeEnsembleModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n");
        sb.Append("max_feature_idx=").Append(model.FeatureCount - 1).Append('\n');
        sb.Append("objective=binary sigmoid:1\n");
        sb.Append("feature_names=").AppendJoin(' ', Enumerable.Range(0, model.FeatureCount).Select(i => LightGbmFeatureName(model, i))).Append('\n');
        sb.Append("feature_infos=").AppendJoin(' ', Enumerable.Repeat("none", model.FeatureCount)).Append('\n');
        sb.Append('\n');

        int treeCount = Math.Max(1, model.Trees.Count);
        for (int t = 0; t < treeCount; t++)
        {
            var tree = model.Trees.Count == 0 ? DecisionTree.Constant(0) : model.Trees[t];
            double weight = model.Trees.Count == 0 ? 1 : model.TreeWeights[t];
            double shift = t == 0 ? model.BaseScore : 0;
            var leaves = new double[tree.LeafCount];
            for (int i = 0; i < leaves.Length; i++) leaves[i] = weight * tree.LeafValue[i] + shift;

            sb.Append("Tree=").Append(t).Append('\n');
            sb.Append("num_leaves=").Append(tree.LeafCount).Append('\n');
            sb.Append("num_cat=0\n");
            int n = tree.NodeCount;
            if (n > 0)
            {
                var thresholds = LightGbmThresholds(tree, t);
                sb.Append("split_feature=").AppendJoin(' ', tree.SplitFeature.ToArray()).Append('\n');
                sb.Append("split_gain=").AppendJoin(' ', Enumerable.Repeat("0", n)).Append('\n');
                sb.Append("threshold=").AppendJoin(' ', thresholds.Select(x => x.ToString("R", inv))).Append('\n');
                // decision_type bits: 1 categorical, 2 default left, (missing type << 2) with NaN = 2.
                sb.Append("decision_type=").AppendJoin(' ', tree.DefaultLeft.ToArray().Select(l => l ? "10" : "8")).Append('\n');
                sb.Append("left_child=").AppendJoin(' ', tree.LeftChild.ToArray()).Append('\n');
                sb.Append("right_child=").AppendJoin(' ', tree.RightChild.ToArray()).Append('\n');
            }
            sb.Append("leaf_value=").AppendJoin(' ', leaves.Select(x => x.ToString("R", inv))).Append('\n');
            sb.Append("leaf_weight=").AppendJoin(' ', Enumerable.Repeat("0", leaves.Length)).Append('\n');
            sb.Append("leaf_count=").AppendJoin(' ', Enumerable.Repeat("0", leaves.Length)).Append('\n');
            if (n > 0)
            {
                sb.Append("internal_value=").AppendJoin(' ', Enumerable.Repeat("0", n)).Append('\n');
                sb.Append("internal_weight=").AppendJoin(' ', Enumerable.Repeat("0", n)).Append('\n');
                sb.Append("internal_count=").AppendJoin(' ', Enumerable.Repeat("0", n)).Append('\n');
            }
            sb.Append("is_linear=0\nshrinkage=1\n\n\n");
        }
        sb.Append("end of trees\n\nfeature_importances:\n\n");
        // ML.NET reads the parameters block into its trainer options: sigmoid 1 makes its Platt calibrator σ(score);
        // categorical_feature must be present (empty).
        sb.Append("parameters:\n[boosting: gbdt]\n[objective: binary]\n[sigmoid: 1]\n[categorical_feature: ]\nend of parameters\n\n");
        sb.Append("pandas_categorical:null\n");
        return sb.ToString();
    }

    private static string LightGbmFeatureName(TreeEnsembleModel model, int i)
    {
        var name = model.FeatureNames?[i];
        if (string.IsNullOrEmpty(name)) return "Column_" + i.ToString(CultureInfo.InvariantCulture);
        var chars = name.Select(c => char.IsWhiteSpace(c) || c is '=' or ':' or '[' or ']' or ',' or '"' or '{' or '}' ? '_' : c).ToArray();
        return new string(chars);
    }

    private static double[] LightGbmThresholds(DecisionTree tree, int treeIndex)
    {
        int n = tree.NodeCount;
        var thr = new double[n];
        for (int i = 0; i < n; i++)
        {
            float t = tree.Threshold[i];
            if (!float.IsFinite(t)) throw new NotSupportedException($"tree {treeIndex} node {i}: threshold {t} cannot be written as LightGBM text");
            thr[i] = t;
            if (!tree.DefaultLeft[i] && (float)(thr[i] + 1.0) <= t)
            {
                // |t| so large that ML.NET's substitute t + 1 rounds back to t: use a double that still rounds to t
                // (so no float input is decided differently) but whose + 1 rounds above it.
                double ulp = (double)MathF.BitIncrement(t) - t;
                thr[i] = t + ulp / 2 - 0.5;
                if ((float)thr[i] != t || (float)(thr[i] + 1.0) <= t)
                    throw new NotSupportedException($"tree {treeIndex} node {i}: cannot encode default-right threshold {t} for ML.NET");
            }
        }
        bool allZero = true;
        for (int i = 0; i < n && allZero; i++) allZero = (float)(tree.DefaultLeft[i] ? thr[i] : thr[i] + 1.0) == 0f;
        if (allZero)
        {
            int rightAtMinusOne = Array.FindIndex(Enumerable.Range(0, n).ToArray(), i => !tree.DefaultLeft[i]);
            if (rightAtMinusOne >= 0) thr[rightAtMinusOne] = -1.0 + 1e-9; // still rounds to −1f; substitute 1e−9 ≠ 0
            else for (int i = 0; i < n; i++) thr[i] = float.Epsilon;       // only default-left splits at 0
        }
        return thr;
    }

    /// <summary>
    /// Loads the ensemble into an ordinary ML.NET model through the public <c>LightGbm(Stream)</c> trainer overload
    /// (no training happens; the stream is parsed). The result can be saved with <c>MLContext.Model.Save</c>, loaded
    /// back, and used with a <c>PredictionEngine</c>: its <c>Score</c> is <see cref="TreeEnsembleModel.Score"/> and its
    /// <c>Probability</c> σ(score). The input is the <see cref="FeatureData.FeaturesColumn"/> float vector of
    /// <see cref="TreeEnsembleModel.FeatureCount"/> slots.
    /// </summary>
    public static BinaryPredictionTransformer<CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator>> ToMlNetModel(
        this TreeEnsembleModel model, MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(model);
        return LoadLightGbmText(mlContext, Encoding.UTF8.GetBytes(model.ToLightGbmModelText()), model.FeatureCount, model.FeatureNames);
    }

    /// <summary>
    /// Loads a tree model file of the federation store (a round's <c>global.cfm</c> or a site's personalized model)
    /// as an ordinary ML.NET model, as <see cref="ToMlNetModel(TreeEnsembleModel, MLContext)"/> does: a
    /// <c>tree-ensemble</c> payload (what the round aggregator writes) is parsed and exported as LightGBM text, a
    /// <c>lightgbm-text</c> payload is handed to ML.NET as it is. The input is a float vector of the header's
    /// <c>dimension</c> slots.
    /// </summary>
    public static BinaryPredictionTransformer<CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator>> ToMlNetModel(
        this ModelFile model, MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Header.PayloadEncoding switch
        {
            PayloadEncodings.TreeEnsemble => model.TreeEnsemble.ToMlNetModel(mlContext),
            PayloadEncodings.LightGbmText => LoadLightGbmText(mlContext, model.OpaquePayload.ToArray(), model.Header.Dimension, null),
            _ => throw new ArgumentException($"the model's payload is {model.Header.PayloadEncoding}, not a tree model ({PayloadEncodings.TreeEnsemble} or {PayloadEncodings.LightGbmText})", nameof(model)),
        };
    }

    /// <summary>
    /// The ensemble of a tree model file: a <c>tree-ensemble</c> payload as it is; a <c>lightgbm-text</c> payload (a
    /// personalized model) parsed by ML.NET and extracted (tree weights folded into leaves), so it scores as ML.NET does.
    /// </summary>
    public static TreeEnsembleModel ToTreeEnsemble(this ModelFile model, MLContext mlContext, IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Header.PayloadEncoding == PayloadEncodings.TreeEnsemble
            ? model.TreeEnsemble
            : FromLightGbm(model.ToMlNetModel(mlContext), featureNames);
    }

    private static BinaryPredictionTransformer<CalibratedModelParametersBase<LightGbmBinaryModelParameters, PlattCalibrator>> LoadLightGbmText(
        MLContext mlContext, byte[] text, int featureCount, IReadOnlyList<string>? featureNames)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        using var stream = new MemoryStream(text, writable: false);
        var trainer = mlContext.BinaryClassification.Trainers.LightGbm(stream, FeatureData.FeaturesColumn);
        return trainer.Fit(new FeatureMatrix([], featureCount, [], columnNames: featureNames).ToDataView());
    }

    /// <summary>Round trip through ML.NET: the ensemble ML.NET builds from <see cref="ToLightGbmModelText"/>,
    /// extracted again (tree weights folded into leaves, base score inside the first tree).</summary>
    internal static TreeEnsembleModel RoundTripThroughMlNet(this TreeEnsembleModel model, MLContext mlContext) =>
        FromLightGbm(model.ToMlNetModel(mlContext), model.FeatureNames);
}
