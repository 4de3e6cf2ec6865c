using ClinicalFed.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace ClinicalFed.Learning;

/// <summary>
/// Turns feature tables into ML.NET data. The view reads the table's row-major array directly (no per-row objects,
/// no copy), so hundreds of thousands of rows × ~100 columns cost only the table itself.
/// </summary>
public static class FeatureData
{
    /// <summary>Vector&lt;Single, width&gt; of the feature values, with the table's column names as slot names.</summary>
    public const string FeaturesColumn = "Features";

    /// <summary>Boolean label (table label 1 → true).</summary>
    public const string LabelColumn = "Label";

    /// <summary>Single example weight (only when the matrix has weights).</summary>
    public const string WeightColumn = "Weight";

    /// <summary>The raw score column binary classifiers add (ML.NET's default name).</summary>
    public const string ScoreColumn = "Score";

    /// <summary>The calibrated probability column binary classifiers add.</summary>
    public const string ProbabilityColumn = "Probability";

    /// <summary>The predicted label column binary classifiers add.</summary>
    public const string PredictedLabelColumn = "PredictedLabel";

    /// <summary>UInt32 dense patient index (only when the matrix has groups); the sampling unit for patient-level privacy.</summary>
    public const string GroupColumn = "GroupId";

    /// <summary>An <see cref="IDataView"/> over <paramref name="table"/> (or the subset <paramref name="rows"/> of it, in that order).</summary>
    public static FeatureDataView ToDataView(this FeatureTable table, int[]? rows = null, float[]? weights = null) =>
        new(FeatureMatrix.FromTable(table, rows, weights));

    /// <summary>An <see cref="IDataView"/> over a <see cref="FeatureMatrix"/>.</summary>
    public static FeatureDataView ToDataView(this FeatureMatrix matrix) => new(matrix);

    /// <summary>
    /// The schema definition to use with <see cref="FeatureRow"/> in <c>LoadFromEnumerable</c> or a prediction engine:
    /// the <c>Features</c> vector size is only known at run time, so it is set here.
    /// </summary>
    public static SchemaDefinition SchemaDefinitionFor(int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        var definition = SchemaDefinition.Create(typeof(FeatureRow));
        definition[nameof(FeatureRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        return definition;
    }

    /// <summary>A prediction engine for scoring single rows with a model of <paramref name="width"/> features.</summary>
    public static PredictionEngine<FeatureRow, LinearPrediction> CreatePredictionEngine(MLContext mlContext, ITransformer model, int width)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        return mlContext.Model.CreatePredictionEngine<FeatureRow, LinearPrediction>(
            model, ignoreMissingColumns: true, inputSchemaDefinition: SchemaDefinitionFor(width));
    }
}

/// <summary>One row for prediction engines (see <see cref="FeatureData.SchemaDefinitionFor"/>).</summary>
public sealed class FeatureRow
{
    [ColumnName(FeatureData.FeaturesColumn)]
    public float[] Features { get; set; } = [];
}

/// <summary>The columns a binary classifier adds.</summary>
public sealed class LinearPrediction
{
    public bool PredictedLabel { get; set; }

    /// <summary>The raw score w·x + b.</summary>
    public float Score { get; set; }

    /// <summary>The calibrated probability.</summary>
    public float Probability { get; set; }
}

/// <summary>
/// An ML.NET <see cref="IDataView"/> over a <see cref="FeatureMatrix"/>: columns <c>Features</c>
/// (Vector&lt;Single, Columns&gt;), <c>Label</c> (Boolean), and when present <c>Weight</c> (Single) and
/// <c>GroupId</c> (UInt32). Supports shuffled cursors; row ids are the positions within the view.
/// </summary>
public sealed class FeatureDataView : IDataView
{
    private readonly int _featuresIndex;
    private readonly int _labelIndex;
    private readonly int _weightIndex = -1;
    private readonly int _groupIndex = -1;

