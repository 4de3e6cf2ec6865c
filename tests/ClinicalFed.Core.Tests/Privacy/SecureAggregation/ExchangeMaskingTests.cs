using System.Buffers.Binary;
using System.Security.Cryptography;
using ClinicalFed.Privacy.SecureAggregation;

namespace ClinicalFed.Core.Tests.Privacy.SecureAggregation;

/// <summary>The wide ring Z/2^64 and the pairwise masks of a sequence of exchanges (histogram boosting).</summary>
public sealed class ExchangeMaskingTests
{
    [Fact]
    public void Wide_encoding_of_hand_values_and_their_sum()
    {
        // Bound 4: scale 2^62 / 4 = 2^60, so 1.5 encodes as 1.5 · 2^60 and −0.25 as 2^64 − 2^58.
        double scale = RingEncoding.WideScale(4);
        Assert.Equal(Math.Pow(2, 60), scale);
        var y = new ulong[2];
        RingEncoding.EncodeWide([1.5, -0.25], scale, bound: 2, y);
        Assert.Equal(3UL << 59, y[0]);
        Assert.Equal(ulong.MaxValue - (1UL << 58) + 1, y[1]);
        var sum = new ulong[] { unchecked(y[0] + y[1]) };
        var decoded = new double[1];
        RingEncoding.DecodeWide(sum, scale, decoded);
        Assert.Equal(1.25, decoded[0]);
    }

    [Fact]
    public void Wide_encoding_refuses_a_value_beyond_the_sites_bound()
    {
        var e = Assert.Throws<RingOverflowException>(() => RingEncoding.EncodeWide([1.0, -2.5], RingEncoding.WideScale(10), bound: 2, new ulong[2]));
        Assert.Contains("value 1 is -2.5", e.Message);
        Assert.Throws<RingOverflowException>(() => RingEncoding.EncodeWide([double.NaN], RingEncoding.WideScale(10), bound: 2, new ulong[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => RingEncoding.WideScale(0));
    }

    [Fact]
    public void Both_mask_widths_read_the_AES_256_CTR_keystream()
    {
        // The keystream, computed here independently: AES-256-ECB of the little-endian block counter 0, 1, 2, ...
        var seed = RandomNumberGenerator.GetBytes(32);
        using var aes = Aes.Create();
        aes.Key = seed;
        var stream = new byte[16 * 40_000];
        for (int b = 0; b < 40_000; b++) BinaryPrimitives.WriteUInt64LittleEndian(stream.AsSpan(b * 16, 8), (ulong)b);
        aes.EncryptEcb(stream, stream, PaddingMode.None);

        var narrow = MaskGenerator.Expand(seed, 70_001);  // crosses a 64 KB chunk
        for (int i = 0; i < narrow.Length; i++) Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(4 * i)), narrow[i]);
        var wide = new ulong[40_003];
        MaskGenerator.ApplyWide(seed, wide);
        for (int i = 0; i < wide.Length; i++) Assert.Equal(BinaryPrimitives.ReadUInt64LittleEndian(stream.AsSpan(8 * i)), wide[i]);
        MaskGenerator.ApplyWide(seed, wide, subtract: true);
        Assert.All(wide, w => Assert.Equal(0UL, w));
    }

    [Fact]
    public void Masks_of_three_sites_cancel_in_the_sum_and_only_there()
    {
        string[] names = ["A", "B", "C"];
        var keys = names.Select(_ => PairwiseKeys.Create()).ToArray();
        var maskers = names.Select((n, i) => new ExchangeMasker("fed", n, keys[i],
            names.Select((m, j) => (m, j)).Where(x => x.j != i).ToDictionary(x => x.m, x => PairwiseKeys.PublicKeyBase64(keys[x.j])))).ToArray();
        try
        {
            double[][] x = [[1.0, -2.0, 0.5], [0.25, 3.0, 0.0], [-1.0, 0.5, 7.75]];
            double scale = RingEncoding.WideScale(30);
            var masked = maskers.Select((m, i) => m.Mask(x[i], exchange: 7, scale, bound: 10)).ToArray();
            var sum = new ulong[3];
            foreach (var y in masked) for (int j = 0; j < 3; j++) sum[j] = unchecked(sum[j] + y[j]);
            var decoded = new double[3];
            RingEncoding.DecodeWide(sum, scale, decoded);
            Assert.Equal([0.25, 1.5, 8.25], decoded);

            // A site's own vector, and any two sites' sum, stay hidden behind masks.
            var plain = new ulong[3];
            RingEncoding.EncodeWide(x[0], scale, 10, plain);
            Assert.NotEqual(plain, masked[0]);
            var pair = new ulong[3];
            for (int j = 0; j < 3; j++) pair[j] = unchecked(masked[0][j] + masked[1][j]);
            var two = new double[3];
            RingEncoding.DecodeWide(pair, scale, two);
            Assert.NotEqual(1.25, two[0]);

            // Another exchange masks differently; an exchange number is never used twice.
            Assert.NotEqual(masked[0], maskers[0].Mask(x[0], exchange: 8, scale, bound: 10));
            Assert.Contains("already masked a vector for exchange 7", Assert.Throws<InvalidOperationException>(() => maskers[0].Mask(x[0], 7, scale, 10)).Message);
        }
        finally
        {
            foreach (var m in maskers) m.Dispose();
            foreach (var k in keys) k.Dispose();
        }
    }

    [Fact]
    public void A_site_cannot_be_its_own_peer()
    {
        using var key = PairwiseKeys.Create();
        var e = Assert.Throws<ArgumentException>(() => new ExchangeMasker("fed", "A", key, new Dictionary<string, string> { ["A"] = PairwiseKeys.PublicKeyBase64(key) }));
        Assert.Contains("'A' is listed among its own peers", e.Message);
    }
}
