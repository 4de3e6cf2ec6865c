using System.Collections.ObjectModel;

namespace ClinicalFed.Statistics;

/// <summary>
/// Shareable aggregates of one feature column: counts, sums and sums of squares (accumulated in double),
/// observed min/max and fixed-edge histogram bin counts. NaN is counted as missing; ±Infinity is rejected.
/// Aggregates from different sites merge exactly (counts and bins) into the statistics of the pooled rows.
/// </summary>
public sealed class FeatureStatistics
{
    private readonly long[] _binCounts;
    private readonly ReadOnlyCollection<long> _binCountsView;
    private bool _readOnly;

    /// <summary>Creates empty statistics for the feature <paramref name="name"/>.</summary>
    public FeatureStatistics(string name, HistogramSpec histogram)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ArgumentException("Feature name must not be empty.", nameof(name));
        }

        ArgumentNullException.ThrowIfNull(histogram);
        Name = name;
        Histogram = histogram;
        Min = double.NaN;
        Max = double.NaN;
        _binCounts = new long[histogram.TotalBins];
        _binCountsView = Array.AsReadOnly(_binCounts);
    }

    /// <summary>Feature (column) name.</summary>
    public string Name { get; }

    /// <summary>Histogram layout the bins follow.</summary>
    public HistogramSpec Histogram { get; }

    /// <summary>Number of non-missing values.</summary>
    public long Count { get; private set; }

    /// <summary>Number of missing (NaN) values.</summary>
    public long Missing { get; private set; }

    /// <summary>Sum of the non-missing values.</summary>
    public double Sum { get; private set; }

    /// <summary>Sum of the squares of the non-missing values.</summary>
    public double SumOfSquares { get; private set; }

    /// <summary>Smallest observed value; NaN when <see cref="Count"/> is 0.</summary>
    public double Min { get; private set; }

    /// <summary>Largest observed value; NaN when <see cref="Count"/> is 0.</summary>
    public double Max { get; private set; }

    /// <summary>Histogram counts: [underflow, Bins regular bins..., overflow] (<see cref="HistogramSpec.TotalBins"/> entries).</summary>
    public IReadOnlyList<long> BinCounts => _binCountsView;

    /// <summary>True when these statistics belong to a <see cref="StatisticsSet"/> and can no longer change.</summary>
    public bool IsReadOnly => _readOnly;

    /// <summary>Count + Missing.</summary>
    public long Total => Count + Missing;

    /// <summary>Mean of the non-missing values; NaN when Count is 0.</summary>
    public double Mean => StatisticsMath.Mean(Count, Sum);

    /// <summary>Population variance computed from the sums; NaN when Count is 0.</summary>
    public double Variance => StatisticsMath.PopulationVariance(Count, Sum, SumOfSquares);

    /// <summary>Population standard deviation; NaN when Count is 0.</summary>
    public double StandardDeviation => Math.Sqrt(Variance);

    /// <summary>Histogram-interpolated median; NaN when Count is 0.</summary>
    public double Median => Quantile(0.5);

    /// <summary>Missing / (Count + Missing); NaN when no values were added.</summary>
    public double MissingFraction => Total == 0 ? double.NaN : (double)Missing / Total;

    /// <summary>Histogram-interpolated <paramref name="q"/>-quantile (0..1), clamped to [Min, Max]; NaN when Count is 0.</summary>
    public double Quantile(double q) => StatisticsMath.HistogramQuantile(Histogram, _binCounts, Min, Max, q);

    /// <summary>Adds one value (NaN counts as missing).</summary>
    /// <exception cref="ArgumentException">The value is ±Infinity.</exception>
    public void Add(float value)
    {
        ThrowIfReadOnly();
        if (float.IsNaN(value))
        {
            Missing++;
            return;
        }

        if (float.IsInfinity(value))
        {
            throw InfinityError(value);
        }

        double v = value;
        Count++;
        Sum += v;
        SumOfSquares += v * v;
        if (Count == 1)
        {
            Min = v;
            Max = v;
        }
        else
        {
            if (v < Min)
            {
                Min = v;
            }

            if (v > Max)
            {
                Max = v;
            }
        }

        _binCounts[Histogram.BinIndex(v)]++;
    }

    /// <summary>
    /// Adds a contiguous run of values of this feature (NaN counts as missing). Atomic: when an infinite
    /// value is found nothing from <paramref name="values"/> is kept.
    /// </summary>
    /// <exception cref="ArgumentException">A value is ±Infinity.</exception>
    public void AddRange(ReadOnlySpan<float> values)
    {
        ThrowIfReadOnly();
        HistogramSpec histogram = Histogram;
        long[] bins = _binCounts;
        long count = 0;
        long missing = 0;
        double sum = 0;
        double sumOfSquares = 0;
        double min = double.PositiveInfinity;
        double max = double.NegativeInfinity;

        for (int i = 0; i < values.Length; i++)
        {
            float value = values[i];
            if (float.IsNaN(value))
            {
                missing++;
                continue;
            }

            if (float.IsInfinity(value))
            {
                RemoveFromBins(values[..i]);
                throw InfinityError(value, i);
            }

            double v = value;
            count++;
            sum += v;
            sumOfSquares += v * v;
            if (v < min)
            {
                min = v;
            }

            if (v > max)
            {
                max = v;
            }

            bins[histogram.BinIndex(v)]++;
        }

        Missing += missing;
        if (count == 0)
        {
            return;
        }

        Sum += sum;
        SumOfSquares += sumOfSquares;
        if (Count == 0)
        {
            Min = min;
            Max = max;
        }
        else
        {
            Min = Math.Min(Min, min);
            Max = Math.Max(Max, max);
        }

        Count += count;
    }

    /// <summary>Adds another site's aggregates of the same feature into this one.</summary>
    /// <exception cref="ArgumentException">The feature names or histogram specs differ.</exception>
    public void Merge(FeatureStatistics other)
    {
        ArgumentNullException.ThrowIfNull(other);
        ThrowIfReadOnly();
        if (!string.Equals(Name, other.Name, StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"Cannot merge statistics of feature '{other.Name}' into feature '{Name}': the feature names differ.", nameof(other));
        }

        if (!Histogram.Equals(other.Histogram))
        {
            throw new ArgumentException(
                $"Cannot merge statistics of feature '{Name}': histogram {other.Histogram} differs from {Histogram}.", nameof(other));
        }

        Missing += other.Missing;
        if (other.Count == 0)
        {
            return;
        }

        // Copy first: other may be this instance.
        long otherCount = other.Count;
        double otherMin = other.Min;
        double otherMax = other.Max;
        Sum += other.Sum;
        SumOfSquares += other.SumOfSquares;
        for (int b = 0; b < _binCounts.Length; b++)
        {
            _binCounts[b] += other._binCounts[b];
        }

        if (Count == 0)
        {
            Min = otherMin;
            Max = otherMax;
        }
        else
        {
            Min = Math.Min(Min, otherMin);
            Max = Math.Max(Max, otherMax);
        }

        Count += otherCount;
    }

    /// <summary>A mutable copy of these statistics.</summary>
    public FeatureStatistics Clone()
    {
        var copy = new FeatureStatistics(Name, Histogram)
        {
            Count = Count,
            Missing = Missing,
            Sum = Sum,
            SumOfSquares = SumOfSquares,
            Min = Min,
            Max = Max,
        };
        Array.Copy(_binCounts, copy._binCounts, _binCounts.Length);
        return copy;
    }

    /// <summary>
    /// Rebuilds statistics from stored aggregates (e.g. a shared file), validating their consistency:
    /// non-negative counts, <paramref name="binCounts"/> has Bins + 2 non-negative entries summing to
    /// <paramref name="count"/>, min/max are NaN exactly when count is 0 and otherwise finite with min &lt;= max,
    /// and the sums are finite.
    /// </summary>
    /// <exception cref="ArgumentException">The aggregates are inconsistent.</exception>
    public static FeatureStatistics FromAggregates(
        string name,
        HistogramSpec histogram,
        long count,
        long missing,
        double sum,
        double sumOfSquares,
        double min,
        double max,
        ReadOnlySpan<long> binCounts)
    {
        var stats = new FeatureStatistics(name, histogram);
        string? problem = DescribeInconsistency(histogram, count, missing, sum, sumOfSquares, min, max, binCounts);
        if (problem is not null)
        {
            throw new ArgumentException($"Feature '{name}': {problem}", nameof(binCounts));
        }

        stats.Count = count;
        stats.Missing = missing;
        stats.Sum = sum;
        stats.SumOfSquares = sumOfSquares;
        stats.Min = min;
        stats.Max = max;
        binCounts.CopyTo(stats._binCounts);
        return stats;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Name}: count={Count}, missing={Missing}, mean={Mean}, sd={StandardDeviation}, min={Min}, max={Max}";

    /// <summary>Null when the aggregates are consistent, otherwise a description of the first problem.</summary>
    internal static string? DescribeInconsistency(
        HistogramSpec histogram, long count, long missing, double sum, double sumOfSquares, double min, double max, ReadOnlySpan<long> binCounts)
    {
        if (count < 0)
        {
            return $"count must not be negative, got {count}.";
        }

        if (missing < 0)
        {
            return $"missing must not be negative, got {missing}.";
        }

        if (!double.IsFinite(sum))
        {
            return $"sum must be finite, got {sum}.";
        }

        if (!double.IsFinite(sumOfSquares) || sumOfSquares < 0)
        {
            return $"sum_of_squares must be a finite non-negative number, got {sumOfSquares}.";
        }

        if (binCounts.Length != histogram.TotalBins)
        {
            return $"bin_counts has {binCounts.Length} entries, expected {histogram.TotalBins} (bins + 2).";
        }

        long binTotal = 0;
        for (int b = 0; b < binCounts.Length; b++)
        {
            if (binCounts[b] < 0)
            {
                return $"bin_counts[{b}] must not be negative, got {binCounts[b]}.";
            }

            binTotal += binCounts[b];
        }

        if (binTotal != count)
        {
            return $"bin_counts sum to {binTotal} but count is {count}.";
        }

        if (count == 0)
        {
            if (!double.IsNaN(min) || !double.IsNaN(max))
            {
                return "min and max must be absent when count is 0.";
            }
        }
        else
        {
            if (!double.IsFinite(min) || !double.IsFinite(max))
            {
                return "min and max must be finite numbers when count is greater than 0.";
            }

            if (min > max)
            {
                return $"min ({min}) is greater than max ({max}).";
            }
        }

        return null;
    }

    internal void MakeReadOnly() => _readOnly = true;

    private void ThrowIfReadOnly()
    {
        if (_readOnly)
        {
            throw new InvalidOperationException(
                $"Statistics of feature '{Name}' belong to a StatisticsSet and are read-only; use Clone() to get a mutable copy.");
        }
    }

    private void RemoveFromBins(ReadOnlySpan<float> alreadyAdded)
    {
        foreach (float value in alreadyAdded)
        {
            if (!float.IsNaN(value))
            {
                _binCounts[Histogram.BinIndex(value)]--;
            }
        }
    }

    private ArgumentException InfinityError(float value, int? index = null) =>
        new(
            $"Feature '{Name}': value {(index is int i ? $"at index {i} " : string.Empty)}is {(value > 0 ? "+" : "-")}Infinity; " +
            "infinite values are not allowed (use NaN for missing values).",
            "value");
}
