using System.Security.Cryptography;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;

namespace ClinicalFed.Privacy.Signing;

/// <summary>
/// Signatures of masked uploads (secure aggregation), as <see cref="UpdateSignature"/> signs plain updates: ECDSA P-256
/// with SHA-256 (IEEE P1363) over a domain prefix and the header's JSON without its signature, which binds the payload
/// through <c>payload_sha256</c>, the federation, the round and the site. The aggregator checks it before a masked
/// vector counts, so a tampered payload, another site's key or a replay from another round is rejected.
/// </summary>
public static class MaskedUpdateSignature
{
    public static ReadOnlySpan<byte> DomainPrefix => "ClinicalFed masked update signature v1\n"u8;

    public static byte[] CanonicalBytes(MaskedUpdateHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        var metrics = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var (name, value) in header.LocalMetrics) metrics[name] = value;
        var json = FederationJson.Serialize(header with { Signature = null, LocalMetrics = metrics }, indented: false);
        var bytes = new byte[DomainPrefix.Length + json.Length];
        DomainPrefix.CopyTo(bytes);
        json.CopyTo(bytes.AsSpan(DomainPrefix.Length));
        return bytes;
    }

    /// <summary>Signs the header of <paramref name="payload"/> (its <c>payload_sha256</c> is filled in).</summary>
    public static MaskedUpdateHeader Sign(MaskedUpdateHeader header, ReadOnlySpan<uint> payload, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(key);
        var hashed = header with { PayloadSha256 = FramedFile.Sha256Hex(System.Runtime.InteropServices.MemoryMarshal.AsBytes(payload)), Signature = null };
        var signature = key.SignData(CanonicalBytes(hashed), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return hashed with { Signature = Convert.ToBase64String(signature) };
    }

    /// <summary>
    /// Why the masked upload may not count under the federation's signing policy (null when it may): the same rules
    /// as <see cref="UpdateSignature.Rejection"/>.
    /// </summary>
    public static string? Rejection(MaskedUpdateHeader header, string federation, int round, string site, string? registeredKey, bool requireSignatures)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (registeredKey is null)
            return requireSignatures ? $"the federation requires signed updates, but site '{site}' has registered no signing public key" : null;
        if (header.Signature is null) return $"the masked update is not signed, but site '{site}' registered a signing public key";
        if (header.Federation != federation || header.Round != round || header.Site != site)
            return $"the signed masked header is for federation '{header.Federation}', round {header.Round}, site '{header.Site}', not round {round} of site '{site}' (a replayed or copied upload)";
        if (!UpdateSignature.IsWellFormed(header.Signature)) return "the signature is not the base64 of 64 bytes";
        using var key = SigningKeys.ImportPublicKey(registeredKey);
        return key.VerifyData(CanonicalBytes(header), Convert.FromBase64String(header.Signature), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
            ? null
            : $"the signature does not verify with site '{site}''s registered public key: the header or payload was altered after signing, or another key signed it";
    }
}
