using Microsoft.ML;
using Microsoft.ML.Data;

namespace ClinicalFed.Learning.Tests;

public class FeatureDataTests
{
    // Three patients: P0 has rows 0 and 1, P1 row 2, P2 row 3.
    private static readonly float[] Values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    private static readonly float[] Labels = [0, 1, 1, 0];

    [Fact]
    public void View_has_a_sized_feature_vector_with_slot_names_a_boolean_label_and_patient_groups()
    {
        var table = TestData.Table(Values, Labels, 3, "P0", "P0", "P1", "P2");
        FeatureDataView view = table.ToDataView();
        DataViewSchema schema = view.Schema;
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 3), schema[FeatureData.FeaturesColumn].Type);
        Assert.Equal(BooleanDataViewType.Instance, schema[FeatureData.LabelColumn].Type);
        Assert.Equal(NumberDataViewType.UInt32, schema[FeatureData.GroupColumn].Type);
        Assert.Null(schema.GetColumnOrNull(FeatureData.WeightColumn));
        Assert.Equal(4, view.GetRowCount());

        VBuffer<ReadOnlyMemory<char>> names = default;
        schema[FeatureData.FeaturesColumn].GetSlotNames(ref names);
        Assert.Equal(["col0", "col1", "col2"], names.DenseValues().Select(n => n.ToString()));

        Assert.Equal([false, true, true, false], view.GetColumn<bool>(FeatureData.LabelColumn).ToArray());
        Assert.Equal([0u, 0u, 1u, 2u], view.GetColumn<uint>(FeatureData.GroupColumn).ToArray());
        Assert.Equal([7f, 8f, 9f], view.GetColumn<float[]>(FeatureData.FeaturesColumn).ElementAt(2));
    }

    [Fact]
    public void A_row_subset_yields_those_rows_in_that_order_and_weights_become_a_column()
    {
        var table = TestData.Table(Values, Labels, 3);
        FeatureDataView view = table.ToDataView(rows: [3, 1], weights: [1f, 2f, 3f, 4f]);
        Assert.Equal(2, view.GetRowCount());
        Assert.Equal([[10f, 11f, 12f], [4f, 5f, 6f]], view.GetColumn<float[]>(FeatureData.FeaturesColumn).ToArray());
        Assert.Equal([false, true], view.GetColumn<bool>(FeatureData.LabelColumn).ToArray());
        Assert.Equal([4f, 2f], view.GetColumn<float>(FeatureData.WeightColumn).ToArray());
    }

    [Fact]
    public void Shuffled_cursors_visit_every_row_once_with_stable_ids()
    {
        FeatureMatrix m = TestData.Logistic(500, 4, seed: 1);
        var view = m.ToDataView();
        var seen = new Dictionary<ulong, float>();
        using (DataViewRowCursor cursor = view.GetRowCursor(view.Schema, new Random(3)))
        {
            var id = cursor.GetIdGetter();
            var features = cursor.GetGetter<VBuffer<float>>(view.Schema[FeatureData.FeaturesColumn]);
            DataViewRowId rowId = default;
            VBuffer<float> buffer = default;
            var order = new List<ulong>();
            while (cursor.MoveNext())
            {
                id(ref rowId);
                features(ref buffer);
                seen.Add(rowId.Low, buffer.GetValues()[0]);
                order.Add(rowId.Low);
            }

            Assert.NotEqual(Enumerable.Range(0, 500).Select(i => (ulong)i), order); // shuffled
        }

        Assert.Equal(500, seen.Count);
        Assert.All(seen, kv => Assert.Equal(m.Features((int)kv.Key)[0], kv.Value));
    }

    [Fact]
    public void Ml_net_shuffles_splits_by_patient_and_trains_sdca_on_the_view()
    {
        var ml = new MLContext(seed: 0);
        FeatureMatrix m = TestData.Logistic(3000, 5, seed: 9, meanRowsPerPatient: 6);
        FeatureDataView view = m.ToDataView();

        IDataView shuffled = ml.Data.ShuffleRows(view, seed: 1);
        Assert.Equal(m.Labels.Count(l => l == 1), shuffled.GetColumn<bool>(FeatureData.LabelColumn).Count(l => l));

        // A patient-level train/test split: no patient on both sides.
        var split = ml.Data.TrainTestSplit(view, testFraction: 0.3, samplingKeyColumnName: FeatureData.GroupColumn, seed: 2);
        var trainPatients = split.TrainSet.GetColumn<uint>(FeatureData.GroupColumn).ToHashSet();
        var testPatients = split.TestSet.GetColumn<uint>(FeatureData.GroupColumn).ToHashSet();
        Assert.NotEmpty(testPatients);
        Assert.Empty(trainPatients.Intersect(testPatients));
        Assert.Equal(m.GroupCount, trainPatients.Count + testPatients.Count);

        // SDCA reads through cursor sets and its own shuffling.
        var sdca = ml.BinaryClassification.Trainers.SdcaLogisticRegression(maximumNumberOfIterations: 5).Fit(split.TrainSet);
        Assert.InRange(Metrics.Evaluate(sdca.Transform(split.TestSet)).Auroc, 0.75, 1);
    }

    [Fact]
    public void Cursor_refuses_inactive_columns_and_wrong_types()
    {
        var view = TestData.Table(Values, Labels, 3).ToDataView();
        using DataViewRowCursor cursor = view.GetRowCursor([view.Schema[FeatureData.LabelColumn]]);
        Assert.False(cursor.IsColumnActive(view.Schema[FeatureData.FeaturesColumn]));
        Assert.Throws<InvalidOperationException>(() => cursor.GetGetter<VBuffer<float>>(view.Schema[FeatureData.FeaturesColumn]));
        Assert.Throws<InvalidOperationException>(() => cursor.GetGetter<float>(view.Schema[FeatureData.LabelColumn]));
    }

    [Fact]
    public void Labels_must_be_zero_or_one_and_shapes_must_agree()
    {
        var e = Assert.Throws<ArgumentException>(() => new FeatureMatrix([1, 2], 1, [0, 0.5f]));
        Assert.Contains("row 1", e.Message);
        Assert.Throws<ArgumentException>(() => new FeatureMatrix([1, 2, 3], 2, [0, 1]));
        Assert.Throws<ArgumentException>(() => new FeatureMatrix([1, 2], 1, [0, 1], rows: [2]));
        Assert.Throws<ArgumentException>(() => new FeatureMatrix([1, 2], 1, [0, 1], weights: [1, -1]));
    }

    [Fact]
    public void Missing_features_are_reported_by_row_and_column()
    {
        var table = TestData.Table([1, 2, 3, float.NaN], [0, 1], 2);
        var e = Assert.Throws<InvalidOperationException>(() => FeatureMatrix.FromTable(table).ThrowIfNotFinite());
        Assert.Contains("Row 1", e.Message);
        Assert.Contains("col1", e.Message);
        Assert.Contains("impute", e.Message);
    }

    [Fact]
    public void Patient_groups_are_dense_in_order_of_first_appearance()
    {
        var table = TestData.Table(new float[5], [0, 0, 0, 0, 0], 1, "b", "a", "b", "c", "a");
        int[] groups = FeatureMatrix.PatientGroups(table.Keys, out int count);
        Assert.Equal([0, 1, 0, 2, 1], groups);
        Assert.Equal(3, count);
    }

    [Fact]
    public void Any_data_view_reads_back_into_a_matrix_including_text_groups()
    {
        var ml = new MLContext(seed: 0);
        var rows = new[]
        {
            new Row { Features = [1, 2], Label = true, Patient = "x", W = 2 },
            new Row { Features = [3, 4], Label = false, Patient = "y", W = 1 },
            new Row { Features = [5, 6], Label = true, Patient = "x", W = 3 },
        };
        var definition = SchemaDefinition.Create(typeof(Row));
        definition[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 2);
        IDataView data = ml.Data.LoadFromEnumerable(rows, definition);

        FeatureMatrix m = DataViewReader.ToMatrix(data, "Features", "Label", weightColumn: "W", groupColumn: "Patient");
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], m.Values);
        Assert.Equal([1f, 0f, 1f], m.Labels);
        Assert.Equal([2f, 1f, 3f], m.Weights!);
        Assert.Equal([0, 1, 0], m.GroupIds!);
        Assert.Equal(2, m.GroupCount);

        // A FeatureDataView is used as it is.
        FeatureMatrix original = TestData.Logistic(10, 3, seed: 2);
        Assert.Same(original, DataViewReader.ToMatrix(original.ToDataView()));
        var missing = Assert.Throws<ArgumentException>(() => DataViewReader.ToMatrix(data, "Nope"));
        Assert.Contains("Nope", missing.Message);
    }

    [Fact]
    public void Prediction_engine_with_the_runtime_sized_schema_scores_like_the_transformer()
    {
        var ml = new MLContext(seed: 0);
        var weights = new LinearWeights([0.5f, -1f, 2f], 0.25f);
        var model = LinearModelAdapter.CreateTransformer(ml, weights);
        var engine = FeatureData.CreatePredictionEngine(ml, model, 3);
        LinearPrediction p = engine.Predict(new FeatureRow { Features = [1f, 2f, 0.5f] });
        // 0.5 − 2 + 1 + 0.25 = −0.25
        Assert.Equal(-0.25f, p.Score, 5);
        Assert.Equal(LinearWeights.Sigmoid(-0.25), p.Probability, 5);
        Assert.False(p.PredictedLabel);
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
        public bool Label { get; set; }
        public string Patient { get; set; } = "";
        public float W { get; set; }
    }
}
