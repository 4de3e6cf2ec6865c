using ClinicalFed.Statistics;

namespace ClinicalFed.Trees;

/// <summary>
/// What a site shares so that the federation can agree on histogram bins for one feature: a summary of its present
/// (non-missing) values as ascending distinct values with a weight each (how many of the site's rows they stand for).
/// Never rows: at most <see cref="HistogramBinning.SketchPoints"/> order statistics of the column, or, for a site with
/// fewer present values than that, its values with their counts.
/// </summary>
public sealed record FeatureSketch(float[] Values, double[] Weights)
{
    /// <summary>Rows with a present value that the sketch stands for.</summary>
    public double Count => Weights.Sum();
}

/// <summary>
/// Histogram bins of gradient-boosted trees: the greedy quantile cuts a single site takes on its own values, and the
/// federated version, in which every site sends a <see cref="FeatureSketch"/> per feature and the coordinator merges
/// them into one set of cuts that every site then bins with (so that histograms from different sites add up). Pure
/// math, no ML.NET: an aggregator can run <see cref="MergeCuts"/>.
/// </summary>
/// <remarks>
/// Cuts are thresholds: value bin b holds cuts[b−1] &lt; x ≤ cuts[b], the last bin x &gt; the last cut (missing
/// values get a bin of their own, which is the booster's business). Each cut lies between two consecutive distinct
/// values of the data it was chosen on, so a single site's cuts decide its own values exactly as its bins did.
/// </remarks>
public static class HistogramBinning
{
    /// <summary>Order statistics a site sends per feature (when it has more present values than this).</summary>
    public const int SketchPoints = 1024;

    /// <summary>
    /// Greedy quantile cuts over weighted distinct values (ascending, no repeats): with at most
    /// <paramref name="maxBins"/> distinct values, one cut between each pair of neighbours; otherwise walk the values
    /// and close a bin once it holds its share (remaining weight / bins left) of what is left. With integer counts as
    /// weights this is the booster's single-site binning.
    /// </summary>
    public static float[] GreedyCuts(ReadOnlySpan<float> distinct, ReadOnlySpan<double> weights, int maxBins)
    {
        if (distinct.Length != weights.Length) throw new ArgumentException($"{distinct.Length} values but {weights.Length} weights");
        if (maxBins < 2) throw new ArgumentOutOfRangeException(nameof(maxBins), "at least 2 bins");
        for (int i = 1; i < distinct.Length; i++)
            if (!(distinct[i] > distinct[i - 1])) throw new ArgumentException($"values must be ascending and distinct (position {i})");
        var result = new List<float>();
        if (distinct.Length <= maxBins)
        {
            for (int i = 0; i + 1 < distinct.Length; i++) result.Add(Midpoint(distinct[i], distinct[i + 1]));
            return result.ToArray();
        }
        double remaining = 0;
        foreach (var w in weights)
        {
            if (!(w >= 0) || !double.IsFinite(w)) throw new ArgumentException($"weight {w} must be finite and >= 0");
            remaining += w;
        }
        int binsLeft = maxBins;
        double inBin = 0;
        for (int i = 0; i + 1 < distinct.Length && binsLeft > 1; i++)
        {
            inBin += weights[i];
            if (inBin >= remaining / binsLeft)
            {
                result.Add(Midpoint(distinct[i], distinct[i + 1]));
                remaining -= inBin;
                inBin = 0;
                binsLeft--;
            }
        }
        return result.ToArray();
    }

    /// <summary>A float threshold t with a ≤ t &lt; b, near the middle; never exactly 0 unless a is 0.</summary>
    public static float Midpoint(float a, float b)
    {
        float m = (float)(((double)a + b) / 2);
        if (!(m >= a && m < b)) m = a;
        if (m == 0) m = a;
        return m;
    }

    /// <summary>Sorts present values and folds repeats into counts (−0 counts as 0; NaN, the missing value, is skipped).
    /// Throws naming the feature on an infinite value or <see cref="float.MinValue"/> (reserved for "missing only"
    /// splits).</summary>
    public static (float[] Distinct, double[] Counts) DistinctCounts(ReadOnlySpan<float> column, int feature)
    {
        var values = new List<float>(column.Length);
        foreach (var x in column)
        {
            if (float.IsNaN(x)) continue;
            if (!float.IsFinite(x) || x == float.MinValue)
                throw new ArgumentException($"feature {feature} has the value {x}; feature values must be finite (NaN = missing)");
            values.Add(x == 0 ? 0f : x);
        }
        values.Sort();
        var distinct = new List<float>();
        var counts = new List<double>();
        foreach (var x in values)
        {
            if (distinct.Count > 0 && distinct[^1] == x) counts[^1]++;
            else { distinct.Add(x); counts.Add(1); }
        }
        return (distinct.ToArray(), counts.ToArray());
    }

    /// <summary>
    /// A site's sketch of one feature's column: with at most <paramref name="points"/> present values, the values with
    /// their counts; otherwise the order statistics at ranks ⌊(k + ½)·n / points⌋ (k = 0 … points − 1), each standing
    /// for n / points rows, repeats folded together. The extremes of a large site are never sent.
    /// </summary>
    public static FeatureSketch Sketch(ReadOnlySpan<float> column, int feature, int points = SketchPoints)
    {
        if (points < 2) throw new ArgumentOutOfRangeException(nameof(points), "at least 2 points");
        var (distinct, counts) = DistinctCounts(column, feature);
        double n = counts.Sum();
        if (n <= points) return new FeatureSketch(distinct, counts);
        var values = new List<float>(points);
        var weights = new List<double>(points);
        // Walk the cumulative counts once: the value at rank r is the distinct value whose run covers r.
        int at = 0;
        double before = 0;
        for (int k = 0; k < points; k++)
        {
            double rank = Math.Floor((k + 0.5) * n / points);
            while (before + counts[at] <= rank) { before += counts[at]; at++; }
            if (values.Count > 0 && values[^1] == distinct[at]) weights[^1] += n / points;
            else { values.Add(distinct[at]); weights.Add(n / points); }
        }
        return new FeatureSketch(values.ToArray(), weights.ToArray());
    }

