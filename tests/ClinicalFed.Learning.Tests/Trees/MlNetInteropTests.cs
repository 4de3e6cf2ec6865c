using System.Runtime.InteropServices;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Testing;
using ClinicalFed.Trees;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace ClinicalFed.Learning.Tests.Trees;

public class MlNetInteropTests
{
    private static readonly MlNetTreeOptions Small = new() { NumberOfTrees = 12, NumberOfLeaves = 8, MinimumExampleCountPerLeaf = 10, NumberOfThreads = 1, Seed = 3 };

    public sealed class Row
    {
        public float[] Features { get; set; } = [];
    }

    public sealed class Prediction
    {
        public float Score { get; set; }
        public float Probability { get; set; }
    }

    internal static PredictionEngine<Row, Prediction> Engine(MLContext ml, ITransformer model, int featureCount)
    {
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
        return ml.Model.CreatePredictionEngine<Row, Prediction>(model, inputSchemaDefinition: schema);
    }

    [Fact]
    public void FastTree_extraction_reproduces_MlNet_probabilities_including_missing_values()
    {
        var site = TreeTestData.Imputed(TreeTestData.Site("A", 2000, seed: 11));
        var ml = new MLContext(1);
        var trainer = ml.BinaryClassification.Trainers.FastTree(new Microsoft.ML.Trainers.FastTree.FastTreeBinaryTrainer.Options
        { NumberOfTrees = 10, NumberOfLeaves = 8, NumberOfThreads = 1, LearningRate = 0.2 });
        var transformer = trainer.Fit(site.ToDataView());
        var model = TreeEnsembleMlNet.FromFastTree(transformer, TreeTestData.Names);
        Assert.Equal(10, model.Trees.Count);
        Assert.Equal(TreeTestData.Features, model.FeatureCount);

        var engine = Engine(ml, transformer, model.FeatureCount);
        double slope = transformer.Model.Calibrator.Slope;
        int nanRows = 0;
        foreach (var row in TreeTestRows.Random(400, 7, model))
        {
            if (row.Any(float.IsNaN)) nanRows++;
            var p = engine.Predict(new Row { Features = row });
            Assert.Equal(-slope * p.Score, model.Score(row), 1e-5);   // calibrator folded in: log-odds
            Assert.Equal(p.Probability, model.Probability(row), 1e-5);
        }
        Assert.True(nanRows > 100);
    }

