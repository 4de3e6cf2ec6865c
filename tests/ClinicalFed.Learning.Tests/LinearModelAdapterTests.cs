using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;

namespace ClinicalFed.Learning.Tests;

public class LinearModelAdapterTests
{
    [Fact]
    public void Reflection_guard_all_ml_net_internals_the_adapter_needs_are_present()
    {
        // Fails with MlNetCompatibilityException naming the missing constructor or type if ML.NET changes.
        string version = LinearModelAdapter.VerifyCompatibility();
        Assert.StartsWith(LinearModelAdapter.TestedMlNetVersion, version);
    }

    [Fact]
    public void Reflection_guard_failure_names_the_type_the_signature_and_what_to_update()
    {
        var e = Assert.Throws<MlNetCompatibilityException>(() =>
            LinearModelAdapter.FindConstructor(typeof(PlattCalibrator), "PlattCalibrator(env, slope)", typeof(double)));
        Assert.Contains("Microsoft.ML.Calibrators.PlattCalibrator", e.Message);
        Assert.Contains("PlattCalibrator(env, slope)", e.Message);
        Assert.Contains("Constructors found", e.Message);
        Assert.Contains("LinearModelAdapter.cs", e.Message);
        Assert.Contains(LinearModelAdapter.TestedMlNetVersion, e.Message);

        var missingType = Assert.Throws<MlNetCompatibilityException>(() =>
            LinearModelAdapter.FindType(typeof(PlattCalibrator).Assembly, "Microsoft.ML.Calibrators.NoSuchModel`2", "the calibrated model"));
        Assert.Contains("NoSuchModel", missingType.Message);
    }

    [Fact]
    public void Weights_in_give_a_transformer_scoring_sigmoid_of_w_x_plus_b_and_weights_come_back_out()
    {
        var ml = new MLContext(seed: 0);
        FeatureMatrix data = TestData.Logistic(300, 7, seed: 3);
        var weights = new LinearWeights([0.9f, -1.3f, 0.05f, 2.2f, -0.4f, 0f, 1.1f], -0.6f);
        BinaryPredictionTransformer<CalibratedModelParametersBase<LinearBinaryModelParameters, PlattCalibrator>> model =
            LinearModelAdapter.CreateTransformer(ml, weights);

        IDataView scored = model.Transform(data.ToDataView());
        float[] scores = scored.GetColumn<float>(FeatureData.ScoreColumn).ToArray();
        float[] probabilities = TestData.Probabilities(scored);
        bool[] predicted = scored.GetColumn<bool>(FeatureData.PredictedLabelColumn).ToArray();
        for (int i = 0; i < data.RowCount; i++)
        {
            double z = weights.Score(data.Features(i));
            Assert.Equal(z, scores[i], 1e-4);
            Assert.Equal(LinearWeights.Sigmoid(z), probabilities[i], 1e-5);
            Assert.Equal(z > 0, predicted[i]);
        }

        Assert.Equal(weights, LinearModelAdapter.GetWeights(model));
        Assert.Equal(weights, LinearModelAdapter.GetWeights(model.Model));
        Assert.Equal(weights, LinearModelAdapter.GetWeights(model.Model.SubModel));
        Assert.Equal((-1.0, 0.0), (model.Model.Calibrator.Slope, model.Model.Calibrator.Offset));
    }

    [Fact]
    public void Saved_and_loaded_model_keeps_its_scores_and_weights()
    {
        var ml = new MLContext(seed: 0);
        FeatureMatrix data = TestData.Logistic(200, 5, seed: 4);
        FeatureDataView view = data.ToDataView();
        var weights = new LinearWeights([1f, -2f, 0.5f, 0.25f, -0.125f], 0.75f);
        var model = LinearModelAdapter.CreateTransformer(ml, weights, trainingSchema: view.Schema);
        float[] before = TestData.Probabilities(model.Transform(view));

        using var stream = new MemoryStream();
        ml.Model.Save(model, view.Schema, stream);
        stream.Position = 0;
        ITransformer loaded = new MLContext(seed: 1).Model.Load(stream, out DataViewSchema inputSchema);

        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 5), inputSchema[FeatureData.FeaturesColumn].Type);
        Assert.Equal(before, TestData.Probabilities(loaded.Transform(view)));
        Assert.Equal(weights, LinearModelAdapter.GetWeights(loaded));
    }

    [Fact]
    public void A_non_identity_platt_calibrator_is_folded_into_the_weights()
    {
        var ml = new MLContext(seed: 0);
        FeatureMatrix data = TestData.Logistic(100, 3, seed: 5);
        var raw = new LinearWeights([1f, -1f, 0.5f], 0.2f);
        var calibrated = LinearModelAdapter.CreateCalibratedModel(ml, raw, slope: -2, offset: 0.5);
        var model = LinearModelAdapter.CreateTransformer(ml, calibrated, FeatureData.FeaturesColumn, null);
        float[] probabilities = TestData.Probabilities(model.Transform(data.ToDataView()));
        LinearWeights folded = LinearModelAdapter.GetWeights(calibrated);
        for (int i = 0; i < data.RowCount; i++)
        {
            Assert.Equal(probabilities[i], folded.Probability(data.Features(i)), 1e-5);
        }
    }

    [Fact]
    public void Transformer_from_an_lbfgs_fit_and_from_the_adapter_have_the_same_type()
    {
        var ml = new MLContext(seed: 0);
        IDataView data = TestData.Logistic(200, 4, seed: 6).ToDataView();
        ITransformer trained = ml.BinaryClassification.Trainers.LbfgsLogisticRegression().Fit(data);
        ITransformer built = LinearModelAdapter.CreateTransformer(ml, LinearModelAdapter.GetWeights(trained));
        Assert.Equal(trained.GetType(), built.GetType());
        Assert.Equal(
            TestData.Probabilities(trained.Transform(data)),
            TestData.Probabilities(built.Transform(data)));
    }

    [Fact]
    public void Mismatched_feature_columns_are_refused_with_a_clear_message()
    {
        var ml = new MLContext(seed: 0);
        IDataView threeWide = TestData.Logistic(10, 3, seed: 7).ToDataView();
        var e = Assert.Throws<ArgumentException>(() => LinearModelAdapter.CreateTransformer(ml, LinearWeights.Zeros(4), trainingSchema: threeWide.Schema));
        Assert.Contains("Vector<Single, 4>", e.Message);
        Assert.Throws<ArgumentException>(() => LinearModelAdapter.GetWeights(ml.Transforms.CopyColumns("a", "Features").Fit(threeWide)));
    }
}
