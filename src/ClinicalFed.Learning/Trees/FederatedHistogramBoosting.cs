using System.Numerics.Tensors;
using ClinicalFed.Privacy;
using ClinicalFed.Privacy.SecureAggregation;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Trees;

/// <summary>
/// Differential privacy of one site's histograms (<see cref="HistogramPrivacy"/>): every row of a patient weighs
/// min(1, <paramref name="PatientWeightCap"/> / the patient's rows), the count slots carry those weights, and before a
/// histogram leaves the site every part of every slot gets Gaussian noise of <paramref name="StandardDeviation"/> times
/// the part's bound, drawn from <paramref name="Gaussian"/> (a cryptographic generator).
/// </summary>
public sealed record HistogramNoise(double PatientWeightCap, double StandardDeviation, SecureGaussian Gaussian);

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

    /// <param name="privacy">Differential privacy of what the site sends (null: none). Needs the matrix's patients
    /// (<see cref="FeatureMatrix.GroupIds"/>) and no row weights of its own.</param>
    public HistogramBoostingSite(TreeEnsembleModel start, FeatureMatrix matrix, float[][] cuts, TreeBoostingOptions options, HistogramNoise? privacy = null)
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
        double[]? patientWeights = null;
        if (privacy is not null)
        {
            if (matrix.GroupIds is null) throw new ArgumentException("differential privacy needs the rows' patients (FeatureMatrix.GroupIds)");
            if (matrix.Weights is not null) throw new ArgumentException("differential privacy sets the row weights itself (one patient's rows weigh at most the cap); the matrix must not bring its own");
            if (!(privacy.StandardDeviation >= 0) || !double.IsFinite(privacy.StandardDeviation)) throw new ArgumentException($"noise standard deviation {privacy.StandardDeviation} must be finite and >= 0");
            if (options.RowSubsample < 1) throw new ArgumentException("differential privacy here takes every row in every tree (row subsampling is not accounted)");
            patientWeights = PrivateTreeBoosting.RowWeights(matrix, privacy.PatientWeightCap);
            Patients = rowIds.Select(r => matrix.GroupIds[r]).Distinct().Count();
        }
        _privacy = privacy;
        for (int j = 0; j < n; j++)
        {
            int r = rowIds[j];
            _y[j] = matrix.Labels[r] > 0.5f ? 1 : 0;
            _w[j] = patientWeights?[j] ?? matrix.Weights?[r] ?? 1.0;
            if (!(_w[j] >= 0) || !double.IsFinite(_w[j])) throw new ArgumentException($"row {r}: weight {_w[j]} must be finite and >= 0");
        }
        GradientTreeBooster.Parallelize(n, options.NumberOfThreads, (lo, hi) =>
        {
            for (int j = lo; j < hi; j++) _margin[j] = start.Score(matrix.Values.AsSpan(rowIds[j] * matrix.Columns, matrix.Columns));
        });
        Trees = start.Trees.Count;
        double weight = 0;
        foreach (var w in _w) weight += w;
        // With noise, a sum can exceed the rows by the noise: 40 standard deviations never happen.
        ValueBound = Math.Max(weight, n) + 40 * (privacy?.StandardDeviation ?? 0);
    }

    private readonly HistogramNoise? _privacy;

    /// <summary>The largest weight of one of the site's rows (1 unless the matrix brings weights), which the site
    /// declares with its row count: the coordinator checks its histograms against both.</summary>
    public double MaxRowWeight => _w.Length == 0 ? 0 : _w.Max();

    /// <summary>Simulation of a malicious or broken site: applied to everything the site sends, after it is made
    /// (null: an honest site).</summary>
    public Action<Span<double>>? Tamper { get; set; }

    /// <summary>Whether the site adds differential-privacy noise to what it sends.</summary>
    public bool Private => _privacy is not null;

    /// <summary>Patients among the training rows (with differential privacy; 0 without).</summary>
    public int Patients { get; }

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

    internal GradientTreeBooster.LocalRows BeginTree(int[]? features)
    {
        GradientTreeBooster.Gradients(_margin, _y, _w, _g, _h);
        _rows.Reset(_g, _h, GradientTreeBooster.SampleRows(Rows, _options, Trees), _privacy is null ? null : _w, features);
        return _rows;
    }

    /// <summary>What leaves the site of one exchange: the tree's features' slots (g, h, count triples) and, when sent,
    /// the node's three sums, packed in <paramref name="vector"/>; the site adds its noise to every number when private.</summary>
    internal void Release(Span<double> vector)
    {
        if (_privacy is { } p) HistogramPrivacy.AddNoise(vector, p.StandardDeviation, p.Gaussian);
        Tamper?.Invoke(vector);
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
/// (<see cref="HistogramBoostingSite.MaskWith"/>), the coordinator adds ring vectors and reads only the sum. When they
/// are private (<see cref="HistogramNoise"/>), every site sends each node's sums beside its histogram, noisy like it,
/// and the grower takes a child's sums from them rather than from a cumulative sum over noisy bins. With
/// <see cref="TreeBoostingOptions.FeaturesPerTree"/>, only the tree's features are asked for (and counted in the bytes).
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
        if (sites.Any(s => s.Private) && !sites.All(s => s.Private))
            throw new ArgumentException($"sites {string.Join(", ", sites.Select((s, i) => (s, i)).Where(x => !x.s.Private).Select(x => x.i))} add no noise: differential privacy needs every site");
        if (sites.Any(s => s.Masked) && !sites.All(s => s.Masked))
            throw new ArgumentException($"sites {string.Join(", ", sites.Select((s, i) => (s, i)).Where(x => !x.s.Masked).Select(x => x.i))} do not mask: secure aggregation needs every site");
        _sites = sites;
        _active = Enumerable.Range(0, sites.Count).ToList();
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

    /// <summary>Bytes each site has sent: 8 per number (float64 sums of g and h, and row counts); per exchange 3 numbers
    /// per slot of the tree's features, plus the node's three sums for the root (for every node when private).</summary>
    public IReadOnlyList<long> BytesPerSite => _bytes;

    /// <summary>Histogram exchanges so far (each site sent one histogram in each).</summary>
    public long Histograms { get; private set; }

    private readonly List<int> _active;
    private readonly List<(int Tree, int Site, string Reason)> _rejected = [];

    /// <summary>Sites still taking part (indices into the sites given).</summary>
    public IReadOnlyList<int> ActiveSites => _active;

    /// <summary>Sites the coordinator excluded, with the tree (0-based, in the whole ensemble) during which one of
    /// their histograms failed the checks of <see cref="HistogramChecks"/>, and why.</summary>
    public IReadOnlyList<(int Tree, int Site, string Reason)> Rejected => _rejected;

    /// <summary>Whether the coordinator checks every site's histogram before adding it: when it can read them (neither
    /// masked nor noisy).</summary>
    public bool Validates => !Secure && !_sites[0].Private;

    /// <summary>Grows <paramref name="count"/> more trees.</summary>
    public TreeEnsembleModel AddTrees(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var grower = new GradientTreeBooster.TreeGrower(_layout, _options);
        var trees = new List<DecisionTree>(count);
        for (int t = 0; t < count; t++)
        {
            var features = GradientTreeBooster.TreeFeatures(_options, _layout.Features, Model.Trees.Count + trees.Count);
            while (true)
            {
                int[] active = [.. _active];
                var source = new Sum(this, active.Select(i => _sites[i].BeginTree(features)).ToArray(), features, active);
                DecisionTree tree;
                int[] binThreshold;
                try
                {
                    (tree, binThreshold) = grower.Grow(source, features);
                }
                catch (RejectedHistogramException e)
                {
                    // The site is out from here on; the tree starts again without it (no site has applied it yet).
                    _rejected.Add((Model.Trees.Count + trees.Count, e.Site, e.Reason));
                    _active.Remove(e.Site);
                    if (_active.Count == 0) throw new AllSitesRejectedException($"every site was rejected (the last: site {e.Site}, {e.Reason})");
                    continue;
                }
                foreach (int i in active) _sites[i].EndTree(tree, binThreshold);
                trees.Add(tree);
                break;
            }
        }
        Model = Model.Append(trees);
        return Model;
    }

    /// <summary>Thrown by <see cref="AddTrees"/> when the checks have left no site to grow trees with.</summary>
    public sealed class AllSitesRejectedException(string message) : InvalidOperationException(message);

    private sealed class RejectedHistogramException(int site, string reason) : Exception(reason)
    {
        public int Site { get; } = site;
        public string Reason { get; } = reason;
    }

    /// <summary>
    /// The federation's histograms for one tree: every site's, added in site order (or, masked, in the ring). What a
    /// site sends is packed: the slots of the tree's features only, then, for the root (or every node when the sites
    /// are private), the node's three sums. The sum is unpacked into the grower's full-layout histogram.
    /// </summary>
    private sealed class Sum : GradientTreeBooster.IHistogramSource
    {
        private readonly FederatedHistogramBooster _owner;
        private readonly GradientTreeBooster.LocalRows[] _sources;
        private readonly int[] _active;
        private readonly int[] _features;
        private readonly int[] _slotsPerFeature;
        private readonly (int Offset, int Length)[] _segments;
        private readonly int _packed;
        // Private sites send every node's sums beside its histogram (the root's are always sent).
        private readonly bool _totals;
        private readonly double[] _full, _vector, _sum;
        private readonly ulong[] _ring;

        public Sum(FederatedHistogramBooster owner, GradientTreeBooster.LocalRows[] sources, int[]? features, int[] active)
        {
            var layout = owner._layout;
            _owner = owner;
            _sources = sources;
            _active = active;
            _features = features ?? Enumerable.Range(0, layout.Features).ToArray();
            _slotsPerFeature = _features.Select(f => layout.Cuts[f].Length + 2).ToArray();
            _segments = _features.Select((f, n) => (layout.Offset[f] * 3, _slotsPerFeature[n] * 3)).ToArray();
            _packed = _segments.Sum(x => x.Length);
            _totals = owner._sites[0].Private;
            _full = new double[layout.TotalSlots * 3];
            _vector = new double[_packed + 3];
            _sum = new double[_packed + 3];
            _ring = owner.Secure ? new ulong[_packed + 3] : [];
        }

        public (double G, double H, double C) Root(double[] histogram) => Exchange(histogram, (site, h) => site.Root(h), withSums: true);

        public (double G, double H, double C)? Split(int leaf, int newLeaf, GradientTreeBooster.Split split, bool buildLeft, double[] histogram)
        {
            var sums = Exchange(histogram, (site, h) =>
            {
                site.Split(leaf, newLeaf, split, buildLeft, h);
                return _totals ? site.Totals(buildLeft ? leaf : newLeaf) : default;
            }, withSums: _totals);
            return _totals ? sums : null;
        }

        /// <summary>One exchange: every site's packed histogram (and sums), checked when readable, summed, unpacked.</summary>
        private (double G, double H, double C) Exchange(double[] histogram, Func<GradientTreeBooster.LocalRows, double[], (double, double, double)> ask, bool withSums)
        {
            var owner = _owner;
            int length = _packed + (withSums ? 3 : 0);
            var sum = _sum.AsSpan(0, length);
            sum.Clear();
            var ring = owner.Secure ? _ring.AsSpan(0, length) : default;
            ring.Clear();
            int exchange = checked((int)owner.Histograms);
            for (int k = 0; k < _sources.Length; k++)
            {
                int i = _active[k];
                var site = owner._sites[i];
                // The site's rows fill the tree's features' slots of a full-layout histogram; it sends them packed.
                foreach (var (offset, len) in _segments) _full.AsSpan(offset, len).Clear();
                var (g, h, c) = ask(_sources[k], _full);
                var vector = _vector.AsSpan(0, length);
                int at = 0;
                foreach (var (offset, len) in _segments) { _full.AsSpan(offset, len).CopyTo(vector[at..]); at += len; }
                if (withSums) (vector[at], vector[at + 1], vector[at + 2]) = (g, h, c);
                site.Release(vector);
                owner._bytes[i] += 8L * length;
                if (owner.Validates && HistogramChecks.Problem(vector, _features, _slotsPerFeature, withSums, site.MaxRowWeight, site.Rows) is { } problem)
                    throw new RejectedHistogramException(i, problem);
                if (owner.Secure) TensorPrimitives.Add(ring, site.Mask(vector, exchange, owner._scale), ring);
                else TensorPrimitives.Add(sum, vector, sum);
            }
            if (owner.Secure) RingEncoding.DecodeWide(ring, owner._scale, sum);
            int from = 0;
            foreach (var (offset, len) in _segments) { sum.Slice(from, len).CopyTo(histogram.AsSpan(offset, len)); from += len; }
            owner.Histograms++;
            return withSums ? (sum[_packed], sum[_packed + 1], sum[_packed + 2]) : default;
        }
    }
}

