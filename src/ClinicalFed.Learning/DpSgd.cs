using System.Buffers.Binary;
using System.Security.Cryptography;
using ClinicalFed.Privacy;

namespace ClinicalFed.Learning;

/// <summary>
/// DP-SGD as an <see cref="IGradientProcessor"/> (Abadi et al. 2016), for Poisson sampling by patient: each unit's
/// gradient — with <see cref="SamplingUnit.Group"/> and <see cref="GroupGradient.MeanOfRows"/>, the mean of one patient's
/// rows' gradients — is clipped to L2 norm C; the batch sum gets N(0, σ²C²) noise on every coordinate from a
/// cryptographic generator; and the sum is divided by the <em>expected</em> batch size q·N, so that one patient changes
/// the step by at most C/(qN) whatever the batch's actual size. The privacy cost is accounted by
/// <see cref="ClinicalFed.Privacy.RdpAccountant"/> with the same q, σ and number of steps.
/// </summary>
public sealed class DpSgdGradientProcessor : IGradientProcessor
{
    private readonly L2NormClipper _clipper;
    private readonly SecureGaussian _gaussian;

    /// <param name="clipNorm">C, the per-patient clipping bound.</param>
    /// <param name="noiseMultiplier">σ: the noise standard deviation is σ·C.</param>
    /// <param name="gaussian">The noise source (cryptographic).</param>
    public DpSgdGradientProcessor(float clipNorm, double noiseMultiplier, SecureGaussian gaussian)
    {
        ArgumentNullException.ThrowIfNull(gaussian);
        if (!(noiseMultiplier >= 0) || !double.IsFinite(noiseMultiplier))
        {
            throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, "The noise multiplier must be a finite number ≥ 0.");
        }

        _clipper = new L2NormClipper(clipNorm);
        _gaussian = gaussian;
        NoiseMultiplier = noiseMultiplier;
    }

    public float ClipNorm => _clipper.MaxNorm;
    public double NoiseMultiplier { get; }

    /// <summary>Units (patients) processed so far.</summary>
    public long Units => _clipper.Units;

    /// <summary>Units whose gradient was clipped.</summary>
    public long ClippedUnits => _clipper.ClippedUnits;

    /// <summary>Batches noised so far.</summary>
    public long Batches { get; private set; }

    /// <inheritdoc />
    public void ProcessUnit(Span<float> unitGradient) => _clipper.ProcessUnit(unitGradient);

    /// <inheritdoc />
    public double ProcessBatchSum(Span<float> gradientSum, in GradientBatchContext context)
    {
        Batches++;
        double sd = NoiseMultiplier * ClipNorm;
        if (sd > 0)
        {
            for (int j = 0; j < gradientSum.Length; j++) gradientSum[j] += (float)(sd * _gaussian.Next());
        }

        return context.ExpectedUnits;
    }
}

/// <summary>How a site spends its budget each round: the sampling rate, steps per round and noise multiplier.</summary>
/// <param name="Patients">Patients (privacy units) in the site's training data.</param>
/// <param name="SamplingRate">q = expected patients per batch / patients.</param>
/// <param name="StepsPerRound">Steps of one round (steps per epoch × local epochs).</param>
/// <param name="NoiseMultiplier">σ: the settings' value, or calibrated so that the planned rounds spend exactly ε.</param>
public sealed record DpPlan(int Patients, double SamplingRate, long StepsPerRound, double NoiseMultiplier);

/// <summary>
/// One site's differential-privacy state across rounds: its name, its budget ledger, its cryptographic noise source,
/// and where the ledger is persisted (the site agent's work folder; null in <c>simulate</c>, which keeps it in memory).
/// </summary>
public sealed class SitePrivacy
{
    private readonly string? _ledgerPath;
    private (int Patients, int Batch, int Epochs, double Epsilon, double Delta, double? Sigma, int Rounds, DpPlan Plan)? _cached;

    public SitePrivacy(string site, PrivacyBudgetLedger ledger, RandomNumberGenerator rng, string? ledgerPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(site);
        ArgumentNullException.ThrowIfNull(ledger);
        Site = site;
        Ledger = ledger;
        Gaussian = new SecureGaussian(rng);
        _ledgerPath = ledgerPath;
    }

    /// <summary>The state of a site agent: the ledger in <paramref name="workDirectory"/> (created on first use) and the system's cryptographic generator.</summary>
    public static SitePrivacy ForWorkFolder(string site, string workDirectory, ClientTrainingSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.DpEpsilon is not { } eps) throw new ArgumentException("The training settings do not enable differential privacy.", nameof(settings));
        string path = Path.Combine(workDirectory, PrivacyBudgetLedger.FileName);
        return new SitePrivacy(site, PrivacyBudgetLedger.LoadOrCreate(path, eps, settings.DpDelta), RandomNumberGenerator.Create(), path);
    }

    public string Site { get; }
    public PrivacyBudgetLedger Ledger { get; }
    public SecureGaussian Gaussian { get; }

    /// <summary>The plan of this site for these settings and data (calibrating σ once).</summary>
    public DpPlan Plan(ClientTrainingSettings settings, FeatureMatrix data)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(data);
        var sampler = new MiniBatchSampler(data, SamplingUnit.Group, BatchSampling.Poisson, settings.BatchSize, 0);
        int patients = sampler.UnitCount;
        var key = (patients, settings.BatchSize, settings.LocalEpochs, settings.DpEpsilon ?? 0, settings.DpDelta, settings.DpNoiseMultiplier, settings.DpRounds);
        if (_cached is { } c && (c.Patients, c.Batch, c.Epochs, c.Epsilon, c.Delta, c.Sigma, c.Rounds) == key) return c.Plan;
        double q = sampler.SamplingRate;
        long stepsPerRound = (long)sampler.StepsPerEpoch * settings.LocalEpochs;
        double sigma = settings.DpNoiseMultiplier
                       ?? RdpAccountant.CalibrateNoiseMultiplier(Ledger.EpsilonBudget, Ledger.Delta, q, stepsPerRound * settings.DpRounds);
        var plan = new DpPlan(patients, q, stepsPerRound, sigma);
        _cached = (key.patients, key.BatchSize, key.LocalEpochs, key.Item4, key.DpDelta, key.DpNoiseMultiplier, key.DpRounds, plan);
        return plan;
    }

    /// <summary>Persists the ledger when the site keeps it in a file.</summary>
    internal void Saved()
    {
        if (_ledgerPath is not null) Ledger.Save(_ledgerPath);
    }
}
