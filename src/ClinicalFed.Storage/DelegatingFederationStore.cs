namespace ClinicalFed.Storage;

/// <summary>
/// A store that passes every primitive to an inner store: the base of decorators that add one concern (counting,
/// fault injection, upload tickets, ...) by overriding only the primitive they change.
/// </summary>
public abstract class DelegatingFederationStore(FederationStore inner) : FederationStore
{
    protected FederationStore Wrapped { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    public override Task<T> PutObjectAsync<T>(string path, Func<Stream, CancellationToken, Task<T>> write, CancellationToken cancellationToken = default) =>
        Wrapped.PutObjectAsync(path, write, cancellationToken);

    public override Task<Stream?> OpenObjectAsync(string path, CancellationToken cancellationToken = default) => Wrapped.OpenObjectAsync(path, cancellationToken);

    public override Task<(Stream Stream, string? Version)?> OpenObjectWithVersionAsync(string path, CancellationToken cancellationToken = default) =>
        Wrapped.OpenObjectWithVersionAsync(path, cancellationToken);

    public override Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default) => Wrapped.ExistsAsync(path, cancellationToken);

    public override Task<IReadOnlyList<string>> ListAsync(string folder, CancellationToken cancellationToken = default) => Wrapped.ListAsync(folder, cancellationToken);

    public override Task<VersionedObject?> GetVersionedAsync(string path, CancellationToken cancellationToken = default) => Wrapped.GetVersionedAsync(path, cancellationToken);

    public override Task<string> PutVersionedAsync(string path, ReadOnlyMemory<byte> content, string? expectedVersion, CancellationToken cancellationToken = default) =>
        Wrapped.PutVersionedAsync(path, content, expectedVersion, cancellationToken);

    public override Task<IStoreLease?> TryAcquireLeaseAsync(string path, TimeSpan duration, CancellationToken cancellationToken = default) =>
        Wrapped.TryAcquireLeaseAsync(path, duration, cancellationToken);
}

/// <summary>A read-only, forward-only view of another stream that disposes it; subclasses add what they carry.</summary>
public class ReadOnlyStreamWrapper(Stream inner) : Stream
{
    protected Stream InnerStream { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    public override bool CanRead => InnerStream.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => InnerStream.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => InnerStream.Read(buffer);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => InnerStream.ReadAsync(buffer, cancellationToken);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) InnerStream.Dispose();
        base.Dispose(disposing);
    }
}