/// <summary>
/// What a coordinator that can read a site's histogram checks before adding it: every number finite; per bin a row
/// count that is a whole number ≥ 0, a hessian sum in [0, count · w/4] and a gradient sum within ±count · w (g = w·(p − y)
/// and h = w·p(1 − p) for row weights ≤ w, the largest the site declared); every feature of the tree covering the
/// same rows (equal counts, and equal sums of g and h up to rounding); the node's own sums, when sent, equal to those;
/// and no more rows than the site declared. A broken or malicious site fails them by sending noise, inconsistent or
/// inflated histograms; a site that trains honestly on wrong labels passes them.
/// </summary>
internal static class HistogramChecks
{
    /// <param name="vector">What the site sent: the slots of <paramref name="features"/> in order
    /// (<paramref name="slotsPerFeature"/> each), then the node's three sums when <paramref name="hasSums"/>.</param>
    public static string? Problem(ReadOnlySpan<double> vector, IReadOnlyList<int> features, IReadOnlyList<int> slotsPerFeature, bool hasSums, double maxWeight, int rows)
    {
        for (int i = 0; i < vector.Length; i++)
            if (!double.IsFinite(vector[i])) return $"number {i} of its histogram is {vector[i]}";
        double w = Math.Max(maxWeight, 0);
        (double G, double H, double C)? first = null;
        int firstFeature = -1;
        int offset = 0;
        for (int n = 0; n < features.Count; n++)
        {
            int f = features[n];
            var hs = vector.Slice(offset, slotsPerFeature[n] * 3);
            offset += hs.Length;
            double G = 0, H = 0, C = 0;
            for (int b = 0; b < hs.Length; b += 3)
            {
                double g = hs[b], h = hs[b + 1], c = hs[b + 2];
                if (c < 0 || Math.Abs(c - Math.Round(c)) > 1e-6) return $"feature {f}, bin {b / 3}: row count {c} is not a whole number >= 0";
                double slack = 1e-9 * (1 + c * w);
                if (h < -slack || h > c * w / 4 + slack) return $"feature {f}, bin {b / 3}: hessian sum {h:G6} outside [0, {c * w / 4:G6}] for {c} rows";
                if (Math.Abs(g) > c * w + slack) return $"feature {f}, bin {b / 3}: gradient sum {g:G6} larger than {c} rows allow ({c * w:G6})";
                G += g; H += h; C += c;
            }
            if (first is not { } t) { first = (G, H, C); firstFeature = f; continue; }
            double tol = 1e-7 * (1 + t.C * w);
            if (Math.Abs(C - t.C) > 0.5 || Math.Abs(G - t.G) > tol || Math.Abs(H - t.H) > tol)
                return $"feature {f}'s histogram covers other rows than feature {firstFeature}'s (rows {C} vs {t.C}, gradient sums {G:G6} vs {t.G:G6})";
        }
        if (first is { } totals)
        {
            if (totals.C > rows + 0.5) return $"{totals.C} rows in one node, more than the {rows} it declared";
            if (hasSums)
            {
                int at = vector.Length - 3;
                double tol = 1e-7 * (1 + totals.C * w);
                if (Math.Abs(vector[at + 2] - totals.C) > 0.5 || Math.Abs(vector[at] - totals.G) > tol || Math.Abs(vector[at + 1] - totals.H) > tol)
                    return $"the node's sums ({vector[at]:G6}, {vector[at + 1]:G6}, {vector[at + 2]}) differ from its histogram's ({totals.G:G6}, {totals.H:G6}, {totals.C})";
            }
        }
        return null;
    }
}
