using Microsoft.ML;
using Microsoft.ML.Data;

namespace ClinicalFed.Learning;

/// <summary>One point of a ROC curve: the rates when every score ≥ <see cref="Threshold"/> is called positive.</summary>
public readonly record struct RocPoint(double FalsePositiveRate, double TruePositiveRate, double Threshold);

/// <summary>
/// One calibration bin: predictions in [<see cref="Lower"/>, <see cref="Upper"/>) (the last bin includes 1).
/// <see cref="MeanPredicted"/> and <see cref="ObservedRate"/> are null when the bin is empty.
/// </summary>
public readonly record struct CalibrationBin(double Lower, double Upper, double? MeanPredicted, double? ObservedRate, int Count);

/// <summary>The metrics of one set of predicted probabilities against labels.</summary>
public sealed record BinaryMetrics
{
    public required int Count { get; init; }
    public required int Positives { get; init; }
    public int Negatives => Count - Positives;

    /// <summary>Area under the ROC curve (exact, ties count half); NaN with a single class.</summary>
    public required double Auroc { get; init; }

    /// <summary>Average precision (step-wise area under the precision-recall curve, as scikit-learn); NaN without positives.</summary>
    public required double Auprc { get; init; }

    /// <summary>Mean log-loss (natural log) with probabilities clipped to [1e-15, 1 − 1e-15].</summary>
    public required double LogLoss { get; init; }

    /// <summary>Mean squared error of the probabilities.</summary>
    public required double Brier { get; init; }

    /// <summary>Expected calibration error over <see cref="Calibration"/>: Σ count/n · |mean predicted − observed rate|.</summary>
    public required double ExpectedCalibrationError { get; init; }

    /// <summary>ROC curve, down-sampled to at most <see cref="Metrics.DefaultMaxRocPoints"/> points.</summary>
    public required IReadOnlyList<RocPoint> Roc { get; init; }

    /// <summary>Ten equal-width calibration bins.</summary>
    public required IReadOnlyList<CalibrationBin> Calibration { get; init; }
}

/// <summary>
/// Binary classification metrics computed exactly from scores and labels. Labels are 0/1 floats (as in feature tables)
/// or booleans; scores for AUROC/AUPRC/ROC may be any real numbers, probabilities (log-loss, Brier, calibration) must be
/// in [0, 1].
/// </summary>
public static class Metrics
{
    /// <summary>The most points <see cref="RocCurve"/> returns by default (enough to plot).</summary>
    public const int DefaultMaxRocPoints = 200;

    /// <summary>The clipping used by <see cref="LogLoss"/>.</summary>
    public const double LogLossEpsilon = 1e-15;

    /// <summary>All metrics of probabilities against 0/1 labels.</summary>
    public static BinaryMetrics Evaluate(ReadOnlySpan<float> probabilities, ReadOnlySpan<float> labels, int calibrationBins = 10, int maxRocPoints = DefaultMaxRocPoints)
    {
        bool[] positive = ToBool(labels);
        return Evaluate(probabilities, positive, calibrationBins, maxRocPoints);
    }

    /// <summary>All metrics of probabilities against boolean labels.</summary>
    public static BinaryMetrics Evaluate(ReadOnlySpan<float> probabilities, ReadOnlySpan<bool> labels, int calibrationBins = 10, int maxRocPoints = DefaultMaxRocPoints)
    {
        CheckProbabilities(probabilities, labels);
        var sorted = Sorted.Create(probabilities, labels);
        IReadOnlyList<CalibrationBin> bins = CalibrationBins(probabilities, labels, calibrationBins);
        double ece = 0;
        foreach (CalibrationBin bin in bins)
        {
            if (bin.Count > 0)
            {
                ece += (double)bin.Count / probabilities.Length * Math.Abs(bin.MeanPredicted!.Value - bin.ObservedRate!.Value);
            }
        }

        return new BinaryMetrics
        {
            Count = probabilities.Length,
            Positives = sorted.Positives,
            Auroc = sorted.Auroc(),
            Auprc = sorted.AveragePrecision(),
            LogLoss = LogLoss(probabilities, labels),
            Brier = Brier(probabilities, labels),
            ExpectedCalibrationError = ece,
            Roc = sorted.Roc(maxRocPoints),
            Calibration = bins,
        };
    }

