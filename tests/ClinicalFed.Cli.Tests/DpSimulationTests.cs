using System.Text.Json;
using ClinicalFed.Federation;
using ClinicalFed.Storage;
using ClinicalFed.Testing;

namespace ClinicalFed.Cli.Tests;

/// <summary><c>simulate --dp-epsilon</c>: per-site DP-SGD with the patient as unit, accounted in report.json and the update headers.</summary>
[Collection(CliCollection.Name)]
public sealed class DpSimulationTests
{
    [Fact]
    public void Simulate_with_dp_epsilon_reports_each_sites_budget_and_headers_carry_the_spend()
    {
        using var tmp = new TempDir();
        var demo = tmp["demo"];
        var (exit, _, err) = Cli.Run("demo", "--out", demo, "--patients", "200", "--rounds", "1");
        Assert.True(exit == 0, err);
        string[] sites = ["academic_micu", "community"];
        var args = new List<string> { "simulate", "--task", "sepsis", "--rounds", "2", "--dp-epsilon", "2", "--dp-delta", "1e-5", "--dp-batch", "32", "--out", tmp["dp"] };
        foreach (var site in sites) args.AddRange(["--site", $"{site}={Path.Combine(demo, "cdm", site)}"]);
        (exit, _, err) = Cli.Run([.. args]);
        Assert.True(exit == 0, err);

        var json = File.ReadAllText(tmp["dp/report.json"]);
        var schema = MiniJsonSchema.Load(Path.Combine(FindRoot(), "schemas", "simulation-report.schema.json"));
        var errors = schema.Validate(json);
        Assert.True(errors.Count == 0, string.Join("\n", errors.Take(20)));
        using var doc = JsonDocument.Parse(json);
        var privacy = doc.RootElement.GetProperty("privacy");
        Assert.Equal("patient", privacy.GetProperty("unit").GetString());
        var list = privacy.GetProperty("sites").EnumerateArray().ToList();
        Assert.Equal(sites, list.Select(s => s.GetProperty("name").GetString()));
        foreach (var s in list)
        {
            double eps = s.GetProperty("epsilon_spent").GetDouble();
            Assert.InRange(eps, 1.9, 2.0); // calibrated to spend the budget over the planned rounds, never more
            Assert.Equal(1e-5, s.GetProperty("delta").GetDouble());
            Assert.True(s.GetProperty("patients").GetInt32() > 0);
            Assert.Equal(2, s.GetProperty("rounds").GetInt32());
        }

        Assert.Contains("Privacy", File.ReadAllText(tmp["dp/report.html"]));
        // The last round's update headers carry the spend, within the budget.
        foreach (var site in sites)
        {
            using var stream = File.OpenRead(Path.Combine(tmp["dp"], "store", StoreLayout.Update("simulation", 1, site)));
            var header = UpdateFile.ReadHeader(stream);
            Assert.NotNull(header.Privacy);
            Assert.True(header.Privacy!.EpsilonTotal <= 2 && header.Privacy.EpsilonTotal > header.Privacy.EpsilonRound);
        }
    }

    [Fact]
    public void Simulate_rejects_dp_with_trees_and_invalid_dp_options_at_once()
    {
        using var tmp = new TempDir();
        var site = tmp["site"];
        Directory.CreateDirectory(site);
        var (exit, _, err) = Cli.Run("simulate", "--task", "sepsis", "--model", "trees", "--site", $"A={site}", "--dp-epsilon", "-1", "--dp-delta", "2", "--out", tmp["x"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("--dp-epsilon", err);
        Assert.Contains("--dp-delta", err);
    }

    [Fact]
    public void Physionet_dp_suite_checks_the_gap_to_non_private_federated_and_the_budget()
    {
        static ClinicalFed.Cli.Simulation.SiteResult Site(string name, double federated) => new()
        {
            Name = name, Auroc = new() { Federated = federated }, Auprc = new(),
        };
        static ClinicalFed.Cli.Simulation.SitePrivacyReport Spent(string name, double eps) => new() { Name = name, EpsilonSpent = eps, Delta = 1e-5 };
        var report = new ClinicalFed.Cli.Simulation.SimulationReport
        {
            Task = "sepsis", Model = "logistic", Strategy = "fedavg", FeatureSpec = "x 1", Rounds = [], BytesUploaded = new(), Seconds = new Dictionary<string, double>(),
            Sites = [Site("A", 0.7700), Site("B", 0.7700)],
            Privacy = new() { Unit = "patient", Mechanisms = ["m"], AggregatorView = "v", Sites = [Spent("A", 2.99), Spent("B", 3.2)] },
        };
        var checks = ClinicalFed.Cli.Simulation.QualityBenchmark.Check("physionet-dp", report);
        Assert.Equal([true, true, false, false], checks.Select(c => c.Met)); // A: 0.770 ≥ 0.7827 − 0.02; B: 0.770 < 0.7987 − 0.02, and ε 3.2 > 3
        var options = ClinicalFed.Cli.Simulation.QualityBenchmark.Options("physionet-dp", "data", "out");
        Assert.Equal(3, options.DpEpsilon);
        Assert.Equal(1e-5, options.DpDelta);
        Assert.Empty(options.Validate());
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClinicalFed.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
