using System.Diagnostics;
using System.Numerics.Tensors;

namespace ClinicalFed.Learning;

/// <summary>Settings of <see cref="ProximalSgdLogistic"/>. Regularisation strengths are on the scale of the mean loss.</summary>
public sealed record ProximalSgdOptions
{
    public string FeatureColumnName { get; init; } = FeatureData.FeaturesColumn;
    public string LabelColumnName { get; init; } = FeatureData.LabelColumn;

    /// <summary>A Single column of example weights, or null.</summary>
    public string? ExampleWeightColumnName { get; init; }

    /// <summary>The group (patient) column used with <see cref="SamplingUnit.Group"/> (UInt32, Int32, Int64 or Text).</summary>
    public string GroupColumnName { get; init; } = FeatureData.GroupColumn;

    /// <summary>Passes over the units.</summary>
    public int Epochs { get; init; } = 5;

    /// <summary>Units (rows or patients) per mini-batch; the expected number with Poisson sampling.</summary>
    public int BatchSize { get; init; } = 256;

    public LearningRateSchedule LearningRate { get; init; } = LearningRateSchedule.Cosine(0.1);

    /// <summary>Heavy-ball momentum on the data gradient (0 = plain SGD).</summary>
    public float Momentum { get; init; } = 0.9f;

    /// <summary>λ of the L2 penalty λ/2‖w‖² on the weights (not the bias).</summary>
    public float L2 { get; init; } = 1e-4f;

    /// <summary>μ of the FedProx proximal term μ/2‖θ − θ_global‖² on weights and bias (0 = FedAvg's local SGD).</summary>
    public float ProximalMu { get; init; }

    public ClassWeighting ClassWeighting { get; init; } = ClassWeighting.None;

    public SamplingUnit SamplingUnit { get; init; } = SamplingUnit.Row;

    public BatchSampling BatchSampling { get; init; } = BatchSampling.Shuffle;

    /// <summary>How a patient's rows form its unit gradient when sampling by group.</summary>
    public GroupGradient GroupGradient { get; init; } = GroupGradient.MeanOfRows;

    /// <summary>Seed of the sampler (and of the processor context's generator): equal seeds give bit-identical weights.</summary>
    public int Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> describing every invalid setting.</summary>
    public void Validate()
    {
        var problems = new List<string>();
        if (Epochs < 0)
        {
            problems.Add($"Epochs must be ≥ 0, got {Epochs}.");
        }

        if (BatchSize < 1)
        {
            problems.Add($"BatchSize must be ≥ 1, got {BatchSize}.");
        }

        if (!(Momentum >= 0 && Momentum < 1))
        {
            problems.Add($"Momentum must be in [0, 1), got {Momentum}.");
        }

        if (!(L2 >= 0) || !float.IsFinite(L2))
        {
            problems.Add($"L2 must be finite and ≥ 0, got {L2}.");
        }

        if (!(ProximalMu >= 0) || !float.IsFinite(ProximalMu))
        {
            problems.Add($"ProximalMu must be finite and ≥ 0, got {ProximalMu}.");
        }

        if (LearningRate is null)
        {
            problems.Add("LearningRate is required.");
        }

        if (ClassWeighting is null)
        {
            problems.Add("ClassWeighting is required.");
        }

        if (string.IsNullOrEmpty(FeatureColumnName) || string.IsNullOrEmpty(LabelColumnName))
        {
            problems.Add("FeatureColumnName and LabelColumnName are required.");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid proximal SGD options: " + string.Join(" ", problems));
        }
    }
}

/// <summary>What a proximal SGD run produced.</summary>
/// <param name="Weights">The trained weights.</param>
/// <param name="EpochLosses">Per epoch, the weighted mean data loss of the rows seen, measured before each step's update.</param>
/// <param name="Steps">Optimisation steps taken.</param>
/// <param name="Units">Units (rows or patients) the sampler drew from.</param>
/// <param name="Elapsed">Wall-clock training time.</param>
public sealed record ProximalSgdResult(LinearWeights Weights, IReadOnlyList<double> EpochLosses, long Steps, int Units, TimeSpan Elapsed);