    /// <summary>All metrics of a scored data view (the output of a binary classifier's Transform).</summary>
    public static BinaryMetrics Evaluate(IDataView scored, string labelColumn = FeatureData.LabelColumn, string probabilityColumn = FeatureData.ProbabilityColumn)
    {
        ArgumentNullException.ThrowIfNull(scored);
        if (scored.Schema.GetColumnOrNull(labelColumn) is null)
        {
            throw new ArgumentException($"The data has no label column '{labelColumn}'.", nameof(labelColumn));
        }

        if (scored.Schema.GetColumnOrNull(probabilityColumn) is null)
        {
            throw new ArgumentException($"The data has no probability column '{probabilityColumn}'; transform it with a calibrated classifier first.", nameof(probabilityColumn));
        }

        bool[] labels = scored.GetColumn<bool>(labelColumn).ToArray();
        float[] probabilities = scored.GetColumn<float>(probabilityColumn).ToArray();
        return Evaluate(probabilities, labels);
    }

    /// <summary>
    /// Area under the ROC curve, exactly: the Mann–Whitney statistic P(score of a random positive &gt; score of a random
    /// negative) + ½ P(tie). NaN when either class is absent.
    /// </summary>
    public static double Auroc(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels) => Auroc(scores, ToBool(labels));

    /// <inheritdoc cref="Auroc(ReadOnlySpan{float}, ReadOnlySpan{float})"/>
    public static double Auroc(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels) => Sorted.Create(scores, labels).Auroc();

    /// <summary>
    /// Average precision as scikit-learn's <c>average_precision_score</c>: Σ (R_k − R_{k−1}) · P_k over the distinct
    /// score thresholds from high to low (tied scores form one threshold), without interpolation. NaN without positives.
    /// </summary>
    public static double AveragePrecision(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels) => AveragePrecision(scores, ToBool(labels));

    /// <inheritdoc cref="AveragePrecision(ReadOnlySpan{float}, ReadOnlySpan{float})"/>
    public static double AveragePrecision(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels) => Sorted.Create(scores, labels).AveragePrecision();

    /// <summary>
    /// The ROC curve from (0, 0) (threshold +∞) through one point per distinct score to (1, 1). When it has more than
    /// <paramref name="maxPoints"/> points it is down-sampled to points spread evenly along the curve (by
    /// (FPR + TPR) / 2), always keeping the first and the last.
    /// </summary>
    public static IReadOnlyList<RocPoint> RocCurve(ReadOnlySpan<float> scores, ReadOnlySpan<float> labels, int maxPoints = DefaultMaxRocPoints) =>
        RocCurve(scores, ToBool(labels), maxPoints);

    /// <inheritdoc cref="RocCurve(ReadOnlySpan{float}, ReadOnlySpan{float}, int)"/>
    public static IReadOnlyList<RocPoint> RocCurve(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels, int maxPoints = DefaultMaxRocPoints) =>
        Sorted.Create(scores, labels).Roc(maxPoints);

    /// <summary>
    /// <paramref name="bins"/> equal-width bins over [0, 1] (a probability of exactly 1 goes into the last bin), each with
    /// the mean prediction, the observed positive rate and the count.
    /// </summary>
    public static IReadOnlyList<CalibrationBin> CalibrationBins(ReadOnlySpan<float> probabilities, ReadOnlySpan<float> labels, int bins = 10) =>
        CalibrationBins(probabilities, ToBool(labels), bins);

