using System.Numerics;

namespace ClinicalFed.Statistics;

/// <summary>
/// Per-column fill values derived from (usually federated) statistics. <see cref="Apply"/> replaces NaN cells
/// with their column's fill value; columns that are not imputed have fill value NaN and are left untouched.
/// </summary>
public sealed record ImputationPlan
{
    private readonly float[] _fillValues;

    private ImputationPlan(
        ImputationMethod method,
        string scope,
        IReadOnlyList<string> sites,
        string featureSpecId,
        string featureSpecVersion,
        string[] columnNames,
        float[] fillValues,
        string[] warnings)
    {
        Method = method;
        Scope = scope;
        Sites = sites;
        FeatureSpecId = featureSpecId;
        FeatureSpecVersion = featureSpecVersion;
        ColumnNames = Array.AsReadOnly(columnNames);
        _fillValues = fillValues;
        FillValues = Array.AsReadOnly(fillValues);
        Warnings = Array.AsReadOnly(warnings);
    }

    /// <summary>The statistic used for the fill values.</summary>
    public ImputationMethod Method { get; }

    /// <summary>Scope ("site" or "federated") of the statistics the plan came from.</summary>
    public string Scope { get; }

    /// <summary>Sites whose statistics the plan came from.</summary>
    public IReadOnlyList<string> Sites { get; }

    /// <summary>Feature spec id of the statistics.</summary>
    public string FeatureSpecId { get; }

    /// <summary>Feature spec version of the statistics.</summary>
    public string FeatureSpecVersion { get; }

    /// <summary>Column names in column order.</summary>
    public IReadOnlyList<string> ColumnNames { get; }

    /// <summary>Fill value per column, in column order; NaN for columns that are not imputed.</summary>
    public IReadOnlyList<float> FillValues { get; }

    /// <summary>Notes about columns that could not be imputed from data (no observed values, filled with 0).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Number of columns the plan expects.</summary>
    public int Columns => _fillValues.Length;

    /// <summary>
    /// Builds a plan from <paramref name="stats"/>: each selected column's fill value is its mean or median
    /// (rounded to float32). Columns without any observed value get fill value 0 and a warning.
    /// </summary>
    /// <param name="stats">Reference statistics.</param>
    /// <param name="method">Mean or median.</param>
    /// <param name="columnsToImpute">Columns to impute (by name); null imputes every column.</param>
    /// <exception cref="ArgumentException">A requested column does not exist in <paramref name="stats"/>.</exception>
    public static ImputationPlan From(StatisticsSet stats, ImputationMethod method, IReadOnlySet<string>? columnsToImpute = null)
    {
        ArgumentNullException.ThrowIfNull(stats);
        if (!Enum.IsDefined(method))
        {
            throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown imputation method.");
        }

        if (columnsToImpute is not null)
        {
            string[] unknown = columnsToImpute.Where(c => stats.FindFeature(c) is null).Order(StringComparer.Ordinal).ToArray();
            if (unknown.Length > 0)
            {
                throw new ArgumentException(
                    $"Cannot impute unknown column(s) {string.Join(", ", unknown.Select(c => $"'{c}'"))}; " +
                    $"the statistics have: {string.Join(", ", stats.Features.Select(f => f.Name))}.",
                    nameof(columnsToImpute));
            }
        }

        int columns = stats.Features.Count;
        var names = new string[columns];
        var fills = new float[columns];
        var warnings = new List<string>();
        for (int c = 0; c < columns; c++)
        {
            FeatureStatistics feature = stats.Features[c];
            names[c] = feature.Name;
            if (columnsToImpute is not null && !columnsToImpute.Contains(feature.Name))
            {
                fills[c] = float.NaN;
            }
            else if (feature.Count == 0)
            {
                fills[c] = 0f;
                warnings.Add(
                    $"Column '{feature.Name}' has no observed values in the {stats.Scope} statistics ({feature.Missing} missing); imputing 0.");
            }
            else
            {
                fills[c] = (float)(method == ImputationMethod.Mean ? feature.Mean : feature.Median);
            }
        }

        return new ImputationPlan(
            method, stats.Scope, stats.Sites, stats.FeatureSpecId, stats.FeatureSpecVersion, names, fills, warnings.ToArray());
    }

