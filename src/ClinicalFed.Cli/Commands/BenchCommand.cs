using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
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
        var quality = new Command("quality", "Run a protocol suite through simulate and check the issue's quality targets against the figures of that run; prints one JSON object.") { suite, data, qOut };
        quality.SetAction(pr => CliSupport.Run(() =>
        {
            var name = pr.GetValue(suite)!;
            var options = ClinicalFed.Cli.Simulation.QualityBenchmark.Options(name, pr.GetValue(data)!, Path.Combine(pr.GetValue(qOut)!, name));
            var report = ClinicalFed.Cli.Simulation.SimulationRunner.Run(options);
            var checks = ClinicalFed.Cli.Simulation.QualityBenchmark.Check(name, report);
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                suite = name,
                all_met = checks.All(c => c.Met),
                checks = checks.Select(c => new { target = c.Target, site = c.Site, value = c.Value, reference = c.Reference, met = c.Met }),
                auroc = report.Sites.ToDictionary(s => s.Name, s => s.Auroc),
                seconds = report.Seconds,
                report = Path.Combine(options.OutputDirectory, "report.json"),
            }, new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
            return 0;
        }));
        bench.Subcommands.Add(quality);
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
}
