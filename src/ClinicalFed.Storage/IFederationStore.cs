using ClinicalFed.Federation;
using ClinicalFed.Statistics;

namespace ClinicalFed.Storage;

/// <summary>
/// Where a federation's files live: round manifests, sites' updates, global and personalized models, server state
/// and round results, at the paths of <see cref="StoreLayout"/>. Every object is write-once: a second write to the
/// same path throws <see cref="StoreObjectExistsException"/> and leaves the stored bytes unchanged. Writes are atomic:
/// a reader sees a complete object or none. Getters return null when the object does not exist. Everything read or
/// written is validated (<see cref="FederationDataException"/> names the store path and field).
/// </summary>
public interface IFederationStore
{
    /// <summary>Writes a round's manifest (federation and round from the manifest).</summary>
    Task PutManifestAsync(RoundManifest manifest, CancellationToken cancellationToken = default);

    Task<RoundManifest?> GetManifestAsync(string federation, int round, CancellationToken cancellationToken = default);

    /// <summary>Rounds of the federation that have a manifest, ascending.</summary>
    Task<IReadOnlyList<int>> ListRoundsAsync(string federation, CancellationToken cancellationToken = default);

    /// <summary>The highest round with a manifest, or null when there is none.</summary>
    Task<int?> GetLatestRoundAsync(string federation, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores a site's update file as received (streamed, constant memory), after verifying all of it: framing,
    /// header, payload length, SHA-256, finite values; and that its header's federation, round and site match the
    /// arguments. Returns the header.
    /// </summary>
    Task<UpdateHeader> PutUpdateAsync(string federation, int round, string site, Stream updateFile, CancellationToken cancellationToken = default);

    /// <summary>Sites with an update in the round, sorted ordinally.</summary>
    Task<IReadOnlyList<string>> ListUpdatesAsync(string federation, int round, CancellationToken cancellationToken = default);

    /// <summary>A read stream over a stored update file (caller disposes), or null.</summary>
    Task<Stream?> OpenUpdateAsync(string federation, int round, string site, CancellationToken cancellationToken = default);

    /// <summary>Writes a round's global model (federation and round from its header, whose site must be null).</summary>
    Task PutGlobalModelAsync(ModelFile model, CancellationToken cancellationToken = default);

    Task<ModelFile?> GetGlobalModelAsync(string federation, int round, CancellationToken cancellationToken = default);

    /// <summary>Writes a site's personalized model for a round (federation, round and site from its header).</summary>
    Task PutPersonalizedModelAsync(ModelFile model, CancellationToken cancellationToken = default);

    Task<ModelFile?> GetPersonalizedModelAsync(string federation, int round, string site, CancellationToken cancellationToken = default);

    /// <summary>Sites with a personalized model in the round, sorted ordinally.</summary>
    Task<IReadOnlyList<string>> ListPersonalizedModelsAsync(string federation, int round, CancellationToken cancellationToken = default);

    /// <summary>Writes the server state a round's aggregation left (federation and round from its header).</summary>
    Task PutServerStateAsync(ServerState state, CancellationToken cancellationToken = default);

    Task<ServerState?> GetServerStateAsync(string federation, int round, CancellationToken cancellationToken = default);

    /// <summary>Writes a round's result (federation and round from the result).</summary>
    Task PutRoundResultAsync(RoundResult result, CancellationToken cancellationToken = default);

    Task<RoundResult?> GetRoundResultAsync(string federation, int round, CancellationToken cancellationToken = default);

    /// <summary>Federations that have a folder in the store, sorted ordinally.</summary>
    Task<IReadOnlyList<string>> ListFederationsAsync(CancellationToken cancellationToken = default);

    /// <summary>The federation document and its version tag, or null.</summary>
    Task<(FederationConfig Config, string Version)?> GetFederationAsync(string federation, CancellationToken cancellationToken = default);

    /// <summary>
    /// Creates (<paramref name="expectedVersion"/> null) or replaces the federation document, only if nobody changed
    /// it since it was read with that version; otherwise throws <see cref="StoreVersionConflictException"/>.
    /// Returns the new version.
    /// </summary>
    Task<string> PutFederationAsync(FederationConfig config, string? expectedVersion, CancellationToken cancellationToken = default);

    /// <summary>Writes a site's aggregate statistics of its training rows (write-once; the set must be of that site alone).</summary>
    Task PutSiteStatisticsAsync(string federation, string site, StatisticsSet statistics, CancellationToken cancellationToken = default);

    Task<StatisticsSet?> GetSiteStatisticsAsync(string federation, string site, CancellationToken cancellationToken = default);

    /// <summary>Sites that uploaded statistics, sorted ordinally.</summary>
    Task<IReadOnlyList<string>> ListSiteStatisticsAsync(string federation, CancellationToken cancellationToken = default);

    /// <summary>Writes the merged statistics every site imputes and standardizes with (write-once).</summary>
    Task PutFederatedStatisticsAsync(string federation, StatisticsSet statistics, CancellationToken cancellationToken = default);

    Task<StatisticsSet?> GetFederatedStatisticsAsync(string federation, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes the exclusive lease on a store path (the aggregator leases <see cref="StoreLayout.Lease"/>), or returns
    /// null at once when another holder has it.
    /// </summary>
    Task<IStoreLease?> TryAcquireLeaseAsync(string path, TimeSpan duration, CancellationToken cancellationToken = default);
}

/// <summary>Conveniences over <see cref="IFederationStore"/>.</summary>
public static class FederationStoreExtensions
{
    /// <summary>Serializes and stores an update (federation, round and site from the header). Returns the header as written.</summary>
    public static async Task<UpdateHeader> PutUpdateAsync(this IFederationStore store, UpdateHeader header, ReadOnlyMemory<float> payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(header);
        using var buffer = new MemoryStream();
        UpdateFile.Write(buffer, header, payload.Span);
        buffer.Position = 0;
        return await store.PutUpdateAsync(header.Federation, header.Round, header.Site, buffer, cancellationToken).ConfigureAwait(false);
    }
}
