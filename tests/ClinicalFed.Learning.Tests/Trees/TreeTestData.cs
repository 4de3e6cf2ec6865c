using ClinicalFed.Data;
using ClinicalFed.Testing;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Tests.Trees;

/// <summary>Seeded synthetic binary-classification sites for the tree tests.</summary>
internal static class TreeTestData
{
    public const int Features = 8;
    public static readonly string[] Names = Enumerable.Range(0, Features).Select(i => $"x{i}").ToArray();

    /// <summary>
    /// A site's table: x ~ N(shift, 1) per feature, NaN with probability <paramref name="missingRate"/> in features 5–7
    /// (missingness of x5 is itself predictive), and
    /// logit = intercept + 1.2·x0 − 0.9·x1 + 0.7·x2·x3 + 1.0·[x4 &gt; 0.5] + 0.8·[x5 missing] + siteEffect·x6.
    /// </summary>
    public static FeatureTable Site(string name, int rows, int seed, double shift = 0, double intercept = -1.0, double missingRate = 0.0, double siteEffect = 0.0)
    {
        var rng = new Random(seed);
        var values = new float[rows * Features];
        var labels = new float[rows];
        for (int i = 0; i < rows; i++)
        {
            var x = values.AsSpan(i * Features, Features);
            for (int j = 0; j < Features; j++) x[j] = (float)(shift + TreeTestRows.Gaussian(rng));
            bool x5Missing = false;
            for (int j = 5; j < Features; j++)
                if (rng.NextDouble() < missingRate) { x[j] = float.NaN; if (j == 5) x5Missing = true; }
            double x6 = float.IsNaN(x[6]) ? 0 : x[6];
            double z = intercept + 1.2 * x[0] - 0.9 * x[1] + 0.7 * x[2] * x[3] + (x[4] > 0.5f ? 1.0 : 0.0) + (x5Missing ? 0.8 : 0.0) + siteEffect * x6;
            labels[i] = rng.NextDouble() < 1 / (1 + Math.Exp(-z)) ? 1f : 0f;
        }
        return Table(name, values, labels);
    }

    public static FeatureTable Table(string site, float[] values, float[] labels)
    {
        var header = new FeatureTableHeader
        {
            Task = "synthetic", FeatureSpecId = "synthetic", FeatureSpecVersion = "1.0.0", Site = site, Columns = Names, Label = "y",
        };
        var keys = Enumerable.Range(0, labels.Length).Select(i => new RowKey(site, $"{site}-{i}", 0)).ToArray();
        return new FeatureTable(header, keys, labels, values);
    }

    /// <summary>Three non-IID sites: A with missing values, B shifted with a site effect, C with more missing values;
    /// seeds <paramref name="seed"/>, + 1 and + 2.</summary>
    public static FeatureTable[] NonIidSites(int seed, int rowsA, int rowsB, int rowsC) =>
    [
        Site("A", rowsA, seed, missingRate: 0.2),
        Site("B", rowsB, seed + 1, shift: 0.5, siteEffect: 0.8),
        Site("C", rowsC, seed + 2, missingRate: 0.3),
    ];

    /// <summary>The ensemble the histogram federation tests start from: a constant margin of −0.4.</summary>
    public static readonly TreeEnsembleModel HistogramStart = TreeEnsembleModel.Constant(Features, -0.4, Names);

    /// <summary>The federation's cuts merged from every site's sketches, as a histogram federation agrees them.</summary>
    public static float[][] MergedCuts(int maxBins, params FeatureTable[] sites) =>
        HistogramBinning.MergeCuts(sites.Select(s => (IReadOnlyList<FeatureSketch>)HistogramBinning.SketchColumns(s.Values, s.Columns)).ToList(), maxBins);

    public static FeatureTable Pool(params FeatureTable[] tables) =>
        Table("pooled", tables.SelectMany(t => t.Values).ToArray(), tables.SelectMany(t => t.Labels).ToArray());

    /// <summary>Area under the ROC curve (Mann–Whitney, ties counted half).</summary>
    public static double Auroc(double[] scores, float[] labels)
    {
        var order = Enumerable.Range(0, scores.Length).OrderBy(i => scores[i]).ToArray();
        double rankSumPos = 0; long pos = 0;
        int k = 0;
        while (k < order.Length)
        {
            int e = k;
            while (e + 1 < order.Length && scores[order[e + 1]] == scores[order[k]]) e++;
            double avgRank = (k + e) / 2.0 + 1;
            for (int q = k; q <= e; q++) if (labels[order[q]] > 0.5f) { rankSumPos += avgRank; pos++; }
            k = e + 1;
        }
        long neg = scores.Length - pos;
        return (rankSumPos - pos * (pos + 1) / 2.0) / ((double)pos * neg);
    }

    public static double LogLoss(double[] scores, float[] labels)
    {
        double s = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            double p = Math.Clamp(TreeEnsembleModel.Sigmoid(scores[i]), 1e-12, 1 - 1e-12);
            s -= labels[i] > 0.5f ? Math.Log(p) : Math.Log(1 - p);
        }
        return s / scores.Length;
    }

    /// <summary>Replaces NaN by 0 (FastTree cannot train on missing values).</summary>
    public static FeatureTable Imputed(FeatureTable t) =>
        Table(t.Header.Site, t.Values.Select(v => float.IsNaN(v) ? 0f : v).ToArray(), t.Labels);
}
