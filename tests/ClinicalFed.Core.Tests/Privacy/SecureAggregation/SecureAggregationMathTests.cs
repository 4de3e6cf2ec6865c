using System.Security.Cryptography;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;

namespace ClinicalFed.Core.Tests.Privacy.SecureAggregation;

public sealed class SecureAggregationMathTests
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 1, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Ring_encoding_round_trips_within_the_fixed_point_step()
    {
        float[] x = [0f, 1.5f, -2.25f, 63.9f, -64f, 1e-6f];
        double scale = RingEncoding.Scale(3, 1000);
        var ring = new uint[x.Length];
        RingEncoding.Encode(x, 10, scale, RingEncoding.DefaultClipBound, ring);
        var back = new float[x.Length];
        RingEncoding.DecodeMean(ring, scale, 10, back);
        for (int i = 0; i < x.Length; i++) Assert.InRange(Math.Abs(back[i] - x[i]), 0, 0.5 / (scale * 10) + 1e-5 * Math.Abs(x[i]));
    }

    [Fact]
    public void Ring_encoding_refuses_values_beyond_the_bound_and_the_worst_case_sum_does_not_wrap()
    {
        double scale = RingEncoding.Scale(3, 300, clipBound: 8);
        var ring = new uint[1];
        var e = Assert.Throws<RingOverflowException>(() => RingEncoding.Encode([8.5f], 100, scale, 8, ring));
        Assert.Contains("≤ 8", e.Message);
        Assert.Throws<RingOverflowException>(() => RingEncoding.Encode([float.NaN], 100, scale, 8, ring));
        // Three sites of 100 examples, all at the bound: the sum is the largest possible and still decodes exactly.
        var sum = new uint[1];
        for (int i = 0; i < 3; i++)
        {
            RingEncoding.Encode([8f], 100, scale, 8, ring);
            RingEncoding.AddInPlace(sum, ring);
        }
        var mean = new float[1];
        RingEncoding.DecodeMean(sum, scale, 300, mean);
        Assert.Equal(8f, mean[0], 4);
        Assert.True(unchecked((int)sum[0]) > 0, "the worst-case sum must not wrap into negative numbers");
    }

    [Fact]
    public void Shamir_any_t_of_n_shares_reconstruct_and_fewer_do_not()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var shares = Shamir.Split(secret, 5, 3);
        foreach (var subset in new[] { new[] { 0, 1, 2 }, [0, 2, 4], [1, 3, 4], [4, 3, 2, 1] })
            Assert.Equal(secret, Shamir.Reconstruct(subset.Select(i => shares[i]).ToList(), 32));
        // Two shares (below the threshold) interpolate to something else (or an invalid secret).
        try
        {
            Assert.NotEqual(secret, Shamir.Reconstruct([shares[0], shares[1]], 32));
        }
        catch (CryptographicException)
        {
        }
        var round = ShamirShare.FromBytes(shares[2].ToBytes());
        Assert.Equal(shares[2].Limbs, round.Limbs);
        Assert.Equal(3, round.X);
    }

    [Fact]
    public void Pairwise_masks_cancel_on_hand_small_vectors()
    {
        var (setup, clients, keys) = Round(["A", "B", "C"], [10, 20, 30]);
        float[][] x = [[1f, -1f, 0.5f], [2f, 0f, -0.5f], [-1f, 3f, 0.25f]];
        var unmasker = new SecAggUnmasker(setup, keys, 3);
        var masked = new List<uint[]>();
        for (int i = 0; i < 3; i++)
        {
            var (h, y) = clients[i].Mask(keys, x[i], keys[i].ExampleCount, T0);
            Assert.Null(unmasker.Add(h, y));
            masked.Add(y);
        }
        var survivors = Survivors(setup, keys, ["A", "B", "C"], []);
        var reveals = clients.Select(c => c.Reveal(keys, survivors, owner => Sealed(clients, keys, owner, c.Site))).ToList();
        var mean = unmasker.Finish(survivors, reveals);
        for (int j = 0; j < 3; j++)
        {
            double expected = (10 * x[0][j] + 20 * x[1][j] + 30 * x[2][j]) / 60.0;
            Assert.Equal(expected, mean[j], 5);
        }
        // Pairwise masks alone cancel exactly: the sum of the masked vectors minus the self masks is the encoded sum.
        Assert.NotEqual(masked[0][0], masked[1][0]);
    }

    [Fact]
    public void A_site_that_drops_after_masking_is_removed_exactly()
    {
        var (setup, clients, keys) = Round(["A", "B", "C", "D"], [5, 7, 11, 13], threshold: 3);
        var rng = new Random(3);
        var x = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, 50).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray()).ToArray();
        var unmasker = new SecAggUnmasker(setup, keys, 50);
        for (int i = 0; i < 3; i++)   // D masks but its upload never arrives
        {
            var (h, y) = clients[i].Mask(keys, x[i], keys[i].ExampleCount, T0);
            Assert.Null(unmasker.Add(h, y));
        }
        _ = clients[3].Mask(keys, x[3], 13, T0);
        var survivors = Survivors(setup, keys, ["A", "B", "C"], ["D"]);
        var reveals = clients.Take(3).Select(c => c.Reveal(keys, survivors, owner => Sealed(clients, keys, owner, c.Site))).ToList();
        Assert.All(reveals, r => Assert.False(r.SelfSeedShares.ContainsKey("D")));
        Assert.All(reveals, r => Assert.Equal(["D"], r.PrivateKeyShares.Keys));
        var mean = unmasker.Finish(survivors, reveals);
        for (int j = 0; j < 50; j++)
            Assert.Equal((5 * x[0][j] + 7 * x[1][j] + 11 * x[2][j]) / 23.0, mean[j], 5);
    }

    [Fact]
    public void A_tampered_share_is_detected_and_a_spare_share_recovers()
    {
        var (setup, clients, keys) = Round(["A", "B", "C", "D"], [5, 7, 11, 13], threshold: 3);
        // A share sealed to B, altered in transit: AES-GCM refuses it.
        var sealedShare = Sealed(clients, keys, "A", "B")!;
        sealedShare[^1] ^= 1;
        Assert.ThrowsAny<CryptographicException>(() => clients[1].Reveal(keys, Survivors(setup, keys, ["A", "B", "C", "D"], []), owner => owner == "A" ? sealedShare : Sealed(clients, keys, owner, "B")));

        // A survivor reveals a wrong share: with only t shares the reconstruction fails with a reason; with a spare it recovers.
        var unmasker = new SecAggUnmasker(setup, keys, 4);
        foreach (var c in clients) Assert.Null(unmasker.Add(c.Mask(keys, [1, 2, 3, 4], keys.Single(k => k.Site == c.Site).ExampleCount, T0).Header, c.Mask(keys, [1, 2, 3, 4], keys.Single(k => k.Site == c.Site).ExampleCount, T0).Payload));
        var survivors = Survivors(setup, keys, ["A", "B", "C", "D"], []);
        var reveals = clients.Select(c => c.Reveal(keys, survivors, owner => Sealed(clients, keys, owner, c.Site))).ToList();
        var bad = ShamirShare.FromBytes(Convert.FromBase64String(reveals[0].SelfSeedShares["B"]));
        bad.Limbs[0] = (bad.Limbs[0] + 1) % Shamir.Prime;
        var tampered = reveals[0] with { SelfSeedShares = new Dictionary<string, string>(reveals[0].SelfSeedShares) { ["B"] = Convert.ToBase64String(bad.ToBytes()) } };
        var mean = unmasker.Finish(survivors, [tampered, .. reveals.Skip(1)]);
        Assert.Equal(3f, mean[2], 4);
        var e = Assert.Throws<SecAggException>(() => unmasker.Finish(survivors, [tampered, .. reveals.Skip(1).Take(2)]));
        Assert.Contains("tampered", e.Message);
    }

    [Fact]
    public void A_masked_update_from_another_key_set_or_with_a_changed_count_is_rejected()
    {
        var (setup, clients, keys) = Round(["A", "B", "C"], [10, 20, 30]);
        var unmasker = new SecAggUnmasker(setup, keys, 2);
        var (h, y) = clients[0].Mask(keys, [1, 2], 10, T0);
        Assert.Contains("key set", unmasker.Add(h with { KeySetSha256 = new string('0', 64) }, y));
        Assert.Contains("example_count", unmasker.Add(h with { ExampleCount = 11 }, y));
        Assert.Null(unmasker.Add(h, y));
        Assert.Contains("already", unmasker.Add(h, y));

        using var file = new MemoryStream();
        var written = MaskedUpdateFile.Write(file, h, y);
        var bytes = file.ToArray();
        bytes[^2] ^= 0x40;
        var ex = Assert.Throws<FederationDataException>(() => MaskedUpdateFile.Read(new MemoryStream(bytes), "masked"));
        Assert.Contains("payload_sha256", ex.Message);
        Assert.Equal(written.PayloadSha256, MaskedUpdateFile.Read(new MemoryStream(file.ToArray()), "masked").Header.PayloadSha256);
    }

    [Fact]
    public void Mask_expansion_is_deterministic_and_looks_uniform()
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        var a = MaskGenerator.Expand(seed, 100_003);
        Assert.Equal(a, MaskGenerator.Expand(seed, 100_003));
        Assert.Equal(a.AsSpan(0, 1000).ToArray(), MaskGenerator.Expand(seed, 1000));
        double mean = a.Average(v => (double)v) / uint.MaxValue;
        Assert.InRange(mean, 0.49, 0.51);
        var y = (uint[])a.Clone();
        MaskGenerator.Apply(seed, y, subtract: true);
        Assert.All(y, v => Assert.Equal(0u, v));
    }

    private static (SecAggSetup, SecAggSite[], List<SecAggPublicKey>) Round(string[] names, long[] counts, int? threshold = null)
    {
        var setup = new SecAggSetup { Federation = "sepsis", Round = 4, Sites = names, Threshold = threshold ?? SecAggSetup.DefaultThreshold(names.Length) };
        Assert.Empty(setup.Validate());
        var clients = names.Select(n => new SecAggSite(setup, n)).ToArray();
        var keys = clients.Select((c, i) => c.PublicKey(counts[i])).ToList();
        var sealedShares = clients.ToDictionary(c => c.Site, c => c.SealShares(keys));
        SealedStore.AddOrUpdate(clients[0], sealedShares);
        return (setup, clients, keys);
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<SecAggSite, Dictionary<string, Dictionary<string, byte[]>>> SealedStore = new();

    private static byte[]? Sealed(SecAggSite[] clients, List<SecAggPublicKey> keys, string owner, string to) =>
        SealedStore.TryGetValue(clients[0], out var s) ? (byte[])s[owner][to].Clone() : null;

    private static SecAggSurvivors Survivors(SecAggSetup setup, List<SecAggPublicKey> keys, string[] survivors, string[] dropped) => new()
    {
        Federation = setup.Federation, Round = setup.Round, Survivors = survivors, Dropped = dropped, KeySetSha256 = SecAggPublicKey.KeySetSha256(keys),
    };
}
