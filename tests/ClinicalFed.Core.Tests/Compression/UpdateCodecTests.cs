using ClinicalFed.Compression;
using ClinicalFed.Federation;

namespace ClinicalFed.Core.Tests.Compression;

public sealed class UpdateCodecTests
{
    private static readonly CompressionSpec Int8 = new(UpdatePayloadEncodings.Int8, 1);
    private static readonly CompressionSpec Int4 = new(UpdatePayloadEncodings.Int4, 1);

    private static float[] Decode(string encoding, byte[] payload, int dimension)
    {
        var d = new float[dimension];
        Assert.Empty(UpdateCodec.Decode(encoding, payload, d));
        return d;
    }

    [Fact]
    public void Int8_of_values_on_the_grid_is_exact_and_byte_for_byte_hand_computed()
    {
        // max |x| = 1.27 → scale 0.01; levels 127, −50, 0
        float[] x = [1.27f, -0.5f, 0f];
        var payload = UpdateCodec.Encode(Int8, x, new Random(1));
        Assert.Equal(4 + 3, payload.Length);
        Assert.Equal(0.01f, BitConverter.ToSingle(payload, 0), 6);
        Assert.Equal(new byte[] { 127, unchecked((byte)-50), 0 }, payload[4..]);
        var back = Decode(UpdatePayloadEncodings.Int8, payload, 3);
        Assert.Equal(1.27f, back[0], 5);
        Assert.Equal(-0.5f, back[1], 5);
        Assert.Equal(0f, back[2]);
    }

    [Fact]
    public void Int4_packs_two_levels_per_byte_low_nibble_first()
    {
        // max |x| = 0.7 → scale 0.1; levels 7, −7, 0 → stored 15, 1, 8 → bytes 0x1F, 0x08
        var payload = UpdateCodec.Encode(Int4, [0.7f, -0.7f, 0f], new Random(1));
        Assert.Equal(new byte[] { 0x1F, 0x08 }, payload[4..]);
        var back = Decode(UpdatePayloadEncodings.Int4, payload, 3);
        Assert.Equal([0.7f, -0.7f, 0f], back.Select(v => (float)Math.Round(v, 5)));
    }

    [Fact]
    public void Stochastic_rounding_is_unbiased_and_within_one_level()
    {
        float[] x = [1f, 0.3f, -0.55f, 0.01f];
        var random = new Random(42);
        var mean = new double[x.Length];
        const int trials = 20_000;
        foreach (var spec in new[] { Int8, Int4 })
        {
            Array.Clear(mean);
            for (int t = 0; t < trials; t++)
            {
                var back = Decode(spec.Encoding, UpdateCodec.Encode(spec, x, random), x.Length);
                for (int i = 0; i < x.Length; i++)
                {
                    Assert.True(Math.Abs(back[i] - x[i]) <= 1.0 / (spec == Int8 ? 127 : 7) + 1e-6);
                    mean[i] += back[i] / trials;
                }
            }

            for (int i = 0; i < x.Length; i++) Assert.Equal(x[i], mean[i], 2e-3);
        }
    }

    [Fact]
    public void Top_k_keeps_the_largest_magnitudes_with_gap_encoded_indices()
    {
        float[] x = [0.1f, -5f, 0.2f, 0f, 3f, 0f];
        var payload = UpdateCodec.Encode(new CompressionSpec(UpdatePayloadEncodings.TopK, 0.3), x, new Random(1)); // k = ceil(1.8) = 2
        // k = 2; indices 1, 4 → gaps 1, 2; values −5, 3
        Assert.Equal(new byte[] { 2, 1, 2 }, payload[..3]);
        Assert.Equal(3 + 8, payload.Length);
        Assert.Equal([0f, -5f, 0f, 0f, 3f, 0f], Decode(UpdatePayloadEncodings.TopK, payload, 6));
    }

    [Fact]
    public void Payload_sizes_meet_the_compression_targets()
    {
        foreach (int d in new[] { 109, 1000, 100_000 })
        {
            var x = Enumerable.Range(0, d).Select(i => (float)Math.Sin(i)).ToArray();
            double float32 = 4.0 * d;
            Assert.True(UpdateCodec.Encode(Int8, x, new Random(1)).Length / float32 <= 0.26, $"int8 at {d}");
            Assert.True(UpdateCodec.Encode(Int4, x, new Random(1)).Length / float32 <= 0.14, $"int4 at {d}");
            Assert.True(UpdateCodec.Encode(new CompressionSpec(UpdatePayloadEncodings.TopK, 0.1), x, new Random(1)).Length / float32 <= 0.15, $"top-10% at {d}");
        }
    }

