namespace ClinicalFed.Statistics;

/// <summary>
/// Fixed-edge histogram layout shared by all sites: <see cref="Bins"/> equal-width bins over [Min, Max),
/// preceded by an underflow bin (values &lt; Min) and followed by an overflow bin (values &gt;= Max).
/// Bin counts therefore have <see cref="TotalBins"/> = Bins + 2 entries.
/// </summary>
public sealed record HistogramSpec
{
    /// <summary>The largest number of regular (equal-width) bins a spec may have.</summary>
    public const int MaxBins = 100_000;

    // Derived from Min/Max/Bins only, so record equality is unaffected by it.
    private readonly double _scale;

    /// <summary>Creates a validated histogram spec.</summary>
    /// <exception cref="ArgumentException">Bounds are not finite, Max &lt;= Min, Max - Min overflows, or Bins is outside 1..100000.</exception>
    public HistogramSpec(double Min, double Max, int Bins)
    {
        if (!double.IsFinite(Min))
        {
            throw new ArgumentException($"Histogram min must be a finite number, got {Min}.", nameof(Min));
        }

        if (!double.IsFinite(Max))
        {
            throw new ArgumentException($"Histogram max must be a finite number, got {Max}.", nameof(Max));
        }

        if (!(Max > Min))
        {
            throw new ArgumentException($"Histogram max ({Max}) must be greater than min ({Min}).", nameof(Max));
        }

        if (!double.IsFinite(Max - Min))
        {
            throw new ArgumentException($"Histogram range max - min ({Max} - {Min}) overflows a double.", nameof(Max));
        }

        if (Bins is < 1 or > MaxBins)
        {
            throw new ArgumentException($"Histogram bins must be between 1 and {MaxBins}, got {Bins}.", nameof(Bins));
        }

        this.Min = Min;
        this.Max = Max;
        this.Bins = Bins;
        _scale = Bins / (Max - Min);
    }

    /// <summary>Inclusive lower edge of the first regular bin.</summary>
    public double Min { get; }

    /// <summary>Exclusive upper edge of the last regular bin.</summary>
    public double Max { get; }

    /// <summary>Number of regular equal-width bins.</summary>
    public int Bins { get; }

    /// <summary>Bins + 2: underflow, the regular bins, overflow.</summary>
    public int TotalBins => Bins + 2;

    /// <summary>Index of the underflow bin (always 0).</summary>
    public int UnderflowIndex => 0;

    /// <summary>Index of the overflow bin (Bins + 1).</summary>
    public int OverflowIndex => Bins + 1;

    /// <summary>Width of one regular bin.</summary>
    public double BinWidth => (Max - Min) / Bins;

    /// <summary>
    /// Bin index (0..Bins+1) of a finite, non-NaN value. Pure and deterministic, so every site
    /// assigns the same value to the same bin.
    /// </summary>
    public int BinIndex(double value)
    {
        if (value < Min)
        {
            return 0;
        }

        if (value >= Max)
        {
            return Bins + 1;
        }

        int regular = (int)((value - Min) * _scale);
        // Rounding can push a value just below Max onto index Bins; keep it in the last regular bin.
        return (regular >= Bins ? Bins - 1 : regular) + 1;
    }

    /// <summary>
    /// Edges of bin <paramref name="index"/> (0..Bins+1). The underflow bin is (-Infinity, Min) and the
    /// overflow bin is [Max, +Infinity).
    /// </summary>
    public (double Lower, double Upper) BinEdges(int index)
    {
        if ((uint)index > (uint)(Bins + 1))
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Bin index must be between 0 and {Bins + 1}.");
        }

        if (index == 0)
        {
            return (double.NegativeInfinity, Min);
        }

        if (index == Bins + 1)
        {
            return (Max, double.PositiveInfinity);
        }

        int regular = index - 1;
        double lower = Min + (Max - Min) * regular / Bins;
        double upper = regular == Bins - 1 ? Max : Min + (Max - Min) * (regular + 1) / Bins;
        return (lower, upper);
    }

    /// <summary>Deconstructs into (Min, Max, Bins).</summary>
    public void Deconstruct(out double Min, out double Max, out int Bins)
    {
        Min = this.Min;
        Max = this.Max;
        Bins = this.Bins;
    }

    /// <inheritdoc />
    public override string ToString() => $"[{Min}, {Max}) in {Bins} bins";
}
