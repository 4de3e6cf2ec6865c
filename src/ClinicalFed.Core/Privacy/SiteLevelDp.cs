using System.Numerics.Tensors;
using ClinicalFed.Federation;

namespace ClinicalFed.Privacy;

/// <summary>Where the site-level clipping of DP-FedAvg happens (the aggregator always adds the noise).</summary>
public static class SiteDpModes
{
    /// <summary>The aggregator clips every update (Flower's DifferentialPrivacyServerSideFixedClipping): it must be trusted with the unclipped updates.</summary>
    public const string Server = "server";

    /// <summary>Each site clips its own update before upload (DifferentialPrivacyClientSideFixedClipping); the aggregator checks the bound and adds the noise.</summary>
    public const string Client = "client";
}

/// <summary>Options of site-level DP-FedAvg (McMahan et al. 2018), validated with every problem reported at once.</summary>
public sealed record SiteDpOptions
{
    /// <summary>C: the L2 bound of each site's update (its difference from the global model).</summary>
    public double ClipNorm { get; init; } = 1.0;

    /// <summary>z: the noise's standard deviation on the mean is z·C / n, n the sites in the round.</summary>
    public double NoiseMultiplier { get; init; } = 1.0;

    public double Delta { get; init; } = 1e-5;

    public string Mode { get; init; } = SiteDpModes.Server;

    /// <summary>When set, a round that would take the site-level ε above it is refused before anything is aggregated.</summary>
    public double? TargetEpsilon { get; init; }

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (!(ClipNorm > 0) || !double.IsFinite(ClipNorm)) e.Add($"clip_norm: {ClipNorm} (expected a positive number)");
        if (!(NoiseMultiplier > 0) || !double.IsFinite(NoiseMultiplier)) e.Add($"noise_multiplier: {NoiseMultiplier} (expected a positive number)");
        if (!(Delta > 0 && Delta < 1)) e.Add($"delta: {Delta} (expected a number in (0, 1))");
        if (Mode is not (SiteDpModes.Server or SiteDpModes.Client)) e.Add($"mode: '{Mode}' (expected server or client)");
        if (TargetEpsilon is { } t && (!(t > 0) || !double.IsFinite(t))) e.Add($"target_epsilon: {t} (expected a positive number)");
        return e;
    }
}

/// <summary>The pure arithmetic of site-level DP-FedAvg.</summary>
public static class SiteLevelDpMath
{
    /// <summary>Scales <paramref name="delta"/> in place to L2 norm at most <paramref name="clipNorm"/>; returns the factor applied (1 when within).</summary>
    public static float ClipToNorm(Span<float> delta, double clipNorm)
    {
        if (!(clipNorm > 0)) throw new ArgumentOutOfRangeException(nameof(clipNorm), clipNorm, "must be positive");
        double norm = AggregationMath.L2Norm(delta);
        if (!double.IsFinite(norm)) throw new ArgumentException("the delta holds NaN or infinite values", nameof(delta));
        if (norm <= clipNorm) return 1f;
        float scale = (float)(clipNorm / norm);
        TensorPrimitives.Multiply(delta, scale, delta);
        return scale;
    }

    /// <summary>Adds N(0, std²) to every value, drawn from <paramref name="gaussian"/>.</summary>
    public static void AddGaussianNoise(Span<float> values, double std, SecureGaussian gaussian)
    {
        ArgumentNullException.ThrowIfNull(gaussian);
        if (!(std >= 0) || !double.IsFinite(std)) throw new ArgumentOutOfRangeException(nameof(std), std, "must be finite and not negative");
        for (int i = 0; i < values.Length; i++) values[i] += (float)(std * gaussian.Next());
    }

    /// <summary>
    /// Distributed noise (site-level DP with secure aggregation): each of the <paramref name="sites"/> sites adds
    /// N(0, (z·C/√n)²) to its clipped update, so that the sum of all n carries N(0, (z·C)²), the central mechanism's noise.
    /// </summary>
    public static double SiteNoiseStd(SiteDpOptions options, int sites) => options.NoiseMultiplier * options.ClipNorm / Math.Sqrt(Math.Max(1, sites));