    [Fact]
    public void Error_feedback_carries_what_top_k_dropped_into_the_next_round()
    {
        var feedback = new ErrorFeedback();
        var spec = new CompressionSpec(UpdatePayloadEncodings.TopK, 0.5) { FeedbackDecay = 1 };
        var first = Decode(UpdatePayloadEncodings.TopK, feedback.Compress(spec, [4f, 1f], new Random(1)), 2);
        Assert.Equal([4f, 0f], first);
        Assert.Equal([0f, 1f], feedback.Residual);
        // Next delta [0.5, 0.5] + residual [0, 1] = [0.5, 1.5]: the dropped coordinate now wins.
        var second = Decode(UpdatePayloadEncodings.TopK, feedback.Compress(spec, [0.5f, 0.5f], new Random(1)), 2);
        Assert.Equal([0f, 1.5f], second);
        Assert.Equal([0.5f, 0f], feedback.Residual);
    }

    /// <summary>A site agent saves its remainder between rounds: feedback resumed from it continues exactly.</summary>
    [Fact]
    public void Error_feedback_resumes_from_a_saved_remainder()
    {
        var spec = new CompressionSpec(UpdatePayloadEncodings.TopK, 0.5) { FeedbackDecay = 1 };
        var resumed = new ErrorFeedback([0f, 1f]); // what the first round above kept
        Assert.Equal([0f, 1.5f], Decode(UpdatePayloadEncodings.TopK, resumed.Compress(spec, [0.5f, 0.5f], new Random(1)), 2));
        Assert.Equal([0.5f, 0f], resumed.Residual);
        Assert.Empty(new ErrorFeedback([]).Residual);
        Assert.Throws<ArgumentException>(() => new ErrorFeedback([float.NaN, 0f]));
    }

    [Fact]
    public void Error_feedback_decays_the_remainder_before_adding_it()
    {
        var feedback = new ErrorFeedback();
        var spec = new CompressionSpec(UpdatePayloadEncodings.TopK, 0.5) { FeedbackDecay = 0.5 };
        Assert.Equal([4f, 0f], Decode(UpdatePayloadEncodings.TopK, feedback.Compress(spec, [4f, 1f], new Random(1)), 2));
        // [0.5, 0.5] + 0.5 · [0, 1] = [0.5, 1]: coordinate 1 is sent with 1, coordinate 0 kept.
        Assert.Equal([0f, 1f], Decode(UpdatePayloadEncodings.TopK, feedback.Compress(spec, [0.5f, 0.5f], new Random(1)), 2));
        Assert.Equal([0.5f, 0f], feedback.Residual);
        // Without feedback nothing is kept.
        var none = new ErrorFeedback();
        none.Compress(spec with { ErrorFeedback = false }, [4f, 1f], new Random(1));
        Assert.Equal([0f, 0f], none.Residual);
    }

    [Fact]
    public void The_refit_chooses_on_delta_plus_remainder_and_sends_refit_plus_remainder()
    {
        var feedback = new ErrorFeedback();
        var spec = new CompressionSpec(UpdatePayloadEncodings.TopK, 0.5) { FeedbackDecay = 0.5 };
        var asked = new List<int[]>();
        // Round 1: k = 2 of [4, 1, 0.5, 0] are 0 and 1; the refit says 3 and 2 there; 0.5 at coordinate 2 is kept.
        var first = feedback.Compress(spec, [4f, 1f, 0.5f, 0f], new Random(1), c => { asked.Add(c); return [3f, 2f]; });
        Assert.Equal([3f, 2f, 0f, 0f], Decode(UpdatePayloadEncodings.TopK, first, 4));
        Assert.Equal([0f, 0f, 0.5f, 0f], feedback.Residual);
        // Round 2: [0.1, 0, 1, 0] + 0.5 · [0, 0, 0.5, 0] = [0.1, 0, 1.25, 0] → coordinates 0 and 2; refit 0.2 and 1 plus
        // the decayed remainder 0.25 at coordinate 2; the chosen coordinates' remainder is zero afterwards.
        var second = feedback.Compress(spec, [0.1f, 0f, 1f, 0f], new Random(1), c => { asked.Add(c); return [0.2f, 1f]; });
        Assert.Equal([0.2f, 0f, 1.25f, 0f], Decode(UpdatePayloadEncodings.TopK, second, 4));
        Assert.Equal([0f, 0f, 0f, 0f], feedback.Residual);
        Assert.Equal([[0, 1], [0, 2]], asked);
        Assert.Throws<InvalidOperationException>(() => feedback.Compress(spec, [1f, 0f, 0f, 0f], new Random(1), _ => [1f]));
    }

