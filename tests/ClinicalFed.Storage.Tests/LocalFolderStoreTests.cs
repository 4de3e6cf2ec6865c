using ClinicalFed.Federation;
using ClinicalFed.Storage;

namespace ClinicalFed.Storage.Tests;

public sealed class LocalFolderStoreTests : IDisposable
{
    private readonly TempStore _temp = new();

    private LocalFolderStore Store => _temp.Store;

    public void Dispose() => _temp.Dispose();

    private byte[] Bytes(string storePath) => File.ReadAllBytes(Store.FullPath(storePath));

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
        ], _temp.AllFiles());
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
    }

    [Fact]
    public async Task Every_object_is_write_once_and_a_second_write_leaves_the_bytes_unchanged()
    {
        async Task AssertWriteOnce(string path, Func<Task> first, Func<Task> second)
        {
            await first();
            var before = Bytes(path);
            var e = await Assert.ThrowsAsync<StoreObjectExistsException>(second);
            Assert.Equal(path, e.StorePath);
            Assert.Equal(before, Bytes(path));
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
        Assert.DoesNotContain(_temp.AllFiles(), f => f.EndsWith(".tmp"));
    }

    [Fact]
    public async Task Concurrent_writers_of_one_path_produce_exactly_one_winner()
    {
        var files = Enumerable.Range(1, 8).Select(i => Fixtures.UpdateBytes(Fixtures.Header("A", i), [i, i, i])).ToArray();
        var outcomes = await Task.WhenAll(files.Select(f => Task.Run(async () =>
        {
            try
            {
                return await Store.PutUpdateAsync("sepsis", 0, "A", new MemoryStream(f));
            }
            catch (StoreObjectExistsException)
            {
                return null;
            }
        })));

        var winner = Assert.Single(outcomes, o => o is not null)!;
        Assert.Equal(files[winner.ExampleCount - 1], Bytes(StoreLayout.Update("sepsis", 0, "A")));
        Assert.Equal(["federations/sepsis/rounds/00000/updates/A.cfu"], _temp.AllFiles());
    }

    [Fact]
    public async Task Upload_that_fails_midway_leaves_no_visible_or_temporary_file()
    {
        var file = Fixtures.UpdateBytes(Fixtures.Header("A", 3, dimension: 50_000), new float[50_000]);
        await Assert.ThrowsAsync<IOException>(() => Store.PutUpdateAsync("sepsis", 0, "A", new FailingStream(file, file.Length / 2)));

        Assert.Empty(_temp.AllFiles());
        Assert.Empty(await Store.ListUpdatesAsync("sepsis", 0));
        Assert.Null(await Store.OpenUpdateAsync("sepsis", 0, "A"));

        await Store.PutUpdateAsync("sepsis", 0, "A", new MemoryStream(file)); // the site can simply retry
        Assert.Equal(file, Bytes(StoreLayout.Update("sepsis", 0, "A")));
    }

    [Fact]
    public async Task Writer_that_throws_after_writing_bytes_leaves_nothing_visible()
    {
        const string path = "federations/sepsis/rounds/00000/global.cfm";
        await Assert.ThrowsAsync<InvalidOperationException>(() => Store.WriteOnceAsync(path, async (s, ct) =>
        {
            await s.WriteAsync(new byte[100_000], ct);
            await s.FlushAsync(ct);
            Assert.Single(_temp.AllFiles(), f => f.EndsWith(".tmp")); // bytes did reach the disk, in the temp file
            throw new InvalidOperationException("crash while writing (simulated)");
        }, CancellationToken.None));

        Assert.Empty(_temp.AllFiles());
        Assert.Null(await Store.GetGlobalModelAsync("sepsis", 0));
    }

    [Fact]
    public async Task Leftover_temporary_files_of_a_killed_process_are_invisible()
    {
        await Store.PutManifestAsync(Fixtures.Manifest());
        // What a process killed between writing and moving leaves behind: a hidden partial temp file.
        var updates = Store.FullPath(StoreLayout.Updates("sepsis", 0));
        Directory.CreateDirectory(updates);
        File.WriteAllBytes(Path.Combine(updates, ".A.cfu.0123456789abcdef.tmp"), [0x43, 0x46]);
        var round = Store.FullPath(StoreLayout.Round("sepsis", 0));
        File.WriteAllBytes(Path.Combine(round, ".global.cfm.0123456789abcdef.tmp"), [0x43]);

        Assert.Empty(await Store.ListUpdatesAsync("sepsis", 0));
        Assert.Null(await Store.OpenUpdateAsync("sepsis", 0, "A"));
        Assert.Null(await Store.GetGlobalModelAsync("sepsis", 0));
        await Store.PutUpdateAsync(Fixtures.Header("A", 1), new float[] { 1, 2, 3 });
        await Store.PutGlobalModelAsync(Fixtures.Model([1, 2, 3]));
        Assert.Equal(["A"], await Store.ListUpdatesAsync("sepsis", 0));
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

        e = await Assert.ThrowsAsync<FederationDataException>(() => Store.PutUpdateAsync("sepsis", 1, "B", new MemoryStream(file)));
        Assert.Contains("header field 'site' is 'A' but the update is stored for site 'B'", e.Message);
        Assert.Contains("header field 'round' is 0 but the update is stored for round 1", e.Message);

        Assert.Empty(_temp.AllFiles());
    }

    [Fact]
    public async Task Rounds_and_updates_are_listed_in_order()
    {
        Assert.Empty(await Store.ListRoundsAsync("sepsis"));
        Assert.Null(await Store.GetLatestRoundAsync("sepsis"));

        foreach (int r in new[] { 2, 0, 10, 1 }) await Store.PutManifestAsync(Fixtures.Manifest(round: r));
        Directory.CreateDirectory(Store.FullPath(StoreLayout.Round("sepsis", 11))); // a round folder without a manifest
        Directory.CreateDirectory(Path.Combine(Store.FullPath(StoreLayout.RoundsFolder("sepsis")), "notes"));
        Assert.Equal([0, 1, 2, 10], await Store.ListRoundsAsync("sepsis"));
        Assert.Equal(10, await Store.GetLatestRoundAsync("sepsis"));

        foreach (var site in new[] { "b", "A", "C", "a" }) await Store.PutUpdateAsync(Fixtures.Header(site, 1), new float[] { 1, 2, 3 });
        Assert.Equal(["A", "C", "a", "b"], await Store.ListUpdatesAsync("sepsis", 0));
        Assert.Empty(await Store.ListUpdatesAsync("sepsis", 1));
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
        Assert.Empty(_temp.AllFiles());
    }

    [Fact]
    public async Task Global_and_personalized_models_go_to_their_own_methods()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutGlobalModelAsync(Fixtures.Model([1], site: "A")));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.PutPersonalizedModelAsync(Fixtures.Model([1])));
    }

    [Fact]
    public async Task A_stored_file_that_contradicts_its_path_or_was_altered_is_reported()
    {
        // A model copied by hand to the wrong round folder.
        var path = Store.FullPath(StoreLayout.GlobalModel("sepsis", 3));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, Fixtures.Model([1, 2]).ToBytes());
        var e = await Assert.ThrowsAsync<FederationDataException>(() => Store.GetGlobalModelAsync("sepsis", 3));
        Assert.Contains("header field 'round' is 0, the path says 3", e.Message);

        await Store.PutManifestAsync(Fixtures.Manifest());
        var manifestPath = Store.FullPath(StoreLayout.Manifest("sepsis", 0));
        File.WriteAllText(manifestPath, File.ReadAllText(manifestPath).Replace("\"quorum\": 2", "\"quorum\": 0"));
        e = await Assert.ThrowsAsync<FederationDataException>(() => Store.GetManifestAsync("sepsis", 0));
        Assert.Equal(StoreLayout.Manifest("sepsis", 0), e.Origin);
        Assert.Contains("'quorum' is 0", e.Message);
    }
}
