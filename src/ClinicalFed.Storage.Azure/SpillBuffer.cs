namespace ClinicalFed.Storage.Azure;

/// <summary>
/// A seekable stream that holds its content in memory up to <see cref="Threshold"/> bytes and moves it to a temporary
/// file (deleted on dispose) beyond that, so that an object's whole content can be produced before anything is
/// uploaded, in bounded memory whatever its size.
/// </summary>
internal sealed class SpillBuffer : Stream
{
    /// <summary>Content up to this size stays in memory (8 MiB).</summary>
    public const int DefaultThreshold = 8 << 20;

    private Stream _inner;
    private bool _spilled;

    public SpillBuffer(int threshold = DefaultThreshold)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threshold);
        Threshold = threshold;
        _inner = new MemoryStream();
    }

    public int Threshold { get; }

    /// <summary>True once the content has moved to a temporary file.</summary>
    public bool Spilled => _spilled;

    public override bool CanRead => _inner.CanRead;
    public override bool CanSeek => _inner.CanSeek;
    public override bool CanWrite => _inner.CanWrite;
    public override long Length => _inner.Length;

    public override long Position
    {
        get => _inner.Position;
        set => _inner.Position = value;
    }

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

    public override int Read(Span<byte> buffer) => _inner.Read(buffer);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => _inner.Seek(offset, origin);

    public override void SetLength(long value)
    {
        SpillIfBeyond(value);
        _inner.SetLength(value);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        SpillIfBeyond(_inner.Position + buffer.Length);
        _inner.Write(buffer);
    }

    public override void WriteByte(byte value)
    {
        SpillIfBeyond(_inner.Position + 1);
        _inner.WriteByte(value);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        SpillIfBeyond(_inner.Position + buffer.Length);
        await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    private void SpillIfBeyond(long length)
    {
        if (_spilled || length <= Threshold) return;
        var memory = (MemoryStream)_inner;
        var path = Path.Combine(Path.GetTempPath(), $"clinicalfed-upload-{Guid.NewGuid():N}.tmp");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        try
        {
            long position = memory.Position;
            file.Write(memory.GetBuffer(), 0, (int)memory.Length);
            file.Position = position;
        }
        catch
        {
            file.Dispose();
            throw;
        }

        _inner = file;
        _spilled = true;
        memory.Dispose();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
