using System.Runtime.InteropServices;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;
using ClinicalFed.Storage.SecureAggregation;

namespace ClinicalFed.Storage.Tests.SecureAggregation;

public sealed class SecureRoundAggregatorTests
{
    private static readonly string[] Sites = ["A", "B", "C", "D", "E"];

    private static List<SecureSiteInput> Inputs(int dimension, int seed = 7)
    {
        var rng = new Random(seed);
        return Sites.Select((s, i) => new SecureSiteInput(s, Enumerable.Range(0, dimension).Select(_ => (float)(rng.NextDouble() * 6 - 3)).ToArray(), 100 + 37 * i,
            new Dictionary<string, double> { ["loss"] = 0.1 * i })).ToList();
    }

    private static float[] PlainFedAvg(TempStore plain, List<SecureSiteInput> inputs, int dimension)
    {
        var manifest = Fixtures.Manifest(dimension: dimension, sites: inputs.Select(i => i.Site).ToArray(), quorum: 2);
        plain.Store.PutManifestAsync(manifest).GetAwaiter().GetResult();
        foreach (var i in inputs)
            plain.Store.PutUpdateAsync(Fixtures.Header(i.Site, i.ExampleCount, dimension: dimension), i.Parameters).GetAwaiter().GetResult();
        var outcome = new RoundAggregator(plain.Store, new ManualClock(Fixtures.T0)).AggregateAsync(Fixtures.Federation, 0, closeNow: true).GetAwaiter().GetResult();
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        return plain.Store.GetGlobalModelAsync(Fixtures.Federation, 0).GetAwaiter().GetResult()!.Parameters.ToArray();
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        double scale = expected.Max(v => Math.Abs(v));
        for (int j = 0; j < expected.Length; j++) Assert.True(Math.Abs(expected[j] - actual[j]) <= 1e-4 * scale, $"parameter {j}: {actual[j]} vs {expected[j]}");
    }

    [Fact]
    public async Task A_secure_round_through_the_store_equals_plain_FedAvg_and_the_store_holds_no_unmasked_update()
    {
        using var plain = new TempStore();
        using var secure = new TempStore();
        var inputs = Inputs(300);
        var expected = PlainFedAvg(plain, inputs, 300);
        var manifest = Fixtures.Manifest(dimension: 300, sites: Sites, quorum: 3);
        await secure.Store.PutManifestAsync(manifest);
        var run = await InProcessSecureRound.RunAsync(secure.Store, manifest, inputs, time: new ManualClock(Fixtures.T0));
        Assert.Equal(RoundOutcomeStatus.Aggregated, run.Outcome.Status);
        var global = (await secure.Store.GetGlobalModelAsync(Fixtures.Federation, 0))!;
        AssertClose(expected, global.Parameters.ToArray());
        Assert.Equal(Sites, global.Header.Sites);
        Assert.Equal(inputs.Sum(i => i.ExampleCount), run.Outcome.Result!.ExampleCount);

        // The aggregator's view: no update file, and no site's float32 update (nor any 16-byte run of it) in any stored byte.
        var files = secure.AllFiles();
        Assert.DoesNotContain(files, f => f.Contains("/updates/", StringComparison.Ordinal));
        Assert.Contains(files, f => f.EndsWith("secagg/masked/A.cfm32", StringComparison.Ordinal));
        Assert.Contains(files, f => f.EndsWith("secagg/shares/A.json", StringComparison.Ordinal));
        var contents = files.Where(f => !f.EndsWith("global.cfm", StringComparison.Ordinal)).Select(f => File.ReadAllBytes(Path.Combine(secure.Folder, f))).ToList();
        foreach (var i in inputs)
        {
            var raw = MemoryMarshal.AsBytes(i.Parameters.AsSpan()).ToArray();
            for (int off = 0; off + 16 <= raw.Length; off += 64)
                Assert.DoesNotContain(contents, c => c.AsSpan().IndexOf(raw.AsSpan(off, 16)) >= 0);
        }
        // A masked upload decoded as if unmasked is noise, not the update.
        var masked = await new SecAggStore(secure.Store, Fixtures.Federation, 0).ReadMaskedAsync("A");
        var decoded = new float[300];
        RingEncoding.DecodeMean(masked!.Value.Payload, masked.Value.Header.Scale, inputs[0].ExampleCount, decoded);
        Assert.InRange(Pearson(decoded, inputs[0].Parameters), -0.2, 0.2);
    }

