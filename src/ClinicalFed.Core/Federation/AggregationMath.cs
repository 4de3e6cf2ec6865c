using System.Numerics.Tensors;

namespace ClinicalFed.Federation;

/// <summary>
/// The server-side arithmetic of federated aggregation: pure, allocation-free functions over spans, vectorized with
/// <see cref="TensorPrimitives"/>. Strategies orchestrate them; nothing here keeps state.
/// <para>
/// Notation (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2): <c>w</c> is the global model the
/// round started from, <c>mean</c> the (example-)weighted mean of the sites' models. Server momentum (FedAvgM, Hsu et
/// al. 2019) uses Δ = w − mean and steps <c>w ← w − η v</c>; the adaptive optimizers use the pseudo-gradient
/// direction Δ = mean − w and step <c>w ← w + η m / (√v + τ)</c>. Element-wise temporaries live in a small stack
/// buffer, processed chunk by chunk, so every function runs in O(1) extra memory.
/// </para>
/// </summary>
public static class AggregationMath
{
    private const int Chunk = 256;

    /// <summary><c>accumulator += weight · values</c>.</summary>
    public static void Accumulate(Span<float> accumulator, ReadOnlySpan<float> values, float weight)
    {
        SameLength(accumulator.Length, values.Length, nameof(values));
        FiniteNonNegative(weight, nameof(weight));
        TensorPrimitives.MultiplyAdd(values, weight, accumulator, accumulator);
    }

