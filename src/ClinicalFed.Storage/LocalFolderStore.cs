using ClinicalFed.Federation;

namespace ClinicalFed.Storage;

/// <summary>
/// A federation store in a local folder, laid out as <see cref="StoreLayout"/> (schemas/store-layout.md). Atomic
/// write-once: each object is written to a hidden temporary file in its final folder
/// (<c>.&lt;name&gt;.&lt;random&gt;.tmp</c>), flushed to disk, then moved into place with
/// <c>File.Move(overwrite: false)</c>, which fails if the object exists (on Linux through link(2), on Windows through
/// MoveFileEx without replace). A failed or interrupted write leaves no object; listings and getters ignore
/// temporary files. Atomicity needs a file system with hard links on Unix (any local one; .NET falls back to a
/// non-atomic copy on file systems without them).
/// </summary>
public sealed class LocalFolderStore : IFederationStore
{
    private const int BufferSize = 1 << 16;
    private const string TempSuffix = ".tmp";

    public LocalFolderStore(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        Directory.CreateDirectory(Root);
    }

    /// <summary>The store's root folder (absolute).</summary>
    public string Root { get; }

    /// <summary>The absolute file path of a store path.</summary>
    public string FullPath(string storePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(storePath);
        var full = Path.GetFullPath(Path.Combine(Root, storePath.Replace('/', Path.DirectorySeparatorChar)));
        if (!full.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"store path '{storePath}' leaves the store root", nameof(storePath));
        return full;
    }

    public Task PutManifestAsync(RoundManifest manifest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        string path = StoreLayout.Manifest(manifest.Federation, manifest.Round);
        manifest.EnsureValid(path);
        var bytes = manifest.ToJsonBytes();
        return WriteOnceAsync(path, (s, ct) => s.WriteAsync(bytes, ct).AsTask(), cancellationToken);
    }

    public async Task<RoundManifest?> GetManifestAsync(string federation, int round, CancellationToken cancellationToken = default)
    {
        string path = StoreLayout.Manifest(federation, round);
        var bytes = await ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        return bytes is null ? null : RoundManifest.Parse(bytes, path);
    }

    public Task<IReadOnlyList<int>> ListRoundsAsync(string federation, CancellationToken cancellationToken = default)
    {
        var folder = FullPath(StoreLayout.RoundsFolder(federation));
        IReadOnlyList<int> rounds = !Directory.Exists(folder) ? [] :
            Directory.EnumerateDirectories(folder)
                .Select(d => StoreLayout.ParseRoundFolder(Path.GetFileName(d)))
                .Where(r => r is not null && File.Exists(FullPath(StoreLayout.Manifest(federation, r.Value))))
                .Select(r => r!.Value)
                .Order()
                .ToArray();
        return Task.FromResult(rounds);
    }

    public async Task<int?> GetLatestRoundAsync(string federation, CancellationToken cancellationToken = default)
    {
        var rounds = await ListRoundsAsync(federation, cancellationToken).ConfigureAwait(false);
        return rounds.Count == 0 ? null : rounds[^1];
    }

