using System.Runtime.CompilerServices;
using ClinicalFed.Federation;
using ClinicalFed.Statistics;
using ClinicalFed.Storage;

// The blob store's tests run this contract too (and use Fixtures).
[assembly: InternalsVisibleTo("ClinicalFed.Storage.Azure.Tests")]

namespace ClinicalFed.Storage.Tests;

/// <summary>
/// The behaviour every <see cref="FederationStore"/> must have, whatever holds the bytes: write-once and atomic
/// objects, verified updates, listings, the versioned federation document, leases, statistics. A subclass per store
/// (<see cref="LocalFolderStoreTests"/>, and BlobFederationStoreTests against Azurite) runs all of it.
/// </summary>
public abstract class FederationStoreContractTests
{
    /// <summary>The store under test, empty at the start of each test.</summary>
    protected abstract FederationStore Store { get; }

    /// <summary>Every object the storage holds for this store, as store paths, sorted ordinally (temporary ones included).</summary>
    protected abstract Task<string[]> AllObjectsAsync();

    /// <summary>A second store over the same storage, as another process would open it.</summary>
    protected abstract FederationStore OpenSameStore();

    private Task<byte[]?> Bytes(string storePath) => Store.ReadAllBytesAsync(storePath);

    /// <summary>Every object except the upload verification records (<c>updates/&lt;site&gt;.verified.json</c>), which
    /// only stores that can version their objects write.</summary>
    private async Task<string[]> ObjectsWithoutUploadRecordsAsync() =>
        (await AllObjectsAsync()).Where(p => !p.EndsWith(".verified.json", StringComparison.Ordinal)).ToArray();

    private Task PutRawAsync(string storePath, byte[] bytes) => Store.PutObjectAsync(storePath, async (s, ct) =>
    {
        await s.WriteAsync(bytes, ct);
        return true;
    });

    [Fact]
    public async Task Objects_land_at_the_documented_paths()
    {
        await Store.PutManifestAsync(Fixtures.Manifest(round: 0));
        await Store.PutUpdateAsync(Fixtures.Header("A", 3), new float[] { 1, 2, 3 });
        await Store.PutGlobalModelAsync(Fixtures.Model([1, 2, 3]));
        await Store.PutPersonalizedModelAsync(Fixtures.Model([1, 2, 4], site: "A"));
        await Store.PutServerStateAsync(ServerState.Create(Fixtures.Federation, 0, StrategyNames.FedAvgM, 1, [("velocity", [0, 0, 0])]));
        await Store.PutRoundResultAsync(Fixtures.Result());

        Assert.Equal(
        [
            "federations/sepsis/rounds/00000/global.cfm",
            "federations/sepsis/rounds/00000/manifest.json",
            "federations/sepsis/rounds/00000/personalized/A.cfm",
            "federations/sepsis/rounds/00000/result.json",
            "federations/sepsis/rounds/00000/server-state.bin",
            "federations/sepsis/rounds/00000/updates/A.cfu",
        ], await ObjectsWithoutUploadRecordsAsync());
        Assert.Equal("federations/sepsis/rounds/00007/updates/site-1.cfu", StoreLayout.Update("sepsis", 7, "site-1"));
        Assert.Equal(GlobalModelPath.Format("sepsis", 7), StoreLayout.GlobalModel("sepsis", 7));
    }

