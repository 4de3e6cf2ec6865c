using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>
/// The pseudo-random mask of a 32-byte seed: AES-256 in counter mode (the keystream is AES-256-ECB of the 128-bit
/// little-endian block counter 0, 1, 2, …, so AES-NI encrypts whole chunks at once), read as little-endian uint32
/// words. The mask is added to (or subtracted from) a ring vector chunk by chunk with vectorized wrap-around
/// arithmetic, so memory stays O(chunk).
/// </summary>
public static class MaskGenerator
{
    private const int ChunkBytes = 64 * 1024;

    /// <summary>target += sign · PRG(seed) modulo 2^32, sign = +1 (add) or −1.</summary>
    public static void Apply(ReadOnlySpan<byte> seed, Span<uint> target, bool subtract = false) => ApplyWords(seed, target, subtract);

    /// <summary>target += sign · PRG(seed) modulo 2^64: the same keystream read as little-endian uint64 words (the
    /// wide ring of <see cref="RingEncoding.EncodeWide"/>).</summary>
    public static void ApplyWide(ReadOnlySpan<byte> seed, Span<ulong> target, bool subtract = false) => ApplyWords(seed, target, subtract);

    private static void ApplyWords<T>(ReadOnlySpan<byte> seed, Span<T> target, bool subtract) where T : unmanaged, IBinaryInteger<T>
    {
        if (seed.Length != 32) throw new ArgumentException("a mask seed is 32 bytes", nameof(seed));
        int size = Unsafe.SizeOf<T>(), chunkWords = ChunkBytes / size;
        using var aes = Aes.Create();
        aes.Key = seed.ToArray();
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            ulong counter = 0;
            for (int offset = 0; offset < target.Length; offset += chunkWords)
            {
                int words = Math.Min(chunkWords, target.Length - offset);
                int blocks = (words * size + 15) / 16;
                var bytes = buffer.AsSpan(0, blocks * 16);
                bytes.Clear();
                for (int b = 0; b < blocks; b++) BinaryPrimitives.WriteUInt64LittleEndian(bytes.Slice(b * 16, 8), counter++);
                aes.EncryptEcb(bytes, bytes, PaddingMode.None);
                var mask = MemoryMarshal.Cast<byte, T>(bytes)[..words];
                if (!BitConverter.IsLittleEndian)
                    for (int i = 0; i < mask.Length; i++) mask[i] = T.ReadLittleEndian(bytes.Slice(i * size, size), isUnsigned: true);
                var t = target.Slice(offset, words);
                if (subtract) TensorPrimitives.Subtract(t, mask, t);
                else TensorPrimitives.Add(t, mask, t);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The first <paramref name="length"/> mask words of <paramref name="seed"/> (tests and benchmarks).</summary>
    public static uint[] Expand(ReadOnlySpan<byte> seed, int length)
    {
        var m = new uint[length];
        Apply(seed, m);
        return m;
    }
}
