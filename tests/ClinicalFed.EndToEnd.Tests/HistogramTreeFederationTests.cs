using Xunit.Abstractions;
using ClinicalFed.Cli.Simulation;

namespace ClinicalFed.EndToEnd.Tests;

/// <summary>
/// Histogram-based federated boosting on the real data: Diabetes 130 as three sites by admission source. With secure
/// aggregation, choosing every split on the sum of the sites' masked gradient histograms must give the centralized
/// model's quality at every site (the bins come from merged sketches, not from the pooled rows, so the trees are not
/// exactly the centralized ones; that masking changes no split is a unit test). With differential privacy it must stay
/// near it; and contribution scoring must find a site whose labels are shuffled.
/// </summary>
[Trait("Category", "RealData")]
public sealed class HistogramTreeFederationTests(ITestOutputHelper output)
{
    /// <summary>A histogram-mode simulation of ER, REF and OTH with <paramref name="configure"/>'s options (null without the data).</summary>
    private SimulationReport? RunOnDiabetes(Func<SimulationOptions, SimulationOptions> configure)
    {
        var data = SharedData.Find("diabetes130/diabetic_data.csv.gz", output.WriteLine);
        if (data is null) return null;
        var root = Directory.CreateTempSubdirectory("cf-histogram-").FullName;
        try
        {
            var report = SimulationRunner.Run(configure(new SimulationOptions
            {
                Task = "readmission", OutputDirectory = root, Model = "trees", TreeMode = "histogram",
                Sites = new[] { "ER", "REF", "OTH" }.Select(s => new SiteSource(s, data, s)).ToList(),
            }));
            foreach (var s in report.Sites)
                output.WriteLine($"{s.Name}: federated {s.Auroc.Federated:F4}, centralized {s.Auroc.Centralized:F4}, local {s.Auroc.Local:F4}");
            return report;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Secure_histogram_federation_on_Diabetes_130_is_within_0_005_of_centralized_trees_at_every_site()
    {
        if (RunOnDiabetes(o => o with { Rounds = 2, Trees = 60, SecureAggregation = true }) is not { } report) return;
        foreach (var s in report.Sites)
        {
            Assert.True(Math.Abs(s.Auroc.Federated!.Value - s.Auroc.Centralized!.Value) <= 0.005,
                $"{s.Name}: federated {s.Auroc.Federated:F4} vs centralized {s.Auroc.Centralized:F4}");
        }
        Assert.Equal("tree-histogram", report.Strategy);
        Assert.Equal(2, report.Rounds.Count);
        Assert.Equal(report.BytesUploaded.Total, report.Rounds.Sum(r => r.BytesUploaded));
        Assert.All(report.BytesUploaded.PerSite.Values, b => Assert.True(b > 0));
        Assert.Contains(report.Notes, n => n.Contains("masked in Z/2^64", StringComparison.Ordinal));
    }

    [Fact]
    public void Private_secure_histogram_federation_on_Diabetes_130_at_epsilon_8_stays_within_0_04_of_centralized_trees()
    {
        // Measured over four runs (20 trees, depth 4, 8 features per tree, 32 bins): the largest gap to centralized trees
        // of the same shape was 0.022 (REF). The noise comes from a cryptographic generator, so each run differs.
        if (RunOnDiabetes(o => o with { Rounds = 2, Trees = 20, SecureAggregation = true, DpEpsilon = 8 }) is not { } report) return;
        foreach (var s in report.Sites)
        {
            Assert.True(s.Auroc.Federated >= s.Auroc.Centralized - 0.04, $"{s.Name}: federated {s.Auroc.Federated:F4} vs centralized {s.Auroc.Centralized:F4}");
            Assert.True(s.Auroc.Federated > 0.6, $"{s.Name}: federated {s.Auroc.Federated:F4}");
        }
        var privacy = report.Privacy!;
        Assert.All(privacy.Sites, p =>
        {
            Assert.InRange(p.EpsilonSpent, 7.9, 8.0);
            Assert.Equal(2 + 20 * 5, p.Steps);
            Assert.True(p.Patients > 1000);
        });
        Assert.Contains("masked, noisy histograms", privacy.AggregatorView);
    }

    [Fact]
    public void In_histogram_trees_a_site_whose_labels_are_shuffled_ranks_last()
    {
        // Measured: clean, REF ranks first (Shapley 0.058 against 0.055 and 0.051); with its labels shuffled it ranks
        // last (−0.025 against 0.083 and 0.070).
        if (RunOnDiabetes(o => o with { Rounds = 1, Trees = 30, Contribution = "exact", Attacks = ["labelshuffle:REF"] }) is not { } report) return;
        var contribution = report.Contribution!;
        foreach (var c in contribution.Sites) output.WriteLine($"{c.Name}: Shapley {c.Shapley:F4}, leave-one-out {c.LeaveOneOut:F4}, rank {c.Rank}");
        Assert.Equal(3, contribution.Sites.Single(c => c.Name == "REF").Rank);
        Assert.True(contribution.Sites.Single(c => c.Name == "REF").Shapley < 0);
        Assert.Empty(report.Rejected); // honest arithmetic on wrong labels passes the histogram checks
    }
}
