using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClinicalFed.Cdm.Io;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace ClinicalFed.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Benchmarks that print their figures as one JSON object (ratios measured in the same run).");
        var input = CliSupport.Required("--input", "Observation NDJSON (gzip ok), e.g. a CDM's Observation.ndjson.gz.");
        var limit = new Option<int>("--limit") { Description = "Lines to read into memory for both readers.", DefaultValueFactory = _ => 100_000 };
        var minSeconds = new Option<double>("--min-seconds") { Description = "Repeat each reader until it has run at least this long.", DefaultValueFactory = _ => 2.0 };
        var read = new Command("fhir-read", "Parse the same Observation NDJSON with the project's streaming reader and with Firely SDK POCO deserialization; print both rates and their ratio.") { input, limit, minSeconds };
        read.SetAction(pr => CliSupport.Run(() =>
        {
            var result = FhirRead(pr.GetValue(input)!, pr.GetValue(limit), pr.GetValue(minSeconds));
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }));
        bench.Subcommands.Add(read);

        var pInput = CliSupport.Required("--input", "EHR export to convert (e.g. ../shared/data/physionet2019_sepsis/hospital_A.csv.gz).");
        var pMapping = CliSupport.Optional("--mapping", "Mapping for a flat extract (physionet2019, diabetes130 or a file).");
        var pTask = new Option<string>("--task") { Description = "sepsis or readmission.", DefaultValueFactory = _ => "sepsis" };
        var pSite = new Option<string>("--site") { Description = "Site name (selects a mapping site, e.g. ER).", DefaultValueFactory = _ => "bench" };
        var pWork = CliSupport.Optional("--work", "Folder for the CDM and features (default: a temporary folder, deleted afterwards).");
        var pipeline = new Command("pipeline", "Convert and featurize in one process; print seconds per phase, counts and the process's peak memory.") { pInput, pMapping, pTask, pSite, pWork };
        pipeline.SetAction(pr => CliSupport.Run(() =>
        {
            var work = pr.GetValue(pWork) ?? Path.Combine(Path.GetTempPath(), "clinicalfed-bench-" + Guid.NewGuid().ToString("N")[..8]);
            try
            {
                var sw = Stopwatch.StartNew();
                var cdm = Path.Combine(work, "cdm");
                var report = ClinicalFed.Cdm.Ingest.CdmConverter.Convert(new ClinicalFed.Cdm.Ingest.ConvertOptions(pr.GetValue(pInput)!, pr.GetValue(pSite)!, cdm, pr.GetValue(pMapping)));
                double convertS = sw.Elapsed.TotalSeconds;
                sw.Restart();
                var summary = ClinicalFed.Cdm.Features.FeatureExtraction.Run(new ClinicalFed.Cdm.Features.FeatureOptions(pr.GetValue(pTask)!, cdm, Path.Combine(work, "features")));
                double featuresS = sw.Elapsed.TotalSeconds;
                using var proc = Process.GetCurrentProcess();
                proc.Refresh();
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    input = Path.GetFileName(pr.GetValue(pInput)!),
                    convert_s = Math.Round(convertS, 2),
                    features_s = Math.Round(featuresS, 2),
                    records_read = report.RecordsRead,
                    observations = report.ResourcesWritten.GetValueOrDefault("Observation"),
                    rows = summary.Rows,
                    positives = summary.Positives,
                    columns = summary.Columns.Count,
                    peak_mb = Math.Round(proc.PeakWorkingSet64 / 1048576.0, 1),
                                    }));
            }
            finally
            {
                if (pr.GetValue(pWork) is null && Directory.Exists(work)) Directory.Delete(work, recursive: true);
            }
            return 0;
        }));
        bench.Subcommands.Add(pipeline);

        var suite = CliSupport.Required("--suite", $"Quality suite: {string.Join(", ", ClinicalFed.Cli.Simulation.QualityBenchmark.Suites)}.");
        var data = new Option<string>("--data") { Description = "The shared data folder.", DefaultValueFactory = _ => "../shared/data" };
        var qOut = new Option<string>("--out") { Description = "Output folder of the simulation.", DefaultValueFactory = _ => "bench-quality" };
        var seeds = CliSupport.Optional("--seeds",
            "Run the suite once per seed (e.g. 1-5 or 1,3,7; each into <out>/<suite>/seed-N) and print every run with how many met all targets. Default: the suite's own seed, one run.");
        var quality = new Command("quality", "Run a protocol suite through simulate and check the issue's quality targets against the figures of that run; prints one JSON object.") { suite, data, qOut, seeds };
        quality.SetAction(pr => CliSupport.Run(() =>
        {
            var name = pr.GetValue(suite)!;
            var seedList = pr.GetValue(seeds) is { } text ? ClinicalFed.Cli.Simulation.QualityBenchmark.ParseSeeds(text) : null;
            var json = new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
            var suiteOut = Path.Combine(pr.GetValue(qOut)!, name);
            if (seedList is null)
            {
                Console.WriteLine(JsonSerializer.Serialize(RunQualitySuite(name, ClinicalFed.Cli.Simulation.QualityBenchmark.Options(name, pr.GetValue(data)!, suiteOut)), json));
                return 0;
            }

            var runs = seedList.Select(seed => RunQualitySuite(name,
                ClinicalFed.Cli.Simulation.QualityBenchmark.Options(name, pr.GetValue(data)!, Path.Combine(suiteOut, $"seed-{seed}")) with { Seed = seed })).ToList();
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                suite = name,
                seeds = seedList,
                all_met = runs.All(r => r.AllMet),
                seeds_met = runs.Where(r => r.AllMet).Select(r => r.Seed).ToList(),
                // For scale: how much the run the targets compare against moves with the seed alone.
                reference_seed_spread = ClinicalFed.Cli.Simulation.QualityBenchmark.Spread(runs.Select(r => (r.Seed, r.ReferenceAuroc)).ToList()) is { } spread
                    ? new { reference = runs[0].Reference, max_site_difference = spread.MaxSiteDifference, site = spread.Site, seeds = spread.Seeds } : null,
                runs,
            }, json));
            return 0;
        }));
        bench.Subcommands.Add(quality);

        var aSites = new Option<int>("--sites") { Description = "Sites (update files) in the round.", DefaultValueFactory = _ => 100 };
        var aParams = new Option<int>("--params") { Description = "float32 parameters per update.", DefaultValueFactory = _ => 1_000_000 };
        var aStrategy = new Option<string>("--strategy") { Description = $"Aggregation strategy: {string.Join(", ", ClinicalFed.Federation.StrategyNames.All)}.", DefaultValueFactory = _ => ClinicalFed.Federation.StrategyNames.FedAvg };
        var aStore = CliSupport.Optional("--store", "Folder store to write the round into (default: a temporary folder, deleted afterwards).");
        var aRepeat = new Option<int>("--repeat") { Description = "Timed passes of each; the best is reported.", DefaultValueFactory = _ => 3 };
        var aggregate = new Command("aggregate", "Write N random updates into a folder store, then time closing the round with RoundAggregator against a plain pass that reads the same files and sums their payloads; prints one JSON object.")
            { aSites, aParams, aStrategy, aStore, aRepeat };
        aggregate.SetAction(pr => CliSupport.Run(() =>
        {
            var result = AggregateBenchmark.Run(pr.GetValue(aSites), pr.GetValue(aParams), pr.GetValue(aStrategy)!, pr.GetValue(aStore), pr.GetValue(aRepeat));
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }));
        bench.Subcommands.Add(aggregate);
        bench.Subcommands.Add(SecAggBenchmark.Command());
        bench.Subcommands.Add(ScoreBenchmark.Command());
        return bench;
    }

    internal sealed record FhirReadResult(string input, int lines, long bytes, double project_per_s, double firely_per_s, double ratio, double project_seconds, double firely_seconds, int project_passes, int firely_passes, long project_observations, string firely_mode);

    internal static FhirReadResult FhirRead(string path, int limit, double minSeconds)
    {
        if (limit <= 0) throw new ArgumentException("--limit must be positive");
        // Both readers parse the same in-memory lines, so decompression and disk are outside the timing.
        var lines = new List<byte[]>();
        long bytes = 0;
        using (var lr = NdjsonLineReader.Open(path))
            while (lines.Count < limit && lr.TryReadLine(out var line))
            {
                if (line.IsEmpty) continue;
                lines.Add(line.ToArray());
                bytes += line.Length;
            }
        if (lines.Count == 0) throw new ArgumentException($"{path}: no lines");
        var strings = lines.Select(l => Encoding.UTF8.GetString(l)).ToList();

        var reader = new FhirResourceReader();
        long observations = 0;
        var (projectSeconds, projectPasses) = Time(minSeconds, () =>
        {
            foreach (var l in lines) observations += reader.Read(l).Observations.Count;
        });
        var firely = new FhirJsonDeserializer();
        int parsed = 0;
        var (firelySeconds, firelyPasses) = Time(minSeconds, () =>
        {
            foreach (var s in strings) if (firely.Deserialize<Resource>(s) is Observation) parsed++;
        });
        if (parsed == 0) throw new ArgumentException($"{path}: Firely found no Observation");
        double p = lines.Count * projectPasses / projectSeconds, f = lines.Count * firelyPasses / firelySeconds;
        return new FhirReadResult(Path.GetFileName(path), lines.Count, bytes, Math.Round(p), Math.Round(f), Math.Round(p / f, 2),
            Math.Round(projectSeconds, 3), Math.Round(firelySeconds, 3), projectPasses, firelyPasses, observations / projectPasses, "FhirJsonDeserializer default settings, Deserialize<Resource>(string)");
    }

    private static (double Seconds, int Passes) Time(double minSeconds, Action pass)
    {
        // Warm-up until tiered JIT has settled (at least one pass and half a second), the same for both readers.
        var warm = Stopwatch.StartNew();
        do pass(); while (warm.Elapsed.TotalSeconds < 0.5);
        var sw = Stopwatch.StartNew();
        int passes = 0;
        do { pass(); passes++; } while (sw.Elapsed.TotalSeconds < minSeconds);
        return (sw.Elapsed.TotalSeconds, passes);
    }

    /// <summary>One run of a quality suite and its checks, as <c>bench quality</c> prints it.</summary>
    private static QualityRun RunQualitySuite(string suite, ClinicalFed.Cli.Simulation.SimulationOptions options)
    {
        var report = ClinicalFed.Cli.Simulation.SimulationRunner.Run(options);
        var checks = ClinicalFed.Cli.Simulation.QualityBenchmark.Check(suite, report);
        var (reference, referenceAuroc) = ClinicalFed.Cli.Simulation.QualityBenchmark.ReferenceAuroc(suite, report);
        return new QualityRun(suite, options.Seed, checks.All(c => c.Met),
            checks.Select(c => new QualityCheck(c.Target, c.Site, c.Value, c.Reference, c.Met)).ToList(),
            report.Sites.ToDictionary(s => s.Name, s => (object)s.Auroc), report.Seconds, Path.Combine(options.OutputDirectory, "report.json"))
        {
            Reference = reference, ReferenceAuroc = referenceAuroc,
        };
    }

    private sealed record QualityCheck(
        [property: JsonPropertyName("target")] string Target, [property: JsonPropertyName("site")] string Site,
        [property: JsonPropertyName("value")] double? Value, [property: JsonPropertyName("reference")] double? Reference,
        [property: JsonPropertyName("met")] bool Met);

    private sealed record QualityRun(
        [property: JsonPropertyName("suite")] string Suite, [property: JsonPropertyName("seed")] int Seed,
        [property: JsonPropertyName("all_met")] bool AllMet, [property: JsonPropertyName("checks")] IReadOnlyList<QualityCheck> Checks,
        [property: JsonPropertyName("auroc")] IReadOnlyDictionary<string, object> Auroc, [property: JsonPropertyName("seconds")] object Seconds,
        [property: JsonPropertyName("report")] string Report)
    {
        /// <summary>What the targets compare against (<see cref="ClinicalFed.Cli.Simulation.QualityBenchmark.ReferenceAuroc"/>).</summary>
        [JsonPropertyName("reference")] public string Reference { get; init; } = "";

        /// <summary>That run's per-site test AUROC.</summary>
        [JsonPropertyName("reference_auroc")] public IReadOnlyDictionary<string, double> ReferenceAuroc { get; init; } = new Dictionary<string, double>();
    }
}

