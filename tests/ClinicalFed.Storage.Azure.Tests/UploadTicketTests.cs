extern alias StorageTests;

using System.Net;
using System.Web;
using Azure.Storage.Blobs;
using ClinicalFed.Federation;
using ClinicalFed.Storage.Azure;
using ClinicalFed.Storage.Coordination;
using StorageTests::ClinicalFed.Storage.Tests;
using ClinicalFed.Testing;

namespace ClinicalFed.Storage.Azure.Tests;

/// <summary>
/// Upload tickets (SAS URLs with create permission on one blob) against Azurite: what a ticket allows, what it
/// refuses, and a whole round run by the coordinator with sites uploading through tickets.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class UploadTicketTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly string _containerName = AzuriteFixture.NewContainerName("tickets");
    private static readonly HttpClient Http = new();
    private BlobFederationStore _store = null!;

    public Task InitializeAsync()
    {
        _store = new BlobFederationStore(azurite.ConnectionString, _containerName,
            new BlobFederationStoreOptions { Prefix = "fed", CreateContainerIfMissing = true });
        return _store.EnsureContainerAsync();
    }

    public async Task DisposeAsync() => await _store.Container.DeleteIfExistsAsync();

    private static readonly string UpdatePath = StoreLayout.Update("sepsis", 0, "A");

    private static byte[] UpdateBytes(long examples = 3) => Fixtures.UpdateBytes(Fixtures.Header("A", examples), [1, 2, 3]);

    private Task<Uri> TicketAsync(string path, TimeSpan? lifetime = null) =>
        _store.CreateUploadUrlAsync(path, DateTimeOffset.UtcNow + (lifetime ?? TimeSpan.FromMinutes(10)));

    /// <summary>A plain PUT of a block blob, without If-None-Match: what a site could try by hand.</summary>
    private static Task<HttpResponseMessage> RawPutAsync(Uri url, byte[] content)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, url) { Content = new ByteArrayContent(content) };
        request.Headers.Add("x-ms-blob-type", "BlockBlob");
        request.Headers.Add("x-ms-version", "2025-11-05");
        return Http.SendAsync(request);
    }

    private static Task<HttpResponseMessage> RawAsync(HttpMethod method, Uri url)
    {
        var request = new HttpRequestMessage(method, url);
        request.Headers.Add("x-ms-version", "2025-11-05");
        return Http.SendAsync(request);
    }

    [Fact]
    public async Task A_ticket_creates_exactly_its_blob_once()
    {
        var url = await TicketAsync(UpdatePath);
        var query = HttpUtility.ParseQueryString(url.Query);
        Assert.Equal("c", query["sp"]);
        Assert.Equal("b", query["sr"]);
        Assert.EndsWith("/fed/federations/sepsis/rounds/00000/updates/A.cfu", url.AbsolutePath);

        var file = UpdateBytes();
        await UploadTicketClient.UploadAsync(url, new MemoryStream(file));
        Assert.Equal(file, await _store.ReadAllBytesAsync(UpdatePath));
        Assert.Equal(["A"], await _store.ListUpdatesAsync("sepsis", 0));

        // Neither the helper nor a hand-made PUT can replace it.
        var e = await Assert.ThrowsAsync<StoreObjectExistsException>(() => UploadTicketClient.UploadAsync(url, new MemoryStream(UpdateBytes(4))));
        Assert.Equal("fed/" + UpdatePath, e.StorePath);
        var overwrite = await RawPutAsync(url, UpdateBytes(5));
        Assert.False(overwrite.IsSuccessStatusCode, $"overwriting with a create-only SAS answered {(int)overwrite.StatusCode}");
        Assert.Equal(file, await _store.ReadAllBytesAsync(UpdatePath));
    }

    [Fact]
    public async Task A_ticket_cannot_read_delete_or_reach_another_blob()
    {
        var url = await TicketAsync(UpdatePath);
        await UploadTicketClient.UploadAsync(url, new MemoryStream(UpdateBytes()));

        Assert.Equal(HttpStatusCode.Forbidden, (await RawAsync(HttpMethod.Get, url)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await RawAsync(HttpMethod.Head, url)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await RawAsync(HttpMethod.Delete, url)).StatusCode);
        Assert.True(await _store.ExistsAsync(UpdatePath));

        // The same signature on another blob name: B's update, or anything else.
        foreach (var other in new[] { StoreLayout.Update("sepsis", 0, "B"), StoreLayout.GlobalModel("sepsis", 0), "fed2/x" })
        {
            var moved = new UriBuilder(url) { Path = url.AbsolutePath.Replace("federations/sepsis/rounds/00000/updates/A.cfu", other) }.Uri;
            Assert.NotEqual(url, moved);
            var refused = await Assert.ThrowsAsync<UploadTicketRejectedException>(() => UploadTicketClient.UploadAsync(moved, new MemoryStream(UpdateBytes())));
            Assert.Equal(403, refused.Status);
            Assert.Contains("does not allow this upload", refused.Message);
            Assert.Equal(HttpStatusCode.Forbidden, (await RawPutAsync(moved, UpdateBytes())).StatusCode);
        }

        Assert.Equal(["federations/sepsis/rounds/00000/updates/A.cfu"], await AllBlobNamesAsync());
    }

    [Fact]
    public async Task An_expired_ticket_is_refused_with_a_clear_error()
    {
        var url = await TicketAsync(UpdatePath, TimeSpan.FromSeconds(2));
        Assert.NotNull(UploadTicketClient.ExpiryOf(url));
        await Task.Delay(TimeSpan.FromSeconds(3));
        var e = await Assert.ThrowsAsync<UploadTicketRejectedException>(() => UploadTicketClient.UploadAsync(url, new MemoryStream(UpdateBytes())));
        Assert.Equal(403, e.Status);
        Assert.Contains("expired", e.Message);
        Assert.False(await _store.ExistsAsync(UpdatePath));

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _store.CreateUploadUrlAsync(UpdatePath, DateTimeOffset.UtcNow.AddSeconds(-1)));
        await Assert.ThrowsAsync<ArgumentException>(() => _store.CreateUploadUrlAsync("../x", DateTimeOffset.UtcNow.AddMinutes(1)));
    }

    [Fact]
    public async Task A_round_runs_with_sites_uploading_through_tickets()
    {
        var coordinator = new FederationCoordinator(_store);
        await coordinator.CreateFederationAsync(new FederationConfig
        {
            Federation = "sepsis",
            Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = 3, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
            Strategy = new StrategySpec { Name = StrategyNames.FedAvg },
            Rounds = 1,
            Quorum = 2,
            RoundSeconds = 3600,
            Statistics = false,
            CreatedAt = DateTimeOffset.UtcNow,
        });
        var keys = new Dictionary<string, string>();
        foreach (var site in new[] { "A", "B" }) keys[site] = (await coordinator.RegisterSiteAsync("sepsis", site)).Key;
        Assert.Equal("round_opened", (await coordinator.TickAsync("sepsis")).Action);

        var payloads = new Dictionary<string, (long Examples, float[] Values)> { ["A"] = (1, [1, 2, 3]), ["B"] = (3, [5, 6, 7]) };
        foreach (var (site, (examples, values)) in payloads)
        {
            var ticket = await coordinator.IssueTicketAsync("sepsis", site, keys[site], TicketKinds.Update);
            Assert.Equal(StoreLayout.Update("sepsis", 0, site), ticket.Path);
            var header = Fixtures.Header(site, examples) with { CreatedAt = DateTimeOffset.UtcNow };
            await UploadTicketClient.UploadAsync(ticket.UploadUrl, new MemoryStream(Fixtures.UpdateBytes(header, values)));
        }

        await Assert.ThrowsAsync<TicketRefusedException>(() => coordinator.IssueTicketAsync("sepsis", "A", keys["A"], TicketKinds.Update));
        await coordinator.TickAsync("sepsis");
        var global = await _store.GetGlobalModelAsync("sepsis", 0);
        Assert.Equal([4f, 5f, 6f], global!.Parameters.ToArray()); // (1·[1,2,3] + 3·[5,6,7]) / 4
    }

    private async Task<string[]> AllBlobNamesAsync()
    {
        var names = new List<string>();
        await foreach (var item in _store.Container.GetBlobsAsync(new global::Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = "fed/" }))
            names.Add(item.Name["fed/".Length..]);
        return names.Where(n => !n.EndsWith(StoreLayout.LeaseFileName, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
    }
}
