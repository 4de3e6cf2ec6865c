using System.Numerics.Tensors;
using ClinicalFed.Trees;

namespace ClinicalFed.Federation;

/// <summary>
/// The round lifecycle every strategy shares, whatever its updates carry: <see cref="Begin"/> checks the manifest and
/// the global model (<see cref="StrategyChecks"/>) and opens the round; each update is checked against the round
/// (<see cref="CheckUpdate"/>) before the strategy takes it in and <see cref="Accept"/>s its site; the round is
/// finished once (<see cref="FinishRound{T}"/>), after which <see cref="CaptureState"/> hands back the server state.
/// </summary>
public abstract class RoundStrategy : IRoundStrategy
{
    private enum Phase { Idle, Open, Finished }

    private Phase _phase = Phase.Idle;
    private RoundManifest? _manifest;
    private readonly HashSet<string> _sites = new(StringComparer.Ordinal);

    protected RoundStrategy(StrategyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options.EnsureValid();
    }

    public string Name => Options.StrategyName;

    public StrategyOptions Options { get; }

    public int AcceptedCount => _sites.Count;

    /// <summary>The manifest of the current (or last) round.</summary>
    protected RoundManifest Manifest => _manifest ?? throw new InvalidOperationException("no round has begun");

    /// <summary>True for the tree strategies (tree-ensemble updates and models), false for float32 parameters.</summary>
    protected abstract bool AggregatesTrees { get; }

    public void Begin(ModelFile? global, RoundManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (_phase == Phase.Open)
            throw new InvalidOperationException($"round {_manifest!.Round} is still open; call Finish before beginning round {manifest.Round}");
        manifest.EnsureValid($"manifest of round {manifest.Round}");
        var problems = StrategyChecks.BeginProblems(Name, global, manifest, AggregatesTrees);
        CheckBegin(manifest, problems);
        if (problems.Count > 0) throw new ArgumentException($"Cannot begin round {manifest.Round}: {string.Join("; ", problems)}", nameof(manifest));

        _manifest = manifest;
        _sites.Clear();
        StartRound(global, manifest);
        _phase = Phase.Open;
    }

    public ServerState? CaptureState()
    {
        if (_phase != Phase.Finished) throw new InvalidOperationException("CaptureState is available after Finish");
        return State();
    }

    public void RestoreState(ServerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (_phase == Phase.Open) throw new InvalidOperationException("cannot restore server state while a round is open");
        if (state.Header.Strategy != Name)
            throw new ArgumentException($"server state of round {state.Header.Round} belongs to strategy '{state.Header.Strategy}', not '{Name}'", nameof(state));
        LoadState(state);
    }

    /// <summary>
    /// Every reason to reject <paramref name="header"/> that does not depend on the payload (empty when none);
    /// throws <see cref="InvalidOperationException"/> when no round is open.
    /// </summary>
    protected List<string> CheckUpdate(UpdateHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (_phase != Phase.Open) throw new InvalidOperationException("Accumulate needs an open round: call Begin first");
        return StrategyChecks.UpdateProblems(Name, header, _manifest!, _sites, AggregatesTrees);
    }

    /// <summary>Records that <paramref name="site"/>'s update went into the round.</summary>
    protected void Accept(string site) => _sites.Add(site);

    /// <summary>Closes the open round with <paramref name="result"/>; throws when no round is open or nothing was accepted.</summary>
    protected T FinishRound<T>(Func<T> result)
    {
        if (_phase != Phase.Open) throw new InvalidOperationException("Finish needs an open round: call Begin first");
        if (_sites.Count == 0) throw new InvalidOperationException($"round {_manifest!.Round}: no update was accepted, there is nothing to aggregate");
        var value = result();
        _phase = Phase.Finished;
        return value;
    }

    /// <summary>Adds problems with beginning a round of <paramref name="manifest"/> that only the strategy knows.</summary>
    protected virtual void CheckBegin(RoundManifest manifest, List<string> problems)
    {
    }

