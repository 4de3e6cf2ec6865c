using ClinicalFed.Privacy;

namespace ClinicalFed.Cli.Simulation;

/// <summary>The report's <c>privacy</c> section when site-level DP-FedAvg ran, alone or beside record-level DP-SGD.</summary>
internal static class SiteLevelPrivacy
{
    public static PrivacyReport? Merge(PrivacyReport? recordLevel, SiteDpAccountant? siteDp, IReadOnlyList<PreparedSite> sites, int rounds)
    {
        if (siteDp is null) return recordLevel;
        var o = siteDp.Options;
        var section = new SiteLevelPrivacyReport
        {
            Mode = o.Mode, ClipNorm = o.ClipNorm, NoiseMultiplier = o.NoiseMultiplier, Delta = o.Delta, SitesPerRound = sites.Count,
            EpsilonPerRound = siteDp.EpsilonPerRound.Select(e => Math.Round(e, 6)).ToList(), EpsilonTotal = Math.Round(siteDp.EpsilonTotal, 6),
        };
        string mechanism = $"{(o.Mode == SiteDpModes.Server ? "site-level DP-FedAvg, server-side clipping" : "site-level DP-FedAvg, client-side clipping")}: " +
            $"every site's update (its difference from the global model) clipped to L2 norm {o.ClipNorm}, sites weighed equally, and N(0, (z·C/n)²) noise with z = {o.NoiseMultiplier} " +
            "added to the mean on every parameter from a cryptographic generator; Rényi DP accounting of the subsampled Gaussian mechanism over rounds (q = sites asked / sites).";
        string view = o.Mode == SiteDpModes.Server
            ? "Each site's unclipped update (the aggregator clips it); the published global models are (ε, δ)-DP with respect to any one site's whole participation."
            : "Each site's update, already clipped by the site; the published global models are (ε, δ)-DP with respect to any one site's whole participation.";
        if (recordLevel is not null)
        {
            return recordLevel with
            {
                Mechanisms = [.. recordLevel.Mechanisms, mechanism],
                AggregatorView = recordLevel.AggregatorView + " " + view,
                SiteLevel = section,
            };
        }

        return new PrivacyReport
        {
            Unit = "site",
            Mechanisms = [mechanism],
            AggregatorView = view,
            Sites = sites.Select(s => new SitePrivacyReport
            {
                Name = s.Name, EpsilonSpent = section.EpsilonTotal, EpsilonBudget = o.TargetEpsilon, Delta = o.Delta, NoiseMultiplier = o.NoiseMultiplier,
                ClipNorm = o.ClipNorm, SamplingRate = 1, Steps = rounds, Rounds = rounds, Patients = 0,
            }).ToList(),
            Notes =
            [
                "Site-level DP protects a site's whole participation (all its patients at once), not one patient within it: with few sites the noise needed is large relative to the signal. " +
                "The local-only, centralized and personalized models are non-private references.",
            ],
            SiteLevel = section,
        };
    }
}
