using System.Buffers.Binary;
using System.Security.Cryptography;

namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>One holder's Shamir share of a byte secret: the evaluation point x (1..n) and one field element per 7-byte limb.</summary>
public sealed record ShamirShare(int X, ulong[] Limbs)
{
    /// <summary>x as int32 LE, the limb count as int32 LE, then each limb as uint64 LE.</summary>
    public byte[] ToBytes()
    {
        var b = new byte[8 + 8 * Limbs.Length];
        BinaryPrimitives.WriteInt32LittleEndian(b, X);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), Limbs.Length);
        for (int i = 0; i < Limbs.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8 + 8 * i), Limbs[i]);
        return b;
    }

    public static ShamirShare FromBytes(ReadOnlySpan<byte> b)
    {
        if (b.Length < 8) throw new FormatException("a Shamir share is at least 8 bytes");
        int x = BinaryPrimitives.ReadInt32LittleEndian(b);
        int n = BinaryPrimitives.ReadInt32LittleEndian(b[4..]);
        if (x < 1 || n < 1 || n > 64 || b.Length != 8 + 8 * n) throw new FormatException("malformed Shamir share");
        var limbs = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            limbs[i] = BinaryPrimitives.ReadUInt64LittleEndian(b[(8 + 8 * i)..]);
            if (limbs[i] >= Shamir.Prime) throw new FormatException("Shamir share limb outside the field");
        }
        return new ShamirShare(x, limbs);
    }
}

/// <summary>
/// Shamir secret sharing over the prime field GF(p), p = 2^61 − 1 (a Mersenne prime: reduction is a shift and an
/// add). A byte secret is cut into 7-byte limbs (56 bits &lt; 61), each shared with its own random polynomial of degree
/// t − 1 at the points x = 1..n; any t shares reconstruct it by Lagrange interpolation at 0, fewer reveal nothing.
/// </summary>
public static class Shamir
{
    public const ulong Prime = (1UL << 61) - 1;
    private const int LimbBytes = 7;

    public static ShamirShare[] Split(ReadOnlySpan<byte> secret, int holders, int threshold)
    {
        if (threshold < 1 || threshold > holders) throw new ArgumentOutOfRangeException(nameof(threshold), $"threshold must be 1 to {holders}");
        int limbs = (secret.Length + LimbBytes - 1) / LimbBytes;
        var shares = new ShamirShare[holders];
        for (int h = 0; h < holders; h++) shares[h] = new ShamirShare(h + 1, new ulong[limbs]);
        var coefficients = new ulong[threshold];
        Span<byte> limbBytes = stackalloc byte[8];
        for (int l = 0; l < limbs; l++)
        {
            limbBytes.Clear();
            var part = secret.Slice(l * LimbBytes, Math.Min(LimbBytes, secret.Length - l * LimbBytes));
            part.CopyTo(limbBytes);
            coefficients[0] = BinaryPrimitives.ReadUInt64LittleEndian(limbBytes);
            for (int c = 1; c < threshold; c++) coefficients[c] = RandomElement();
            for (int h = 0; h < holders; h++)
            {
                ulong x = (ulong)(h + 1), y = 0;
                for (int c = threshold - 1; c >= 0; c--) y = Add(Mul(y, x), coefficients[c]);
                shares[h].Limbs[l] = y;
            }
        }
        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(coefficients.AsSpan()));
        return shares;
    }

    /// <summary>The secret of <paramref name="secretBytes"/> bytes from at least one share per distinct x (all given shares are used).</summary>
    public static byte[] Reconstruct(IReadOnlyList<ShamirShare> shares, int secretBytes)
    {
        if (shares.Count == 0) throw new ArgumentException("no shares", nameof(shares));
        int limbs = (secretBytes + LimbBytes - 1) / LimbBytes;
        if (shares.Any(s => s.Limbs.Length != limbs)) throw new ArgumentException($"every share must have {limbs} limbs", nameof(shares));
        if (shares.Select(s => s.X).Distinct().Count() != shares.Count) throw new ArgumentException("two shares have the same x", nameof(shares));
        // Lagrange basis at 0: λ_i = Π_{j≠i} x_j / (x_j − x_i).
        var lambda = new ulong[shares.Count];
        for (int i = 0; i < shares.Count; i++)
        {
            ulong num = 1, den = 1;
            for (int j = 0; j < shares.Count; j++)
            {
                if (j == i) continue;
                num = Mul(num, (ulong)shares[j].X);
                den = Mul(den, Sub((ulong)shares[j].X, (ulong)shares[i].X));
            }
            lambda[i] = Mul(num, Inverse(den));
        }
        var secret = new byte[secretBytes];
        Span<byte> limbBytes = stackalloc byte[8];
        for (int l = 0; l < limbs; l++)
        {
            ulong v = 0;
            for (int i = 0; i < shares.Count; i++) v = Add(v, Mul(lambda[i], shares[i].Limbs[l]));
            BinaryPrimitives.WriteUInt64LittleEndian(limbBytes, v);
            int n = Math.Min(LimbBytes, secretBytes - l * LimbBytes);
            if (limbBytes[n..].ContainsAnyExcept((byte)0))
                throw new CryptographicException("the shares do not reconstruct a valid secret (a share is wrong or tampered)");
            limbBytes[..n].CopyTo(secret.AsSpan(l * LimbBytes));
        }
        return secret;
    }

    internal static ulong Add(ulong a, ulong b)
    {
        ulong s = a + b;
        return s >= Prime ? s - Prime : s;
    }

    internal static ulong Sub(ulong a, ulong b) => a >= b ? a - b : a + Prime - b;

    internal static ulong Mul(ulong a, ulong b)
    {
        UInt128 p = (UInt128)a * b;
        ulong lo = (ulong)(p & Prime), hi = (ulong)(p >> 61);
        return Add(lo, hi);
    }

    private static ulong Inverse(ulong a)
    {
        if (a == 0) throw new DivideByZeroException();
        ulong result = 1, e = Prime - 2;
        while (e > 0)
        {
            if ((e & 1) != 0) result = Mul(result, a);
            a = Mul(a, a);
            e >>= 1;
        }
        return result;
    }

    private static ulong RandomElement()
    {
        Span<byte> b = stackalloc byte[8];
        ulong v;
        do
        {
            RandomNumberGenerator.Fill(b);
            v = BinaryPrimitives.ReadUInt64LittleEndian(b) & Prime;
        } while (v >= Prime);
        return v;
    }
}