    /// <summary>The effective noise multiplier when only <paramref name="survivors"/> of <paramref name="sites"/> sites' noise shares reach the sum: z·√(s/n).</summary>
    public static double DistributedNoiseMultiplier(SiteDpOptions options, int survivors, int sites) =>
        options.NoiseMultiplier * Math.Sqrt(Math.Clamp((double)survivors / Math.Max(1, sites), 0, 1));

    /// <summary>The noise standard deviation on the mean of <paramref name="sites"/> clipped updates: z·C / n.</summary>
    public static double NoiseStd(SiteDpOptions options, int sites) => options.NoiseMultiplier * options.ClipNorm / Math.Max(1, sites);
}

/// <summary>
/// The site-level privacy account of a federation: each round is one subsampled Gaussian mechanism with sampling rate
/// q = sites in the round / sites in the federation and noise multiplier z, composed by <see cref="RdpAccountant"/>.
/// </summary>
public sealed class SiteDpAccountant(SiteDpOptions options, int federationSites)
{
    private readonly List<(double Q, double Epsilon)> _rounds = [];
    private readonly double[] _rdp = new double[RdpAccountant.DefaultOrders.Count];

    public SiteDpOptions Options { get; } = options;

    /// <summary>ε after each round so far.</summary>
    public IReadOnlyList<double> EpsilonPerRound => _rounds.Select(r => r.Epsilon).ToList();

    public double EpsilonTotal => _rounds.Count == 0 ? 0 : _rounds[^1].Epsilon;

    /// <summary>ε if one more round with <paramref name="sites"/> sites were spent.</summary>
    public double Projected(int sites) => Guarantee(Add(_rdp, Rate(sites)));

    /// <summary>Throws <see cref="PrivacyBudgetExceededException"/> when the next round would exceed the target ε.</summary>
    public void EnsureCanSpend(int sites)
    {
        if (Options.TargetEpsilon is { } target && Projected(sites) > target + 1e-12)
            throw new PrivacyBudgetExceededException($"site-level DP: another round with {sites} site(s) would spend ε = {Projected(sites):F4}, above the target {target}");
    }

    /// <summary>Records a round with <paramref name="sites"/> sites and returns ε after it.</summary>
    public double Spend(int sites) => Spend(sites, Options.NoiseMultiplier);

    /// <summary>
    /// Records a round whose noise on the sum had multiplier <paramref name="noiseMultiplier"/> (distributed noise: the
    /// survivors' shares only, z·√(survivors / sites)) and returns ε after it.
    /// </summary>
    public double Spend(int sites, double noiseMultiplier)
    {
        double q = Rate(sites);
        var next = Add(_rdp, q, noiseMultiplier);
        next.CopyTo(_rdp, 0);
        double epsilon = Guarantee(_rdp);
        _rounds.Add((q, epsilon));
        return epsilon;
    }

    private double Rate(int sites) => Math.Clamp((double)sites / Math.Max(1, federationSites), 0, 1);

    private double[] Add(double[] rdp, double q) => Add(rdp, q, Options.NoiseMultiplier);

    private static double[] Add(double[] rdp, double q, double noiseMultiplier)
    {
        var step = RdpAccountant.Rdp(q, noiseMultiplier, 1);
        return rdp.Zip(step, (a, b) => a + b).ToArray();
    }

    private double Guarantee(double[] rdp) => RdpAccountant.ToEpsilon(RdpAccountant.DefaultOrders, rdp, Options.Delta).Epsilon;
}

/// <summary>
/// Site-level DP-FedAvg around any float32 strategy (a decorator; the inner strategy must weigh sites uniformly, as
/// DP-FedAvg's sensitivity bound assumes). Server mode clips every update's difference from the global model to C
/// before the inner strategy sees it; client mode checks that the sites clipped it themselves (a longer update is
/// rejected). At <see cref="Finish"/> the new global model gets N(0, (z·C/n)²) noise on every coordinate, from a
/// cryptographic generator, and the round is charged to the <see cref="SiteDpAccountant"/>.
/// </summary>
public sealed class SiteLevelDpStrategy : IAggregationStrategy, IReportsRoundNotes
{
    private readonly IAggregationStrategy _inner;
    private readonly SiteDpAccountant _accountant;
    private readonly SecureGaussian _gaussian;
    private float[]? _global;
    private int _sampled;