    /// <summary>Sets up the round's running state (the checks have passed).</summary>
    protected abstract void StartRound(ModelFile? global, RoundManifest manifest);

    /// <summary>The server state after the finished round; null for stateless strategies.</summary>
    protected abstract ServerState? State();

    /// <summary>Loads a server state of this strategy.</summary>
    protected abstract void LoadState(ServerState state);
}

/// <summary>
/// Shared machinery of the parameter-averaging strategies. Updates are accumulated as weighted differences from the
/// global model (a delta update already is one; a full update is differenced first), so one running sum of
/// <c>dimension</c> floats serves full and delta updates alike. <see cref="Finish"/> turns it into the weighted mean
/// model and hands it to <see cref="ApplyServerUpdate"/>. Memory: the global model, the running sum and the
/// strategy's state vectors, each <c>dimension</c> floats.
/// </summary>
public abstract class ParameterAveragingStrategy : RoundStrategy, IStreamingAggregationStrategy
{
    /// <summary>Values per chunk of <see cref="AccumulateVerified"/> (256 KiB: large reads, and the chunk stays in cache).</summary>
    private const int StreamChunk = 64 * 1024;

    private float[]? _weights;
    private float[]? _sum;
    private float[]? _chunk;
    private double _totalWeight;
    private string? _fault;

    protected ParameterAveragingStrategy(StrategyOptions options) : base(options)
    {
    }

    /// <summary>Sum of the accepted updates' weights (example counts, or 1 each with uniform weighting).</summary>
    public double TotalWeight => _totalWeight;

    /// <summary>Server optimizer steps taken (rounds finished, including those before a restored state).</summary>
    public int Steps { get; private set; }

    protected sealed override bool AggregatesTrees => false;

    protected sealed override void CheckBegin(RoundManifest manifest, List<string> problems) => CheckStateDimension(manifest.Model.Dimension, problems);

    protected sealed override void StartRound(ModelFile? global, RoundManifest manifest)
    {
        int dimension = manifest.Model.Dimension;
        _weights = global is null ? new float[dimension] : global.Parameters.ToArray();
        _sum = new float[dimension];
        _totalWeight = 0;
        _fault = null;
        OnBegin(dimension);
    }

    public void Accumulate(UpdateHeader header, ReadOnlySpan<float> parameters)
    {
        ThrowIfFaulted();
        var reasons = CheckUpdate(header);
        var m = Manifest;
        if (parameters.Length != header.Dimension) reasons.Add($"the payload holds {parameters.Length} values but the header says {header.Dimension}");
        if (header.ExampleCount <= 0) reasons.Add($"example_count is {header.ExampleCount}; an update must come from at least one example");
        if (parameters.Length == m.Model.Dimension) FramedFile.CheckFinite(parameters, 0, reasons);
        float scale = 1f;
        if (Options.ScreensUpdates && reasons.Count == 0) UpdateScreening.Check(Options, header, parameters, _weights, reasons, out scale);
        if (reasons.Count > 0) throw new UpdateRejectedException(header.Site ?? "(no site)", reasons);

        float weight = Options.Weighting == UpdateWeighting.Examples ? header.ExampleCount : 1f;
        float bounded = scale == 1f ? weight : weight * scale; // norm bounding shrinks the difference, not the site's weight in the mean
        if (header.ParameterKind == ParameterKinds.Delta) AggregationMath.Accumulate(_sum, parameters, bounded);
        else AggregationMath.AccumulateDifference(_sum, parameters, _weights, bounded);
        _totalWeight += weight;
        Accept(header.Site);
    }

