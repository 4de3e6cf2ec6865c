using ClinicalFed.Statistics;

namespace ClinicalFed.Core.Tests.Statistics;

public sealed class HistogramSpecTests
{
    [Theory]
    [InlineData(-0.5, 0)] // below Min: underflow
    [InlineData(-1e30, 0)]
    [InlineData(0.0, 1)] // exactly Min: first regular bin
    [InlineData(1.999, 1)]
    [InlineData(2.0, 2)] // exactly an inner edge: the upper bin
    [InlineData(9.999, 5)] // just below Max: last regular bin
    [InlineData(10.0, 6)] // exactly Max: overflow
    [InlineData(1e30, 6)]
    public void BinIndex_puts_edges_and_out_of_range_values_in_the_right_bin(double value, int expected)
    {
        var spec = new HistogramSpec(0, 10, 5);

        Assert.Equal(expected, spec.BinIndex(value));
    }

    [Fact]
    public void BinIndex_keeps_the_largest_value_below_max_in_the_last_regular_bin()
    {
        var spec = new HistogramSpec(0.1, 0.7, 3);

        Assert.Equal(3, spec.BinIndex(Math.BitDecrement(0.7)));
        Assert.Equal(4, spec.BinIndex(0.7));
    }

    [Fact]
    public void BinEdges_cover_min_to_max_with_open_underflow_and_overflow()
    {
        var spec = new HistogramSpec(0, 10, 5);

        Assert.Equal(7, spec.TotalBins);
        Assert.Equal((double.NegativeInfinity, 0.0), spec.BinEdges(0));
        Assert.Equal((0.0, 2.0), spec.BinEdges(1));
        Assert.Equal((8.0, 10.0), spec.BinEdges(5));
        Assert.Equal((10.0, double.PositiveInfinity), spec.BinEdges(6));
        Assert.Throws<ArgumentOutOfRangeException>(() => spec.BinEdges(7));
    }

    [Theory]
    [InlineData(5.0, 5.0, 10, "max (5) must be greater than min (5)")]
    [InlineData(5.0, 1.0, 10, "max (1) must be greater than min (5)")]
    [InlineData(0.0, 1.0, 0, "bins must be between 1 and 100000, got 0")]
    [InlineData(0.0, 1.0, 100_001, "bins must be between 1 and 100000, got 100001")]
    [InlineData(double.NaN, 1.0, 10, "min must be a finite number")]
    [InlineData(0.0, double.PositiveInfinity, 10, "max must be a finite number")]
    [InlineData(-1e308, 1e308, 10, "overflows")]
    public void Invalid_specs_are_rejected_with_a_clear_message(double min, double max, int bins, string expected)
    {
        var ex = Assert.Throws<ArgumentException>(() => new HistogramSpec(min, max, bins));

        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Specs_with_the_same_edges_are_equal()
    {
        Assert.Equal(new HistogramSpec(0, 1, 4), new HistogramSpec(0, 1, 4));
        Assert.NotEqual(new HistogramSpec(0, 1, 4), new HistogramSpec(0, 1, 5));
        Assert.Equal(1, new HistogramSpec(0, 1, 100_000).Max);
    }
}
