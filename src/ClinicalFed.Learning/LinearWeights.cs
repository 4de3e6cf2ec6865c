namespace ClinicalFed.Learning;

/// <summary>
/// The parameters of a linear binary classifier: one weight per feature column plus a bias, with
/// score = w·x + b and probability = sigmoid(score). This is what sites exchange; it knows nothing about ML.NET
/// (<see cref="LinearModelAdapter"/> converts to and from ML.NET models). Immutable: the constructor copies.
/// </summary>
public sealed class LinearWeights : IEquatable<LinearWeights>
{
    private readonly float[] _weights;

    /// <summary>Creates parameters from a copy of <paramref name="weights"/>.</summary>
    /// <exception cref="ArgumentException">A weight or the bias is NaN or infinite, or there are no weights.</exception>
    public LinearWeights(ReadOnlySpan<float> weights, float bias)
    {
        if (weights.Length == 0)
        {
            throw new ArgumentException("A linear model needs at least one weight.", nameof(weights));
        }

        for (int i = 0; i < weights.Length; i++)
        {
            if (!float.IsFinite(weights[i]))
            {
                throw new ArgumentException($"Weight {i} is {weights[i]}; weights must be finite.", nameof(weights));
            }
        }

        if (!float.IsFinite(bias))
        {
            throw new ArgumentException($"The bias is {bias}; it must be finite.", nameof(bias));
        }

        _weights = weights.ToArray();
        Bias = bias;
    }

    /// <summary>The per-feature weights, in feature column order.</summary>
    public ReadOnlySpan<float> Weights => _weights;

    /// <summary>The bias (intercept).</summary>
    public float Bias { get; }

    /// <summary>Number of features (weights), not counting the bias.</summary>
    public int Count => _weights.Length;

    /// <summary>All-zero weights and bias for <paramref name="features"/> features (probability 0.5 everywhere).</summary>
    public static LinearWeights Zeros(int features)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(features, 1);
        return new LinearWeights(new float[features], 0f);
    }

    /// <summary>
    /// Rebuilds parameters from a flat vector laid out as <see cref="ToParameterVector"/> writes it:
    /// the weights followed by the bias (length = features + 1).
    /// </summary>
    public static LinearWeights FromParameterVector(ReadOnlySpan<float> vector)
    {
        if (vector.Length < 2)
        {
            throw new ArgumentException($"A parameter vector holds the weights then the bias, so it needs at least 2 entries; got {vector.Length}.", nameof(vector));
        }

        return new LinearWeights(vector[..^1], vector[^1]);
    }

    /// <summary>The weights followed by the bias, as one flat vector (for aggregation across sites).</summary>
    public float[] ToParameterVector()
    {
        var v = new float[_weights.Length + 1];
        _weights.CopyTo(v, 0);
        v[^1] = Bias;
        return v;
    }

    /// <summary>(1 − w)·<paramref name="from"/> + w·<paramref name="to"/>, weights and bias alike (the same float arithmetic as
    /// <see cref="ClinicalFed.Federation.AggregationMath.Interpolate"/> on parameter vectors).</summary>
    public static LinearWeights Interpolate(LinearWeights from, LinearWeights to, float w)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        if (from.Count != to.Count) throw new ArgumentException($"models have {from.Count} and {to.Count} features");
        var result = new float[from.Count + 1];
        ClinicalFed.Federation.AggregationMath.Interpolate(from.ToParameterVector(), to.ToParameterVector(), w, result);
        return FromParameterVector(result);
    }

    /// <summary>A copy of the weights.</summary>
    public float[] ToArray() => (float[])_weights.Clone();

    /// <summary>The raw score w·x + b of one row (accumulated in double).</summary>
    public double Score(ReadOnlySpan<float> features)
    {
        if (features.Length != _weights.Length)
        {
            throw new ArgumentException($"The row has {features.Length} features but the model has {_weights.Length} weights.", nameof(features));
        }

        double z = Bias;
        for (int i = 0; i < features.Length; i++)
        {
            z += (double)_weights[i] * features[i];
        }

        return z;
    }

    /// <summary>sigmoid(w·x + b) for one row.</summary>
    public double Probability(ReadOnlySpan<float> features) => Sigmoid(Score(features));

    /// <summary>1 / (1 + e^-z), computed without overflow.</summary>
    public static double Sigmoid(double z) => z >= 0 ? 1.0 / (1.0 + Math.Exp(-z)) : Math.Exp(z) / (1.0 + Math.Exp(z));

    /// <summary>The largest absolute difference between the two parameter vectors (weights and bias).</summary>
    public double MaxAbsDifference(LinearWeights other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Count != Count)
        {
            throw new ArgumentException($"Cannot compare a model with {other.Count} weights to one with {Count}.", nameof(other));
        }

        double max = Math.Abs((double)Bias - other.Bias);
        for (int i = 0; i < _weights.Length; i++)
        {
            max = Math.Max(max, Math.Abs((double)_weights[i] - other._weights[i]));
        }

        return max;
    }

    /// <inheritdoc />
    public bool Equals(LinearWeights? other) =>
        other is not null && other.Bias.Equals(Bias) && other._weights.AsSpan().SequenceEqual(_weights);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as LinearWeights);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Bias);
        foreach (float w in _weights)
        {
            hash.Add(w);
        }

        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() =>
        Count <= 8
            ? $"LinearWeights(b={Bias}, w=[{string.Join(", ", _weights)}])"
            : $"LinearWeights(b={Bias}, {Count} weights, |w|max={_weights.Max(MathF.Abs)})";
}