    public double AccumulateVerified(UpdateHeader header, PayloadChunkSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        ThrowIfFaulted();
        if (Options.ScreensUpdates) return AccumulateScreened(header, source);
        var reasons = CheckUpdate(header);
        if (header.ExampleCount <= 0) reasons.Add($"example_count is {header.ExampleCount}; an update must come from at least one example");
        if (reasons.Count > 0) throw new UpdateRejectedException(header.Site ?? "(no site)", reasons);

        float weight = Options.Weighting == UpdateWeighting.Examples ? header.ExampleCount : 1f;
        bool delta = header.ParameterKind == ParameterKinds.Delta;
        var sum = _sum!;
        var chunk = _chunk ??= new float[Math.Min(StreamChunk, sum.Length)];
        double squares = 0;
        int offset = 0;
        try
        {
            while (offset < sum.Length)
            {
                int want = Math.Min(chunk.Length, sum.Length - offset);
                var values = chunk.AsSpan(0, want);
                int got = 0;
                while (got < want)
                {
                    int n = source(values[got..]);
                    if (n <= 0) break;
                    got += n;
                }

                if (got != want)
                    throw Fault(header, $"the payload ended after {offset + got} of {sum.Length} values");
                if (FramedFile.CountNonFinite(values, out int first) > 0)
                    throw Fault(header, $"value {offset + first} is {values[first]}, not finite");
                var target = sum.AsSpan(offset, want);
                squares += delta
                    ? AggregationMath.AccumulateWithSquaredNorm(target, values, weight)
                    : AggregationMath.AccumulateDifferenceWithSquaredNorm(target, values, _weights.AsSpan(offset, want), weight);
                offset += want;
            }

            if (source(chunk.AsSpan(0, 1)) > 0) throw Fault(header, $"the payload holds more than its {sum.Length} values");
        }
        catch (Exception e) when (_fault is null)
        {
            _fault = $"the update of site '{header.Site}' failed part way through accumulation ({e.Message})";
            throw;
        }

        _totalWeight += weight;
        Accept(header.Site);
        return Math.Sqrt(squares);
    }

    /// <summary>
    /// Screening needs the update's norm before anything is added: the payload is read whole into one reused buffer,
    /// then accumulated as <see cref="Accumulate"/> does (a rejection leaves the round unchanged).
    /// </summary>
    private double AccumulateScreened(UpdateHeader header, PayloadChunkSource source)
    {
        var buffer = _screened ??= new float[_sum!.Length];
        int got = 0;
        while (got < buffer.Length)
        {
            int n = source(buffer.AsSpan(got));
            if (n <= 0) break;
            got += n;
        }

        if (got != buffer.Length || source(new float[1]) > 0)
            throw new FederationDataException(header.Site ?? "(no site)", $"the payload holds {(got != buffer.Length ? got.ToString(System.Globalization.CultureInfo.InvariantCulture) : "more than " + buffer.Length)} values, not {buffer.Length}");
        Accumulate(header, buffer);
        return header.ParameterKind == ParameterKinds.Delta ? AggregationMath.L2Norm(buffer) : AggregationMath.L2Distance(buffer, _weights);
    }

    private float[]? _screened;

    private InvalidOperationException Fault(UpdateHeader header, string problem)
    {
        _fault = $"the verified update of site '{header.Site}' was not what its verification said: {problem}";
        return new InvalidOperationException($"round {Manifest.Round}: {_fault}; the round's sum is incomplete: aggregate the round again with a new strategy instance");
    }

    private void ThrowIfFaulted()
    {
        if (_fault is not null)
            throw new InvalidOperationException($"round {Manifest.Round} is faulted ({_fault}); aggregate it again with a new strategy instance");
    }

    public float[] Finish() => FinishRound(() =>
    {
        ThrowIfFaulted();
        var sum = _sum!;
        var weights = _weights!;
        AggregationMath.FinalizeMean(sum, _totalWeight); // mean difference from the global model
        TensorPrimitives.Add(sum, weights, sum);          // mean model
        ApplyServerUpdate(weights, sum);
        Steps++;
        _sum = null;
        _weights = null;
        return weights;
    });

    protected sealed override ServerState? State()
    {
        var vectors = StateVectors();
        return vectors.Count == 0 ? null : ServerState.Create(Manifest.Federation, Manifest.Round, Name, Steps, vectors);
    }

    protected sealed override void LoadState(ServerState state)
    {
        LoadStateVectors(state);
        Steps = state.Header.Steps;
    }