    [Fact]
    public void Sparse_payloads_of_chosen_coordinates_are_the_top_k_layout()
    {
        float[] x = [0.1f, -3f, 0f, 2f, 0.5f];
        Assert.Equal([1, 3], UpdateCodec.SelectTopK(x, 2));
        Assert.Equal(UpdateCodec.Encode(new CompressionSpec(UpdatePayloadEncodings.TopK, 0.4), x, new Random(1)), UpdateCodec.EncodeSparse([1, 3], [-3f, 2f]));
        Assert.Equal(11, UpdateCodec.TopKCount(0.1, 109));
        Assert.Throws<ArgumentException>(() => UpdateCodec.EncodeSparse([3, 1], [1f, 2f]));
        Assert.Throws<ArgumentException>(() => UpdateCodec.EncodeSparse([1], [float.NaN]));
        Assert.Throws<ArgumentOutOfRangeException>(() => UpdateCodec.SelectTopK(x, 6));
    }

    [Theory]
    [InlineData("int8", new byte[] { 0, 0, 128, 63, 0x80 }, "level −128")]
    [InlineData("int8", new byte[] { 0, 0, 128, 63, 1, 2 }, "has 5 bytes, not 6")]
    [InlineData("int4", new byte[] { 0, 0, 128, 63, 0x00 }, "level 0 is not used")]
    [InlineData("topk", new byte[] { 1, 7, 0, 0, 128, 63 }, "beyond dimension")]
    [InlineData("topk", new byte[] { 1, 0, 0, 0 }, "expected 4")]
    [InlineData("int8", new byte[] { 0, 0, 192, 127, 1 }, "not a finite")]
    public void Malformed_payloads_are_refused_with_a_reason(string encoding, byte[] payload, string reason)
    {
        var problems = UpdateCodec.Decode(encoding, payload, new float[1]);
        Assert.Contains(problems, p => p.Contains(reason, StringComparison.Ordinal));
    }

    [Fact]
    public void Compressed_updates_round_trip_through_the_update_file_and_corruption_is_caught()
    {
        var header = new UpdateHeader
        {
            Federation = "sepsis", Round = 2, Site = "A", ExampleCount = 10, ParameterKind = ParameterKinds.Full, Dimension = 3,
            CreatedAt = DateTimeOffset.UnixEpoch,
        };
        var payload = UpdateCodec.Encode(Int8, [1.27f, -0.5f, 0f], new Random(1));
        using var file = new MemoryStream();
        var written = UpdateFile.WriteCompressed(file, header, UpdatePayloadEncodings.Int8, payload);
        Assert.Equal((UpdatePayloadEncodings.Int8, 7L, ParameterKinds.Delta), (written.PayloadEncoding, written.PayloadBytes!.Value, written.ParameterKind));

        file.Position = 0;
        var (read, values) = UpdateFile.Read(file);
        Assert.Equal(written, read with { LocalMetrics = written.LocalMetrics });
        Assert.Equal(1.27f, values[0], 5);

        // The store's upload check accepts it; a flipped payload byte is refused by hash.
        file.Position = 0;
        UpdateFile.CopyVerified(file, new MemoryStream());
        var bytes = file.ToArray();
        bytes[^1] ^= 1;
        var e = Assert.Throws<FederationDataException>(() => UpdateFile.Read(new MemoryStream(bytes)));
        Assert.Contains("payload_sha256", string.Join(" ", e.Problems));
        // A compressed full update is not valid: compression encodes differences from the global model.
        Assert.Contains((header with { PayloadEncoding = "int8", PayloadBytes = 7, PayloadSha256 = new string('a', 64) }).Validate(), p => p.Contains("must be 'delta'", StringComparison.Ordinal));
    }

