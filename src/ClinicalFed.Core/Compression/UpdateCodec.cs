using System.Buffers.Binary;
using System.Globalization;
using ClinicalFed.Federation;

namespace ClinicalFed.Compression;

/// <summary>
/// How a site compresses its update: <c>int8</c> or <c>int4</c> (uniform symmetric quantization with stochastic
/// rounding), or <c>topk:F</c> (the fraction F of coordinates with the largest magnitude). Parsed from the command
/// line's <c>--compress</c>.
/// </summary>
/// <param name="Encoding">int8, int4 or topk.</param>
/// <param name="Fraction">Top-k: the fraction of coordinates sent (k = ⌈F·d⌉); 1 for quantization.</param>
/// <param name="ErrorFeedback">Top-k: the site keeps what it did not send and adds it to the next round's delta.</param>
public sealed record CompressionSpec(string Encoding, double Fraction, bool ErrorFeedback = true)
{
    /// <summary>Default <see cref="FeedbackDecay"/> of <c>topk:F</c>.</summary>
    public const double DefaultFeedbackDecay = 0.6;

    /// <summary>Default <see cref="RefitEpochs"/> of <c>topk:F</c>.</summary>
    public const int DefaultRefitEpochs = 2;

    /// <summary>
    /// Top-k with error feedback: the kept remainder is multiplied by this factor (0 &lt; γ ≤ 1) before it is added to
    /// the next delta. A federated delta is many local steps, not one gradient: the next round's delta asks again for most
    /// of what was not applied, so a remainder added in full (γ = 1) is counted twice and overshoots when it is finally
    /// sent.
    /// </summary>
    public double FeedbackDecay { get; init; } = DefaultFeedbackDecay;

    /// <summary>
    /// Top-k: local epochs of the refit (0: none). Once the site has chosen its k coordinates it trains again from the
    /// global model with every other coordinate held, and sends the refitted values: a step that is a descent step on its
    /// own, instead of k coordinates cut out of a step that needed all of them (correlated features).
    /// </summary>
    public int RefitEpochs { get; init; } = DefaultRefitEpochs;

    /// <summary>Default <see cref="FinalEncoding"/> of <c>topk:F</c>.</summary>
    public const string DefaultFinalEncoding = UpdatePayloadEncodings.Int4;

    /// <summary>
    /// Top-k: the dense quantized encoding of the federation's last round (<c>int4</c> or <c>int8</c>), or null to send
    /// top-k to the end. Top-k with error feedback applies each coordinate late and one site's pull at a time: on
    /// coordinates the sites pull in opposite directions the sites take turns, and the global model swings between
    /// rounds. One dense round at the end lets every pull arrive together, as in float32 FedAvg, so the final model does
    /// not depend on which swing the last round caught. A 4-bit round costs about what a top-10 % round does
    /// (d/2 bytes against about 5·d/10).
    /// </summary>
    public string? FinalEncoding { get; init; } = DefaultFinalEncoding;

    private static readonly CompressionSpec WarmUp = new(UpdatePayloadEncodings.Int8, 1, ErrorFeedback: false) { RefitEpochs = 0, FinalEncoding = null };

    /// <summary>
    /// The encoding a site uses in round <paramref name="round"/> (0-based) of <paramref name="rounds"/>. Quantization:
    /// this spec in every round. Top-k: a dense 8-bit warm-up in the first round (as Deep Gradient Compression warms up
    /// its sparsity: from a zero model every coordinate moves at once), <see cref="FinalEncoding"/> in the last round
    /// (when there are at least two), and top-k in between.
    /// </summary>
    public CompressionSpec ForRound(int round, int rounds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(round);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(rounds, round);
        if (Encoding != UpdatePayloadEncodings.TopK) return this;
        if (round == 0) return WarmUp;
        if (round == rounds - 1 && FinalEncoding is { } last) return WarmUp with { Encoding = last };
        return this;
    }

