using System.Numerics.Tensors;
using ClinicalFed.Privacy.SecureAggregation;
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
        _data = GradientTreeBooster.BinnedData.Build(matrix.Values, matrix.Columns, rowIds, TreeBoostingOptions.MaxBinsLimit, options.NumberOfThreads, cuts);
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
        double weight = 0;
        foreach (var w in _w) weight += w;
        ValueBound = Math.Max(weight, n);
    }

    /// <summary>A bound on every number the site sends (its total example weight or its row count, the larger): sums of
    /// g = w·(p − y), of h ≤ w/4, and row counts never exceed it. With secure aggregation the coordinator sets the ring's
    /// scale from the sites' bounds.</summary>
    public double ValueBound { get; }

    /// <summary>Whether the site masks what it sends (<see cref="MaskWith"/>).</summary>
    public bool Masked => _masker is not null;

    private ExchangeMasker? _masker;

    /// <summary>Secure aggregation: from now on the site sends every histogram masked in Z/2^64 with pairwise masks that
    /// cancel only in the sum over all sites, so the coordinator learns the federation's histograms and no site's.</summary>
    public void MaskWith(ExchangeMasker masker) => _masker = masker ?? throw new ArgumentNullException(nameof(masker));

    internal ulong[] Mask(ReadOnlySpan<double> values, int exchange, double scale) =>
        (_masker ?? throw new InvalidOperationException("the site does not mask")).Mask(values, exchange, scale, ValueBound);

    /// <summary>Training rows of the site.</summary>
    public int Rows => _y.Length;

    /// <summary>Trees of the ensemble the site's margins stand at.</summary>
    public int Trees { get; private set; }

    /// <summary>Slots of a histogram (features × bins, missing bins included); a histogram holds 3 numbers per slot.</summary>
    public int HistogramSlots => _data.Layout.TotalSlots;

    /// <summary>The cuts the site bins its rows at (the federation's).</summary>
    internal IReadOnlyList<float[]> Cuts => _data.Layout.Cuts;

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
/// moving a row. The price is traffic: one histogram per site per split. When the sites mask their histograms
/// (<see cref="HistogramBoostingSite.MaskWith"/>), the coordinator adds ring vectors and reads only the sum.
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
        _layout = new GradientTreeBooster.BinLayout(cuts, TreeBoostingOptions.MaxBinsLimit);
        for (int i = 0; i < sites.Count; i++)
        {
            if (sites[i].Trees != start.Trees.Count) throw new ArgumentException($"site {i} stands at {sites[i].Trees} trees, the start ensemble has {start.Trees.Count}");
            var siteCuts = sites[i].Cuts;
            int differs = Enumerable.Range(0, Math.Max(siteCuts.Count, cuts.Length))
                .FirstOrDefault(f => f >= siteCuts.Count || f >= cuts.Length || !siteCuts[f].AsSpan().SequenceEqual(cuts[f]), -1);
            if (differs >= 0) throw new ArgumentException($"site {i} bins with other cuts (feature {differs} differs from the federation's)");
        }
        if (sites.Any(s => s.Masked) && !sites.All(s => s.Masked))
            throw new ArgumentException($"sites {string.Join(", ", sites.Select((s, i) => (s, i)).Where(x => !x.s.Masked).Select(x => x.i))} do not mask: secure aggregation needs every site");
        _sites = sites;
        _options = options;
        _bytes = new long[sites.Count];
        Secure = sites[0].Masked;
        _scale = Secure ? RingEncoding.WideScale(sites.Sum(s => s.ValueBound)) : 0;
        Model = start;
    }

    private readonly double _scale;

    /// <summary>Whether the sites' histograms reach the coordinator masked (secure aggregation): it then adds ring
    /// vectors and decodes only their sum, exact to within (sites / 2) / scale (about 1e-13 for a million rows).</summary>
    public bool Secure { get; }

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

    /// <summary>The federation's histograms: every site's, added in site order (or, masked, in the ring).</summary>
    private sealed class Sum(FederatedHistogramBooster owner, GradientTreeBooster.IHistogramSource[] sources) : GradientTreeBooster.IHistogramSource
    {
        private double[] _one = [];
        private double[] _sum = [];
        private ulong[] _ring = [];

        public (double G, double H, double C) Root(double[] histogram) => Exchange(histogram, (site, h) => site.Root(h), root: true);

        public void Split(int leaf, int newLeaf, GradientTreeBooster.Split split, bool buildLeft, double[] histogram) =>
            Exchange(histogram, (site, h) => { site.Split(leaf, newLeaf, split, buildLeft, h); return default; }, root: false);

        /// <summary>One exchange: every site's histogram (and, for the root, its three sums after it), summed.</summary>
        private (double G, double H, double C) Exchange(double[] histogram, Func<GradientTreeBooster.IHistogramSource, double[], (double, double, double)> ask, bool root)
        {
            int slots = histogram.Length, length = slots + (root ? 3 : 0);
            if (_one.Length != slots + 3) { _one = new double[slots + 3]; _sum = new double[slots + 3]; _ring = owner.Secure ? new ulong[slots + 3] : []; }
            var sum = _sum.AsSpan(0, length);
            sum.Clear();
            var ring = owner.Secure ? _ring.AsSpan(0, length) : default;
            ring.Clear();
            int exchange = checked((int)owner.Histograms);
            for (int i = 0; i < sources.Length; i++)
            {
                Array.Clear(_one);
                var (g, h, c) = ask(sources[i], _one);
                if (root) { _one[slots] = g; _one[slots + 1] = h; _one[slots + 2] = c; }
                var vector = _one.AsSpan(0, length);
                if (owner.Secure) TensorPrimitives.Add(ring, owner._sites[i].Mask(vector, exchange, owner._scale), ring);
                else TensorPrimitives.Add(sum, vector, sum);
                owner._bytes[i] += 8L * length;
            }
            if (owner.Secure) RingEncoding.DecodeWide(ring, owner._scale, sum);
            sum[..slots].CopyTo(histogram);
            owner.Histograms++;
            return root ? (sum[slots], sum[slots + 1], sum[slots + 2]) : default;
        }
    }
}
