using System.Text;

namespace ClinicalFed.Cdm.Io;

/// <summary>Interns the strings that repeat across millions of resources (code systems, codes, units, references)
/// so the hot read path allocates almost nothing for them.</summary>
public sealed class Utf8StringPool(int maxEntries = 1 << 20)
{
    private readonly HashSet<string> _set = new(StringComparer.Ordinal);

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > 256) return Encoding.UTF8.GetString(utf8);
        Span<char> chars = stackalloc char[256];
        int n = Encoding.UTF8.GetChars(utf8, chars);
        var lookup = _set.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(chars[..n], out var s)) return s;
        s = new string(chars[..n]);
        if (_set.Count < maxEntries) _set.Add(s);
        return s;
    }
}
