using System.Text.Json.Serialization;

namespace ClinicalFed.Privacy;

/// <summary>Names of the privacy mechanisms an update or report can declare.</summary>
public static class PrivacyMechanisms
{
    /// <summary>DP-SGD at the site: Poisson sampling of patients, per-patient clipping, Gaussian noise; RDP accounting.</summary>
    public const string DpSgdPatient = "dp-sgd-patient-poisson-gaussian";

    /// <summary>Site-level DP-FedAvg: each site's update clipped, Gaussian noise added to the aggregate.</summary>
    public const string DpFedAvg = "dp-fedavg";

    /// <summary>Histogram-based boosting with patient-weighted, Gaussian-noised gradient histograms; RDP accounting.</summary>
    public const string HistogramGaussian = "dp-histogram-boosting-patient-gaussian";
}

/// <summary>
/// The optional <c>privacy</c> object of an update header: what the site's differentially private training cost
/// (schemas/update.schema.json). Absent when the site trained without DP.
/// </summary>
public sealed record UpdatePrivacy
{
    [JsonPropertyName("mechanism")] public required string Mechanism { get; init; }
    /// <summary>ε of this round's steps alone.</summary>
    [JsonPropertyName("epsilon_round")] public required double EpsilonRound { get; init; }
    /// <summary>ε of every round the site has trained so far, this one included (RDP composition).</summary>
    [JsonPropertyName("epsilon_total")] public required double EpsilonTotal { get; init; }
    [JsonPropertyName("delta")] public required double Delta { get; init; }
    [JsonPropertyName("noise_multiplier")] public required double NoiseMultiplier { get; init; }
    [JsonPropertyName("clip_norm")] public required double ClipNorm { get; init; }
    [JsonPropertyName("sampling_rate")] public required double SamplingRate { get; init; }
    /// <summary>Optimisation steps of this round.</summary>
    [JsonPropertyName("steps")] public required long Steps { get; init; }

    /// <summary>Every problem (empty when valid), each naming its field under <c>privacy</c>.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (string.IsNullOrWhiteSpace(Mechanism) || Mechanism.Length > 100) p.Add("'privacy.mechanism' must be 1 to 100 characters");
        Check(p, "epsilon_round", EpsilonRound, allowZero: true);
        Check(p, "epsilon_total", EpsilonTotal, allowZero: true);
        if (!(Delta > 0 && Delta < 1)) p.Add($"'privacy.delta' is {Delta}; expected a number in (0, 1)");
        Check(p, "noise_multiplier", NoiseMultiplier, allowZero: false);
        Check(p, "clip_norm", ClipNorm, allowZero: false);
        if (!(SamplingRate > 0 && SamplingRate <= 1)) p.Add($"'privacy.sampling_rate' is {SamplingRate}; expected a number in (0, 1]");
        if (Steps < 0) p.Add($"'privacy.steps' is {Steps}; it may not be negative");
        if (EpsilonTotal + 1e-9 < EpsilonRound) p.Add($"'privacy.epsilon_total' ({EpsilonTotal}) is less than 'privacy.epsilon_round' ({EpsilonRound})");
        return p;
    }

    private static void Check(List<string> p, string field, double v, bool allowZero)
    {
        if (!double.IsFinite(v) || v < 0 || (!allowZero && v == 0)) p.Add($"'privacy.{field}' is {v}; expected a finite number {(allowZero ? ">= 0" : "> 0")}");
    }
}