    /// <summary>
    /// Parses <c>int8</c>, <c>int4</c> or <c>topk:F</c> (0 &lt; F ≤ 1) followed by any of <c>:noef</c> (no error
    /// feedback), <c>:decay=γ</c> (0 &lt; γ ≤ 1, <see cref="FeedbackDecay"/>), <c>:refit=N</c> (0 to 20 epochs,
    /// <see cref="RefitEpochs"/>) and <c>:final=int4|int8|topk</c> (<see cref="FinalEncoding"/>; topk: none); problems
    /// are added to <paramref name="errors"/>.
    /// </summary>
    public static CompressionSpec? Parse(string text, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(errors);
        if (text is UpdatePayloadEncodings.Int8 or UpdatePayloadEncodings.Int4) return new CompressionSpec(text, 1, ErrorFeedback: false) { RefitEpochs = 0, FinalEncoding = null };
        var parts = text.Split(':');
        const string Expected = "expected int8, int4, or topk:F with 0 < F <= 1 (e.g. topk:0.1), optionally followed by :noef, :decay=G (0 < G <= 1), :refit=N (0 to 20) and :final=int4|int8|topk";
        if (parts.Length < 2 || parts[0] != UpdatePayloadEncodings.TopK
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double f) || !(f > 0 && f <= 1))
        {
            errors.Add($"--compress {text}: {Expected}");
            return null;
        }

        var spec = new CompressionSpec(UpdatePayloadEncodings.TopK, f);
        int before = errors.Count;
        foreach (var option in parts.Skip(2))
        {
            if (option == "noef") spec = spec with { ErrorFeedback = false };
            else if (option.StartsWith("decay=", StringComparison.Ordinal))
            {
                if (double.TryParse(option.AsSpan(6), NumberStyles.Float, CultureInfo.InvariantCulture, out double g) && g > 0 && g <= 1) spec = spec with { FeedbackDecay = g };
                else errors.Add($"--compress {text}: '{option}': the decay G must be a number with 0 < G <= 1");
            }
            else if (option.StartsWith("refit=", StringComparison.Ordinal))
            {
                if (int.TryParse(option.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n <= 20) spec = spec with { RefitEpochs = n };
                else errors.Add($"--compress {text}: '{option}': the refit epochs N must be a whole number from 0 to 20");
            }
            else if (option.StartsWith("final=", StringComparison.Ordinal))
            {
                string last = option[6..];
                if (last is UpdatePayloadEncodings.Int4 or UpdatePayloadEncodings.Int8) spec = spec with { FinalEncoding = last };
                else if (last == UpdatePayloadEncodings.TopK) spec = spec with { FinalEncoding = null };
                else errors.Add($"--compress {text}: '{option}': the final round's encoding must be int4, int8 or topk (top-k to the end)");
            }
            else errors.Add($"--compress {text}: '{option}' is not an option of topk ({Expected})");
        }

        return errors.Count == before ? spec : null;
    }

    /// <summary>The <c>--compress</c> text that parses back to this spec (top-k defaults left out).</summary>
    public override string ToString()
    {
        if (Encoding != UpdatePayloadEncodings.TopK) return Encoding;
        var text = $"topk:{Fraction.ToString(CultureInfo.InvariantCulture)}";
        if (!ErrorFeedback) text += ":noef";
        else if (FeedbackDecay != DefaultFeedbackDecay) text += $":decay={FeedbackDecay.ToString(CultureInfo.InvariantCulture)}";
        if (RefitEpochs != DefaultRefitEpochs) text += $":refit={RefitEpochs.ToString(CultureInfo.InvariantCulture)}";
        if (FinalEncoding != DefaultFinalEncoding) text += $":final={FinalEncoding ?? UpdatePayloadEncodings.TopK}";
        return text;
    }
}

/// <summary>
/// The compressed payloads of delta updates (<c>payload_encoding</c> int8, int4 or topk; schemas/update.schema.json):
/// pure functions from a delta to bytes and back. A compressed update is always a delta from the round's global model.
/// <list type="bullet">
/// <item><b>int8 / int4</b>: per chunk of up to <see cref="Chunk"/> values, a float32 scale s = max|x| / L (L = 127
/// or 7), then one signed level per value (int4: two per byte, low nibble first, stored as level + 8). A value is
/// rounded stochastically to one of its two neighbouring levels, up with probability equal to its fractional part, so
/// the decoded value is unbiased: E[q·s] = x.</item>
/// <item><b>topk</b>: the count k (unsigned LEB128), the k indices in increasing order as LEB128 gaps (the first index,
/// then each index minus the previous minus one), then the k float32 values.</item>
/// </list>
/// </summary>
public static class UpdateCodec
{
    /// <summary>Values per quantization chunk (one float32 scale each).</summary>
    public const int Chunk = 4096;