    /// <summary>Sketches every column of a row-major matrix (the rows listed, or all).</summary>
    public static FeatureSketch[] SketchColumns(float[] values, int columns, int[]? rows = null, int points = SketchPoints)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (columns < 1 || values.Length % columns != 0) throw new ArgumentException($"{values.Length} values do not make rows of {columns} columns");
        var ids = rows ?? Enumerable.Range(0, values.Length / columns).ToArray();
        var sketches = new FeatureSketch[columns];
        var column = new float[ids.Length];
        for (int f = 0; f < columns; f++)
        {
            for (int j = 0; j < ids.Length; j++) column[j] = values[(long)ids[j] * columns + f];
            sketches[f] = Sketch(column, f, points);
        }
        return sketches;
    }

    /// <summary>
    /// The federation's cuts: per feature, every site's sketch pooled (equal values' weights added) and cut with
    /// <see cref="GreedyCuts"/>. When every site sent its exact values (small sites), these are the cuts of the pooled
    /// rows. Throws on sites that disagree on the number of features or on a malformed sketch.
    /// </summary>
    public static float[][] MergeCuts(IReadOnlyList<IReadOnlyList<FeatureSketch>> sites, int maxBins)
    {
        ArgumentNullException.ThrowIfNull(sites);
        if (sites.Count == 0) throw new ArgumentException("no site sketches to merge");
        int features = sites[0].Count;
        for (int s = 1; s < sites.Count; s++)
            if (sites[s].Count != features) throw new ArgumentException($"site {s} sketched {sites[s].Count} features, site 0 sketched {features}");
        var cuts = new float[features][];
        for (int f = 0; f < features; f++)
        {
            var pooled = new SortedDictionary<float, double>();
            for (int s = 0; s < sites.Count; s++)
            {
                var sketch = sites[s][f];
                if (sketch.Values.Length != sketch.Weights.Length) throw new ArgumentException($"site {s}, feature {f}: {sketch.Values.Length} values but {sketch.Weights.Length} weights");
                for (int i = 0; i < sketch.Values.Length; i++)
                {
                    float x = sketch.Values[i] == 0 ? 0f : sketch.Values[i];
                    if (!float.IsFinite(x)) throw new ArgumentException($"site {s}, feature {f}: value {x} is not finite");
                    pooled[x] = pooled.GetValueOrDefault(x) + sketch.Weights[i];
                }
            }
            cuts[f] = GreedyCuts(pooled.Keys.ToArray(), pooled.Values.ToArray(), maxBins);
        }
        return cuts;
    }

    /// <summary>
    /// A site's weighted counts of present values per feature on a fixed, public grid (the same for every site and
    /// every feature): <c>counts[f][b]</c> sums the row weights of the rows whose feature f falls in grid bin b
    /// (underflow and overflow included). With every patient's rows weighing at most W together, a patient moves each
    /// feature's counts by at most W: the query differential privacy noises before the federation sets cuts from it
    /// (<see cref="GridCuts"/>).
    /// </summary>
    public static double[][] GridCounts(ReadOnlySpan<float> values, int columns, ReadOnlySpan<double> rowWeights, HistogramSpec grid)
    {
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        if (values.Length != rowWeights.Length * columns) throw new ArgumentException($"{values.Length} values are not {rowWeights.Length} rows of {columns} columns");
        var counts = new double[columns][];
        for (int f = 0; f < columns; f++) counts[f] = new double[grid.TotalBins];
        for (int r = 0; r < rowWeights.Length; r++)
        {
            var row = values.Slice(r * columns, columns);
            for (int f = 0; f < columns; f++)
                if (!float.IsNaN(row[f])) counts[f][grid.BinIndex(row[f])] += rowWeights[r];
        }
        return counts;
    }

    /// <summary>
    /// Cuts of one feature from (noisy, summed) counts on a public grid: every grid bin whose count exceeds
    /// <paramref name="threshold"/> stands at its lower edge (the underflow bin one bin width below the grid, the
    /// overflow bin at its top) with its count as weight, and <see cref="GreedyCuts"/> chooses among them. Every cut
    /// therefore lies inside a grid bin, whatever the rows: only the counts depend on the data.
    /// </summary>
    public static float[] GridCuts(HistogramSpec grid, ReadOnlySpan<double> counts, double threshold, int maxBins)
    {
        ArgumentNullException.ThrowIfNull(grid);
        if (counts.Length != grid.TotalBins) throw new ArgumentException($"{counts.Length} counts for a grid of {grid.TotalBins} bins");
        if (!(threshold >= 0) || !double.IsFinite(threshold)) throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "The threshold must be a finite number >= 0.");
        var values = new List<float>();
        var weights = new List<double>();
        for (int b = 0; b < counts.Length; b++)
        {
            if (!(counts[b] > threshold)) continue;
            double at = b == grid.UnderflowIndex ? grid.Min - grid.BinWidth : b == grid.OverflowIndex ? grid.Max : grid.BinEdges(b).Lower;
            float v = (float)at;
            if (values.Count > 0 && !(v > values[^1])) throw new ArgumentException($"grid bins {b - 1} and {b} meet at the same float value {v}; use wider bins");
            values.Add(v);
            weights.Add(counts[b]);
        }
        return values.Count < 2 ? [] : GreedyCuts(values.ToArray(), weights.ToArray(), maxBins);
    }
}