    public async Task<UpdateHeader> PutUpdateAsync(string federation, int round, string site, Stream updateFile, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(updateFile);
        string path = StoreLayout.Update(federation, round, site);
        return await WriteOnceAsync(path, (destination, ct) =>
        {
            // Synchronous verified copy in 64 KiB chunks: the whole update is checked before it becomes visible.
            var header = UpdateFile.CopyVerified(updateFile, destination, path);
            var mismatches = new List<string>();
            if (header.Federation != federation) mismatches.Add($"header field 'federation' is '{header.Federation}' but the update is stored for federation '{federation}'");
            if (header.Round != round) mismatches.Add($"header field 'round' is {header.Round} but the update is stored for round {round}");
            if (header.Site != site) mismatches.Add($"header field 'site' is '{header.Site}' but the update is stored for site '{site}'");
            if (mismatches.Count > 0) throw new FederationDataException(path, mismatches);
            return Task.FromResult(header);
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task<IReadOnlyList<string>> ListUpdatesAsync(string federation, int round, CancellationToken cancellationToken = default) =>
        Task.FromResult(ListNames(StoreLayout.Updates(federation, round), UpdateFile.Extension));

    public Task<Stream?> OpenUpdateAsync(string federation, int round, string site, CancellationToken cancellationToken = default)
    {
        var full = FullPath(StoreLayout.Update(federation, round, site));
        try
        {
            Stream stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, BufferSize, FileOptions.SequentialScan);
            return Task.FromResult<Stream?>(stream);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<Stream?>(null);
        }
    }

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
        Task.FromResult(ListNames(StoreLayout.PersonalizedModels(federation, round), ModelFile.Extension));

    public Task PutServerStateAsync(ServerState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var bytes = state.ToBytes();
        return WriteOnceAsync(StoreLayout.ServerState(state.Header.Federation, state.Header.Round), (s, ct) => s.WriteAsync(bytes, ct).AsTask(), cancellationToken);
    }

    public async Task<ServerState?> GetServerStateAsync(string federation, int round, CancellationToken cancellationToken = default)
    {
        string path = StoreLayout.ServerState(federation, round);
        await using var stream = OpenRead(path);
        if (stream is null) return null;
        var state = ServerState.Read(stream, path);
        CheckIdentity(path, state.Header.Federation, state.Header.Round, null, federation, round, null);
        return state;
    }

    public Task PutRoundResultAsync(RoundResult result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(result);
        string path = StoreLayout.Result(result.Federation, result.Round);
        result.EnsureValid(path);
        var bytes = result.ToJsonBytes();
        return WriteOnceAsync(path, (s, ct) => s.WriteAsync(bytes, ct).AsTask(), cancellationToken);
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

    /// <summary>
    /// Writes <paramref name="storePath"/> once, atomically: <paramref name="write"/> fills a temporary file in the
    /// final folder, which is flushed to disk and moved into place without overwriting. If <paramref name="write"/>
    /// throws, or the object already exists, the temporary file is deleted and nothing becomes visible.
    /// </summary>
    internal async Task<T> WriteOnceAsync<T>(string storePath, Func<Stream, CancellationToken, Task<T>> write, CancellationToken cancellationToken)
    {
        var final = FullPath(storePath);
        if (File.Exists(final)) throw new StoreObjectExistsException(storePath);
        var folder = Path.GetDirectoryName(final)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(final)}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            T value;
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous))
            {
                value = await write(stream, cancellationToken).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            try
            {
                File.Move(temp, final, overwrite: false);
            }
            catch (IOException e) when (File.Exists(final))
            {
                throw new StoreObjectExistsException(storePath, e);
            }

            return value;
        }
        finally
        {
            TryDelete(temp);
        }
    }

    internal Task WriteOnceAsync(string storePath, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken) =>
        WriteOnceAsync(storePath, async (s, ct) =>
        {
            await write(s, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    private Task PutModelAsync(string path, ModelFile model, CancellationToken cancellationToken) =>
        WriteOnceAsync(path, (s, ct) =>
        {
            model.WriteTo(s);
            return Task.CompletedTask;
        }, cancellationToken);

    private async Task<ModelFile?> GetModelAsync(string path, string federation, int round, string? site, CancellationToken cancellationToken)
    {
        await using var stream = OpenRead(path);
        if (stream is null) return null;
        var model = ModelFile.Read(stream, path);
        CheckIdentity(path, model.Header.Federation, model.Header.Round, model.Header.Site, federation, round, site);
        return model;
    }

    private static void CheckIdentity(string path, string federation, int round, string? site, string expectedFederation, int expectedRound, string? expectedSite)
    {
        var p = new List<string>();
        if (federation != expectedFederation) p.Add($"header field 'federation' is '{federation}', the path says '{expectedFederation}'");
        if (round != expectedRound) p.Add($"header field 'round' is {round}, the path says {expectedRound}");
        if (site != expectedSite) p.Add($"header field 'site' is '{site ?? "null"}', the path says '{expectedSite ?? "null"}'");
        if (p.Count > 0) throw new FederationDataException(path, p);
    }

    private FileStream? OpenRead(string storePath)
    {
        try
        {
            return new FileStream(FullPath(storePath), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, BufferSize, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private async Task<byte[]?> ReadAllBytesAsync(string storePath, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllBytesAsync(FullPath(storePath), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private IReadOnlyList<string> ListNames(string folderPath, string extension)
    {
        var folder = FullPath(folderPath);
        if (!Directory.Exists(folder)) return [];
        return Directory.EnumerateFiles(folder)
            .Select(Path.GetFileName)
            .Where(n => n is not null && n.EndsWith(extension, StringComparison.Ordinal))
            .Select(n => n![..^extension.Length])
            .Where(FederationNames.IsValid) // temporary files start with '.' and end with .tmp; neither passes
            .Order(StringComparer.Ordinal)
            .ToArray();
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
