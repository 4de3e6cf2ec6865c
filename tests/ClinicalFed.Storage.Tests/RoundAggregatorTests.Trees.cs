using ClinicalFed.Federation;
using ClinicalFed.Storage;
using ClinicalFed.Trees;

namespace ClinicalFed.Storage.Tests;

/// <summary>Rounds of tree-ensemble updates: tree-bagging and tree-cyclic through the store and the round aggregator.</summary>
public sealed partial class RoundAggregatorTests
{
    /// <summary>x0 ≤ 1 → 0.5, else −1 (missing goes left).</summary>
    private static readonly DecisionTree Stump = new([0], [1f], [true], [~0], [~1], [0.5, -1.0]);

    /// <summary>Site A: base 0.5 and the stump; scores 1 where x0 ≤ 1.</summary>
    private static readonly TreeEnsembleModel TreeA = new(2, 0.5, [Stump]);

    /// <summary>Site B: base −1, constants 2 (weight 0.5) and −1; scores −1 everywhere.</summary>
    private static readonly TreeEnsembleModel TreeB = new(2, -1.0, [DecisionTree.Constant(2.0), DecisionTree.Constant(-1.0)], [0.5, 1.0]);

    private static RoundManifest TreeManifest(string strategy, int round = 0, IReadOnlyList<string>? sites = null, int quorum = 2) =>
        Fixtures.Manifest(round, new StrategySpec { Name = strategy }, dimension: 2, sites: sites ?? ["A", "B"], quorum: quorum) with
        {
            Model = new ModelSpec { Kind = ModelKinds.Trees, Dimension = 2, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
        };

    private static byte[] TreeUpdate(string site, long examples, TreeEnsembleModel ensemble, int round = 0)
    {
        using var ms = new MemoryStream();
        UpdateFile.Write(ms, Fixtures.Header(site, examples, round, ensemble.FeatureCount, metrics: new Dictionary<string, double> { ["auroc"] = 0.5 + examples / 10.0 }), ensemble);
        return ms.ToArray();
    }

    private Task UploadTreeAsync(string site, long examples, TreeEnsembleModel ensemble, int round = 0) =>
        Store.PutUpdateAsync("sepsis", round, site, new MemoryStream(TreeUpdate(site, examples, ensemble, round)));

    [Fact]
    public async Task Two_tree_updates_are_merged_into_the_example_weighted_global_ensemble()
    {
        await Store.PutManifestAsync(TreeManifest(StrategyNames.TreeBagging));
        await UploadTreeAsync("B", 3, TreeB);
        await UploadTreeAsync("A", 1, TreeA);
        var counting = new CountingStore(Store);

        var outcome = await new RoundAggregator(counting, _clock).AggregateAsync("sepsis", 0);

        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        var global = (await Store.GetGlobalModelAsync("sepsis", 0))!;
        Assert.Equal(PayloadEncodings.TreeEnsemble, global.Header.PayloadEncoding);
        Assert.Equal(ModelKinds.Trees, global.Header.Kind);
        Assert.Equal(2, global.Header.Dimension);
        Assert.Equal(StrategyNames.TreeBagging, global.Header.Strategy);
        Assert.Equal(["A", "B"], global.Header.Sites);
        Assert.Equal(4, global.Header.ExampleCount);

        // Shares 1/4 and 3/4: base 0.25·0.5 + 0.75·(−1) = −0.625; tree weights 0.25, 0.375, 0.75.
        var merged = global.TreeEnsemble;
        Assert.True(TreeBagging.Merge([new SiteEnsemble(TreeA, 1), new SiteEnsemble(TreeB, 3)]).StructurallyEquals(merged));
        Assert.Equal(-0.625, merged.BaseScore, 15);
        Assert.Equal([0.25, 0.375, 0.75], merged.TreeWeights);
        Assert.Equal(0.25 * 1 + 0.75 * -1, merged.Score([0f, 0f]), 15);
        Assert.Equal(0.25 * -0.5 + 0.75 * -1, merged.Score([2f, 0f]), 15);

        var result = outcome.Result!;
        Assert.Equal(["A", "B"], result.Accepted.Select(a => a.Site));
        Assert.Equal(Math.Sqrt(0.25 + 1), result.Accepted[0].UpdateNorm, 12); // A's leaves 0.5 and −1, no global model
        Assert.Equal(Math.Sqrt(1 + 1), result.Accepted[1].UpdateNorm, 12);     // B's 0.5·2 and 1·(−1)
        Assert.Equal((1 * 0.6 + 3 * 0.8) / 4, result.Metrics["auroc"], 12);
        Assert.Null(await Store.GetServerStateAsync("sepsis", 0));
        Assert.InRange(counting.MaxOpenAtOnce, 1, UpdateReadAhead.MaxWindow);
        Assert.Equal(2, counting.Opened);
    }

    [Fact]
    public async Task Float_and_corrupt_updates_in_a_tree_round_are_rejected_with_reasons()
    {
        await Store.PutManifestAsync(TreeManifest(StrategyNames.TreeBagging, sites: ["A", "B", "C", "D"]));
        await UploadTreeAsync("A", 1, TreeA);
        await UploadTreeAsync("B", 3, TreeB);
        await Store.PutUpdateAsync(Fixtures.Header("C", 2, dimension: 2), new float[] { 1, 1 });
        var dPath = Store.FullPath(StoreLayout.Update("sepsis", 0, "D"));
        var damaged = TreeUpdate("D", 5, TreeA);
        damaged[^9] ^= 0x20; // inside the ensemble's checksum-protected body
        File.WriteAllBytes(dPath, damaged);

        var outcome = await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 0);

        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        var rejected = outcome.Result!.Rejected.ToDictionary(r => r.Site, r => r.Reason);
        Assert.Equal(["C", "D"], rejected.Keys.Order());
        Assert.Contains("header field 'payload_encoding' is float32", rejected["C"]);
        Assert.Contains("payload_sha256", rejected["D"]);
        Assert.True(TreeBagging.Merge([new SiteEnsemble(TreeA, 1), new SiteEnsemble(TreeB, 3)])
            .StructurallyEquals((await Store.GetGlobalModelAsync("sepsis", 0))!.TreeEnsemble));
    }

