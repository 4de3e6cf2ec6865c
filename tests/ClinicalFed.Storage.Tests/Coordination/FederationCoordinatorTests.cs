using System.Security.Cryptography;
using ClinicalFed.Federation;
using ClinicalFed.Statistics;
using ClinicalFed.Storage.Coordination;

namespace ClinicalFed.Storage.Tests.Coordination;

/// <summary>
/// The federation lifecycle and its faults over a local folder store with a hand-moved clock: the timer tick,
/// statistics, quorum and deadline, duplicate and late uploads, concurrent ticks, and a tick that dies midway.
/// Updates are tiny hand-computed vectors (dimension 3).
/// </summary>
public sealed class FederationCoordinatorTests : IDisposable
{
    private const string F = "study";
    private readonly TempStore _temp = new();
    private readonly ManualClock _clock = new(Fixtures.T0);

    private LocalFolderStore Store => _temp.Store;

    public void Dispose() => _temp.Dispose();

    private FederationCoordinator Coordinator(IFederationStore? store = null) => new(store ?? Store, _clock);

    private static FederationConfig Settings(int rounds = 3, int quorum = 2, bool statistics = false) => new()
    {
        Federation = F,
        Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = 3, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
        Strategy = new StrategySpec { Name = StrategyNames.FedAvg },
        Rounds = rounds, Quorum = quorum, RoundSeconds = 3600, Statistics = statistics, CreatedAt = Fixtures.T0,
    };

    private async Task<Dictionary<string, string>> CreateAsync(FederationConfig settings, params string[] sites)
    {
        var c = Coordinator();
        await c.CreateFederationAsync(settings);
        var keys = new Dictionary<string, string>();
        foreach (var s in sites) keys[s] = (await c.RegisterSiteAsync(F, s)).Key;
        return keys;
    }

    private Task UploadAsync(string site, int round, long examples, float[] payload, IReadOnlyDictionary<string, double>? metrics = null) =>
        Store.PutUpdateAsync(Fixtures.Header(site, examples, round, metrics: metrics) with { Federation = F }, payload);

    [Fact]
    public async Task A_federation_runs_round_by_round_to_completion()
    {
        await CreateAsync(Settings(rounds: 2), "A", "B");
        var c = Coordinator();
        var open0 = await c.TickAsync(F);
        Assert.Equal(("round_opened", 0), (open0.Action, open0.Round));
        var manifest = (await Store.GetManifestAsync(F, 0))!;
        Assert.Null(manifest.GlobalModel);
        Assert.Equal(["A", "B"], manifest.Sites);
        Assert.Equal(Fixtures.T0.AddHours(1), manifest.Deadline);

        await UploadAsync("A", 0, 1, [1, 2, 3]);
        Assert.Equal("waiting", (await c.TickAsync(F)).Action);
        await UploadAsync("B", 0, 3, [5, 6, 7], new Dictionary<string, double> { [FederationCoordinator.PersonalizationWeightMetric] = 0.5 });
        var closed = await c.TickAsync(F);
        Assert.Equal(("round_opened", 1), (closed.Action, closed.Round));

        // FedAvg: (1·[1,2,3] + 3·[5,6,7]) / 4 = [4,5,6].
        AssertParameters([4f, 5f, 6f], await Store.GetGlobalModelAsync(F, 0));
        // A reported no weight: its own model. B: ½·[4,5,6] + ½·[5,6,7].
        AssertParameters([1f, 2f, 3f], await Store.GetPersonalizedModelAsync(F, 0, "A"));
        AssertParameters([4.5f, 5.5f, 6.5f], await Store.GetPersonalizedModelAsync(F, 0, "B"));
        Assert.Equal(GlobalModelPath.Format(F, 0), (await Store.GetManifestAsync(F, 1))!.GlobalModel);

        await UploadAsync("A", 1, 1, [0, 0, 0]);
        await UploadAsync("B", 1, 1, [2, 2, 2]);
        var done = await c.TickAsync(F);
        Assert.Equal(("completed", 1), (done.Action, done.Round));
        AssertParameters([1f, 1f, 1f], await Store.GetGlobalModelAsync(F, 1));
        Assert.Equal("completed", (await c.TickAsync(F)).Action); // further ticks change nothing
        Assert.Equal([0, 1], await Store.ListRoundsAsync(F));

        var status = (await c.GetStatusAsync(F))!;
        Assert.Equal(FederationPhases.Completed, status.Phase);
        Assert.Equal(2, status.History.Count);
        Assert.Equal(GlobalModelPath.Format(F, 1), status.LatestGlobalModel);
        // Two float32 uploads of 3 parameters per round: 2 × 12 payload bytes.
        Assert.All(status.History, h => Assert.Equal((24L, "float32", "float32"), (h.PayloadBytes, h.PayloadEncodings["A"], h.PayloadEncodings["B"])));
        Assert.Equal((12L, "float32"), ((await Store.GetRoundResultAsync(F, 0))!.Accepted[0].PayloadBytes, (await Store.GetRoundResultAsync(F, 0))!.Accepted[0].PayloadEncoding));
    }

