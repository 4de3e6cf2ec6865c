namespace ClinicalFed.Trees;

/// <summary>
/// A binary-classification boosted tree ensemble as plain data, in log-odds units:
/// <c>Score(x) = BaseScore + Σ_t TreeWeights[t] · Trees[t](x)</c> and <c>P(y = 1 | x) = σ(Score(x))</c>.
/// It is what a site sends as a federated tree update (<see cref="ToBytes"/>, the <c>tree-ensemble</c> payload of an
/// update or model file), what the tree strategies merge (<see cref="TreeBagging"/>) and what cyclic boosting grows.
/// Plain data without ML.NET: ClinicalFed.Learning turns it into an ordinary ML.NET model again
/// (<c>TreeEnsembleMlNet.ToLightGbmModelText</c> / <c>ToMlNetModel</c>). Immutable.
/// </summary>
public sealed partial class TreeEnsembleModel
{
    private readonly DecisionTree[] _trees;
    private readonly double[] _weights;

    /// <param name="featureCount">Length of the feature vector the model reads.</param>
    /// <param name="baseScore">Constant log-odds added to every score.</param>
    /// <param name="trees">The trees, in order.</param>
    /// <param name="treeWeights">One weight per tree; all 1 when omitted.</param>
    /// <param name="featureNames">Optional column names (one per feature); carried in the serialized form and the
    /// LightGBM text, and checked when ensembles are combined.</param>
    public TreeEnsembleModel(int featureCount, double baseScore, IEnumerable<DecisionTree> trees, IEnumerable<double>? treeWeights = null,
        IReadOnlyList<string>? featureNames = null)
    {
        ArgumentNullException.ThrowIfNull(trees);
        if (featureCount <= 0) throw new ArgumentOutOfRangeException(nameof(featureCount), "a model reads at least one feature");
        if (!double.IsFinite(baseScore)) throw new ArgumentException("base score must be finite", nameof(baseScore));
        _trees = trees.ToArray();
        _weights = treeWeights?.ToArray() ?? Enumerable.Repeat(1.0, _trees.Length).ToArray();
        if (_weights.Length != _trees.Length) throw new ArgumentException($"{_trees.Length} trees but {_weights.Length} tree weights");
        for (int t = 0; t < _trees.Length; t++)
        {
            if (_trees[t] is null) throw new ArgumentException($"tree {t} is null");
            if (!double.IsFinite(_weights[t])) throw new ArgumentException($"tree {t}: weight {_weights[t]} is not finite");
            if (_trees[t].MaxFeatureIndex >= featureCount)
                throw new ArgumentException($"tree {t} splits on feature {_trees[t].MaxFeatureIndex} but the model has {featureCount} features");
        }
        if (featureNames is not null)
        {
            if (featureNames.Count != featureCount) throw new ArgumentException($"{featureNames.Count} feature names for {featureCount} features");
            FeatureNames = featureNames.ToArray();
        }
        FeatureCount = featureCount;
        BaseScore = baseScore;
    }

    /// <summary>A model with no trees that predicts <paramref name="baseScore"/> (log-odds) everywhere.</summary>
    public static TreeEnsembleModel Constant(int featureCount, double baseScore, IReadOnlyList<string>? featureNames = null) =>
        new(featureCount, baseScore, [], null, featureNames);

    /// <summary>The log-odds of a prevalence of <paramref name="positives"/> out of <paramref name="total"/> (with a
    /// half-count correction so that 0 or all positives stay finite): the usual starting score of boosting.</summary>
    public static double LogOdds(double positives, double total)
    {
        if (total <= 0 || positives < 0 || positives > total) throw new ArgumentException("need 0 <= positives <= total and total > 0");
        return Math.Log((positives + 0.5) / (total - positives + 0.5));
    }

    public int FeatureCount { get; }
    public double BaseScore { get; }
    public IReadOnlyList<DecisionTree> Trees => _trees;
    public IReadOnlyList<double> TreeWeights => _weights;
    public IReadOnlyList<string>? FeatureNames { get; }

    /// <summary>Raw score (log-odds) of one row; NaN means missing.</summary>
    public double Score(ReadOnlySpan<float> features)
    {
        if (features.Length != FeatureCount) throw new ArgumentException($"row has {features.Length} features, the model reads {FeatureCount}");
        double s = BaseScore;
        for (int t = 0; t < _trees.Length; t++) s += _weights[t] * _trees[t].Evaluate(features);
        return s;
    }

    /// <summary>P(y = 1 | x) = σ(<see cref="Score"/>).</summary>
    public double Probability(ReadOnlySpan<float> features) => Sigmoid(Score(features));

    public static double Sigmoid(double score) => score >= 0 ? 1.0 / (1.0 + Math.Exp(-score)) : Math.Exp(score) / (1.0 + Math.Exp(score));

