using ClinicalFed.Federation;
using ClinicalFed.Storage;

namespace ClinicalFed.Storage.Tests;

/// <summary>The store contract (<see cref="FederationStoreContractTests"/>) on a local folder, plus what only a folder has.</summary>
public sealed class LocalFolderStoreTests : FederationStoreContractTests, IDisposable
{
    private readonly TempStore _temp = new();

    protected override FederationStore Store => _temp.Store;

    protected override Task<string[]> AllObjectsAsync() => Task.FromResult(_temp.AllFiles());

    protected override FederationStore OpenSameStore() => new LocalFolderStore(_temp.Folder);

    public void Dispose() => _temp.Dispose();

    private LocalFolderStore Local => _temp.Store;

    [Fact]
    public async Task An_update_verified_on_upload_is_not_hashed_again_until_it_changes()
    {
        await Local.PutManifestAsync(Fixtures.Manifest(round: 0, sites: ["A", "B"]));
        await Local.PutUpdateAsync(Fixtures.Header("A", 1), new float[] { 1, 1, 1 });
        await Local.PutUpdateAsync(Fixtures.Header("B", 1), new float[] { 3, 3, 3 });
        Assert.NotNull(await Local.ReadAllBytesAsync(StoreLayout.UpdateVerification("sepsis", 0, "A")));
        string sha = UpdateFile.ReadHeader(new MemoryStream(Fixtures.UpdateBytes(Fixtures.Header("A", 1), [1, 1, 1]))).PayloadSha256;
        await using (var s = await Local.OpenUpdateAsync("sepsis", 0, "A"))
            Assert.Equal(sha, Assert.IsType<VerifiedUpdateStream>(s).PayloadSha256);

        // Tampering with B's payload afterwards changes the file's version: it is verified in full and rejected.
        var path = Local.FullPath(StoreLayout.Update("sepsis", 0, "B"));
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^1] ^= 0x01;
        await Task.Delay(20); // a different modification time, as any later write has
        await File.WriteAllBytesAsync(path, bytes);
        await using (var s = await Local.OpenUpdateAsync("sepsis", 0, "B"))
            Assert.IsNotType<VerifiedUpdateStream>(s);
        var outcome = await new RoundAggregator(Local, new ManualClock(Fixtures.T0)).AggregateAsync("sepsis", 0, closeNow: true);
        var rejected = Assert.Single(outcome.Result!.Rejected);
        Assert.Equal("B", rejected.Site);
        Assert.Contains("payload_sha256", rejected.Reason);
        Assert.Equal(["A"], outcome.Result.Accepted.Select(a => a.Site));
    }

    [Fact]
    public async Task Write_once_has_exactly_one_winner_under_many_races()
    {
        // The contract test races 8 writers once; this races them on 100 fresh paths, from two store instances, through
        // the whole write path (ExclusiveFileTests races the publish step itself, which is where the old check-then-
        // rename of File.Move let two writers both win).
        var stores = new[] { Local, new LocalFolderStore(_temp.Folder) };
        var doubleWins = new List<string>();
        for (int p = 0; p < 100; p++)
        {
            string path = $"race/{p:D3}.bin";
            var winners = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
            {
                try
                {
                    await stores[i % 2].PutObjectAsync(path, async (s, ct) =>
                    {
                        await s.WriteAsync(new byte[] { (byte)i }, ct);
                        return true;
                    });
                    return 1;
                }
                catch (StoreObjectExistsException)
                {
                    return 0;
                }
            })));
            if (winners.Sum() != 1) doubleWins.Add($"{path}: {winners.Sum()} winners");
        }

        Assert.Empty(doubleWins);
        Assert.DoesNotContain(_temp.AllFiles(), f => f.EndsWith(".tmp"));
    }

    private byte[] Bytes(string storePath) => File.ReadAllBytes(Local.FullPath(storePath));

    [Fact]
    public async Task Objects_are_files_at_their_store_paths()
    {
        await Local.PutManifestAsync(Fixtures.Manifest(round: 0));
        await Local.PutUpdateAsync(Fixtures.Header("A", 3), new float[] { 1, 2, 3 });
        Assert.Equal(Fixtures.Manifest(round: 0).ToJsonBytes(), Bytes(StoreLayout.Manifest("sepsis", 0)));
        Assert.Equal(Path.Combine(_temp.Folder, "federations", "sepsis", "rounds", "00000", "updates", "A.cfu"), Local.FullPath(StoreLayout.Update("sepsis", 0, "A")));
        Assert.Throws<ArgumentException>(() => Local.FullPath("../outside"));
    }

    [Fact]
    public async Task Writer_that_throws_after_writing_bytes_leaves_nothing_visible()
    {
        const string path = "federations/sepsis/rounds/00000/global.cfm";
        await Assert.ThrowsAsync<InvalidOperationException>(() => Local.WriteOnceAsync(path, async (s, ct) =>
        {
            await s.WriteAsync(new byte[100_000], ct);
            await s.FlushAsync(ct);
            Assert.Single(_temp.AllFiles(), f => f.EndsWith(".tmp")); // bytes did reach the disk, in the temp file
            throw new InvalidOperationException("crash while writing (simulated)");
        }, CancellationToken.None));

        Assert.Empty(_temp.AllFiles());
        Assert.Null(await Local.GetGlobalModelAsync("sepsis", 0));
    }

    [Fact]
    public async Task Leftover_temporary_files_of_a_killed_process_are_invisible()
    {
        await Local.PutManifestAsync(Fixtures.Manifest());
        // What a process killed between writing and moving leaves behind: a hidden partial temp file.
        var updates = Local.FullPath(StoreLayout.Updates("sepsis", 0));
        Directory.CreateDirectory(updates);
        File.WriteAllBytes(Path.Combine(updates, ".A.cfu.0123456789abcdef.tmp"), [0x43, 0x46]);
        var round = Local.FullPath(StoreLayout.Round("sepsis", 0));
        File.WriteAllBytes(Path.Combine(round, ".global.cfm.0123456789abcdef.tmp"), [0x43]);

        Assert.Empty(await Local.ListUpdatesAsync("sepsis", 0));
        Assert.Null(await Local.OpenUpdateAsync("sepsis", 0, "A"));
        Assert.Null(await Local.GetGlobalModelAsync("sepsis", 0));
        await Local.PutUpdateAsync(Fixtures.Header("A", 1), new float[] { 1, 2, 3 });
        await Local.PutGlobalModelAsync(Fixtures.Model([1, 2, 3]));
        Assert.Equal(["A"], await Local.ListUpdatesAsync("sepsis", 0));
    }

    [Fact]
    public async Task Empty_folders_are_not_rounds()
    {
        await Local.PutManifestAsync(Fixtures.Manifest(round: 0));
        Directory.CreateDirectory(Local.FullPath(StoreLayout.Round("sepsis", 11))); // a round folder without a manifest
        Directory.CreateDirectory(Path.Combine(Local.FullPath(StoreLayout.RoundsFolder("sepsis")), "notes"));
        Assert.Equal([0], await Local.ListRoundsAsync("sepsis"));
        Assert.Equal(0, await Local.GetLatestRoundAsync("sepsis"));
    }

    [Fact]
    public async Task A_file_edited_on_disk_is_reported()
    {
        // A model copied by hand to the wrong round folder.
        var path = Local.FullPath(StoreLayout.GlobalModel("sepsis", 3));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, Fixtures.Model([1, 2]).ToBytes());
        var e = await Assert.ThrowsAsync<FederationDataException>(() => Local.GetGlobalModelAsync("sepsis", 3));
        Assert.Contains("header field 'round' is 0, the path says 3", e.Message);

        await Local.PutManifestAsync(Fixtures.Manifest());
        var manifestPath = Local.FullPath(StoreLayout.Manifest("sepsis", 0));
        File.WriteAllText(manifestPath, File.ReadAllText(manifestPath).Replace("\"quorum\": 2", "\"quorum\": 0"));
        e = await Assert.ThrowsAsync<FederationDataException>(() => Local.GetManifestAsync("sepsis", 0));
        Assert.Equal(StoreLayout.Manifest("sepsis", 0), e.Origin);
        Assert.Contains("'quorum' is 0", e.Message);
    }
}
