using Microsoft.ML;

namespace ClinicalFed.Learning.Tests;

public class FederatedLbfgsLogisticTests
{
    private static readonly FeatureMatrix Data = TestData.Logistic(4000, 8, seed: 21);

    private static FederatedLbfgsOptions Tight(float l2 = 1e-3f) =>
        new() { L2 = l2, OptimizationTolerance = 1e-9f, MaximumNumberOfIterations = 500 };

    [Fact]
    public void Warm_start_from_the_optimum_changes_the_weights_only_slightly()
    {
        var ml = new MLContext(seed: 0);
        var trainer = new FederatedLbfgsLogistic(ml, Tight());
        LinearWeights optimum = trainer.FitWeights(Data.ToDataView(), null);
        LinearWeights again = trainer.FitWeights(Data.ToDataView(), optimum);
        Assert.True(optimum.MaxAbsDifference(again) < 1e-3, $"moved by {optimum.MaxAbsDifference(again)}");
        Assert.True(optimum.MaxAbsDifference(LinearWeights.Zeros(8)) > 0.3); // it did learn something
    }

    [Fact]
    public void Warm_start_is_really_used_and_never_leaks_into_a_later_cold_fit()
    {
        // One L-BFGS iteration: where it ends depends on where it starts.
        var options = Tight() with { MaximumNumberOfIterations = 1 };
        var ml = new MLContext(seed: 0);
        IDataView data = Data.ToDataView();
        var far = new LinearWeights(Enumerable.Repeat(3f, 8).ToArray(), 2f);

        var trainer = new FederatedLbfgsLogistic(ml, options);
        LinearWeights fromFar = trainer.FitWeights(data, far);
        LinearWeights coldAfterWarm = trainer.FitWeights(data, null);
        LinearWeights cold = new FederatedLbfgsLogistic(new MLContext(seed: 0), options).FitWeights(data, null);

        Assert.True(fromFar.MaxAbsDifference(cold) > 0.1, "warm start had no effect");
        // ML.NET 5.0.1 keeps the last initial model inside a trainer instance; a fresh trainer per fit avoids that.
        Assert.Equal(cold, coldAfterWarm);
    }

    [Fact]
    public void L2_is_on_the_mean_loss_scale_the_optimum_is_stationary()
    {
        const float lambda = 0.05f;
        var ml = new MLContext(seed: 0);
        LinearWeights w = new FederatedLbfgsLogistic(ml, Tight(lambda)).FitWeights(Data.ToDataView(), null);
        double[] g = MeanGradient(Data, w);
        for (int j = 0; j < w.Count; j++)
        {
            Assert.True(Math.Abs(g[j] + lambda * w.Weights[j]) < 2e-4, $"weight {j}: {g[j]} + λ·{w.Weights[j]}");
        }

        Assert.True(Math.Abs(g[^1]) < 2e-4, "the bias is not penalised");
    }

    [Fact]
    public void Example_weights_scale_the_penalty_by_their_sum()
    {
        const float lambda = 0.05f;
        var weights = new float[Data.RowCount];
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = i % 2 == 0 ? 0.5f : 3f;
        }

        var weighted = new FeatureMatrix(Data.Values, Data.Columns, Data.Labels, weights: weights);
        var ml = new MLContext(seed: 0);
        var trainer = new FederatedLbfgsLogistic(ml, Tight(lambda) with { ExampleWeightColumnName = FeatureData.WeightColumn });
        LinearWeights w = trainer.FitWeights(weighted.ToDataView(), null);
        double[] g = MeanGradient(weighted, w);
        for (int j = 0; j < w.Count; j++)
        {
            Assert.True(Math.Abs(g[j] + lambda * w.Weights[j]) < 2e-4, $"weight {j}: {g[j]} + λ·{w.Weights[j]}");
        }
    }

    [Fact]
    public void Works_as_an_ml_net_estimator_and_checks_the_global_width()
    {
        var ml = new MLContext(seed: 0);
        IDataView data = Data.ToDataView();
        var estimator = new FederatedLbfgsLogistic(ml, Tight(), globalWeights: LinearWeights.Zeros(8));
        SchemaShape output = estimator.GetOutputSchema(LinearModelAdapter.ToSchemaShape(data.Schema));
        Assert.Contains(output, c => c.Name == FeatureData.ProbabilityColumn);
        var model = estimator.Fit(data);
        Assert.InRange(Metrics.Evaluate(model.Transform(data)).Auroc, 0.75, 1);

        var e = Assert.Throws<ArgumentException>(() => estimator.Fit(data, LinearWeights.Zeros(5)));
        Assert.Contains("5 weights", e.Message);
    }

    /// <summary>Σ c_i (p_i − y_i)(x_i, 1) / Σ c_i.</summary>
    internal static double[] MeanGradient(FeatureMatrix data, LinearWeights w)
    {
        var g = new double[data.Columns + 1];
        double total = 0;
        for (int i = 0; i < data.RowCount; i++)
        {
            double c = data.Weight(i);
            double e = c * (w.Probability(data.Features(i)) - (data.Label(i) ? 1 : 0));
            ReadOnlySpan<float> x = data.Features(i);
            for (int j = 0; j < x.Length; j++)
            {
                g[j] += e * x[j];
            }

            g[^1] += e;
            total += c;
        }

        return g.Select(v => v / total).ToArray();
    }
}