    /// <summary>Moves <paramref name="weights"/> (the round's starting global model) to the new global model, given the weighted mean of the sites' models.</summary>
    protected abstract void ApplyServerUpdate(Span<float> weights, ReadOnlySpan<float> mean);

    /// <summary>Allocates state vectors at the first round (when none were restored).</summary>
    protected virtual void OnBegin(int dimension)
    {
    }

    /// <summary>Adds a problem when restored state vectors do not have <paramref name="dimension"/> values.</summary>
    protected virtual void CheckStateDimension(int dimension, List<string> problems)
    {
    }

    /// <summary>The state vectors to persist (none for stateless strategies).</summary>
    protected virtual IReadOnlyList<(string Name, float[] Values)> StateVectors() => [];

    protected virtual void LoadStateVectors(ServerState state)
    {
    }
}

/// <summary>FedAvg: the new global model is the (example-)weighted mean of the sites' models.</summary>
public sealed class FedAvgStrategy(FedAvgOptions? options = null) : ParameterAveragingStrategy(options ?? new FedAvgOptions())
{
    protected override void ApplyServerUpdate(Span<float> weights, ReadOnlySpan<float> mean) => mean.CopyTo(weights);
}

/// <summary>FedProx on the server: aggregates as FedAvg; <see cref="FedProxOptions.ProximalMu"/> is for the sites.</summary>
public sealed class FedProxStrategy(FedProxOptions options) : ParameterAveragingStrategy(options)
{
    public double ProximalMu => ((FedProxOptions)Options).ProximalMu;

    protected override void ApplyServerUpdate(Span<float> weights, ReadOnlySpan<float> mean) => mean.CopyTo(weights);
}

/// <summary>FedAvgM: FedAvg with server momentum (<see cref="AggregationMath.ServerMomentumStep"/>); state: <c>velocity</c>.</summary>
public sealed class FedAvgMStrategy(FedAvgMOptions? options = null) : ParameterAveragingStrategy(options ?? new FedAvgMOptions())
{
    private float[]? _velocity;

    protected override void OnBegin(int dimension) => _velocity ??= new float[dimension];

    protected override void CheckStateDimension(int dimension, List<string> problems)
    {
        if (_velocity is not null && _velocity.Length != dimension)
            problems.Add($"the server state has dimension {_velocity.Length}, the manifest {dimension}");
    }

    protected override void ApplyServerUpdate(Span<float> weights, ReadOnlySpan<float> mean)
    {
        var o = (FedAvgMOptions)Options;
        AggregationMath.ServerMomentumStep(weights, mean, _velocity, (float)o.ServerMomentum, (float)o.ServerLearningRate);
    }

    protected override IReadOnlyList<(string Name, float[] Values)> StateVectors() =>
        _velocity is null ? [] : [("velocity", _velocity)];

    protected override void LoadStateVectors(ServerState state) => _velocity = state.Vector("velocity").ToArray();
}

/// <summary>
/// FedAdam, FedYogi and FedAdagrad (Reddi et al. 2021): the weighted mean's difference from the global model is the
/// pseudo-gradient of an adaptive server optimizer. State: first moment <c>m</c> (starts at 0) and second moment
/// <c>v</c> (starts at τ², as in the paper's Algorithm 2).
/// </summary>
public sealed class AdaptiveStrategy : ParameterAveragingStrategy
{
    private float[]? _m;
    private float[]? _v;

    public AdaptiveStrategy(AdaptiveOptions options) : base(options)
    {
    }

    private float Tau => (float)((AdaptiveOptions)Options).Tau;

    protected override void OnBegin(int dimension)
    {
        _m ??= new float[dimension];
        if (_v is null)
        {
            _v = new float[dimension];
            Array.Fill(_v, Tau * Tau);
        }
    }

    protected override void CheckStateDimension(int dimension, List<string> problems)
    {
        if (_m is not null && _m.Length != dimension)
            problems.Add($"the server state has dimension {_m.Length}, the manifest {dimension}");
    }