    /// <summary>
    /// The generator of a site's stochastic rounding in one round, from the federation's training seed, the round and
    /// the site's position in the round's site list: <c>simulate</c> and the site agent round alike, and a restarted agent
    /// sends the same bytes. Rounding needs no secrecy (it hides nothing; it only keeps the quantized values unbiased).
    /// </summary>
    public static Random RoundingRandom(int seed, int round, int siteIndex) => new(unchecked(seed * 1_000_003 + round * 1_009 + siteIndex));

    /// <summary>Compresses <paramref name="delta"/>; <paramref name="random"/> drives stochastic rounding (quantization only).</summary>
    public static byte[] Encode(CompressionSpec spec, ReadOnlySpan<float> delta, Random random)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(random);
        if (delta.IsEmpty) throw new ArgumentException("nothing to encode", nameof(delta));
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(delta)) throw new ArgumentException("the delta holds NaN or infinite values", nameof(delta));
        return spec.Encoding switch
        {
            UpdatePayloadEncodings.Int8 => Quantize(delta, 127, bits: 8, random),
            UpdatePayloadEncodings.Int4 => Quantize(delta, 7, bits: 4, random),
            UpdatePayloadEncodings.TopK => TopK(delta, TopKCount(spec.Fraction, delta.Length)),
            _ => throw new ArgumentException($"unknown encoding '{spec.Encoding}'", nameof(spec)),
        };
    }

    /// <summary>
    /// Decodes a compressed payload of <paramref name="encoding"/> into <paramref name="destination"/> (its length is
    /// the dimension) and returns every problem (empty when it is well formed and finite).
    /// </summary>
    public static List<string> Decode(string encoding, ReadOnlySpan<byte> payload, Span<float> destination)
    {
        var problems = new List<string>();
        switch (encoding)
        {
            case UpdatePayloadEncodings.Int8:
                Dequantize(payload, destination, bits: 8, problems);
                break;
            case UpdatePayloadEncodings.Int4:
                Dequantize(payload, destination, bits: 4, problems);
                break;
            case UpdatePayloadEncodings.TopK:
                DecodeTopK(payload, destination, problems);
                break;
            default:
                problems.Add($"'{encoding}' is not a compressed encoding");
                break;
        }

        if (problems.Count == 0 && !System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(destination)) problems.Add("the decoded payload holds NaN or infinite values");
        return problems;
    }

    /// <summary>The exact payload size of a quantized vector of <paramref name="dimension"/> values.</summary>
    public static long QuantizedBytes(int dimension, int bits)
    {
        long total = 0;
        for (int start = 0; start < dimension; start += Chunk)
        {
            int n = Math.Min(Chunk, dimension - start);
            total += 4 + (bits == 8 ? n : (n + 1) / 2);
        }

        return total;
    }

    private static byte[] Quantize(ReadOnlySpan<float> x, int levels, int bits, Random random)
    {
        var output = new byte[QuantizedBytes(x.Length, bits)];
        int at = 0;
        for (int start = 0; start < x.Length; start += Chunk)
        {
            var chunk = x.Slice(start, Math.Min(Chunk, x.Length - start));
            float max = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(chunk);
            float scale = Math.Abs(max) / levels;
            BinaryPrimitives.WriteSingleLittleEndian(output.AsSpan(at), scale);
            at += 4;
            for (int i = 0; i < chunk.Length; i++)
            {
                int q = 0;
                if (scale > 0)
                {
                    double v = chunk[i] / scale;
                    double floor = Math.Floor(v);
                    q = (int)floor + (random.NextDouble() < v - floor ? 1 : 0);
                    q = Math.Clamp(q, -levels, levels);
                }

                if (bits == 8) output[at++] = (byte)(sbyte)q;
                else if ((i & 1) == 0) output[at] = (byte)(q + 8);
                else output[at++] |= (byte)((q + 8) << 4);
            }

            if (bits == 4 && (chunk.Length & 1) == 1) at++;
        }

        return output;
    }

    private static void Dequantize(ReadOnlySpan<byte> payload, Span<float> destination, int bits, List<string> problems)
    {
        long expected = QuantizedBytes(destination.Length, bits);
        if (payload.Length != expected)
        {
            problems.Add($"an int{bits} payload of {destination.Length} values has {expected} bytes, not {payload.Length}");
            return;
        }

        int at = 0;
        for (int start = 0; start < destination.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, destination.Length - start);
            float scale = BinaryPrimitives.ReadSingleLittleEndian(payload[at..]);
            at += 4;
            if (!float.IsFinite(scale) || scale < 0)
            {
                problems.Add($"chunk at value {start}: scale {scale} is not a finite non-negative number");
                return;
            }

            for (int i = 0; i < n; i++)
            {
                int q;
                if (bits == 8) q = (sbyte)payload[at++];
                else
                {
                    int nibble = (i & 1) == 0 ? payload[at] & 0xF : payload[at++] >> 4;
                    if (nibble == 0)
                    {
                        problems.Add($"value {start + i}: int4 level 0 is not used (levels are stored as −7..7 plus 8)");
                        return;
                    }
                    q = nibble - 8;
                }

                if (bits == 8 && q == -128)
                {
                    problems.Add($"value {start + i}: int8 level −128 is outside −127..127");
                    return;
                }

                destination[start + i] = q * scale;
            }

            if (bits == 4 && (n & 1) == 1) at++;
        }
    }

    /// <summary>k = ⌈F·d⌉, at least 1: the coordinates a top-k update of <paramref name="dimension"/> values sends.</summary>
    public static int TopKCount(double fraction, int dimension) => Math.Max(1, (int)Math.Ceiling(fraction * dimension));

    /// <summary>The indices of the <paramref name="k"/> largest |x| in increasing order (ties: the sort decides).</summary>
    public static int[] SelectTopK(ReadOnlySpan<float> x, int k)
    {
        if (k < 1 || k > x.Length) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be 1 to {x.Length}");
        var magnitudes = new float[x.Length];
        System.Numerics.Tensors.TensorPrimitives.Abs(x, magnitudes);
        var order = Enumerable.Range(0, x.Length).ToArray();
        Array.Sort(magnitudes, order); // ascending; the last k are the largest
        var chosen = order.AsSpan(x.Length - k).ToArray();
        Array.Sort(chosen);
        return chosen;
    }

    /// <summary>
    /// A top-k payload of explicit coordinates: <paramref name="indices"/> strictly increasing, <paramref name="values"/>
    /// one finite value per index. What <see cref="Encode"/> writes for top-k, when the site chose the values itself.
    /// </summary>
    public static byte[] EncodeSparse(ReadOnlySpan<int> indices, ReadOnlySpan<float> values)
    {
        if (indices.IsEmpty || indices.Length != values.Length) throw new ArgumentException($"{indices.Length} indices and {values.Length} values: expected the same number, at least one");
        if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(values)) throw new ArgumentException("the values hold NaN or infinite numbers", nameof(values));
        using var output = new MemoryStream();
        WriteVarint(output, (uint)indices.Length);
        int previous = -1;
        foreach (int i in indices)
        {
            if (i <= previous) throw new ArgumentException($"index {i} after {previous}: indices must be non-negative and strictly increasing", nameof(indices));
            WriteVarint(output, (uint)(i - previous - 1));
            previous = i;
        }

        Span<byte> value = stackalloc byte[4];
        foreach (float v in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(value, v);
            output.Write(value);
        }

        return output.ToArray();
    }

    private static byte[] TopK(ReadOnlySpan<float> x, int k)
    {
        var chosen = SelectTopK(x, k);
        var values = new float[k];
        for (int j = 0; j < k; j++) values[j] = x[chosen[j]];
        return EncodeSparse(chosen, values);
    }

    private static void DecodeTopK(ReadOnlySpan<byte> payload, Span<float> destination, List<string> problems)
    {
        destination.Clear();
        int at = 0;
        if (!ReadVarint(payload, ref at, out uint k) || k == 0 || k > destination.Length)
        {
            problems.Add($"the top-k count is missing or not 1 to {destination.Length}");
            return;
        }

        var indices = new int[k];
        long previous = -1;
        for (int j = 0; j < k; j++)
        {
            if (!ReadVarint(payload, ref at, out uint gap) || previous + gap + 1 >= destination.Length)
            {
                problems.Add($"top-k index {j} is missing or beyond dimension {destination.Length}");
                return;
            }

            previous += gap + 1;
            indices[j] = (int)previous;
        }

        if (payload.Length - at != 4L * k)
        {
            problems.Add($"top-k values: {payload.Length - at} bytes after the indices, expected {4L * k}");
            return;
        }

        for (int j = 0; j < k; j++) destination[indices[j]] = BinaryPrimitives.ReadSingleLittleEndian(payload[(at + 4 * j)..]);
    }

    private static void WriteVarint(Stream s, uint value)
    {
        while (value >= 0x80)
        {
            s.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        s.WriteByte((byte)value);
    }

    private static bool ReadVarint(ReadOnlySpan<byte> p, ref int at, out uint value)
    {
        value = 0;
        for (int shift = 0; shift < 35; shift += 7)
        {
            if (at >= p.Length) return false;
            byte b = p[at++];
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return true;
        }

        return false;
    }
}

