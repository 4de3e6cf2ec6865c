using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ClinicalFed.Federation;

/// <summary>The strategy names <see cref="StrategyFactory"/> knows, as written in round manifests.</summary>
public static class StrategyNames
{
    public const string FedAvg = "fedavg";
    public const string FedAvgM = "fedavgm";
    public const string FedProx = "fedprox";
    public const string FedAdam = "fedadam";
    public const string FedYogi = "fedyogi";
    public const string FedAdagrad = "fedadagrad";

    /// <summary>Example-weighted bagging of the sites' tree ensembles (tree-ensemble updates).</summary>
    public const string TreeBagging = "tree-bagging";

    /// <summary>One site's turn of cyclic boosting: the global model is the ensemble it extended (tree-ensemble updates).</summary>
    public const string TreeCyclic = "tree-cyclic";

    /// <summary>Coordinate-wise median (robust; buffers the round's updates).</summary>
    public const string Median = "median";

    /// <summary>Coordinate-wise trimmed mean (robust).</summary>
    public const string TrimmedMean = "trimmed-mean";

    /// <summary>Krum: the one update closest to its neighbours (robust).</summary>
    public const string Krum = "krum";

    /// <summary>Multi-Krum: the mean of the m updates with the best Krum scores (robust).</summary>
    public const string MultiKrum = "multi-krum";

    /// <summary>Geometric median by Weiszfeld iterations (robust).</summary>
    public const string GeometricMedian = "geomedian";

    /// <summary>The Byzantine-robust strategies (<see cref="RobustStrategy"/>).</summary>
    public static IReadOnlyList<string> Robust { get; } = [Median, TrimmedMean, Krum, MultiKrum, GeometricMedian];

    /// <summary>The strategies that aggregate float32 parameters (<see cref="IAggregationStrategy"/>; logistic regression).</summary>
    public static IReadOnlyList<string> All { get; } = [FedAvg, FedAvgM, FedProx, FedAdam, FedYogi, FedAdagrad, Median, TrimmedMean, Krum, MultiKrum, GeometricMedian];

    /// <summary>The strategies that aggregate tree ensembles (<see cref="ClinicalFed.Trees.ITreeAggregationStrategy"/>; model kind trees).</summary>
    public static IReadOnlyList<string> Trees { get; } = [TreeBagging, TreeCyclic];
}

/// <summary>How the mean of a round's updates weighs each site (option <c>weighting</c>).</summary>
public enum UpdateWeighting
{
    /// <summary>By <c>example_count</c> (FedAvg, McMahan et al. 2017). Written "examples".</summary>
    Examples,

    /// <summary>Every accepted site equally. Written "uniform".</summary>
    Uniform,
}

/// <summary>
/// Options of a strategy, as an immutable record. <see cref="Validate"/> lists every problem at once; strategies
/// validate their options when they are built (<see cref="EnsureValid"/>), so a bad value fails before any update is
/// read. In a round manifest the options are a flat JSON object (<see cref="ToDictionary"/>,
/// <see cref="StrategyFactory.ParseOptions"/>); keys starting with <see cref="ClientPrefix"/> belong to the sites.
/// </summary>
public abstract partial record StrategyOptions
{
    /// <summary>Manifest option keys with this prefix are for the sites' trainers; server strategies ignore them.</summary>
    public const string ClientPrefix = "client_";

    /// <summary>The strategy these options configure (a <see cref="StrategyNames"/> value).</summary>
    public abstract string StrategyName { get; }

    /// <summary>Option <c>weighting</c>: "examples" (default) or "uniform".</summary>
    public UpdateWeighting Weighting { get; init; } = UpdateWeighting.Examples;