    [Fact]
    public async Task Site_level_dp_from_federation_json_clips_adds_noise_accounts_and_stops_at_its_target()
    {
        // Uniform FedAvg of two sites, each update clipped to C = 1, noise σ = z·C/n = 0.5 on the mean. The target ε
        // allows exactly two rounds of the three planned: the third does not open.
        var twoRounds = new ClinicalFed.Privacy.SiteDpAccountant(new ClinicalFed.Privacy.SiteDpOptions { ClipNorm = 1, NoiseMultiplier = 1 }, 2);
        twoRounds.Spend(2);
        double afterTwo = twoRounds.Spend(2);
        var settings = Settings(rounds: 3) with
        {
            Strategy = StrategySpec.From(new FedAvgOptions { Weighting = UpdateWeighting.Uniform }),
            SiteLevelDp = new SiteLevelDpConfig { ClipNorm = 1, NoiseMultiplier = 1, TargetEpsilon = afterTwo + 1e-6 },
        };
        await CreateAsync(settings, "A", "B");
        var c = Coordinator();
        await c.TickAsync(F);
        await UploadAsync("A", 0, 10, [30, 40, 0]);  // norm 50: clipped to [0.6, 0.8, 0]
        await UploadAsync("B", 0, 90, [0, 0, 0.5f]); // within C: kept
        Assert.Equal(("round_opened", 1), ((await c.TickAsync(F)).Action, 1));
        var global = (await Store.GetGlobalModelAsync(F, 0))!.Parameters.ToArray();
        float[] mean = [0.3f, 0.4f, 0.25f];
        double squares = 0;
        for (int i = 0; i < 3; i++) squares += (global[i] - mean[i]) * (global[i] - mean[i]);
        Assert.True(squares > 0, "noise was added");
        Assert.True(Math.Sqrt(squares / 3) < 0.5 * 6, $"noise of σ = 0.5 expected, got RMS {Math.Sqrt(squares / 3)}");
        var result = (await Store.GetRoundResultAsync(F, 0))!;
        Assert.Contains(result.Notes, n => n.Contains("site-level DP-FedAvg", StringComparison.Ordinal) && n.Contains("σ = 0.5 ", StringComparison.Ordinal) && n.Contains("after 1 round(s)", StringComparison.Ordinal));

        await UploadAsync("A", 1, 10, [1, 1, 1]);
        await UploadAsync("B", 1, 90, [1, 1, 1]);
        var stop = await c.TickAsync(F);
        Assert.Equal("completed", stop.Action);
        Assert.Contains("above its target", stop.Message);
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"ε = {afterTwo:F4}"), (await Store.GetRoundResultAsync(F, 1))!.Notes.Single(n => n.Contains("site-level", StringComparison.Ordinal)));
        Assert.Equal([0, 1], await Store.ListRoundsAsync(F));
        Assert.Equal("completed", (await c.TickAsync(F)).Action); // and stays stopped

        // The document refuses site-level DP with example weighting, and bad numbers, naming the fields.
        var bad = Assert.Throws<FederationDataException>(() => (Settings() with { SiteLevelDp = new SiteLevelDpConfig { ClipNorm = -1 } }).EnsureValid());
        Assert.Contains(bad.Problems, p => p.Contains("'site_level_dp.clip_norm'", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.Contains("weighting=uniform", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_site_that_never_uploads_is_missing_when_the_deadline_closes_the_round_with_quorum()
    {
        await CreateAsync(Settings(quorum: 2), "A", "B", "C");
        var c = Coordinator();
        await c.TickAsync(F);
        await UploadAsync("A", 0, 1, [1, 1, 1]);
        await UploadAsync("B", 0, 1, [3, 3, 3]);
        Assert.Equal("waiting", (await c.TickAsync(F)).Action);
        _clock.Now = Fixtures.T0.AddHours(1); // the deadline
        var t = await c.TickAsync(F);
        Assert.Equal(("round_opened", 1), (t.Action, t.Round));
        var result = (await Store.GetRoundResultAsync(F, 0))!;
        Assert.Equal(["C"], result.Missing);
        AssertParameters([2f, 2f, 2f], await Store.GetGlobalModelAsync(F, 0));
        Assert.Equal(["C"], (await c.GetStatusAsync(F))!.History[0].Missing);
    }

    /// <summary>
    /// tree-cyclic: every round expects only the site whose turn it is (registration order, round r → site r mod n,
    /// over the sites active when the round opens), with a quorum of one; a turn missed at the deadline passes on.
    /// </summary>
    [Fact]
    public async Task Tree_cyclic_rounds_are_one_site_turns_in_registration_order()
    {
        var settings = Settings(rounds: 6, quorum: 2) with
        {
            Model = new ModelSpec { Kind = ModelKinds.Trees, Dimension = 3, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
            Strategy = new StrategySpec { Name = StrategyNames.TreeCyclic },
        };
        await CreateAsync(settings, "A", "B", "C");
        var c = Coordinator();
        var expected = new List<string>();
        for (int r = 0; r < 5; r++)
        {
            if (r == 3) await c.WithdrawSiteAsync(F, "C"); // from round 3 on: A, B, A, ...
            var t = await c.TickAsync(F);
            Assert.Equal(("round_opened", r), (t.Action, t.Round));
            var manifest = (await Store.GetManifestAsync(F, r))!;
            expected.Add(manifest.Sites.Single());
            Assert.Equal(1, manifest.Quorum);
            _clock.Now = _clock.Now.AddHours(2); // nobody uploads: the turn passes at the deadline
        }

        Assert.Equal(["A", "B", "C", "B", "A"], expected);
        Assert.Equal(RoundStatuses.QuorumNotMet, (await Store.GetRoundResultAsync(F, 0))!.Status);
    }

    /// <summary>A federation document whose model kind and strategy do not go together is refused, naming both.</summary>
    [Fact]
    public void Model_kind_and_strategy_must_match()
    {
        var trees = new ModelSpec { Kind = ModelKinds.Trees, Dimension = 3, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" };
        Assert.Contains((Settings() with { Model = trees }).Validate(),
            p => p.Contains("'strategy.name' is 'fedavg', which aggregates float32 parameters; a 'trees' federation needs tree-bagging or tree-cyclic", StringComparison.Ordinal));
        Assert.Contains((Settings() with { Strategy = new StrategySpec { Name = StrategyNames.TreeCyclic } }).Validate(),
            p => p.Contains("'strategy.name' is 'tree-cyclic', which aggregates tree ensembles; a 'logistic' federation needs one of fedavg", StringComparison.Ordinal));
        Assert.Contains((Settings(rounds: 2) with { Model = trees, Strategy = new StrategySpec { Name = StrategyNames.TreeBagging } }).Validate(),
            p => p.StartsWith("'rounds' is 2; tree-bagging is one exchange", StringComparison.Ordinal));
        Assert.Empty((Settings(rounds: 1) with { Model = trees, Strategy = new StrategySpec { Name = StrategyNames.TreeBagging } }).Validate());
    }

    /// <summary>Compressed updates (client_compress) need float32 parameters that travel unmasked.</summary>
    [Fact]
    public void Compressed_updates_are_refused_for_trees_and_with_secure_aggregation()
    {
        var compress = new Dictionary<string, System.Text.Json.JsonElement> { [FederationConfig.ClientCompressKey] = System.Text.Json.JsonSerializer.SerializeToElement("int8") };
        var compressing = Settings() with { Strategy = new StrategySpec { Name = StrategyNames.FedAvg, Options = compress } };
        Assert.Empty(compressing.Validate());
        Assert.Contains((compressing with { SecureAggregation = new SecureAggregationConfig() }).Validate(),
            p => p.StartsWith("'secure_aggregation' with 'strategy.options.client_compress': masked updates are dense float32 vectors", StringComparison.Ordinal));
        var trees = new ModelSpec { Kind = ModelKinds.Trees, Dimension = 3, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" };
        Assert.Contains((Settings(rounds: 1) with { Model = trees, Strategy = new StrategySpec { Name = StrategyNames.TreeBagging, Options = compress } }).Validate(),
            p => p == "'strategy.options.client_compress' compresses float32 parameters (model kind logistic), not 'trees'");
    }

    [Fact]
    public async Task Without_quorum_at_the_deadline_the_next_round_starts_from_the_same_model()
    {
        await CreateAsync(Settings(quorum: 2), "A", "B");
        var c = Coordinator();
        await c.TickAsync(F);
        await UploadAsync("A", 0, 1, [1, 1, 1]);
        _clock.Now = Fixtures.T0.AddHours(2);
        var t = await c.TickAsync(F);
        Assert.Equal(("round_opened", 1), (t.Action, t.Round));
        Assert.Equal(RoundStatuses.QuorumNotMet, (await Store.GetRoundResultAsync(F, 0))!.Status);
        Assert.Null(await Store.GetGlobalModelAsync(F, 0));
        Assert.Null((await Store.GetManifestAsync(F, 1))!.GlobalModel); // still from zeros
    }

    [Fact]
    public async Task A_duplicate_upload_is_refused_and_counted_once()
    {
        var keys = await CreateAsync(Settings(), "A", "B");
        var c = Coordinator();
        await c.TickAsync(F);
        await UploadAsync("A", 0, 1, [1, 1, 1]);
        await Assert.ThrowsAsync<StoreObjectExistsException>(() => UploadAsync("A", 0, 1, [9, 9, 9]));
        await UploadAsync("B", 0, 1, [3, 3, 3]);
        await c.TickAsync(F);
        AssertParameters([2f, 2f, 2f], await Store.GetGlobalModelAsync(F, 0));
        Assert.Equal(2, (await Store.GetRoundResultAsync(F, 0))!.Accepted.Count);
    }

    [Fact]
    public async Task An_upload_for_a_closed_round_is_never_counted()
    {
        var keys = await CreateAsync(Settings(quorum: 1), "A", "B");
        var c = Coordinator(new TicketingStore(Store));
        await c.TickAsync(F);
        await UploadAsync("A", 0, 1, [1, 1, 1]);
        _clock.Now = Fixtures.T0.AddHours(1);
        await c.TickAsync(F); // round 0 closes without B

        // B's late ticket for round 0 is refused: the current round is 1 and round 0 is closed.
        var ticket = await c.IssueTicketAsync(F, "B", keys["B"], TicketKinds.Update);
        Assert.Equal(1, ticket.Round);
        // Even if a late file lands in round 0's folder (an old ticket used at the last moment), nothing changes.
        await UploadAsync("B", 0, 1, [100, 100, 100]);
        await c.TickAsync(F);
        AssertParameters([1f, 1f, 1f], await Store.GetGlobalModelAsync(F, 0));
        Assert.Equal(["A"], (await Store.GetRoundResultAsync(F, 0))!.Accepted.Select(a => a.Site));
    }

    [Fact]
    public async Task Two_ticks_at_once_aggregate_a_round_exactly_once()
    {
        await CreateAsync(Settings(), "A", "B");
        var c = Coordinator();
        await c.TickAsync(F);
        await UploadAsync("A", 0, 1, [1, 1, 1]);
        await UploadAsync("B", 0, 1, [3, 3, 3]);
        var counting = new CountingStore(Store);
        var ticks = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => new FederationCoordinator(counting, _clock).TickAsync(F))));
        Assert.Equal(1, ticks.Count(t => t.Action == "round_opened" && t.Round == 1));
        // The others found the lease taken, or (when they ran after it) round 1 waiting for uploads.
        Assert.All(ticks.Where(t => t.Action != "round_opened"), t => Assert.Contains(t.Action, new[] { "busy", "waiting" }));
        Assert.Equal(4, counting.Opened); // each update read once to aggregate and once to personalize
        AssertParameters([2f, 2f, 2f], await Store.GetGlobalModelAsync(F, 0));
        Assert.Equal([0, 1], await Store.ListRoundsAsync(F));
    }

    [Fact]
    public async Task A_tick_that_dies_after_the_global_model_is_finished_by_the_next_tick()
    {
        await CreateAsync(Settings(), "A", "B");
        await Coordinator().TickAsync(F);
        await UploadAsync("A", 0, 1, [1, 1, 1]);
        await UploadAsync("B", 0, 1, [3, 3, 3]);

        // Dies after writing global.cfm, before the personalized models and the next manifest.
        var dying = new CountingStore(Store);
        dying.FailWritesEndingWith.Add("/personalized/A.cfm");
        await Assert.ThrowsAsync<IOException>(() => new FederationCoordinator(dying, _clock).TickAsync(F));
        Assert.NotNull(await Store.GetGlobalModelAsync(F, 0));
        Assert.Null(await Store.GetManifestAsync(F, 1));

        var t = await Coordinator().TickAsync(F);
        Assert.Equal(("round_opened", 1), (t.Action, t.Round));
        AssertParameters([2f, 2f, 2f], await Store.GetGlobalModelAsync(F, 0));
        Assert.Equal(["A", "B"], await Store.ListPersonalizedModelsAsync(F, 0));
        Assert.Single((await Store.GetRoundResultAsync(F, 0))!.Accepted, a => a.Site == "A");

        // And a tick that dies between global.cfm and the manifest of the next round.
        await UploadAsync("A", 1, 1, [1, 1, 1]);
        await UploadAsync("B", 1, 1, [1, 1, 1]);
        var dying2 = new CountingStore(Store);
        dying2.FailWritesEndingWith.Add("00002/" + StoreLayout.ManifestFileName);
        await Assert.ThrowsAsync<IOException>(() => new FederationCoordinator(dying2, _clock).TickAsync(F));
        Assert.NotNull(await Store.GetGlobalModelAsync(F, 1));
        var t2 = await Coordinator().TickAsync(F);
        Assert.Equal(("round_opened", 2), (t2.Action, t2.Round));
        Assert.Equal(GlobalModelPath.Format(F, 1), (await Store.GetManifestAsync(F, 2))!.GlobalModel);
    }

    [Fact]
    public async Task A_tick_that_dies_before_the_global_model_recomputes_it_from_the_same_updates()
    {
        await CreateAsync(Settings(), "A", "B");
        await Coordinator().TickAsync(F);
        await UploadAsync("A", 0, 1, [1, 1, 1]);
        await UploadAsync("B", 0, 1, [3, 3, 3]);
        var dying = new CountingStore(Store) { FailGlobalModelWrites = true };
        await Assert.ThrowsAsync<IOException>(() => new FederationCoordinator(dying, _clock).TickAsync(F));
        Assert.NotNull(await Store.GetRoundResultAsync(F, 0));
        Assert.Null(await Store.GetGlobalModelAsync(F, 0));
        var t = await Coordinator().TickAsync(F);
        Assert.Equal(("round_opened", 1), (t.Action, t.Round));
        AssertParameters([2f, 2f, 2f], await Store.GetGlobalModelAsync(F, 0));
    }

    [Fact]
    public async Task Statistics_are_merged_when_every_active_site_sent_them_then_round_0_opens()
    {
        await CreateAsync(Settings(statistics: true), "A", "B");
        var c = Coordinator();
        Assert.Equal("waiting", (await c.TickAsync(F)).Action);
        await Store.PutSiteStatisticsAsync(F, "A", Stats("A", [1, 2]));
        Assert.Equal("waiting", (await c.TickAsync(F)).Action);
        Assert.Equal(FederationPhases.Statistics, (await c.GetStatusAsync(F))!.Phase);
        await Store.PutSiteStatisticsAsync(F, "B", Stats("B", [3, 4, 5]));
        var t = await c.TickAsync(F);
        Assert.Equal(("round_opened", 0), (t.Action, t.Round));
        var merged = (await Store.GetFederatedStatisticsAsync(F))!;
        Assert.Equal(5, merged.Rows);
        Assert.Equal(3.0, merged.Features[0].Mean, 9);
    }

    [Fact]
    public async Task Sites_register_once_keys_authenticate_and_withdrawal_revokes()
    {
        var keys = await CreateAsync(Settings(), "A", "B");
        var c = Coordinator();
        Assert.True(await c.AuthenticateAsync(F, "A", keys["A"]));
        Assert.False(await c.AuthenticateAsync(F, "A", keys["B"]));
        Assert.False(await c.AuthenticateAsync(F, "Z", keys["A"]));
        Assert.NotEqual(keys["A"], keys["B"]);
        await Assert.ThrowsAsync<InvalidOperationException>(() => c.RegisterSiteAsync(F, "A"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => c.RegisterSiteAsync(F, "a")); // differs only in case

        var doc = (await Store.GetFederationAsync(F))!.Value.Config;
        Assert.Equal(FederationCoordinator.HashKey(keys["A"]), doc.FindSite("A")!.KeySha256);
        Assert.DoesNotContain(keys["A"], System.Text.Encoding.UTF8.GetString(doc.ToJsonBytes())); // only the hash is stored

        await c.WithdrawSiteAsync(F, "B");
        Assert.False(await c.AuthenticateAsync(F, "B", keys["B"]));
        Assert.Equal(["A"], (await Store.GetFederationAsync(F))!.Value.Config.ActiveSites);
        // Quorum 2 with one active site: the round refuses to open and says why.
        var t = await c.TickAsync(F);
        Assert.Equal("error", t.Action);
        Assert.Contains("quorum of 2", t.Message);
        // Re-registering a withdrawn site gives it a new key.
        var again = await c.RegisterSiteAsync(F, "B");
        Assert.True(await c.AuthenticateAsync(F, "B", again.Key));
        Assert.False(await c.AuthenticateAsync(F, "B", keys["B"]));
    }

    [Fact]
    public async Task Tickets_are_issued_only_for_the_sites_own_open_object()
    {
        var keys = await CreateAsync(Settings(statistics: true), "A", "B");
        var c = Coordinator(new TicketingStore(Store));
        async Task<TicketRefusal> Refused(string site, string key, string kind) =>
            (await Assert.ThrowsAsync<TicketRefusedException>(() => c.IssueTicketAsync(F, site, key, kind))).Reason;

        Assert.Equal(TicketRefusal.NotAuthorized, await Refused("A", keys["B"], TicketKinds.Statistics));
        Assert.Equal(TicketRefusal.NotAuthorized, await Refused("nobody", keys["A"], TicketKinds.Statistics));
        Assert.Equal(TicketRefusal.NotOpen, await Refused("A", keys["A"], TicketKinds.Update)); // no round yet
        var st = await c.IssueTicketAsync(F, "A", keys["A"], TicketKinds.Statistics);
        Assert.Equal(StoreLayout.SiteStatistics(F, "A"), st.Path);
        Assert.Equal(_clock.Now.AddMinutes(15), st.ExpiresAt);

        await Store.PutSiteStatisticsAsync(F, "A", Stats("A", [1]));
        Assert.Equal(TicketRefusal.NotOpen, await Refused("A", keys["A"], TicketKinds.Statistics)); // already sent
        await Store.PutSiteStatisticsAsync(F, "B", Stats("B", [2]));
        await c.TickAsync(F);

        var up = await c.IssueTicketAsync(F, "B", keys["B"], TicketKinds.Update);
        Assert.Equal((0, StoreLayout.Update(F, 0, "B")), (up.Round!.Value, up.Path));
        await UploadAsync("B", 0, 1, [1, 1, 1]);
        Assert.Equal(TicketRefusal.NotOpen, await Refused("B", keys["B"], TicketKinds.Update)); // already uploaded
        _clock.Now = Fixtures.T0.AddHours(2);
        Assert.Equal(TicketRefusal.NotOpen, await Refused("A", keys["A"], TicketKinds.Update)); // past the deadline
        await Assert.ThrowsAsync<TicketRefusedException>(() => Coordinator().IssueTicketAsync(F, "A", keys["A"], TicketKinds.Update)); // a store without tickets
    }

    private static void AssertParameters(float[] expected, ModelFile? model)
    {
        Assert.NotNull(model);
        Assert.Equal(expected, model.Parameters.ToArray());
    }

    private static StatisticsSet Stats(string site, float[] values)
    {
        var b = new StatisticsBuilder(site, "sepsis-hourly", "1.0.0", ["x"], [new HistogramSpec(0, 10, 10)]);
        foreach (var v in values) b.AddRow([v]);
        return b.Build();
    }
}

/// <summary>schemas/federation.schema.json against documents the coordinator really writes.</summary>
public sealed class FederationSchemaTests : IDisposable
{
    private readonly TempStore _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Stored_federation_documents_match_the_schema()
    {
        var folder = AppContext.BaseDirectory;
        string? schemas = null;
        for (var d = new DirectoryInfo(folder); d is not null && schemas is null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "schemas", "federation.schema.json"))) schemas = Path.Combine(d.FullName, "schemas");
        var schema = ClinicalFed.Testing.MiniJsonSchema.Load(Path.Combine(schemas!, "federation.schema.json"));
        var c = new FederationCoordinator(_temp.Store, new ManualClock(Fixtures.T0));
        await c.CreateFederationAsync(new FederationConfig
        {
            Federation = "study", Description = "test",
            Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = 3, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
            Strategy = StrategySpec.From(new FedProxOptions { ProximalMu = 0.01 }, new Dictionary<string, System.Text.Json.JsonElement> { ["client_local_epochs"] = System.Text.Json.JsonSerializer.SerializeToElement(2) }),
            Rounds = 5, Quorum = 2, RoundSeconds = 600, CreatedAt = Fixtures.T0,
        });
        await c.RegisterSiteAsync("study", "A");
        await c.RegisterSiteAsync("study", "B");
        await c.WithdrawSiteAsync("study", "B");
        var json = await File.ReadAllBytesAsync(_temp.Store.FullPath(StoreLayout.FederationDocument("study")));
        var errors = schema.Validate(System.Text.Json.JsonDocument.Parse(json).RootElement);
        Assert.True(errors.Count == 0, string.Join("\n", errors));

        var broken = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        broken["sites"]![0]!["key_sha256"] = "not-a-hash";
        broken["rounds"] = 0;
        var problems = schema.Validate(System.Text.Json.JsonDocument.Parse(broken.ToJsonString()).RootElement);
        Assert.Contains(problems, p => p.Contains("key_sha256", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("rounds", StringComparison.Ordinal));
        var e = Assert.Throws<FederationDataException>(() => FederationConfig.Parse(System.Text.Encoding.UTF8.GetBytes(broken.ToJsonString())));
        Assert.Contains("'sites[0].key_sha256'", e.Message);
        Assert.Contains("'rounds' is 0", e.Message);
    }
}
