using ClinicalFed.Privacy;
using ClinicalFed.Statistics;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Trees;

/// <summary>
/// Differentially private boosting, the patient as the unit (<see cref="HistogramPrivacy"/>): the queries every
/// private tree run makes before its first tree (bin cuts from noisy counts on a public grid, a base score from noisy
/// label sums), the booster's options under noise, and one site boosting its own rows privately (the ensemble it
/// uploads in a bagging or cyclic tree federation is then differentially private, like the histograms of a federated
/// histogram run).
/// </summary>
public static class PrivateTreeBoosting
{
    /// <summary>The public grid of the cuts query: −4 to 8 in steps of 0.05, in the standard deviations of the
    /// federation's standardization (every model here sees standardized features).</summary>
    public static readonly HistogramSpec Grid = new(-4, 8, 240);

    /// <summary>The most a leaf's value may be before the learning rate, under noise.</summary>
    public const double MaxLeafOutput = 2;

    /// <summary>Gaussian queries of one private boosting run: <paramref name="trees"/> trees of depth
    /// <paramref name="maxDepth"/>, the cuts, and the base score when the run starts from its own prevalence.</summary>
    public static long Queries(int trees, int maxDepth, bool baseScore) => HistogramPrivacy.Queries(trees, maxDepth) - (baseScore ? 0 : 1);

