using System.Security.Cryptography;

namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>Why a secure-aggregation round cannot be unmasked.</summary>
public sealed class SecAggException(string message) : Exception(message);

/// <summary>
/// The aggregator's side: sums masked vectors in the ring (streaming, one at a time), then removes the masks with
/// what the survivors revealed: each survivor's self mask PRG(b_u) from its reconstructed seed (checked against the
/// published SHA-256), and for each dropped site d the pairwise masks it shared with survivors, from d's
/// reconstructed private key (checked against its published public key). What remains decodes to Σ n_u x_u over the
/// survivors, divided by Σ n_u.
/// </summary>
public sealed class SecAggUnmasker
{
    private readonly SecAggSetup _setup;
    private readonly IReadOnlyList<SecAggPublicKey> _participants;
    private readonly string _keySet;
    private readonly double _scale;
    private readonly uint[] _sum;
    private readonly List<string> _summed = [];

    public SecAggUnmasker(SecAggSetup setup, IReadOnlyList<SecAggPublicKey> participants, int dimension)
    {
        _setup = setup;
        _participants = participants;
        _keySet = SecAggPublicKey.KeySetSha256(participants);
        _scale = RingEncoding.Scale(setup.Sites.Count, participants.Sum(p => p.ExampleCount), setup.ClipBound);
        _sum = new uint[dimension];
    }

    public string KeySetSha256 => _keySet;
    public IReadOnlyList<string> Summed => _summed;

    /// <summary>Adds one masked upload; returns a reason when it is rejected (the sum is then unchanged).</summary>
    public string? Add(MaskedUpdateHeader header, ReadOnlySpan<uint> payload)
    {
        var p = _participants.SingleOrDefault(q => q.Site == header.Site);
        if (p is null) return $"site '{header.Site}' published no secure-aggregation key";
        if (_summed.Contains(header.Site)) return $"site '{header.Site}' already contributed";
        if (header.Federation != _setup.Federation || header.Round != _setup.Round) return "the masked update belongs to another federation or round";
        if (header.KeySetSha256 != _keySet) return "the masked update was made with another key set";
        if (header.ExampleCount != p.ExampleCount) return $"example_count {header.ExampleCount} differs from the {p.ExampleCount} the site published";
        if (header.Scale != _scale) return $"scale {header.Scale} differs from the key set's {_scale}";
        if (payload.Length != _sum.Length) return $"dimension {payload.Length}; expected {_sum.Length}";
        RingEncoding.AddInPlace(_sum, payload);
        _summed.Add(header.Site);
        return null;
    }

    /// <summary>Removes the masks and returns the example-weighted mean of the survivors' updates.</summary>
    public float[] Finish(SecAggSurvivors survivors, IReadOnlyList<SecAggUnmask> reveals)
    {
        if (!survivors.Survivors.Order(StringComparer.Ordinal).SequenceEqual(_summed.Order(StringComparer.Ordinal)))
            throw new SecAggException("the survivors are not exactly the sites whose masked updates were summed");
        var usable = reveals.Where(r => survivors.Survivors.Contains(r.Site) && r.Federation == _setup.Federation && r.Round == _setup.Round).ToList();
        if (usable.Count < _setup.Threshold)
            throw new SecAggException($"{usable.Count} survivor(s) revealed shares; {_setup.Threshold} are needed");
        var sum = (uint[])_sum.Clone();
        foreach (var s in survivors.Survivors)
        {
            var p = _participants.Single(q => q.Site == s);
            var seed = Reconstruct(s, usable.Select(r => r.SelfSeedShares.GetValueOrDefault(s)), 32,
                candidate => Convert.ToHexStringLower(SHA256.HashData(candidate)) == p.SelfSeedSha256, "self-mask seed");
            MaskGenerator.Apply(seed, sum, subtract: true);
        }
        foreach (var d in survivors.Dropped)
        {
            var pd = _participants.Single(q => q.Site == d);
            var scalar = Reconstruct(d, usable.Select(r => r.PrivateKeyShares.GetValueOrDefault(d)), 32, candidate =>
            {
                try { using var _ = PairwiseKeys.ImportPrivate(candidate, pd.PublicKey); return true; }
                catch (CryptographicException) { return false; }
            }, "private key");
            using var dKey = PairwiseKeys.ImportPrivate(scalar, pd.PublicKey);
            foreach (var s in survivors.Survivors)
            {
                using var peer = PairwiseKeys.ImportPublic(_participants.Single(q => q.Site == s).PublicKey);
                var seed = PairwiseKeys.MaskSeed(dKey, peer, _setup.Federation, _setup.Round, d, s);
                // Survivor s added +PRG when s < d, −PRG when s > d: undo exactly that.
                MaskGenerator.Apply(seed, sum, subtract: string.CompareOrdinal(s, d) < 0);
            }
        }
        long total = _participants.Where(p => survivors.Survivors.Contains(p.Site)).Sum(p => p.ExampleCount);
        var mean = new float[sum.Length];
        RingEncoding.DecodeMean(sum, _scale, total, mean);
        return mean;
    }

    /// <summary>
    /// Reconstructs an owner's secret from the revealed shares: first from the first t well-formed shares; if the
    /// result fails <paramref name="check"/> (a wrong or tampered share), from other t-subsets while any remain.
    /// </summary>
    private byte[] Reconstruct(string owner, IEnumerable<string?> encoded, int bytes, Func<byte[], bool> check, string what)
    {
        var shares = new List<ShamirShare>();
        foreach (var e in encoded)
        {
            if (e is null) continue;
            try { shares.Add(ShamirShare.FromBytes(Convert.FromBase64String(e))); }
            catch (FormatException) { }
        }
        shares = shares.GroupBy(s => s.X).Select(g => g.First()).ToList();
        int t = _setup.Threshold;
        if (shares.Count < t) throw new SecAggException($"{shares.Count} usable share(s) of site '{owner}''s {what}; {t} are needed");
        int tried = 0;
        foreach (var subset in Subsets(shares, t))
        {
            if (++tried > 256) break;
            try
            {
                var secret = Shamir.Reconstruct(subset, bytes);
                if (check(secret)) return secret;
            }
            catch (CryptographicException) { }
        }
        throw new SecAggException($"the revealed shares of site '{owner}''s {what} do not reconstruct the committed value (a share is wrong or tampered)");
    }

    private static IEnumerable<List<ShamirShare>> Subsets(List<ShamirShare> items, int k, int start = 0)
    {
        if (k == 0) { yield return []; yield break; }
        for (int i = start; i <= items.Count - k; i++)
            foreach (var rest in Subsets(items, k - 1, i + 1))
            {
                rest.Insert(0, items[i]);
                yield return rest;
            }
    }
}