/// <summary>
/// ClinicalFed's own mini-batch optimiser for logistic regression. Minimises
/// <c>data loss + λ/2‖w‖² + μ/2‖θ − θ_global‖²</c>, where the data loss is the (class- and example-) weighted mean
/// log-loss (with group sampling and <see cref="GroupGradient.MeanOfRows"/>: the mean over patients of each patient's
/// mean loss) and θ = (w, b). Each step takes the mini-batch gradient of the data loss (per-unit gradients pass through an
/// optional <see cref="IGradientProcessor"/>), applies momentum, then the exact proximal step of the two quadratic terms:
/// <c>θ ← (θ − η·v + η·μ·θ_global) / (1 + η·λ + η·μ)</c> (no λ for the bias), which is stable for any λ and μ.
/// Single-threaded and deterministic for a given seed.
/// </summary>
public static class ProximalSgdOptimizer
{
    /// <summary>Trains from <paramref name="global"/> (null: zeros, and the proximal term then pulls toward 0).</summary>
    /// <exception cref="ArgumentException">Invalid options, or the weights' width differs from the data's.</exception>
    /// <exception cref="InvalidOperationException">A feature is NaN or infinite (impute first).</exception>
    public static ProximalSgdResult Train(
        FeatureMatrix data,
        LinearWeights? global,
        ProximalSgdOptions options,
        IGradientProcessor? processor = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int d = data.Columns;
        CheckWidth(data, global);
        var stopwatch = Stopwatch.StartNew();
        data.ThrowIfNotFinite();

        float[] theta = global?.ToParameterVector() ?? new float[d + 1];
        float[] center = (float[])theta.Clone();
        var (positives, negatives) = data.CountClasses();
        var (negativeWeight, positiveWeight) = options.ClassWeighting.Resolve(positives, negatives);

        var sampler = new MiniBatchSampler(data, options.SamplingUnit, options.BatchSampling, options.BatchSize, options.Seed);
        bool groups = options.SamplingUnit == SamplingUnit.Group;
        bool meanOfRows = groups && options.GroupGradient == GroupGradient.MeanOfRows;
        // Divisor per unit of the batch sum: 1, or the mean group size so that SumOfRows averages over rows.
        double unitScale = groups && !meanOfRows ? sampler.MeanRowsPerUnit : 1.0;
        bool perUnit = processor is not null || groups;

        var gradient = new float[d + 1];
        var unitGradient = new float[d + 1];
        var velocity = new float[d + 1];
        var noiseRandom = new Random(unchecked(options.Seed * 31 + 17));
        long totalSteps = (long)sampler.StepsPerEpoch * options.Epochs;
        long step = 0;
        var losses = new List<double>(options.Epochs);
        float lambda = options.L2, mu = options.ProximalMu, beta = options.Momentum;

        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            double lossSum = 0, lossWeight = 0;
            foreach (int[] batch in sampler.NextEpoch())
            {
                cancellationToken.ThrowIfCancellationRequested();
                Array.Clear(gradient);
                ReadOnlySpan<float> w = theta.AsSpan(0, d);
                float b = theta[d];
                foreach (int unit in batch)
                {
                    ReadOnlySpan<int> rows = sampler.RowsOf(unit);
                    Span<float> target = perUnit ? unitGradient : gradient;
                    if (perUnit)
                    {
                        Array.Clear(unitGradient);
                    }

                    double unitLoss = 0, unitWeight = 0;
                    foreach (int i in rows)
                    {
                        float c = data.Weight(i) * (data.Label(i) ? positiveWeight : negativeWeight);
                        unitLoss += AccumulateRow(data.Features(i), data.Label(i), c, w, b, target);
                        unitWeight += c;
                    }

                    if (meanOfRows && rows.Length > 1)
                    {
                        TensorPrimitives.Multiply(unitGradient, 1f / rows.Length, unitGradient);
                    }

                    if (perUnit)
                    {
                        processor?.ProcessUnit(unitGradient);
                        TensorPrimitives.Add(gradient, unitGradient, gradient);
                    }

                    lossSum += unitLoss;
                    lossWeight += unitWeight;
                }

                double divisor = processor?.ProcessBatchSum(
                    gradient, new GradientBatchContext(step, epoch, batch.Length, sampler.ExpectedBatchUnits, noiseRandom)) ?? batch.Length;
                double scale = divisor > 0 ? 1.0 / (divisor * unitScale) : 0.0;

                // v ← β·v + g
                if (beta > 0)
                {
                    TensorPrimitives.Multiply(velocity, beta, velocity);
                    TensorPrimitives.MultiplyAdd(gradient, (float)scale, velocity, velocity);
                }
                else
                {
                    TensorPrimitives.Multiply(gradient, (float)scale, velocity);
                }

                // θ ← (θ − η·v + η·μ·θ_global) / (1 + η·λ + η·μ); the bias has no λ.
                double eta = options.LearningRate.Rate(step, totalSteps);
                TensorPrimitives.MultiplyAdd(velocity, (float)-eta, theta, theta);
                if (mu > 0)
                {
                    TensorPrimitives.MultiplyAdd(center, (float)(eta * mu), theta, theta);
                }

                Span<float> weights = theta.AsSpan(0, d);
                TensorPrimitives.Multiply(weights, (float)(1.0 / (1 + eta * lambda + eta * mu)), weights);
                theta[d] = (float)(theta[d] / (1 + eta * mu));
                step++;
            }

            losses.Add(lossWeight > 0 ? lossSum / lossWeight : double.NaN);
            if (!float.IsFinite(TensorPrimitives.Sum(theta)))
            {
                throw new InvalidOperationException(
                    $"Proximal SGD diverged in epoch {epoch + 1} (weights are no longer finite): lower the learning rate or momentum.");
            }
        }

