using System.Text.Json;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Tests.Site;

/// <summary>The administration verbs against a local folder store.</summary>
[Collection(CliCollection.Name)]
public sealed class FederationCommandTests
{
    [Fact]
    public async Task Create_register_tick_status_and_withdraw()
    {
        using var tmp = new TempDir();
        var store = tmp["store"];
        var create = Cli.Run("federation", "create", "--store", store, "--federation", "study", "--task", "readmission", "--rounds", "3",
            "--quorum", "2", "--round-seconds", "600", "--epochs", "2", "--strategy", "fedprox", "--mu", "0.1");
        Assert.True(create.Exit == 0, create.Err);
        var config = (await new LocalFolderStore(store).GetFederationAsync("study"))!.Value.Config;
        Assert.Equal(("fedprox", 3, 2, 600), (config.Strategy.Name, config.Rounds, config.Quorum, config.RoundSeconds));
        Assert.Equal(2, config.Strategy.Options["client_local_epochs"].GetInt32());
        Assert.Equal(0.1, config.Strategy.Options["proximal_mu"].GetDouble());

        var invalid = Cli.Run("federation", "create", "--store", store, "--federation", "a/b", "--task", "sepsiz", "--rounds", "0");
        Assert.Equal(2, invalid.Exit);
        Assert.Contains("--task: 'sepsiz'", invalid.Err); // every problem at once
        Assert.Contains("'federation' 'a/b' is not valid", invalid.Err);
        Assert.Contains("'rounds' is 0", invalid.Err);

        // Privacy switches: secure aggregation, and site-level DP (which sets uniform weighting); together only with
        // client clipping (the sites clip and add their share of the noise before masking).
        Assert.Equal(0, Cli.Run("federation", "create", "--store", store, "--federation", "secure", "--task", "sepsis", "--secure-aggregation", "--secagg-threshold", "3").Exit);
        Assert.Equal(3, (await new LocalFolderStore(store).GetFederationAsync("secure"))!.Value.Config.SecureAggregation!.Threshold);
        Assert.Equal(0, Cli.Run("federation", "create", "--store", store, "--federation", "dp", "--task", "sepsis", "--dp-site-clip", "2", "--dp-site-target-epsilon", "8").Exit);
        var dp = (await new LocalFolderStore(store).GetFederationAsync("dp"))!.Value.Config;
        Assert.Equal((2.0, 8.0, "uniform"), (dp.SiteLevelDp!.ClipNorm, dp.SiteLevelDp.TargetEpsilon!.Value, dp.Strategy.Options["weighting"].GetString()));
        var both = Cli.Run("federation", "create", "--store", store, "--federation", "both", "--task", "sepsis", "--secure-aggregation", "--dp-site-clip", "1");
        Assert.Equal(2, both.Exit);
        Assert.Contains("needs 'site_level_dp.mode' client", both.Err);
        Assert.Equal(0, Cli.Run("federation", "create", "--store", store, "--federation", "both", "--task", "sepsis", "--secure-aggregation", "--dp-site-clip", "1", "--dp-site-mode", "client").Exit);

        var again = Cli.Run("federation", "create", "--store", store, "--federation", "study", "--task", "readmission");
        Assert.Equal(2, again.Exit);
        Assert.Contains("already exists", again.Err);

        var reg = Cli.Run("federation", "register", "--store", store, "--federation", "study", "--site", "ER");
        Assert.Equal(0, reg.Exit);
        var key = reg.Out.Trim().Split('\n')[^1].Trim();
        Assert.Equal(43, key.Length); // 32 random bytes, base64url
        var keyFile = tmp["REF.key"];
        Assert.Equal(0, Cli.Run("federation", "register", "--store", store, "--federation", "study", "--site", "REF", "--key-file", keyFile).Exit);
        Assert.Equal(43, File.ReadAllText(keyFile).Trim().Length);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));

        var tick = Cli.Run("federation", "tick", "--store", store);
        Assert.Equal(0, tick.Exit);
        var outcomes = JsonDocument.Parse(tick.Out).RootElement;
        Assert.Equal("waiting", outcomes[0].GetProperty("action").GetString()); // statistics first

        var status = Cli.Run("federation", "status", "--store", store, "--federation", "study");
        Assert.Equal(0, status.Exit);
        var s = JsonDocument.Parse(status.Out).RootElement;
        Assert.Equal("statistics", s.GetProperty("phase").GetString());
        Assert.Equal(["ER", "REF"], s.GetProperty("missing").EnumerateArray().Select(e => e.GetString()));
        Assert.DoesNotContain(key, status.Out);

        Assert.Equal(0, Cli.Run("federation", "withdraw", "--store", store, "--federation", "study", "--site", "REF").Exit);
        var after = JsonDocument.Parse(Cli.Run("federation", "status", "--store", store, "--federation", "study").Out).RootElement;
        Assert.Equal(["REF"], after.GetProperty("withdrawn_sites").EnumerateArray().Select(e => e.GetString()));

        var bad = Cli.Run("federation", "status", "--store", store, "--federation", "nope");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("does not exist", bad.Err);
        var noStore = Cli.Run("federation", "status", "--federation", "study");
        Assert.Equal(2, noStore.Exit);
        Assert.Contains("--store", noStore.Err);
    }

    [Fact]
    public async Task Create_a_tree_federation()
    {
        using var tmp = new TempDir();
        var store = tmp["store"];
        var cyclic = Cli.Run("federation", "create", "--store", store, "--federation", "trees", "--task", "sepsis", "--model", "trees",
            "--rounds", "6", "--trees", "12", "--leaves", "15");
        Assert.True(cyclic.Exit == 0, cyclic.Err);
        Assert.Contains("trees, tree-cyclic, 6 round(s)", cyclic.Out);
        var config = (await new LocalFolderStore(store).GetFederationAsync("trees"))!.Value.Config;
        var spec = Cdm.Features.FeatureSpec.Load("sepsis");
        Assert.Equal(("trees", spec.ColumnNames.Count), (config.Model.Kind, config.Model.Dimension)); // the features, no bias
        Assert.Equal(12, config.Strategy.Options["client_trees"].GetInt32());
        Assert.Equal(15, config.Strategy.Options["client_leaves"].GetInt32());
        Assert.False(config.Strategy.Options.ContainsKey("client_local_epochs"));

        // tree-bagging is one round unless told otherwise.
        var bagging = Cli.Run("federation", "create", "--store", store, "--federation", "bagged", "--task", "sepsis", "--model", "trees", "--strategy", "tree-bagging");
        Assert.True(bagging.Exit == 0, bagging.Err);
        Assert.Equal(1, (await new LocalFolderStore(store).GetFederationAsync("bagged"))!.Value.Config.Rounds);

        // Differentially private trees: the DP shape unless given, and the budget in the client_dp_ keys.
        var dp = Cli.Run("federation", "create", "--store", store, "--federation", "private", "--task", "sepsis", "--model", "trees",
            "--strategy", "tree-bagging", "--trees", "20", "--dp-epsilon", "3", "--tree-bins", "16");
        Assert.True(dp.Exit == 0, dp.Err);
        Assert.Contains("record-level DP (ε = 3 per site)", dp.Out);
        var settings = Learning.Trees.TreeClientSettings.From((await new LocalFolderStore(store).GetFederationAsync("private"))!.Value.Config.Strategy);
        Assert.Equal((3.0, 1e-5, 1, 4, 8, 16, 0.3), (settings.DpEpsilon!.Value, settings.DpDelta, settings.DpRounds, settings.Depth, settings.FeaturesPerTree, settings.Bins, settings.LearningRate));
        // Cyclic over 3 sites for 9 rounds: each site trains 3 of them, and says so.
        Assert.Equal(0, Cli.Run("federation", "create", "--store", store, "--federation", "private-cyclic", "--task", "sepsis", "--model", "trees",
            "--rounds", "9", "--dp-epsilon", "3", "--dp-rounds", "3").Exit);
        Assert.Equal(3, Learning.Trees.TreeClientSettings.From((await new LocalFolderStore(store).GetFederationAsync("private-cyclic"))!.Value.Config.Strategy).DpRounds);
        Assert.Contains("--dp-rounds needs --dp-epsilon", Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--dp-rounds", "3").Err);
        // Logistic regression: the same option sets DP-SGD.
        Assert.Equal(0, Cli.Run("federation", "create", "--store", store, "--federation", "private-lr", "--task", "sepsis", "--rounds", "5", "--dp-epsilon", "2").Exit);
        var lr = Learning.ClientTrainingSettings.From((await new LocalFolderStore(store).GetFederationAsync("private-lr"))!.Value.Config.Strategy);
        Assert.Equal((2.0, 5), (lr.DpEpsilon!.Value, lr.DpRounds));
        var shapeForLogistic = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--tree-depth", "3");
        Assert.Contains("--tree-depth: not an option of --model logistic", shapeForLogistic.Err);
        var noDepth = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--model", "trees", "--dp-epsilon", "3", "--tree-depth", "0");
        Assert.Equal(2, noDepth.Exit);
        Assert.Contains("'client_tree_depth' is 0; differentially private trees need a depth", noDepth.Err);

        // Every problem at once, and nothing created.
        var bad = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--model", "trees",
            "--strategy", "tree-bagging", "--rounds", "3", "--trees", "0", "--dp-site-clip", "1");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("'rounds' is 3; tree-bagging is one exchange", bad.Err);
        Assert.Contains("'client_trees' is 0", bad.Err);
        Assert.Contains("'site_level_dp' clips and noises float32 parameters", bad.Err);
        var mismatched = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--strategy", "tree-cyclic");
        Assert.Equal(2, mismatched.Exit);
        Assert.Contains("--strategy: 'tree-cyclic' (known for model logistic: fedavg", mismatched.Err);
        var otherKind = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--model", "trees", "--epochs", "3", "--l2", "0.1");
        Assert.Equal(2, otherKind.Exit);
        Assert.Contains("--epochs, --l2: not an option of --model trees", otherKind.Err);
        var treesForLogistic = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--leaves", "7");
        Assert.Equal(2, treesForLogistic.Exit);
        Assert.Contains("--leaves: not an option of --model logistic", treesForLogistic.Err);
        var unknown = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--model", "forest");
        Assert.Equal(2, unknown.Exit);
        Assert.Contains("--model: 'forest' (expected logistic or trees)", unknown.Err);
        var secure = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--model", "trees", "--secure-aggregation");
        Assert.NotEqual(0, secure.Exit);
        Assert.Contains("'secure_aggregation' needs float32 parameters", secure.Err);
        Assert.Null(await new LocalFolderStore(store).GetFederationAsync("wrong"));
    }

    [Fact]
    public async Task Create_a_federation_whose_sites_compress_their_updates()
    {
        using var tmp = new TempDir();
        var store = tmp["store"];
        var created = Cli.Run("federation", "create", "--store", store, "--federation", "slow-links", "--task", "sepsis", "--compress", "topk:0.1:final=int8");
        Assert.True(created.Exit == 0, created.Err);
        Assert.Contains("updates compressed (topk:0.1:final=int8)", created.Out);
        var settings = Learning.ClientTrainingSettings.From((await new LocalFolderStore(store).GetFederationAsync("slow-links"))!.Value.Config.Strategy);
        Assert.Equal(("topk", 0.1, "int8"), (settings.Compression!.Encoding, settings.Compression.Fraction, settings.Compression.FinalEncoding));

        var bad = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--compress", "topk:0.1:final=zip", "--secure-aggregation");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("'client_compress': --compress topk:0.1:final=zip: 'final=zip'", bad.Err);
        var masked = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--compress", "int8", "--secure-aggregation");
        Assert.NotEqual(0, masked.Exit);
        Assert.Contains("masked updates are dense float32 vectors", masked.Err);
        var trees = Cli.Run("federation", "create", "--store", store, "--federation", "wrong", "--task", "sepsis", "--model", "trees", "--compress", "int8");
        Assert.Equal(2, trees.Exit);
        Assert.Contains("--compress: not an option of --model trees", trees.Err);
        Assert.Null(await new LocalFolderStore(store).GetFederationAsync("wrong"));
    }
}