    protected override void ApplyServerUpdate(Span<float> weights, ReadOnlySpan<float> mean)
    {
        switch (Options)
        {
            case FedAdamOptions a:
                AggregationMath.FedAdamStep(weights, mean, _m, _v, (float)a.ServerLearningRate, (float)a.Beta1, (float)a.Beta2, (float)a.Tau);
                break;
            case FedYogiOptions y:
                AggregationMath.FedYogiStep(weights, mean, _m, _v, (float)y.ServerLearningRate, (float)y.Beta1, (float)y.Beta2, (float)y.Tau);
                break;
            case FedAdagradOptions g:
                AggregationMath.FedAdagradStep(weights, mean, _m, _v, (float)g.ServerLearningRate, (float)g.Beta1, (float)g.Tau);
                break;
        }
    }

    protected override IReadOnlyList<(string Name, float[] Values)> StateVectors() =>
        _m is null || _v is null ? [] : [("m", _m), ("v", _v)];

    protected override void LoadStateVectors(ServerState state)
    {
        var m = state.Vector("m").ToArray();
        var v = state.Vector("v").ToArray();
        _m = m;
        _v = v;
    }
}

/// <summary>
/// Builds strategies by name, as round manifests name them: the parameter-averaging strategies
/// (<see cref="Create(StrategySpec)"/>, <see cref="IAggregationStrategy"/>) and the tree strategies
/// (<see cref="CreateTree(StrategySpec)"/>, <see cref="ITreeAggregationStrategy"/>); <see cref="CreateAny"/> builds
/// either, for an aggregator that handles both.
/// </summary>
public static class StrategyFactory
{
    /// <summary>The float32 strategies: fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad and the robust ones.</summary>
    public static IReadOnlyList<string> KnownNames => StrategyNames.All;

    /// <summary>The tree strategies: tree-bagging, tree-cyclic.</summary>
    public static IReadOnlyList<string> TreeNames => StrategyNames.Trees;

    /// <summary>
    /// Parses and validates a manifest's options for strategy <paramref name="name"/>. Throws
    /// <see cref="ArgumentException"/> for an unknown name (listing the known ones) and
    /// <see cref="StrategyOptionsException"/> listing every problem with the options.
    /// </summary>
    public static StrategyOptions ParseOptions(string name, IReadOnlyDictionary<string, System.Text.Json.JsonElement>? options)
    {
        var r = new OptionReader(name, options);
        StrategyOptions parsed;
        switch (name)
        {
            case StrategyNames.FedAvg:
                parsed = new FedAvgOptions { Weighting = r.Weighting() };
                break;
            case StrategyNames.FedProx:
                var mu = r.TryNumber("proximal_mu");
                if (mu is null && (options is null || !options.ContainsKey("proximal_mu"))) r.Problems.Add("'proximal_mu' is required");
                parsed = new FedProxOptions { Weighting = r.Weighting(), ProximalMu = mu ?? 0 };
                break;
            case StrategyNames.FedAvgM:
                var m = new FedAvgMOptions();
                parsed = m with
                {
                    Weighting = r.Weighting(),
                    ServerLearningRate = r.Number("server_learning_rate", m.ServerLearningRate),
                    ServerMomentum = r.Number("server_momentum", m.ServerMomentum),
                };
                break;
            case StrategyNames.FedAdam:
                parsed = ReadAdaptive(r, new FedAdamOptions());
                break;
            case StrategyNames.FedYogi:
                parsed = ReadAdaptive(r, new FedYogiOptions());
                break;
            case StrategyNames.FedAdagrad:
                parsed = ReadAdaptive(r, new FedAdagradOptions());
                break;
            case StrategyNames.TreeBagging:
                parsed = new TreeBaggingOptions { Weighting = r.Weighting() };
                break;
            case StrategyNames.TreeCyclic:
                parsed = new TreeCyclicOptions { Weighting = r.Weighting() };
                break;
            case StrategyNames.Median:
                parsed = new MedianOptions { Weighting = r.Weighting() };
                break;
            case StrategyNames.TrimmedMean:
                var t = new TrimmedMeanOptions();
                parsed = t with { Weighting = r.Weighting(), TrimFraction = r.Number("trim_fraction", t.TrimFraction) };
                break;
            case StrategyNames.Krum:
            case StrategyNames.MultiKrum:
                var k = new KrumOptions(multi: name == StrategyNames.MultiKrum);
                parsed = k with
                {
                    Weighting = r.Weighting(), Byzantine = r.Integer("byzantine", k.Byzantine),
                    Selected = k.Multi ? r.Integer("selected", k.Selected) : 0,
                };
                break;
            case StrategyNames.GeometricMedian:
                var g = new GeometricMedianOptions();
                parsed = g with
                {
                    Weighting = r.Weighting(), MaxIterations = r.Integer("max_iterations", g.MaxIterations),
                    Tolerance = r.Number("tolerance", g.Tolerance), Epsilon = r.Number("epsilon", g.Epsilon),
                };
                break;
            default:
                throw UnknownName(name);
        }

        if (parsed is not TreeStrategyOptions) parsed = StrategyOptions.ReadScreening(r, parsed);
        r.RejectUnknownKeys();
        var problems = r.Problems.Concat(parsed.Validate()).Distinct().ToList();
        if (problems.Count > 0) throw new StrategyOptionsException(name, problems);
        return parsed;
    }

