namespace ClinicalFed.Trees;

/// <summary>
/// One binary regression tree with numerical splits, in the LightGBM / ML.NET layout. Internal nodes are numbered
/// 0..<see cref="NodeCount"/>-1 with node 0 the root. A child reference <c>c &gt;= 0</c> is an internal node;
/// <c>c &lt; 0</c> is the leaf <c>~c</c>. A row goes left when <c>x &lt;= Threshold</c>; a missing value (NaN) goes
/// left when <see cref="DefaultLeft"/> is set for that node, right otherwise. A tree with no internal nodes is a single
/// leaf (a constant).
/// </summary>
/// <remarks>Instances are immutable and validated on construction: every child index points forward (so the tree has
/// no cycles), every leaf and every non-root node is reached exactly once, thresholds are not NaN and leaf values are
/// finite. Trees received from another site therefore cannot make <see cref="Evaluate"/> loop or index out of
/// range.</remarks>
public sealed class DecisionTree
{
    private readonly int[] _feature;
    private readonly float[] _threshold;
    private readonly bool[] _defaultLeft;
    private readonly int[] _left;
    private readonly int[] _right;
    private readonly double[] _leafValue;

    public DecisionTree(int[] splitFeature, float[] threshold, bool[] defaultLeft, int[] leftChild, int[] rightChild, double[] leafValue)
    {
        ArgumentNullException.ThrowIfNull(splitFeature);
        ArgumentNullException.ThrowIfNull(threshold);
        ArgumentNullException.ThrowIfNull(defaultLeft);
        ArgumentNullException.ThrowIfNull(leftChild);
        ArgumentNullException.ThrowIfNull(rightChild);
        ArgumentNullException.ThrowIfNull(leafValue);
        int n = splitFeature.Length;
        if (threshold.Length != n || defaultLeft.Length != n || leftChild.Length != n || rightChild.Length != n)
            throw new ArgumentException("split arrays must all have one entry per internal node");
        if (leafValue.Length != n + 1)
            throw new ArgumentException($"a tree with {n} internal nodes has {n + 1} leaves, got {leafValue.Length} leaf values");
        var nodeSeen = new bool[n];
        var leafSeen = new bool[n + 1];
        if (n == 0) leafSeen[0] = true; // a single leaf is the root
        for (int i = 0; i < n; i++)
        {
            if (splitFeature[i] < 0) throw new ArgumentException($"node {i}: negative split feature");
            if (float.IsNaN(threshold[i])) throw new ArgumentException($"node {i}: NaN threshold");
            Visit(i, leftChild[i]);
            Visit(i, rightChild[i]);
        }
        for (int i = 1; i < n; i++)
            if (!nodeSeen[i]) throw new ArgumentException($"node {i} is unreachable");
        for (int i = 0; i <= n; i++)
        {
            if (!leafSeen[i]) throw new ArgumentException($"leaf {i} is unreachable");
            if (!double.IsFinite(leafValue[i])) throw new ArgumentException($"leaf {i}: value {leafValue[i]} is not finite");
        }
        _feature = splitFeature;
        _threshold = threshold;
        _defaultLeft = defaultLeft;
        _left = leftChild;
        _right = rightChild;
        _leafValue = leafValue;

        void Visit(int parent, int child)
        {
            if (child >= 0)
            {
                if (child <= parent || child >= n) throw new ArgumentException($"node {parent}: child node {child} must come after its parent and exist");
                if (nodeSeen[child]) throw new ArgumentException($"node {child} has two parents");
                nodeSeen[child] = true;
            }
            else
            {
                int leaf = ~child;
                if (leaf > n) throw new ArgumentException($"node {parent}: leaf {leaf} does not exist");
                if (leafSeen[leaf]) throw new ArgumentException($"leaf {leaf} has two parents");
                leafSeen[leaf] = true;
            }
        }
    }

    /// <summary>A constant tree: one leaf, no splits.</summary>
    public static DecisionTree Constant(double value) => new([], [], [], [], [], [value]);

    public int NodeCount => _feature.Length;
    public int LeafCount => _leafValue.Length;
    public ReadOnlySpan<int> SplitFeature => _feature;
    public ReadOnlySpan<float> Threshold => _threshold;
    public ReadOnlySpan<bool> DefaultLeft => _defaultLeft;
    public ReadOnlySpan<int> LeftChild => _left;
    public ReadOnlySpan<int> RightChild => _right;
    public ReadOnlySpan<double> LeafValue => _leafValue;

    /// <summary>Largest split feature index, or -1 for a constant tree.</summary>
    public int MaxFeatureIndex => _feature.Length == 0 ? -1 : _feature.Max();

    /// <summary>The leaf a row falls into.</summary>
    public int GetLeaf(ReadOnlySpan<float> features)
    {
        if (_feature.Length == 0) return 0;
        int node = 0;
        while (node >= 0)
        {
            float x = features[_feature[node]];
            bool left = float.IsNaN(x) ? _defaultLeft[node] : x <= _threshold[node];
            node = left ? _left[node] : _right[node];
        }
        return ~node;
    }

    public double Evaluate(ReadOnlySpan<float> features) => _leafValue[GetLeaf(features)];

    /// <summary>The same structure with every leaf value multiplied by <paramref name="factor"/>.</summary>
    public DecisionTree ScaleLeaves(double factor)
    {
        var leaves = new double[_leafValue.Length];
        for (int i = 0; i < leaves.Length; i++) leaves[i] = _leafValue[i] * factor;
        return new DecisionTree(_feature, _threshold, _defaultLeft, _left, _right, leaves);
    }

    /// <summary>The same structure with <paramref name="delta"/> added to every leaf value.</summary>
    public DecisionTree ShiftLeaves(double delta)
    {
        var leaves = new double[_leafValue.Length];
        for (int i = 0; i < leaves.Length; i++) leaves[i] = _leafValue[i] + delta;
        return new DecisionTree(_feature, _threshold, _defaultLeft, _left, _right, leaves);
    }

    internal bool StructurallyEquals(DecisionTree other) =>
        _feature.AsSpan().SequenceEqual(other._feature) && _threshold.AsSpan().SequenceEqual(other._threshold) &&
        _defaultLeft.AsSpan().SequenceEqual(other._defaultLeft) && _left.AsSpan().SequenceEqual(other._left) &&
        _right.AsSpan().SequenceEqual(other._right) && _leafValue.AsSpan().SequenceEqual(other._leafValue);
}
