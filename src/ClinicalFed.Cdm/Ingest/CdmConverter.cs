using System.Diagnostics;
using ClinicalFed.Cdm.Io;

namespace ClinicalFed.Cdm.Ingest;

/// <summary>Options of one conversion; validated all at once by <see cref="Validate"/>.</summary>
public sealed record ConvertOptions(string Input, string Site, string OutputDirectory, string? Mapping = null)
{
    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (!File.Exists(Input) && !Directory.Exists(Input)) e.Add($"--input: '{Input}' does not exist");
        if (string.IsNullOrWhiteSpace(Site)) e.Add("--site: a site name is required");
        else if (!Site.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) e.Add($"--site: '{Site}' may hold only letters, digits, '-', '_' and '.'");
        if (string.IsNullOrWhiteSpace(OutputDirectory)) e.Add("--out: an output folder is required");
        else if (Path.GetFullPath(OutputDirectory).TrimEnd('/') == Path.GetFullPath(Input).TrimEnd('/')) e.Add("--out: must differ from --input");
        return e;
    }
}

/// <summary>Converts a site's EHR export (FHIR or a mapped flat extract) into the CDM folder.</summary>
public static class CdmConverter
{
    public static ConversionReport Convert(ConvertOptions options, Action<double>? progress = null, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var errors = options.Validate();
        if (errors.Count > 0) throw new CdmException(string.Join("\n", errors));
        var started = time.GetTimestamp();
        var report = new ConversionReport { Site = options.Site, Input = Path.GetFileName(options.Input.TrimEnd('/')), StartedAt = time.GetUtcNow() };
        MappingFile? mapping = options.Mapping is null ? null : MappingFile.Load(options.Mapping);
        if (mapping is null && !FhirIngestor.LooksLikeFhir(options.Input))
            throw new CdmException($"{options.Input}: not FHIR JSON/NDJSON; give --mapping NAME|FILE for a flat extract (shipped: {string.Join(", ", MappingFile.ShippedNames)})");
        using var writer = new CdmWriter(options.OutputDirectory);
        if (mapping is not null)
        {
            report.Mapping = mapping.Name;
            report.InputKind = Directory.Exists(options.Input) ? "flat-per-patient-files" : "flat-delimited";
            new FlatIngestor(mapping, writer, report, options.Site) { Progress = progress }.Ingest(options.Input);
        }
        else new FhirIngestor(writer, report) { Progress = progress }.Ingest(options.Input);
        report.ResourcesWritten = writer.Counts.ToDictionary();
        report.Seconds = Math.Round(time.GetElapsedTime(started).TotalSeconds, 3);
        writer.Commit(report.WriteTo);
        return report;
    }
}
