using System.Text;

namespace ClinicalFed.Cdm.Io;

/// <summary>Interns the strings that repeat across millions of resources (code systems, codes, units, references)
/// so the hot read path allocates almost nothing for them. Keyed by the UTF-8 bytes themselves: a hit costs one
/// hash and one byte comparison, no transcoding.</summary>
/// <param name="maxEntries">Strings interned at most (later ones are allocated each time).</param>
/// <param name="initialBuckets">Initial hash buckets, a power of two (the table doubles as it fills): small for one
/// request's resources, the default for a site's bulk data.</param>
public sealed class Utf8StringPool(int maxEntries = 1 << 20, int initialBuckets = 1 << 12)
{
    private Entry[] _buckets = new Entry[System.Numerics.BitOperations.IsPow2(initialBuckets) ? initialBuckets : throw new ArgumentOutOfRangeException(nameof(initialBuckets), initialBuckets, "a power of two")];
    private int _count;

    private sealed class Entry(byte[] key, string value, int hash, Entry? next)
    {
        public readonly byte[] Key = key;
        public readonly string Value = value;
        public readonly int Hash = hash;
        public readonly Entry? Next = next;
    }

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > 512) return Encoding.UTF8.GetString(utf8);
        var hc = new HashCode();
        hc.AddBytes(utf8);
        int hash = hc.ToHashCode();
        ref var bucket = ref _buckets[hash & (_buckets.Length - 1)];
        for (var e = bucket; e is not null; e = e.Next)
            if (e.Hash == hash && utf8.SequenceEqual(e.Key)) return e.Value;
        var s = Encoding.UTF8.GetString(utf8);
        if (_count >= maxEntries) return s;
        bucket = new Entry(utf8.ToArray(), s, hash, bucket);
        if (++_count > _buckets.Length) Grow();
        return s;
    }

    private void Grow()
    {
        var old = _buckets;
        _buckets = new Entry[old.Length * 2];
        foreach (var head in old)
            for (var e = head; e is not null; e = e.Next)
            {
                ref var b = ref _buckets[e.Hash & (_buckets.Length - 1)];
                b = new Entry(e.Key, e.Value, e.Hash, b);
            }
    }
}
