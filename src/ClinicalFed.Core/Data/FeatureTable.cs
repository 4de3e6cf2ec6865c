using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClinicalFed.Data;

/// <summary>Header of a feature table file: which spec produced it and what its columns are.</summary>
public sealed record FeatureTableHeader
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("task")] public required string Task { get; init; }
    [JsonPropertyName("feature_spec_id")] public required string FeatureSpecId { get; init; }
    [JsonPropertyName("feature_spec_version")] public required string FeatureSpecVersion { get; init; }
    [JsonPropertyName("site")] public required string Site { get; init; }
    [JsonPropertyName("columns")] public required IReadOnlyList<string> Columns { get; init; }
    [JsonPropertyName("label")] public required string Label { get; init; }
    /// <summary>Value columns that may hold NaN (missing) and that imputation fills; indicators and counts are not listed.</summary>
    [JsonPropertyName("imputable_columns")] public IReadOnlyList<string> ImputableColumns { get; init; } = [];
    [JsonPropertyName("imputation")] public string? Imputation { get; init; }
}

/// <summary>One row's keys: which patient and stay it belongs to and the hour within the stay (0 for per-encounter
/// tasks). Keys stay at the site; only aggregates and model parameters ever leave it.</summary>
public readonly record struct RowKey(string PatientId, string EncounterId, int Hour);

/// <summary>
/// The ClinicalFed feature table file (<c>features.cft</c>): a magic line, a length-prefixed JSON header
/// (<see cref="FeatureTableHeader"/>), then a gzip stream of rows — patient id, encounter id (length-prefixed UTF-8),
/// int32 hour, float32 label and float32 values (NaN = missing). Written and read streaming.
/// </summary>
public static class FeatureTableFile
{
    public const string FileName = "features.cft";
    private static readonly byte[] Magic = "CFFT\n"u8.ToArray();

    public static JsonSerializerOptions JsonOptions { get; } = new() { WriteIndented = false };

    public sealed class Writer : IDisposable
    {
        private readonly Stream _file;
        private readonly BufferedStream _gz;
        private readonly int _columns;
        private readonly byte[] _scratch;
        public long Rows { get; private set; }

        public Writer(string path, FeatureTableHeader header)
        {
            _columns = header.Columns.Count;
            _file = File.Create(path);
            _file.Write(Magic);
            var json = JsonSerializer.SerializeToUtf8Bytes(header, JsonOptions);
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(len, json.Length);
            _file.Write(len);
            _file.Write(json);
            _gz = new BufferedStream(new GZipStream(_file, CompressionLevel.Fastest, leaveOpen: true), 1 << 16);
            _scratch = new byte[Math.Max(256, 4 * (_columns + 1) + 8)];
        }

        public void Write(in RowKey key, float label, ReadOnlySpan<float> values)
        {
            if (values.Length != _columns) throw new ArgumentException($"row has {values.Length} values, the table has {_columns} columns");
            WriteString(key.PatientId);
            WriteString(key.EncounterId);
            BinaryPrimitives.WriteInt32LittleEndian(_scratch, key.Hour);
            BinaryPrimitives.WriteSingleLittleEndian(_scratch.AsSpan(4), label);
            _gz.Write(_scratch, 0, 8);
            _gz.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
            Rows++;
        }

        private void WriteString(string s)
        {
            int n = Encoding.UTF8.GetBytes(s, _scratch.AsSpan(1));
            if (n > 255) throw new ArgumentException("id longer than 255 bytes");
            _scratch[0] = (byte)n;
            _gz.Write(_scratch, 0, n + 1);
        }

        public void Dispose()
        {
            _gz.Dispose();
            _file.Dispose();
        }
    }

    public static FeatureTableHeader ReadHeader(string path)
    {
        using var f = File.OpenRead(path);
        return ReadHeader(f, path);
    }

    private static FeatureTableHeader ReadHeader(Stream f, string path)
    {
        Span<byte> magic = stackalloc byte[5];
        if (f.ReadAtLeast(magic, 5, throwOnEndOfStream: false) != 5 || !magic.SequenceEqual(Magic))
            throw new InvalidDataException($"{path}: not a ClinicalFed feature table (bad magic)");
        Span<byte> len = stackalloc byte[4];
        f.ReadExactly(len);
        int n = BinaryPrimitives.ReadInt32LittleEndian(len);
        if (n is <= 0 or > 64 << 20) throw new InvalidDataException($"{path}: corrupt header length {n}");
        var json = new byte[n];
        f.ReadExactly(json);
        return JsonSerializer.Deserialize<FeatureTableHeader>(json, JsonOptions) ?? throw new InvalidDataException($"{path}: empty header");
    }

