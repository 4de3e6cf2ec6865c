using ClinicalFed.Data;
using ClinicalFed.Statistics;

namespace ClinicalFed.Cdm.Features;

/// <summary>
/// The site side of federated statistics: aggregates of a feature table (counts, sums, sums of squares, fixed-edge
/// histogram bins; never rows), and local imputation with agreed (federated) or site-only reference statistics.
/// </summary>
public static class SiteStatistics
{
    public const int DefaultBins = 200;

    /// <summary>Fixed histogram edges per column, from the spec, so every site's bins line up and merge exactly.</summary>
    public static IReadOnlyList<HistogramSpec> Histograms(FeatureSpec spec) => spec.Columns.Select(c =>
    {
        var m = c.Measurement is null ? null : spec.Measurements.First(x => x.Name == c.Measurement);
        return c.Kind switch
        {
            "last" when m is not null && double.IsFinite(m.PlausibleMin) && double.IsFinite(m.PlausibleMax) => new HistogramSpec(m.PlausibleMin, m.PlausibleMax, DefaultBins),
            "measured" or "male" or "encounter-type" or "acute-admission" or "charlson-condition" or "primary-diagnosis-chapter" or "medication" or "discharge-disposition" or "admit-source" => new HistogramSpec(0, 2, 2),
            "abnormal-level" => new HistogramSpec(0, 3, 3),
            "age" => new HistogramSpec(0, 120, 120),
            "hours-since" or "icu-hours" => new HistogramSpec(0, 720, 720),
            "hospital-admission-offset-hours" => new HistogramSpec(-2400, 0, 240),
            "length-of-stay-days" => new HistogramSpec(0, 100, 200),
            "charlson-index" => new HistogramSpec(0, 30, 30),
            _ => new HistogramSpec(0, 200, 200),
        };
    }).ToList();

    public static StatisticsSet Compute(string featuresDirectory, string? site = null, string? specPath = null)
    {
        var path = Path.Combine(featuresDirectory, FeatureTableFile.FileName);
        if (!File.Exists(path)) throw new CdmException($"{featuresDirectory}: no {FeatureTableFile.FileName} (run clinicalfed features first)");
        var header = FeatureTableFile.ReadHeader(path);
        var spec = FeatureSpec.Load(specPath ?? header.FeatureSpecId);
        if (spec.Id != header.FeatureSpecId || spec.Version != header.FeatureSpecVersion || !spec.ColumnNames.SequenceEqual(header.Columns))
            throw new CdmException($"{path}: produced by feature spec {header.FeatureSpecId} {header.FeatureSpecVersion}, which differs from {spec.Id} {spec.Version}; give --spec with the spec that produced it");
        var builder = new StatisticsBuilder(site ?? header.Site, spec.Id, spec.Version, spec.ColumnNames, Histograms(spec));
        FeatureTableFile.ReadRows(path, (in RowKey _, float _, ReadOnlySpan<float> v) => builder.AddRow(v));
        return builder.Build();
    }

    /// <summary>Imputes the NaN cells of the imputable columns with the plan's fill values and writes a new table.</summary>
    public static (long Rows, long Filled) Impute(string featuresDirectory, StatisticsSet stats, ImputationMethod method, string outputDirectory)
    {
        var path = Path.Combine(featuresDirectory, FeatureTableFile.FileName);
        if (!File.Exists(path)) throw new CdmException($"{featuresDirectory}: no {FeatureTableFile.FileName}");
        var header = FeatureTableFile.ReadHeader(path);
        if (header.Imputation is not null) throw new CdmException($"{path}: already imputed ({header.Imputation})");
        if (stats.FeatureSpecId != header.FeatureSpecId || stats.FeatureSpecVersion != header.FeatureSpecVersion || !stats.Features.Select(f => f.Name).SequenceEqual(header.Columns))
            throw new CdmException($"statistics are for feature spec {stats.FeatureSpecId} {stats.FeatureSpecVersion}, the table for {header.FeatureSpecId} {header.FeatureSpecVersion}: they must match column for column");
        var plan = ImputationPlan.From(stats, method, header.ImputableColumns.ToHashSet());
        Directory.CreateDirectory(outputDirectory);
        var outPath = Path.Combine(outputDirectory, FeatureTableFile.FileName);
        if (Path.GetFullPath(outPath) == Path.GetFullPath(path)) throw new CdmException("--out must differ from --features");
        var tmp = outPath + ".partial";
        var newHeader = header with { Imputation = $"{method.ToString().ToLowerInvariant()} of {stats.Scope} statistics ({string.Join(", ", stats.Sites)})" };
        long rows = 0, filled = 0;
        var buffer = new float[header.Columns.Count];
        var fill = plan.FillValues.ToArray();
        try
        {
            using (var w = new FeatureTableFile.Writer(tmp, newHeader))
                FeatureTableFile.ReadRows(path, (in RowKey k, float label, ReadOnlySpan<float> v) =>
                {
                    v.CopyTo(buffer);
                    for (int c = 0; c < buffer.Length; c++) if (float.IsNaN(buffer[c]) && !float.IsNaN(fill[c])) filled++;
                    ImputationPlan.FillMissing(buffer, fill);
                    w.Write(k, label, buffer);
                    rows++;
                });
            File.Move(tmp, outPath, overwrite: true);
        }
        finally { if (File.Exists(tmp)) File.Delete(tmp); }
        var summary = Path.Combine(featuresDirectory, FeatureExtraction.SummaryFileName);
        if (File.Exists(summary) && Path.GetFullPath(featuresDirectory) != Path.GetFullPath(outputDirectory))
            File.Copy(summary, Path.Combine(outputDirectory, FeatureExtraction.SummaryFileName), overwrite: true);
        return (rows, filled);
    }
}
