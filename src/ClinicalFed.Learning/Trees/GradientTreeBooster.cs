using ClinicalFed.Data;
using ClinicalFed.Trees;

namespace ClinicalFed.Learning.Trees;

/// <summary>Settings of <see cref="GradientTreeBooster"/>.</summary>
public sealed record TreeBoostingOptions
{
    /// <summary>Trees added per call (per site turn in cyclic boosting).</summary>
    public int NumberOfTrees { get; init; } = 20;
    /// <summary>Maximum leaves per tree (trees grow best-first, like LightGBM).</summary>
    public int NumberOfLeaves { get; init; } = 15;
    /// <summary>Maximum depth; 0 = limited by <see cref="NumberOfLeaves"/> only.</summary>
    public int MaxDepth { get; init; }
    public double LearningRate { get; init; } = 0.1;
    /// <summary>The most value bins a feature can have: a row's bin is a byte, and the missing bin is one more.</summary>
    public const int MaxBinsLimit = 255;

    /// <summary>Value bins per feature (2..255), taken at the site's own quantiles; missing values get a bin of their own.</summary>
    public int MaxBins { get; init; } = MaxBinsLimit;
    /// <summary>L2 penalty λ on leaf values: leaf = −G / (H + λ).</summary>
    public double L2Regularization { get; init; } = 1.0;
    public double MinChildHessian { get; init; } = 1e-3;
    public int MinExamplesPerLeaf { get; init; } = 20;
    public double MinSplitGain { get; init; }
    /// <summary>Features each tree may split on, drawn afresh for every tree with <see cref="Seed"/> (0 = all). The draw
    /// depends on the seed and the tree's number only, so every site of a federation draws the same features.</summary>
    public int FeaturesPerTree { get; init; }

    /// <summary>How many features one tree reads out of <paramref name="columns"/>: <see cref="FeaturesPerTree"/>, or
    /// all of them when it is 0 or not smaller.</summary>
    public int FeaturesOfTree(int columns) => FeaturesPerTree > 0 && FeaturesPerTree < columns ? FeaturesPerTree : columns;
    /// <summary>The largest |leaf value| before the learning rate (0 = no limit): −G / (H + λ) is clipped to it.</summary>
    public double MaxLeafOutput { get; init; }
    /// <summary>Fraction of rows each tree sees (1 = all); sampled with <see cref="Seed"/>.</summary>
    public double RowSubsample { get; init; } = 1.0;
    public int Seed { get; init; }
    /// <summary>Threads for histograms and scoring. The result does not depend on it: every sum is accumulated in the
    /// same order whatever the thread count.</summary>
    public int NumberOfThreads { get; init; } = 1;

    internal void Validate()
    {
        if (NumberOfTrees < 0) throw new ArgumentOutOfRangeException(nameof(NumberOfTrees));
        if (NumberOfLeaves < 2) throw new ArgumentOutOfRangeException(nameof(NumberOfLeaves));
        if (MaxDepth < 0) throw new ArgumentOutOfRangeException(nameof(MaxDepth));
        if (!(LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate));
        if (MaxBins is < 2 or > MaxBinsLimit) throw new ArgumentOutOfRangeException(nameof(MaxBins), $"2..{MaxBinsLimit}");
        if (!(L2Regularization >= 0)) throw new ArgumentOutOfRangeException(nameof(L2Regularization));
        if (!(MinChildHessian >= 0)) throw new ArgumentOutOfRangeException(nameof(MinChildHessian));
        if (MinExamplesPerLeaf < 1) throw new ArgumentOutOfRangeException(nameof(MinExamplesPerLeaf));
        if (!(MinSplitGain >= 0)) throw new ArgumentOutOfRangeException(nameof(MinSplitGain));
        if (!(RowSubsample > 0 && RowSubsample <= 1)) throw new ArgumentOutOfRangeException(nameof(RowSubsample));
        if (FeaturesPerTree < 0) throw new ArgumentOutOfRangeException(nameof(FeaturesPerTree));
        if (!(MaxLeafOutput >= 0) || !double.IsFinite(MaxLeafOutput)) throw new ArgumentOutOfRangeException(nameof(MaxLeafOutput));
        if (NumberOfThreads < 1) throw new ArgumentOutOfRangeException(nameof(NumberOfThreads));
    }
}

