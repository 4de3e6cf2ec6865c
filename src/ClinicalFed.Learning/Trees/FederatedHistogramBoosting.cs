using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Trees;

/// <summary>
/// One site of histogram-based federated boosting (horizontal federated XGBoost, as NVIDIA FLARE's histogram mode):
/// the site keeps its rows, their bins at the federation's cuts and their current margins, and answers the
/// coordinator with gradient histograms only: per bin the sums of g, h and the row count, never a row.
/// </summary>
/// <remarks>
/// Made with the federation's cuts (<see cref="HistogramBinning.MergeCuts"/> over every site's sketches) and the
/// ensemble the federation starts from. <paramref name="options"/> supplies what is the site's own business: the
/// row-subsample rate and seed, and threads for histograms.
/// </remarks>
public sealed class HistogramBoostingSite
{
    private readonly GradientTreeBooster.BinnedData _data;
    private readonly GradientTreeBooster.LocalRows _rows;
    private readonly TreeBoostingOptions _options;
    private readonly double[] _y, _w, _margin, _g, _h;

    public HistogramBoostingSite(TreeEnsembleModel start, FeatureMatrix matrix, float[][] cuts, TreeBoostingOptions options)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(cuts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (matrix.Columns != start.FeatureCount) throw new ArgumentException($"data has {matrix.Columns} columns, the model reads {start.FeatureCount}");
        var rowIds = matrix.RowIndices ?? Enumerable.Range(0, matrix.Labels.Length).ToArray();
        _data = GradientTreeBooster.BinnedData.Build(matrix.Values, matrix.Columns, rowIds, 255, options.NumberOfThreads, cuts);
        _rows = new GradientTreeBooster.LocalRows(_data, options.NumberOfThreads);
        _options = options;
        int n = rowIds.Length;
        _y = new double[n]; _w = new double[n]; _margin = new double[n]; _g = new double[n]; _h = new double[n];
        for (int j = 0; j < n; j++)
        {
            int r = rowIds[j];
            _y[j] = matrix.Labels[r] > 0.5f ? 1 : 0;
            _w[j] = matrix.Weights?[r] ?? 1.0;
            if (!(_w[j] >= 0) || !double.IsFinite(_w[j])) throw new ArgumentException($"row {r}: weight {_w[j]} must be finite and >= 0");
        }
        GradientTreeBooster.Parallelize(n, options.NumberOfThreads, (lo, hi) =>
        {
            for (int j = lo; j < hi; j++) _margin[j] = start.Score(matrix.Values.AsSpan(rowIds[j] * matrix.Columns, matrix.Columns));
        });
        Trees = start.Trees.Count;
    }

    /// <summary>Training rows of the site.</summary>
    public int Rows => _y.Length;

    /// <summary>Trees of the ensemble the site's margins stand at.</summary>
    public int Trees { get; private set; }

    /// <summary>Slots of a histogram (features × bins, missing bins included); a histogram holds 3 numbers per slot.</summary>
    public int HistogramSlots => _data.Layout.TotalSlots;

    internal GradientTreeBooster.IHistogramSource BeginTree()
    {
        GradientTreeBooster.Gradients(_margin, _y, _w, _g, _h);
        _rows.Reset(_g, _h, GradientTreeBooster.SampleRows(Rows, _options, Trees));
        return _rows;
    }

    internal void EndTree(DecisionTree tree, int[] binThreshold)
    {
        GradientTreeBooster.AddLeafValues(_data, tree, binThreshold, _margin, _options.NumberOfThreads);
        Trees++;
    }
}

/// <summary>
/// The coordinator of histogram-based federated boosting. For every node it splits, it asks each site for one
/// gradient histogram (the root's, then the smaller child's), adds them up, and chooses the split on the sum exactly as
/// <see cref="GradientTreeBooster"/> does on one site's rows (the larger child's histogram is the parent's minus the
/// smaller one). Leaf values come from the summed g and h. With the same cuts, the trees are those of boosting the
/// pooled rows, up to the order of floating-point additions: the federation gets the centralized model without
/// moving a row. The price is traffic: one histogram per site per split.
/// </summary>
public sealed class FederatedHistogramBooster
{
    private readonly IReadOnlyList<HistogramBoostingSite> _sites;
    private readonly GradientTreeBooster.BinLayout _layout;
    private readonly TreeBoostingOptions _options;
    private readonly long[] _bytes;

