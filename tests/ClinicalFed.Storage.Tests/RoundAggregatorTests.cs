using ClinicalFed.Federation;
using ClinicalFed.Storage;

namespace ClinicalFed.Storage.Tests;

public sealed partial class RoundAggregatorTests : IDisposable
{
    private readonly TempStore _temp = new();
    private readonly ManualClock _clock = new(Fixtures.T0.AddHours(1));

    private LocalFolderStore Store => _temp.Store;

    public void Dispose() => _temp.Dispose();

    private static readonly (string Site, long Examples, float[] Values)[] ThreeSites =
    [
        ("A", 1, [1, 2, 3]),
        ("B", 2, [4, 5, 6]),
        ("C", 3, [-2, 0, 8]),
    ];

    private async Task UploadAsync(int round, params (string Site, long Examples, float[] Values)[] updates)
    {
        foreach (var (site, examples, values) in updates)
        {
            var metrics = new Dictionary<string, double> { ["loss"] = examples, ["auroc"] = 0.8 };
            await Store.PutUpdateAsync(Fixtures.Header(site, examples, round, values.Length, metrics: metrics), values);
        }
    }

    [Fact]
    public async Task Three_sites_upload_FedAvg_streams_them_from_the_store_and_the_global_model_is_written()
    {
        await Store.PutManifestAsync(Fixtures.Manifest());
        await UploadAsync(0, ThreeSites);
        var counting = new CountingStore(Store);

        var outcome = await new RoundAggregator(counting, _clock).AggregateAsync("sepsis", 0);

        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        var global = (await Store.GetGlobalModelAsync("sepsis", 0))!;
        TestSupport.AssertClose([0.5, 2, 6.5], global.Parameters.ToArray()); // (1·A + 2·B + 3·C) / 6
        Assert.Equal(["A", "B", "C"], global.Header.Sites);
        Assert.Equal(6, global.Header.ExampleCount);
        Assert.Equal(_clock.Now, global.Header.CreatedAt);

        var result = (await Store.GetRoundResultAsync("sepsis", 0))!;
        Assert.Equal(RoundStatuses.Aggregated, result.Status);
        Assert.Equal(["A", "B", "C"], result.Accepted.Select(a => a.Site));
        Assert.Equal(Math.Sqrt(1 + 4 + 9), result.Accepted[0].UpdateNorm, 5); // round 0 starts from zeros
        Assert.Empty(result.Rejected);
        Assert.Empty(result.Missing);
        Assert.Equal((1 * 1 + 2 * 2 + 3 * 3) / 6.0, result.Metrics["loss"], 12); // example-weighted mean
        Assert.Equal(0.8, result.Metrics["auroc"], 12);
        Assert.Equal("federations/sepsis/rounds/00000/global.cfm", result.GlobalModel);
        Assert.Null(await Store.GetServerStateAsync("sepsis", 0)); // FedAvg is stateless

        // Streaming: each update was opened once and closed; at most the read-ahead window of them at once.
        Assert.Equal(3, counting.Opened);
        Assert.InRange(counting.MaxOpenAtOnce, 1, UpdateReadAhead.MaxWindow);
        Assert.Equal(0, counting.OpenNow);
    }

