using System.Diagnostics;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Data;
using ClinicalFed.Statistics;

namespace ClinicalFed.Cli.Simulation;

/// <summary>A site's rows, split by the protocol, imputed and standardized with federated statistics.</summary>
public sealed class PreparedSite
{
    public required string Name { get; init; }
    public required IReadOnlyList<string> Columns { get; init; }
    public required float[] TrainX { get; init; }
    public required float[] TrainY { get; init; }
    /// <summary>Patient id of each training row: the privacy unit and the grouping key for sampling.</summary>
    public required string[] TrainPatients { get; init; }
    /// <summary>Rows of the site's own validation patients (about 1 in 6 of its non-test patients): no model trains on
    /// them; they only choose the personalization.</summary>
    public required float[] ValidationX { get; init; }
    public required float[] ValidationY { get; init; }
    public required float[] TestX { get; init; }
    public required float[] TestY { get; init; }
    public int Width => Columns.Count;

    /// <summary>The union of the sites' training rows: only for the centralized baseline, the privacy-violating
    /// reference that a real federation never builds.</summary>
    public static (float[] X, float[] Y) PoolTraining(IReadOnlyList<PreparedSite> sites)
    {
        var x = new float[sites.Sum(s => s.TrainX.Length)];
        var y = new float[sites.Sum(s => s.TrainRows)];
        int px = 0, py = 0;
        foreach (var s in sites)
        {
            s.TrainX.CopyTo(x, px);
            s.TrainY.CopyTo(y, py);
            px += s.TrainX.Length;
            py += s.TrainRows;
        }
        return (x, y);
    }
    public int TrainRows => TrainY.Length;
    public int TestRows => TestY.Length;

    /// <summary>The same site training on other labels (a simulated label-flipping or careless site); everything else shared.</summary>
    public PreparedSite WithTrainingLabels(float[] labels)
    {
        if (labels.Length != TrainY.Length) throw new ArgumentException($"{labels.Length} labels for {TrainY.Length} training rows", nameof(labels));
        return new PreparedSite
        {
            Name = Name, Columns = Columns, TrainX = TrainX, TrainY = labels, TrainPatients = TrainPatients,
            ValidationX = ValidationX, ValidationY = ValidationY, TestX = TestX, TestY = TestY,
        };
    }
}

/// <summary>
/// Prepares the sites of a simulation the way a real federation would: each site converts and featurizes its own
/// data, splits it by the protocol, and shares only statistics of its TRAINING rows; the merged statistics give every
/// site the same imputation medians and the same standardization.
/// </summary>
public static class SitePreparation
{
    /// <param name="Summaries">Each source site's feature summary (before any split into shards).</param>
    /// <param name="CdmDirectories">Each source site's CDM folder.</param>
    public sealed record Result(IReadOnlyList<PreparedSite> Sites, StatisticsSet Federated, IReadOnlyDictionary<string, double> Seconds,
        IReadOnlyDictionary<string, FeatureSummary> Summaries, IReadOnlyDictionary<string, string> CdmDirectories);

    public static Result Run(string task, IReadOnlyList<SiteSource> sources, IReadOnlyDictionary<string, int> splits, string workDirectory, Action<string, double>? progress = null)
    {
        var seconds = new Dictionary<string, double>();
        var sw = Stopwatch.StartNew();
        var tables = new List<(string Name, FeatureTable Table)>();
        var summaries = new Dictionary<string, FeatureSummary>();
        var cdms = new Dictionary<string, string>();
        foreach (var src in sources)
        {
            var (table, summary, cdm) = LoadTable(task, src, Path.Combine(workDirectory, src.Name), progress);
            summaries[src.Name] = summary;
            cdms[src.Name] = cdm;
            if (splits.TryGetValue(src.Name, out int k) && k > 1)
                for (int s = 0; s < k; s++) tables.Add(($"{src.Name}{s + 1}", Subset(table, i => Splits.Shard(table.Keys[i].PatientId, k) == s)));
            else tables.Add((src.Name, table));
        }
        seconds["convert_and_features"] = sw.Elapsed.TotalSeconds;
        sw.Restart();

        var spec = FeatureSpec.Load(task);
        var siteStats = tables.Select(t => TrainingStatistics(t.Name, t.Table, spec)).ToList();
        // Merged in ordinal order of site names, as the serverless aggregator merges what sites upload.
        var federated = StatisticsSet.Merge(siteStats.OrderBy(st => st.Sites[0], StringComparer.Ordinal).ToList());
        // What each site shared, and what they agreed: aggregates of training rows only.
        foreach (var st in siteStats) File.WriteAllText(Path.Combine(workDirectory, $"stats-{st.Sites[0]}.json"), st.ToJson());
        File.WriteAllText(Path.Combine(workDirectory, "stats-federated.json"), federated.ToJson());
        var prepared = tables.Select(t => Prepare(t.Name, t.Table, federated)).ToList();
        seconds["federated_statistics_and_imputation"] = sw.Elapsed.TotalSeconds;
        return new Result(prepared, federated, seconds, summaries, cdms);
    }