    [Fact]
    public async Task Everything_reads_back()
    {
        var manifest = Fixtures.Manifest(round: 0);
        await Store.PutManifestAsync(manifest);
        await Store.PutUpdateAsync(Fixtures.Header("A", 3), new float[] { 1, 2, 3 });
        await Store.PutGlobalModelAsync(Fixtures.Model([1, 2, 3]));
        await Store.PutPersonalizedModelAsync(Fixtures.Model([1, 2, 4], site: "A"));
        await Store.PutServerStateAsync(ServerState.Create(Fixtures.Federation, 0, StrategyNames.FedAvgM, 1, [("velocity", [0.5f, 0, 0])]));
        await Store.PutRoundResultAsync(Fixtures.Result());

        Assert.Equal(manifest.ToJsonBytes(), (await Store.GetManifestAsync("sepsis", 0))!.ToJsonBytes());
        await using (var stream = (await Store.OpenUpdateAsync("sepsis", 0, "A"))!)
        {
            var (header, payload) = UpdateFile.Read(stream);
            Assert.Equal([1f, 2f, 3f], payload);
            Assert.Equal(3, header.ExampleCount);
        }

        var global = await Store.GetGlobalModelAsync("sepsis", 0);
        Assert.Equal([1f, 2f, 3f], global!.Parameters.ToArray());
        var personal = await Store.GetPersonalizedModelAsync("sepsis", 0, "A");
        Assert.Equal([1f, 2f, 4f], personal!.Parameters.ToArray());
        Assert.Equal(["A"], await Store.ListPersonalizedModelsAsync("sepsis", 0));
        var state = await Store.GetServerStateAsync("sepsis", 0);
        Assert.Equal(0.5f, state!.Vector("velocity")[0]);
        Assert.Equal("late", (await Store.GetRoundResultAsync("sepsis", 0))!.Rejected[0].Reason);

        Assert.Null(await Store.GetManifestAsync("sepsis", 1));
        Assert.Null(await Store.OpenUpdateAsync("sepsis", 0, "B"));
        Assert.Null(await Store.GetGlobalModelAsync("other", 0));
        Assert.Null(await Store.GetPersonalizedModelAsync("sepsis", 0, "B"));
        Assert.Null(await Store.GetServerStateAsync("sepsis", 3));
        Assert.Null(await Store.GetRoundResultAsync("sepsis", 3));
        Assert.True(await Store.ExistsAsync(StoreLayout.Manifest("sepsis", 0)));
        Assert.False(await Store.ExistsAsync(StoreLayout.Manifest("sepsis", 1)));
        Assert.Null(await Store.ReadAllBytesAsync(StoreLayout.Manifest("other", 0)));
    }

    [Fact]
    public async Task Every_object_is_write_once_and_a_second_write_leaves_the_bytes_unchanged()
    {
        async Task AssertWriteOnce(string path, Func<Task> first, Func<Task> second)
        {
            await first();
            var before = await Bytes(path);
            Assert.NotNull(before);
            var e = await Assert.ThrowsAsync<StoreObjectExistsException>(second);
            Assert.Equal(path, e.StorePath);
            Assert.Equal(before, await Bytes(path));
        }

        await AssertWriteOnce(StoreLayout.Manifest("sepsis", 0),
            () => Store.PutManifestAsync(Fixtures.Manifest()),
            () => Store.PutManifestAsync(Fixtures.Manifest() with { Quorum = 1 }));
        await AssertWriteOnce(StoreLayout.Update("sepsis", 0, "A"),
            () => Store.PutUpdateAsync(Fixtures.Header("A", 3), new float[] { 1, 2, 3 }),
            () => Store.PutUpdateAsync(Fixtures.Header("A", 4), new float[] { 9, 9, 9 }));
        await AssertWriteOnce(StoreLayout.GlobalModel("sepsis", 0),
            () => Store.PutGlobalModelAsync(Fixtures.Model([1, 2, 3])),
            () => Store.PutGlobalModelAsync(Fixtures.Model([3, 2, 1])));
        await AssertWriteOnce(StoreLayout.PersonalizedModel("sepsis", 0, "A"),
            () => Store.PutPersonalizedModelAsync(Fixtures.Model([1, 2, 3], site: "A")),
            () => Store.PutPersonalizedModelAsync(Fixtures.Model([3, 2, 1], site: "A")));
        await AssertWriteOnce(StoreLayout.ServerState("sepsis", 0),
            () => Store.PutServerStateAsync(ServerState.Create("sepsis", 0, "fedavgm", 1, [("velocity", [1])])),
            () => Store.PutServerStateAsync(ServerState.Create("sepsis", 0, "fedavgm", 2, [("velocity", [2])])));
        await AssertWriteOnce(StoreLayout.Result("sepsis", 0),
            () => Store.PutRoundResultAsync(Fixtures.Result()),
            () => Store.PutRoundResultAsync(Fixtures.Result() with { Quorum = 2 }));
        await AssertWriteOnce(StoreLayout.SiteStatistics("sepsis", "A"),
            () => Store.PutSiteStatisticsAsync("sepsis", "A", Statistics("A", 10)),
            () => Store.PutSiteStatisticsAsync("sepsis", "A", Statistics("A", 20)));
        await AssertWriteOnce(StoreLayout.FederatedStatistics("sepsis"),
            () => Store.PutFederatedStatisticsAsync("sepsis", Statistics("A", 10)),
            () => Store.PutFederatedStatisticsAsync("sepsis", Statistics("A", 20)));
        Assert.DoesNotContain(await AllObjectsAsync(), f => f.EndsWith(".tmp"));
    }