    public SiteLevelDpStrategy(IAggregationStrategy inner, SiteDpAccountant accountant, SecureGaussian gaussian)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(accountant);
        ArgumentNullException.ThrowIfNull(gaussian);
        var problems = accountant.Options.Validate().ToList();
        if (inner.Options.Weighting != UpdateWeighting.Uniform)
            problems.Add($"strategy '{inner.Name}' weighs sites by examples; site-level DP-FedAvg needs weighting=uniform (its sensitivity is C/n)");
        if (problems.Count > 0) throw new ArgumentException("site-level DP: " + string.Join("; ", problems));
        _inner = inner;
        _accountant = accountant;
        _gaussian = gaussian;
    }

    public string Name => _inner.Name;

    public StrategyOptions Options => _inner.Options;

    public int AcceptedCount => _inner.AcceptedCount;

    public IReadOnlyList<string> RoundNotes { get; private set; } = [];

    /// <summary>The noise standard deviation the last <see cref="Finish"/> added.</summary>
    public double LastNoiseStd { get; private set; }

    public void RestoreState(ServerState state) => _inner.RestoreState(state);

    public ServerState? CaptureState() => _inner.CaptureState();

    public void Begin(ModelFile? global, RoundManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        _accountant.EnsureCanSpend(manifest.Sites.Count);
        _inner.Begin(global, manifest);
        _sampled = manifest.Sites.Count;
        _global = global is null ? new float[manifest.Model.Dimension] : global.Parameters.ToArray();
    }

    public void Accumulate(UpdateHeader header, ReadOnlySpan<float> parameters)
    {
        var global = _global ?? throw new InvalidOperationException("Accumulate needs an open round: call Begin first");
        if (parameters.Length != global.Length)
        {
            _inner.Accumulate(header, parameters); // the inner strategy rejects it with its reasons
            return;
        }

        var delta = parameters.ToArray();
        if (header.ParameterKind != ParameterKinds.Delta) TensorPrimitives.Subtract(delta, global, delta);
        if (!TensorPrimitives.IsFiniteAll(delta))
        {
            _inner.Accumulate(header, parameters);
            return;
        }

        if (_accountant.Options.Mode == SiteDpModes.Client)
        {
            double norm = AggregationMath.L2Norm(delta);
            if (norm > _accountant.Options.ClipNorm * (1 + 1e-5))
                throw new UpdateRejectedException(header.Site, [$"site-level DP (client clipping): the update's L2 norm {norm:G4} exceeds the clip norm {_accountant.Options.ClipNorm:G4} the sites must clip to"]);
        }
        else
        {
            SiteLevelDpMath.ClipToNorm(delta, _accountant.Options.ClipNorm);
        }

        _inner.Accumulate(header with { ParameterKind = ParameterKinds.Delta }, delta);
    }

    public float[] Finish()
    {
        int n = _inner.AcceptedCount;
        var result = _inner.Finish();
        LastNoiseStd = SiteLevelDpMath.NoiseStd(_accountant.Options, n);
        SiteLevelDpMath.AddGaussianNoise(result, LastNoiseStd, _gaussian);
        double epsilon = _accountant.Spend(_sampled); // the sampling rate counts the sites asked, whether or not they answered
        var o = _accountant.Options;
        RoundNotes =
        [
            string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"site-level DP-FedAvg ({o.Mode} clipping to C = {o.ClipNorm:G4}, z = {o.NoiseMultiplier:G4}): Gaussian noise σ = {LastNoiseStd:G4} on the mean of {n} site(s); the federation's site-level ε = {epsilon:F4} (δ = {o.Delta:G3}) after {_accountant.EpsilonPerRound.Count} round(s)"),
        ];
        return result;
    }
}
