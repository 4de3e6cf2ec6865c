using System.Numerics.Tensors;
using ClinicalFed.Data;
using ClinicalFed.Statistics;

namespace ClinicalFed.Learning;

/// <summary>
/// Z-scores feature columns in place: x' = (x − mean) / sd, with means and standard deviations from the
/// federated statistics so every site uses the same scaling (and a model trained at one site means the same at another).
/// Columns whose standard deviation is 0 (constant), NaN (no observed values) or that are excluded are left
/// unchanged. NaN values stay NaN.
/// </summary>
public sealed class Standardizer
{
    private readonly float[] _means;  // 0 for unchanged columns
    private readonly float[] _inverseScales; // 1 / sd; 1 for unchanged columns
    private readonly double[] _meansDouble;
    private readonly double[] _scalesDouble; // sd; 1 for unchanged columns

    /// <summary>Creates a standardizer from per-column means and standard deviations (population).</summary>
    /// <exception cref="ArgumentException">The lists differ in length, are empty, or a standard deviation is negative or infinite.</exception>
    public Standardizer(IReadOnlyList<double> means, IReadOnlyList<double> standardDeviations)
    {
        ArgumentNullException.ThrowIfNull(means);
        ArgumentNullException.ThrowIfNull(standardDeviations);
        if (means.Count != standardDeviations.Count)
        {
            throw new ArgumentException($"{means.Count} means but {standardDeviations.Count} standard deviations.", nameof(standardDeviations));
        }

        if (means.Count == 0)
        {
            throw new ArgumentException("At least one column is required.", nameof(means));
        }

        int n = means.Count;
        _means = new float[n];
        _inverseScales = new float[n];
        _meansDouble = new double[n];
        _scalesDouble = new double[n];
        for (int c = 0; c < n; c++)
        {
            double sd = standardDeviations[c];
            double mean = means[c];
            if (sd < 0 || double.IsInfinity(sd))
            {
                throw new ArgumentException($"Column {c}: standard deviation {sd} is invalid.", nameof(standardDeviations));
            }

            bool scale = sd > 0 && double.IsFinite(mean);
            _meansDouble[c] = scale ? mean : 0;
            _scalesDouble[c] = scale ? sd : 1;
            _means[c] = (float)_meansDouble[c];
            _inverseScales[c] = (float)(1.0 / _scalesDouble[c]);
        }
    }

    /// <summary>
    /// A standardizer for a table with columns <paramref name="columns"/> (in that order), taking each column's mean and
    /// population standard deviation from <paramref name="statistics"/> by name. Columns for which
    /// <paramref name="include"/> returns false are left unchanged (e.g. 0/1 measurement indicators, if wanted).
    /// </summary>
    /// <exception cref="ArgumentException">A column has no statistics; the message lists every missing column.</exception>
    public static Standardizer FromStatistics(StatisticsSet statistics, IReadOnlyList<string> columns, Func<string, bool>? include = null)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        ArgumentNullException.ThrowIfNull(columns);
        var means = new double[columns.Count];
        var sds = new double[columns.Count];
        var missing = new List<string>();
        for (int c = 0; c < columns.Count; c++)
        {
            FeatureStatistics? feature = statistics.FindFeature(columns[c]);
            if (feature is null)
            {
                missing.Add(columns[c]);
                continue;
            }

            bool use = include?.Invoke(columns[c]) ?? true;
            means[c] = use ? feature.Mean : 0;
            sds[c] = use ? feature.StandardDeviation : 0;
            if (double.IsNaN(sds[c]))
            {
                sds[c] = 0; // no observed values: leave the column unchanged
            }
        }

        if (missing.Count > 0)
        {
            throw new ArgumentException(
                $"The statistics ({statistics}) have no entry for {missing.Count} column(s): {string.Join(", ", missing.Select(m => $"'{m}'"))}.",
                nameof(columns));
        }

        return new Standardizer(means, sds);
    }

    /// <summary>A standardizer for <paramref name="table"/>'s columns (see <see cref="FromStatistics(StatisticsSet, IReadOnlyList{string}, Func{string, bool}?)"/>).</summary>
    public static Standardizer FromStatistics(StatisticsSet statistics, FeatureTable table, Func<string, bool>? include = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        return FromStatistics(statistics, table.Header.Columns, include);
    }

    /// <summary>Number of columns.</summary>
    public int Columns => _means.Length;

    /// <summary>The mean subtracted from each column (0 for unchanged columns).</summary>
    public IReadOnlyList<double> Means => _meansDouble;

    /// <summary>The divisor of each column (1 for unchanged columns).</summary>
    public IReadOnlyList<double> Scales => _scalesDouble;

    /// <summary>Standardizes a row-major array of rows with <see cref="Columns"/> values each, in place.</summary>
    public void Apply(Span<float> rowMajor)
    {
        int n = _means.Length;
        if (rowMajor.Length % n != 0)
        {
            throw new ArgumentException($"{rowMajor.Length} values are not a whole number of rows of {n} columns.", nameof(rowMajor));
        }

        for (int start = 0; start < rowMajor.Length; start += n)
        {
            Span<float> row = rowMajor.Slice(start, n);
            TensorPrimitives.Subtract(row, _means, row);
            TensorPrimitives.Multiply(row, _inverseScales, row);
        }
    }

    /// <summary>Standardizes a row-major array in place.</summary>
    public void Apply(float[] rowMajor)
    {
        ArgumentNullException.ThrowIfNull(rowMajor);
        Apply(rowMajor.AsSpan());
    }

    /// <summary>Standardizes a feature table's values in place.</summary>
    public void Apply(FeatureTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Columns != Columns)
        {
            throw new ArgumentException($"The table has {table.Columns} columns; this standardizer has {Columns}.", nameof(table));
        }

        Apply(table.Values);
    }

    /// <summary>
    /// Converts a model trained on standardized features into the equivalent model on raw features:
    /// w_raw = w / sd, b_raw = b − Σ w·mean / sd. Scores are equal (up to rounding).
    /// </summary>
    public LinearWeights ToRawScale(LinearWeights standardized)
    {
        ArgumentNullException.ThrowIfNull(standardized);
        CheckWidth(standardized);
        var w = new float[Columns];
        double bias = standardized.Bias;
        for (int c = 0; c < w.Length; c++)
        {
            double wc = standardized.Weights[c] / _scalesDouble[c];
            w[c] = (float)wc;
            bias -= wc * _meansDouble[c];
        }

        return new LinearWeights(w, (float)bias);
    }

    /// <summary>The inverse of <see cref="ToRawScale"/>: w = w_raw · sd, b = b_raw + Σ w_raw·mean.</summary>
    public LinearWeights ToStandardizedScale(LinearWeights raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        CheckWidth(raw);
        var w = new float[Columns];
        double bias = raw.Bias;
        for (int c = 0; c < w.Length; c++)
        {
            w[c] = (float)(raw.Weights[c] * _scalesDouble[c]);
            bias += raw.Weights[c] * _meansDouble[c];
        }

        return new LinearWeights(w, (float)bias);
    }

    private void CheckWidth(LinearWeights weights)
    {
        if (weights.Count != Columns)
        {
            throw new ArgumentException($"The model has {weights.Count} weights; this standardizer has {Columns} columns.", nameof(weights));
        }
    }
}
