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

/// <summary>
/// Restricts training to chosen coordinates: every batch gradient is zeroed outside them, so the others move only by the
/// optimiser's L2 shrinkage. Used by the top-k refit, which reads the chosen coordinates only.
/// </summary>
public sealed class CoordinateMask : IGradientProcessor
{
    private readonly bool[] _trained;

    /// <param name="coordinates">The coordinates that train (weights, then the bias at index <c>features</c>).</param>
    /// <param name="length">The gradient length: features + 1.</param>
    public CoordinateMask(IEnumerable<int> coordinates, int length)
    {
        ArgumentNullException.ThrowIfNull(coordinates);
        _trained = new bool[length];
        foreach (int j in coordinates)
        {
            if ((uint)j >= (uint)length) throw new ArgumentOutOfRangeException(nameof(coordinates), j, $"a coordinate must be 0 to {length - 1}");
            _trained[j] = true;
        }
    }

    /// <inheritdoc />
    public void ProcessUnit(Span<float> unitGradient)
    {
    }

    /// <inheritdoc />
    public double ProcessBatchSum(Span<float> gradientSum, in GradientBatchContext context)
    {
        if (gradientSum.Length != _trained.Length) throw new ArgumentException($"the gradient has {gradientSum.Length} values, the mask {_trained.Length}", nameof(gradientSum));
        for (int j = 0; j < gradientSum.Length; j++)
        {
            if (!_trained[j]) gradientSum[j] = 0;
        }

        return context.Units;
    }
}
