using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using ClinicalFed.Trees;

namespace ClinicalFed.Federation;

/// <summary>
/// The framing shared by updates (<c>CFUP</c>), models (<c>CFMD</c>) and server states (<c>CFSS</c>): 5 bytes of
/// magic (4 ASCII letters and a line feed), the header length as an int32 little-endian, the UTF-8 JSON header, then
/// the payload to the end of the file. Float payloads are IEEE 754 float32 little-endian; their SHA-256 is taken
/// over exactly those bytes. Opaque payloads (a tree ensemble, LightGBM text) are hashed as they are stored.
/// </summary>
internal static class FramedFile
{
    public const int MagicLength = 5;

    public static readonly byte[] UpdateMagic = "CFUP\n"u8.ToArray();
    public static readonly byte[] ModelMagic = "CFMD\n"u8.ToArray();
    public static readonly byte[] StateMagic = "CFSS\n"u8.ToArray();

    private const int CopyChunkBytes = 1 << 16;

    public static void WriteFrame(Stream destination, ReadOnlySpan<byte> magic, ReadOnlySpan<byte> headerJson)
    {
        destination.Write(magic);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, headerJson.Length);
        destination.Write(length);
        destination.Write(headerJson);
    }

    /// <summary>Reads magic and header; returns the header bytes. The stream is left at the first payload byte.</summary>
    public static byte[] ReadFrame(Stream source, ReadOnlySpan<byte> magic, int maxHeaderBytes, string kind, string origin)
    {
        Span<byte> found = stackalloc byte[MagicLength];
        int n = source.ReadAtLeast(found, MagicLength, throwOnEndOfStream: false);
        if (n < MagicLength || !found.SequenceEqual(magic))
        {
            string what = n < MagicLength ? $"the file is only {n} bytes long"
                : found.SequenceEqual(UpdateMagic) ? "it is a ClinicalFed update (CFUP)"
                : found.SequenceEqual(ModelMagic) ? "it is a ClinicalFed model (CFMD)"
                : found.SequenceEqual(StateMagic) ? "it is a ClinicalFed server state (CFSS)"
                : "bad magic";
            throw new FederationDataException(origin, $"not a ClinicalFed {kind} file: {what} (expected magic '{Printable(magic)}')");
        }

        Span<byte> lengthBytes = stackalloc byte[4];
        if (source.ReadAtLeast(lengthBytes, 4, throwOnEndOfStream: false) != 4)
            throw new FederationDataException(origin, "the file ends inside the header length");
        int length = BinaryPrimitives.ReadInt32LittleEndian(lengthBytes);
        if (length <= 0 || length > maxHeaderBytes)
            throw new FederationDataException(origin, $"header length {length} is out of range (1 to {maxHeaderBytes} bytes)");
        var header = new byte[length];
        int read = source.ReadAtLeast(header, length, throwOnEndOfStream: false);
        if (read != length)
            throw new FederationDataException(origin, $"the file ends inside the header ({read} of {length} bytes)");
        return header;
    }

    public static byte[] WriteToArray(ReadOnlySpan<float> values)
    {
        var bytes = new byte[checked(values.Length * 4)];
        WriteLittleEndian(values, bytes);
        return bytes;
    }

    /// <summary>Writes float32 little-endian values.</summary>
    public static void WriteFloats(Stream destination, ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            destination.Write(MemoryMarshal.AsBytes(values));
            return;
        }

        Span<byte> buffer = stackalloc byte[4096];
        for (int i = 0; i < values.Length; i += 1024)
        {
            int n = Math.Min(1024, values.Length - i);
            WriteLittleEndian(values.Slice(i, n), buffer);
            destination.Write(buffer[..(n * 4)]);
        }
    }

    public static string Sha256Hex(ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian) return Hex(SHA256.HashData(MemoryMarshal.AsBytes(values)));
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> buffer = stackalloc byte[4096];
        for (int i = 0; i < values.Length; i += 1024)
        {
            int n = Math.Min(1024, values.Length - i);
            WriteLittleEndian(values.Slice(i, n), buffer);
            hash.AppendData(buffer[..(n * 4)]);
        }

        return Hex(hash.GetHashAndReset());
    }

    public static string Sha256Hex(ReadOnlySpan<byte> bytes) => Hex(SHA256.HashData(bytes));

    public static string Hex(ReadOnlySpan<byte> hash) => Convert.ToHexStringLower(hash);

    /// <summary>
    /// Reads exactly <c>destination.Length</c> float32 values (streaming, straight into the destination), then checks
    /// the SHA-256, that every value is finite and that nothing follows. Returns every problem found.
    /// </summary>
    /// <param name="expectedSha256">The header's payload hash; null skips hashing (the payload was verified when it was
    /// stored and has not changed since: see FederationStore's upload verification records).</param>
    public static List<string> ReadFloatPayload(Stream source, Span<float> destination, string? expectedSha256)
    {
        var problems = new List<string>();
        var bytes = MemoryMarshal.AsBytes(destination);
        int read = source.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        if (read != bytes.Length)
        {
            problems.Add($"the payload is truncated: header field 'dimension' = {destination.Length} needs {bytes.Length} bytes of float32, the file holds {read}");
            return problems;
        }

        if (expectedSha256 is not null)
        {
            string actual = Sha256Hex(bytes);
            if (!string.Equals(actual, expectedSha256, StringComparison.Ordinal))
                problems.Add($"the payload does not match header field 'payload_sha256' (header {expectedSha256}, payload {actual}): the file is corrupt or was altered");
        }

        if (!BitConverter.IsLittleEndian)
        {
            var ints = MemoryMarshal.Cast<float, int>(destination);
            BinaryPrimitives.ReverseEndianness(ints, ints);
        }

        CheckFinite(destination, 0, problems);
        if (source.ReadByte() >= 0)
            problems.Add($"there are bytes after the payload: header field 'dimension' = {destination.Length} means exactly {bytes.Length} payload bytes");
        return problems;
    }

    /// <summary>Reads exactly <paramref name="length"/> opaque bytes and checks the SHA-256 and that nothing follows.</summary>
    public static byte[] ReadOpaquePayload(Stream source, long length, string expectedSha256, List<string> problems)
    {
        var bytes = new byte[length];
        int read = source.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        if (read != bytes.Length)
        {
            problems.Add($"the payload is truncated: header field 'payload_bytes' = {length}, the file holds {read}");
            return bytes;
        }

        string actual = Sha256Hex(bytes);
        if (!string.Equals(actual, expectedSha256, StringComparison.Ordinal))
            problems.Add($"the payload does not match header field 'payload_sha256' (header {expectedSha256}, payload {actual}): the file is corrupt or was altered");
        if (source.ReadByte() >= 0)
            problems.Add($"there are bytes after the payload: header field 'payload_bytes' = {length}");
        return bytes;
    }

    /// <summary>
    /// Parses a tree-ensemble payload (<see cref="TreeEnsembleModel.FromBytes"/>) and checks that it reads
    /// <paramref name="dimension"/> features; adds a problem naming the header field and returns null when it does not.
    /// </summary>
    public static TreeEnsembleModel? ParseTreeEnsemble(byte[] payload, int dimension, List<string> problems)
    {
        TreeEnsembleModel ensemble;
        try
        {
            ensemble = TreeEnsembleModel.FromBytes(payload);
        }
        catch (InvalidDataException e)
        {
            problems.Add($"the payload is not a valid tree ensemble (header field 'payload_encoding' is tree-ensemble): {e.Message}");
            return null;
        }

        if (ensemble.FeatureCount == dimension) return ensemble;
        problems.Add($"header field 'dimension' is {dimension} but the tree ensemble in the payload reads {ensemble.FeatureCount} features");
        return null;
    }

    /// <summary>
    /// Copies a float32 payload of <paramref name="count"/> values from <paramref name="source"/> to
    /// <paramref name="destination"/> in 64 KiB chunks, verifying it as <see cref="ReadFloatPayload"/> does;
    /// memory stays constant whatever the size.
    /// </summary>
    public static List<string> CopyFloatPayload(Stream source, Stream destination, long count, string expectedSha256)
    {
        var problems = new List<string>();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[CopyChunkBytes];
        var floats = new float[CopyChunkBytes / 4];
        long remaining = checked(count * 4);
        long index = 0, nonFinite = 0, firstIndex = 0;
        float firstValue = 0;
        while (remaining > 0)
        {
            int want = (int)Math.Min(buffer.Length, remaining);
            int got = source.ReadAtLeast(buffer.AsSpan(0, want), want, throwOnEndOfStream: false);
            if (got != want)
            {
                long total = count * 4 - remaining + got;
                problems.Add($"the payload is truncated: header field 'dimension' = {count} needs {count * 4} bytes of float32, the file holds {total}");
                return problems;
            }

            hash.AppendData(buffer.AsSpan(0, got));
            int n = got / 4;
            var chunk = floats.AsSpan(0, n);
            ReadLittleEndian(buffer.AsSpan(0, got), chunk);
            int bad = CountNonFinite(chunk, out int first);
            if (bad > 0)
            {
                if (nonFinite == 0) (firstIndex, firstValue) = (index + first, chunk[first]);
                nonFinite += bad;
            }

            destination.Write(buffer, 0, got);
            remaining -= got;
            index += n;
        }

        string actual = Hex(hash.GetHashAndReset());
        if (!string.Equals(actual, expectedSha256, StringComparison.Ordinal))
            problems.Add($"the payload does not match header field 'payload_sha256' (header {expectedSha256}, payload {actual}): the file is corrupt or was altered");
        if (nonFinite > 0) problems.Add(NonFiniteProblem(nonFinite, firstIndex, firstValue));
        if (source.ReadByte() >= 0)
            problems.Add($"there are bytes after the payload: header field 'dimension' = {count} means exactly {count * 4} payload bytes");
        return problems;
    }

    /// <summary>Adds one problem naming the first non-finite value and how many there are.</summary>
    public static void CheckFinite(ReadOnlySpan<float> values, long offset, List<string> problems)
    {
        int count = CountNonFinite(values, out int first);
        if (count > 0) problems.Add(NonFiniteProblem(count, offset + first, values[first]));
    }

    public static int CountNonFinite(ReadOnlySpan<float> values, out int first)
    {
        first = -1;
        if (TensorPrimitives.IsFiniteAll(values)) return 0;
        int count = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (float.IsFinite(values[i])) continue;
            if (first < 0) first = i;
            count++;
        }

        return count;
    }

    private static string NonFiniteProblem(long count, long firstIndex, float firstValue) =>
        $"the payload holds {count} non-finite value(s) (NaN or infinity), the first at index {firstIndex} ({firstValue})";

    private static void WriteLittleEndian(ReadOnlySpan<float> values, Span<byte> destination)
    {
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(destination[(i * 4)..], values[i]);
    }

    private static void ReadLittleEndian(ReadOnlySpan<byte> source, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
            return;
        }

        for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]);
    }

    private static string Printable(ReadOnlySpan<byte> magic) =>
        System.Text.Encoding.ASCII.GetString(magic).Replace("\n", "\\n", StringComparison.Ordinal);
}
