using System.Numerics.Tensors;

namespace ClinicalFed.Federation;

/// <summary>Options of <see cref="BufferedAsyncAggregator"/>, validated with every problem reported at once.</summary>
public sealed record BufferedAsyncOptions
{
    /// <summary>Updates buffered before the global model moves (FedBuff's K).</summary>
    public int BufferSize { get; init; } = 3;

    /// <summary>Server learning rate η applied to the buffered weighted mean of deltas.</summary>
    public double ServerLearningRate { get; init; } = 1.0;

    /// <summary>Staleness discount <c>s(τ) = (1 + τ)^−a</c>; a = 0.5 as in FedBuff, 0 turns the discount off.</summary>
    public double StalenessExponent { get; init; } = 0.5;

    /// <summary>Updates older than this many global versions are refused.</summary>
    public int MaxStaleness { get; init; } = 20;

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (BufferSize is < 1 or > 10_000) e.Add($"buffer_size: {BufferSize} (expected 1 to 10000)");
        if (!(ServerLearningRate > 0) || !double.IsFinite(ServerLearningRate)) e.Add($"server_learning_rate: {ServerLearningRate} (expected a positive number)");
        if (!(StalenessExponent >= 0) || !double.IsFinite(StalenessExponent)) e.Add($"staleness_exponent: {StalenessExponent} (expected 0 or more)");
        if (MaxStaleness < 0) e.Add($"max_staleness: {MaxStaleness} (expected 0 or more)");
        return e;
    }
}

/// <summary>
/// Buffered asynchronous aggregation (FedBuff, Nguyen et al. 2022): sites train from whatever global version they last
/// fetched and send a delta; the server keeps a running, staleness-discounted, example-weighted sum of the deltas and
/// moves the global model once <see cref="BufferedAsyncOptions.BufferSize"/> of them have arrived:
/// <c>w ← w + η · Σ s(τ_i) n_i Δ_i / Σ n_i</c>, with staleness <c>τ_i</c> = the current version minus the version site
/// i trained from. Slow sites never hold the others back; their stale updates count less. Memory: two vectors.
/// </summary>
public sealed class BufferedAsyncAggregator
{
    private readonly BufferedAsyncOptions _options;
    private readonly float[] _global;
    private readonly float[] _sum;
    private double _examples;

    public BufferedAsyncAggregator(ReadOnlySpan<float> initialGlobal, BufferedAsyncOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        if (problems.Count > 0) throw new ArgumentException("invalid buffered asynchronous aggregation options: " + string.Join("; ", problems), nameof(options));
        if (initialGlobal.Length == 0) throw new ArgumentException("the model needs at least one parameter", nameof(initialGlobal));
        _options = options;
        _global = initialGlobal.ToArray();
        _sum = new float[_global.Length];
    }

    /// <summary>The global model's version: how many times the buffer has been applied.</summary>
    public int Version { get; private set; }

    /// <summary>Updates in the buffer now.</summary>
    public int Buffered { get; private set; }

    /// <summary>The current global model (a view; it changes when the buffer is applied).</summary>
    public ReadOnlySpan<float> Global => _global;

    /// <summary>The staleness discount <c>(1 + τ)^−a</c>.</summary>
    public static double StalenessWeight(int staleness, double exponent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(staleness);
        return Math.Pow(1 + staleness, -exponent);
    }

    /// <summary>
    /// Adds a site's delta, trained from global version <paramref name="baseVersion"/> on <paramref name="examples"/>
    /// examples. Returns true when this update filled the buffer and the global model moved (its version went up).
    /// Throws <see cref="UpdateRejectedException"/> (nothing changed) for a wrong length, non-finite values, a version
    /// from the future, or staleness above the limit.
    /// </summary>
    public bool Add(string site, ReadOnlySpan<float> delta, int baseVersion, long examples)
    {
        var reasons = new List<string>();
        if (delta.Length != _global.Length) reasons.Add($"the delta holds {delta.Length} values, the model {_global.Length}");
        if (examples <= 0) reasons.Add($"example_count is {examples}");
        if (baseVersion > Version) reasons.Add($"it was trained from version {baseVersion}, but the global model is at version {Version}");
        int staleness = Version - baseVersion;
        if (staleness > _options.MaxStaleness) reasons.Add($"staleness {staleness} exceeds max_staleness {_options.MaxStaleness}");
        if (delta.Length == _global.Length && !TensorPrimitives.IsFiniteAll(delta)) reasons.Add("the delta holds NaN or infinite values");
        if (reasons.Count > 0) throw new UpdateRejectedException(site, reasons);

        float weight = (float)(examples * StalenessWeight(Math.Max(0, staleness), _options.StalenessExponent));
        TensorPrimitives.MultiplyAdd(delta, weight, _sum, _sum);
        _examples += examples;
        if (++Buffered < _options.BufferSize) return false;

        // w ← w + η Σ s n Δ / Σ n
        TensorPrimitives.MultiplyAdd(_sum, (float)(_options.ServerLearningRate / _examples), _global, _global);
        Array.Clear(_sum);
        _examples = 0;
        Buffered = 0;
        Version++;
        return true;
    }
}