    [Fact]
    public async Task Concurrent_writers_of_one_path_produce_exactly_one_winner()
    {
        var files = Enumerable.Range(1, 8).Select(i => Fixtures.UpdateBytes(Fixtures.Header("A", i), [i, i, i])).ToArray();
        // Writers on separate store instances too, as separate processes would be.
        var stores = new[] { Store, OpenSameStore() };
        var outcomes = await Task.WhenAll(files.Select((f, i) => Task.Run(async () =>
        {
            try
            {
                return await stores[i % 2].PutUpdateAsync("sepsis", 0, "A", new MemoryStream(f));
            }
            catch (StoreObjectExistsException)
            {
                return null;
            }
        })));

        var winner = Assert.Single(outcomes, o => o is not null)!;
        Assert.Equal(files[winner.ExampleCount - 1], await Bytes(StoreLayout.Update("sepsis", 0, "A")));
        Assert.Equal(["federations/sepsis/rounds/00000/updates/A.cfu"], await ObjectsWithoutUploadRecordsAsync());
    }

    [Fact]
    public async Task Upload_that_fails_midway_leaves_no_visible_or_temporary_object()
    {
        var file = Fixtures.UpdateBytes(Fixtures.Header("A", 3, dimension: 50_000), new float[50_000]);
        await Assert.ThrowsAsync<IOException>(() => Store.PutUpdateAsync("sepsis", 0, "A", new FailingStream(file, file.Length / 2)));

        Assert.Empty(await AllObjectsAsync());
        Assert.Empty(await Store.ListUpdatesAsync("sepsis", 0));
        Assert.Null(await Store.OpenUpdateAsync("sepsis", 0, "A"));

        await Store.PutUpdateAsync("sepsis", 0, "A", new MemoryStream(file)); // the site can simply retry
        Assert.Equal(file, await Bytes(StoreLayout.Update("sepsis", 0, "A")));
    }

    [Theory]
    [InlineData(100_000)]
    [InlineData(9 << 20)] // beyond what a blob store buffers in memory
    public async Task Writer_that_throws_after_writing_bytes_leaves_nothing(int bytes)
    {
        const string path = "federations/sepsis/rounds/00000/global.cfm";
        await Assert.ThrowsAsync<InvalidOperationException>(() => Store.PutObjectAsync<bool>(path, async (s, ct) =>
        {
            await s.WriteAsync(new byte[bytes], ct);
            await s.FlushAsync(ct);
            throw new InvalidOperationException("crash while writing (simulated)");
        }));

        Assert.Empty(await AllObjectsAsync());
        Assert.Null(await Store.GetGlobalModelAsync("sepsis", 0));
        Assert.False(await Store.ExistsAsync(path));
    }

    [Fact]
    public async Task Large_objects_round_trip_byte_for_byte()
    {
        var content = new byte[(9 << 20) + 12345];
        new Random(7).NextBytes(content);
        const string path = "federations/sepsis/rounds/00000/server-state.bin";
        var returned = await Store.PutObjectAsync(path, async (s, ct) =>
        {
            // In uneven pieces, as a serializer would write.
            for (int offset = 0; offset < content.Length; offset += 777_777)
                await s.WriteAsync(content.AsMemory(offset, Math.Min(777_777, content.Length - offset)), ct);
            return 42;
        });

        Assert.Equal(42, returned);
        Assert.Equal(content, await Bytes(path));
    }

