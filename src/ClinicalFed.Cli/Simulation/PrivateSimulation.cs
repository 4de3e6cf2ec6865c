using System.Security.Cryptography;
using ClinicalFed.Learning;
using ClinicalFed.Privacy;

namespace ClinicalFed.Cli.Simulation;

/// <summary>
/// Record-level DP-SGD in <c>simulate</c>: the sites' DP settings travel in the manifest's <c>client_dp_</c> options (as
/// in a serverless federation), each site keeps its budget ledger in memory and trains through
/// <see cref="ClientTraining.TrainRoundPrivately"/>, the same code as the site agent.
/// </summary>
internal sealed class PrivateSimulation
{
    private readonly SitePrivacy[]? _sites;
    private readonly DpPlan?[] _plans;

    public PrivateSimulation(SimulationOptions o, IReadOnlyList<PreparedSite> sites, ClientTrainingSettings client)
    {
        Enabled = client.DifferentiallyPrivate;
        _plans = new DpPlan?[sites.Count];
        if (!Enabled) return;
        _sites = sites.Select(s => new SitePrivacy(s.Name, new PrivacyBudgetLedger(client.DpEpsilon!.Value, client.DpDelta), RandomNumberGenerator.Create())).ToArray();
    }

    public bool Enabled { get; }

    /// <summary>The training settings with the DP options of <paramref name="o"/> (unchanged without --dp-epsilon).</summary>
    public static ClientTrainingSettings Settings(SimulationOptions o, ClientTrainingSettings plain) => o.DpEpsilon is not { } eps ? plain : plain with
    {
        DpEpsilon = eps, DpDelta = o.DpDelta, DpClipNorm = o.DpClipNorm, DpRounds = o.Rounds, DpNoiseMultiplier = o.DpNoiseMultiplier,
        BatchSize = o.DpBatchSize, DpPatientGradient = o.DpPatientGradient,
    };

    /// <summary>The matrix a site trains on: grouped by patient under DP (the privacy unit).</summary>
    public FeatureMatrix Matrix(PreparedSite s) => Enabled
        ? ClientTraining.GroupedMatrix(s.TrainX, s.Width, s.TrainY, s.TrainPatients)
        : new FeatureMatrix(s.TrainX, s.Width, s.TrainY);

    /// <summary>One site's round: plain or DP-SGD; the privacy object goes in the update header.</summary>
    public (ProximalSgdResult Result, UpdatePrivacy? Privacy) Train(FeatureMatrix data, LinearWeights? global, ClientTrainingSettings client, int round, int siteIndex)
    {
        if (_sites is null) return (ClientTraining.TrainRound(data, global, client, round, siteIndex), null);
        _plans[siteIndex] = _sites[siteIndex].Plan(client, data);
        var (result, privacy) = ClientTraining.TrainRoundPrivately(data, global, client, round, siteIndex, _sites[siteIndex]);
        return (result, privacy);
    }

    /// <summary>The report's <c>privacy</c> section (null without DP).</summary>
    public PrivacyReport? Report(ClientTrainingSettings client)
    {
        if (_sites is null) return null;
        return new PrivacyReport
        {
            Unit = "patient",
            Mechanisms =
            [
                $"{PrivacyMechanisms.DpSgdPatient}: at each site, DP-SGD logistic regression with Poisson sampling of patients (expected {client.BatchSize} per batch), " +
                $"each patient's gradient (the {client.DpPatientGradient} of its rows' gradients) clipped to L2 norm {client.DpClipNorm}, Gaussian noise of standard deviation σ·C on every batch sum " +
                "from a cryptographic generator, division by the expected batch size; Rényi DP accounting of the subsampled Gaussian mechanism (Mironov et al. 2019), " +
                "composed over every step of every round and converted to (ε, δ) as Balle et al. 2020.",
            ],
            AggregatorView = "The aggregator sees each site's model parameters after every round; they are (ε, δ)-differentially private with respect to any one patient " +
                "of that site (all of the patient's rows together) at the ε listed per site, so anything it or anyone reading the store computes from them is too.",
            Sites = _sites.Select((s, i) => new SitePrivacyReport
            {
                Name = s.Site, EpsilonSpent = Math.Round(s.Ledger.EpsilonSpent, 6), EpsilonBudget = s.Ledger.EpsilonBudget, Delta = s.Ledger.Delta,
                NoiseMultiplier = Math.Round(_plans[i]?.NoiseMultiplier ?? 0, 6), ClipNorm = client.DpClipNorm, SamplingRate = Math.Round(_plans[i]?.SamplingRate ?? 0, 8),
                Steps = s.Ledger.Steps, Rounds = s.Ledger.Rounds, Patients = _plans[i]?.Patients ?? 0,
            }).ToList(),
            Notes =
            [
                "The local-only, centralized and personalized models are non-private references: they are trained without DP and never leave the simulation; only the federated model is private.",
                "The federated statistics agreed before training (imputation medians, standardization means and standard deviations) are shared aggregates outside this guarantee.",
            ],
        };
    }
}
