using Microsoft.ML;

namespace ClinicalFed.Learning.Tests;

public class MetricsTests
{
    private static readonly float[] Scores = [0.1f, 0.4f, 0.35f, 0.8f];
    private static readonly float[] Labels = [0, 0, 1, 1];

    [Fact]
    public void Auroc_of_the_scikit_learn_example_is_three_quarters()
    {
        // Pairs (pos, neg): (0.35, 0.1) ✓, (0.35, 0.4) ✗, (0.8, 0.1) ✓, (0.8, 0.4) ✓ → 3/4.
        Assert.Equal(0.75, Metrics.Auroc(Scores, Labels), 12);
    }

    [Fact]
    public void Average_precision_of_the_scikit_learn_example_is_five_sixths()
    {
        // Thresholds high→low: 0.8 (P 1, R ½), 0.4 (P ½, R ½), 0.35 (P ⅔, R 1), 0.1 → ½·1 + ½·⅔ = 0.8333…
        Assert.Equal(5.0 / 6.0, Metrics.AveragePrecision(Scores, Labels), 12);
    }

    [Fact]
    public void Tied_scores_count_half_in_auroc_and_form_one_threshold_in_average_precision()
    {
        float[] scores = [0.5f, 0.5f, 0.2f, 0.8f];
        float[] labels = [1, 0, 0, 1];
        // Pairs: (0.5, 0.5) ½, (0.5, 0.2) 1, (0.8, 0.5) 1, (0.8, 0.2) 1 → 3.5 / 4.
        Assert.Equal(0.875, Metrics.Auroc(scores, labels), 12);
        // 0.8: P 1, R ½ → ½; 0.5 (one positive, one negative together): P ⅔, R 1 → ½·⅔.
        Assert.Equal(0.5 + 1.0 / 3.0, Metrics.AveragePrecision(scores, labels), 12);

        float[] allTied = [0.3f, 0.3f, 0.3f, 0.3f];
        Assert.Equal(0.5, Metrics.Auroc(allTied, labels), 12);
        Assert.Equal(0.5, Metrics.AveragePrecision(allTied, labels), 12);
    }

    [Fact]
    public void Perfect_inverted_and_single_class_rankings()
    {
        float[] labels = [0, 0, 1, 1];
        Assert.Equal(1.0, Metrics.Auroc([0.1f, 0.2f, 0.3f, 0.4f], labels));
        Assert.Equal(0.0, Metrics.Auroc([0.4f, 0.3f, 0.2f, 0.1f], labels));
        Assert.Equal(1.0, Metrics.AveragePrecision([0.1f, 0.2f, 0.3f, 0.4f], labels));
        Assert.True(double.IsNaN(Metrics.Auroc([0.1f, 0.2f], [1f, 1f])));
        Assert.True(double.IsNaN(Metrics.AveragePrecision([0.1f, 0.2f], [0f, 0f])));
    }

