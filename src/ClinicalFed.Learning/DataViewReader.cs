using Microsoft.ML;
using Microsoft.ML.Data;

namespace ClinicalFed.Learning;

/// <summary>Reads any IDataView into a <see cref="FeatureMatrix"/> (a <see cref="FeatureDataView"/> is used as it is, without copying).</summary>
public static class DataViewReader
{
    /// <summary>
    /// The rows of <paramref name="data"/> as a matrix. Features must be a known-size Vector&lt;Single&gt;; the label Boolean
    /// (or Single 0/1); the weight Single; the group UInt32, Int32, Int64 or Text (numbered densely).
    /// </summary>
    public static FeatureMatrix ToMatrix(
        IDataView data,
        string featureColumn = FeatureData.FeaturesColumn,
        string labelColumn = FeatureData.LabelColumn,
        string? weightColumn = null,
        string? groupColumn = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data is FeatureDataView view &&
            featureColumn == FeatureData.FeaturesColumn && labelColumn == FeatureData.LabelColumn &&
            (weightColumn is null || (weightColumn == FeatureData.WeightColumn && view.Matrix.Weights is not null)) &&
            (groupColumn is null || (groupColumn == FeatureData.GroupColumn && view.Matrix.GroupIds is not null)))
        {
            FeatureMatrix m = view.Matrix;
            // Drop weights the caller did not ask for, keep everything else shared.
            return weightColumn is null && m.Weights is not null
                ? new FeatureMatrix(m.Values, m.Columns, m.Labels, m.RowIndices, m.GroupIds, m.GroupCount, null, m.ColumnNames)
                : m;
        }

        DataViewSchema schema = data.Schema;
        DataViewSchema.Column features = Require(schema, featureColumn, "feature");
        if (features.Type is not VectorDataViewType { ItemType: var itemType, Size: var width } || itemType != NumberDataViewType.Single || width == 0)
        {
            throw new ArgumentException($"Feature column '{featureColumn}' is {features.Type}; a known-size Vector<Single> is needed.", nameof(featureColumn));
        }

        DataViewSchema.Column label = Require(schema, labelColumn, "label");
        if (label.Type != BooleanDataViewType.Instance && label.Type != NumberDataViewType.Single)
        {
            throw new ArgumentException($"Label column '{labelColumn}' is {label.Type}; Boolean or Single 0/1 is needed.", nameof(labelColumn));
        }

        DataViewSchema.Column? weight = weightColumn is null ? null : Require(schema, weightColumn, "example weight");
        if (weight is { } wc && wc.Type != NumberDataViewType.Single)
        {
            throw new ArgumentException($"Weight column '{weightColumn}' is {wc.Type}; Single is needed.", nameof(weightColumn));
        }

        DataViewSchema.Column? group = groupColumn is null ? null : Require(schema, groupColumn, "group");
        var columns = new List<DataViewSchema.Column> { features, label };
        if (weight is { } w)
        {
            columns.Add(w);
        }

        if (group is { } g)
        {
            columns.Add(g);
        }

        long? known = data.GetRowCount();
        var values = new List<float>(known is long k ? (int)Math.Min(k * width, int.MaxValue / 2) : 1024);
        var labels = new List<float>();
        var weights = weight is null ? null : new List<float>();
        var groups = group is null ? null : new List<int>();
        var groupIds = new Dictionary<string, int>(StringComparer.Ordinal);

        using DataViewRowCursor cursor = data.GetRowCursor(columns);
        ValueGetter<VBuffer<float>> getFeatures = cursor.GetGetter<VBuffer<float>>(features);
        Func<float> getLabel = LabelGetter(cursor, label);
        ValueGetter<float>? getWeight = weight is { } wcol ? cursor.GetGetter<float>(wcol) : null;
        Func<string>? getGroup = group is { } gcol ? GroupGetter(cursor, gcol) : null;
        VBuffer<float> buffer = default;
        float weightValue = 0;
        while (cursor.MoveNext())
        {
            getFeatures(ref buffer);
            if (buffer.IsDense)
            {
                values.AddRange(buffer.GetValues());
            }
            else
            {
                var dense = new float[width];
                buffer.CopyTo(dense);
                values.AddRange(dense);
            }

            labels.Add(getLabel());
            if (getWeight is not null)
            {
                getWeight(ref weightValue);
                weights!.Add(weightValue);
            }

            if (getGroup is not null)
            {
                string key = getGroup();
                if (!groupIds.TryGetValue(key, out int id))
                {
                    id = groupIds.Count;
                    groupIds.Add(key, id);
                }

                groups!.Add(id);
            }
        }

        string[]? names = SlotNames(features, width);
        return new FeatureMatrix(
            values.ToArray(), width, labels.ToArray(), rows: null, groups?.ToArray(), groups is null ? 0 : groupIds.Count, weights?.ToArray(), names);
    }

    private static DataViewSchema.Column Require(DataViewSchema schema, string name, string role) =>
        schema.GetColumnOrNull(name)
        ?? throw new ArgumentException($"The data has no {role} column '{name}'. Columns: {string.Join(", ", schema.Select(c => c.Name))}.");

    private static Func<float> LabelGetter(DataViewRowCursor cursor, DataViewSchema.Column label)
    {
        if (label.Type == BooleanDataViewType.Instance)
        {
            ValueGetter<bool> get = cursor.GetGetter<bool>(label);
            bool v = false;
            return () =>
            {
                get(ref v);
                return v ? 1f : 0f;
            };
        }

        ValueGetter<float> getFloat = cursor.GetGetter<float>(label);
        float f = 0;
        return () =>
        {
            getFloat(ref f);
            return f;
        };
    }

    private static Func<string> GroupGetter(DataViewRowCursor cursor, DataViewSchema.Column group)
    {
        DataViewType type = group.Type;
        if (type == NumberDataViewType.UInt32)
        {
            var get = cursor.GetGetter<uint>(group);
            uint v = 0;
            return () => { get(ref v); return v.ToString(System.Globalization.CultureInfo.InvariantCulture); };
        }

        if (type == NumberDataViewType.Int32)
        {
            var get = cursor.GetGetter<int>(group);
            int v = 0;
            return () => { get(ref v); return v.ToString(System.Globalization.CultureInfo.InvariantCulture); };
        }

        if (type == NumberDataViewType.Int64)
        {
            var get = cursor.GetGetter<long>(group);
            long v = 0;
            return () => { get(ref v); return v.ToString(System.Globalization.CultureInfo.InvariantCulture); };
        }

        if (type == TextDataViewType.Instance)
        {
            var get = cursor.GetGetter<ReadOnlyMemory<char>>(group);
            ReadOnlyMemory<char> v = default;
            return () => { get(ref v); return v.ToString(); };
        }

        throw new ArgumentException($"Group column '{group.Name}' is {type}; UInt32, Int32, Int64 or Text is needed.");
    }

    private static string[]? SlotNames(DataViewSchema.Column features, int width)
    {
        if (features.Annotations.Schema.GetColumnOrNull("SlotNames") is not { } slotColumn ||
            slotColumn.Type is not VectorDataViewType { ItemType: TextDataViewType, Size: var size } || size != width)
        {
            return null;
        }

        VBuffer<ReadOnlyMemory<char>> names = default;
        features.Annotations.GetValue("SlotNames", ref names);
        var result = new string[width];
        int i = 0;
        foreach (ReadOnlyMemory<char> name in names.DenseValues())
        {
            result[i] = name.IsEmpty ? "f" + i : name.ToString();
            i++;
        }

        return result;
    }
}