    public FeatureDataView(FeatureMatrix matrix)
    {
        Matrix = matrix ?? throw new ArgumentNullException(nameof(matrix));
        var builder = new DataViewSchema.Builder();

        var slotNames = new DataViewSchema.Annotations.Builder();
        string[] names = matrix.ColumnNames.ToArray();
        slotNames.Add(
            AnnotationSlotNames,
            new VectorDataViewType(TextDataViewType.Instance, matrix.Columns),
            (ref VBuffer<ReadOnlyMemory<char>> value) =>
            {
                var editor = VBufferEditor.Create(ref value, names.Length);
                for (int i = 0; i < names.Length; i++)
                {
                    editor.Values[i] = names[i].AsMemory();
                }

                value = editor.Commit();
            });
        builder.AddColumn(FeatureData.FeaturesColumn, new VectorDataViewType(NumberDataViewType.Single, matrix.Columns), slotNames.ToAnnotations());
        builder.AddColumn(FeatureData.LabelColumn, BooleanDataViewType.Instance);
        int next = 2;
        _featuresIndex = 0;
        _labelIndex = 1;
        if (matrix.Weights is not null)
        {
            builder.AddColumn(FeatureData.WeightColumn, NumberDataViewType.Single);
            _weightIndex = next++;
        }

        if (matrix.GroupIds is not null)
        {
            builder.AddColumn(FeatureData.GroupColumn, NumberDataViewType.UInt32);
            _groupIndex = next;
        }

        Schema = builder.ToSchema();
    }

    // ML.NET's annotation kind for slot names (AnnotationUtils.Kinds.SlotNames is internal).
    private const string AnnotationSlotNames = "SlotNames";

    /// <summary>The rows behind this view.</summary>
    public FeatureMatrix Matrix { get; }

    /// <inheritdoc />
    public bool CanShuffle => true;

    /// <inheritdoc />
    public DataViewSchema Schema { get; }

    /// <inheritdoc />
    public long? GetRowCount() => Matrix.RowCount;

    /// <inheritdoc />
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        var active = new bool[Schema.Count];
        foreach (DataViewSchema.Column column in columnsNeeded)
        {
            if (column.Index >= active.Length || !ReferenceEquals(Schema[column.Index].Type, column.Type) && !Schema[column.Index].Type.Equals(column.Type))
            {
                throw new ArgumentException($"Column '{column.Name}' does not belong to this view's schema.", nameof(columnsNeeded));
            }

            active[column.Index] = true;
        }

        int[]? order = null;
        if (rand is not null)
        {
            order = new int[Matrix.RowCount];
            for (int i = 0; i < order.Length; i++)
            {
                order[i] = i;
            }

            rand.Shuffle(order);
        }

        return new Cursor(this, active, order);
    }

    /// <inheritdoc />
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor(FeatureDataView view, bool[] active, int[]? order) : DataViewRowCursor
    {
        private readonly FeatureMatrix _m = view.Matrix;
        private long _position = -1;
        private int _row = -1; // position within the view of the current row
        private bool _done;

        public override DataViewSchema Schema => view.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_done)
            {
                return false;
            }

            if (_position + 1 < _m.RowCount)
            {
                _position++;
                _row = order is null ? (int)_position : order[_position];
                return true;
            }

            _done = true;
            _position = -1;
            _row = -1;
            return false;
        }

        public override bool IsColumnActive(DataViewSchema.Column column) => active[column.Index];

        public override ValueGetter<DataViewRowId> GetIdGetter() =>
            (ref DataViewRowId value) =>
            {
                EnsureRow();
                value = new DataViewRowId((ulong)_row, 0);
            };

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index >= active.Length || !active[column.Index])
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this cursor was created.");
            }

            Delegate getter;
            if (column.Index == view._featuresIndex)
            {
                getter = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
                {
                    EnsureRow();
                    var editor = VBufferEditor.Create(ref value, _m.Columns);
                    _m.Features(_row).CopyTo(editor.Values);
                    value = editor.Commit();
                });
            }
            else if (column.Index == view._labelIndex)
            {
                getter = (ValueGetter<bool>)((ref bool value) =>
                {
                    EnsureRow();
                    value = _m.Label(_row);
                });
            }
            else if (column.Index == view._weightIndex)
            {
                getter = (ValueGetter<float>)((ref float value) =>
                {
                    EnsureRow();
                    value = _m.Weight(_row);
                });
            }
            else if (column.Index == view._groupIndex)
            {
                getter = (ValueGetter<uint>)((ref uint value) =>
                {
                    EnsureRow();
                    value = (uint)_m.GroupIds![_m.UnderlyingRow(_row)];
                });
            }
            else
            {
                throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' does not belong to this view's schema.");
            }

            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException(
                    $"Column '{column.Name}' is {column.Type}; a getter of {typeof(TValue).Name} was requested.");
        }

        private void EnsureRow()
        {
            if (_row < 0)
            {
                throw new InvalidOperationException("The cursor is not on a row: call MoveNext first (or it has finished).");
            }
        }
    }
}
