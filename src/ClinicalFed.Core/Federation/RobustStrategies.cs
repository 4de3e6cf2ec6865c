using System.Text.Json;

namespace ClinicalFed.Federation;

/// <summary>
/// Options every float32 strategy accepts to screen updates before they count (all optional, off when absent):
/// <c>max_update_norm</c> rejects an update whose difference from the global model is longer;
/// <c>clip_update_norm</c> bounds it instead (norm bounding, Sun et al. 2019: a longer difference is scaled down to the
/// bound); <c>max_example_count</c> rejects an implausible example count. A rejected update is listed with its reason in
/// the round's result and the round goes on with the others.
/// </summary>
public abstract partial record StrategyOptions
{
    /// <summary>Option <c>max_update_norm</c>: reject updates whose L2 distance from the global model exceeds it.</summary>
    public double? MaxUpdateNorm { get; init; }

    /// <summary>Option <c>clip_update_norm</c>: scale every update's difference from the global model to at most this L2 norm.</summary>
    public double? ClipUpdateNorm { get; init; }

    /// <summary>Option <c>max_example_count</c>: reject updates that claim more examples.</summary>
    public double? MaxExampleCount { get; init; }

    /// <summary>True when any screening option is set.</summary>
    public bool ScreensUpdates => MaxUpdateNorm is not null || ClipUpdateNorm is not null || MaxExampleCount is not null;

    private IEnumerable<(string Key, double Value)> ScreeningOptions()
    {
        if (MaxUpdateNorm is { } a) yield return ("max_update_norm", a);
        if (ClipUpdateNorm is { } b) yield return ("clip_update_norm", b);
        if (MaxExampleCount is { } c) yield return ("max_example_count", c);
    }

    private void AddScreeningProblems(List<string> problems)
    {
        foreach (var (key, value) in ScreeningOptions())
        {
            if (this is TreeStrategyOptions) problems.Add($"'{key}' screens float32 parameter updates; tree strategies do not take it");
            else RequireRange(problems, key, value, 0, double.PositiveInfinity, minOpen: true);
        }
    }

    internal static StrategyOptions ReadScreening(OptionReader r, StrategyOptions parsed) => parsed with
    {
        MaxUpdateNorm = r.TryNumber("max_update_norm"),
        ClipUpdateNorm = r.TryNumber("clip_update_norm"),
        MaxExampleCount = r.TryNumber("max_example_count"),
    };
}

/// <summary>The screening of one float32 update: its size, why it cannot count, and how much norm bounding shrinks it.</summary>
internal static class UpdateScreening
{
    /// <summary>
    /// The update's L2 size (a delta's norm, or a full model's distance from <paramref name="global"/>), adding to
    /// <paramref name="reasons"/> what <paramref name="options"/> refuse; <paramref name="scale"/> is the norm bounding
    /// factor (1 when unbounded or within the bound).
    /// </summary>
    public static double Check(StrategyOptions options, UpdateHeader header, ReadOnlySpan<float> parameters, ReadOnlySpan<float> global, List<string> reasons, out float scale)
    {
        scale = 1f;
        if (options.MaxExampleCount is { } maxExamples && header.ExampleCount > maxExamples)
            reasons.Add($"example_count {header.ExampleCount} exceeds max_example_count {maxExamples}");
        if (parameters.Length != global.Length || reasons.Count > 0 && !options.ScreensUpdates) return double.NaN;
        double norm = header.ParameterKind == ParameterKinds.Delta ? AggregationMath.L2Norm(parameters) : AggregationMath.L2Distance(parameters, global);
        if (options.MaxUpdateNorm is { } maxNorm && norm > maxNorm)
            reasons.Add($"the update's L2 norm {norm:G4} exceeds max_update_norm {maxNorm:G4}");
        if (options.ClipUpdateNorm is { } clip && norm > clip) scale = (float)(clip / norm);
        return norm;
    }
}