    [Fact]
    public async Task Bad_updates_are_rejected_with_reasons_and_the_rest_aggregated()
    {
        await Store.PutManifestAsync(Fixtures.Manifest(sites: ["A", "B", "C", "D"]));
        await UploadAsync(0, ("A", 1, [1, 1, 1]), ("B", 3, [3, 3, 3]));
        await UploadAsync(0, ("Z", 5, [9, 9, 9]));               // not an expected site
        await Store.PutUpdateAsync(Fixtures.Header("D", 2, dimension: 2), new float[] { 1, 1 }); // wrong dimension
        // A file damaged at rest, bypassing the store's checks.
        var cPath = Store.FullPath(StoreLayout.Update("sepsis", 0, "C"));
        var cBytes = Fixtures.UpdateBytes(Fixtures.Header("C", 2), [5, 5, 5]);
        cBytes[^2] ^= 0x55;
        File.WriteAllBytes(cPath, cBytes);

        var outcome = await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 0);

        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        var global = (await Store.GetGlobalModelAsync("sepsis", 0))!;
        TestSupport.AssertClose([2.5, 2.5, 2.5], global.Parameters.ToArray());
        var rejected = outcome.Result!.Rejected.ToDictionary(r => r.Site, r => r.Reason);
        Assert.Equal(["C", "D", "Z"], rejected.Keys.Order());
        Assert.Contains("payload_sha256", rejected["C"]);
        Assert.Contains("dimension 2 does not match the model's 3", rejected["D"]);
        Assert.Contains("not among the round's expected sites", rejected["Z"]);
    }

    [Fact]
    public async Task Round_waits_for_missing_sites_until_the_deadline()
    {
        await Store.PutManifestAsync(Fixtures.Manifest());
        await UploadAsync(0, ThreeSites[..2]);
        var aggregator = new RoundAggregator(Store, _clock);

        var waiting = await aggregator.AggregateAsync("sepsis", 0);
        Assert.Equal(RoundOutcomeStatus.Waiting, waiting.Status);
        Assert.Contains("2 of 3 expected sites", waiting.Message);
        Assert.Null(await Store.GetRoundResultAsync("sepsis", 0));

        _clock.Now = Fixtures.T0.AddHours(6); // the deadline
        var done = await aggregator.AggregateAsync("sepsis", 0);
        Assert.Equal(RoundOutcomeStatus.Aggregated, done.Status);
        Assert.Equal(["C"], done.Result!.Missing);
        TestSupport.AssertClose([3, 4, 5], (await Store.GetGlobalModelAsync("sepsis", 0))!.Parameters.ToArray());
    }

    [Fact]
    public async Task Quorum_not_met_writes_only_the_result_and_closing_again_changes_nothing()
    {
        await Store.PutManifestAsync(Fixtures.Manifest(quorum: 2));
        await UploadAsync(0, ThreeSites[..1]);
        var aggregator = new RoundAggregator(Store, _clock);

        var outcome = await aggregator.AggregateAsync("sepsis", 0, closeNow: true);
        Assert.Equal(RoundOutcomeStatus.QuorumNotMet, outcome.Status);
        Assert.Null(await Store.GetGlobalModelAsync("sepsis", 0));
        var result = (await Store.GetRoundResultAsync("sepsis", 0))!;
        Assert.Equal(RoundStatuses.QuorumNotMet, result.Status);
        Assert.Null(result.GlobalModel);

        await UploadAsync(0, ThreeSites[1..]); // too late: the round is closed
        var again = await aggregator.AggregateAsync("sepsis", 0, closeNow: true);
        Assert.Equal(RoundOutcomeStatus.AlreadyCompleted, again.Status);
        Assert.Null(await Store.GetGlobalModelAsync("sepsis", 0));
    }

    [Fact]
    public async Task Aggregating_a_closed_round_again_writes_nothing()
    {
        await Store.PutManifestAsync(Fixtures.Manifest());
        await UploadAsync(0, ThreeSites);
        var aggregator = new RoundAggregator(Store, _clock);
        Assert.Equal(RoundOutcomeStatus.Aggregated, (await aggregator.AggregateAsync("sepsis", 0)).Status);
        var files = _temp.AllFiles().ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(_temp.Folder, f)));

        _clock.Now = _clock.Now.AddHours(1);
        var again = await aggregator.AggregateAsync("sepsis", 0);
        Assert.Equal(RoundOutcomeStatus.AlreadyCompleted, again.Status);
        Assert.Equal(files.Keys, _temp.AllFiles());
        foreach (var (f, bytes) in files) Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(_temp.Folder, f)));
    }

    [Fact]
    public async Task A_verified_update_that_changed_under_its_recorded_version_aborts_the_round_and_writes_nothing()
    {
        // Updates verified on upload are streamed straight into the strategy; if one is not what its verification said
        // (here: same version token, a NaN in the payload) the half-accumulated round must not be written.
        await Store.PutManifestAsync(Fixtures.Manifest());
        await UploadAsync(0, ThreeSites);
        var altering = new AlteringStore(Store, StoreLayout.Update("sepsis", 0, "B"));

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new RoundAggregator(altering, _clock).AggregateAsync("sepsis", 0));
        Assert.Contains("site 'B'", e.Message);
        Assert.Contains("NaN", e.Message);
        Assert.Null(await Store.GetRoundResultAsync("sepsis", 0));
        Assert.Null(await Store.GetGlobalModelAsync("sepsis", 0));

        var outcome = await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 0); // the next invocation, store intact
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        TestSupport.AssertClose([0.5, 2, 6.5], (await Store.GetGlobalModelAsync("sepsis", 0))!.Parameters.ToArray());
    }

    [Fact]
    public async Task A_crash_between_result_and_model_is_finished_by_the_next_call()
    {
        await Store.PutManifestAsync(Fixtures.Manifest());
        await UploadAsync(0, ThreeSites);
        var crashing = new CountingStore(Store) { FailGlobalModelWrites = true };
        await Assert.ThrowsAsync<IOException>(() => new RoundAggregator(crashing, _clock).AggregateAsync("sepsis", 0));
        Assert.NotNull(await Store.GetRoundResultAsync("sepsis", 0));
        Assert.Null(await Store.GetGlobalModelAsync("sepsis", 0));

        _clock.Now = _clock.Now.AddMinutes(5);
        var outcome = await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 0);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        var global = (await Store.GetGlobalModelAsync("sepsis", 0))!;
        TestSupport.AssertClose([0.5, 2, 6.5], global.Parameters.ToArray());
        Assert.Equal(outcome.Result!.CompletedAt, global.Header.CreatedAt); // from the committed result, not the new clock
    }

    [Fact]
    public async Task Stateless_FedAdam_over_two_rounds_equals_one_process_running_both()
    {
        var options = new FedAdamOptions { ServerLearningRate = 0.1, Beta1 = 0.9, Beta2 = 0.99, Tau = 0.01 };
        var spec = StrategySpec.From(options);
        (string, long, float[])[] round0 = [("A", 1, [1, -1]), ("B", 3, [1, -3])];
        (string, long, float[])[] round1 = [("A", 2, [0.5f, 0]), ("B", 2, [0.3f, -0.4f])];

        // Each round by a fresh aggregator, as separate serverless invocations would run them.
        await Store.PutManifestAsync(Fixtures.Manifest(0, spec, dimension: 2, sites: ["A", "B"]));
        await UploadAsync(0, round0);
        await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 0);
        await Store.PutManifestAsync(Fixtures.Manifest(1, spec, dimension: 2, sites: ["A", "B"]));
        await UploadAsync(1, round1);
        _clock.Now = Fixtures.T0.AddDays(1).AddHours(1);
        var outcome = await new RoundAggregator(Store, _clock).AggregateAsync("sepsis", 1);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        var stored = (await Store.GetGlobalModelAsync("sepsis", 1))!;

        // The same two rounds in one strategy instance.
        var strategy = StrategyFactory.Create(spec);
        strategy.Begin(null, Fixtures.Manifest(0, spec, dimension: 2, sites: ["A", "B"]));
        foreach (var (site, n, x) in round0) strategy.Accumulate(Fixtures.Header(site, n, 0, 2), x);
        var w1 = strategy.Finish();
        strategy.Begin(Fixtures.Model(w1), Fixtures.Manifest(1, spec, dimension: 2, sites: ["A", "B"]));
        foreach (var (site, n, x) in round1) strategy.Accumulate(Fixtures.Header(site, n, 1, 2), x);
        var w2 = strategy.Finish();

        Assert.Equal(w2, stored.Parameters.ToArray());
        TestSupport.AssertClose([0.1959788, -0.1869093], stored.Parameters.ToArray()); // the hand computation of the Core tests
        var state = (await Store.GetServerStateAsync("sepsis", 1))!;
        Assert.Equal(2, state.Header.Steps);
        Assert.Equal(["m", "v"], state.VectorNames);
    }

    [Fact]
    public async Task Missing_manifest_or_starting_model_is_an_error()
    {
        var aggregator = new RoundAggregator(Store, _clock);
        Assert.Contains("was never opened", (await Assert.ThrowsAsync<InvalidOperationException>(() => aggregator.AggregateAsync("sepsis", 0))).Message);

        await Store.PutManifestAsync(Fixtures.Manifest(round: 1));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => aggregator.AggregateAsync("sepsis", 1, closeNow: true));
        Assert.Contains("federations/sepsis/rounds/00000/global.cfm, which does not exist", e.Message);
    }
}

internal static class TestSupport
{
    public static void AssertClose(double[] expected, float[] actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }
}

/// <summary>Serves one object's bytes altered (its last float set to NaN) under the version the store recorded for the original.</summary>
internal sealed class AlteringStore(FederationStore inner, string path) : DelegatingFederationStore(inner)
{
    public override async Task<(Stream Stream, string? Version)?> OpenObjectWithVersionAsync(string objectPath, CancellationToken cancellationToken = default)
    {
        var opened = await Wrapped.OpenObjectWithVersionAsync(objectPath, cancellationToken);
        if (objectPath != path || opened is not { } o) return opened;
        using var copy = new MemoryStream();
        await using (o.Stream) await o.Stream.CopyToAsync(copy, cancellationToken);
        var bytes = copy.ToArray();
        BitConverter.GetBytes(float.NaN).CopyTo(bytes, bytes.Length - 4);
        return (new MemoryStream(bytes), o.Version);
    }
}
