using System.IO.Compression;

namespace ClinicalFed.Cdm.Io;

/// <summary>
/// Reads newline-delimited records from a file or stream (gzip recognized by its magic bytes) without allocating per
/// line: each line is returned as a span into an internal buffer that stays valid until the next call.
/// </summary>
public sealed class NdjsonLineReader : IDisposable
{
    private readonly Stream _stream;
    private byte[] _buf;
    private int _start, _end;
    private bool _eof;

    public NdjsonLineReader(Stream stream, int bufferSize = 1 << 20)
    {
        _stream = stream;
        _buf = new byte[bufferSize];
    }

    public static NdjsonLineReader Open(string path) => new(OpenMaybeGzip(path));

    /// <summary>Opens a file for reading, decompressing transparently when it starts with the gzip magic bytes.</summary>
    public static Stream OpenMaybeGzip(string path)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        Span<byte> magic = stackalloc byte[2];
        int n = fs.Read(magic);
        fs.Position = 0;
        if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) return new GZipStream(fs, CompressionMode.Decompress);
        return fs;
    }

    /// <summary>1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    public long BytesRead { get; private set; }

    /// <summary>Returns the next line without its terminator (a trailing '\r' is removed as well).</summary>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        while (true)
        {
            int idx = _buf.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (idx >= 0)
            {
                line = Trim(_buf.AsSpan(_start, idx));
                _start += idx + 1;
                LineNumber++;
                return true;
            }
            if (_eof)
            {
                if (_end > _start)
                {
                    line = Trim(_buf.AsSpan(_start, _end - _start));
                    _start = _end;
                    LineNumber++;
                    return true;
                }
                line = default;
                return false;
            }
            Fill();
        }
    }

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> s) => s.Length > 0 && s[^1] == '\r' ? s[..^1] : s;

    private void Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buf, _start, _buf, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buf.Length) Array.Resize(ref _buf, _buf.Length * 2);
        int n = _stream.Read(_buf, _end, _buf.Length - _end);
        if (n == 0) _eof = true;
        _end += n;
        BytesRead += n;
    }

    public void Dispose() => _stream.Dispose();
}
