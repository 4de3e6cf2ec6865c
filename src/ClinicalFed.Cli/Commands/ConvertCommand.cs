using System.CommandLine;
using ClinicalFed.Cdm.Ingest;
using Spectre.Console;

namespace ClinicalFed.Cli.Commands;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = CliSupport.Required("--input", "EHR export: FHIR Bulk NDJSON folder or file (gzip ok), FHIR Bundle(s), or a flat extract (CSV, or a folder of per-patient .psv files) with --mapping.");
        var mapping = CliSupport.Optional("--mapping", $"Mapping for a flat extract: a shipped name ({string.Join(", ", MappingFile.ShippedNames)}) or a mapping JSON file (schemas/mapping.schema.json). Not needed for FHIR input.");
        var site = CliSupport.Required("--site", "Site name. When the mapping defines sites (diabetes130: ER, REF, OTH), only that site's rows are converted.");
        var output = CliSupport.Required("--out", "Output CDM folder: <ResourceType>.ndjson.gz files and convert-report.json. Replaced only when the conversion succeeds.");
        var cmd = new Command("convert", "Convert EHR data into the site's FHIR R4 common data model (gzipped NDJSON per resource type).") { input, mapping, site, output };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var console = CliSupport.Console();
            var options = new ConvertOptions(pr.GetValue(input)!, pr.GetValue(site)!, pr.GetValue(output)!, pr.GetValue(mapping));
            var report = CliSupport.WithProgress($"convert {options.Site}", p => CdmConverter.Convert(options, p));
            var table = new Table().AddColumns("resource", "written");
            foreach (var (k, v) in report.ResourcesWritten) table.AddRow(k, v.ToString("N0"));
            console.Write(table);
            console.MarkupLineInterpolated($"read {report.RecordsRead:N0} records, rejected {report.RejectedTotal:N0}, skipped types {report.SkippedResourceTypes.Values.Sum():N0}, {report.Seconds:F1} s → {Path.Combine(options.OutputDirectory, "convert-report.json")}");
            foreach (var w in report.Warnings) console.MarkupLineInterpolated($"[yellow]warning:[/] {w}");
            return 0;
        }));
        return cmd;
    }
}