/// <summary>Coordinate-wise median of the sites' updates (Yin et al. 2018). No options beyond screening.</summary>
public sealed record MedianOptions : StrategyOptions
{
    public override string StrategyName => StrategyNames.Median;
    protected override IEnumerable<(string Key, double Value)> NumericOptions() => [];
    protected override void AddProblems(List<string> problems) { }
}

/// <summary>Coordinate-wise trimmed mean (Yin et al. 2018). Option <c>trim_fraction</c> β in [0, 0.5): the share dropped at each end.</summary>
public sealed record TrimmedMeanOptions : StrategyOptions
{
    public override string StrategyName => StrategyNames.TrimmedMean;
    public double TrimFraction { get; init; } = 0.2;
    protected override IEnumerable<(string Key, double Value)> NumericOptions() => [("trim_fraction", TrimFraction)];
    protected override void AddProblems(List<string> problems) => RequireRange(problems, "trim_fraction", TrimFraction, 0, 0.5, maxOpen: true);
}

/// <summary>
/// Krum and Multi-Krum (Blanchard et al. 2017). Option <c>byzantine</c> f: the malicious sites assumed (a round needs
/// at least f + 3 updates); Multi-Krum's <c>selected</c> m: the updates averaged (0: n − f).
/// </summary>
public sealed record KrumOptions : StrategyOptions
{
    private readonly bool _multi;

    public KrumOptions(bool multi = false) => _multi = multi;

    public override string StrategyName => _multi ? StrategyNames.MultiKrum : StrategyNames.Krum;
    public bool Multi => _multi;
    public int Byzantine { get; init; } = 1;
    public int Selected { get; init; }

    protected override IEnumerable<(string Key, double Value)> NumericOptions() =>
        _multi ? [("byzantine", Byzantine), ("selected", Selected)] : [("byzantine", Byzantine)];

    protected override void AddProblems(List<string> problems)
    {
        RequireRange(problems, "byzantine", Byzantine, 0, 1000);
        if (_multi) RequireRange(problems, "selected", Selected, 0, 100_000);
    }
}

/// <summary>
/// Geometric median by smoothed Weiszfeld iterations (RFA, Pillutla et al. 2022). Options <c>max_iterations</c>,
/// <c>tolerance</c> (relative movement that stops it) and <c>epsilon</c> (smoothing).
/// </summary>
public sealed record GeometricMedianOptions : StrategyOptions
{
    public override string StrategyName => StrategyNames.GeometricMedian;
    public int MaxIterations { get; init; } = 100;
    public double Tolerance { get; init; } = 1e-6;
    public double Epsilon { get; init; } = 1e-8;

    protected override IEnumerable<(string Key, double Value)> NumericOptions() => [("max_iterations", MaxIterations), ("tolerance", Tolerance), ("epsilon", Epsilon)];

    protected override void AddProblems(List<string> problems)
    {
        RequireRange(problems, "max_iterations", MaxIterations, 1, 100_000);
        RequireRange(problems, "tolerance", Tolerance, 0, 1, minOpen: true);
        RequireRange(problems, "epsilon", Epsilon, 0, 1, minOpen: true);
    }
}

/// <summary>
/// The Byzantine-robust strategies: median, trimmed mean, Krum, Multi-Krum and geometric median. Unlike the averaging
/// strategies they cannot keep a running sum: the round's updates are buffered as differences from the global model
/// (memory O(sites × parameters)), screened as every strategy screens them, and combined at
/// <see cref="Finish"/>; the new global model is the global model plus the robust combination (server learning rate 1).
/// Weighting: the median and trimmed mean are unweighted by construction; Multi-Krum's average and the geometric median
/// use the <c>weighting</c> option. Stateless across rounds.
/// </summary>
public sealed class RobustStrategy : RoundStrategy, IAggregationStrategy
{
    private float[]? _global;
    private readonly List<float[]> _deltas = [];
    private readonly List<double> _weights = [];