    /// <summary>Every problem with these options (empty when valid), each naming the option key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!Enum.IsDefined(Weighting)) problems.Add($"'weighting' is {(int)Weighting}; expected examples or uniform");
        AddProblems(problems);
        AddScreeningProblems(problems);
        return problems;
    }

    /// <summary>Throws <see cref="StrategyOptionsException"/> listing every problem.</summary>
    public StrategyOptions EnsureValid()
    {
        var problems = Validate();
        if (problems.Count > 0) throw new StrategyOptionsException(StrategyName, problems);
        return this;
    }

    /// <summary>The options as manifest JSON values, keyed by their snake_case option names.</summary>
    public IReadOnlyDictionary<string, JsonElement> ToDictionary()
    {
        var values = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal)
        {
            ["weighting"] = JsonSerializer.SerializeToElement(Weighting == UpdateWeighting.Uniform ? "uniform" : "examples"),
        };
        foreach (var (key, value) in NumericOptions().Concat(ScreeningOptions())) values[key] = JsonSerializer.SerializeToElement(value);
        return values;
    }

    /// <summary>The strategy's numeric options (key, value), for <see cref="ToDictionary"/>.</summary>
    protected abstract IEnumerable<(string Key, double Value)> NumericOptions();

    /// <summary>Adds the problems of the strategy's own options.</summary>
    protected abstract void AddProblems(List<string> problems);

    protected static void RequireRange(List<string> problems, string key, double value, double min, double max, bool minOpen = false, bool maxOpen = false)
    {
        bool ok = double.IsFinite(value)
            && (minOpen ? value > min : value >= min)
            && (maxOpen ? value < max : value <= max);
        if (!ok)
        {
            string range = $"{(minOpen ? "(" : "[")}{F(min)}, {(double.IsPositiveInfinity(max) ? "∞" : F(max))}{(maxOpen ? ")" : "]")}";
            problems.Add($"'{key}' is {F(value)}; it must be in {range}");
        }
    }

    protected static void AddAdaptiveProblems(List<string> problems, double eta, double beta1, double? beta2, double tau)
    {
        RequireRange(problems, "server_learning_rate", eta, 0, double.PositiveInfinity, minOpen: true);
        RequireRange(problems, "beta1", beta1, 0, 1, maxOpen: true);
        if (beta2 is { } b2) RequireRange(problems, "beta2", b2, 0, 1, maxOpen: true);
        RequireRange(problems, "tau", tau, 0, double.PositiveInfinity, minOpen: true);
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    [GeneratedRegex("^[a-z][a-z0-9_]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPattern();

    internal static bool IsValidKey(string key) => KeyPattern().IsMatch(key);
}

/// <summary>FedAvg (McMahan et al. 2017): the new global model is the weighted mean of the sites' models.</summary>
public sealed record FedAvgOptions : StrategyOptions
{
    public override string StrategyName => StrategyNames.FedAvg;

    protected override IEnumerable<(string Key, double Value)> NumericOptions() => [];

    protected override void AddProblems(List<string> problems)
    {
    }
}

/// <summary>
/// FedProx (Li et al. 2020): sites add (μ/2)‖w − w_global‖² to their local loss; the server averages as FedAvg.
/// <see cref="ProximalMu"/> reaches the sites through the manifest option <c>proximal_mu</c>.
/// </summary>
public sealed record FedProxOptions : StrategyOptions
{
    public override string StrategyName => StrategyNames.FedProx;

    /// <summary>Option <c>proximal_mu</c> (μ ≥ 0, required; 0 is FedAvg).</summary>
    public required double ProximalMu { get; init; }

    protected override IEnumerable<(string Key, double Value)> NumericOptions() => [("proximal_mu", ProximalMu)];

    protected override void AddProblems(List<string> problems) =>
        RequireRange(problems, "proximal_mu", ProximalMu, 0, double.PositiveInfinity);
}

/// <summary>FedAvgM (Hsu et al. 2019): FedAvg with server momentum.</summary>
public sealed record FedAvgMOptions : StrategyOptions
{
    public override string StrategyName => StrategyNames.FedAvgM;

    /// <summary>Option <c>server_learning_rate</c> η (default 1).</summary>
    public double ServerLearningRate { get; init; } = 1.0;

    /// <summary>Option <c>server_momentum</c> β in [0, 1) (default 0.9).</summary>
    public double ServerMomentum { get; init; } = 0.9;

    protected override IEnumerable<(string Key, double Value)> NumericOptions() =>
        [("server_learning_rate", ServerLearningRate), ("server_momentum", ServerMomentum)];

    protected override void AddProblems(List<string> problems)
    {
        RequireRange(problems, "server_learning_rate", ServerLearningRate, 0, double.PositiveInfinity, minOpen: true);
        RequireRange(problems, "server_momentum", ServerMomentum, 0, 1, maxOpen: true);
    }
}

/// <summary>Options shared by the adaptive server optimizers of Reddi et al. 2021 ("Adaptive Federated
/// Optimization"): server learning rate η, first-moment decay β1 and adaptivity τ; v starts at τ².</summary>
public abstract record AdaptiveOptions : StrategyOptions
{
    /// <summary>Option <c>server_learning_rate</c> η.</summary>
    public double ServerLearningRate { get; init; } = 0.1;

    /// <summary>Option <c>beta1</c>, first-moment decay in [0, 1).</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Option <c>tau</c> τ &gt; 0, the adaptivity (larger is less adaptive).</summary>
    public double Tau { get; init; } = 1e-3;

    /// <summary>Option <c>beta2</c>, second-moment decay in [0, 1); null for FedAdagrad, which has none.</summary>
    public virtual double? SecondMomentDecay => null;

    protected override IEnumerable<(string Key, double Value)> NumericOptions() => SecondMomentDecay is { } b2
        ? [("server_learning_rate", ServerLearningRate), ("beta1", Beta1), ("beta2", b2), ("tau", Tau)]
        : [("server_learning_rate", ServerLearningRate), ("beta1", Beta1), ("tau", Tau)];

    protected override void AddProblems(List<string> problems) =>
        AddAdaptiveProblems(problems, ServerLearningRate, Beta1, SecondMomentDecay, Tau);
}

/// <summary>FedAdam and FedYogi: adaptive optimizers with a second moment.</summary>
public abstract record AdaptiveMomentOptions : AdaptiveOptions
{
    /// <summary>Option <c>beta2</c>, second-moment decay in [0, 1).</summary>
    public double Beta2 { get; init; } = 0.99;

    public override double? SecondMomentDecay => Beta2;
}

/// <summary>FedAdam (Reddi et al. 2021). Defaults: η 0.1, β1 0.9, β2 0.99, τ 1e-3; v starts at τ².</summary>
public sealed record FedAdamOptions : AdaptiveMomentOptions
{
    public override string StrategyName => StrategyNames.FedAdam;
}

/// <summary>FedYogi (Reddi et al. 2021). Defaults: η 0.01, β1 0.9, β2 0.99, τ 1e-3; v starts at τ².</summary>
public sealed record FedYogiOptions : AdaptiveMomentOptions
{
    public FedYogiOptions() => ServerLearningRate = 0.01;

    public override string StrategyName => StrategyNames.FedYogi;
}

/// <summary>FedAdagrad (Reddi et al. 2021). Defaults: η 0.1, β1 0 (no momentum), τ 1e-3; v starts at τ².</summary>
public sealed record FedAdagradOptions : AdaptiveOptions
{
    public FedAdagradOptions() => Beta1 = 0;

    public override string StrategyName => StrategyNames.FedAdagrad;
}

/// <summary>Options of the tree strategies: <c>weighting</c> only, which they read like the other strategies.</summary>
public abstract record TreeStrategyOptions : StrategyOptions
{
    protected sealed override IEnumerable<(string Key, double Value)> NumericOptions() => [];

    protected sealed override void AddProblems(List<string> problems)
    {
    }
}

/// <summary>
/// Tree bagging: every site uploads the ensemble it trained (a tree-ensemble update), and the new global model is
/// their average in log-odds, weighted by <c>example_count</c> (or uniformly): all the sites' trees, each weighted by
/// its site's share (<see cref="ClinicalFed.Trees.TreeBagging"/>).
/// </summary>
public sealed record TreeBaggingOptions : TreeStrategyOptions
{
    public override string StrategyName => StrategyNames.TreeBagging;
}

/// <summary>
/// Cyclic tree boosting, one site's turn per round: the round expects exactly one site, whose update is the whole
/// ensemble it grew on top of the round's global model, and that ensemble becomes the new global model. The update
/// must extend the global model (same base score and first trees). <c>weighting</c> is accepted but has no effect.
/// </summary>
public sealed record TreeCyclicOptions : TreeStrategyOptions
{
    public override string StrategyName => StrategyNames.TreeCyclic;
}

/// <summary>Reads a manifest's flat options object, collecting every problem (wrong types, unknown keys).</summary>
internal sealed class OptionReader(string strategy, IReadOnlyDictionary<string, JsonElement>? options)
{
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    public List<string> Problems { get; } = [];

    public double Number(string key, double fallback) => TryNumber(key) ?? fallback;

    /// <summary>A whole-number option (a JSON number without a fraction).</summary>
    public int Integer(string key, int fallback)
    {
        var value = TryNumber(key);
        if (value is null) return fallback;
        if (value != Math.Floor(value.Value) || Math.Abs(value.Value) > int.MaxValue)
        {
            Problems.Add($"'{key}' must be a whole number, not {value.Value.ToString(CultureInfo.InvariantCulture)}");
            return fallback;
        }
        return (int)value.Value;
    }

    public double? TryNumber(string key)
    {
        _known.Add(key);
        if (options is null || !options.TryGetValue(key, out var value)) return null;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double d) && double.IsFinite(d)) return d;
        Problems.Add($"'{key}' must be a finite JSON number, not {Describe(value)}");
        return null;
    }

    public UpdateWeighting Weighting()
    {
        _known.Add("weighting");
        if (options is null || !options.TryGetValue("weighting", out var value)) return UpdateWeighting.Examples;
        if (value.ValueKind == JsonValueKind.String)
        {
            switch (value.GetString())
            {
                case "examples": return UpdateWeighting.Examples;
                case "uniform": return UpdateWeighting.Uniform;
            }
        }

        Problems.Add($"'weighting' must be the string \"examples\" or \"uniform\", not {Describe(value)}");
        return UpdateWeighting.Examples;
    }

    /// <summary>Adds a problem for every key that is neither an option of the strategy nor a client_ option.</summary>
    public void RejectUnknownKeys()
    {
        if (options is null) return;
        foreach (var key in options.Keys.Order(StringComparer.Ordinal))
        {
            if (_known.Contains(key) || key.StartsWith(StrategyOptions.ClientPrefix, StringComparison.Ordinal)) continue;
            Problems.Add($"unknown option '{key}' for strategy '{strategy}' (known: {string.Join(", ", _known.Order(StringComparer.Ordinal))}; keys starting with '{StrategyOptions.ClientPrefix}' are passed to the sites)");
        }
    }

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{value.GetString()}\"",
        JsonValueKind.Number => $"the number {value.GetRawText()}",
        _ => $"a JSON {value.ValueKind.ToString().ToLowerInvariant()}",
    };
}