    [Fact]
    public async Task Two_sites_drop_after_masking_and_the_survivors_aggregate_is_exact()
    {
        using var plain = new TempStore();
        using var secure = new TempStore();
        var inputs = Inputs(64, seed: 11);
        var expected = PlainFedAvg(plain, inputs.Take(3).ToList(), 64);
        var manifest = Fixtures.Manifest(dimension: 64, sites: Sites, quorum: 3);
        await secure.Store.PutManifestAsync(manifest);
        var run = await InProcessSecureRound.RunAsync(secure.Store, manifest, inputs, dropAfterMasking: new HashSet<string> { "D", "E" }, time: new ManualClock(Fixtures.T0));
        Assert.Equal(RoundOutcomeStatus.Aggregated, run.Outcome.Status);
        Assert.Equal(["D", "E"], run.Dropped);
        Assert.Equal(["D", "E"], run.Outcome.Result!.Missing);
        AssertClose(expected, (await secure.Store.GetGlobalModelAsync(Fixtures.Federation, 0))!.Parameters.ToArray());
        // Survivors revealed private-key shares of D and E only, and self-seed shares of survivors only.
        var reveals = await new SecAggStore(secure.Store, Fixtures.Federation, 0).GetUnmasksAsync();
        Assert.All(reveals, r => Assert.Equal(["D", "E"], r.PrivateKeyShares.Keys.Order()));
        Assert.All(reveals, r => Assert.Equal(["A", "B", "C"], r.SelfSeedShares.Keys.Order()));
    }

    [Fact]
    public async Task A_tampered_masked_upload_is_rejected_and_treated_as_a_dropout()
    {
        using var plain = new TempStore();
        using var secure = new TempStore();
        var inputs = Inputs(32, seed: 5);
        var expected = PlainFedAvg(plain, inputs.Where(i => i.Site != "B").ToList(), 32);
        var manifest = Fixtures.Manifest(dimension: 32, sites: Sites, quorum: 3);
        await secure.Store.PutManifestAsync(manifest);
        var sa = new SecAggStore(secure.Store, Fixtures.Federation, 0);
        var setup = new SecAggSetup { Federation = Fixtures.Federation, Round = 0, Sites = Sites, Threshold = 3 };
        await sa.PutSetupAsync(setup);
        var clients = Sites.Select(s => new SecAggSite(setup, s)).ToArray();
        foreach (var (c, i) in clients.Zip(inputs)) await sa.PutKeyAsync(c.PublicKey(i.ExampleCount));
        var keys = await sa.GetKeysAsync(setup);
        foreach (var c in clients) await sa.PutSharesAsync(c.Site, c.SealShares(keys));
        foreach (var (c, i) in clients.Zip(inputs))
        {
            var (h, y) = c.Mask(keys, i.Parameters, i.ExampleCount, Fixtures.T0);
            if (c.Site == "B")
            {
                // B's masked upload is altered after it was hashed (one payload bit flipped in transit or at rest).
                using var ms = new MemoryStream();
                MaskedUpdateFile.Write(ms, h, y);
                var bytes = ms.ToArray();
                bytes[^(4 * 20)] ^= 1;
                await secure.Store.PutObjectAsync(sa.MaskedPath("B"), async (s, ct) => { await s.WriteAsync(bytes, ct); return true; });
                continue;
            }
            await sa.PutMaskedAsync(h, y);
        }
        var aggregator = new SecureRoundAggregator(secure.Store, new ManualClock(Fixtures.T0));
        var survivors = await aggregator.CloseMaskingAsync(Fixtures.Federation, 0);
        Assert.Equal(["B"], survivors.Dropped);
        Assert.Equal(RoundOutcomeStatus.Waiting, (await aggregator.AggregateAsync(Fixtures.Federation, 0)).Status);
        foreach (var c in clients.Where(c => c.Site != "B"))
            await sa.PutUnmaskAsync(c.Reveal(keys, survivors, owner => sa.GetShareAsync(owner, c.Site).GetAwaiter().GetResult()));
        var outcome = await aggregator.AggregateAsync(Fixtures.Federation, 0);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        AssertClose(expected, (await secure.Store.GetGlobalModelAsync(Fixtures.Federation, 0))!.Parameters.ToArray());
        Assert.Equal(RoundOutcomeStatus.AlreadyCompleted, (await aggregator.AggregateAsync(Fixtures.Federation, 0)).Status);
        foreach (var c in clients) c.Dispose();
    }

    [Fact]
    public async Task Too_few_survivors_refuse_to_reveal()
    {
        using var secure = new TempStore();
        var manifest = Fixtures.Manifest(dimension: 8, sites: Sites, quorum: 1);
        await secure.Store.PutManifestAsync(manifest);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            InProcessSecureRound.RunAsync(secure.Store, manifest, Inputs(8), dropAfterMasking: new HashSet<string> { "C", "D", "E" }));
        Assert.Contains("refusing to reveal", e.Message);
        Assert.Null(await secure.Store.GetGlobalModelAsync(Fixtures.Federation, 0));
    }

    private static double Pearson(float[] a, float[] b)
    {
        double ma = a.Average(), mb = b.Average(), sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < a.Length; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb); }
        return sab / Math.Sqrt(saa * sbb);
    }
}
