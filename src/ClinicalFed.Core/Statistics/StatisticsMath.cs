namespace ClinicalFed.Statistics;

/// <summary>
/// Pure functions that turn shared aggregates (counts, sums, sums of squares, histogram bins) into
/// descriptive statistics. Because they see only aggregates, a federated result equals the pooled one.
/// </summary>
public static class StatisticsMath
{
    /// <summary>Arithmetic mean from a count and a sum; NaN when <paramref name="count"/> is 0.</summary>
    public static double Mean(long count, double sum) => count == 0 ? double.NaN : sum / count;

    /// <summary>
    /// Population variance from a count, sum and sum of squares; NaN when <paramref name="count"/> is 0.
    /// Tiny negative results caused by cancellation are clamped to 0.
    /// </summary>
    public static double PopulationVariance(long count, double sum, double sumOfSquares)
    {
        if (count == 0)
        {
            return double.NaN;
        }

        double variance = (sumOfSquares - sum * (sum / count)) / count;
        return variance > 0 ? variance : 0;
    }

    /// <summary>
    /// The <paramref name="q"/>-quantile of values summarised by a histogram: the target rank q·N is located
    /// in the bin whose cumulative count reaches it, and the value is interpolated linearly between that
    /// bin's edges. Edges (including the open-ended underflow/overflow bins) are clamped to the observed
    /// [<paramref name="observedMin"/>, <paramref name="observedMax"/>], so q = 0 gives the minimum and q = 1 the maximum.
    /// Returns NaN when the histogram is empty.
    /// </summary>
    public static double HistogramQuantile(
        HistogramSpec histogram, ReadOnlySpan<long> binCounts, double observedMin, double observedMax, double q)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        if (!(q >= 0 && q <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(q), q, "Quantile must be between 0 and 1.");
        }

        if (binCounts.Length != histogram.TotalBins)
        {
            throw new ArgumentException(
                $"Expected {histogram.TotalBins} bin counts for histogram {histogram}, got {binCounts.Length}.", nameof(binCounts));
        }

        long total = 0;
        foreach (long n in binCounts)
        {
            total += n;
        }

        if (total == 0)
        {
            return double.NaN;
        }

        double target = q * total;
        long cumulative = 0;
        for (int b = 0; b < binCounts.Length; b++)
        {
            long n = binCounts[b];
            if (n == 0)
            {
                continue;
            }

            if (cumulative + n >= target)
            {
                (double lower, double upper) = histogram.BinEdges(b);
                lower = Math.Clamp(lower, observedMin, observedMax);
                upper = Math.Clamp(upper, observedMin, observedMax);
                double fraction = (target - cumulative) / n;
                double value = lower + fraction * (upper - lower);
                return Math.Clamp(value, observedMin, observedMax);
            }

            cumulative += n;
        }

        return observedMax;
    }
}
