namespace ClinicalFed.Learning;

/// <summary>
/// Draws mini-batches of units — rows, or whole groups (patients) — from a <see cref="FeatureMatrix"/>, deterministically
/// for a given seed. With <see cref="SamplingUnit.Group"/> every batch holds all rows of each patient it samples, which
/// patient-level differential privacy needs.
/// </summary>
public sealed class MiniBatchSampler
{
    private readonly int[]? _unitStart; // group mode: rows of unit u are _unitRows[_unitStart[u].._unitStart[u+1]]
    private readonly int[] _unitRows;   // row mode: the identity, unit u is row u
    private readonly BatchSampling _sampling;
    private readonly Random _random;
    private readonly int[] _permutation;

    /// <param name="data">The rows to sample from.</param>
    /// <param name="unit">Rows or groups.</param>
    /// <param name="sampling">Shuffled partition or Poisson subsampling.</param>
    /// <param name="batchSize">Units per batch (the expected number for Poisson).</param>
    /// <param name="seed">Seed of the sampler's random generator.</param>
    /// <exception cref="ArgumentException">Group sampling on data without groups, or no rows.</exception>
    public MiniBatchSampler(FeatureMatrix data, SamplingUnit unit, BatchSampling sampling, int batchSize, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (data.RowCount == 0)
        {
            throw new ArgumentException("There are no rows to sample.", nameof(data));
        }

        Unit = unit;
        _sampling = sampling;
        BatchSize = batchSize;
        _random = new Random(seed);
        if (unit == SamplingUnit.Group)
        {
            if (data.GroupIds is null)
            {
                throw new ArgumentException(
                    "Sampling by group needs group ids (patients): build the matrix from a feature table (FeatureMatrix.FromTable) or name a group column.",
                    nameof(data));
            }

            // Counting sort of the rows in use by group; units are the groups present, in order of first appearance.
            int[] groups = data.GroupIds;
            var unitOfGroup = new int[data.GroupCount];
            Array.Fill(unitOfGroup, -1);
            var sizes = new List<int>();
            for (int i = 0; i < data.RowCount; i++)
            {
                int g = groups[data.UnderlyingRow(i)];
                if (unitOfGroup[g] < 0)
                {
                    unitOfGroup[g] = sizes.Count;
                    sizes.Add(0);
                }

                sizes[unitOfGroup[g]]++;
            }

            _unitStart = new int[sizes.Count + 1];
            for (int u = 0; u < sizes.Count; u++)
            {
                _unitStart[u + 1] = _unitStart[u] + sizes[u];
            }

            _unitRows = new int[data.RowCount];
            var fill = (int[])_unitStart.Clone();
            for (int i = 0; i < data.RowCount; i++)
            {
                int u = unitOfGroup[groups[data.UnderlyingRow(i)]];
                _unitRows[fill[u]++] = i;
            }

            UnitCount = sizes.Count;
        }
        else
        {
            UnitCount = data.RowCount;
            _unitRows = new int[UnitCount];
            for (int i = 0; i < UnitCount; i++)
            {
                _unitRows[i] = i;
            }
        }

        _permutation = new int[UnitCount];
        for (int u = 0; u < UnitCount; u++)
        {
            _permutation[u] = u;
        }

        MeanRowsPerUnit = (double)data.RowCount / UnitCount;
    }

    /// <summary>Rows or groups.</summary>
    public SamplingUnit Unit { get; }

    /// <summary>Number of units (rows in use, or distinct groups among them).</summary>
    public int UnitCount { get; }

    /// <summary>Units per batch (expected, for Poisson).</summary>
    public int BatchSize { get; }

    /// <summary>Rows in use / units.</summary>
    public double MeanRowsPerUnit { get; }

    /// <summary>The probability that a given unit is in a given batch: min(1, batch size / units).</summary>
    public double SamplingRate => Math.Min(1.0, (double)BatchSize / UnitCount);

    /// <summary>The expected number of units per batch.</summary>
    public double ExpectedBatchUnits => _sampling == BatchSampling.Poisson ? SamplingRate * UnitCount : Math.Min(BatchSize, UnitCount);

    /// <summary>Batches per epoch: ⌈units / batch⌉ for shuffling, max(1, round(units / batch)) for Poisson.</summary>
    public int StepsPerEpoch => _sampling == BatchSampling.Shuffle
        ? (UnitCount + BatchSize - 1) / BatchSize
        : Math.Max(1, (int)Math.Round((double)UnitCount / BatchSize));

    /// <summary>The rows (indices into the matrix's rows in use) of unit <paramref name="unit"/>.</summary>
    public ReadOnlySpan<int> RowsOf(int unit)
    {
        if ((uint)unit >= (uint)UnitCount)
        {
            throw new ArgumentOutOfRangeException(nameof(unit));
        }

        return _unitStart is null
            ? _unitRows.AsSpan(unit, 1)
            : _unitRows.AsSpan(_unitStart[unit], _unitStart[unit + 1] - _unitStart[unit]);
    }

    /// <summary>Number of rows of unit <paramref name="unit"/>.</summary>
    public int RowCountOf(int unit) => _unitStart is null ? 1 : _unitStart[unit + 1] - _unitStart[unit];

    /// <summary>The next epoch's batches, each a list of unit indices.</summary>
    public IReadOnlyList<int[]> NextEpoch()
    {
        var batches = new List<int[]>(StepsPerEpoch);
        if (_sampling == BatchSampling.Shuffle)
        {
            _random.Shuffle(_permutation);
            for (int start = 0; start < UnitCount; start += BatchSize)
            {
                batches.Add(_permutation.AsSpan(start, Math.Min(BatchSize, UnitCount - start)).ToArray());
            }

            return batches;
        }

        double q = SamplingRate;
        var batch = new List<int>();
        for (int step = 0; step < StepsPerEpoch; step++)
        {
            batch.Clear();
            if (q >= 1)
            {
                for (int u = 0; u < UnitCount; u++)
                {
                    batch.Add(u);
                }
            }
            else
            {
                // Independent Bernoulli(q) inclusion of every unit, drawn by geometric skips (O(batch) per step).
                double logOneMinusQ = Math.Log(1 - q);
                long u = -1;
                while (true)
                {
                    double r = 1 - _random.NextDouble(); // (0, 1]
                    u += 1 + (long)Math.Floor(Math.Log(r) / logOneMinusQ);
                    if (u >= UnitCount)
                    {
                        break;
                    }

                    batch.Add((int)u);
                }
            }

            batches.Add(batch.ToArray());
        }

        return batches;
    }
}