    /// <summary>A site's own steps before any statistic is shared: convert to the CDM (unless the source is one) and
    /// extract the task's feature table, under <paramref name="siteWorkDirectory"/>.</summary>
    public static (FeatureTable Table, FeatureSummary Summary, string CdmDirectory) LoadTable(string task, SiteSource src, string siteWorkDirectory, Action<string, double>? progress = null)
    {
        string cdm = src.Path;
        if (!src.IsCdm)
        {
            cdm = Path.Combine(siteWorkDirectory, "cdm");
            CdmConverter.Convert(new ConvertOptions(src.Path, src.Selector ?? src.Name, cdm, src.DetectMapping()), f => progress?.Invoke($"convert {src.Name}", f));
        }
        var features = Path.Combine(siteWorkDirectory, "features");
        var summary = FeatureExtraction.Run(new FeatureOptions(task, cdm, features, src.Name), f => progress?.Invoke($"features {src.Name}", f));
        var table = FeatureTableFile.Load(Path.Combine(features, FeatureTableFile.FileName), summary.Rows);
        return (table, summary, cdm);
    }

    /// <summary>What a site shares before round 0: aggregate statistics (counts, sums, histograms) of its training
    /// rows, never the test split's and never a row.</summary>
    public static StatisticsSet TrainingStatistics(string site, FeatureTable t, FeatureSpec spec)
    {
        var b = new StatisticsBuilder(site, spec.Id, spec.Version, spec.ColumnNames, SiteStatistics.Histograms(spec));
        for (int i = 0; i < t.Rows; i++) if (!Splits.IsTest(t.Keys[i].PatientId)) b.AddRow(t.Row(i));
        return b.Build();
    }

    /// <summary>A site's rows split by the protocol, imputed with the federated medians and standardized with the
    /// federated means and standard deviations.</summary>
    public static PreparedSite Prepare(string name, FeatureTable t, StatisticsSet federated)
    {
        var preparation = new RowPreparation(federated, t.Header.ImputableColumns.ToHashSet());
        int c = t.Columns;
        var trainIdx = Enumerable.Range(0, t.Rows).Where(i => !Splits.IsTest(t.Keys[i].PatientId) && !Splits.IsValidation(t.Keys[i].PatientId)).ToArray();
        var validationIdx = Enumerable.Range(0, t.Rows).Where(i => !Splits.IsTest(t.Keys[i].PatientId) && Splits.IsValidation(t.Keys[i].PatientId)).ToArray();
        var testIdx = Enumerable.Range(0, t.Rows).Where(i => Splits.IsTest(t.Keys[i].PatientId)).ToArray();
        float[] Matrix(int[] idx)
        {
            var m = new float[idx.Length * c];
            for (int r = 0; r < idx.Length; r++) t.Row(idx[r]).CopyTo(m.AsSpan(r * c, c));
            preparation.Prepare(m);
            return m;
        }
        return new PreparedSite
        {
            Name = name, Columns = t.Header.Columns,
            TrainX = Matrix(trainIdx), TrainY = trainIdx.Select(i => t.Labels[i]).ToArray(),
            TrainPatients = trainIdx.Select(i => t.Keys[i].PatientId).ToArray(),
            ValidationX = Matrix(validationIdx), ValidationY = validationIdx.Select(i => t.Labels[i]).ToArray(),
            TestX = Matrix(testIdx), TestY = testIdx.Select(i => t.Labels[i]).ToArray(),
        };
    }

    private static FeatureTable Subset(FeatureTable t, Func<int, bool> keep)
    {
        var idx = Enumerable.Range(0, t.Rows).Where(keep).ToArray();
        var values = new float[idx.Length * t.Columns];
        for (int r = 0; r < idx.Length; r++) t.Row(idx[r]).CopyTo(values.AsSpan(r * t.Columns, t.Columns));
        return new FeatureTable(t.Header, idx.Select(i => t.Keys[i]).ToArray(), idx.Select(i => t.Labels[i]).ToArray(), values);
    }
}