    [Fact]
    public async Task The_store_refuses_a_tree_update_whose_payload_does_not_parse()
    {
        var bytes = TreeUpdate("A", 1, TreeA);
        bytes[^9] ^= 0x20;
        var e = await Assert.ThrowsAsync<FederationDataException>(() => Store.PutUpdateAsync("sepsis", 0, "A", new MemoryStream(bytes)));
        Assert.Equal("federations/sepsis/rounds/00000/updates/A.cfu", e.Origin);
        Assert.Contains("payload_sha256", e.Message);
        Assert.Empty(await Store.ListUpdatesAsync("sepsis", 0));
    }

    [Fact]
    public async Task A_crash_between_result_and_model_recomputes_the_same_ensemble()
    {
        await Store.PutManifestAsync(TreeManifest(StrategyNames.TreeBagging));
        await UploadTreeAsync("A", 1, TreeA);
        await UploadTreeAsync("B", 3, TreeB);
        var crashing = new CountingStore(Store) { FailGlobalModelWrites = true };
        await Assert.ThrowsAsync<IOException>(() => new RoundAggregator(crashing, _clock).AggregateAsync("sepsis", 0));
        Assert.NotNull(await Store.GetRoundResultAsync("sepsis", 0));

        _clock.Now = _clock.Now.AddMinutes(5);
        var outcome = await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 0);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        var global = (await Store.GetGlobalModelAsync("sepsis", 0))!;
        Assert.Equal(TreeBagging.Merge([new SiteEnsemble(TreeA, 1), new SiteEnsemble(TreeB, 3)]).ToBytes(), global.OpaquePayload.ToArray());
        Assert.Equal(outcome.Result!.CompletedAt, global.Header.CreatedAt);
    }

    [Fact]
    public async Task Tree_cyclic_rounds_pass_the_grown_ensemble_on()
    {
        var grown = TreeA.Append([DecisionTree.Constant(0.25)]);
        await Store.PutManifestAsync(TreeManifest(StrategyNames.TreeCyclic, sites: ["A"], quorum: 1));
        await UploadTreeAsync("A", 10, TreeA);
        Assert.Equal(RoundOutcomeStatus.Aggregated, (await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 0)).Status);
        Assert.True(TreeA.StructurallyEquals((await Store.GetGlobalModelAsync("sepsis", 0))!.TreeEnsemble));

        // Round 1 is B's turn: an ensemble that does not extend round 0's model is refused, the grown one accepted.
        await Store.PutManifestAsync(TreeManifest(StrategyNames.TreeCyclic, round: 1, sites: ["B"], quorum: 1));
        await UploadTreeAsync("B", 20, TreeB, round: 1);
        _clock.Now = Fixtures.T0.AddDays(1).AddHours(1);
        var refused = await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 1, closeNow: true);
        Assert.Equal(RoundOutcomeStatus.QuorumNotMet, refused.Status);
        Assert.Contains("does not extend the round's global model", Assert.Single(refused.Result!.Rejected).Reason);

        await Store.PutManifestAsync(TreeManifest(StrategyNames.TreeCyclic, round: 2, sites: ["B"], quorum: 1) with
        {
            GlobalModel = GlobalModelPath.Format("sepsis", 0),
        });
        await UploadTreeAsync("B", 20, grown, round: 2);
        _clock.Now = Fixtures.T0.AddDays(2).AddHours(1);
        var outcome = await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 2);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        Assert.True(grown.StructurallyEquals((await Store.GetGlobalModelAsync("sepsis", 2))!.TreeEnsemble));
        Assert.Equal(0.25, Assert.Single(outcome.Result!.Accepted).UpdateNorm, 12); // only the tree B added counts
    }
}