    [Fact]
    public async Task Invalid_or_misaddressed_updates_are_refused_before_anything_is_stored()
    {
        var file = Fixtures.UpdateBytes(Fixtures.Header("A", 3), [1, 2, 3]);
        var corrupt = (byte[])file.Clone();
        corrupt[^1] ^= 0xFF;
        var e = await Assert.ThrowsAsync<FederationDataException>(() => Store.PutUpdateAsync("sepsis", 0, "A", new MemoryStream(corrupt)));
        Assert.Equal("federations/sepsis/rounds/00000/updates/A.cfu", e.Origin);
        Assert.Contains("payload_sha256", e.Message);

        var truncated = file[..^4];
        e = await Assert.ThrowsAsync<FederationDataException>(() => Store.PutUpdateAsync("sepsis", 0, "A", new MemoryStream(truncated)));
        Assert.Contains("truncated", e.Message);

        e = await Assert.ThrowsAsync<FederationDataException>(() => Store.PutUpdateAsync("sepsis", 1, "B", new MemoryStream(file)));
        Assert.Contains("header field 'site' is 'A' but the update is stored for site 'B'", e.Message);
        Assert.Contains("header field 'round' is 0 but the update is stored for round 1", e.Message);

        Assert.Empty(await AllObjectsAsync());
    }

    [Fact]
    public async Task Rounds_and_updates_are_listed_in_order()
    {
        Assert.Empty(await Store.ListRoundsAsync("sepsis"));
        Assert.Null(await Store.GetLatestRoundAsync("sepsis"));

        foreach (int r in new[] { 2, 0, 10, 1 }) await Store.PutManifestAsync(Fixtures.Manifest(round: r));
        await Store.PutRoundResultAsync(Fixtures.Result(round: 11)); // a round folder without a manifest
        await PutRawAsync(StoreLayout.RoundsFolder("sepsis") + "/notes/readme.txt", "not a round"u8.ToArray());
        Assert.Equal([0, 1, 2, 10], await Store.ListRoundsAsync("sepsis"));
        Assert.Equal(10, await Store.GetLatestRoundAsync("sepsis"));

        foreach (var site in new[] { "b", "A", "C", "a" }) await Store.PutUpdateAsync(Fixtures.Header(site, 1), new float[] { 1, 2, 3 });
        Assert.Equal(["A", "C", "a", "b"], await Store.ListUpdatesAsync("sepsis", 0));
        Assert.Empty(await Store.ListUpdatesAsync("sepsis", 1));
    }

    [Fact]
    public async Task Listing_gives_immediate_children_sorted_without_hidden_names()
    {
        await PutRawAsync("federations/f1/a.json", [1]);
        await PutRawAsync("federations/f1/sub/deeper/b.json", [2]);
        await PutRawAsync("federations/f1/.hidden", [3]);
        await PutRawAsync("federations/f1/B.json", [4]);
        await PutRawAsync("federations/f10/x.json", [5]); // shares the prefix "federations/f1" as a string

        Assert.Equal(["B.json", "a.json", "sub"], await Store.ListAsync("federations/f1"));
        Assert.Equal(["deeper"], await Store.ListAsync("federations/f1/sub"));
        Assert.Empty(await Store.ListAsync("federations/none"));
        Assert.Empty(await Store.ListAsync("federations/f1/a.json/x"));
        Assert.Equal(["f1", "f10"], await Store.ListFederationsAsync());
    }

