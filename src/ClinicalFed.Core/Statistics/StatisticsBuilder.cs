namespace ClinicalFed.Statistics;

/// <summary>
/// Streams a site's feature rows into per-column <see cref="FeatureStatistics"/> without keeping the rows.
/// Rows are float32 values in column order; NaN is missing, ±Infinity is rejected (the row is then not added).
/// </summary>
public sealed class StatisticsBuilder
{
    // Upper bound on the floats transposed per block in AddRows (256 KB).
    private const int BlockFloats = 64 * 1024;

    private readonly string _site;
    private readonly string _featureSpecId;
    private readonly string _featureSpecVersion;
    private readonly FeatureStatistics[] _features;
    private float[]? _columnBuffer;

    /// <summary>Starts statistics for <paramref name="site"/> over the given columns and histogram specs.</summary>
    /// <exception cref="ArgumentException">Names/specs are missing, blank, duplicated or their counts differ.</exception>
    public StatisticsBuilder(
        string site,
        string featureSpecId,
        string featureSpecVersion,
        IReadOnlyList<string> columnNames,
        IReadOnlyList<HistogramSpec> histograms)
    {
        StatisticsSet.ValidateIdentity(site, featureSpecId, featureSpecVersion);
        ArgumentNullException.ThrowIfNull(columnNames);
        ArgumentNullException.ThrowIfNull(histograms);
        if (columnNames.Count == 0)
        {
            throw new ArgumentException("At least one column is required.", nameof(columnNames));
        }

        if (histograms.Count != columnNames.Count)
        {
            throw new ArgumentException(
                $"Got {columnNames.Count} column names but {histograms.Count} histogram specs; there must be one spec per column.",
                nameof(histograms));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        _features = new FeatureStatistics[columnNames.Count];
        for (int c = 0; c < columnNames.Count; c++)
        {
            string name = columnNames[c];
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new ArgumentException($"Column name {c} is empty.", nameof(columnNames));
            }

            if (!seen.Add(name))
            {
                throw new ArgumentException($"Column name '{name}' appears more than once.", nameof(columnNames));
            }

            HistogramSpec histogram = histograms[c]
                ?? throw new ArgumentException($"Histogram spec for column '{name}' is null.", nameof(histograms));
            _features[c] = new FeatureStatistics(name, histogram);
        }

        _site = site;
        _featureSpecId = featureSpecId;
        _featureSpecVersion = featureSpecVersion;
    }

    /// <summary>Number of columns each row must have.</summary>
    public int Columns => _features.Length;

    /// <summary>Rows added so far.</summary>
    public long Rows { get; private set; }

    /// <summary>Adds one row of <see cref="Columns"/> values.</summary>
    /// <exception cref="ArgumentException">Wrong length, or a value is ±Infinity (nothing is added).</exception>
    public void AddRow(ReadOnlySpan<float> row)
    {
        if (row.Length != _features.Length)
        {
            throw new ArgumentException($"Row has {row.Length} values, expected {_features.Length}.", nameof(row));
        }

        ThrowIfInfinite(row);
        for (int c = 0; c < row.Length; c++)
        {
            _features[c].Add(row[c]);
        }

        Rows++;
    }

    /// <summary>Adds many rows stored row-major (length a multiple of <see cref="Columns"/>). All or nothing.</summary>
    /// <exception cref="ArgumentException">Length is not a multiple of Columns, or a value is ±Infinity (nothing is added).</exception>
    public void AddRows(ReadOnlySpan<float> rowMajor)
    {
        int columns = _features.Length;
        if (rowMajor.Length % columns != 0)
        {
            throw new ArgumentException(
                $"Row-major data has {rowMajor.Length} values, which is not a multiple of {columns} columns.", nameof(rowMajor));
        }

        ThrowIfInfinite(rowMajor);
        int rows = rowMajor.Length / columns;
        int blockRows = Math.Max(1, BlockFloats / columns);
        int needed = Math.Min(blockRows, rows) * columns;
        if (_columnBuffer is null || _columnBuffer.Length < needed)
        {
            _columnBuffer = new float[needed];
        }

        float[] buffer = _columnBuffer;

        for (int start = 0; start < rows; start += blockRows)
        {
            int n = Math.Min(blockRows, rows - start);
            ReadOnlySpan<float> block = rowMajor.Slice(start * columns, n * columns);

            // Transpose the block so each column is contiguous, then use the tight AddRange loop.
            for (int r = 0; r < n; r++)
            {
                ReadOnlySpan<float> row = block.Slice(r * columns, columns);
                for (int c = 0; c < columns; c++)
                {
                    buffer[c * n + r] = row[c];
                }
            }

            for (int c = 0; c < columns; c++)
            {
                _features[c].AddRange(buffer.AsSpan(c * n, n));
            }
        }

        Rows += rows;
    }

    /// <summary>Snapshot of the statistics so far as a site-scoped <see cref="StatisticsSet"/>; the builder can keep going.</summary>
    public StatisticsSet Build() =>
        new(StatisticsSet.SiteScope, [_site], _featureSpecId, _featureSpecVersion, Rows, _features);

    private void ThrowIfInfinite(ReadOnlySpan<float> rowMajor)
    {
        for (int i = 0; i < rowMajor.Length; i++)
        {
            if (float.IsInfinity(rowMajor[i]))
            {
                int column = i % _features.Length;
                long row = Rows + i / _features.Length;
                throw new ArgumentException(
                    $"Feature '{_features[column].Name}': row {row} has {(rowMajor[i] > 0 ? "+" : "-")}Infinity; " +
                    "infinite values are not allowed (use NaN for missing values).",
                    nameof(rowMajor));
            }
        }
    }
}
