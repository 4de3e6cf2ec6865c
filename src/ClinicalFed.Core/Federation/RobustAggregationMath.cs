using System.Numerics.Tensors;

namespace ClinicalFed.Federation;

/// <summary>
/// Byzantine-robust combinations of a round's update vectors (deltas from the global model): pure functions over
/// spans, vectorized with <see cref="TensorPrimitives"/> where the work is per vector (distances), per coordinate
/// where it has to be (medians). None keeps state; the robust strategies buffer a round's deltas and call these.
/// </summary>
public static class RobustAggregationMath
{
    /// <summary>Coordinate-wise median (Yin et al. 2018); an even count takes the mean of the two middle values.</summary>
    public static void CoordinateMedian(IReadOnlyList<float[]> vectors, Span<float> destination) =>
        SortedCoordinates(vectors, destination, (sorted) =>
        {
            int n = sorted.Length;
            return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2f;
        });

    /// <summary>
    /// Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drops the <paramref name="trimPerSide"/> largest
    /// and smallest values and averages the rest.
    /// </summary>
    public static void TrimmedMean(IReadOnlyList<float[]> vectors, int trimPerSide, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trimPerSide);
        if (vectors.Count - 2 * trimPerSide < 1)
            throw new ArgumentException($"trimming {trimPerSide} of {vectors.Count} values per side leaves none", nameof(trimPerSide));
        SortedCoordinates(vectors, destination, sorted =>
        {
            double sum = 0;
            for (int i = trimPerSide; i < sorted.Length - trimPerSide; i++) sum += sorted[i];
            return (float)(sum / (sorted.Length - 2 * trimPerSide));
        });
    }

    /// <summary>
    /// Krum scores (Blanchard et al. 2017): for each vector, the sum of its squared distances to its
    /// <c>n − f − 2</c> nearest other vectors. Needs <c>n ≥ f + 3</c> (and <c>n &gt; 2f + 2</c> for Krum's guarantee).
    /// </summary>
    public static double[] KrumScores(IReadOnlyList<float[]> vectors, int byzantine)
    {
        int n = vectors.Count;
        ArgumentOutOfRangeException.ThrowIfNegative(byzantine);
        int neighbours = n - byzantine - 2;
        if (neighbours < 1) throw new ArgumentException($"Krum with f = {byzantine} needs at least {byzantine + 3} updates, not {n}", nameof(vectors));
        var distances = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            for (int j = i + 1; j < n; j++)
            {
                double d = TensorPrimitives.Distance(vectors[i], vectors[j]);
                distances[i, j] = distances[j, i] = d * d;
            }
        }

        var scores = new double[n];
        var row = new double[n - 1];
        for (int i = 0; i < n; i++)
        {
            int k = 0;
            for (int j = 0; j < n; j++) if (j != i) row[k++] = distances[i, j];
            Array.Sort(row);
            for (int j = 0; j < neighbours; j++) scores[i] += row[j];
        }

        return scores;
    }

    /// <summary>The indices of the <paramref name="selected"/> lowest Krum scores (ties by index): Krum is one, Multi-Krum m.</summary>
    public static int[] KrumSelection(IReadOnlyList<float[]> vectors, int byzantine, int selected)
    {
        if (selected < 1 || selected > vectors.Count) throw new ArgumentOutOfRangeException(nameof(selected), selected, $"select 1 to {vectors.Count} updates");
        var scores = KrumScores(vectors, byzantine);
        return Enumerable.Range(0, vectors.Count).OrderBy(i => scores[i]).ThenBy(i => i).Take(selected).Order().ToArray();
    }

    /// <summary>
    /// Weighted geometric median by Weiszfeld's algorithm with smoothing ε (Pillutla et al. 2022, RFA): starts from the
    /// weighted mean and iterates <c>z ← Σ wᵢ xᵢ / max(ε, ‖xᵢ − z‖) / Σ wᵢ / max(ε, ‖xᵢ − z‖)</c> until z moves less
    /// than <paramref name="tolerance"/> × (1 + ‖z‖). Returns the iterations run.
    /// </summary>
    public static int GeometricMedian(IReadOnlyList<float[]> vectors, IReadOnlyList<double> weights, Span<float> destination,
        int maxIterations = 100, double tolerance = 1e-6, double epsilon = 1e-8)
    {
        int n = vectors.Count;
        if (n == 0) throw new ArgumentException("no vectors", nameof(vectors));
        if (weights.Count != n) throw new ArgumentException($"{weights.Count} weights for {n} vectors", nameof(weights));
        if (weights.Any(w => !(w > 0) || !double.IsFinite(w))) throw new ArgumentException("weights must be positive and finite", nameof(weights));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxIterations, 1);
        int d = destination.Length;
        foreach (var v in vectors) if (v.Length != d) throw new ArgumentException($"a vector has {v.Length} values, the destination {d}", nameof(vectors));

        // Start at the weighted mean.
        destination.Clear();
        double total = weights.Sum();
        for (int i = 0; i < n; i++) TensorPrimitives.MultiplyAdd(vectors[i], (float)(weights[i] / total), destination, destination);

        var next = new float[d];
        for (int iteration = 1; iteration <= maxIterations; iteration++)
        {
            Array.Clear(next);
            double denominator = 0;
            var beta = new double[n];
            for (int i = 0; i < n; i++)
            {
                beta[i] = weights[i] / Math.Max(epsilon, TensorPrimitives.Distance(vectors[i], destination));
                denominator += beta[i];
            }

            for (int i = 0; i < n; i++) TensorPrimitives.MultiplyAdd(vectors[i], (float)(beta[i] / denominator), next, next);
            double moved = TensorPrimitives.Distance(next, destination);
            next.CopyTo(destination);
            if (moved <= tolerance * (1 + TensorPrimitives.Norm(destination))) return iteration;
        }

        return maxIterations;
    }

    /// <summary>Weighted mean of the vectors at <paramref name="indices"/>.</summary>
    public static void WeightedMean(IReadOnlyList<float[]> vectors, IReadOnlyList<double> weights, IReadOnlyList<int> indices, Span<float> destination)
    {
        if (indices.Count == 0) throw new ArgumentException("no vectors selected", nameof(indices));
        double total = indices.Sum(i => weights[i]);
        destination.Clear();
        foreach (int i in indices) TensorPrimitives.MultiplyAdd(vectors[i], (float)(weights[i] / total), destination, destination);
    }

    private static void SortedCoordinates(IReadOnlyList<float[]> vectors, Span<float> destination, Func<float[], float> reduce)
    {
        int n = vectors.Count;
        if (n == 0) throw new ArgumentException("no vectors", nameof(vectors));
        foreach (var v in vectors) if (v.Length != destination.Length) throw new ArgumentException($"a vector has {v.Length} values, the destination {destination.Length}", nameof(vectors));
        var column = new float[n];
        for (int j = 0; j < destination.Length; j++)
        {
            for (int i = 0; i < n; i++) column[i] = vectors[i][j];
            Array.Sort(column);
            destination[j] = reduce(column);
        }
    }
}
