using System.Security.Cryptography;
using ClinicalFed.Federation;
using ClinicalFed.Trees;

namespace ClinicalFed.Privacy.Signing;

/// <summary>
/// Signatures of update headers (schemas/update.schema.json, field <c>signature</c>). A site signs with its ECDSA
/// P-256 key; the signature is the base64 of the 64-byte IEEE P1363 form (r ‖ s) of ECDSA with SHA-256 over
/// <see cref="CanonicalBytes"/>: the ASCII domain-separation prefix <see cref="DomainPrefix"/> followed by the header
/// serialized as compact UTF-8 JSON exactly as update files are written, without the <c>signature</c> field and with
/// <c>local_metrics</c> in ordinal key order. Every other field is covered (federation, round, site, example_count,
/// parameter_kind, dimension, payload_encoding, payload_bytes, payload_sha256, created_at, local_metrics, and any field
/// added later), and the payload through its SHA-256, which readers check against the payload.
/// </summary>
public static class UpdateSignature
{
    /// <summary>Name of the scheme, for documents and messages.</summary>
    public const string Algorithm = "ecdsa-p256-sha256-p1363";

    /// <summary>Signature length in bytes (IEEE P1363: r and s, 32 bytes each).</summary>
    public const int SignatureBytes = 64;

    /// <summary>The domain-separation prefix: ASCII <c>"ClinicalFed update signature v1"</c> and a line feed.</summary>
    public static ReadOnlySpan<byte> DomainPrefix => "ClinicalFed update signature v1\n"u8;

    /// <summary>The bytes a signature covers (see the class remarks).</summary>
    public static byte[] CanonicalBytes(UpdateHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        var metrics = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var (name, value) in header.LocalMetrics ?? new Dictionary<string, double>()) metrics[name] = value;
        var json = FederationJson.Serialize(header with { Signature = null, LocalMetrics = metrics }, indented: false);
        var bytes = new byte[DomainPrefix.Length + json.Length];
        DomainPrefix.CopyTo(bytes);
        json.CopyTo(bytes.AsSpan(DomainPrefix.Length));
        return bytes;
    }

    /// <summary>Whether <paramref name="signature"/> is the base64 of 64 bytes (its form, not its validity).</summary>
    public static bool IsWellFormed(string? signature)
    {
        if (signature is null || signature.Length != 88) return false;
        Span<byte> buffer = stackalloc byte[SignatureBytes];
        return Convert.TryFromBase64String(signature, buffer, out int written) && written == SignatureBytes;
    }

    /// <summary>
    /// Signs a float32 update's header for <paramref name="payload"/>: fills in <c>payload_sha256</c> (an existing value
    /// must match) and the signature; float32 is left out of <c>payload_encoding</c> as <see cref="UpdateFile.Write(Stream, UpdateHeader, ReadOnlySpan{float})"/>
    /// does, so the returned header is exactly the one written.
    /// </summary>
    public static UpdateHeader Sign(UpdateHeader header, ReadOnlySpan<float> payload, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(header);
        var normalized = header.PayloadEncoding == UpdatePayloadEncodings.Float32 ? header with { PayloadEncoding = null } : header;
        return Sign(WithHash(normalized, FramedFile.Sha256Hex(payload)), key);
    }

    /// <summary>Signs a tree-ensemble update's header for <paramref name="ensemble"/> (payload fields filled in as <see cref="UpdateFile.Write(Stream, UpdateHeader, TreeEnsembleModel)"/> does).</summary>
    public static UpdateHeader Sign(UpdateHeader header, TreeEnsembleModel ensemble, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(ensemble);
        var bytes = ensemble.ToBytes();
        var tree = header with { PayloadEncoding = UpdatePayloadEncodings.TreeEnsemble, PayloadBytes = bytes.LongLength };
        return Sign(WithHash(tree, FramedFile.Sha256Hex(bytes)), key);
    }

    /// <summary>Signs a complete header (its <c>payload_sha256</c> set); any existing signature is replaced.</summary>
    public static UpdateHeader Sign(UpdateHeader header, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(key);
        if (!FederationJson.IsSha256Hex(header.PayloadSha256))
            throw new ArgumentException("the header's payload_sha256 must be set before it is signed", nameof(header));
        var signature = key.SignData(CanonicalBytes(header), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return header with { Signature = Convert.ToBase64String(signature) };
    }

    /// <summary>Whether the header's signature verifies with <paramref name="publicKey"/> (false when it has none).</summary>
    public static bool Verify(UpdateHeader header, ECDsa publicKey)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(publicKey);
        if (!IsWellFormed(header.Signature)) return false;
        var signature = Convert.FromBase64String(header.Signature!);
        return publicKey.VerifyData(CanonicalBytes(header), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }

    /// <summary>
    /// Why the update at <paramref name="federation"/>/<paramref name="round"/>/<paramref name="site"/> may not be
    /// accepted under the federation's signing policy, or null when it may. <paramref name="registeredKey"/> is the
    /// site's registered public key (base64 DER or PEM), or null when it registered none;
    /// <paramref name="requireSignatures"/> is the federation's <c>require_signatures</c>.
    /// </summary>
    public static string? Rejection(UpdateHeader header, string federation, int round, string site, string? registeredKey, bool requireSignatures)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (registeredKey is null)
        {
            return requireSignatures
                ? $"the federation requires signed updates, but site '{site}' has registered no signing public key"
                : null;
        }

        if (header.Signature is null)
            return $"the update is not signed, but site '{site}' registered a signing public key: every update of the site must carry its signature";
        // A header addressed elsewhere, signed or not, is never this round's update of this site (a replay, or a copy).
        if (header.Federation != federation || header.Round != round || header.Site != site)
            return $"the signed header is for federation '{header.Federation}', round {header.Round}, site '{header.Site}', not round {round} of site '{site}' in '{federation}' (a replayed or copied update)";
        using var key = SigningKeys.ImportPublicKey(registeredKey);
        return Verify(header, key)
            ? null
            : $"the signature does not verify with site '{site}''s registered public key ({Algorithm}): the header or payload hash was altered after signing, it was signed by another key, or it was re-addressed from another round or site";
    }

    private static UpdateHeader WithHash(UpdateHeader header, string sha)
    {
        if (header.PayloadSha256.Length > 0 && header.PayloadSha256 != sha)
            throw new ArgumentException($"the header's payload_sha256 is '{header.PayloadSha256}' but the payload hashes to '{sha}'", nameof(header));
        return header with { PayloadSha256 = sha };
    }
}
