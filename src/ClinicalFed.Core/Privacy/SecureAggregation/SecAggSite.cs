using System.Security.Cryptography;
using ClinicalFed.Federation;

namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>
/// One site's side of a secure-aggregation round (Bonawitz et al. 2017, with the SecAgg+ style self mask b_u):
/// a fresh ECDH P-256 key and self-mask seed per round; Shamir shares of both for every site (encrypted to each
/// recipient with the pairwise share key); the masked update
/// <c>y_u = encode(n_u · x_u) + PRG(b_u) + Σ_{v &gt; u} PRG(s_uv) − Σ_{v &lt; u} PRG(s_uv)</c> (mod 2^32, sites in
/// ordinal order); and, once the aggregator names the survivors, the shares it holds of survivors' self seeds and of
/// dropped sites' private keys — never both for one site.
/// </summary>
public sealed class SecAggSite : IDisposable
{
    private readonly ECDiffieHellman _key;
    private readonly byte[] _selfSeed;

    public SecAggSite(SecAggSetup setup, string site)
    {
        Setup = setup;
        Site = site;
        setup.ShamirX(site);
        _key = PairwiseKeys.Create();
        _selfSeed = RandomNumberGenerator.GetBytes(32);
    }

    /// <summary>Resumes a site's round from the state <see cref="ExportState"/> saved (its published key stays valid).</summary>
    public SecAggSite(SecAggSetup setup, SecAggSiteState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Federation != setup.Federation || state.Round != setup.Round)
            throw new ArgumentException($"the saved secure-aggregation state is for {state.Federation} round {state.Round}, not {setup.Federation} round {setup.Round}", nameof(state));
        Setup = setup;
        Site = state.Site;
        setup.ShamirX(state.Site);
        _key = PairwiseKeys.Create();
        _key.ImportPkcs8PrivateKey(Convert.FromBase64String(state.PrivateKey), out _);
        _selfSeed = Convert.FromBase64String(state.SelfSeed);
        if (_selfSeed.Length != 32) throw new ArgumentException("the saved self seed is not 32 bytes", nameof(state));
    }

    /// <summary>The secret state to keep in the site's work folder between phases (never to upload).</summary>
    public SecAggSiteState ExportState() => new()
    {
        Federation = Setup.Federation, Round = Setup.Round, Site = Site,
        PrivateKey = Convert.ToBase64String(_key.ExportPkcs8PrivateKey()), SelfSeed = Convert.ToBase64String(_selfSeed),
    };

    public SecAggSetup Setup { get; }
    public string Site { get; }

    /// <summary>Phase 1: what the site publishes.</summary>
    public SecAggPublicKey PublicKey(long exampleCount) => new()
    {
        Federation = Setup.Federation, Round = Setup.Round, Site = Site, PublicKey = PairwiseKeys.PublicKeyBase64(_key),
        ExampleCount = exampleCount, SelfSeedSha256 = Convert.ToHexStringLower(SHA256.HashData(_selfSeed)),
    };

    /// <summary>Phase 2: for each participant (itself included) the sealed share of this site's private key and self seed.</summary>
    public Dictionary<string, byte[]> SealShares(IReadOnlyList<SecAggPublicKey> participants)
    {
        var d = PairwiseKeys.ExportPrivateScalar(_key);
        var keyShares = Shamir.Split(d, Setup.Sites.Count, Setup.Threshold);
        var seedShares = Shamir.Split(_selfSeed, Setup.Sites.Count, Setup.Threshold);
        CryptographicOperations.ZeroMemory(d);
        var sealedShares = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var p in participants)
        {
            int x = Setup.ShamirX(p.Site);
            var plain = ShareBundle.Write(keyShares[x - 1], seedShares[x - 1]);
            using var peer = PairwiseKeys.ImportPublic(p.PublicKey);
            var k = PairwiseKeys.ShareKey(_key, peer, Setup.Federation, Setup.Round, Site, p.Site);
            sealedShares[p.Site] = PairwiseKeys.Seal(k, plain, Setup.Federation, Setup.Round, Site, p.Site);
            CryptographicOperations.ZeroMemory(plain);
        }
        return sealedShares;
    }

    /// <summary>Phase 3: the masked, example-weighted, fixed-point update. Throws <see cref="RingOverflowException"/> when a value exceeds the clip bound.</summary>
    public (MaskedUpdateHeader Header, uint[] Payload) Mask(IReadOnlyList<SecAggPublicKey> participants, ReadOnlySpan<float> parameters, long exampleCount,
        DateTimeOffset createdAt, IReadOnlyDictionary<string, double>? localMetrics = null)
    {
        var own = participants.SingleOrDefault(p => p.Site == Site) ?? throw new InvalidOperationException($"site '{Site}' has not published its key");
        if (own.ExampleCount != exampleCount) throw new InvalidOperationException($"site '{Site}' published example_count {own.ExampleCount} but masks {exampleCount}");
        double scale = RingEncoding.Scale(Setup.Sites.Count, participants.Sum(p => p.ExampleCount), Setup.ClipBound);
        var y = new uint[parameters.Length];
        RingEncoding.Encode(parameters, exampleCount, scale, Setup.ClipBound, y);
        MaskGenerator.Apply(_selfSeed, y);
        foreach (var p in participants)
        {
            if (p.Site == Site) continue;
            using var peer = PairwiseKeys.ImportPublic(p.PublicKey);
            var seed = PairwiseKeys.MaskSeed(_key, peer, Setup.Federation, Setup.Round, Site, p.Site);
            MaskGenerator.Apply(seed, y, subtract: string.CompareOrdinal(Site, p.Site) > 0);
            CryptographicOperations.ZeroMemory(seed);
        }
        var header = new MaskedUpdateHeader
        {
            Federation = Setup.Federation, Round = Setup.Round, Site = Site, ExampleCount = exampleCount, Dimension = parameters.Length, Scale = scale,
            KeySetSha256 = SecAggPublicKey.KeySetSha256(participants), CreatedAt = createdAt,
            LocalMetrics = localMetrics ?? new Dictionary<string, double>(),
        };
        return (header, y);
    }

    /// <summary>
    /// Phase 4: opens the shares sealed to this site (<paramref name="sealedFrom"/>(owner) gives the bytes, or null)
    /// and reveals survivors' self-seed shares and dropped sites' private-key shares. Refuses when the survivors
    /// are fewer than the threshold or a site is named both ways.
    /// </summary>
    public SecAggUnmask Reveal(IReadOnlyList<SecAggPublicKey> participants, SecAggSurvivors survivors, Func<string, byte[]?> sealedFrom)
    {
        if (survivors.Survivors.Intersect(survivors.Dropped).Any()) throw new InvalidOperationException("a site is named both survivor and dropped");
        if (survivors.Survivors.Count < Setup.Threshold)
            throw new InvalidOperationException($"only {survivors.Survivors.Count} survivors for threshold {Setup.Threshold}: refusing to reveal");
        if (survivors.KeySetSha256 != SecAggPublicKey.KeySetSha256(participants)) throw new InvalidOperationException("the survivors name another key set");
        var seeds = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var keys = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var owner in survivors.Survivors.Concat(survivors.Dropped))
        {
            var p = participants.Single(q => q.Site == owner);
            var sealedShare = sealedFrom(owner);
            if (sealedShare is null) continue;
            using var peer = PairwiseKeys.ImportPublic(p.PublicKey);
            var k = PairwiseKeys.ShareKey(_key, peer, Setup.Federation, Setup.Round, owner, Site);
            var (keyShare, seedShare) = ShareBundle.Read(PairwiseKeys.Open(k, sealedShare, Setup.Federation, Setup.Round, owner, Site));
            if (survivors.Survivors.Contains(owner)) seeds[owner] = Convert.ToBase64String(seedShare.ToBytes());
            else keys[owner] = Convert.ToBase64String(keyShare.ToBytes());
        }
        return new SecAggUnmask { Federation = Setup.Federation, Round = Setup.Round, Site = Site, SelfSeedShares = seeds, PrivateKeyShares = keys };
    }

    public void Dispose()
    {
        _key.Dispose();
        CryptographicOperations.ZeroMemory(_selfSeed);
    }
}

/// <summary>A share bundle: the private-key share then the self-seed share, each length-prefixed.</summary>
internal static class ShareBundle
{
    public static byte[] Write(ShamirShare key, ShamirShare seed)
    {
        var a = key.ToBytes();
        var b = seed.ToBytes();
        var r = new byte[8 + a.Length + b.Length];
        BitConverter.TryWriteBytes(r.AsSpan(0, 4), a.Length);
        a.CopyTo(r, 4);
        BitConverter.TryWriteBytes(r.AsSpan(4 + a.Length, 4), b.Length);
        b.CopyTo(r, 8 + a.Length);
        return r;
    }

    public static (ShamirShare Key, ShamirShare Seed) Read(byte[] r)
    {
        int a = BitConverter.ToInt32(r, 0);
        if (a < 8 || 4 + a + 4 > r.Length) throw new FormatException("malformed share bundle");
        int b = BitConverter.ToInt32(r, 4 + a);
        if (b < 8 || 8 + a + b != r.Length) throw new FormatException("malformed share bundle");
        return (ShamirShare.FromBytes(r.AsSpan(4, a)), ShamirShare.FromBytes(r.AsSpan(8 + a, b)));
    }
}
