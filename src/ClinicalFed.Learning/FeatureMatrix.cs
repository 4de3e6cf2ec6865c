using System.Numerics.Tensors;
using ClinicalFed.Data;

namespace ClinicalFed.Learning;

/// <summary>
/// Labelled training rows held as a row-major float32 matrix, optionally restricted to a subset of its rows, with
/// optional per-row group ids (the patient, the privacy unit for differential privacy) and example weights.
/// The arrays are shared, not copied: a <see cref="FeatureTable"/>'s arrays can back a matrix directly, and
/// changing them later (e.g. <see cref="Standardizer.Apply(float[])"/>) changes what the matrix holds.
/// </summary>
public sealed class FeatureMatrix
{
    /// <summary>Wraps arrays without copying and validates their shapes and labels.</summary>
    /// <param name="values">Row-major values of all underlying rows (length = labels.Length × columns).</param>
    /// <param name="columns">Number of feature columns.</param>
    /// <param name="labels">Per underlying row: 0 or 1.</param>
    /// <param name="rows">The underlying rows this matrix uses, in order (null = all rows). Duplicates are allowed (bootstrap).</param>
    /// <param name="groupIds">Per underlying row: a dense group index 0..groupCount-1 (null = no groups).</param>
    /// <param name="groupCount">Number of distinct groups (required with <paramref name="groupIds"/>).</param>
    /// <param name="weights">Per underlying row: a finite, non-negative example weight (null = all 1).</param>
    /// <param name="columnNames">Names of the feature columns (null = "f0", "f1", ...).</param>
    /// <exception cref="ArgumentException">Shapes disagree, a label is not 0/1, a row or group index is out of range, or a weight is invalid.</exception>
    public FeatureMatrix(
        float[] values,
        int columns,
        float[] labels,
        int[]? rows = null,
        int[]? groupIds = null,
        int groupCount = 0,
        float[]? weights = null,
        IReadOnlyList<string>? columnNames = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        if ((long)labels.Length * columns != values.Length)
        {
            throw new ArgumentException(
                $"values has {values.Length} entries but {labels.Length} labels × {columns} columns = {(long)labels.Length * columns}.", nameof(values));
        }

        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] is not (0f or 1f))
            {
                throw new ArgumentException($"Label of row {i} is {labels[i]}; binary labels must be 0 or 1.", nameof(labels));
            }
        }

        if (rows is not null)
        {
            for (int i = 0; i < rows.Length; i++)
            {
                if ((uint)rows[i] >= (uint)labels.Length)
                {
                    throw new ArgumentException($"rows[{i}] = {rows[i]} is outside 0..{labels.Length - 1}.", nameof(rows));
                }
            }
        }

        if (groupIds is not null)
        {
            if (groupIds.Length != labels.Length)
            {
                throw new ArgumentException($"groupIds has {groupIds.Length} entries but there are {labels.Length} rows.", nameof(groupIds));
            }

            for (int i = 0; i < groupIds.Length; i++)
            {
                if ((uint)groupIds[i] >= (uint)groupCount)
                {
                    throw new ArgumentException($"groupIds[{i}] = {groupIds[i]} is outside 0..{groupCount - 1} (groupCount {groupCount}).", nameof(groupIds));
                }
            }
        }
        else if (groupCount != 0)
        {
            throw new ArgumentException("groupCount was given without groupIds.", nameof(groupCount));
        }

        if (weights is not null)
        {
            if (weights.Length != labels.Length)
            {
                throw new ArgumentException($"weights has {weights.Length} entries but there are {labels.Length} rows.", nameof(weights));
            }

            for (int i = 0; i < weights.Length; i++)
            {
                if (!(weights[i] >= 0) || !float.IsFinite(weights[i]))
                {
                    throw new ArgumentException($"weights[{i}] = {weights[i]}; example weights must be finite and non-negative.", nameof(weights));
                }
            }
        }

        if (columnNames is not null && columnNames.Count != columns)
        {
            throw new ArgumentException($"{columnNames.Count} column names were given for {columns} columns.", nameof(columnNames));
        }

        Values = values;
        Columns = columns;
        Labels = labels;
        RowIndices = rows;
        GroupIds = groupIds;
        GroupCount = groupCount;
        Weights = weights;
        ColumnNames = columnNames ?? Enumerable.Range(0, columns).Select(c => "f" + c).ToArray();
    }

    /// <summary>
    /// A matrix over a feature table's arrays (no copy), optionally restricted to <paramref name="rows"/>.
    /// Groups are the table's patients (<see cref="RowKey.PatientId"/>), numbered densely in order of first appearance.
    /// </summary>
    public static FeatureMatrix FromTable(FeatureTable table, int[]? rows = null, float[]? weights = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        int[] groups = PatientGroups(table.Keys, out int groupCount);
        return new FeatureMatrix(table.Values, table.Columns, table.Labels, rows, groups, groupCount, weights, table.Header.Columns);
    }

    /// <summary>Dense patient indices (0, 1, ... in order of first appearance) for each row's key.</summary>
    public static int[] PatientGroups(IReadOnlyList<RowKey> keys, out int groupCount)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var groups = new int[keys.Count];
        for (int i = 0; i < groups.Length; i++)
        {
            string patient = keys[i].PatientId;
            if (!ids.TryGetValue(patient, out int id))
            {
                id = ids.Count;
                ids.Add(patient, id);
            }

            groups[i] = id;
        }

        groupCount = ids.Count;
        return groups;
    }

    /// <summary>Row-major values of all underlying rows (shared, not a copy).</summary>
    public float[] Values { get; }

    /// <summary>Number of feature columns.</summary>
    public int Columns { get; }

    /// <summary>Labels (0/1) of all underlying rows.</summary>
    public float[] Labels { get; }

    /// <summary>The underlying rows in use, or null for all of them.</summary>
    public int[]? RowIndices { get; }

    /// <summary>Dense group (patient) index of every underlying row, or null.</summary>
    public int[]? GroupIds { get; }

    /// <summary>Number of distinct groups in <see cref="GroupIds"/> (0 without groups).</summary>
    public int GroupCount { get; }

    /// <summary>Example weights of all underlying rows, or null (all 1).</summary>
    public float[]? Weights { get; }

    /// <summary>Feature column names.</summary>
    public IReadOnlyList<string> ColumnNames { get; }

    /// <summary>Number of rows in use.</summary>
    public int RowCount => RowIndices?.Length ?? Labels.Length;

    /// <summary>The underlying row of the <paramref name="i"/>-th row in use.</summary>
    public int UnderlyingRow(int i) => RowIndices is null ? i : RowIndices[i];

    /// <summary>Features of the <paramref name="i"/>-th row in use.</summary>
    public ReadOnlySpan<float> Features(int i) => Values.AsSpan(UnderlyingRow(i) * Columns, Columns);

    /// <summary>Label of the <paramref name="i"/>-th row in use.</summary>
    public bool Label(int i) => Labels[UnderlyingRow(i)] == 1f;

    /// <summary>Example weight of the <paramref name="i"/>-th row in use (1 without weights).</summary>
    public float Weight(int i) => Weights is null ? 1f : Weights[UnderlyingRow(i)];

    /// <summary>A matrix over the same arrays restricted to <paramref name="rows"/> (indices into this matrix's rows in use).</summary>
    public FeatureMatrix Subset(ReadOnlySpan<int> rows)
    {
        var underlying = new int[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            if ((uint)rows[i] >= (uint)RowCount)
            {
                throw new ArgumentOutOfRangeException(nameof(rows), $"rows[{i}] = {rows[i]} is outside 0..{RowCount - 1}.");
            }

            underlying[i] = UnderlyingRow(rows[i]);
        }

        return new FeatureMatrix(Values, Columns, Labels, underlying, GroupIds, GroupCount, Weights, ColumnNames);
    }

    /// <summary>Counts the positive and negative rows in use.</summary>
    public (int Positives, int Negatives) CountClasses()
    {
        int positives = 0;
        for (int i = 0; i < RowCount; i++)
        {
            if (Label(i))
            {
                positives++;
            }
        }

        return (positives, RowCount - positives);
    }

    /// <summary>
    /// Throws when a row in use holds NaN (missing) or an infinite value: trainers need imputed features.
    /// The message names the first such row and column.
    /// </summary>
    public void ThrowIfNotFinite()
    {
        for (int i = 0; i < RowCount; i++)
        {
            ReadOnlySpan<float> row = Features(i);
            // A vectorised sum is NaN/infinite when any element is; only then look for the culprit.
            if (float.IsFinite(TensorPrimitives.Sum(row)))
            {
                continue;
            }

            for (int c = 0; c < row.Length; c++)
            {
                if (!float.IsFinite(row[c]))
                {
                    throw new InvalidOperationException(
                        $"Row {UnderlyingRow(i)} has {row[c]} in column '{ColumnNames[c]}'. Training needs finite features: impute missing values " +
                        "(clinicalfed impute) before training.");
                }
            }
        }
    }
}