    /// <summary>Reads the adaptive optimizers' options over their defaults (β2 only where the optimizer has one).</summary>
    private static AdaptiveOptions ReadAdaptive(OptionReader r, AdaptiveOptions defaults)
    {
        var read = defaults with
        {
            Weighting = r.Weighting(),
            ServerLearningRate = r.Number("server_learning_rate", defaults.ServerLearningRate),
            Beta1 = r.Number("beta1", defaults.Beta1),
            Tau = r.Number("tau", defaults.Tau),
        };
        return read is AdaptiveMomentOptions m ? m with { Beta2 = r.Number("beta2", m.Beta2) } : read;
    }

    /// <summary>A parameter-averaging strategy by name with options from a manifest (null or empty: defaults).</summary>
    public static IAggregationStrategy Create(string name, IReadOnlyDictionary<string, System.Text.Json.JsonElement>? options = null) =>
        Create(ParseOptions(name, options));

    /// <summary>The parameter-averaging strategy a manifest names, with its options.</summary>
    public static IAggregationStrategy Create(StrategySpec spec) => Create(ParseOptions(spec));

    /// <summary>The parameter-averaging strategy for typed options (validated here); a tree strategy is an <see cref="ArgumentException"/>.</summary>
    public static IAggregationStrategy Create(StrategyOptions options) => CreateAny(options) as IAggregationStrategy
        ?? throw new ArgumentException($"'{options.StrategyName}' aggregates tree ensembles, not float32 parameters; build it with CreateTree", nameof(options));

    /// <summary>The tree strategy a manifest names, with its options; a parameter-averaging strategy is an <see cref="ArgumentException"/>.</summary>
    public static ITreeAggregationStrategy CreateTree(StrategySpec spec) => CreateTree(ParseOptions(spec));

    /// <summary>The tree strategy for typed options (validated here); a parameter-averaging strategy is an <see cref="ArgumentException"/>.</summary>
    public static ITreeAggregationStrategy CreateTree(StrategyOptions options) => CreateAny(options) as ITreeAggregationStrategy
        ?? throw new ArgumentException($"'{options.StrategyName}' averages float32 parameters, not tree ensembles; build it with Create", nameof(options));

    /// <summary>The strategy a manifest names, of either family: an <see cref="IAggregationStrategy"/> or an <see cref="ITreeAggregationStrategy"/>.</summary>
    public static IRoundStrategy CreateAny(StrategySpec spec) => CreateAny(ParseOptions(spec));