    /// <inheritdoc cref="CalibrationBins(ReadOnlySpan{float}, ReadOnlySpan{float}, int)"/>
    public static IReadOnlyList<CalibrationBin> CalibrationBins(ReadOnlySpan<float> probabilities, ReadOnlySpan<bool> labels, int bins = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        CheckProbabilities(probabilities, labels);
        var sums = new double[bins];
        var positives = new int[bins];
        var counts = new int[bins];
        for (int i = 0; i < probabilities.Length; i++)
        {
            double p = probabilities[i];
            int b = Math.Min((int)(p * bins), bins - 1);
            sums[b] += p;
            counts[b]++;
            if (labels[i])
            {
                positives[b]++;
            }
        }

        var result = new CalibrationBin[bins];
        for (int b = 0; b < bins; b++)
        {
            int n = counts[b];
            result[b] = new CalibrationBin(
                (double)b / bins,
                (double)(b + 1) / bins,
                n == 0 ? null : sums[b] / n,
                n == 0 ? null : (double)positives[b] / n,
                n);
        }

        return result;
    }

    /// <summary>Mean log-loss: −mean(y·ln p + (1 − y)·ln(1 − p)), p clipped to [1e-15, 1 − 1e-15].</summary>
    public static double LogLoss(ReadOnlySpan<float> probabilities, ReadOnlySpan<float> labels) => LogLoss(probabilities, ToBool(labels));

    /// <inheritdoc cref="LogLoss(ReadOnlySpan{float}, ReadOnlySpan{float})"/>
    public static double LogLoss(ReadOnlySpan<float> probabilities, ReadOnlySpan<bool> labels)
    {
        CheckProbabilities(probabilities, labels);
        double sum = 0;
        for (int i = 0; i < probabilities.Length; i++)
        {
            double p = Math.Clamp(probabilities[i], LogLossEpsilon, 1 - LogLossEpsilon);
            sum -= labels[i] ? Math.Log(p) : Math.Log(1 - p);
        }

        return sum / probabilities.Length;
    }

    /// <summary>Brier score: mean (p − y)².</summary>
    public static double Brier(ReadOnlySpan<float> probabilities, ReadOnlySpan<float> labels) => Brier(probabilities, ToBool(labels));

    /// <inheritdoc cref="Brier(ReadOnlySpan{float}, ReadOnlySpan{float})"/>
    public static double Brier(ReadOnlySpan<float> probabilities, ReadOnlySpan<bool> labels)
    {
        CheckProbabilities(probabilities, labels);
        double sum = 0;
        for (int i = 0; i < probabilities.Length; i++)
        {
            double d = probabilities[i] - (labels[i] ? 1.0 : 0.0);
            sum += d * d;
        }

        return sum / probabilities.Length;
    }

    private static bool[] ToBool(ReadOnlySpan<float> labels)
    {
        var result = new bool[labels.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            result[i] = labels[i] switch
            {
                1f => true,
                0f => false,
                _ => throw new ArgumentException($"Label {i} is {labels[i]}; binary labels must be 0 or 1.", nameof(labels)),
            };
        }

        return result;
    }

    private static void CheckLengths(int scores, int labels)
    {
        if (scores != labels)
        {
            throw new ArgumentException($"{scores} scores but {labels} labels.");
        }

        if (scores == 0)
        {
            throw new ArgumentException("Metrics need at least one prediction.");
        }
    }

    private static void CheckProbabilities(ReadOnlySpan<float> probabilities, ReadOnlySpan<bool> labels)
    {
        CheckLengths(probabilities.Length, labels.Length);
        for (int i = 0; i < probabilities.Length; i++)
        {
            if (!(probabilities[i] >= 0 && probabilities[i] <= 1))
            {
                throw new ArgumentException($"Probability {i} is {probabilities[i]}; probabilities must be in [0, 1].", nameof(probabilities));
            }
        }
    }

    /// <summary>Scores sorted from high to low, with the labels, and the distinct-score groups.</summary>
    private sealed class Sorted
    {
        private Sorted(float[] scores, bool[] labels, int positives)
        {
            Scores = scores;
            Labels = labels;
            Positives = positives;
        }