/// <summary>
/// Error feedback for a site's compressed updates (Seide et al. 2014; Karimireddy et al. 2019): the site adds what
/// compression dropped last round, multiplied by <see cref="CompressionSpec.FeedbackDecay"/>, to this round's delta before
/// compressing, and keeps the new remainder. One instance per site, kept between rounds. With
/// <see cref="CompressionSpec.ErrorFeedback"/> off the remainder stays zero.
/// </summary>
public sealed class ErrorFeedback
{
    private float[]? _residual;

    /// <summary>Error feedback with nothing kept yet.</summary>
    public ErrorFeedback()
    {
    }

    /// <summary>Error feedback that resumes with <paramref name="residual"/> (a site's saved <see cref="Residual"/>; empty: nothing kept).</summary>
    public ErrorFeedback(ReadOnlySpan<float> residual)
    {
        if (!residual.IsEmpty && !System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(residual)) throw new ArgumentException("the remainder holds NaN or infinite values", nameof(residual));
        _residual = residual.IsEmpty ? null : residual.ToArray();
    }

    /// <summary>The remainder carried to the next round (a copy).</summary>
    public float[] Residual => _residual?.ToArray() ?? [];

    /// <summary>Compresses <c>delta + γ·residual</c>, stores the new residual and returns the payload.</summary>
    public byte[] Compress(CompressionSpec spec, ReadOnlySpan<float> delta, Random random) => Compress(spec, delta, random, refit: null);