        return new ProximalSgdResult(LinearWeights.FromParameterVector(theta), losses, step, sampler.UnitCount, stopwatch.Elapsed);
    }

    /// <summary>
    /// The objective <see cref="Train"/> minimises, evaluated on all of <paramref name="data"/>: the weighted data loss
    /// (normalised as the options' sampling does) + λ/2‖w‖² + μ/2‖θ − θ_global‖².
    /// </summary>
    public static double Objective(FeatureMatrix data, LinearWeights weights, LinearWeights? global, ProximalSgdOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(options);
        CheckWidth(data, weights);
        CheckWidth(data, global);
        var (positives, negatives) = data.CountClasses();
        var (negativeWeight, positiveWeight) = options.ClassWeighting.Resolve(positives, negatives);
        float[] theta = weights.ToParameterVector();
        float[] center = global?.ToParameterVector() ?? new float[theta.Length];
        ReadOnlySpan<float> w = theta.AsSpan(0, data.Columns);
        var scratch = new float[theta.Length];

        double dataLoss;
        if (options.SamplingUnit == SamplingUnit.Group && options.GroupGradient == GroupGradient.MeanOfRows)
        {
            var sampler = new MiniBatchSampler(data, SamplingUnit.Group, BatchSampling.Shuffle, 1, 0);
            double sum = 0;
            for (int u = 0; u < sampler.UnitCount; u++)
            {
                double unit = 0;
                ReadOnlySpan<int> rows = sampler.RowsOf(u);
                foreach (int i in rows)
                {
                    unit += RowLoss(data, i, w, theta[^1], negativeWeight, positiveWeight, scratch);
                }

                sum += unit / rows.Length;
            }

            dataLoss = sum / sampler.UnitCount;
        }
        else
        {
            double sum = 0;
            for (int i = 0; i < data.RowCount; i++)
            {
                sum += RowLoss(data, i, w, theta[^1], negativeWeight, positiveWeight, scratch);
            }

            dataLoss = sum / data.RowCount;
        }

        double l2 = 0, prox = 0;
        for (int j = 0; j < theta.Length; j++)
        {
            if (j < theta.Length - 1)
            {
                l2 += (double)theta[j] * theta[j];
            }

            double diff = (double)theta[j] - center[j];
            prox += diff * diff;
        }

        return dataLoss + options.L2 / 2.0 * l2 + options.ProximalMu / 2.0 * prox;
    }

    private static double RowLoss(FeatureMatrix data, int i, ReadOnlySpan<float> w, float b, float negativeWeight, float positiveWeight, float[] scratch)
    {
        float c = data.Weight(i) * (data.Label(i) ? positiveWeight : negativeWeight);
        Array.Clear(scratch);
        return AccumulateRow(data.Features(i), data.Label(i), c, w, b, scratch);
    }

    /// <summary>Adds c·(p − y)·(x, 1) to <paramref name="gradient"/> and returns c·logloss.</summary>
    private static double AccumulateRow(ReadOnlySpan<float> x, bool label, float c, ReadOnlySpan<float> w, float b, Span<float> gradient)
    {
        double z = TensorPrimitives.Dot(x, w) + (double)b;
        double y = label ? 1 : 0;
        double p = LinearWeights.Sigmoid(z);
        float e = (float)(c * (p - y));
        Span<float> gw = gradient[..^1];
        TensorPrimitives.MultiplyAdd(x, e, gw, gw);
        gradient[^1] += e;
        // log(1 + e^z) − y·z, computed stably
        double softplus = Math.Max(z, 0) + Math.Log(1 + Math.Exp(-Math.Abs(z)));
        return c * (softplus - y * z);
    }

    private static void CheckWidth(FeatureMatrix data, LinearWeights? weights)
    {
        if (weights is not null && weights.Count != data.Columns)
        {
            throw new ArgumentException(
                $"The global model has {weights.Count} weights but the data has {data.Columns} feature columns.", nameof(weights));
        }
    }
}