/// <summary>
/// Second-order (Newton) gradient boosting of binary log-loss with histogram splits, in C#. It continues any
/// <see cref="TreeEnsembleModel"/>: the current ensemble's raw scores on the site's rows are the initial margins, and
/// each new tree is fitted to the gradients g = p − y and hessians h = p(1 − p) at those margins. ML.NET 5.0.1 offers
/// no way to do this (FastTree has no warm start and no public initial scores; LightGBM's <c>init_score</c> is not
/// reachable through ML.NET), which is why cyclic federated boosting and local personalization use this booster.
/// </summary>
/// <remarks>
/// Splits: per feature up to <see cref="TreeBoostingOptions.MaxBins"/> quantile bins of the site's own non-missing
/// values with thresholds at midpoints between observed values; each candidate is tried with missing values going
/// left and right (and "missing vs. present" alone), gain = G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ). Trees grow
/// best-first up to the leaf limit; the larger child's histogram is the parent's minus the smaller child's. A split
/// "bin ≤ b" is stored as "x ≤ threshold_b", which decides every value exactly as the bins did, so the returned
/// model's <see cref="TreeEnsembleModel.Score"/> reproduces the training margins bit for bit. Feature values must be
/// finite or NaN.
/// </remarks>
public static class GradientTreeBooster
{
    /// <summary>A fresh model: starts from the log-odds of the table's prevalence.</summary>
    public static TreeEnsembleModel Train(FeatureTable table, TreeBoostingOptions options, float[]? weights = null)
    {
        double pos = 0, total = 0;
        for (int i = 0; i < table.Rows; i++) { double w = weights?[i] ?? 1; total += w; if (table.Labels[i] > 0.5f) pos += w; }
        var start = TreeEnsembleModel.Constant(table.Columns, TreeEnsembleModel.LogOdds(pos, total), table.Header.Columns.ToArray());
        return Boost(start, table, options, weights);
    }

    /// <summary>Adds <see cref="TreeBoostingOptions.NumberOfTrees"/> trees to <paramref name="start"/>, fitted on
    /// the table's rows with <paramref name="start"/>'s scores as initial margins.</summary>
    public static TreeEnsembleModel Boost(TreeEnsembleModel start, FeatureTable table, TreeBoostingOptions options, float[]? weights = null)
    {
        if (start.FeatureNames is not null)
        {
            var names = table.Header.Columns;
            for (int i = 0; i < Math.Min(names.Count, start.FeatureCount); i++)
                if (!string.Equals(names[i], start.FeatureNames[i], StringComparison.Ordinal))
                    throw new ArgumentException($"the table's column {i} is '{names[i]}' but the model's feature {i} is '{start.FeatureNames[i]}'");
        }
        return Boost(start, table.Values, table.Labels, table.Columns, options, weights);
    }