    /// <summary>Streams rows: the callback gets the key, label and values (the span is reused between rows).</summary>
    public static FeatureTableHeader ReadRows(string path, RowCallback onRow)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var header = ReadHeader(f, path);
        if (header.FormatVersion != 1) throw new InvalidDataException($"{path}: feature table format_version {header.FormatVersion} is not supported (expected 1)");
        using var gz = new BufferedStream(new GZipStream(f, CompressionMode.Decompress), 1 << 16);
        int c = header.Columns.Count;
        var values = new float[c];
        var valueBytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan());
        var buf = new byte[256];
        var pool = new Dictionary<string, string>(StringComparer.Ordinal);
        long row = 0;
        while (true)
        {
            int first = gz.ReadByte();
            if (first < 0) break;
            string patient = ReadString(gz, first, buf, pool, path, row);
            int second = gz.ReadByte();
            string encounter = ReadString(gz, second, buf, pool, path, row);
            if (gz.ReadAtLeast(buf.AsSpan(0, 8), 8, throwOnEndOfStream: false) != 8) throw new InvalidDataException($"{path}: row {row} is truncated");
            int hour = BinaryPrimitives.ReadInt32LittleEndian(buf);
            float label = BinaryPrimitives.ReadSingleLittleEndian(buf.AsSpan(4));
            if (gz.ReadAtLeast(valueBytes, valueBytes.Length, throwOnEndOfStream: false) != valueBytes.Length) throw new InvalidDataException($"{path}: row {row} is truncated");
            onRow(new RowKey(patient, encounter, hour), label, values);
            row++;
        }
        return header;
    }

    public delegate void RowCallback(in RowKey key, float label, ReadOnlySpan<float> values);

    private static string ReadString(Stream s, int length, byte[] buf, Dictionary<string, string> pool, string path, long row)
    {
        if (length < 0 || s.ReadAtLeast(buf.AsSpan(0, length), length, throwOnEndOfStream: false) != length) throw new InvalidDataException($"{path}: row {row} is truncated");
        var span = buf.AsSpan(0, length);
        Span<char> chars = stackalloc char[256];
        int n = Encoding.UTF8.GetChars(span, chars);
        var lookup = pool.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(chars[..n], out var existing)) return existing;
        var str = new string(chars[..n]);
        pool[str] = str;
        return str;
    }

    /// <summary>Loads a whole table into memory (row-major values). With <paramref name="expectedRows"/> (from
    /// features-summary.json) the arrays are allocated once at their final size.</summary>
    public static FeatureTable Load(string path, long? expectedRows = null)
    {
        int columns = ReadHeader(path).Columns.Count;
        int capacity = (int)Math.Clamp(expectedRows ?? 1024, 1, int.MaxValue / Math.Max(1, columns));
        var keys = new RowKey[capacity];
        var labels = new float[capacity];
        var values = new float[(long)capacity * columns];
        int n = 0;
        var header = ReadRows(path, (in RowKey k, float l, ReadOnlySpan<float> v) =>
        {
            if (n == keys.Length)
            {
                int grown = (int)Math.Min((long)keys.Length * 2, int.MaxValue / Math.Max(1, columns));
                if (grown <= n) throw new InvalidDataException($"{path}: too many rows to hold in memory");
                Array.Resize(ref keys, grown);
                Array.Resize(ref labels, grown);
                Array.Resize(ref values, grown * columns);
            }
            keys[n] = k;
            labels[n] = l;
            v.CopyTo(values.AsSpan(n * columns, columns));
            n++;
        });
        if (n != keys.Length)
        {
            Array.Resize(ref keys, n);
            Array.Resize(ref labels, n);
            Array.Resize(ref values, n * columns);
        }
        return new FeatureTable(header, keys, labels, values);
    }
}

/// <summary>A feature table in memory: row-major float32 values with NaN for missing.</summary>
public sealed class FeatureTable(FeatureTableHeader header, RowKey[] keys, float[] labels, float[] values)
{
    public FeatureTableHeader Header { get; } = header;
    public RowKey[] Keys { get; } = keys;
    public float[] Labels { get; } = labels;
    public float[] Values { get; } = values;
    public int Columns => Header.Columns.Count;
    public int Rows => Keys.Length;
    public ReadOnlySpan<float> Row(int i) => Values.AsSpan(i * Columns, Columns);
}
