using System.Text.Json;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Tests;

/// <summary>
/// <c>simulate</c>'s federation experiments on the demo's synthetic hospitals: attacks with their comparison runs,
/// contribution scoring, regional aggregators, k-of-n and absent sites, and the asynchronous comparison; every
/// report validates against schemas/simulation-report.schema.json.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class FederationExperimentsSimulationTests
{
    private static readonly string[] Sites = ["academic_micu", "community", "surgical_centre", "rural"];

    private static (TempDir Tmp, Func<string, string[], List<string>> Args) Setup()
    {
        var tmp = new TempDir();
        var demo = tmp["demo"];
        var (exit, _, err) = Cli.Run("demo", "--out", demo, "--patients", "150", "--rounds", "1");
        Assert.True(exit == 0, err);
        return (tmp, (output, extra) =>
        {
            var a = new List<string> { "simulate", "--task", "sepsis", "--rounds", "3", "--baseline-epochs", "1", "--out", tmp[output] };
            foreach (var site in Sites) a.AddRange(["--site", $"{site}={Path.Combine(demo, "cdm", site)}"]);
            a.AddRange(extra);
            return a;
        });
    }

    private static JsonElement Report(TempDir tmp, string output)
    {
        var json = File.ReadAllText(tmp[output + "/report.json"]);
        var errors = ClinicalFed.Testing.MiniJsonSchema.Load(Cli.SchemaPath("simulation-report.schema.json")).Validate(json);
        Assert.True(errors.Count == 0, string.Join("\n", errors.Take(20)));
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    [Fact]
    public void A_sign_flipping_site_spoils_FedAvg_and_the_report_compares_the_clean_run_and_scores_contributions()
    {
        var (tmp, args) = Setup();
        using var _ = tmp;
        var (exit, _, err) = Cli.Run([.. args("attack", ["--attack", "signflip:community:4"])]);
        Assert.True(exit == 0, err);
        var report = Report(tmp, "attack");

        var runs = report.GetProperty("robustness").GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(["clean", "attacked"], runs.Select(r => r.GetProperty("name").GetString()));
        Assert.Equal(JsonValueKind.Null, runs[0].GetProperty("max_honest_drop_vs_clean").ValueKind);
        Assert.True(runs[1].GetProperty("max_honest_drop_vs_clean").GetDouble() > 0.05, runs[1].ToString());
        Assert.DoesNotContain("community", runs[1].GetProperty("honest_auroc").EnumerateObject().Select(p => p.Name));

        var contribution = report.GetProperty("contribution").GetProperty("sites").EnumerateArray()
            .ToDictionary(s => s.GetProperty("name").GetString()!, s => (Shapley: s.GetProperty("shapley").GetDouble(), Rank: s.GetProperty("rank").GetInt32()));
        // Ranks are a permutation; which site ranks last needs real data (the end-to-end test on PhysioNet checks it):
        // the demo's 150-patient hospitals have too few positives for a stable validation AUROC.
        Assert.Equal(Enumerable.Range(1, Sites.Length), contribution.Values.Select(c => c.Rank).Order());
        Assert.True(report.GetProperty("seconds").GetProperty("robustness_comparison").GetDouble() >= 0);
    }

    [Fact]
    public async Task Regions_forward_one_update_each_and_equal_flat_FedAvg()
    {
        var (tmp, args) = Setup();
        using var _ = tmp;
        var (exit, _, err) = Cli.Run([.. args("regions", ["--region", "north=academic_micu,community", "--region", "south=surgical_centre,rural"])]);
        Assert.True(exit == 0, err);
        var hierarchy = Report(tmp, "regions").GetProperty("hierarchy");
        Assert.True(hierarchy.GetProperty("max_abs_diff_vs_flat").GetDouble() <= 1e-6, hierarchy.ToString());

        var store = new LocalFolderStore(tmp["regions/store"]);
        var result = (await store.GetRoundResultAsync("simulation", 2))!;
        Assert.Equal(["north", "south"], result.Accepted.Select(a => a.Site));
        var north = (await store.GetRoundResultAsync("simulation-region-north", 2))!;
        Assert.Equal(["academic_micu", "community"], north.Accepted.Select(a => a.Site));
        Assert.Equal(north.ExampleCount, result.Accepted[0].ExampleCount); // example weights carried up
    }

    [Fact]
    public async Task Partial_participation_absent_sites_and_the_asynchronous_comparison()
    {
        var (tmp, args) = Setup();
        using var _ = tmp;
        var (exit, _, err) = Cli.Run([.. args("partial", ["--participation", "3", "--absent", "rural:2-3", "--contribution", "sampled",
            "--async-buffer", "2", "--slow", "academic_micu:4"])]);
        Assert.True(exit == 0, err);
        var report = Report(tmp, "partial");
        var store = new LocalFolderStore(tmp["partial/store"]);
        for (int r = 0; r < 3; r++)
        {
            var manifest = (await store.GetManifestAsync("simulation", r))!;
            Assert.Equal(3, manifest.Sites.Count);
            if (r > 0) Assert.DoesNotContain("rural", manifest.Sites);
        }

        var async = report.GetProperty("async");
        Assert.Equal(2, async.GetProperty("buffer_size").GetInt32());
        var siteSeconds = async.GetProperty("site_round_seconds");
        Assert.True(siteSeconds.GetProperty("academic_micu").GetDouble() > 0);
        Assert.NotEmpty(async.GetProperty("synchronous").GetProperty("timeline").EnumerateArray());
        Assert.NotEmpty(async.GetProperty("asynchronous").GetProperty("timeline").EnumerateArray());
        Assert.StartsWith("Monte-Carlo", report.GetProperty("contribution").GetProperty("method").GetString());
    }

    [Fact]
    public async Task A_robust_strategy_with_a_norm_bound_rejects_the_boosted_site_and_compressed_updates_are_counted()
    {
        var (tmp, args) = Setup();
        using var _ = tmp;
        var (exit, _, err) = Cli.Run([.. args("robust", ["--strategy", "median", "--strategy-option", "max_update_norm=20", "--attack", "scale:community:1000",
            "--compress", "topk:0.1", "--contribution", "off"])]);
        Assert.True(exit == 0, err);
        var report = Report(tmp, "robust");
        Assert.Equal("median", report.GetProperty("strategy").GetString());

        // The boosted site is rejected every round, with the reason, in the report and in the round's result.
        var rejected = report.GetProperty("rejected").EnumerateArray().ToList();
        Assert.Equal(3, rejected.Count);
        Assert.All(rejected, r => Assert.Equal("community", r.GetProperty("site").GetString()));
        Assert.Contains("exceeds max_update_norm 20", rejected[0].GetProperty("reason").GetString());
        var result = (await new LocalFolderStore(tmp["robust/store"]).GetRoundResultAsync("simulation", 2))!;
        Assert.Equal(["community"], result.Rejected.Select(r => r.Site));
        var runs = report.GetProperty("robustness").GetProperty("runs").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        Assert.Equal(["attacked", "clean", "fedavg-attacked"], runs.Keys.Order());
        Assert.Equal(0, runs["fedavg-attacked"].GetProperty("rejected").GetInt32()); // plain FedAvg has no norm bound

        // Round 0 dense at 8 bits (the warm-up), then top-10 % (indices and values), then dense at 4 bits:
        // (0.26 + ~0.13 + ~0.13) / 3 of float32.
        var compression = report.GetProperty("compression");
        Assert.Equal("topk:0.1", compression.GetProperty("encoding").GetString());
        Assert.Equal("int4", compression.GetProperty("final_round_encoding").GetString());
        Assert.InRange(compression.GetProperty("payload_ratio").GetDouble(), 0.10, 0.19);
        var rounds = compression.GetProperty("rounds").EnumerateArray().ToList();
        Assert.Equal(["int8", "topk", "int4"], rounds.Select(r => r.GetProperty("encoding").GetString()));
        Assert.Equal(compression.GetProperty("payload_bytes").GetInt64(), rounds.Sum(r => r.GetProperty("payload_bytes").GetInt64()));
        Assert.All(rounds, r => Assert.InRange(r.GetProperty("uncompressed_mean_auroc").GetDouble(), 0.5, 1));
        Assert.True(compression.GetProperty("file_bytes").GetInt64() < compression.GetProperty("uncompressed_file_bytes").GetInt64());
        var update = await new LocalFolderStore(tmp["robust/store"]).OpenUpdateAsync("simulation", 1, "academic_micu"); // round 0 is the dense warm-up
        await using (update!)
        {
            var header = ClinicalFed.Federation.UpdateFile.ReadHeader(update!);
            Assert.Equal(("topk", "delta"), (header.PayloadEncoding, header.ParameterKind));
        }
        var last = await new LocalFolderStore(tmp["robust/store"]).OpenUpdateAsync("simulation", 2, "academic_micu");
        await using (last!) Assert.Equal("int4", ClinicalFed.Federation.UpdateFile.ReadHeader(last!).PayloadEncoding);
    }

    [Theory]
    [InlineData("server")]
    [InlineData("client")]
    public async Task Site_level_DP_FedAvg_clips_adds_noise_and_accounts_in_the_privacy_section(string mode)
    {
        var (tmp, args) = Setup();
        using var _ = tmp;
        var (exit, _, err) = Cli.Run([.. args("sitedp", ["--dp-site-clip", "0.5", "--dp-site-noise", "0.8", "--dp-site-mode", mode, "--contribution", "off"])]);
        Assert.True(exit == 0, err);
        var privacy = Report(tmp, "sitedp").GetProperty("privacy");
        Assert.Equal("site", privacy.GetProperty("unit").GetString());
        var site = privacy.GetProperty("site_level");
        Assert.Equal(mode, site.GetProperty("mode").GetString());
        var perRound = site.GetProperty("epsilon_per_round").EnumerateArray().Select(e => e.GetDouble()).ToList();
        Assert.Equal(3, perRound.Count);
        Assert.True(perRound[0] < perRound[1] && perRound[1] < perRound[2], string.Join(", ", perRound)); // composition over rounds
        Assert.Equal(ClinicalFed.Privacy.RdpAccountant.Epsilon(1.0, 0.8, 3, 1e-5), site.GetProperty("epsilon_total").GetDouble(), 5);
        Assert.Equal(Sites.Length, privacy.GetProperty("sites").GetArrayLength());

        // Uniform weighting went into the manifest; in client mode the sites' uploads are already within the bound.
        var store = new LocalFolderStore(tmp["sitedp/store"]);
        var manifest = (await store.GetManifestAsync("simulation", 1))!;
        Assert.Equal("uniform", manifest.Strategy.Options["weighting"].GetString());
        var result = (await store.GetRoundResultAsync("simulation", 1))!;
        if (mode == "client") Assert.All(result.Accepted, a => Assert.True(a.UpdateNorm <= 0.5 + 1e-4, $"{a.Site}: {a.UpdateNorm}"));
    }

    [Fact]
    public async Task Site_level_DP_with_secure_aggregation_adds_distributed_noise_and_accounts_the_dropout()
    {
        var (tmp, args) = Setup();
        using var _ = tmp;
        var refused = Cli.Run([.. args("server", ["--dp-site-clip", "0.5", "--secure-aggregation", "--contribution", "off"])]);
        Assert.NotEqual(0, refused.Exit);
        Assert.Contains("needs --dp-site-mode client", refused.Err);

        // Three rounds; in the middle one the last site drops after masking, so only n − 1 noise shares reach the sum.
        var (exit, _, err) = Cli.Run([.. args("securedp", ["--dp-site-clip", "0.5", "--dp-site-noise", "0.8", "--dp-site-mode", "client", "--secure-aggregation", "--secagg-dropout", "1", "--contribution", "off"])]);
        Assert.True(exit == 0, err);
        var site = Report(tmp, "securedp").GetProperty("privacy").GetProperty("site_level");
        int n = Sites.Length;
        var expected = new ClinicalFed.Privacy.SiteDpAccountant(new ClinicalFed.Privacy.SiteDpOptions { ClipNorm = 0.5, NoiseMultiplier = 0.8, Mode = "client" }, n);
        expected.Spend(n, 0.8);
        expected.Spend(n, 0.8 * Math.Sqrt((n - 1.0) / n));
        expected.Spend(n, 0.8);
        Assert.Equal(expected.EpsilonTotal, site.GetProperty("epsilon_total").GetDouble(), 5);
        Assert.Empty(Directory.EnumerateFiles(tmp["securedp/store"], "*.cfu", SearchOption.AllDirectories)); // masked uploads only
        var global = (await new LocalFolderStore(tmp["securedp/store"]).GetGlobalModelAsync("simulation", 2))!;
        Assert.True(global.Parameters.ToArray().All(float.IsFinite));
    }

    [Fact]
    public void Bad_experiment_options_are_all_reported_at_once()
    {
        var (tmp, args) = Setup();
        using var _ = tmp;
        var (exit, _, err) = Cli.Run([.. args("bad", ["--attack", "bogus:community", "--attack", "scale:nowhere", "--participation", "9",
            "--region", "north=academic_micu", "--absent", "rural:x", "--slow", "rural:0.5", "--compress", "zip", "--strategy-option", "trim=1"])]);
        Assert.NotEqual(0, exit);
        foreach (var expected in new[] { "unknown kind 'bogus'", "no site named 'nowhere'", "--participation: 9", "site 'community' is in no region", "--absent rural:x", "--slow rural:0.5",
                     "--compress zip", "--strategy-option: unknown option 'trim'" })
            Assert.Contains(expected, err);
    }
}
