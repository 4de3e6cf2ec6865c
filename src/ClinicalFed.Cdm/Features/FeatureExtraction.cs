using System.Diagnostics;
using System.IO.Compression;
using System.Globalization;
using System.Text;
using ClinicalFed.Data;

namespace ClinicalFed.Cdm.Features;

/// <summary>Options of one feature extraction, validated all at once.</summary>
public sealed record FeatureOptions(string Task, string CdmDirectory, string OutputDirectory, string? Site = null, string? SpecPath = null, bool Csv = false)
{
    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (Task is not ("sepsis" or "readmission")) e.Add($"--task: '{Task}' (expected sepsis or readmission)");
        if (!Directory.Exists(CdmDirectory)) e.Add($"--cdm: '{CdmDirectory}' does not exist");
        if (string.IsNullOrWhiteSpace(OutputDirectory)) e.Add("--out: an output folder is required");
        return e;
    }
}

/// <summary>Derives a site's feature table from its CDM (<c>features.cft</c>, optional <c>features.csv.gz</c>,
/// <c>features-summary.json</c>), written to temporary names and renamed only when complete.</summary>
public static class FeatureExtraction
{
    public const string SummaryFileName = "features-summary.json";
    public const string CsvFileName = "features.csv.gz";

    public static FeatureSummary Run(FeatureOptions o, Action<double>? progress = null, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var errors = o.Validate();
        if (errors.Count > 0) throw new CdmException(string.Join("\n", errors));
        var spec = FeatureSpec.Load(o.SpecPath ?? o.Task);
        if (spec.Task != o.Task) throw new CdmException($"feature spec '{spec.Id}' is for task '{spec.Task}', not '{o.Task}'");
        var store = new CdmStore(o.CdmDirectory);
        var site = o.Site ?? SiteOf(o.CdmDirectory);
        Directory.CreateDirectory(o.OutputDirectory);
        var started = time.GetTimestamp();
        var header = new FeatureTableHeader
        {
            Task = spec.Task, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version, Site = site, Columns = spec.ColumnNames, Label = spec.Label.Name,
            ImputableColumns = spec.Columns.Where(c => FeatureSpec.IsImputable(c.Kind)).Select(c => c.Name).ToList(),
        };
        var tablePath = Path.Combine(o.OutputDirectory, FeatureTableFile.FileName);
        var tmp = tablePath + ".partial";
        var csvTmp = Path.Combine(o.OutputDirectory, CsvFileName + ".partial");
        FeatureSummary summary;
        try
        {
            using (var writer = new FeatureTableFile.Writer(tmp, header))
            using (var csv = o.Csv ? new CsvSink(csvTmp, header) : null)
            {
                FeatureTableFile.RowCallback onRow = csv is null
                    ? writer.Write
                    : (in RowKey k, float l, ReadOnlySpan<float> v) => { writer.Write(k, l, v); csv.Write(k, l, v); };
                summary = Extract(spec, store, onRow, progress);
            }
            File.Move(tmp, tablePath, overwrite: true);
            if (o.Csv) File.Move(csvTmp, Path.Combine(o.OutputDirectory, CsvFileName), overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
            if (File.Exists(csvTmp)) File.Delete(csvTmp);
        }
        summary.Site = site;
        summary.Seconds = Math.Round(time.GetElapsedTime(started).TotalSeconds, 3);
        File.WriteAllText(Path.Combine(o.OutputDirectory, SummaryFileName), summary.ToJson());
        return summary;
    }

    /// <summary>Runs the extraction for a spec, handing each row to <paramref name="onRow"/> (null: summary only).</summary>
    public static FeatureSummary Extract(FeatureSpec spec, CdmStore store, FeatureTableFile.RowCallback? onRow, Action<double>? progress = null) => spec.Task switch
    {
        "sepsis" => new SepsisFeatureExtractor(spec).Extract(store, onRow, progress),
        "readmission" => new ReadmissionFeatureExtractor(spec).Extract(store, onRow, progress),
        _ => throw new CdmException($"unknown task '{spec.Task}'"),
    };

    public static string SiteOf(string cdmDirectory)
    {
        var report = Path.Combine(cdmDirectory, Io.CdmWriter.ReportFileName);
        try { return Ingest.ConversionReport.Read(report).Site; }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or CdmException) { return Path.GetFileName(cdmDirectory.TrimEnd('/')); }
    }

    private sealed class CsvSink : IDisposable
    {
        private readonly StreamWriter _w;
        private readonly StringBuilder _sb = new();

        public CsvSink(string path, FeatureTableHeader header)
        {
            _w = new StreamWriter(new GZipStream(File.Create(path), CompressionLevel.Fastest), new UTF8Encoding(false), 1 << 16);
            _w.Write("patient_id,encounter_id,hour," + header.Label);
            foreach (var c in header.Columns) { _w.Write(','); _w.Write(c); }
            _w.Write('\n');
        }

        public void Write(in RowKey k, float label, ReadOnlySpan<float> values)
        {
            _sb.Clear();
            _sb.Append(k.PatientId).Append(',').Append(k.EncounterId).Append(',').Append(k.Hour).Append(',').Append(label.ToString(CultureInfo.InvariantCulture));
            foreach (var v in values)
            {
                _sb.Append(',');
                if (!float.IsNaN(v)) _sb.Append(v.ToString(CultureInfo.InvariantCulture));
            }
            _sb.Append('\n');
            _w.Write(_sb);
        }

        public void Dispose() => _w.Dispose();
    }
}
