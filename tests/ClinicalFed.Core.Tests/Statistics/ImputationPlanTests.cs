using ClinicalFed.Statistics;

namespace ClinicalFed.Core.Tests.Statistics;

public sealed class ImputationPlanTests
{
    private static readonly string[] Columns = ["a", "b", "c"];
    private static readonly HistogramSpec[] Histograms = [new(0, 10, 10), new(0, 100, 10), new(0, 1, 2)];

    // a: 1, NaN, 3, 5  -> mean 3; median: rank 1.5 of 3 is halfway through bin [3, 4) -> 3.5
    // b: NaN, 10, 20, NaN -> mean 15; median: rank 1 of 2 ends bin [10, 20) -> 20
    // c: all NaN -> no data, fill 0 with a warning
    private static float[] Table() =>
    [
        1, float.NaN, float.NaN,
        float.NaN, 10, float.NaN,
        3, 20, float.NaN,
        5, float.NaN, float.NaN,
    ];

    private static StatisticsSet Stats() => StatisticsSet.Compute("A", "spec", "1", Columns, Histograms, Table(), 3);

    [Fact]
    public void Mean_imputation_fills_exactly_the_missing_cells()
    {
        ImputationPlan plan = ImputationPlan.From(Stats(), ImputationMethod.Mean);
        float[] table = Table();

        plan.Apply(table, 3);

        Assert.Equal([3f, 15f, 0f], plan.FillValues);
        Assert.Equal(
            [
                1f, 15f, 0f,
                3f, 10f, 0f,
                3f, 20f, 0f,
                5f, 15f, 0f,
            ],
            table);
        Assert.Equal(ImputationMethod.Mean, plan.Method);
        Assert.Equal("site", plan.Scope);
    }

    [Fact]
    public void Median_imputation_fills_exactly_the_missing_cells()
    {
        ImputationPlan plan = ImputationPlan.From(Stats(), ImputationMethod.Median);
        float[] table = Table();

        plan.Apply(table, 3);

        Assert.Equal([3.5f, 20f, 0f], plan.FillValues);
        Assert.Equal(
            [
                1f, 20f, 0f,
                3.5f, 10f, 0f,
                3f, 20f, 0f,
                5f, 20f, 0f,
            ],
            table);
    }

    [Fact]
    public void Column_without_data_is_filled_with_zero_and_warned_about()
    {
        ImputationPlan plan = ImputationPlan.From(Stats(), ImputationMethod.Mean);

        string warning = Assert.Single(plan.Warnings);
        Assert.Contains("'c'", warning);
        Assert.Contains("imputing 0", warning);
    }

    [Fact]
    public void Only_the_selected_columns_are_imputed()
    {
        ImputationPlan plan = ImputationPlan.From(Stats(), ImputationMethod.Mean, new HashSet<string> { "b" });
        float[] table = Table();

        plan.Apply(table, 3);

        Assert.Empty(plan.Warnings);
        Assert.False(plan.IsImputed(0));
        Assert.True(plan.IsImputed(1));
        Assert.Equal([float.NaN, 15f, float.NaN], plan.FillValues);
        Assert.Equal(
            [
                1f, 15f, float.NaN,
                float.NaN, 10f, float.NaN,
                3f, 20f, float.NaN,
                5f, 15f, float.NaN,
            ],
            table);
    }

    [Fact]
    public void Unknown_columns_and_wrong_shapes_are_rejected()
    {
        var unknown = Assert.Throws<ArgumentException>(() =>
            ImputationPlan.From(Stats(), ImputationMethod.Mean, new HashSet<string> { "b", "zz" }));
        ImputationPlan plan = ImputationPlan.From(Stats(), ImputationMethod.Mean);

        Assert.Contains("'zz'", unknown.Message);
        Assert.Throws<ArgumentException>(() => plan.Apply(new float[8], 4));
        Assert.Throws<ArgumentException>(() => plan.Apply(new float[7], 3));
    }

    [Fact]
    public void Plans_from_the_same_statistics_are_equal()
    {
        Assert.Equal(ImputationPlan.From(Stats(), ImputationMethod.Mean), ImputationPlan.From(Stats(), ImputationMethod.Mean));
        Assert.NotEqual(ImputationPlan.From(Stats(), ImputationMethod.Mean), ImputationPlan.From(Stats(), ImputationMethod.Median));
    }

    [Fact]
    public void Vectorised_fill_matches_a_scalar_reference_for_many_shapes()
    {
        var random = new Random(3);
        for (int columns = 1; columns <= 41; columns++)
        {
            float[] fills = Enumerable.Range(0, columns).Select(c => c % 7 == 6 ? float.NaN : c + 0.5f).ToArray();
            foreach (int rows in new[] { 0, 1, 2, 3, 7, 16, 33 })
            {
                float[] data = Enumerable.Range(0, rows * columns)
                    .Select(_ => random.NextDouble() < 0.3 ? float.NaN : (float)random.NextDouble())
                    .ToArray();
                float[] expected = data.Select((v, i) => float.IsNaN(v) ? fills[i % columns] : v).ToArray();

                ImputationPlan.FillMissing(data, fills);

                Assert.True(
                    expected.AsSpan().SequenceEqual(data),
                    $"columns={columns}, rows={rows}");
            }
        }
    }
}
