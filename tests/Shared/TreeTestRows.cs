using ClinicalFed.Trees;

namespace ClinicalFed.Testing;

/// <summary>Seeded random rows for comparing tree ensemble scores (Core, Learning and Storage tests).</summary>
internal static class TreeTestRows
{
    /// <summary>Random rows for score comparisons: wide range, a share of NaN cells, and some values exactly on
    /// the model's thresholds. Rows have the model's feature count (<paramref name="features"/> without a model).</summary>
    public static float[][] Random(int count, int seed, TreeEnsembleModel? model = null, double nanRate = 0.15, int features = 8)
    {
        var rng = new Random(seed);
        var thresholds = model?.Trees.SelectMany(t => Enumerable.Range(0, t.NodeCount).Select(i => (t.SplitFeature[i], t.Threshold[i]))).ToArray() ?? [];
        var rows = new float[count][];
        for (int i = 0; i < count; i++)
        {
            var r = new float[model?.FeatureCount ?? features];
            for (int j = 0; j < r.Length; j++) r[j] = rng.NextDouble() < nanRate ? float.NaN : (float)(3 * Gaussian(rng));
            if (thresholds.Length > 0 && i % 3 == 0)
            {
                var (f, t) = thresholds[rng.Next(thresholds.Length)];
                r[f] = t; // exactly on a split: must go left everywhere
            }
            rows[i] = r;
        }
        return rows;
    }

    public static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
