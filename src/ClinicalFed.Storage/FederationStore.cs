using ClinicalFed.Federation;
using ClinicalFed.Statistics;

namespace ClinicalFed.Storage;

/// <summary>A mutable object's bytes and the opaque version tag (an ETag) to replace it conditionally.</summary>
public sealed record VersionedObject(byte[] Content, string Version);

/// <summary>An exclusive, time-limited lock on a store path; disposing releases it.</summary>
public interface IStoreLease : IAsyncDisposable
{
    string Path { get; }

    /// <summary>Extends the lease by its duration; throws if it was lost.</summary>
    Task RenewAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// The typed federation store (<see cref="IFederationStore"/>) over a handful of storage primitives, so that every
/// store validates, names and lays out objects identically: a local folder (<see cref="LocalFolderStore"/>) and
/// Azure Blob Storage implement only the primitives.
/// </summary>
public abstract class FederationStore : IFederationStore
{
    // ---- primitives -------------------------------------------------------------------------------------------

    /// <summary>
    /// Writes <paramref name="path"/> once, atomically: <paramref name="write"/> produces the content, and only if
    /// it returns normally does the object become visible, complete. Throws <see cref="StoreObjectExistsException"/>
    /// when the object exists (also when a concurrent writer wins), leaving the stored bytes unchanged.
    /// </summary>
    public abstract Task<T> PutObjectAsync<T>(string path, Func<Stream, CancellationToken, Task<T>> write, CancellationToken cancellationToken = default);

    /// <summary>A read stream over a stored object (caller disposes), or null when it does not exist.</summary>
    public abstract Task<Stream?> OpenObjectAsync(string path, CancellationToken cancellationToken = default);

    public abstract Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Names (last path segment) of the objects and sub-folders directly under <paramref name="folder"/>, sorted
    /// ordinally, without temporary or hidden names; empty when the folder does not exist.
    /// </summary>
    public abstract Task<IReadOnlyList<string>> ListAsync(string folder, CancellationToken cancellationToken = default);

    /// <summary>A mutable object and its version tag, or null.</summary>
    public abstract Task<VersionedObject?> GetVersionedAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>
    /// Creates (<paramref name="expectedVersion"/> null: only if absent) or replaces (only if the stored version is
    /// still <paramref name="expectedVersion"/>) a mutable object, atomically. Returns the new version; throws
    /// <see cref="StoreVersionConflictException"/> when another writer got there first.
    /// </summary>
    public abstract Task<string> PutVersionedAsync(string path, ReadOnlyMemory<byte> content, string? expectedVersion, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes the exclusive lease on <paramref name="path"/> for <paramref name="duration"/>, or returns null at once
    /// when someone else holds it.
    /// </summary>
    public abstract Task<IStoreLease?> TryAcquireLeaseAsync(string path, TimeSpan duration, CancellationToken cancellationToken = default);

    // ---- rounds ------------------------------------------------------------------------------------------------

    public Task PutManifestAsync(RoundManifest manifest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        string path = StoreLayout.Manifest(manifest.Federation, manifest.Round);
        manifest.EnsureValid(path);
        return PutBytesAsync(path, manifest.ToJsonBytes(), cancellationToken);
    }

    public async Task<RoundManifest?> GetManifestAsync(string federation, int round, CancellationToken cancellationToken = default)
    {
        string path = StoreLayout.Manifest(federation, round);
        var bytes = await ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        if (bytes is null) return null;
        var manifest = RoundManifest.Parse(bytes, path);
        CheckIdentity(path, manifest.Federation, manifest.Round, null, federation, round, null);
        return manifest;
    }

    public async Task<IReadOnlyList<int>> ListRoundsAsync(string federation, CancellationToken cancellationToken = default)
    {
        var names = await ListAsync(StoreLayout.RoundsFolder(federation), cancellationToken).ConfigureAwait(false);
        var rounds = new List<int>();
        foreach (var name in names)
        {
            if (StoreLayout.ParseRoundFolder(name) is int r && await ExistsAsync(StoreLayout.Manifest(federation, r), cancellationToken).ConfigureAwait(false))
                rounds.Add(r);
        }

        rounds.Sort();
        return rounds;
    }

    public async Task<int?> GetLatestRoundAsync(string federation, CancellationToken cancellationToken = default)
    {
        var names = await ListAsync(StoreLayout.RoundsFolder(federation), cancellationToken).ConfigureAwait(false);
        foreach (var r in names.Select(StoreLayout.ParseRoundFolder).Where(r => r is not null).Select(r => r!.Value).OrderDescending())
        {
            if (await ExistsAsync(StoreLayout.Manifest(federation, r), cancellationToken).ConfigureAwait(false)) return r;
        }

        return null;
    }

    public async Task<UpdateHeader> PutUpdateAsync(string federation, int round, string site, Stream updateFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(updateFile);
        string path = StoreLayout.Update(federation, round, site);
        var header = await PutObjectAsync(path, (destination, ct) =>
        {
            // Verified copy in 64 KiB chunks: the whole update is checked before it becomes visible.
            var header = UpdateFile.CopyVerified(updateFile, destination, path);
            var mismatches = new List<string>();
            if (header.Federation != federation) mismatches.Add($"header field 'federation' is '{header.Federation}' but the update is stored for federation '{federation}'");
            if (header.Round != round) mismatches.Add($"header field 'round' is {header.Round} but the update is stored for round {round}");
            if (header.Site != site) mismatches.Add($"header field 'site' is '{header.Site}' but the update is stored for site '{site}'");
            if (mismatches.Count > 0) throw new FederationDataException(path, mismatches);
            return Task.FromResult(header);
        }, cancellationToken).ConfigureAwait(false);

        // The SHA-256 was just verified while copying: record it with the stored object's version, so that closing the
        // round need not hash the payload again unless the object changed since (then it is verified in full).
        var stored = await OpenObjectWithVersionAsync(path, cancellationToken).ConfigureAwait(false);
        if (stored is { Version: { } version })
        {
            await stored.Value.Stream.DisposeAsync().ConfigureAwait(false);
            var record = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new UploadVerification(header.PayloadSha256, version));
            try
            {
                await PutBytesAsync(StoreLayout.UpdateVerification(federation, round, site), record, cancellationToken).ConfigureAwait(false);
            }
            catch (StoreObjectExistsException)
            {
                // A record of an earlier attempt: it names the version it saw, and a mismatch only costs a full check.
            }
        }
        else if (stored is { } s)
        {
            await s.Stream.DisposeAsync().ConfigureAwait(false);
        }

        return header;
    }

