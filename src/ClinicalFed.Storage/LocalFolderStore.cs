using ClinicalFed.Federation;

namespace ClinicalFed.Storage;

/// <summary>
/// A federation store in a local folder, laid out as <see cref="StoreLayout"/> (schemas/store-layout.md). Atomic
/// write-once: each object is written to a hidden temporary file in its final folder
/// (<c>.&lt;name&gt;.&lt;random&gt;.tmp</c>), flushed to disk, then published under its final name by an operation
/// that fails if the name exists (<see cref="ExclusiveFile.TryPublish"/>: link(2) on Unix, MoveFileEx without replace
/// on Windows), so of concurrent writers exactly one wins. A failed or interrupted write leaves no object; listings
/// and getters ignore temporary files. Atomicity needs a file system with hard links on Unix (any local one).
/// </summary>
public sealed class LocalFolderStore : FederationStore
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

    public override Task<T> PutObjectAsync<T>(string path, Func<Stream, CancellationToken, Task<T>> write, CancellationToken cancellationToken = default) =>
        WriteOnceAsync(path, write, cancellationToken);

    public override Task<Stream?> OpenObjectAsync(string path, CancellationToken cancellationToken = default) =>
        Task.FromResult<Stream?>(OpenRead(path));

    /// <summary>The version of a local object: its length and last-write time, read from the opened handle (so they
    /// describe the bytes this stream reads).</summary>
    public override Task<(Stream Stream, string? Version)?> OpenObjectWithVersionAsync(string path, CancellationToken cancellationToken = default)
    {
        var stream = OpenRead(path);
        if (stream is null) return Task.FromResult<(Stream, string?)?>(null);
        string version = $"{stream.Length}:{File.GetLastWriteTimeUtc(stream.SafeFileHandle).Ticks}";
        return Task.FromResult<(Stream, string?)?>((stream, version));
    }

    public override Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default) =>
        Task.FromResult(File.Exists(FullPath(path)));

    public override Task<IReadOnlyList<string>> ListAsync(string folder, CancellationToken cancellationToken = default)
    {
        var full = FullPath(folder);
        IReadOnlyList<string> names = !Directory.Exists(full) ? [] :
            Directory.EnumerateFileSystemEntries(full)
                .Select(Path.GetFileName)
                .Where(n => !string.IsNullOrEmpty(n) && !n.StartsWith('.'))
                .Select(n => n!)
                .Order(StringComparer.Ordinal)
                .ToArray();
        return Task.FromResult(names);
    }

    public override async Task<VersionedObject?> GetVersionedAsync(string path, CancellationToken cancellationToken = default)
    {
        var bytes = await ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        return bytes is null ? null : new VersionedObject(bytes, VersionOf(bytes));
    }

    /// <summary>
    /// Compare-and-replace under an exclusive lock file (<c>.&lt;name&gt;.lock</c>, held open with no sharing, which
    /// the operating system releases if the process dies); the new content is written to a temporary file and
    /// renamed over the old one, so readers see the old or the new document, never a mix. The version is the
    /// SHA-256 of the content.
    /// </summary>
    public override async Task<string> PutVersionedAsync(string path, ReadOnlyMemory<byte> content, string? expectedVersion, CancellationToken cancellationToken = default)
    {
        var final = FullPath(path);
        var folder = Path.GetDirectoryName(final)!;
        Directory.CreateDirectory(folder);
        var lockFile = await AcquireFileLockAsync(Path.Combine(folder, $".{Path.GetFileName(final)}.lock"), TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false)
            ?? throw new StoreVersionConflictException(path, "another writer held its lock for 30 s");
        await using (lockFile.ConfigureAwait(false))
        {
            var current = await GetVersionedAsync(path, cancellationToken).ConfigureAwait(false);
            if (expectedVersion is null && current is not null)
                throw new StoreVersionConflictException(path, "it already exists");
            if (expectedVersion is not null && (current is null || current.Version != expectedVersion))
                throw new StoreVersionConflictException(path, current is null ? "it no longer exists" : "another writer changed it");
            var temp = Path.Combine(folder, $".{Path.GetFileName(final)}.{Guid.NewGuid():N}{TempSuffix}");
            try
            {
                await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous))
                {
                    await stream.WriteAsync(content, cancellationToken).ConfigureAwait(false);
                    await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                    stream.Flush(flushToDisk: true);
                }

                File.Move(temp, final, overwrite: true);
            }
            finally
            {
                TryDelete(temp);
            }
        }

        return VersionOf(content.Span);
    }

    /// <summary>
    /// An exclusive lock file held open with no sharing (on Unix an advisory <c>flock</c>, which also excludes other
    /// handles in the same process). The operating system releases it when the process dies, so
    /// <paramref name="duration"/> is not needed to recover from a crash and is not enforced.
    /// </summary>
    public override async Task<IStoreLease?> TryAcquireLeaseAsync(string path, TimeSpan duration, CancellationToken cancellationToken = default)
    {
        var full = FullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var handle = await AcquireFileLockAsync(full, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        return handle is null ? null : new FileLease(path, handle);
    }

    private static async Task<FileStream?> AcquireFileLockAsync(string fullPath, TimeSpan wait, CancellationToken cancellationToken)
    {
        var until = DateTime.UtcNow + wait;
        while (true)
        {
            try
            {
                return new FileStream(fullPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException) when (File.Exists(fullPath))
            {
                if (DateTime.UtcNow >= until) return null;
                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static string VersionOf(ReadOnlySpan<byte> content) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));

    private sealed class FileLease(string path, FileStream handle) : IStoreLease
    {
        public string Path { get; } = path;

        public Task RenewAsync(CancellationToken cancellationToken = default) =>
            handle.SafeFileHandle.IsClosed ? throw new InvalidOperationException($"the lease on {Path} was released") : Task.CompletedTask;

        public ValueTask DisposeAsync() => handle.DisposeAsync();
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

            if (!ExclusiveFile.TryPublish(temp, final)) throw new StoreObjectExistsException(storePath);
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