    [Fact]
    public void Compression_specs_parse_and_report_mistakes()
    {
        var errors = new List<string>();
        Assert.Equal(new CompressionSpec("topk", 0.1), CompressionSpec.Parse("topk:0.1", errors));
        Assert.False(CompressionSpec.Parse("topk:0.1:noef", errors)!.ErrorFeedback);
        Assert.Equal("topk:0.1:noef", CompressionSpec.Parse("topk:0.1:noef", errors)!.ToString());
        Assert.Equal("int4", CompressionSpec.Parse("int4", errors)!.Encoding);
        Assert.Null(CompressionSpec.Parse("topk:2", errors));
        Assert.Null(CompressionSpec.Parse("zip", errors));
        Assert.Equal(2, errors.Count);
        var tuned = CompressionSpec.Parse("topk:0.1:decay=0.5:refit=0", errors)!;
        Assert.Equal((0.5, 0), (tuned.FeedbackDecay, tuned.RefitEpochs));
        Assert.Equal("topk:0.1:decay=0.5:refit=0", tuned.ToString());
        Assert.Equal((CompressionSpec.DefaultFeedbackDecay, CompressionSpec.DefaultRefitEpochs), (new CompressionSpec("topk", 0.1).FeedbackDecay, new CompressionSpec("topk", 0.1).RefitEpochs));
        Assert.Null(CompressionSpec.Parse("topk:0.1:decay=2", errors));
        Assert.Null(CompressionSpec.Parse("topk:0.1:refit=x:zip", errors));
        Assert.Equal(5, errors.Count); // one per bad option
        Assert.Contains("'zip' is not an option", errors[^1], StringComparison.Ordinal);
        Assert.Contains("'refit=x': the refit epochs N must be a whole number", errors[^2], StringComparison.Ordinal);
        Assert.Contains("'decay=2': the decay G must be", errors[^3], StringComparison.Ordinal);

        errors.Clear();
        Assert.Equal("int4", CompressionSpec.Parse("topk:0.1", errors)!.FinalEncoding);
        Assert.Equal("int8", CompressionSpec.Parse("topk:0.1:final=int8", errors)!.FinalEncoding);
        Assert.Equal("topk:0.1:final=int8", CompressionSpec.Parse("topk:0.1:final=int8", errors)!.ToString());
        var sparseToTheEnd = CompressionSpec.Parse("topk:0.1:final=topk", errors)!;
        Assert.Null(sparseToTheEnd.FinalEncoding);
        Assert.Equal(sparseToTheEnd, CompressionSpec.Parse(sparseToTheEnd.ToString(), errors));
        Assert.Null(CompressionSpec.Parse("int8", errors)!.FinalEncoding);
        Assert.Empty(errors);
        Assert.Null(CompressionSpec.Parse("topk:0.1:final=zip", errors));
        Assert.Contains("'final=zip': the final round's encoding must be int4, int8 or topk", Assert.Single(errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Top_k_warms_up_dense_in_the_first_round_and_ends_dense_in_the_last()
    {
        var spec = new CompressionSpec(UpdatePayloadEncodings.TopK, 0.1);
        var schedule = Enumerable.Range(0, 4).Select(r => spec.ForRound(r, 4)).ToList();
        Assert.Equal(["int8", "topk", "topk", "int4"], schedule.Select(s => s.Encoding));
        Assert.Same(spec, schedule[1]);
        Assert.All(new[] { schedule[0], schedule[3] }, dense => Assert.Equal((1.0, false, 0), (dense.Fraction, dense.ErrorFeedback, dense.RefitEpochs)));
        Assert.Equal(["int8", "topk", "int8"], Enumerable.Range(0, 3).Select(r => (spec with { FinalEncoding = "int8" }).ForRound(r, 3).Encoding));
        Assert.Equal(["int8", "topk", "topk"], Enumerable.Range(0, 3).Select(r => (spec with { FinalEncoding = null }).ForRound(r, 3).Encoding));
        Assert.Equal("int8", spec.ForRound(0, 1).Encoding); // one round: the warm-up
        var int4 = new CompressionSpec(UpdatePayloadEncodings.Int4, 1, ErrorFeedback: false);
        Assert.Same(int4, int4.ForRound(0, 3));
        Assert.Same(int4, int4.ForRound(2, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => spec.ForRound(3, 3));
    }
}