    /// <summary>
    /// As <see cref="Compress(CompressionSpec, ReadOnlySpan{float}, Random)"/>; for top-k with a <paramref name="refit"/>,
    /// the k coordinates are chosen on <c>delta + γ·residual</c>, then <paramref name="refit"/> is given them (increasing)
    /// and returns the site's refitted delta on each; the site sends refit + γ·residual there, and those coordinates'
    /// remainder becomes zero (the refit replaces the first fit's values).
    /// </summary>
    public byte[] Compress(CompressionSpec spec, ReadOnlySpan<float> delta, Random random, Func<int[], float[]>? refit)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _residual ??= new float[delta.Length];
        if (_residual.Length != delta.Length) throw new ArgumentException($"the delta has {delta.Length} values, earlier ones {_residual.Length}", nameof(delta));
        if (spec.ErrorFeedback) System.Numerics.Tensors.TensorPrimitives.Multiply(_residual, (float)spec.FeedbackDecay, _residual);
        else Array.Clear(_residual);
        var corrected = new float[delta.Length];
        System.Numerics.Tensors.TensorPrimitives.Add(delta, _residual, corrected);
        int[]? chosen = null;
        byte[] payload;
        if (refit is not null && spec.Encoding == UpdatePayloadEncodings.TopK)
        {
            chosen = UpdateCodec.SelectTopK(corrected, UpdateCodec.TopKCount(spec.Fraction, delta.Length));
            var values = refit(chosen);
            if (values.Length != chosen.Length) throw new InvalidOperationException($"the refit returned {values.Length} values for {chosen.Length} coordinates");
            for (int j = 0; j < chosen.Length; j++) values[j] += _residual[chosen[j]];
            payload = UpdateCodec.EncodeSparse(chosen, values);
        }
        else payload = UpdateCodec.Encode(spec, corrected, random);

        var sent = new float[delta.Length];
        var problems = UpdateCodec.Decode(spec.Encoding, payload, sent);
        if (problems.Count > 0) throw new InvalidOperationException("the encoder produced an unreadable payload: " + string.Join("; ", problems));
        if (spec.ErrorFeedback)
        {
            System.Numerics.Tensors.TensorPrimitives.Subtract(corrected, sent, _residual);
            if (chosen is not null) foreach (int j in chosen) _residual[j] = 0;
        }
        else Array.Clear(_residual);
        return payload;
    }
}
