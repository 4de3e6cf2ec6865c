using System.Security.Cryptography;

namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>
/// One site's pairwise masking for a sequence of exchanges among a fixed set of sites that all answer every exchange
/// (histogram boosting: one exchange per split). For exchange e the site sends
/// y = encode(x) + Σ_{peer &gt; site} PRG(s_e) − Σ_{peer &lt; site} PRG(s_e) in Z/2^64, with s_e the seed the two sites
/// derive from their ECDH agreement for (federation, e); in the sum over all sites every mask cancels, so the
/// coordinator learns the sum and nothing else about a site's vector. There is no dropout recovery: an exchange that
/// lacks a site cannot be unmasked, so the caller abandons it. Never mask two vectors under one exchange number.
/// </summary>
public sealed class ExchangeMasker : IDisposable
{
    private readonly string _federation;
    private readonly ECDiffieHellman _key;
    private readonly List<(string Site, ECDiffieHellman PublicKey)> _peers = [];
    private readonly HashSet<int> _used = [];

    /// <param name="federation">Binds the masks to the federation.</param>
    /// <param name="site">This site's name (orders each pair).</param>
    /// <param name="key">This site's ECDH key (P-256); the masker does not dispose it.</param>
    /// <param name="peerPublicKeys">Every other site's public key (base64 SubjectPublicKeyInfo), by site name.</param>
    public ExchangeMasker(string federation, string site, ECDiffieHellman key, IReadOnlyDictionary<string, string> peerPublicKeys)
    {
        ArgumentException.ThrowIfNullOrEmpty(federation);
        ArgumentException.ThrowIfNullOrEmpty(site);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(peerPublicKeys);
        if (peerPublicKeys.ContainsKey(site)) throw new ArgumentException($"site '{site}' is listed among its own peers");
        _federation = federation;
        Site = site;
        _key = key;
        foreach (var (peer, publicKey) in peerPublicKeys.OrderBy(p => p.Key, StringComparer.Ordinal))
            _peers.Add((peer, PairwiseKeys.ImportPublic(publicKey)));
    }

    public string Site { get; }

    /// <summary>Encodes <paramref name="values"/> at <paramref name="scale"/> (<see cref="RingEncoding.WideScale"/>),
    /// checking them against this site's <paramref name="bound"/>, and adds the masks of exchange
    /// <paramref name="exchange"/>. Throws if the exchange number was used before.</summary>
    public ulong[] Mask(ReadOnlySpan<double> values, int exchange, double scale, double bound)
    {
        if (!_used.Add(exchange)) throw new InvalidOperationException($"site '{Site}' already masked a vector for exchange {exchange}; a mask is never used twice");
        var y = new ulong[values.Length];
        RingEncoding.EncodeWide(values, scale, bound, y);
        foreach (var (peer, publicKey) in _peers)
        {
            var seed = PairwiseKeys.ExchangeMaskSeed(_key, publicKey, _federation, exchange, Site, peer);
            MaskGenerator.ApplyWide(seed, y, subtract: string.CompareOrdinal(Site, peer) > 0);
            CryptographicOperations.ZeroMemory(seed);
        }
        return y;
    }

    public void Dispose()
    {
        foreach (var (_, publicKey) in _peers) publicKey.Dispose();
        _peers.Clear();
    }
}