    /// <summary>
    /// Opens a stored update. When the store verified it on upload (<see cref="PutUpdateAsync(string, int, string, Stream, CancellationToken)"/>)
    /// and the object's version is still the one recorded then, the stream is a <see cref="VerifiedUpdateStream"/>
    /// carrying the verified payload hash, and readers may skip recomputing it.
    /// </summary>
    public async Task<Stream?> OpenUpdateAsync(string federation, int round, string site, CancellationToken cancellationToken = default)
    {
        var opened = await OpenObjectWithVersionAsync(StoreLayout.Update(federation, round, site), cancellationToken).ConfigureAwait(false);
        if (opened is not { } o) return null;
        if (o.Version is null) return o.Stream;
        var bytes = await ReadAllBytesAsync(StoreLayout.UpdateVerification(federation, round, site), cancellationToken).ConfigureAwait(false);
        UploadVerification? record = null;
        try
        {
            record = bytes is null ? null : System.Text.Json.JsonSerializer.Deserialize<UploadVerification>(bytes);
        }
        catch (System.Text.Json.JsonException)
        {
            // An unreadable record is no record: the update is verified in full.
        }

        return record is not null && record.Version == o.Version && record.PayloadSha256 is { Length: 64 } h && h.All(char.IsAsciiHexDigitLower)
            ? new VerifiedUpdateStream(o.Stream, record.PayloadSha256)
            : o.Stream;
    }

    /// <summary>
    /// Opens an object together with a version token that changes whenever the object's bytes could have changed
    /// (an ETag; a local file's length and modification time, read from the opened handle), or null as the version
    /// when the store cannot tell. The default has no versions.
    /// </summary>
    public virtual async Task<(Stream Stream, string? Version)?> OpenObjectWithVersionAsync(string path, CancellationToken cancellationToken = default)
    {
        var stream = await OpenObjectAsync(path, cancellationToken).ConfigureAwait(false);
        return stream is null ? null : (stream, null);
    }

    public Task<IReadOnlyList<string>> ListUpdatesAsync(string federation, int round, CancellationToken cancellationToken = default) =>
        ListNamesAsync(StoreLayout.Updates(federation, round), UpdateFile.Extension, cancellationToken);

    public Task PutGlobalModelAsync(ModelFile model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Header.Site is not null)
            throw new ArgumentException($"a global model has no site; this model is site '{model.Header.Site}''s (use PutPersonalizedModelAsync)", nameof(model));
        return PutModelAsync(StoreLayout.GlobalModel(model.Header.Federation, model.Header.Round), model, cancellationToken);
    }