/// <summary>
/// <c>bench aggregate</c>: the aggregator's read path against the bare I/O it cannot avoid. Writes one round of N
/// random float32 updates into a folder store, then alternates two timed passes over the same files (page cache
/// warmed first): a baseline that opens every update and sums its payload as float32, and
/// <see cref="ClinicalFed.Storage.RoundAggregator.AggregateAsync"/> closing the round (verify, accumulate, write the
/// result and the global model). Best of <c>repeat</c> passes each; also the baseline plus a single-threaded SHA-256 of
/// each payload, the verification any reader of the format owes. Memory: the process's working set sampled every
/// millisecond during the aggregations, and the managed bytes one aggregation allocates.
/// </summary>
internal static class AggregateBenchmark
{
    internal sealed record Result(
        int sites,
        [property: System.Text.Json.Serialization.JsonPropertyName("params")] int parameters,
        string strategy,
        long bytes,
        int repeat,
        double aggregate_s,
        double baseline_s,
        double ratio,
        double baseline_sha256_s,
        double first_aggregate_s,
        double aggregate_mb_per_s,
        double baseline_mb_per_s,
        double peak_mb,
        double working_set_before_mb,
        double managed_alloc_mb,
        double payload_mb,
        string peak_kind,
        double setup_s);

    public static Result Run(int sites, int parameters, string strategy, string? storeFolder, int repeat)
    {
        if (sites < 1) throw new ArgumentException("--sites must be at least 1");
        if (parameters is < 1 or > ClinicalFed.Federation.WireLimits.MaxDimension)
            throw new ArgumentException($"--params must be 1 to {ClinicalFed.Federation.WireLimits.MaxDimension}");
        if (repeat < 1) throw new ArgumentException("--repeat must be at least 1");
        if (!ClinicalFed.Federation.StrategyNames.All.Contains(strategy))
            throw new ArgumentException($"--strategy '{strategy}' is not one of {string.Join(", ", ClinicalFed.Federation.StrategyNames.All)} (this benchmark aggregates float32 parameters)");

        bool temporary = storeFolder is null;
        var root = storeFolder ?? Path.Combine(Path.GetTempPath(), "clinicalfed-bench-aggregate-" + Guid.NewGuid().ToString("N")[..8]);
        string federation = "bench-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            var store = new ClinicalFed.Storage.LocalFolderStore(root);
            var setup = Stopwatch.StartNew();
            long bytes = WriteRound(store, federation, sites, parameters, strategy);
            double setupS = setup.Elapsed.TotalSeconds;
            var roundFolder = store.FullPath(ClinicalFed.Storage.StoreLayout.Round(federation, 0));
            int largest = store.ListUpdatesAsync(federation, 0).GetAwaiter().GetResult()
                .Max(s => (int)new FileInfo(store.FullPath(ClinicalFed.Storage.StoreLayout.Update(federation, 0, s))).Length);
            var buffer = new byte[largest + 1];

            // Warm-up: the page cache holds every update for both, and the aggregator's code is jitted.
            Baseline(store, federation, buffer, hash: false);
            Baseline(store, federation, buffer, hash: true);
            var first = Stopwatch.StartNew();
            Aggregate(store, federation, sites);
            double firstAggregate = first.Elapsed.TotalSeconds; // as a fresh process (a serverless invocation) would: code not yet optimized
            ResetRound(roundFolder);

            double bestBaseline = double.MaxValue, bestHashed = double.MaxValue, bestAggregate = double.MaxValue, alloc = 0;
            long peak = 0, before = 0;
            using var process = Process.GetCurrentProcess();
            for (int i = 0; i < repeat; i++)
            {
                var sw = Stopwatch.StartNew();
                Baseline(store, federation, buffer, hash: false);
                bestBaseline = Math.Min(bestBaseline, sw.Elapsed.TotalSeconds);
                sw.Restart();
                Baseline(store, federation, buffer, hash: true);
                bestHashed = Math.Min(bestHashed, sw.Elapsed.TotalSeconds);

                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                process.Refresh();
                before = Math.Max(before, process.WorkingSet64);
                long allocated = GC.GetTotalAllocatedBytes(precise: true);
                using (var sampler = new WorkingSetSampler())
                {
                    sw.Restart();
                    Aggregate(store, federation, sites);
                    bestAggregate = Math.Min(bestAggregate, sw.Elapsed.TotalSeconds);
                    peak = Math.Max(peak, sampler.Stop());
                }

                alloc = Math.Max(alloc, GC.GetTotalAllocatedBytes(precise: true) - allocated);
                ResetRound(roundFolder);
            }

            const double MiB = 1 << 20;
            return new Result(sites, parameters, strategy, bytes, repeat,
                Math.Round(bestAggregate, 6), Math.Round(bestBaseline, 6), Math.Round(bestAggregate / bestBaseline, 2),
                Math.Round(bestHashed, 6), Math.Round(firstAggregate, 6),
                Math.Round(bytes / MiB / bestAggregate, 1), Math.Round(bytes / MiB / bestBaseline, 1),
                Math.Round(peak / MiB, 1), Math.Round(before / MiB, 1), Math.Round(alloc / MiB, 1), Math.Round(parameters * 4 / MiB, 2),
                "peak_mb: the process working set (RSS) at its highest during the timed aggregations, sampled every 1 ms; working_set_before_mb: just before them; managed_alloc_mb: managed bytes one aggregation allocates",
                Math.Round(setupS, 2));
        }
        finally
        {
            if (temporary && Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The manifest of round 0 and one random update per site; returns the bytes of all updates.</summary>
    private static long WriteRound(ClinicalFed.Storage.LocalFolderStore store, string federation, int sites, int parameters, string strategy)
    {
        var names = Enumerable.Range(1, sites).Select(i => $"site-{i:D5}").ToArray();
        var opened = DateTimeOffset.UtcNow;
        store.PutManifestAsync(new ClinicalFed.Federation.RoundManifest
        {
            Federation = federation,
            Round = 0,
            Strategy = new ClinicalFed.Federation.StrategySpec { Name = strategy },
            Model = new ClinicalFed.Federation.ModelSpec { Kind = ClinicalFed.Federation.ModelKinds.Logistic, Dimension = parameters, FeatureSpecId = "bench", FeatureSpecVersion = "1.0.0" },
            GlobalModel = null,
            Quorum = sites,
            Sites = names,
            OpenedAt = opened,
            Deadline = opened.AddDays(1),
        }).GetAwaiter().GetResult();

        var payload = new float[parameters];
        using var file = new MemoryStream();
        long bytes = 0;
        for (int s = 0; s < sites; s++)
        {
            // xorshift32, seeded per site: values in [-1, 1), different for every site, reproducible.
            uint x = 2463534242u ^ (uint)(s + 1) * 2654435761u;
            for (int i = 0; i < payload.Length; i++)
            {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                payload[i] = (x >> 8) * (2f / (1 << 24)) - 1f;
            }

            var header = new ClinicalFed.Federation.UpdateHeader
            {
                Federation = federation,
                Round = 0,
                Site = names[s],
                ExampleCount = 100 + s,
                ParameterKind = ClinicalFed.Federation.ParameterKinds.Full,
                Dimension = parameters,
                CreatedAt = opened,
            };
            file.SetLength(0);
            ClinicalFed.Federation.UpdateFile.Write(file, header, payload);
            bytes += file.Length;
            file.Position = 0;
            store.PutUpdateAsync(federation, 0, names[s], file).GetAwaiter().GetResult();
        }

        return bytes;
    }

    /// <summary>
    /// The same reads as the aggregator, and nothing else: open each update, read it whole, sum the payload as float32.
    /// With <paramref name="hash"/>, also the SHA-256 of each payload, on one thread: the verification every reader
    /// of the format owes, reported beside the baseline as <c>baseline_sha256_s</c>.
    /// </summary>
    private static double Baseline(ClinicalFed.Storage.LocalFolderStore store, string federation, byte[] buffer, bool hash)
    {
        double total = 0;
        foreach (var site in store.ListUpdatesAsync(federation, 0).GetAwaiter().GetResult())
        {
            using var stream = store.OpenUpdateAsync(federation, 0, site).GetAwaiter().GetResult()!;
            int n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            int start = 9 + System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(5, 4));
            if (hash) total += System.Security.Cryptography.SHA256.HashData(buffer.AsSpan(start, n - start))[0];
            total += System.Numerics.Tensors.TensorPrimitives.Sum(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(buffer.AsSpan(start, n - start)));
        }

        return total;
    }

    private static void Aggregate(ClinicalFed.Storage.LocalFolderStore store, string federation, int sites)
    {
        var outcome = new ClinicalFed.Storage.RoundAggregator(store).AggregateAsync(federation, 0, closeNow: true).GetAwaiter().GetResult();
        if (outcome.Status != ClinicalFed.Storage.RoundOutcomeStatus.Aggregated || outcome.Result!.Accepted.Count != sites)
            throw new InvalidOperationException($"the benchmark round did not aggregate all {sites} updates: {outcome.Message}");
    }

    /// <summary>Removes what the aggregation wrote (this benchmark's own round) so that the next pass closes it again.</summary>
    private static void ResetRound(string roundFolder)
    {
        foreach (var name in new[] { ClinicalFed.Storage.StoreLayout.ResultFileName, ClinicalFed.Storage.StoreLayout.GlobalModelFileName, ClinicalFed.Storage.StoreLayout.ServerStateFileName })
            File.Delete(Path.Combine(roundFolder, name));
    }

    /// <summary>Samples the process's working set every millisecond on its own thread until stopped; returns the highest.</summary>
    private sealed class WorkingSetSampler : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _stop;
        private long _peak;

        public WorkingSetSampler()
        {
            _thread = new Thread(() =>
            {
                using var process = Process.GetCurrentProcess();
                do
                {
                    process.Refresh();
                    _peak = Math.Max(_peak, process.WorkingSet64);
                    Thread.Sleep(1);
                }
                while (!_stop);
            }) { IsBackground = true, Name = "working-set sampler" };
            _thread.Start();
        }

        public long Stop()
        {
            _stop = true;
            _thread.Join();
            return _peak;
        }

        public void Dispose()
        {
            if (!_stop) Stop();
        }
    }
}