    /// <summary>The strategy for typed options (validated here), of either family.</summary>
    public static IRoundStrategy CreateAny(StrategyOptions options) => options switch
    {
        FedAvgOptions o => new FedAvgStrategy(o),
        FedProxOptions o => new FedProxStrategy(o),
        FedAvgMOptions o => new FedAvgMStrategy(o),
        AdaptiveOptions o => new AdaptiveStrategy(o),
        MedianOptions or TrimmedMeanOptions or KrumOptions or GeometricMedianOptions => new RobustStrategy(options),
        TreeBaggingOptions o => new TreeBaggingStrategy(o),
        TreeCyclicOptions o => new TreeCyclicStrategy(o),
        null => throw new ArgumentNullException(nameof(options)),
        _ => throw UnknownName(options.StrategyName),
    };

    private static StrategyOptions ParseOptions(StrategySpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return ParseOptions(spec.Name, spec.Options);
    }

    private static ArgumentException UnknownName(string? name) =>
        new($"Unknown aggregation strategy '{name}'. Known strategies: {string.Join(", ", KnownNames.Concat(TreeNames))}.", nameof(name));
}

/// <summary>The checks every strategy makes when a round begins and for each update, with the same wording.</summary>
internal static class StrategyChecks
{
    /// <summary>
    /// Problems with beginning a round of <paramref name="manifest"/> from <paramref name="global"/>: the manifest
    /// names another strategy, the global model is missing or unexpected, or its payload is not what the strategy
    /// aggregates (float32 parameters of the manifest's dimension; for <paramref name="trees"/>, a tree ensemble of
    /// the manifest's features, and the manifest's model kind must be trees).
    /// </summary>
    public static List<string> BeginProblems(string name, ModelFile? global, RoundManifest manifest, bool trees)
    {
        var problems = new List<string>();
        if (manifest.Strategy.Name != name) problems.Add($"the manifest names strategy '{manifest.Strategy.Name}' but this strategy is '{name}'");
        if (trees && manifest.Model.Kind != ModelKinds.Trees)
            problems.Add($"the manifest's model kind is '{manifest.Model.Kind}'; {name} aggregates tree ensembles (kind '{ModelKinds.Trees}')");
        int dimension = manifest.Model.Dimension;
        if (global is null && manifest.GlobalModel is not null)
            problems.Add($"the manifest starts from global model '{manifest.GlobalModel}' but none was given");
        if (global is not null)
        {
            if (manifest.GlobalModel is null) problems.Add("a global model was given but the manifest's 'global_model' is null (round starts from zeros)");
            if (trees ? !global.HasTreeEnsemble : !global.HasParameters)
                problems.Add($"the global model's payload is {global.Header.PayloadEncoding}; {name} {(trees ? "aggregates tree ensembles" : "averages float32 parameters")}");
            else if (global.Header.Dimension != dimension) problems.Add($"the global model has dimension {global.Header.Dimension}, the manifest {dimension}");
        }

        return problems;
    }

    /// <summary>
    /// Reasons to reject an update whatever its payload: an invalid header, another federation or round, a site that
    /// is not expected or already contributed, a dimension other than the manifest's, or a payload encoding the
    /// strategy does not aggregate.
    /// </summary>
    public static List<string> UpdateProblems(string name, UpdateHeader header, RoundManifest m, IReadOnlySet<string> accepted, bool trees)
    {
        var reasons = header.Validate(requireHash: false);
        if (header.Federation != m.Federation) reasons.Add($"federation '{header.Federation}' is not this round's '{m.Federation}'");
        if (header.Round != m.Round) reasons.Add($"round {header.Round} is not the open round {m.Round}");
        if (!m.Sites.Contains(header.Site, StringComparer.Ordinal)) reasons.Add($"site '{header.Site}' is not among the round's expected sites");
        if (accepted.Contains(header.Site)) reasons.Add($"site '{header.Site}' already contributed to round {m.Round}");
        if (header.Dimension != m.Model.Dimension) reasons.Add($"dimension {header.Dimension} does not match the model's {m.Model.Dimension}");
        if (header.IsTreeEnsemble != trees)
            reasons.Add($"the payload is {header.PayloadEncoding ?? UpdatePayloadEncodings.Float32}; {name} {(trees ? "aggregates tree ensembles" : "averages float32 parameters")}");
        return reasons;
    }
}