    public RobustStrategy(StrategyOptions options) : base(options)
    {
        if (options is not (MedianOptions or TrimmedMeanOptions or KrumOptions or GeometricMedianOptions))
            throw new ArgumentException($"'{options.StrategyName}' is not a robust strategy", nameof(options));
    }

    /// <summary>What the last <see cref="Finish"/> chose: Krum's selected updates (site names), or empty.</summary>
    public IReadOnlyList<string> Selected { get; private set; } = [];

    private readonly List<string> _sites = [];

    protected override bool AggregatesTrees => false;

    protected override void CheckBegin(RoundManifest manifest, List<string> problems)
    {
        if (Options is KrumOptions k && manifest.Quorum < k.Byzantine + 3)
            problems.Add($"{Name} with byzantine = {k.Byzantine} needs a quorum of at least {k.Byzantine + 3} updates, but the manifest's quorum is {manifest.Quorum}");
    }

    protected override void StartRound(ModelFile? global, RoundManifest manifest)
    {
        _global = global is null ? new float[manifest.Model.Dimension] : global.Parameters.ToArray();
        _deltas.Clear();
        _weights.Clear();
        _sites.Clear();
        Selected = [];
    }

    public void Accumulate(UpdateHeader header, ReadOnlySpan<float> parameters)
    {
        var reasons = CheckUpdate(header);
        if (parameters.Length != header.Dimension) reasons.Add($"the payload holds {parameters.Length} values but the header says {header.Dimension}");
        if (header.ExampleCount <= 0) reasons.Add($"example_count is {header.ExampleCount}; an update must come from at least one example");
        if (parameters.Length == Manifest.Model.Dimension) FramedFile.CheckFinite(parameters, 0, reasons);
        UpdateScreening.Check(Options, header, parameters, _global, reasons, out float scale);
        if (reasons.Count > 0) throw new UpdateRejectedException(header.Site ?? "(no site)", reasons);

        var delta = parameters.ToArray();
        if (header.ParameterKind != ParameterKinds.Delta) System.Numerics.Tensors.TensorPrimitives.Subtract(delta, _global, delta);
        if (scale != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(delta, scale, delta);
        _deltas.Add(delta);
        _weights.Add(Options.Weighting == UpdateWeighting.Examples ? header.ExampleCount : 1.0);
        _sites.Add(header.Site);
        Accept(header.Site);
    }

    public float[] Finish() => FinishRound(() =>
    {
        var combined = new float[_global!.Length];
        switch (Options)
        {
            case MedianOptions:
                RobustAggregationMath.CoordinateMedian(_deltas, combined);
                break;
            case TrimmedMeanOptions t:
                RobustAggregationMath.TrimmedMean(_deltas, (int)Math.Floor(t.TrimFraction * _deltas.Count), combined);
                break;
            case KrumOptions k:
                if (_deltas.Count < k.Byzantine + 3)
                    throw new InvalidOperationException($"round {Manifest.Round}: {Name} with byzantine = {k.Byzantine} needs at least {k.Byzantine + 3} accepted updates, but only {_deltas.Count} were");
                int m = k.Multi ? (k.Selected > 0 ? Math.Min(k.Selected, _deltas.Count) : _deltas.Count - k.Byzantine) : 1;
                var chosen = RobustAggregationMath.KrumSelection(_deltas, k.Byzantine, m);
                Selected = chosen.Select(i => _sites[i]).ToArray();
                RobustAggregationMath.WeightedMean(_deltas, _weights, chosen, combined);
                break;
            case GeometricMedianOptions g:
                RobustAggregationMath.GeometricMedian(_deltas, _weights, combined, g.MaxIterations, g.Tolerance, g.Epsilon);
                break;
        }

        System.Numerics.Tensors.TensorPrimitives.Add(_global, combined, combined);
        _deltas.Clear();
        return combined;
    });

    protected override ServerState? State() => null;

    protected override void LoadState(ServerState state)
    {
    }
}