        public float[] Scores { get; }

        public bool[] Labels { get; }

        public int Positives { get; }

        public int Negatives => Scores.Length - Positives;

        public static Sorted Create(ReadOnlySpan<float> scores, ReadOnlySpan<bool> labels)
        {
            CheckLengths(scores.Length, labels.Length);
            // Sort by descending score: sort negated keys ascending (-0 and 0 compare equal, so ties stay ties).
            var keys = new float[scores.Length];
            var sortedLabels = labels.ToArray();
            int positives = 0;
            for (int i = 0; i < keys.Length; i++)
            {
                if (float.IsNaN(scores[i]))
                {
                    throw new ArgumentException($"Score {i} is NaN.", nameof(scores));
                }

                keys[i] = -scores[i];
                if (labels[i])
                {
                    positives++;
                }
            }

            Array.Sort(keys, sortedLabels);
            for (int i = 0; i < keys.Length; i++)
            {
                keys[i] = -keys[i];
            }

            return new Sorted(keys, sortedLabels, positives);
        }

        /// <summary>Calls <paramref name="onGroup"/>(positives, negatives, score) for each run of equal scores, high to low.</summary>
        private void ForEachGroup(Action<int, int, float> onGroup)
        {
            int i = 0;
            while (i < Scores.Length)
            {
                float s = Scores[i];
                int pos = 0, neg = 0;
                while (i < Scores.Length && Scores[i] == s)
                {
                    if (Labels[i])
                    {
                        pos++;
                    }
                    else
                    {
                        neg++;
                    }

                    i++;
                }

                onGroup(pos, neg, s);
            }
        }

        public double Auroc()
        {
            if (Positives == 0 || Negatives == 0)
            {
                return double.NaN;
            }

            // Each negative counts the positives ranked above it plus half of the positives tied with it.
            double area = 0;
            long positivesAbove = 0;
            ForEachGroup((pos, neg, _) =>
            {
                area += neg * (positivesAbove + pos / 2.0);
                positivesAbove += pos;
            });
            return area / ((double)Positives * Negatives);
        }

        public double AveragePrecision()
        {
            if (Positives == 0)
            {
                return double.NaN;
            }

            double ap = 0;
            long tp = 0, fp = 0;
            ForEachGroup((pos, neg, _) =>
            {
                tp += pos;
                fp += neg;
                if (pos > 0)
                {
                    ap += (double)pos / Positives * ((double)tp / (tp + fp));
                }
            });
            return ap;
        }

        public IReadOnlyList<RocPoint> Roc(int maxPoints)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(maxPoints, 2);
            double p = Positives, n = Negatives;
            var full = new List<RocPoint> { new(0, 0, double.PositiveInfinity) };
            long tp = 0, fp = 0;
            ForEachGroup((pos, neg, score) =>
            {
                tp += pos;
                fp += neg;
                full.Add(new RocPoint(n == 0 ? 0 : fp / n, p == 0 ? 0 : tp / p, score));
            });
            if (full.Count <= maxPoints)
            {
                return full;
            }

            // Progress along the curve, (FPR + TPR) / 2, rises from 0 to 1; keep the first point at or past each of
            // maxPoints evenly spaced targets (so the first and last points are always kept).
            var kept = new List<RocPoint>(maxPoints);
            int next = 0;
            for (int k = 0; k < maxPoints; k++)
            {
                double target = (double)k / (maxPoints - 1);
                while (next < full.Count - 1 && Progress(full[next]) < target - 1e-12)
                {
                    next++;
                }

                if (kept.Count == 0 || kept[^1] != full[next])
                {
                    kept.Add(full[next]);
                }
            }

            if (kept[^1] != full[^1])
            {
                kept.Add(full[^1]);
            }

            return kept;

            static double Progress(RocPoint point) => (point.FalsePositiveRate + point.TruePositiveRate) / 2;
        }
    }
}