    /// <param name="start">The ensemble every site was made with.</param>
    /// <param name="sites">The sites, in the order their histograms are added.</param>
    /// <param name="cuts">The federation's cuts, as given to every site.</param>
    /// <param name="options">Tree shape and leaf values: leaves, depth, learning rate, L2, minimum child sizes, split gain.</param>
    public FederatedHistogramBooster(TreeEnsembleModel start, IReadOnlyList<HistogramBoostingSite> sites, float[][] cuts, TreeBoostingOptions options)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(sites);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (sites.Count == 0) throw new ArgumentException("no sites");
        _layout = new GradientTreeBooster.BinLayout(cuts, 255);
        for (int i = 0; i < sites.Count; i++)
        {
            if (sites[i].Trees != start.Trees.Count) throw new ArgumentException($"site {i} stands at {sites[i].Trees} trees, the start ensemble has {start.Trees.Count}");
            if (sites[i].HistogramSlots != _layout.TotalSlots) throw new ArgumentException($"site {i} bins with other cuts ({sites[i].HistogramSlots} slots, expected {_layout.TotalSlots})");
        }
        _sites = sites;
        _options = options;
        _bytes = new long[sites.Count];
        Model = start;
    }

    /// <summary>The ensemble grown so far.</summary>
    public TreeEnsembleModel Model { get; private set; }

    /// <summary>Bytes each site has sent: 8 per number (float64 sums of g and h, and row counts), 3 numbers per slot per
    /// histogram, plus the three root sums per tree.</summary>
    public IReadOnlyList<long> BytesPerSite => _bytes;

    /// <summary>Histogram exchanges so far (each site sent one histogram in each).</summary>
    public long Histograms { get; private set; }

    /// <summary>Grows <paramref name="count"/> more trees.</summary>
    public TreeEnsembleModel AddTrees(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var grower = new GradientTreeBooster.TreeGrower(_layout, _options);
        var trees = new List<DecisionTree>(count);
        for (int t = 0; t < count; t++)
        {
            var source = new Sum(this, _sites.Select(s => s.BeginTree()).ToArray());
            var (tree, binThreshold) = grower.Grow(source);
            foreach (var site in _sites) site.EndTree(tree, binThreshold);
            trees.Add(tree);
        }
        Model = Model.Append(trees);
        return Model;
    }

    /// <summary>The federation's histograms: every site's, added in site order.</summary>
    private sealed class Sum(FederatedHistogramBooster owner, GradientTreeBooster.IHistogramSource[] sites) : GradientTreeBooster.IHistogramSource
    {
        private double[] _one = [];

        public (double G, double H, double C) Root(double[] histogram)
        {
            double G = 0, H = 0, C = 0;
            Each(histogram, (site, h) =>
            {
                var (g, hh, c) = site.Root(h);
                G += g; H += hh; C += c;
            }, extraNumbers: 3);
            return (G, H, C);
        }

        public void Split(int leaf, int newLeaf, GradientTreeBooster.Split split, bool buildLeft, double[] histogram) =>
            Each(histogram, (site, h) => site.Split(leaf, newLeaf, split, buildLeft, h), extraNumbers: 0);

        private void Each(double[] histogram, Action<GradientTreeBooster.IHistogramSource, double[]> ask, int extraNumbers)
        {
            if (_one.Length != histogram.Length) _one = new double[histogram.Length];
            for (int i = 0; i < sites.Length; i++)
            {
                Array.Clear(_one);
                ask(sites[i], _one);
                System.Numerics.Tensors.TensorPrimitives.Add(histogram, _one, histogram);
                owner._bytes[i] += 8L * (histogram.Length + extraNumbers);
            }
            owner.Histograms++;
        }
    }
}