    public Task<ModelFile?> GetGlobalModelAsync(string federation, int round, CancellationToken cancellationToken = default) =>
        GetModelAsync(StoreLayout.GlobalModel(federation, round), federation, round, null, cancellationToken);

    public Task PutPersonalizedModelAsync(ModelFile model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Header.Site is null)
            throw new ArgumentException("a personalized model's header must name its site (use PutGlobalModelAsync for a global model)", nameof(model));
        return PutModelAsync(StoreLayout.PersonalizedModel(model.Header.Federation, model.Header.Round, model.Header.Site), model, cancellationToken);
    }

    public Task<ModelFile?> GetPersonalizedModelAsync(string federation, int round, string site, CancellationToken cancellationToken = default) =>
        GetModelAsync(StoreLayout.PersonalizedModel(federation, round, site), federation, round, site, cancellationToken);

    public Task<IReadOnlyList<string>> ListPersonalizedModelsAsync(string federation, int round, CancellationToken cancellationToken = default) =>
        ListNamesAsync(StoreLayout.PersonalizedModels(federation, round), ModelFile.Extension, cancellationToken);

    public Task PutServerStateAsync(ServerState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        return PutBytesAsync(StoreLayout.ServerState(state.Header.Federation, state.Header.Round), state.ToBytes(), cancellationToken);
    }

    public async Task<ServerState?> GetServerStateAsync(string federation, int round, CancellationToken cancellationToken = default)
    {
        string path = StoreLayout.ServerState(federation, round);
        var stream = await OpenObjectAsync(path, cancellationToken).ConfigureAwait(false);
        if (stream is null) return null;
        await using (stream.ConfigureAwait(false))
        {
            var state = ServerState.Read(stream, path);
            CheckIdentity(path, state.Header.Federation, state.Header.Round, null, federation, round, null);
            return state;
        }
    }

    public Task PutRoundResultAsync(RoundResult result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(result);
        string path = StoreLayout.Result(result.Federation, result.Round);
        result.EnsureValid(path);
        return PutBytesAsync(path, result.ToJsonBytes(), cancellationToken);
    }

    public async Task<RoundResult?> GetRoundResultAsync(string federation, int round, CancellationToken cancellationToken = default)
    {
        string path = StoreLayout.Result(federation, round);
        var bytes = await ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        if (bytes is null) return null;
        var result = RoundResult.Parse(bytes, path);
        CheckIdentity(path, result.Federation, result.Round, null, federation, round, null);
        return result;
    }

    // ---- federations, statistics, leases ----------------------------------------------------------------------

    public async Task<IReadOnlyList<string>> ListFederationsAsync(CancellationToken cancellationToken = default)
    {
        var names = await ListAsync(StoreLayout.FederationsFolder, cancellationToken).ConfigureAwait(false);
        return names.Where(FederationNames.IsValid).ToArray();
    }

    public async Task<(FederationConfig Config, string Version)?> GetFederationAsync(string federation, CancellationToken cancellationToken = default)
    {
        string path = StoreLayout.FederationDocument(federation);
        var stored = await GetVersionedAsync(path, cancellationToken).ConfigureAwait(false);
        if (stored is null) return null;
        var config = FederationConfig.Parse(stored.Content, path);
        CheckIdentity(path, config.Federation, 0, null, federation, 0, null);
        return (config, stored.Version);
    }

    public Task<string> PutFederationAsync(FederationConfig config, string? expectedVersion, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        string path = StoreLayout.FederationDocument(config.Federation);
        config.EnsureValid(path);
        return PutVersionedAsync(path, config.ToJsonBytes(), expectedVersion, cancellationToken);
    }

    public Task PutSiteStatisticsAsync(string federation, string site, StatisticsSet statistics, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        string path = StoreLayout.SiteStatistics(federation, site);
        if (statistics.Sites.Count != 1 || statistics.Sites[0] != site)
            throw new FederationDataException(path, $"the statistics are of site(s) '{string.Join(", ", statistics.Sites)}', not of site '{site}' alone");
        return PutBytesAsync(path, System.Text.Encoding.UTF8.GetBytes(statistics.ToJson()), cancellationToken);
    }

    public Task<StatisticsSet?> GetSiteStatisticsAsync(string federation, string site, CancellationToken cancellationToken = default) =>
        GetStatisticsAsync(StoreLayout.SiteStatistics(federation, site), cancellationToken);

    public async Task<IReadOnlyList<string>> ListSiteStatisticsAsync(string federation, CancellationToken cancellationToken = default) =>
        await ListNamesAsync(StoreLayout.SiteStatisticsFolder(federation), ".json", cancellationToken).ConfigureAwait(false);

    public Task PutFederatedStatisticsAsync(string federation, StatisticsSet statistics, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        return PutBytesAsync(StoreLayout.FederatedStatistics(federation), System.Text.Encoding.UTF8.GetBytes(statistics.ToJson()), cancellationToken);
    }

    public Task<StatisticsSet?> GetFederatedStatisticsAsync(string federation, CancellationToken cancellationToken = default) =>
        GetStatisticsAsync(StoreLayout.FederatedStatistics(federation), cancellationToken);

    // ---- helpers -----------------------------------------------------------------------------------------------

    protected Task PutBytesAsync(string path, byte[] bytes, CancellationToken cancellationToken) =>
        PutObjectAsync(path, async (s, ct) =>
        {
            await s.WriteAsync(bytes, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <summary>The whole content of an object, or null.</summary>
    public async Task<byte[]?> ReadAllBytesAsync(string path, CancellationToken cancellationToken = default)
    {
        var stream = await OpenObjectAsync(path, cancellationToken).ConfigureAwait(false);
        if (stream is null) return null;
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
    }

    private async Task<StatisticsSet?> GetStatisticsAsync(string path, CancellationToken cancellationToken)
    {
        var bytes = await ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        if (bytes is null) return null;
        try
        {
            return StatisticsSet.FromJson(System.Text.Encoding.UTF8.GetString(bytes), path);
        }
        catch (Exception e) when (e is not FederationDataException and not OperationCanceledException)
        {
            throw new FederationDataException(path, e.Message, e);
        }
    }

    private async Task<IReadOnlyList<string>> ListNamesAsync(string folder, string extension, CancellationToken cancellationToken)
    {
        var names = await ListAsync(folder, cancellationToken).ConfigureAwait(false);
        return names
            .Where(n => n.EndsWith(extension, StringComparison.Ordinal))
            .Select(n => n[..^extension.Length])
            .Where(FederationNames.IsValid) // temporary files start with '.'; they never pass
            .Order(StringComparer.Ordinal)
            .ToArray();
    }

    private Task PutModelAsync(string path, ModelFile model, CancellationToken cancellationToken) =>
        PutObjectAsync(path, (s, ct) =>
        {
            model.WriteTo(s);
            return Task.FromResult(true);
        }, cancellationToken);

    private async Task<ModelFile?> GetModelAsync(string path, string federation, int round, string? site, CancellationToken cancellationToken)
    {
        var stream = await OpenObjectAsync(path, cancellationToken).ConfigureAwait(false);
        if (stream is null) return null;
        await using (stream.ConfigureAwait(false))
        {
            var model = ModelFile.Read(stream, path);
            CheckIdentity(path, model.Header.Federation, model.Header.Round, model.Header.Site, federation, round, site);
            return model;
        }
    }

    private static void CheckIdentity(string path, string federation, int round, string? site, string expectedFederation, int expectedRound, string? expectedSite)
    {
        var p = new List<string>();
        if (federation != expectedFederation) p.Add($"header field 'federation' is '{federation}', the path says '{expectedFederation}'");
        if (round != expectedRound) p.Add($"header field 'round' is {round}, the path says {expectedRound}");
        if (site != expectedSite) p.Add($"header field 'site' is '{site ?? "null"}', the path says '{expectedSite ?? "null"}'");
        if (p.Count > 0) throw new FederationDataException(path, p);
    }
}

/// <summary>What <c>updates/&lt;site&gt;.verified.json</c> records: the payload hash verified on upload and the stored object's version then.</summary>
internal sealed record UploadVerification(
    [property: System.Text.Json.Serialization.JsonPropertyName("payload_sha256")] string PayloadSha256,
    [property: System.Text.Json.Serialization.JsonPropertyName("version")] string Version);

/// <summary>
/// An update stream whose payload the store verified on upload (<see cref="UpdateFile.CopyVerified"/>: framing, length,
/// SHA-256 and, for float32 payloads, finite values), unchanged since: readers may trust <see cref="PayloadSha256"/>
/// instead of hashing the payload again, and the aggregator streams such payloads into the strategy without buffering
/// them (<see cref="IStreamingAggregationStrategy"/>).
/// </summary>
public sealed class VerifiedUpdateStream(Stream inner, string payloadSha256) : ReadOnlyStreamWrapper(inner)
{
    public string PayloadSha256 { get; } = payloadSha256;
}
