extern alias StorageTests;

using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using ClinicalFed.Federation;
using ClinicalFed.Storage.Azure;
using StorageTests::ClinicalFed.Storage.Tests;
using ClinicalFed.Testing;

namespace ClinicalFed.Storage.Azure.Tests;

/// <summary>
/// The store contract (<see cref="FederationStoreContractTests"/>) on Azure Blob Storage (Azurite), in a fresh
/// container under a prefix, plus what only the blob store has: blob names, container creation, lease expiry and
/// retried writes whose response was lost.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class BlobFederationStoreTests(AzuriteFixture azurite) : FederationStoreContractTests, IAsyncLifetime
{
    private const string StorePrefix = "clinicalfed/test";
    private readonly string _containerName = AzuriteFixture.NewContainerName("store");
    private BlobFederationStore? _store;

    protected override FederationStore Store => _store ??= NewStore();

    protected override FederationStore OpenSameStore() => NewStore();

    protected override async Task<string[]> AllObjectsAsync()
    {
        var names = new List<string>();
        if (!(await Container().ExistsAsync()).Value) return [];
        await foreach (var item in Container().GetBlobsAsync(new GetBlobsOptions { Prefix = StorePrefix + "/" }))
            names.Add(item.Name[(StorePrefix.Length + 1)..]);
        return names.Order(StringComparer.Ordinal).ToArray();
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Container().DeleteIfExistsAsync();

    private BlobContainerClient Container() => new(azurite.ConnectionString, _containerName, BlobFederationStore.CreateClientOptions());

    private BlobFederationStore NewStore(string prefix = StorePrefix, bool create = true, BlobClientOptions? clientOptions = null) =>
        new(azurite.ConnectionString, _containerName, new BlobFederationStoreOptions { Prefix = prefix, CreateContainerIfMissing = create, ClientOptions = clientOptions });

    [Fact]
    public async Task Blob_names_are_the_prefix_and_the_store_path()
    {
        await Store.PutManifestAsync(Fixtures.Manifest());
        var names = new List<string>();
        await foreach (var item in Container().GetBlobsAsync()) names.Add(item.Name);
        Assert.Equal(["clinicalfed/test/federations/sepsis/rounds/00000/manifest.json"], names);
        Assert.Equal("clinicalfed/test/federations/sepsis/federation.json", ((BlobFederationStore)Store).BlobName(StoreLayout.FederationDocument("sepsis")));

        // Stores under other prefixes of the same container see none of it.
        var beside = NewStore("clinicalfed/test2");
        Assert.Empty(await beside.ListFederationsAsync());
        Assert.Null(await beside.GetManifestAsync("sepsis", 0));
        await beside.PutManifestAsync(Fixtures.Manifest()); // no conflict: another store
        var root = NewStore("/");
        Assert.Equal("", root.Prefix);
        Assert.Empty(await root.ListFederationsAsync());
        Assert.Equal(["clinicalfed"], await root.ListAsync(""));

        Assert.Throws<ArgumentException>(() => NewStore("a/../b"));
        Assert.Throws<ArgumentException>(() => ((BlobFederationStore)Store).BlobName("federations//x"));
    }

    [Fact]
    public async Task A_missing_container_reads_as_empty_and_is_created_only_when_asked()
    {
        var store = NewStore(create: false);
        Assert.Empty(await store.ListFederationsAsync());
        Assert.Null(await store.GetManifestAsync("sepsis", 0));
        Assert.Null(await store.GetFederationAsync("sepsis"));
        Assert.False(await store.ExistsAsync(StoreLayout.Manifest("sepsis", 0)));
        var e = await Assert.ThrowsAsync<RequestFailedException>(() => store.PutManifestAsync(Fixtures.Manifest()));
        Assert.Equal(404, e.Status);
        Assert.False((await Container().ExistsAsync()).Value);

        await NewStore(create: true).PutManifestAsync(Fixtures.Manifest());
        Assert.True((await Container().ExistsAsync()).Value);
        Assert.NotNull(await store.GetManifestAsync("sepsis", 0));
    }

    [Fact]
    public async Task An_abandoned_lease_expires_and_its_holder_learns_it_lost_it()
    {
        string path = StoreLayout.Lease("sepsis");
        var crashed = await Store.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(1)); // clamped to the 15 s minimum
        Assert.NotNull(crashed);
        var other = OpenSameStore();
        Assert.Null(await other.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(15)));

        await Task.Delay(TimeSpan.FromSeconds(16));
        var taken = await other.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(15));
        Assert.NotNull(taken);
        var lost = await Assert.ThrowsAsync<InvalidOperationException>(() => crashed.RenewAsync());
        Assert.Contains("lost", lost.Message);
        await crashed.DisposeAsync(); // does not release the new holder's lease
        Assert.Null(await Store.TryAcquireLeaseAsync(path, TimeSpan.FromSeconds(15)));
        await taken.DisposeAsync();
    }

    [Fact]
    public async Task A_write_whose_response_was_lost_is_retried_into_success_not_a_conflict_with_itself()
    {
        var drop = new DropFirstResponsePolicy();
        var options = BlobFederationStore.CreateClientOptions();
        options.Retry.Delay = TimeSpan.FromMilliseconds(10);
        options.AddPolicy(drop, HttpPipelinePosition.PerRetry);
        await Container().CreateIfNotExistsAsync();
        var store = NewStore(create: false, clientOptions: options);

        drop.Armed = true;
        await store.PutManifestAsync(Fixtures.Manifest());
        Assert.Equal(1, drop.Dropped);
        Assert.NotNull(await Store.GetManifestAsync("sepsis", 0));
        await Assert.ThrowsAsync<StoreObjectExistsException>(() => Store.PutManifestAsync(Fixtures.Manifest())); // others still lose

        drop.Armed = true;
        string v1 = await store.PutFederationAsync(Config("first"), null);
        Assert.Equal(2, drop.Dropped);
        Assert.Equal(v1, (await Store.GetFederationAsync("sepsis"))!.Value.Version);
        drop.Armed = true;
        string v2 = await store.PutFederationAsync(Config("second"), v1);
        Assert.Equal(3, drop.Dropped);
        Assert.Equal(v2, (await Store.GetFederationAsync("sepsis"))!.Value.Version);
        await Assert.ThrowsAsync<StoreVersionConflictException>(() => Store.PutFederationAsync(Config("stale"), v1));
    }

    [Fact]
    public async Task Update_files_are_read_back_as_streams_by_the_aggregator()
    {
        var payload = Enumerable.Range(0, 300_000).Select(i => (float)Math.Sin(i)).ToArray(); // 1.2 MB
        await Store.PutManifestAsync(Fixtures.Manifest(dimension: payload.Length, sites: ["A", "B"], quorum: 2));
        await Store.PutUpdateAsync(Fixtures.Header("A", 1, dimension: payload.Length), payload);
        await Store.PutUpdateAsync(Fixtures.Header("B", 3, dimension: payload.Length), payload.Select(v => v + 1).ToArray());

        var outcome = await new RoundAggregator(Store).AggregateAsync("sepsis", 0);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        var global = (await Store.GetGlobalModelAsync("sepsis", 0))!.Parameters.ToArray();
        Assert.Equal(payload[12345] + 0.75f, global[12345], 1e-5f);
        Assert.Equal(RoundOutcomeStatus.AlreadyCompleted, (await new RoundAggregator(OpenSameStore()).AggregateAsync("sepsis", 0)).Status);
    }

    /// <summary>Lets the first armed PUT reach the service, then fails as if the connection broke before the response.</summary>
    private sealed class DropFirstResponsePolicy : HttpPipelinePolicy
    {
        public volatile bool Armed;

        public int Dropped { get; private set; }

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            ProcessNext(message, pipeline);
            Drop(message);
        }

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            await ProcessNextAsync(message, pipeline);
            Drop(message);
        }

        private void Drop(HttpMessage message)
        {
            if (!Armed || message.Request.Method != RequestMethod.Put || message.Response.Status is not (200 or 201)) return;
            Armed = false;
            Dropped++;
            throw new IOException("connection reset after the request was processed (simulated)");
        }
    }
}
