namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>Thrown when a value cannot be encoded into the ring without risking a wrap of the secure sum.</summary>
public sealed class RingOverflowException(string message) : Exception(message);

/// <summary>
/// Fixed-point encoding of float32 parameters into the ring Z/2^32 (two's complement int32 in a <see cref="uint"/>).
/// A site with <c>n</c> examples encodes <c>round(scale · n · x)</c>. <b>Bound:</b> every |x| must be at most
/// <c>clipBound</c> B (checked: a larger value is a <see cref="RingOverflowException"/>, never a silent wrap), and
/// <c>scale = (2^31 − 1 − sites) / (B · N)</c> with N the total example count of all sites that may contribute.
/// Then |Σ_i round(scale · n_i · x_i)| ≤ scale · B · N + sites/2 &lt; 2^31, so the sum of any subset of sites never
/// wraps and decodes exactly as a signed int32. Rounding costs at most sites/2 units, i.e. an absolute error of the
/// weighted mean of at most sites · B / (2 · (2^31 − 1 − sites) · (N_survivors / N)).
/// </summary>
public static class RingEncoding
{
    /// <summary>The default bound on |parameter| (standardized-feature logistic weights stay far below it).</summary>
    public const double DefaultClipBound = 64;

    /// <summary>The scale that keeps the sum of <paramref name="sites"/> weighted updates of total weight <paramref name="totalExamples"/> inside int32.</summary>
    public static double Scale(int sites, long totalExamples, double clipBound = DefaultClipBound)
    {
        if (sites < 1) throw new ArgumentOutOfRangeException(nameof(sites));
        if (totalExamples < 1) throw new ArgumentOutOfRangeException(nameof(totalExamples));
        if (!(clipBound > 0) || !double.IsFinite(clipBound)) throw new ArgumentOutOfRangeException(nameof(clipBound));
        return (int.MaxValue - (double)sites) / (clipBound * totalExamples);
    }

    /// <summary>destination[j] = round(scale · weight · values[j]) mod 2^32; throws when |values[j]| &gt; clipBound or is not finite.</summary>
    public static void Encode(ReadOnlySpan<float> values, long weight, double scale, double clipBound, Span<uint> destination)
    {
        if (values.Length != destination.Length) throw new ArgumentException("values and destination differ in length", nameof(destination));
        double f = scale * weight;
        for (int j = 0; j < values.Length; j++)
        {
            double x = values[j];
            if (!(Math.Abs(x) <= clipBound))
                throw new RingOverflowException($"parameter {j} is {x}; secure aggregation encodes |x| ≤ {clipBound} only (the bound that keeps the ring sum from wrapping)");
            destination[j] = unchecked((uint)(int)Math.Round(x * f, MidpointRounding.ToEven));
        }
    }

    /// <summary>destination[j] = (signed int32)sum[j] / (scale · totalWeight): the weighted mean of the decoded sum.</summary>
    public static void DecodeMean(ReadOnlySpan<uint> sum, double scale, long totalWeight, Span<float> destination)
    {
        if (sum.Length != destination.Length) throw new ArgumentException("sum and destination differ in length", nameof(destination));
        double f = 1.0 / (scale * totalWeight);
        for (int j = 0; j < sum.Length; j++) destination[j] = (float)(unchecked((int)sum[j]) * f);
    }

    /// <summary>
    /// The scale of the wide ring Z/2^64, for sums that need double precision (gradient histograms): a site whose
    /// values are bounded by b_i encodes round(scale · x), and with Σ_i b_i ≤ <paramref name="totalBound"/> and
    /// scale = 2^62 / totalBound every partial sum stays within ±(2^62 + sites/2), far inside int64. Resolution:
    /// 1 / scale, e.g. 2.6e-13 for a bound of 1.2 million.
    /// </summary>
    public static double WideScale(double totalBound)
    {
        if (!(totalBound > 0) || !double.IsFinite(totalBound)) throw new ArgumentOutOfRangeException(nameof(totalBound));
        return 4611686018427387904.0 / totalBound;
    }

    /// <summary>destination[j] = round(scale · values[j]) mod 2^64; throws when |values[j]| exceeds the site's
    /// <paramref name="bound"/> or is not finite.</summary>
    public static void EncodeWide(ReadOnlySpan<double> values, double scale, double bound, Span<ulong> destination)
    {
        if (values.Length != destination.Length) throw new ArgumentException("values and destination differ in length", nameof(destination));
        for (int j = 0; j < values.Length; j++)
        {
            double x = values[j];
            if (!(Math.Abs(x) <= bound))
                throw new RingOverflowException($"value {j} is {x}; this site encodes |x| ≤ {bound} only (its share of the bound that keeps the ring sum from wrapping)");
            destination[j] = unchecked((ulong)(long)Math.Round(x * scale, MidpointRounding.ToEven));
        }
    }

    /// <summary>destination[j] = (signed int64)sum[j] / scale: the sum of the sites' values.</summary>
    public static void DecodeWide(ReadOnlySpan<ulong> sum, double scale, Span<double> destination)
    {
        if (sum.Length != destination.Length) throw new ArgumentException("sum and destination differ in length", nameof(destination));
        for (int j = 0; j < sum.Length; j++) destination[j] = unchecked((long)sum[j]) / scale;
    }

    /// <summary>Adds <paramref name="values"/> into <paramref name="accumulator"/> modulo 2^32 (vectorized).</summary>
    public static void AddInPlace(Span<uint> accumulator, ReadOnlySpan<uint> values)
    {
        if (accumulator.Length != values.Length) throw new ArgumentException("lengths differ", nameof(values));
        System.Numerics.Tensors.TensorPrimitives.Add(accumulator, values, accumulator);
    }

    /// <summary>Subtracts <paramref name="values"/> from <paramref name="accumulator"/> modulo 2^32 (vectorized).</summary>
    public static void SubtractInPlace(Span<uint> accumulator, ReadOnlySpan<uint> values)
    {
        if (accumulator.Length != values.Length) throw new ArgumentException("lengths differ", nameof(values));
        System.Numerics.Tensors.TensorPrimitives.Subtract(accumulator, values, accumulator);
    }
}