    /// <summary>Scores every row of a row-major matrix (<paramref name="columns"/> values per row). Rows are split
    /// across at most <paramref name="threads"/> threads; each row's score does not depend on the split.</summary>
    public double[] ScoreRows(ReadOnlyMemory<float> rowMajor, int columns, int threads = 1)
    {
        if (columns != FeatureCount) throw new ArgumentException($"matrix has {columns} columns, the model reads {FeatureCount}");
        if (rowMajor.Length % columns != 0) throw new ArgumentException("matrix length is not a multiple of the column count");
        int rows = rowMajor.Length / columns;
        var scores = new double[rows];
        if (threads <= 1 || rows < 4096)
        {
            var span = rowMajor.Span;
            for (int i = 0; i < rows; i++) scores[i] = Score(span.Slice(i * columns, columns));
            return scores;
        }
        int chunk = (rows + threads - 1) / threads;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            var span = rowMajor.Span;
            int end = Math.Min(rows, (c + 1) * chunk);
            for (int i = c * chunk; i < end; i++) scores[i] = Score(span.Slice(i * columns, columns));
        });
        return scores;
    }

    /// <summary>Scores every row of a site's feature table.</summary>
    public double[] ScoreTable(ClinicalFed.Data.FeatureTable table, int threads = 1) => ScoreRows(table.Values, table.Columns, threads);

    /// <summary>This ensemble followed by <paramref name="trees"/> (weights 1 unless given); the base score is kept.</summary>
    public TreeEnsembleModel Append(IEnumerable<DecisionTree> trees, IEnumerable<double>? weights = null)
    {
        var added = trees.ToArray();
        var addedWeights = weights?.ToArray() ?? Enumerable.Repeat(1.0, added.Length).ToArray();
        return new TreeEnsembleModel(FeatureCount, BaseScore, _trees.Concat(added), _weights.Concat(addedWeights), FeatureNames);
    }

    /// <summary>The first <paramref name="count"/> trees (for example the shared part of a personalized model).</summary>
    public TreeEnsembleModel Prefix(int count)
    {
        if (count < 0 || count > _trees.Length) throw new ArgumentOutOfRangeException(nameof(count));
        return new TreeEnsembleModel(FeatureCount, BaseScore, _trees.Take(count), _weights.Take(count), FeatureNames);
    }

    /// <summary>The same function with the tree weights multiplied into the leaf values (all weights 1).</summary>
    public TreeEnsembleModel WithUnitWeights() =>
        new(FeatureCount, BaseScore, _trees.Select((t, i) => _weights[i] == 1.0 ? t : t.ScaleLeaves(_weights[i])), null, FeatureNames);

    /// <summary>Checks that two ensembles read the same feature vector (count, and names when both carry them).</summary>
    public void EnsureSameFeatures(TreeEnsembleModel other)
    {
        if (other.FeatureCount != FeatureCount)
            throw new ArgumentException($"ensembles read different feature vectors ({FeatureCount} vs {other.FeatureCount} features)");
        if (FeatureNames is not null && other.FeatureNames is not null)
            for (int i = 0; i < FeatureCount; i++)
                if (!string.Equals(FeatureNames[i], other.FeatureNames[i], StringComparison.Ordinal))
                    throw new ArgumentException($"ensembles disagree on feature {i}: '{FeatureNames[i]}' vs '{other.FeatureNames[i]}'");
    }

    /// <summary>
    /// True when this ensemble starts with <paramref name="start"/>: same features (count and names when both carry
    /// them), same base score, and <paramref name="start"/>'s trees and weights, bit for bit, as its first trees. A
    /// cyclic boosting turn or local personalization extends the ensemble it started from.
    /// </summary>
    public bool Extends(TreeEnsembleModel start)
    {
        ArgumentNullException.ThrowIfNull(start);
        if (start.FeatureCount != FeatureCount || start.BaseScore != BaseScore || start._trees.Length > _trees.Length) return false;
        if (FeatureNames is not null && start.FeatureNames is not null && !FeatureNames.SequenceEqual(start.FeatureNames, StringComparer.Ordinal)) return false;
        if (!_weights.AsSpan(0, start._weights.Length).SequenceEqual(start._weights)) return false;
        for (int t = 0; t < start._trees.Length; t++)
            if (!_trees[t].StructurallyEquals(start._trees[t])) return false;
        return true;
    }

    /// <summary>
    /// The L2 norm of the weighted leaf values (tree weight × leaf value) of the trees from <paramref name="firstTree"/>
    /// on: the size of what those trees add to the score, the tree counterpart of a parameter update's norm.
    /// </summary>
    public double LeafNorm(int firstTree = 0)
    {
        if (firstTree < 0 || firstTree > _trees.Length) throw new ArgumentOutOfRangeException(nameof(firstTree));
        double sum = 0;
        for (int t = firstTree; t < _trees.Length; t++)
            foreach (var v in _trees[t].LeafValue)
            {
                double x = _weights[t] * v;
                sum += x * x;
            }
        return Math.Sqrt(sum);
    }

    /// <summary>Exact structural equality (same trees, thresholds, leaf values, weights, base score).</summary>
    public bool StructurallyEquals(TreeEnsembleModel other)
    {
        if (other.FeatureCount != FeatureCount || other.BaseScore != BaseScore || other._trees.Length != _trees.Length) return false;
        if (!_weights.AsSpan().SequenceEqual(other._weights)) return false;
        if ((FeatureNames is null) != (other.FeatureNames is null)) return false;
        if (FeatureNames is not null && !FeatureNames.SequenceEqual(other.FeatureNames!, StringComparer.Ordinal)) return false;
        for (int t = 0; t < _trees.Length; t++)
            if (!_trees[t].StructurallyEquals(other._trees[t])) return false;
        return true;
    }
}