    [Theory]
    [InlineData("..")]
    [InlineData("../x")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData("CON")]
    [InlineData(".hidden")]
    public async Task Names_are_validated_with_clear_errors(string bad)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Store.ListRoundsAsync(bad));
        Assert.Contains("federation", e.Message);
        e = await Assert.ThrowsAsync<ArgumentException>(() => Store.OpenUpdateAsync("sepsis", 0, bad));
        Assert.Contains("site", e.Message);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.GetManifestAsync("sepsis", 100_000));
        Assert.Empty(await AllObjectsAsync());
    }

    [Fact]
    public async Task Global_and_personalized_models_go_to_their_own_methods()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutGlobalModelAsync(Fixtures.Model([1], site: "A")));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutPersonalizedModelAsync(Fixtures.Model([1])));
    }

    [Fact]
    public async Task A_stored_object_that_contradicts_its_path_or_was_altered_is_reported()
    {
        // A model copied by hand to the wrong round folder.
        await PutRawAsync(StoreLayout.GlobalModel("sepsis", 3), Fixtures.Model([1, 2]).ToBytes());
        var e = await Assert.ThrowsAsync<FederationDataException>(() => Store.GetGlobalModelAsync("sepsis", 3));
        Assert.Contains("header field 'round' is 0, the path says 3", e.Message);

        // A manifest edited by hand.
        var text = System.Text.Encoding.UTF8.GetString(Fixtures.Manifest().ToJsonBytes()).Replace("\"quorum\": 2", "\"quorum\": 0");
        await PutRawAsync(StoreLayout.Manifest("sepsis", 0), System.Text.Encoding.UTF8.GetBytes(text));
        e = await Assert.ThrowsAsync<FederationDataException>(() => Store.GetManifestAsync("sepsis", 0));
        Assert.Equal(StoreLayout.Manifest("sepsis", 0), e.Origin);
        Assert.Contains("'quorum' is 0", e.Message);
    }

    // ---- the federation document (versioned) ----------------------------------------------------------------

    [Fact]
    public async Task Federation_document_is_created_once_and_replaced_only_from_its_current_version()
    {
        Assert.Null(await Store.GetFederationAsync("sepsis"));
        string v1 = await Store.PutFederationAsync(Config("first"), null);
        var conflict = await Assert.ThrowsAsync<StoreVersionConflictException>(() => Store.PutFederationAsync(Config("again"), null));
        Assert.Equal(StoreLayout.FederationDocument("sepsis"), conflict.StorePath);

        var (config, version) = (await Store.GetFederationAsync("sepsis"))!.Value;
        Assert.Equal("first", config.Description);
        Assert.Equal(v1, version);

        string v2 = await Store.PutFederationAsync(Config("second"), v1);
        Assert.NotEqual(v1, v2);
        Assert.Equal("second", (await Store.GetFederationAsync("sepsis"))!.Value.Config.Description);
        Assert.Equal(v2, (await Store.GetFederationAsync("sepsis"))!.Value.Version);

        // A writer that read v1 lost the race: nothing is written.
        await Assert.ThrowsAsync<StoreVersionConflictException>(() => Store.PutFederationAsync(Config("stale"), v1));
        Assert.Equal("second", (await Store.GetFederationAsync("sepsis"))!.Value.Config.Description);

        // Replacing a document that does not exist is a conflict too.
        await Assert.ThrowsAsync<StoreVersionConflictException>(() => Store.PutFederationAsync(Config("ghost") with { Federation = "other" }, v2));
        Assert.Null(await Store.GetFederationAsync("other"));
    }

    [Fact]
    public async Task Of_concurrent_replacements_from_one_version_exactly_one_wins()
    {
        string v1 = await Store.PutFederationAsync(Config("start"), null);
        var stores = new[] { Store, OpenSameStore() };
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(async () =>
        {
            try
            {
                await stores[i % 2].PutFederationAsync(Config($"writer {i}"), v1);
                return i;
            }
            catch (StoreVersionConflictException)
            {
                return -1;
            }
        })));

        int winner = Assert.Single(outcomes, o => o >= 0);
        Assert.Equal($"writer {winner}", (await Store.GetFederationAsync("sepsis"))!.Value.Config.Description);
    }

    [Fact]
    public async Task Versioned_primitive_returns_content_and_version()
    {
        const string path = "federations/sepsis/notes.json";
        Assert.Null(await Store.GetVersionedAsync(path));
        string v1 = await Store.PutVersionedAsync(path, "{\"a\":1}"u8.ToArray(), null);
        var stored = await Store.GetVersionedAsync(path);
        Assert.Equal("{\"a\":1}"u8.ToArray(), stored!.Content);
        Assert.Equal(v1, stored.Version);
        string v2 = await OpenSameStore().PutVersionedAsync(path, "{\"a\":2}"u8.ToArray(), v1);
        Assert.Equal(v2, (await Store.GetVersionedAsync(path))!.Version);
        await Assert.ThrowsAsync<StoreVersionConflictException>(() => Store.PutVersionedAsync(path, "{\"a\":3}"u8.ToArray(), v1));
        Assert.Equal("{\"a\":2}"u8.ToArray(), (await Store.GetVersionedAsync(path))!.Content);
    }

    // ---- leases ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_lease_is_exclusive_until_released()
    {
        string path = StoreLayout.Lease("sepsis");
        var other = OpenSameStore();
        var lease = await Store.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(30));
        Assert.NotNull(lease);
        Assert.Equal(path, lease.Path);
        Assert.Null(await other.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(30)));
        Assert.Null(await Store.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(30))); // not re-entrant either
        await lease.RenewAsync();
        Assert.Null(await other.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(30)));

        // Another path is independent.
        await using (var second = await other.TryAcquireLeaseAsync(StoreLayout.Lease("other"), TimeSpan.FromSeconds(30)))
            Assert.NotNull(second);

        await lease.DisposeAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => lease.RenewAsync());
        await lease.DisposeAsync(); // releasing twice is harmless

        var next = await other.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(30));
        Assert.NotNull(next);
        Assert.Null(await Store.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(30)));
        await next.DisposeAsync();
    }

    [Fact]
    public async Task Of_concurrent_lease_takers_exactly_one_succeeds()
    {
        string path = StoreLayout.Lease("sepsis");
        var stores = new[] { Store, OpenSameStore() };
        var leases = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(() => stores[i % 2].TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(30)))));
        var held = Assert.Single(leases, l => l is not null)!;
        await held.DisposeAsync();
    }

    // ---- statistics ------------------------------------------------------------------------------------------

    [Fact]
    public async Task Statistics_round_trip_and_are_checked()
    {
        Assert.Null(await Store.GetSiteStatisticsAsync("sepsis", "A"));
        Assert.Empty(await Store.ListSiteStatisticsAsync("sepsis"));
        var a = Statistics("A", 10);
        var b = Statistics("B", 7);
        await Store.PutSiteStatisticsAsync("sepsis", "B", b);
        await Store.PutSiteStatisticsAsync("sepsis", "A", a);
        Assert.Equal(["A", "B"], await Store.ListSiteStatisticsAsync("sepsis"));
        Assert.Equal(a.ToJson(), (await Store.GetSiteStatisticsAsync("sepsis", "A"))!.ToJson());

        var e = await Assert.ThrowsAsync<FederationDataException>(() => Store.PutSiteStatisticsAsync("sepsis", "C", a));
        Assert.Contains("not of site 'C' alone", e.Message);
        Assert.False(await Store.ExistsAsync(StoreLayout.SiteStatistics("sepsis", "C")));

        Assert.Null(await Store.GetFederatedStatisticsAsync("sepsis"));
        var merged = StatisticsSet.Merge([a, b]);
        await Store.PutFederatedStatisticsAsync("sepsis", merged);
        var back = (await Store.GetFederatedStatisticsAsync("sepsis"))!;
        Assert.Equal(merged.ToJson(), back.ToJson());
        Assert.Equal(17, back.Rows);

        await PutRawAsync(StoreLayout.SiteStatistics("sepsis", "D"), "{ not json"u8.ToArray());
        var bad = await Assert.ThrowsAsync<FederationDataException>(() => Store.GetSiteStatisticsAsync("sepsis", "D"));
        Assert.Equal(StoreLayout.SiteStatistics("sepsis", "D"), bad.Origin);
    }

    // ---- fixtures --------------------------------------------------------------------------------------------

    protected static FederationConfig Config(string description) => new()
    {
        Federation = Fixtures.Federation,
        Description = description,
        Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = 3, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
        Strategy = new StrategySpec { Name = StrategyNames.FedAvg },
        Rounds = 3,
        Quorum = 1,
        RoundSeconds = 3600,
        CreatedAt = Fixtures.T0,
    };

    protected static StatisticsSet Statistics(string site, int rows)
    {
        var values = new float[rows * 2];
        for (int i = 0; i < rows; i++)
        {
            values[2 * i] = 60 + i;
            values[2 * i + 1] = i % 3 == 0 ? float.NaN : 36.5f + i * 0.1f;
        }

        return StatisticsSet.Compute(site, "sepsis-hourly", "1.0.0", ["hr", "temp"],
            [new HistogramSpec(0, 200, 20), new HistogramSpec(30, 45, 15)], values, 2);
    }
}