    [Fact]
    public void Auroc_equals_brute_force_pair_counting_with_many_ties()
    {
        var rng = new Random(5);
        int n = 700;
        var scores = new float[n];
        var labels = new float[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = rng.NextDouble() < 0.3 ? 1 : 0;
            scores[i] = MathF.Round((float)(rng.NextDouble() + 0.3 * labels[i]), 1); // ~14 distinct values
        }

        double wins = 0;
        long pairs = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                if (labels[i] == 1 && labels[j] == 0)
                {
                    pairs++;
                    wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
                }
            }
        }

        Assert.Equal(wins / pairs, Metrics.Auroc(scores, labels), 12);
    }

    [Fact]
    public void Average_precision_equals_the_definition_over_distinct_thresholds()
    {
        var rng = new Random(6);
        int n = 300;
        var scores = new float[n];
        var labels = new float[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = rng.NextDouble() < 0.2 ? 1 : 0;
            scores[i] = MathF.Round((float)(rng.NextDouble() + 0.4 * labels[i]), 2);
        }

        // Straight from the definition: for each distinct threshold t (high → low), precision and recall of "score ≥ t".
        int positives = labels.Count(l => l == 1);
        double ap = 0, previousRecall = 0;
        foreach (float t in scores.Distinct().OrderDescending())
        {
            int tp = 0, predicted = 0;
            for (int i = 0; i < n; i++)
            {
                if (scores[i] >= t)
                {
                    predicted++;
                    tp += labels[i] == 1 ? 1 : 0;
                }
            }

            double recall = (double)tp / positives;
            ap += (recall - previousRecall) * tp / predicted;
            previousRecall = recall;
        }

        Assert.Equal(ap, Metrics.AveragePrecision(scores, labels), 12);
    }

    [Fact]
    public void Roc_curve_has_one_point_per_distinct_score()
    {
        IReadOnlyList<RocPoint> roc = Metrics.RocCurve(Scores, Labels);
        // Thresholds +∞, 0.8, 0.4, 0.35, 0.1.
        (double Fpr, double Tpr)[] expected = [(0, 0), (0, 0.5), (0.5, 0.5), (0.5, 1), (1, 1)];
        Assert.Equal(expected, roc.Select(p => (p.FalsePositiveRate, p.TruePositiveRate)).ToArray());
        Assert.Equal(double.PositiveInfinity, roc[0].Threshold);
        Assert.Equal(0.35f, (float)roc[3].Threshold);
    }

    [Fact]
    public void Roc_curve_is_down_sampled_to_200_points_keeping_its_shape()
    {
        var rng = new Random(7);
        int n = 20_000;
        var scores = new float[n];
        var labels = new float[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = rng.NextDouble() < 0.1 ? 1 : 0;
            scores[i] = (float)(rng.NextDouble() + 0.5 * labels[i]);
        }

        IReadOnlyList<RocPoint> roc = Metrics.RocCurve(scores, labels);
        Assert.InRange(roc.Count, 150, Metrics.DefaultMaxRocPoints);
        Assert.Equal((0.0, 0.0), (roc[0].FalsePositiveRate, roc[0].TruePositiveRate));
        Assert.Equal((1.0, 1.0), (roc[^1].FalsePositiveRate, roc[^1].TruePositiveRate));
        double area = 0;
        for (int i = 1; i < roc.Count; i++)
        {
            Assert.True(roc[i].FalsePositiveRate >= roc[i - 1].FalsePositiveRate && roc[i].TruePositiveRate >= roc[i - 1].TruePositiveRate);
            Assert.True(roc[i].Threshold < roc[i - 1].Threshold);
            area += (roc[i].FalsePositiveRate - roc[i - 1].FalsePositiveRate) * (roc[i].TruePositiveRate + roc[i - 1].TruePositiveRate) / 2;
        }

        Assert.Equal(Metrics.Auroc(scores, labels), area, 0.005);
        Assert.True(Metrics.RocCurve(scores, labels, maxPoints: 10).Count <= 10);
    }

    [Fact]
    public void Calibration_bins_hold_mean_prediction_observed_rate_and_count()
    {
        float[] p = [0.05f, 0.15f, 0.12f, 0.95f, 1.0f];
        float[] y = [0, 1, 0, 1, 1];
        IReadOnlyList<CalibrationBin> bins = Metrics.CalibrationBins(p, y);
        Assert.Equal(10, bins.Count);
        Assert.Equal(new CalibrationBin(0, 0.1, 0.05f, 0.0, 1), bins[0]);
        Assert.Equal(2, bins[1].Count);
        Assert.Equal((0.15f + 0.12f) / 2.0, bins[1].MeanPredicted!.Value, 6);
        Assert.Equal(0.5, bins[1].ObservedRate);
        Assert.Equal(2, bins[9].Count); // 1.0 falls in the last bin
        Assert.Equal((0.95f + 1.0f) / 2.0, bins[9].MeanPredicted!.Value, 6);
        Assert.Equal(1.0, bins[9].ObservedRate);
        Assert.All(bins.Skip(2).Take(7), b => Assert.Equal(new CalibrationBin(b.Lower, b.Upper, null, null, 0), b));
    }

    [Fact]
    public void Log_loss_and_brier_by_hand()
    {
        float[] p = [0.8f, 0.3f];
        float[] y = [1, 0];
        Assert.Equal(-(Math.Log(0.8f) + Math.Log(1 - 0.3f)) / 2, Metrics.LogLoss(p, y), 12); // 0.2899…
        Assert.Equal((0.2f * 0.2f + 0.3f * 0.3f) / 2.0, Metrics.Brier(p, y), 6); // 0.065
        // Certain and wrong is clipped, not infinite.
        Assert.Equal(-Math.Log(Metrics.LogLossEpsilon), Metrics.LogLoss([0f], [1f]), 6);
    }

    [Fact]
    public void Evaluate_bundles_everything_and_rejects_bad_input()
    {
        BinaryMetrics m = Metrics.Evaluate(Scores, Labels);
        Assert.Equal((4, 2, 2), (m.Count, m.Positives, m.Negatives));
        Assert.Equal(0.75, m.Auroc, 12);
        Assert.Equal(5.0 / 6.0, m.Auprc, 12);
        Assert.Equal(Metrics.LogLoss(Scores, Labels), m.LogLoss);
        Assert.Equal(Metrics.Brier(Scores, Labels), m.Brier);
        Assert.Equal(5, m.Roc.Count);
        // ECE: bins 1 (0.1, y0), 3 (0.35, y1), 4 (0.4, y0), 8 (0.8, y1): (0.1 + 0.65 + 0.4 + 0.2) / 4.
        Assert.Equal((0.1 + 0.65 + 0.4 + 0.2) / 4, m.ExpectedCalibrationError, 6);

        Assert.Throws<ArgumentException>(() => Metrics.Evaluate([0.5f], [2f]));
        Assert.Throws<ArgumentException>(() => Metrics.Evaluate([1.5f], [1f]));
        Assert.Throws<ArgumentException>(() => Metrics.Auroc([0.5f, 0.1f], [1f]));
    }

    [Fact]
    public void Auroc_agrees_with_ml_net_on_a_scored_data_view()
    {
        var ml = new MLContext(seed: 1);
        FeatureMatrix data = TestData.Logistic(2000, 6, seed: 11);
        var model = LinearModelAdapter.CreateTransformer(ml, new LinearWeights(TestData.TrueWeights(6, 1.5f), -1f));
        IDataView scored = model.Transform(data.ToDataView());
        BinaryMetrics ours = Metrics.Evaluate(scored);
        var theirs = ml.BinaryClassification.Evaluate(scored);
        Assert.Equal(theirs.AreaUnderRocCurve, ours.Auroc, 6);
        // ML.NET reports log-loss in bits (log base 2); ours is in nats, as scikit-learn's.
        Assert.Equal(theirs.LogLoss, ours.LogLoss / Math.Log(2), 4);
    }
}