    /// <summary>As <see cref="Boost(TreeEnsembleModel, FeatureTable, TreeBoostingOptions, float[])"/>, on the rows
    /// (and example weights) of a <see cref="FeatureMatrix"/>.</summary>
    public static TreeEnsembleModel Boost(TreeEnsembleModel start, FeatureMatrix matrix, TreeBoostingOptions options)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        return Boost(start, matrix.Values, matrix.Labels, matrix.Columns, options, matrix.Weights, matrix.RowIndices);
    }

    /// <inheritdoc cref="Boost(TreeEnsembleModel, FeatureTable, TreeBoostingOptions, float[])"/>
    public static TreeEnsembleModel Boost(TreeEnsembleModel start, float[] values, float[] labels, int columns, TreeBoostingOptions options,
        float[]? weights = null, int[]? rows = null)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (columns != start.FeatureCount) throw new ArgumentException($"data has {columns} columns, the model reads {start.FeatureCount}");
        if (values.Length != labels.Length * columns) throw new ArgumentException("values must hold labels.Length rows of `columns` values");
        if (weights is not null && weights.Length != labels.Length) throw new ArgumentException("one weight per row");
        var rowIds = rows ?? Enumerable.Range(0, labels.Length).ToArray();
        if (rowIds.Length == 0) throw new ArgumentException("no training rows");
        if (options.NumberOfTrees == 0) return start;

        var data = BinnedData.Build(values, columns, rowIds, options.MaxBins, options.NumberOfThreads);
        int n = rowIds.Length;
        var y = new double[n];
        var w = new double[n];
        for (int j = 0; j < n; j++)
        {
            int r = rowIds[j];
            y[j] = labels[r] > 0.5f ? 1 : 0;
            w[j] = weights?[r] ?? 1.0;
            if (!(w[j] >= 0) || !double.IsFinite(w[j])) throw new ArgumentException($"row {r}: weight {w[j]} must be finite and >= 0");
        }
        var margin = new double[n];
        Parallelize(n, options.NumberOfThreads, (lo, hi) =>
        {
            for (int j = lo; j < hi; j++) margin[j] = start.Score(values.AsSpan(rowIds[j] * columns, columns));
        });

        var grower = new TreeGrower(data.Layout, options);
        var rowsOfTree = new LocalRows(data, options.NumberOfThreads);
        var g = new double[n];
        var h = new double[n];
        var trees = new List<DecisionTree>(options.NumberOfTrees);
        for (int t = 0; t < options.NumberOfTrees; t++)
        {
            Gradients(margin, y, w, g, h);
            var features = TreeFeatures(options, columns, start.Trees.Count + t);
            rowsOfTree.Reset(g, h, SampleRows(n, options, start.Trees.Count + t), features: features);
            var (tree, binThreshold) = grower.Grow(rowsOfTree, features);
            trees.Add(tree);
            AddLeafValues(data, tree, binThreshold, margin, options.NumberOfThreads);
        }
        return start.Append(trees);
    }

    /// <summary>Log-loss gradients g = w·(p − y) and hessians h = w·p(1 − p) at the margins.</summary>
    internal static void Gradients(double[] margin, double[] y, double[] w, double[] g, double[] h)
    {
        for (int j = 0; j < margin.Length; j++)
        {
            double p = TreeEnsembleModel.Sigmoid(margin[j]);
            g[j] = w[j] * (p - y[j]);
            h[j] = w[j] * Math.Max(p * (1 - p), 1e-16);
        }
    }

    /// <summary>Adds a new tree's leaf values to the margins, routing every row by its bins.</summary>
    internal static void AddLeafValues(BinnedData data, DecisionTree tree, int[] binThreshold, double[] margin, int threads) =>
        Parallelize(margin.Length, threads, (lo, hi) =>
        {
            for (int j = lo; j < hi; j++) margin[j] += tree.LeafValue[data.GetLeaf(tree, binThreshold, j)];
        });

    internal static int[] SampleRows(int n, TreeBoostingOptions options, int treeIndex)
    {
        if (options.RowSubsample >= 1) return Enumerable.Range(0, n).ToArray();
        var rng = new Random(MixSeed(options.Seed, treeIndex, 0x5EED));
        var list = new List<int>((int)(n * options.RowSubsample) + 16);
        for (int j = 0; j < n; j++) if (rng.NextDouble() < options.RowSubsample) list.Add(j);
        if (list.Count == 0) list.Add(rng.Next(n));
        return list.ToArray();
    }

    /// <summary>The features tree number <paramref name="treeIndex"/> may split on, ascending (null = all): a draw of
    /// <see cref="TreeBoostingOptions.FeaturesPerTree"/> of them without replacement, from the seed and the tree's number.</summary>
    internal static int[]? TreeFeatures(TreeBoostingOptions options, int features, int treeIndex)
    {
        int k = options.FeaturesOfTree(features);
        if (k == features) return null;
        var rng = new Random(MixSeed(options.Seed, treeIndex, 0xFEA7));
        var all = Enumerable.Range(0, features).ToArray();
        for (int i = 0; i < k; i++)
        {
            int j = i + rng.Next(features - i);
            (all[i], all[j]) = (all[j], all[i]);
        }
        var chosen = all[..k];
        Array.Sort(chosen);
        return chosen;
    }

    /// <summary>Deterministic seed mixing (unlike <see cref="HashCode"/>, which is randomized per process).</summary>
    internal static int MixSeed(int a, int b, int c)
    {
        ulong x = (uint)a * 0x9E3779B97F4A7C15UL ^ (uint)b * 0xC2B2AE3D27D4EB4FUL ^ (uint)c * 0x165667B19E3779F9UL;
        x ^= x >> 33; x *= 0xFF51AFD7ED558CCDUL; x ^= x >> 33; x *= 0xC4CEB9FE1A85EC53UL; x ^= x >> 33;
        return (int)(x & 0x7FFFFFFF);
    }

    internal static void Parallelize(int count, int threads, Action<int, int> body)
    {
        if (threads <= 1 || count < 4096) { body(0, count); return; }
        int chunk = (count + threads - 1) / threads;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, c => body(c * chunk, Math.Min(count, (c + 1) * chunk)));
    }

    /// <summary>Histogram bins per feature: the cuts, and each feature's slots in a histogram (value bins, then the
    /// missing bin). Shared by every site of a histogram federation.</summary>
    internal sealed class BinLayout
    {
        /// <summary>Per feature: ascending thresholds; value bin b holds cuts[b-1] &lt; x ≤ cuts[b]. Bin cuts.Length holds
        /// x &gt; the last cut, bin cuts.Length + 1 is missing.</summary>
        public float[][] Cuts { get; }
        /// <summary>Per feature: first histogram slot; the feature has cuts.Length + 2 slots.</summary>
        public int[] Offset { get; }
        public int TotalSlots { get; }
        public int Features => Cuts.Length;

        public BinLayout(float[][] cuts, int maxBins)
        {
            Offset = new int[cuts.Length];
            int total = 0;
            for (int f = 0; f < cuts.Length; f++)
            {
                var c = cuts[f] ?? throw new ArgumentException($"feature {f} has no cuts");
                if (c.Length > maxBins - 1) throw new ArgumentException($"feature {f}: {c.Length} cuts make more than {maxBins} bins");
                for (int i = 0; i < c.Length; i++)
                    if (!float.IsFinite(c[i]) || (i > 0 && !(c[i] > c[i - 1]))) throw new ArgumentException($"feature {f}: cuts must be finite and ascending (cut {i})");
                Offset[f] = total;
                total += c.Length + 2;
            }
            Cuts = cuts;
            TotalSlots = total;
        }

        public int MissingBin(int f) => Cuts[f].Length + 1;

        /// <summary>The bin of a value: first index i with x ≤ cuts[i], or cuts.Length; <see cref="MissingBin"/> for NaN.</summary>
        public byte Bin(int f, float x)
        {
            var cuts = Cuts[f];
            if (float.IsNaN(x)) return (byte)(cuts.Length + 1);
            int lo = 0, hi = cuts.Length;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (x <= cuts[mid]) hi = mid; else lo = mid + 1;
            }
            return (byte)lo;
        }
    }

    /// <summary>The site's rows binned per feature (column-major bytes) with the layout that defines the bins.</summary>
    internal sealed class BinnedData
    {
        public required int Rows { get; init; }
        public required BinLayout Layout { get; init; }
        public required byte[] Bins { get; init; }
        public int Features => Layout.Features;

        /// <summary>Bins the rows at the cuts given (a federation's), or at the rows' own quantiles.</summary>
        public static BinnedData Build(float[] values, int columns, int[] rows, int maxBins, int threads, float[][]? cuts = null)
        {
            int n = rows.Length;
            if (cuts is not null && cuts.Length != columns) throw new ArgumentException($"{cuts.Length} features have cuts, the data has {columns} columns");
            var own = cuts ?? new float[columns][];
            var bins = new byte[(long)columns * n];
            Exception? failure = null;
            Parallel.For(0, columns, new ParallelOptions { MaxDegreeOfParallelism = threads }, f =>
            {
                try
                {
                    var col = new float[n];
                    for (int j = 0; j < n; j++) col[j] = values[(long)rows[j] * columns + f];
                    if (cuts is null)
                    {
                        var (distinct, counts) = HistogramBinning.DistinctCounts(col, f);
                        own[f] = HistogramBinning.GreedyCuts(distinct, counts, maxBins);
                    }
                    else
                    {
                        foreach (var x in col)
                            if (!float.IsNaN(x) && (!float.IsFinite(x) || x == float.MinValue))
                                throw new ArgumentException($"feature {f} has the value {x}; feature values must be finite (NaN = missing)");
                    }
                }
                catch (Exception e) { failure = e; }
            });
            if (failure is not null) throw failure;
            var layout = new BinLayout(own, maxBins);
            Parallel.For(0, columns, new ParallelOptions { MaxDegreeOfParallelism = threads }, f =>
            {
                var dst = bins.AsSpan(f * n, n);
                for (int j = 0; j < n; j++) dst[j] = layout.Bin(f, values[(long)rows[j] * columns + f]);
            });
            return new BinnedData { Rows = n, Layout = layout, Bins = bins };
        }

        /// <summary>Leaf of row j, routed by bins (identical to routing the raw value by the tree's thresholds).</summary>
        public int GetLeaf(DecisionTree tree, int[] binThreshold, int j)
        {
            if (tree.NodeCount == 0) return 0;
            var feature = tree.SplitFeature; var defaultLeft = tree.DefaultLeft; var left = tree.LeftChild; var right = tree.RightChild;
            int node = 0;
            while (node >= 0)
            {
                int f = feature[node];
                int b = Bins[(long)f * Rows + j];
                bool goLeft = b == Layout.MissingBin(f) ? defaultLeft[node] : b <= binThreshold[node];
                node = goLeft ? left[node] : right[node];
            }
            return ~node;
        }
    }

    /// <summary>A split of a leaf: its feature, the last bin that goes left (−1: only missing values go left), where
    /// missing values go, the gain, and the left child's sums.</summary>
    internal readonly record struct Split(int Feature, int BinThreshold, bool DefaultLeft, double Gain, double GL, double HL, double CL)
    {
        public static readonly Split None = new(-1, 0, false, double.NegativeInfinity, 0, 0, 0);
        public bool IsValid => Feature >= 0;
    }

    /// <summary>
    /// Where a tree grower gets its histograms: the rows of one site (<see cref="LocalRows"/>), or the sum of every
    /// site's (<see cref="FederatedHistogramBooster"/>). Leaves are numbered as the grower numbers them: the root is 0,
    /// and a split keeps the left child under the parent's number and gives the right child the next free one.
    /// </summary>
    internal interface IHistogramSource
    {
        /// <summary>Fills the root's histogram (slots × (g, h, count)) and returns its sums of g, h and rows.</summary>
        (double G, double H, double C) Root(double[] histogram);

        /// <summary>Splits leaf <paramref name="leaf"/> (left child keeps the number, right child becomes
        /// <paramref name="newLeaf"/>) and fills the histogram of the left child when <paramref name="buildLeft"/>, else
        /// of the right one. Returns that child's sums of g, h and rows when the source sends them apart from the
        /// histogram (noisy histograms: one noisy sum is closer than a sum over noisy bins), null when the grower
        /// should take them from the histogram's cumulative sums.</summary>
        (double G, double H, double C)? Split(int leaf, int newLeaf, Split split, bool buildLeft, double[] histogram);
    }

    /// <summary>One site's rows as a histogram source: the rows of each leaf are a range of one index array, kept
    /// stable-partitioned as the tree grows.</summary>
    internal sealed class LocalRows(BinnedData data, int threads) : IHistogramSource
    {
        private readonly int[] _index = new int[data.Rows];
        private readonly int[] _scratch = new int[data.Rows];
        private readonly List<(int Begin, int End)> _leaves = [];
        private double[] _g = [];
        private double[] _h = [];

        private double[]? _c;
        private int[]? _features;

        /// <summary>Starts a tree on the sampled rows with their gradients and hessians; a row counts as
        /// <paramref name="count"/>[j] in the count slots (null: 1). Histograms cover <paramref name="features"/> only
        /// (null: all); the other features' slots stay zero.</summary>
        public void Reset(double[] g, double[] h, int[] sample, double[]? count = null, int[]? features = null)
        {
            _g = g; _h = h; _c = count; _features = features;
            Array.Copy(sample, _index, sample.Length);
            _leaves.Clear();
            _leaves.Add((0, sample.Length));
        }

        public (double G, double H, double C) Root(double[] histogram)
        {
            Build(0, histogram);
            return Totals(0);
        }

        /// <summary>The sums of g, h and the count weights over the rows of <paramref name="leaf"/>.</summary>
        public (double G, double H, double C) Totals(int leaf)
        {
            var (begin, end) = _leaves[leaf];
            double G = 0, H = 0, C = 0;
            for (int k = begin; k < end; k++) { int j = _index[k]; G += _g[j]; H += _h[j]; C += _c?[j] ?? 1; }
            return (G, H, C);
        }

        public (double G, double H, double C)? Split(int leaf, int newLeaf, Split split, bool buildLeft, double[] histogram)
        {
            if (newLeaf != _leaves.Count) throw new InvalidOperationException($"leaf {newLeaf} is not the next leaf ({_leaves.Count})");
            var (begin, end) = _leaves[leaf];
            // Stable in-place partition of the leaf's rows.
            var bins = data.Bins.AsSpan(split.Feature * data.Rows, data.Rows);
            int missing = data.Layout.MissingBin(split.Feature);
            int write = begin, spill = 0;
            for (int k = begin; k < end; k++)
            {
                int j = _index[k];
                int b = bins[j];
                bool goLeft = b == missing ? split.DefaultLeft : b <= split.BinThreshold;
                if (goLeft) _index[write++] = j; else _scratch[spill++] = j;
            }
            Array.Copy(_scratch, 0, _index, write, spill);
            _leaves[leaf] = (begin, write);
            _leaves.Add((write, end));
            Build(buildLeft ? leaf : newLeaf, histogram);
            return null;
        }

        private void Build(int leaf, double[] hist)
        {
            var (begin, end) = _leaves[leaf];
            int count = end - begin;
            var rows = _index.AsSpan(begin, count).ToArray();
            var gg = new double[count];
            var hh = new double[count];
            var cc = _c is null ? null : new double[count];
            for (int k = 0; k < count; k++) { gg[k] = _g[rows[k]]; hh[k] = _h[rows[k]]; if (cc is not null) cc[k] = _c![rows[k]]; }
            int n = data.Rows;
            var layout = data.Layout;
            var features = _features;
            Parallel.For(0, features?.Length ?? data.Features, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
            {
                int f = features is null ? i : features[i];
                var bins = data.Bins.AsSpan(f * n, n);
                var hs = hist.AsSpan(layout.Offset[f] * 3, (layout.Cuts[f].Length + 2) * 3);
                for (int k = 0; k < rows.Length; k++)
                {
                    int b = bins[rows[k]] * 3;
                    hs[b] += gg[k];
                    hs[b + 1] += hh[k];
                    hs[b + 2] += cc is null ? 1 : cc[k];
                }
            });
        }
    }

    private sealed class Leaf
    {
        public int Depth;
        public double G, H, C;
        public double[] Hist = [];
        public Split Best = Split.None;
        public int ParentNode = -1;   // internal node pointing at this leaf (-1: root)
        public bool IsLeftChild;
    }

    /// <summary>Grows one tree best-first from histograms (split finding, gains, leaf values); where the histograms come
    /// from is the source's business.</summary>
    internal sealed class TreeGrower(BinLayout layout, TreeBoostingOptions options)
    {
        private readonly Stack<double[]> _pool = new();

        private int[]? _features;

        /// <summary>Grows one tree; it splits only on <paramref name="features"/> (null = every feature).</summary>
        public (DecisionTree Tree, int[] BinThreshold) Grow(IHistogramSource rows, int[]? features = null)
        {
            _features = features;
            var leaves = new List<Leaf>();
            var root = new Leaf { Depth = 0 };
            root.Hist = Rent();
            (root.G, root.H, root.C) = rows.Root(root.Hist);
            root.Best = FindBestSplit(root);
            leaves.Add(root);

            var feature = new List<int>(); var threshold = new List<float>(); var binThr = new List<int>(); var defaultLeft = new List<bool>();
            var leftChild = new List<int>(); var rightChild = new List<int>();
            while (leaves.Count < options.NumberOfLeaves)
            {
                int pick = -1;
                for (int i = 0; i < leaves.Count; i++)
                {
                    var best = leaves[i].Best;
                    if (!best.IsValid || !(best.Gain > options.MinSplitGain) || best.Gain <= 1e-12) continue;
                    if (options.MaxDepth > 0 && leaves[i].Depth >= options.MaxDepth) continue;
                    if (pick < 0 || best.Gain > leaves[pick].Best.Gain) pick = i;
                }
                if (pick < 0) break;

                var parent = leaves[pick];
                var s = parent.Best;
                int node = feature.Count;
                feature.Add(s.Feature);
                binThr.Add(s.BinThreshold);
                threshold.Add(s.BinThreshold < 0 ? float.MinValue : layout.Cuts[s.Feature][s.BinThreshold]);
                defaultLeft.Add(s.DefaultLeft);
                int newLeafId = leaves.Count;
                leftChild.Add(~pick);
                rightChild.Add(~newLeafId);
                if (parent.ParentNode >= 0)
                {
                    if (parent.IsLeftChild) leftChild[parent.ParentNode] = node; else rightChild[parent.ParentNode] = node;
                }

                var l = new Leaf { Depth = parent.Depth + 1, ParentNode = node, IsLeftChild = true, G = s.GL, H = s.HL, C = s.CL };
                var r = new Leaf { Depth = parent.Depth + 1, ParentNode = node, IsLeftChild = false, G = parent.G - s.GL, H = parent.H - s.HL, C = parent.C - s.CL };
                // Build the smaller child's histogram; the larger one's is the parent's minus it.
                bool buildLeft = l.C <= r.C;
                var (small, large) = buildLeft ? (l, r) : (r, l);
                small.Hist = Rent();
                if (rows.Split(pick, newLeafId, s, buildLeft, small.Hist) is { } sent)
                {
                    (small.G, small.H, small.C) = sent;
                    (large.G, large.H, large.C) = (parent.G - sent.G, parent.H - sent.H, parent.C - sent.C);
                }
                large.Hist = parent.Hist;
                var lh = large.Hist; var sh = small.Hist;
                for (int i = 0; i < lh.Length; i++) lh[i] -= sh[i];
                l.Best = FindBestSplit(l);
                r.Best = FindBestSplit(r);
                leaves[pick] = l;
                leaves.Add(r);
            }

            var leafValues = new double[leaves.Count];
            for (int i = 0; i < leaves.Count; i++)
            {
                // Children of a split have H ≥ MinChildHessian already; noisy sums might not.
                double raw = -leaves[i].G / (Math.Max(leaves[i].H, options.MinChildHessian) + options.L2Regularization);
                if (options.MaxLeafOutput > 0) raw = Math.Clamp(raw, -options.MaxLeafOutput, options.MaxLeafOutput);
                leafValues[i] = raw * options.LearningRate;
                if (!double.IsFinite(leafValues[i])) leafValues[i] = 0;
                Return(leaves[i].Hist);
            }
            var tree = new DecisionTree(feature.ToArray(), threshold.ToArray(), defaultLeft.ToArray(), leftChild.ToArray(), rightChild.ToArray(), leafValues);
            return (tree, binThr.ToArray());
        }

        private double[] Rent()
        {
            if (_pool.TryPop(out var a)) { Array.Clear(a); return a; }
            return new double[layout.TotalSlots * 3];
        }

        private void Return(double[] a) => _pool.Push(a);

        private Split FindBestSplit(Leaf leaf)
        {
            if (leaf.C < 2 * options.MinExamplesPerLeaf) return Split.None;
            if (options.MaxDepth > 0 && leaf.Depth >= options.MaxDepth) return Split.None;
            var features = _features;
            var perFeature = new Split[features?.Length ?? layout.Features];
            Parallel.For(0, perFeature.Length, new ParallelOptions { MaxDegreeOfParallelism = options.NumberOfThreads },
                i => perFeature[i] = BestSplitForFeature(leaf, features is null ? i : features[i]));
            var best = Split.None;
            foreach (var s in perFeature)
                if (s.IsValid && s.Gain > best.Gain) best = s;
            return best;
        }

        private Split BestSplitForFeature(Leaf leaf, int f)
        {
            double lambda = options.L2Regularization, minH = options.MinChildHessian, minC = options.MinExamplesPerLeaf;
            int k = layout.Cuts[f].Length;
            var hs = leaf.Hist.AsSpan(layout.Offset[f] * 3, (k + 2) * 3);
            double G = leaf.G, H = leaf.H, C = leaf.C;
            double Gm = hs[(k + 1) * 3], Hm = hs[(k + 1) * 3 + 1], Cm = hs[(k + 1) * 3 + 2];
            double parentScore = G * G / (H + lambda);
            var best = Split.None;

            void Consider(int bin, bool defaultLeft, double gl, double hl, double cl)
            {
                double gr = G - gl, hr = H - hl, cr = C - cl;
                if (cl < minC || cr < minC || hl < minH || hr < minH) return;
                double gain = gl * gl / (hl + lambda) + gr * gr / (hr + lambda) - parentScore;
                if (gain > best.Gain) best = new Split(f, bin, defaultLeft, gain, gl, hl, cl);
            }

            // Missing values alone vs. every present value.
            if (Cm > 0) Consider(-1, true, Gm, Hm, Cm);
            double gAcc = 0, hAcc = 0, cAcc = 0;
            for (int b = 0; b < k; b++)
            {
                gAcc += hs[b * 3]; hAcc += hs[b * 3 + 1]; cAcc += hs[b * 3 + 2];
                if (Cm > 0)
                {
                    Consider(b, false, gAcc, hAcc, cAcc);
                    Consider(b, true, gAcc + Gm, hAcc + Hm, cAcc + Cm);
                }
                else
                {
                    // No missing values here: send unseen NaN the way most rows go.
                    Consider(b, cAcc >= C - cAcc, gAcc, hAcc, cAcc);
                }
            }
            return best;
        }
    }
}