    /// <summary>The booster's options under noise whose standard deviation in the summed histograms is
    /// <paramref name="sumNoise"/> (per part bound): a split's children need a hessian sum of twice the noise of a sum
    /// over all of a feature's bins, a leaf's value is clipped to ±<see cref="MaxLeafOutput"/>, and the minimum leaf size
    /// (whose counts are noisy weights) is left to the hessian.</summary>
    public static TreeBoostingOptions UnderNoise(TreeBoostingOptions options, double sumNoise)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxDepth < 1) throw new ArgumentException("differentially private boosting needs a maximum depth (its accounting charges depth + 1 queries per tree)", nameof(options));
        double minH = 2 * Math.Sqrt(options.MaxBins + 2.0) * sumNoise * HistogramPrivacy.PartBounds[1];
        return options with { MinChildHessian = Math.Max(options.MinChildHessian, minH), MaxLeafOutput = MaxLeafOutput, MinExamplesPerLeaf = 1 };
    }

    /// <summary>A site's row weights min(1, <paramref name="cap"/> / the patient's rows) from the matrix's patients, for
    /// its rows in order (<see cref="FeatureMatrix.RowIndices"/> when set), as <see cref="HistogramBoostingSite"/> weighs them.</summary>
    public static double[] RowWeights(FeatureMatrix matrix, double cap)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.GroupIds is null) throw new ArgumentException("differential privacy needs the rows' patients (FeatureMatrix.GroupIds)");
        var groups = matrix.RowIndices is { } rows ? rows.Select(r => matrix.GroupIds[r]).ToArray() : matrix.GroupIds;
        return HistogramPrivacy.PatientRowWeights(groups, matrix.GroupCount, cap);
    }

    /// <summary>The cuts query: every site's patient-weighted counts of present values on <see cref="Grid"/>, each
    /// with N(0, sd²) per bin (sd = σ·W·√features: each site adds the whole noise, since the counts travel unmasked),
    /// summed; cuts where the sum stands three of its deviations clear of zero.</summary>
    public static float[][] NoisyCuts(IReadOnlyList<(float[] Values, double[] RowWeights)> sites, int columns, double noiseMultiplier, double cap, int maxBins, SecureGaussian gaussian)
    {
        ArgumentNullException.ThrowIfNull(sites);
        ArgumentNullException.ThrowIfNull(gaussian);
        double sd = noiseMultiplier * HistogramPrivacy.CountSensitivity(columns, cap);
        var sum = Enumerable.Range(0, columns).Select(_ => new double[Grid.TotalBins]).ToArray();
        foreach (var (values, weights) in sites)
        {
            var counts = HistogramBinning.GridCounts(values, columns, weights, Grid);
            for (int f = 0; f < columns; f++)
                for (int b = 0; b < Grid.TotalBins; b++) sum[f][b] += counts[f][b] + sd * gaussian.Next();
        }
        double threshold = 3 * sd * Math.Sqrt(sites.Count);
        return sum.Select(c => HistogramBinning.GridCuts(Grid, c, threshold, maxBins)).ToArray();
    }

    /// <summary>The base score query: a site's patient-weighted sums of labels and of weights, each with
    /// N(0, (σ·W·√2)²).</summary>
    public static (double Positives, double Total) NoisyCounts(ReadOnlySpan<float> labels, ReadOnlySpan<double> rowWeights, double noiseMultiplier, double cap, SecureGaussian gaussian)
    {
        ArgumentNullException.ThrowIfNull(gaussian);
        if (labels.Length != rowWeights.Length) throw new ArgumentException($"{labels.Length} labels but {rowWeights.Length} weights");
        double sd = noiseMultiplier * HistogramPrivacy.CountSensitivity(2, cap);
        double positives = 0, total = 0;
        for (int r = 0; r < labels.Length; r++) { total += rowWeights[r]; if (labels[r] > 0.5f) positives += rowWeights[r]; }
        return (positives + sd * gaussian.Next(), total + sd * gaussian.Next());
    }

    /// <summary>The constant ensemble at the log-odds of noisy sums (clamped to [0.5, total − 0.5] positives of at
    /// least 2).</summary>
    public static TreeEnsembleModel BaseModel(int columns, IEnumerable<(double Positives, double Total)> noisy, IReadOnlyList<string>? names)
    {
        double positives = 0, total = 0;
        foreach (var (p, t) in noisy) { positives += p; total += t; }
        total = Math.Max(total, 2);
        return CyclicTreeBoosting.InitialModel(columns, [(Math.Clamp(positives, 0.5, total - 0.5), total)], names);
    }

    /// <summary>
    /// One site boosts its own rows privately: <paramref name="options"/>.NumberOfTrees trees of depth
    /// <paramref name="options"/>.MaxDepth on <paramref name="start"/> (null: from the site's noisy prevalence, one more
    /// query), with cuts from its own noisy grid counts and Gaussian noise of σ·S on every histogram and node sum.
    /// Spends <see cref="Queries"/> queries at noise multiplier <paramref name="noiseMultiplier"/>.
    /// </summary>
    /// <param name="matrix">The site's training rows with their patients (<see cref="FeatureMatrix.GroupIds"/>).</param>
    public static TreeEnsembleModel Boost(TreeEnsembleModel? start, FeatureMatrix matrix, TreeBoostingOptions options, double cap, double noiseMultiplier,
        SecureGaussian gaussian, IReadOnlyList<string>? names = null)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(options);
        if (!(noiseMultiplier > 0) || !double.IsFinite(noiseMultiplier)) throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "The noise multiplier must be a finite number > 0.");
        int d = matrix.Columns;
        var rowWeights = RowWeights(matrix, cap);
        var rows = matrix.RowIndices;
        var values = rows is null ? matrix.Values : rows.SelectMany(r => matrix.Values.AsSpan(r * d, d).ToArray()).ToArray();
        var labels = rows is null ? matrix.Labels : rows.Select(r => matrix.Labels[r]).ToArray();
        start ??= BaseModel(d, [NoisyCounts(labels, rowWeights, noiseMultiplier, cap, gaussian)], names);
        var cuts = NoisyCuts([(values, rowWeights)], d, noiseMultiplier, cap, options.MaxBins, gaussian);
        double sd = noiseMultiplier * HistogramPrivacy.Sensitivity(options.FeaturesOfTree(d), cap);
        var noisy = UnderNoise(options, sd);
        var site = new HistogramBoostingSite(start, matrix, cuts, noisy, new HistogramNoise(cap, sd, gaussian));
        return new FederatedHistogramBooster(start, [site], cuts, noisy).AddTrees(options.NumberOfTrees);
    }
}