    /// <summary>
    /// <c>accumulator += weight · (values − reference)</c>: accumulates a full model as its difference from the
    /// global model, computed before weighting so that small differences of large weights keep their precision.
    /// </summary>
    public static void AccumulateDifference(Span<float> accumulator, ReadOnlySpan<float> values, ReadOnlySpan<float> reference, float weight)
    {
        SameLength(accumulator.Length, values.Length, nameof(values));
        SameLength(accumulator.Length, reference.Length, nameof(reference));
        FiniteNonNegative(weight, nameof(weight));
        Span<float> d = stackalloc float[Chunk];
        for (int i = 0; i < accumulator.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, accumulator.Length - i);
            var diff = d[..n];
            TensorPrimitives.Subtract(values.Slice(i, n), reference.Slice(i, n), diff);
            var acc = accumulator.Slice(i, n);
            TensorPrimitives.MultiplyAdd(diff, weight, acc, acc);
        }
    }

    /// <summary>
    /// <c>accumulator += weight · values</c>, returning <c>Σ values²</c> (the squared L2 norm of a delta update) from
    /// the same pass: one read of each vector and one write of the accumulator. Same arithmetic as
    /// <see cref="Accumulate"/> (a multiply, then an add, per element: bit-identical results).
    /// </summary>
    public static double AccumulateWithSquaredNorm(Span<float> accumulator, ReadOnlySpan<float> values, float weight)
    {
        SameLength(accumulator.Length, values.Length, nameof(values));
        FiniteNonNegative(weight, nameof(weight));
        return AccumulateFused(accumulator, values, default, hasReference: false, weight);
    }

    /// <summary>
    /// <c>accumulator += weight · (values − reference)</c>, returning <c>Σ (values − reference)²</c> (the squared
    /// distance of a full update from the global model) from the same pass. Same arithmetic as
    /// <see cref="AccumulateDifference"/> (bit-identical accumulator), reading each vector once: the aggregator's
    /// streaming path runs it on chunks of an update as they arrive.
    /// </summary>
    public static double AccumulateDifferenceWithSquaredNorm(Span<float> accumulator, ReadOnlySpan<float> values, ReadOnlySpan<float> reference, float weight)
    {
        SameLength(accumulator.Length, values.Length, nameof(values));
        SameLength(accumulator.Length, reference.Length, nameof(reference));
        FiniteNonNegative(weight, nameof(weight));
        return AccumulateFused(accumulator, values, reference, hasReference: true, weight);
    }

    private static double AccumulateFused(Span<float> accumulator, ReadOnlySpan<float> values, ReadOnlySpan<float> reference, bool hasReference, float weight)
    {
        // Squares are summed in float lanes per block of 4096 elements and the blocks in double, so a long vector keeps
        // its precision; the accumulator update is the plain multiply-then-add of TensorPrimitives.MultiplyAdd.
        const int Block = 4096;
        double squares = 0;
        int width = System.Numerics.Vector<float>.Count;
        var w = new System.Numerics.Vector<float>(weight);
        ref float a0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(accumulator);
        ref float x0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(values);
        ref float g0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(reference);
        int length = accumulator.Length;
        for (int start = 0; start < length; start += Block)
        {
            int end = Math.Min(length, start + Block);
            var lanes = System.Numerics.Vector<float>.Zero;
            int i = start;
            if (System.Numerics.Vector.IsHardwareAccelerated)
            {
                for (; i <= end - width; i += width)
                {
                    var d = System.Numerics.Vector.LoadUnsafe(ref x0, (nuint)i);
                    if (hasReference) d -= System.Numerics.Vector.LoadUnsafe(ref g0, (nuint)i);
                    lanes += d * d;
                    System.Numerics.Vector.StoreUnsafe(d * w + System.Numerics.Vector.LoadUnsafe(ref a0, (nuint)i), ref a0, (nuint)i);
                }
            }

            float tail = 0;
            for (; i < end; i++)
            {
                float d = hasReference ? values[i] - reference[i] : values[i];
                tail += d * d;
                accumulator[i] = d * weight + accumulator[i];
            }

            squares += (double)System.Numerics.Vector.Sum(lanes) + tail;
        }

        return squares;
    }

    /// <summary>Turns a weighted sum into the weighted mean in place: <c>accumulator /= totalWeight</c>.</summary>
    public static void FinalizeMean(Span<float> accumulator, double totalWeight)
    {
        if (!(totalWeight > 0) || double.IsInfinity(totalWeight))
            throw new ArgumentOutOfRangeException(nameof(totalWeight), totalWeight, "The total weight must be positive and finite.");
        TensorPrimitives.Divide(accumulator, (float)totalWeight, accumulator);
    }

    /// <summary>
    /// FedAvgM server momentum, in place: Δ = weights − mean; velocity = momentum · velocity + Δ;
    /// weights ← weights − learningRate · velocity. With momentum 0 and learning rate 1 the result is the mean.
    /// </summary>
    public static void ServerMomentumStep(Span<float> weights, ReadOnlySpan<float> mean, Span<float> velocity, float momentum, float learningRate)
    {
        SameLength(weights.Length, mean.Length, nameof(mean));
        SameLength(weights.Length, velocity.Length, nameof(velocity));
        InRange(momentum, 0, 1, upperOpen: true, nameof(momentum));
        Positive(learningRate, nameof(learningRate));
        Span<float> d = stackalloc float[Chunk];
        for (int i = 0; i < weights.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, weights.Length - i);
            var delta = d[..n];
            var w = weights.Slice(i, n);
            var v = velocity.Slice(i, n);
            TensorPrimitives.Subtract(w, mean.Slice(i, n), delta);
            TensorPrimitives.MultiplyAdd(v, momentum, delta, v);
            TensorPrimitives.MultiplyAdd(v, -learningRate, w, w);
        }
    }

    /// <summary>
    /// FedAdam, in place: Δ = mean − weights; m = β1 m + (1 − β1) Δ; v = β2 v + (1 − β2) Δ²;
    /// weights ← weights + η m / (√v + τ).
    /// </summary>
    public static void FedAdamStep(Span<float> weights, ReadOnlySpan<float> mean, Span<float> m, Span<float> v,
        float learningRate, float beta1, float beta2, float tau) =>
        AdaptiveStep(SecondMoment.Adam, weights, mean, m, v, learningRate, beta1, beta2, tau);

    /// <summary>
    /// FedYogi, in place: Δ = mean − weights; m = β1 m + (1 − β1) Δ; v = v − (1 − β2) Δ² sign(v − Δ²);
    /// weights ← weights + η m / (√v + τ).
    /// </summary>
    public static void FedYogiStep(Span<float> weights, ReadOnlySpan<float> mean, Span<float> m, Span<float> v,
        float learningRate, float beta1, float beta2, float tau) =>
        AdaptiveStep(SecondMoment.Yogi, weights, mean, m, v, learningRate, beta1, beta2, tau);

    /// <summary>
    /// FedAdagrad, in place: Δ = mean − weights; m = β1 m + (1 − β1) Δ; v = v + Δ²;
    /// weights ← weights + η m / (√v + τ).
    /// </summary>
    public static void FedAdagradStep(Span<float> weights, ReadOnlySpan<float> mean, Span<float> m, Span<float> v,
        float learningRate, float beta1, float tau) =>
        AdaptiveStep(SecondMoment.Adagrad, weights, mean, m, v, learningRate, beta1, 0f, tau);

    /// <summary>destination = (1 − w)·a + w·b: a personalized model between the global model a and a site's own b.</summary>
    public static void Interpolate(ReadOnlySpan<float> a, ReadOnlySpan<float> b, float weightOfB, Span<float> destination)
    {
        if (a.Length != b.Length || destination.Length != a.Length) throw new ArgumentException("vectors must have the same length");
        if (!float.IsFinite(weightOfB) || weightOfB is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(weightOfB), weightOfB, "the weight must be in [0, 1]");
        TensorPrimitives.Lerp(a, b, weightOfB, destination);
    }

    /// <summary>Euclidean (L2) norm. Falls back to a scaled double-precision sum when the float sum of squares overflows.</summary>
    public static float L2Norm(ReadOnlySpan<float> x)
    {
        float norm = TensorPrimitives.Norm(x);
        if (float.IsFinite(norm) || !TensorPrimitives.IsFiniteAll(x)) return norm;
        double scale = TensorPrimitives.MaxMagnitude(x);
        double sum = 0;
        foreach (float value in x)
        {
            double r = value / scale;
            sum += r * r;
        }

        return (float)(scale * Math.Sqrt(sum));
    }

    /// <summary>Euclidean distance ‖x − y‖ (the size of an update relative to the global model).</summary>
    public static float L2Distance(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        SameLength(x.Length, y.Length, nameof(y));
        return TensorPrimitives.Distance(x, y);
    }

    /// <summary>
    /// Scales <paramref name="x"/> in place so that its L2 norm is at most <paramref name="maxNorm"/> (unchanged when
    /// already within it). Returns the norm before clipping.
    /// </summary>
    public static float ClipByNorm(Span<float> x, float maxNorm)
    {
        Positive(maxNorm, nameof(maxNorm));
        float norm = L2Norm(x);
        if (!float.IsFinite(norm)) throw new ArgumentException("Cannot clip a vector holding NaN or infinite values.", nameof(x));
        if (norm > maxNorm) TensorPrimitives.Multiply(x, maxNorm / norm, x);
        return norm;
    }

    private enum SecondMoment { Adam, Yogi, Adagrad }

    private static void AdaptiveStep(SecondMoment kind, Span<float> weights, ReadOnlySpan<float> mean, Span<float> m, Span<float> v,
        float learningRate, float beta1, float beta2, float tau)
    {
        SameLength(weights.Length, mean.Length, nameof(mean));
        SameLength(weights.Length, m.Length, nameof(m));
        SameLength(weights.Length, v.Length, nameof(v));
        Positive(learningRate, nameof(learningRate));
        InRange(beta1, 0, 1, upperOpen: true, nameof(beta1));
        if (kind != SecondMoment.Adagrad) InRange(beta2, 0, 1, upperOpen: true, nameof(beta2));
        Positive(tau, nameof(tau));

        Span<float> a = stackalloc float[Chunk];
        Span<float> b = stackalloc float[Chunk];
        Span<int> signs = stackalloc int[kind == SecondMoment.Yogi ? Chunk : 0];
        for (int i = 0; i < weights.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, weights.Length - i);
            var w = weights.Slice(i, n);
            var mc = m.Slice(i, n);
            var vc = v.Slice(i, n);
            var delta = a[..n];
            var squared = b[..n];

            TensorPrimitives.Subtract(mean.Slice(i, n), w, delta);          // Δ = mean − w
            TensorPrimitives.Multiply(mc, beta1, mc);                        // m = β1 m + (1 − β1) Δ
            TensorPrimitives.MultiplyAdd(delta, 1f - beta1, mc, mc);
            TensorPrimitives.Multiply(delta, delta, squared);                // Δ²
            switch (kind)
            {
                case SecondMoment.Adam:                                      // v = β2 v + (1 − β2) Δ²
                    TensorPrimitives.Multiply(vc, beta2, vc);
                    TensorPrimitives.MultiplyAdd(squared, 1f - beta2, vc, vc);
                    break;
                case SecondMoment.Yogi:                                      // v = v − (1 − β2) Δ² sign(v − Δ²)
                    var sign = signs[..n];
                    TensorPrimitives.Subtract(vc, squared, delta);           // Δ no longer needed
                    TensorPrimitives.Sign(delta, sign);
                    TensorPrimitives.ConvertTruncating<int, float>(sign, delta);
                    TensorPrimitives.Multiply(delta, squared, delta);
                    TensorPrimitives.MultiplyAdd(delta, -(1f - beta2), vc, vc);
                    break;
                default:                                                     // v = v + Δ²
                    TensorPrimitives.Add(vc, squared, vc);
                    break;
            }

            TensorPrimitives.Sqrt(vc, squared);                              // w += η m / (√v + τ)
            TensorPrimitives.Add(squared, tau, squared);
            TensorPrimitives.Divide(mc, squared, squared);
            TensorPrimitives.MultiplyAdd(squared, learningRate, w, w);
        }
    }

    private static void SameLength(int expected, int actual, string paramName)
    {
        if (actual != expected) throw new ArgumentException($"Length {actual} does not match the expected length {expected}.", paramName);
    }

    private static void FiniteNonNegative(float value, string paramName)
    {
        if (!(value >= 0) || float.IsInfinity(value)) throw new ArgumentOutOfRangeException(paramName, value, "Must be finite and not negative.");
    }

    private static void Positive(float value, string paramName)
    {
        if (!(value > 0) || float.IsInfinity(value)) throw new ArgumentOutOfRangeException(paramName, value, "Must be positive and finite.");
    }

    private static void InRange(float value, float min, float max, bool upperOpen, string paramName)
    {
        bool ok = value >= min && (upperOpen ? value < max : value <= max);
        if (!ok) throw new ArgumentOutOfRangeException(paramName, value, $"Must be in [{min}, {max}{(upperOpen ? ")" : "]")}.");
    }
}