    /// <summary>Value equality over method, source, column names, fill values (NaN equals NaN) and warnings.</summary>
    public bool Equals(ImputationPlan? other) =>
        other is not null &&
        (ReferenceEquals(this, other) ||
         (Method == other.Method &&
          Scope == other.Scope &&
          FeatureSpecId == other.FeatureSpecId &&
          FeatureSpecVersion == other.FeatureSpecVersion &&
          Sites.SequenceEqual(other.Sites) &&
          ColumnNames.SequenceEqual(other.ColumnNames) &&
          _fillValues.SequenceEqual(other._fillValues) &&
          Warnings.SequenceEqual(other.Warnings)));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Method, Scope, FeatureSpecId, FeatureSpecVersion, _fillValues.Length);

    /// <summary>True when column <paramref name="column"/> is imputed (its fill value is not NaN).</summary>
    public bool IsImputed(int column) => !float.IsNaN(_fillValues[column]);

    /// <summary>Replaces every NaN in a row-major table of <paramref name="columns"/> columns with its column's fill value.</summary>
    /// <exception cref="ArgumentException"><paramref name="columns"/> differs from the plan, or the length is not a multiple of it.</exception>
    public void Apply(Span<float> rowMajor, int columns)
    {
        if (columns != _fillValues.Length)
        {
            throw new ArgumentException($"Data has {columns} columns but the imputation plan has {_fillValues.Length}.", nameof(columns));
        }

        FillMissing(rowMajor, _fillValues);
    }

    /// <summary>
    /// Replaces each NaN at position i of a row-major table with <paramref name="fillValues"/>[i % columns], where
    /// columns = fillValues.Length. A NaN fill value leaves that column's NaNs in place. Vectorised.
    /// </summary>
    /// <exception cref="ArgumentException">No fill values, or the length is not a multiple of their count.</exception>
    public static void FillMissing(Span<float> rowMajor, ReadOnlySpan<float> fillValues)
    {
        int columns = fillValues.Length;
        if (columns == 0)
        {
            throw new ArgumentException("At least one fill value (column) is required.", nameof(fillValues));
        }

        if (rowMajor.Length % columns != 0)
        {
            throw new ArgumentException(
                $"Row-major data has {rowMajor.Length} values, which is not a multiple of {columns} columns.", nameof(rowMajor));
        }

        int width = Vector<float>.Count;
        if (!Vector.IsHardwareAccelerated || width == 1)
        {
            FillMissingScalar(rowMajor, fillValues);
        }
        else if (columns >= width)
        {
            FillMissingWideRows(rowMajor, fillValues, width);
        }
        else
        {
            FillMissingNarrowRows(rowMajor, fillValues, width);
        }
    }

    // Rows at least one vector wide: vectorise along each row against the fill vector; the last vector of a
    // row overlaps the previous one, which is harmless because replacing NaNs is idempotent.
    private static void FillMissingWideRows(Span<float> rowMajor, ReadOnlySpan<float> fillValues, int width)
    {
        int columns = fillValues.Length;
        int lastStart = columns - width;
        for (int rowStart = 0; rowStart < rowMajor.Length; rowStart += columns)
        {
            Span<float> row = rowMajor.Slice(rowStart, columns);
            int c = 0;
            for (; c <= lastStart; c += width)
            {
                FillVector(row.Slice(c, width), fillValues.Slice(c, width));
            }

            if (c < columns)
            {
                FillVector(row.Slice(lastStart, width), fillValues.Slice(lastStart, width));
            }
        }
    }

    // Rows narrower than a vector: `width` rows span exactly `columns` vectors, so a pattern of the fill values
    // repeated `width` times lines up with the data at every multiple of columns * width.
    private static void FillMissingNarrowRows(Span<float> rowMajor, ReadOnlySpan<float> fillValues, int width)
    {
        int columns = fillValues.Length;
        int period = columns * width;
        Span<float> pattern = stackalloc float[period];
        for (int i = 0; i < period; i++)
        {
            pattern[i] = fillValues[i % columns];
        }

        int vectorEnd = rowMajor.Length - rowMajor.Length % period;
        for (int blockStart = 0; blockStart < vectorEnd; blockStart += period)
        {
            for (int k = 0; k < period; k += width)
            {
                FillVector(rowMajor.Slice(blockStart + k, width), pattern.Slice(k, width));
            }
        }

        FillMissingScalar(rowMajor[vectorEnd..], fillValues);
    }

    private static void FillVector(Span<float> target, ReadOnlySpan<float> fill)
    {
        var values = new Vector<float>(target);
        if (Vector.EqualsAll(values, values))
        {
            return; // no NaN in this vector
        }

        Vector<int> present = Vector.Equals(values, values);
        Vector.ConditionalSelect(present, values, new Vector<float>(fill)).CopyTo(target);
    }

    // `rowMajor` must start at a row boundary.
    private static void FillMissingScalar(Span<float> rowMajor, ReadOnlySpan<float> fillValues)
    {
        int columns = fillValues.Length;
        int c = 0;
        for (int i = 0; i < rowMajor.Length; i++)
        {
            if (float.IsNaN(rowMajor[i]))
            {
                rowMajor[i] = fillValues[c];
            }

            if (++c == columns)
            {
                c = 0;
            }
        }
    }
}
