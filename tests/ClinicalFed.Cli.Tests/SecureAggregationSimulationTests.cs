using System.Text.Json;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Tests;

/// <summary><c>simulate --secure-aggregation</c>: the same federation with pairwise masking gives the plain run's models within the fixed-point error.</summary>
[Collection(CliCollection.Name)]
public sealed class SecureAggregationSimulationTests
{
    [Fact]
    public async Task Simulate_with_secure_aggregation_equals_the_plain_run_and_survives_a_dropout()
    {
        using var tmp = new TempDir();
        var demo = tmp["demo"];
        var (exit, _, err) = Cli.Run("demo", "--out", demo, "--patients", "150", "--rounds", "1");
        Assert.True(exit == 0, err);
        string[] sites = ["academic_micu", "community", "surgical_centre"];
        List<string> Args(string output, params string[] extra)
        {
            var a = new List<string> { "simulate", "--task", "sepsis", "--rounds", "3", "--baseline-epochs", "1", "--out", tmp[output] };
            foreach (var site in sites) a.AddRange(["--site", $"{site}={Path.Combine(demo, "cdm", site)}"]);
            a.AddRange(extra);
            return a;
        }
        (exit, _, err) = Cli.Run([.. Args("plain")]);
        Assert.True(exit == 0, err);
        (exit, _, err) = Cli.Run([.. Args("secure", "--secure-aggregation")]);
        Assert.True(exit == 0, err);

        for (int round = 0; round < 3; round++)
        {
            var plain = (await new LocalFolderStore(tmp["plain/store"]).GetGlobalModelAsync("simulation", round))!.Parameters.ToArray();
            var secure = (await new LocalFolderStore(tmp["secure/store"]).GetGlobalModelAsync("simulation", round))!.Parameters.ToArray();
            double scale = plain.Max(v => Math.Abs(v));
            for (int j = 0; j < plain.Length; j++) Assert.True(Math.Abs(plain[j] - secure[j]) <= 1e-4 * scale, $"round {round}, parameter {j}: {secure[j]} vs {plain[j]}");
        }
        // The secure store holds masked uploads only.
        var files = Directory.EnumerateFiles(tmp["secure/store"], "*", SearchOption.AllDirectories).ToList();
        Assert.DoesNotContain(files, f => f.EndsWith(".cfu", StringComparison.Ordinal));
        Assert.Contains(files, f => f.EndsWith(".cfm32", StringComparison.Ordinal));
        var reportJson = File.ReadAllText(tmp["secure/report.json"]);
        var schemaErrors = ClinicalFed.Testing.MiniJsonSchema.Load(Cli.SchemaPath("simulation-report.schema.json")).Validate(reportJson);
        Assert.True(schemaErrors.Count == 0, string.Join("\n", schemaErrors.Take(20)));
        using (var doc = JsonDocument.Parse(reportJson))
        {
            var seconds = doc.RootElement.GetProperty("seconds");
            Assert.True(seconds.GetProperty("secagg_site_masking").GetDouble() >= 0);
            Assert.True(seconds.GetProperty("total").GetDouble() > 0);
            Assert.Contains(doc.RootElement.GetProperty("notes").EnumerateArray(), n => n.GetString()!.Contains("only masked vectors", StringComparison.Ordinal));
        }

        // One of three sites drops after masking in the middle round: the round completes with the two survivors.
        (exit, _, err) = Cli.Run([.. Args("dropout", "--secure-aggregation", "--secagg-dropout", "1")]);
        Assert.True(exit == 0, err);
        var result = (await new LocalFolderStore(tmp["dropout/store"]).GetRoundResultAsync("simulation", 1))!;
        Assert.Equal(["surgical_centre"], result.Missing);
        Assert.Equal(2, result.Accepted.Count);
        Assert.Contains("dropped after masking", File.ReadAllText(tmp["dropout/report.json"]));
    }
}
