using System.Numerics.Tensors;

namespace ClinicalFed.Learning;

/// <summary>What a gradient processor is told about the batch it is processing.</summary>
/// <param name="Step">0-based optimisation step.</param>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Units">Units (rows or patients) in this batch.</param>
/// <param name="ExpectedUnits">The expected batch size (the configured batch size; for Poisson sampling q × units).</param>
/// <param name="Random">A generator seeded from the training seed (deterministic; a DP mechanism may use its own secure source instead).</param>
public readonly record struct GradientBatchContext(long Step, int Epoch, int Units, double ExpectedUnits, Random Random);

/// <summary>
/// A hook into <see cref="ProximalSgdLogistic"/>'s mini-batch gradient, e.g. for differentially private SGD.
/// Gradients are of the data loss only (regularisation and the proximal term are data-independent and added afterwards),
/// laid out as the weights followed by the bias (length features + 1).
/// </summary>
public interface IGradientProcessor
{
    /// <summary>
    /// Called once per sampling unit — one row, or (with <see cref="SamplingUnit.Group"/>) all rows of one patient in the
    /// batch — with that unit's gradient; may change it in place (e.g. clip its norm).
    /// </summary>
    void ProcessUnit(Span<float> unitGradient);

    /// <summary>
    /// Called once per batch with the sum of the processed unit gradients; may change it in place (e.g. add noise).
    /// Returns the number of units to divide the sum by: by default the actual batch size; DP-SGD with Poisson sampling
    /// divides by the expected batch size instead, so that one unit's influence is bounded.
    /// </summary>
    double ProcessBatchSum(Span<float> gradientSum, in GradientBatchContext context) => context.Units;
}

/// <summary>
/// Clips each unit's gradient (weights and bias together) to L2 norm at most <see cref="MaxNorm"/>:
/// g ← g · min(1, C / ‖g‖). The clipping step of DP-SGD. Not thread-safe (it counts).
/// </summary>
public sealed class L2NormClipper : IGradientProcessor
{
    public L2NormClipper(float maxNorm)
    {
        if (!(maxNorm > 0) || !float.IsFinite(maxNorm))
        {
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "The clipping norm must be a finite number > 0.");
        }

        MaxNorm = maxNorm;
    }

    /// <summary>The clipping bound C.</summary>
    public float MaxNorm { get; }

    /// <summary>Units processed so far.</summary>
    public long Units { get; private set; }

    /// <summary>Units whose gradient was longer than <see cref="MaxNorm"/> and was scaled down.</summary>
    public long ClippedUnits { get; private set; }

    /// <inheritdoc />
    public void ProcessUnit(Span<float> unitGradient)
    {
        Units++;
        float norm = TensorPrimitives.Norm(unitGradient);
        if (norm > MaxNorm)
        {
            ClippedUnits++;
            TensorPrimitives.Multiply(unitGradient, MaxNorm / norm, unitGradient);
        }
    }
}
