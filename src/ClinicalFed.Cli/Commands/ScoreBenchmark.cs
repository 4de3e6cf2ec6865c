using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ClinicalFed.Cli.Serving;

namespace ClinicalFed.Cli.Commands;

/// <summary>
/// <c>clinicalfed bench score</c>: the scoring endpoint's work per request without HTTP — conversion and feature
/// extraction (<see cref="ScoringModel.Score(ReadOnlyMemory{byte}, string?)"/>) and writing the RiskAssessment — on one
/// thread, with the time and the bytes allocated per request, so that a change to the hot path is measured apart from
/// the load generator.
/// </summary>
internal static class ScoreBenchmark
{
    public static Command Command()
    {
        var model = CliSupport.Required("--model", "A round's folder (as for serve).");
        var bundle = new Option<string>("--bundle") { Description = "The request body: a FHIR Bundle.", DefaultValueFactory = _ => "examples/scoring/sepsis-bundle.json" };
        var seconds = new Option<double>("--min-seconds") { Description = "Time each measured phase at least this long.", DefaultValueFactory = _ => 3.0 };
        var command = new Command("score", "Time the scoring endpoint's work per request on one thread (conversion, features, model, RiskAssessment JSON) without HTTP; prints one JSON object.") { model, bundle, seconds };
        command.SetAction(pr => CliSupport.Run(() =>
        {
            var scoring = ScoringModel.Load(pr.GetValue(model)!, site: null);
            var body = (ReadOnlyMemory<byte>)File.ReadAllBytes(pr.GetValue(bundle)!);
            double min = pr.GetValue(seconds);
            var convert = Measure(min, () =>
            {
                var report = new ClinicalFed.Cdm.Ingest.ConversionReport { Site = "bench", Input = "request", StartedAt = DateTimeOffset.UnixEpoch };
                using var writer = ClinicalFed.Cdm.Io.CdmWriter.ToRecords();
                new ClinicalFed.Cdm.Ingest.FhirIngestor(writer, report).IngestJson(body.Span, "request");
                writer.Commit(_ => { });
                return report;
            });
            var tokens = Measure(min, () =>
            {
                var r = new System.Text.Json.Utf8JsonReader(body.Span);
                int n = 0;
                while (r.Read()) n++;
                return n;
            });
            var score = Measure(min, () => scoring.Score(body));
            var result = scoring.Score(body);
            var render = Measure(min, () => ServeApp.RenderAssessment(scoring, result));
            var whole = Measure(min, () => ServeApp.RenderAssessment(scoring, scoring.Score(body)));
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                bundle_bytes = body.Length,
                tokenize_us = tokens.Microseconds, // the floor: one Utf8JsonReader pass over the body
                convert_us = convert.Microseconds,
                convert_alloc_kb = convert.KilobytesAllocated,
                score_us = score.Microseconds,
                score_alloc_kb = score.KilobytesAllocated,
                render_us = render.Microseconds,
                render_alloc_kb = render.KilobytesAllocated,
                request_us = whole.Microseconds,
                request_alloc_kb = whole.KilobytesAllocated,
                requests_per_s_one_core = Math.Round(1e6 / whole.Microseconds, 0),
                probability = Math.Round(result.Probability, 6),
            }));
            return 0;
        }));
        return command;
    }

    private static (double Microseconds, double KilobytesAllocated) Measure<T>(double minSeconds, Func<T> work)
    {
        for (int i = 0; i < 200; i++) work(); // warm-up (tiered JIT)
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        long n = 0;
        while (sw.Elapsed.TotalSeconds < minSeconds)
        {
            for (int i = 0; i < 100; i++) work();
            n += 100;
        }

        return (Math.Round(sw.Elapsed.TotalMicroseconds / n, 1), Math.Round((GC.GetAllocatedBytesForCurrentThread() - allocated) / 1024.0 / n, 1));
    }
}