    [Fact]
    public void FastTree_trainer_rejects_missing_values_instead_of_dropping_rows()
    {
        var site = TreeTestData.Site("A", 300, seed: 1, missingRate: 0.1);
        var e = Assert.Throws<ArgumentException>(() => MlNetTreeTrainer.TrainFastTree(site, Small));
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void LightGbm_extraction_reproduces_MlNet_including_learned_missing_directions()
    {
        var site = TreeTestData.Site("A", 3000, seed: 12, missingRate: 0.3);
        var ml = new MLContext(1);
        var transformer = ml.BinaryClassification.Trainers.LightGbm(new Microsoft.ML.Trainers.LightGbm.LightGbmBinaryTrainer.Options
        { NumberOfIterations = 15, NumberOfLeaves = 8, NumberOfThreads = 1, MinimumExampleCountPerLeaf = 20, Seed = 1, Deterministic = true })
            .Fit(site.ToDataView());
        var model = TreeEnsembleMlNet.FromLightGbm(transformer);
        // LightGBM learned NaN routing for the features with missing values: both directions must occur.
        var nanNodes = model.Trees.SelectMany(t => Enumerable.Range(0, t.NodeCount).Where(i => t.SplitFeature[i] >= 5).Select(i => t.DefaultLeft[i])).ToList();
        Assert.Contains(true, nanNodes);

        var engine = Engine(ml, transformer, model.FeatureCount);
        double slope = transformer.Model.Calibrator.Slope; // ML.NET's default LightGBM sigmoid is 0.5
        foreach (var row in TreeTestRows.Random(400, 8, model, nanRate: 0.3))
        {
            var p = engine.Predict(new Row { Features = row });
            Assert.Equal(-slope * p.Score, model.Score(row), 1e-5);
            Assert.Equal(p.Probability, model.Probability(row), 1e-5);
        }
    }

    public static TheoryData<string> TextCases => ["fasttree-bagged", "booster-missing", "lightgbm", "edge-thresholds", "constant"];

    internal static TreeEnsembleModel TextCase(string name)
    {
        var opts = Small;
        switch (name)
        {
            case "fasttree-bagged":
                var a = MlNetTreeTrainer.TrainFastTree(TreeTestData.Imputed(TreeTestData.Site("A", 800, 21)), opts);
                var b = MlNetTreeTrainer.TrainFastTree(TreeTestData.Imputed(TreeTestData.Site("B", 500, 22, shift: 0.5)), opts);
                return TreeBagging.Merge([new SiteEnsemble(a, 800), new SiteEnsemble(b, 500)]);
            case "booster-missing":
                return GradientTreeBooster.Train(TreeTestData.Site("A", 2000, 23, missingRate: 0.4),
                    new TreeBoostingOptions { NumberOfTrees = 20, NumberOfLeaves = 8, MaxBins = 32 });
            case "lightgbm":
                return MlNetTreeTrainer.TrainLightGbm(TreeTestData.Site("A", 2000, 24, missingRate: 0.3), opts);
            case "edge-thresholds":
                // Thresholds ML.NET's NaN substitution gets wrong if written naively: large default-right thresholds
                // (t + 1 rounds back to t in float), and trees whose substitutes would all be 0.
                var big = new DecisionTree([0, 1], [3.0e7f, -5.5e9f], [false, false], [1, ~0], [~1, ~2], [0.1, -0.2, 0.3]);
                var zeros = new DecisionTree([2, 3], [0f, -1f], [true, false], [1, ~0], [~1, ~2], [0.4, -0.5, 0.6]);
                var rightOnly = new DecisionTree([4], [-1f], [false], [~0], [~1], [-0.7, 0.8]);
                var leftZeroOnly = new DecisionTree([5], [0f], [true], [~0], [~1], [0.9, -0.3]);
                return new TreeEnsembleModel(TreeTestData.Features, 0.2, [big, zeros, rightOnly, leftZeroOnly], [1.5, 0.5, 1.0, 1.0], TreeTestData.Names);
            case "constant":
                return TreeEnsembleModel.Constant(TreeTestData.Features, -1.3);
            default: throw new ArgumentException(name);
        }
    }

    [Theory]
    [MemberData(nameof(TextCases))]
    public void LightGbm_text_loads_into_MlNet_and_survives_save_load_with_equal_scores(string name)
    {
        var model = TextCase(name);
        var ml = new MLContext(0);
        var transformer = model.ToMlNetModel(ml);
        var path = Path.Combine(Path.GetTempPath(), $"cf-trees-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(transformer, new FeatureMatrix([], model.FeatureCount, []).ToDataView().Schema, path);
            var loaded = ml.Model.Load(path, out var inputSchema);
            Assert.Equal(model.FeatureCount, ((VectorDataViewType)inputSchema["Features"].Type).Size);
            var engine = Engine(ml, loaded, model.FeatureCount);
            var rows = TreeTestRows.Random(500, 31, model, nanRate: 0.25);
            rows = [.. rows, rows[0].Select(_ => float.NaN).ToArray()];
            foreach (var row in rows)
            {
                var p = engine.Predict(new Row { Features = row });
                Assert.Equal(model.Score(row), p.Score, 1e-5);
                Assert.Equal(model.Probability(row), p.Probability, 1e-5);
            }
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [MemberData(nameof(TextCases))]
    public void LightGbm_text_round_trips_through_MlNet_extraction(string name)
    {
        var model = TextCase(name);
        var back = model.RoundTripThroughMlNet(new MLContext(0));
        foreach (var row in TreeTestRows.Random(300, 41, model, nanRate: 0.25))
            Assert.Equal(model.Score(row), back.Score(row), 1e-9);
    }

    [Theory]
    [MemberData(nameof(TextCases))]
    public void LightGbm_text_is_valid_for_native_LightGBM(string name)
    {
        var model = TextCase(name);
        var rows = TreeTestRows.Random(300, 51, model, nanRate: 0.25);
        var raw = NativeLightGbm.PredictRaw(model.ToLightGbmModelText(), rows, model.FeatureCount);
        for (int i = 0; i < rows.Length; i++)
            Assert.Equal(model.Score(rows[i]), raw[i], 1e-9);
    }

    /// <summary>The LightGBM C API (lib_lightgbm ships with Microsoft.ML.LightGbm): an independent parser of the text.</summary>
    private static class NativeLightGbm
    {
        [DllImport("lib_lightgbm", CallingConvention = CallingConvention.Cdecl)]
        private static extern int LGBM_BoosterLoadModelFromString([MarshalAs(UnmanagedType.LPUTF8Str)] string modelString, out int numIterations, out IntPtr handle);

        [DllImport("lib_lightgbm", CallingConvention = CallingConvention.Cdecl)]
        private static extern int LGBM_BoosterPredictForMat(IntPtr handle, float[] data, int dataType, int nrow, int ncol, int isRowMajor, int predictType,
            int startIteration, int numIteration, [MarshalAs(UnmanagedType.LPUTF8Str)] string parameter, out long outLength, double[] result);

        [DllImport("lib_lightgbm", CallingConvention = CallingConvention.Cdecl)]
        private static extern int LGBM_BoosterFree(IntPtr handle);

        [DllImport("lib_lightgbm", CallingConvention = CallingConvention.Cdecl)]
        private static extern IntPtr LGBM_GetLastError();

        public static double[] PredictRaw(string modelText, float[][] rows, int columns)
        {
            Check(LGBM_BoosterLoadModelFromString(modelText, out _, out var handle));
            try
            {
                var data = rows.SelectMany(r => r).ToArray();
                var result = new double[rows.Length];
                const int Float32 = 0, RawScore = 1;
                Check(LGBM_BoosterPredictForMat(handle, data, Float32, rows.Length, columns, 1, RawScore, 0, -1, "num_threads=1", out long n, result));
                Assert.Equal(rows.Length, n);
                return result;
            }
            finally { LGBM_BoosterFree(handle); }
        }

        private static void Check(int rc)
        {
            if (rc != 0) throw new InvalidOperationException("LightGBM: " + Marshal.PtrToStringUTF8(LGBM_GetLastError()));
        }
    }
}
