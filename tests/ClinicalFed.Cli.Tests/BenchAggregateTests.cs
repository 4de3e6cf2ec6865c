using System.Text.Json;

namespace ClinicalFed.Cli.Tests;

[Collection(CliCollection.Name)]
public sealed class BenchAggregateTests
{
    [Fact]
    public void Bench_aggregate_prints_one_json_object_with_its_figures()
    {
        using var tmp = new TempDir();
        var (exit, output, err) = Cli.Run("bench", "aggregate", "--sites", "5", "--params", "20000", "--strategy", "fedavgm", "--repeat", "2", "--store", tmp["store"]);
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(output.Trim());
        var r = json.RootElement;
        Assert.Equal(5, r.GetProperty("sites").GetInt32());
        Assert.Equal(20000, r.GetProperty("params").GetInt32());
        Assert.Equal("fedavgm", r.GetProperty("strategy").GetString());
        Assert.True(r.GetProperty("bytes").GetInt64() > 5 * 20000 * 4);
        double aggregate = r.GetProperty("aggregate_s").GetDouble(), baseline = r.GetProperty("baseline_s").GetDouble();
        Assert.True(aggregate > 0 && baseline > 0);
        Assert.InRange(r.GetProperty("ratio").GetDouble() / (aggregate / baseline), 0.95, 1.05);
        Assert.True(r.GetProperty("peak_mb").GetDouble() > 0);
        Assert.True(r.GetProperty("managed_alloc_mb").GetDouble() > 0);
        Assert.Contains("working set", r.GetProperty("peak_kind").GetString());

        // The store given is kept, with the round closed by the last pass reset: updates stay, outputs do not.
        var federations = Directory.GetDirectories(Path.Combine(tmp["store"], "federations"));
        var round = Path.Combine(Assert.Single(federations), "rounds", "00000");
        Assert.Equal(5, Directory.GetFiles(Path.Combine(round, "updates"), "*.cfu").Length);
        Assert.False(File.Exists(Path.Combine(round, "global.cfm")));
    }

    [Fact]
    public void Bench_aggregate_uses_a_temporary_store_by_default_and_checks_its_options()
    {
        var before = Directory.GetDirectories(Path.GetTempPath(), "clinicalfed-bench-aggregate-*").Length;
        var (exit, output, _) = Cli.Run("bench", "aggregate", "--sites", "2", "--params", "100", "--repeat", "1");
        Assert.Equal(0, exit);
        Assert.Equal("fedavg", JsonDocument.Parse(output).RootElement.GetProperty("strategy").GetString());
        Assert.Equal(before, Directory.GetDirectories(Path.GetTempPath(), "clinicalfed-bench-aggregate-*").Length);

        var (bad, _, err) = Cli.Run("bench", "aggregate", "--sites", "0");
        Assert.Equal(2, bad);
        Assert.Contains("--sites", err);
        (bad, _, err) = Cli.Run("bench", "aggregate", "--strategy", "tree-bagging");
        Assert.Equal(2, bad);
        Assert.Contains("float32", err);
    }
}
