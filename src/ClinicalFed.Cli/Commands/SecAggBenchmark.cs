using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;
using ClinicalFed.Storage;
using ClinicalFed.Storage.SecureAggregation;

namespace ClinicalFed.Cli.Commands;

/// <summary>
/// <c>clinicalfed bench secagg</c>: N sites × P random parameters, no training. Times each site's masking, the
/// aggregator's unmasking, the mask expansion rate on one core, compares the secure aggregate with the plain
/// example-weighted mean, measures how much one masked upload reveals (Pearson correlation of the upload decoded as if
/// unmasked with the true update), and times a round in which sites drop out after masking.
/// </summary>
internal static class SecAggBenchmark
{
    public static Command Command()
    {
        var sites = new Option<int>("--sites") { Description = "Sites in the round.", DefaultValueFactory = _ => 10 };
        var parameters = new Option<int>("--params") { Description = "float32 parameters per update.", DefaultValueFactory = _ => 100_000 };
        var dropout = new Option<int>("--dropout") { Description = "Sites that drop out after masking in the dropout-recovery run (at most N − t).", DefaultValueFactory = _ => 2 };
        var seed = new Option<int>("--seed") { Description = "Seed of the random updates.", DefaultValueFactory = _ => 1 };
        var cmd = new Command("secagg", "Secure aggregation on synthetic updates: masking cost per site, unmasking cost, mask expansion throughput per core, error against plain FedAvg and the correlation of a masked upload with its update; prints one JSON object.")
            { sites, parameters, dropout, seed };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            Console.WriteLine(JsonSerializer.Serialize(Run(pr.GetValue(sites), pr.GetValue(parameters), pr.GetValue(dropout), pr.GetValue(seed))));
            return 0;
        }));
        return cmd;
    }

    internal sealed record Result(int sites, int @params, int threshold, double mask_ms_per_site, double share_ms_per_site, double reveal_ms_per_site,
        double unmask_ms, double mask_mb_per_s, double max_rel_error, double max_abs_error, double masked_correlation,
        int dropout_sites, double dropout_unmask_ms, double dropout_max_rel_error, double store_round_ms, string store_round_status);

    public static Result Run(int n, int p, int dropout, int seed)
    {
        if (n < 3) throw new ArgumentException("--sites must be at least 3");
        if (p < 1) throw new ArgumentException("--params must be positive");
        var rng = new Random(seed);
        var updates = new float[n][];
        var counts = new long[n];
        var names = Enumerable.Range(0, n).Select(i => $"site{i:D3}").ToArray();
        for (int i = 0; i < n; i++)
        {
            counts[i] = 1000 + rng.Next(50_000);
            updates[i] = new float[p];
            for (int j = 0; j < p; j++) updates[i][j] = (float)(rng.NextDouble() * 2 - 1 + 0.3 * Math.Sin(j));
        }
        var setup = new SecAggSetup { Federation = "bench", Round = 0, Sites = names, Threshold = SecAggSetup.DefaultThreshold(n) };
        dropout = Math.Clamp(dropout, 0, n - setup.Threshold);

        // Mask expansion throughput on one core.
        var seedBytes = new byte[32];
        rng.NextBytes(seedBytes);
        var buffer = new uint[Math.Max(p, 1 << 20)];
        MaskGenerator.Apply(seedBytes, buffer);
        var sw = Stopwatch.StartNew();
        int passes = 0;
        do { MaskGenerator.Apply(seedBytes, buffer); passes++; } while (sw.Elapsed.TotalSeconds < 1);
        double mbPerS = passes * 4.0 * buffer.Length / 1e6 / sw.Elapsed.TotalSeconds;

        var clients = names.Select(s => new SecAggSite(setup, s)).ToArray();
        try
        {
            var keys = clients.Select((c, i) => c.PublicKey(counts[i])).ToList();
            sw.Restart();
            var sealedShares = clients.Select(c => c.SealShares(keys)).ToArray();
            double shareMs = sw.Elapsed.TotalMilliseconds / n;
            var masked = new (MaskedUpdateHeader Header, uint[] Payload)[n];
            sw.Restart();
            for (int i = 0; i < n; i++) masked[i] = clients[i].Mask(keys, updates[i], counts[i], DateTimeOffset.UtcNow);
            double maskMs = sw.Elapsed.TotalMilliseconds / n;

            // Plain example-weighted mean (double) as the reference.
            var plain = new double[p];
            long total = counts.Sum();
            for (int i = 0; i < n; i++)
                for (int j = 0; j < p; j++) plain[j] += (double)counts[i] * updates[i][j] / total;

            // Full round, everyone survives.
            var all = new SecAggSurvivors { Federation = "bench", Round = 0, Survivors = names, Dropped = [], KeySetSha256 = SecAggPublicKey.KeySetSha256(keys) };
            sw.Restart();
            var reveals = clients.Select((c, i) => c.Reveal(keys, all, owner => sealedShares[Array.IndexOf(names, owner)][names[i]])).ToList();
            double revealMs = sw.Elapsed.TotalMilliseconds / n;
            sw.Restart();
            var unmasker = new SecAggUnmasker(setup, keys, p);
            foreach (var m in masked) _ = unmasker.Add(m.Header, m.Payload) is { } reason ? throw new InvalidOperationException(reason) : 0;
            var mean = unmasker.Finish(all, reveals);
            double unmaskMs = sw.Elapsed.TotalMilliseconds;
            var (maxRel, maxAbs) = Errors(mean, plain);

            // One masked upload decoded as if it were unmasked, against the site's true update.
            var decoded = new float[p];
            RingEncoding.DecodeMean(masked[0].Payload, masked[0].Header.Scale, counts[0], decoded);
            double correlation = Pearson(decoded, updates[0]);

            // Dropout recovery: the last `dropout` sites masked but never uploaded.
            var survivorNames = names.Take(n - dropout).ToArray();
            var partial = new SecAggSurvivors { Federation = "bench", Round = 0, Survivors = survivorNames, Dropped = names.Skip(n - dropout).ToArray(), KeySetSha256 = all.KeySetSha256 };
            var partialReveals = survivorNames.Select((s, i) => clients[i].Reveal(keys, partial, owner => sealedShares[Array.IndexOf(names, owner)][s])).ToList();
            sw.Restart();
            var u2 = new SecAggUnmasker(setup, keys, p);
            for (int i = 0; i < n - dropout; i++) u2.Add(masked[i].Header, masked[i].Payload);
            var mean2 = u2.Finish(partial, partialReveals);
            double dropoutMs = sw.Elapsed.TotalMilliseconds;
            var plain2 = new double[p];
            long total2 = counts.Take(n - dropout).Sum();
            for (int i = 0; i < n - dropout; i++)
                for (int j = 0; j < p; j++) plain2[j] += (double)counts[i] * updates[i][j] / total2;
            var (maxRel2, _) = Errors(mean2, plain2);

            // The whole protocol through a folder store (keys, shares, masked uploads, survivors, reveals, aggregation).
            var (storeMs, storeStatus) = StoreRound(names, updates, counts, p);

            return new Result(n, p, setup.Threshold, Math.Round(maskMs, 3), Math.Round(shareMs, 3), Math.Round(revealMs, 3), Math.Round(unmaskMs, 3), Math.Round(mbPerS, 1),
                maxRel, maxAbs, Math.Round(correlation, 6), dropout, Math.Round(dropoutMs, 3), maxRel2, Math.Round(storeMs, 1), storeStatus);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    private static (double Rel, double Abs) Errors(float[] secure, double[] plain)
    {
        double maxAbs = 0, maxPlain = 0, maxRel = 0;
        for (int j = 0; j < plain.Length; j++)
        {
            double e = Math.Abs(secure[j] - plain[j]);
            maxAbs = Math.Max(maxAbs, e);
            maxPlain = Math.Max(maxPlain, Math.Abs(plain[j]));
        }
        // Relative to the vector's scale (max |plain|), so elements near zero do not blow the ratio up.
        maxRel = maxAbs / Math.Max(maxPlain, 1e-30);
        return (maxRel, maxAbs);
    }

    private static double Pearson(float[] a, float[] b)
    {
        double ma = 0, mb = 0;
        for (int i = 0; i < a.Length; i++) { ma += a[i]; mb += b[i]; }
        ma /= a.Length; mb /= b.Length;
        double sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double x = a[i] - ma, y = b[i] - mb;
            sab += x * y; saa += x * x; sbb += y * y;
        }
        return sab / Math.Sqrt(saa * sbb);
    }

    private static (double Ms, string Status) StoreRound(string[] names, float[][] updates, long[] counts, int p)
    {
        var dir = Path.Combine(Path.GetTempPath(), "clinicalfed-secagg-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            var store = new LocalFolderStore(dir);
            var now = DateTimeOffset.UtcNow;
            var manifest = new RoundManifest
            {
                Federation = "bench", Round = 0, Strategy = StrategySpec.From(StrategyFactory.ParseOptions(StrategyNames.FedAvg, null)),
                Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = p, FeatureSpecId = "bench", FeatureSpecVersion = "1.0.0" }, GlobalModel = null, Quorum = names.Length / 2 + 1,
                Sites = names, OpenedAt = now, Deadline = now.AddHours(1),
            };
            store.PutManifestAsync(manifest).GetAwaiter().GetResult();
            var sw = Stopwatch.StartNew();
            var run = InProcessSecureRound.RunAsync(store, manifest, names.Select((s, i) => new SecureSiteInput(s, updates[i], counts[i])).ToList())
                .GetAwaiter().GetResult();
            return (sw.Elapsed.TotalMilliseconds, run.Outcome.Status.ToString());
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
