using System.Security.Cryptography;
using System.Text;

namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>
/// ECDH P-256 key agreement between two sites and the keys derived from it with HKDF-SHA-256. The raw shared secret
/// is never used directly: <see cref="MaskSeed"/> binds the pairwise mask seed to (federation, round, the ordered pair)
/// and <see cref="ShareKey"/> derives a separate AES-256-GCM key that encrypts Shamir shares from one site to another.
/// </summary>
public static class PairwiseKeys
{
    public static ECDiffieHellman Create() => ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The public key as base64 SubjectPublicKeyInfo.</summary>
    public static string PublicKeyBase64(ECDiffieHellman key) => Convert.ToBase64String(key.ExportSubjectPublicKeyInfo());

    public static ECDiffieHellman ImportPublic(string base64)
    {
        var key = ECDiffieHellman.Create();
        key.ImportSubjectPublicKeyInfo(Convert.FromBase64String(base64), out _);
        if (key.KeySize != 256) throw new CryptographicException("not a P-256 key");
        return key;
    }

    /// <summary>The 32-byte private scalar d (what is Shamir-shared).</summary>
    public static byte[] ExportPrivateScalar(ECDiffieHellman key) => key.ExportParameters(true).D!;

    /// <summary>Rebuilds a private key from its scalar and its published public key; throws if they do not match.</summary>
    public static ECDiffieHellman ImportPrivate(byte[] d, string publicKeyBase64)
    {
        using var pub = ImportPublic(publicKeyBase64);
        var q = pub.ExportParameters(false).Q;
        var key = ECDiffieHellman.Create();
        try
        {
            key.ImportParameters(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d, Q = q });
        }
        catch (CryptographicException e)
        {
            key.Dispose();
            throw new CryptographicException("the reconstructed private key does not match the site's published public key", e);
        }
        return key;
    }

    private static byte[] Derive(ECDiffieHellman own, ECDiffieHellman peer, string purpose, string federation, int round, string a, string b)
    {
        var secret = own.DeriveRawSecretAgreement(peer.PublicKey);
        try
        {
            // Ordered pair so both ends derive the same value.
            var (lo, hi) = string.CompareOrdinal(a, b) <= 0 ? (a, b) : (b, a);
            var info = Encoding.UTF8.GetBytes($"clinicalfed-secagg/{purpose}\n{federation}\n{round}\n{lo}\n{hi}");
            return HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, 32, salt: "clinicalfed-secagg-v1"u8.ToArray(), info: info);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>The pairwise mask seed of sites <paramref name="a"/> and <paramref name="b"/> for one round (symmetric).</summary>
    public static byte[] MaskSeed(ECDiffieHellman own, ECDiffieHellman peer, string federation, int round, string a, string b) =>
        Derive(own, peer, "mask", federation, round, a, b);

    /// <summary>The pairwise mask seed of sites <paramref name="a"/> and <paramref name="b"/> for one exchange of a
    /// sequence (histogram boosting: one per split), kept apart from round mask seeds (symmetric).</summary>
    public static byte[] ExchangeMaskSeed(ECDiffieHellman own, ECDiffieHellman peer, string federation, int exchange, string a, string b) =>
        Derive(own, peer, "exchange-mask", federation, exchange, a, b);

    /// <summary>The AES-256-GCM key that encrypts Shamir shares between the two sites (symmetric).</summary>
    public static byte[] ShareKey(ECDiffieHellman own, ECDiffieHellman peer, string federation, int round, string a, string b) =>
        Derive(own, peer, "share", federation, round, a, b);

    /// <summary>AES-256-GCM: nonce (12) ‖ tag (16) ‖ ciphertext; the AAD binds federation, round, sender and recipient.</summary>
    public static byte[] Seal(byte[] key, ReadOnlySpan<byte> plaintext, string federation, int round, string from, string to)
    {
        var sealedBytes = new byte[28 + plaintext.Length];
        RandomNumberGenerator.Fill(sealedBytes.AsSpan(0, 12));
        using var gcm = new AesGcm(key, 16);
        gcm.Encrypt(sealedBytes.AsSpan(0, 12), plaintext, sealedBytes.AsSpan(28), sealedBytes.AsSpan(12, 16), Aad(federation, round, from, to));
        return sealedBytes;
    }

    /// <summary>Decrypts and authenticates <see cref="Seal"/>'s output; a tampered or misaddressed share throws <see cref="CryptographicException"/>.</summary>
    public static byte[] Open(byte[] key, ReadOnlySpan<byte> sealedBytes, string federation, int round, string from, string to)
    {
        if (sealedBytes.Length < 28) throw new CryptographicException("sealed share too short");
        var plain = new byte[sealedBytes.Length - 28];
        using var gcm = new AesGcm(key, 16);
        gcm.Decrypt(sealedBytes[..12], sealedBytes[28..], sealedBytes.Slice(12, 16), plain, Aad(federation, round, from, to));
        return plain;
    }

    private static byte[] Aad(string federation, int round, string from, string to) =>
        Encoding.UTF8.GetBytes($"clinicalfed-secagg/share\n{federation}\n{round}\n{from}\n{to}");
}
