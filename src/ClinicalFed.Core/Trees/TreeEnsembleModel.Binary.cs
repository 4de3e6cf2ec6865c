using System.Buffers.Binary;
using System.Text;

namespace ClinicalFed.Trees;

public sealed partial class TreeEnsembleModel
{
    /// <summary>Version written by <see cref="ToBytes"/>; <see cref="FromBytes"/> reads this version only.</summary>
    public const byte BinaryFormatVersion = 1;

    private static ReadOnlySpan<byte> Magic => "CFTE"u8;
    private const int MaxFeatures = 1 << 24;
    private const int MaxTrees = 1 << 20;
    private const int MaxNodesPerTree = 1 << 20;

    /// <summary>
    /// Compact, versioned binary form (the federated update that travels). Layout, little-endian:
    /// magic <c>CFTE</c>; u8 version (1); u8 flags (bit 0: feature names present); varint feature count; f64 base score;
    /// [names: varint UTF-8 length + bytes, per feature]; varint tree count; per tree: f64 weight, varint node count,
    /// per node (varint feature, f32 threshold, u8 default-left, varint left, varint right — a child <c>c</c> is coded
    /// <c>2c</c> for a node and <c>2·~c+1</c> for a leaf), then node count + 1 f64 leaf values; finally a u64 FNV-1a
    /// checksum of everything before it. A 31-leaf tree takes about 0.5 kB.
    /// </summary>
    public byte[] ToBytes()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(BinaryFormatVersion);
            w.Write((byte)(FeatureNames is null ? 0 : 1));
            w.Write7BitEncodedInt(FeatureCount);
            w.Write(BaseScore);
            if (FeatureNames is not null)
                foreach (var name in FeatureNames) w.Write(name); // BinaryWriter: 7-bit length prefix + UTF-8
            w.Write7BitEncodedInt(_trees.Length);
            for (int t = 0; t < _trees.Length; t++)
            {
                var tree = _trees[t];
                w.Write(_weights[t]);
                w.Write7BitEncodedInt(tree.NodeCount);
                var f = tree.SplitFeature; var th = tree.Threshold; var dl = tree.DefaultLeft; var l = tree.LeftChild; var r = tree.RightChild;
                for (int i = 0; i < tree.NodeCount; i++)
                {
                    w.Write7BitEncodedInt(f[i]);
                    w.Write(th[i]);
                    w.Write((byte)(dl[i] ? 1 : 0));
                    w.Write7BitEncodedInt(EncodeChild(l[i]));
                    w.Write7BitEncodedInt(EncodeChild(r[i]));
                }
                foreach (var v in tree.LeafValue) w.Write(v);
            }
        }
        ulong hash = Fnv1a(ms.GetBuffer().AsSpan(0, (int)ms.Length));
        Span<byte> tail = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(tail, hash);
        ms.Write(tail);
        return ms.ToArray();
    }

    /// <summary>Reads <see cref="ToBytes"/> output. Throws <see cref="InvalidDataException"/> on a wrong magic,
    /// unsupported version, bad checksum, truncation, or a structurally invalid tree.</summary>
    public static TreeEnsembleModel FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Magic.Length + 2 + 8 || !bytes[..Magic.Length].SequenceEqual(Magic))
            throw new InvalidDataException("not a ClinicalFed tree ensemble (bad magic)");
        if (bytes[Magic.Length] != BinaryFormatVersion)
            throw new InvalidDataException($"tree ensemble format version {bytes[Magic.Length]} is not supported (expected {BinaryFormatVersion})");
        var body = bytes[..^8];
        if (Fnv1a(body) != BinaryPrimitives.ReadUInt64LittleEndian(bytes[^8..]))
            throw new InvalidDataException("tree ensemble checksum mismatch (corrupt or truncated)");
        var data = body.ToArray();
        try
        {
            using var r = new BinaryReader(new MemoryStream(data, Magic.Length + 1, data.Length - Magic.Length - 1), Encoding.UTF8);
            long Remaining() => r.BaseStream.Length - r.BaseStream.Position;
            byte flags = r.ReadByte();
            if ((flags & ~1) != 0) throw new InvalidDataException($"unknown flags 0x{flags:x2}");
            int featureCount = ReadCount(r, MaxFeatures, "feature count");
            double baseScore = r.ReadDouble();
            string[]? names = null;
            if ((flags & 1) != 0)
            {
                if (featureCount > Remaining()) throw new InvalidDataException("truncated feature names");
                names = new string[featureCount];
                for (int i = 0; i < featureCount; i++) names[i] = r.ReadString();
            }
            int treeCount = ReadCount(r, MaxTrees, "tree count");
            if ((long)treeCount * 17 > Remaining()) throw new InvalidDataException("truncated trees");
            var trees = new DecisionTree[treeCount];
            var weights = new double[treeCount];
            for (int t = 0; t < treeCount; t++)
            {
                weights[t] = r.ReadDouble();
                int n = ReadCount(r, MaxNodesPerTree, "node count");
                if ((long)n * 8 + (long)(n + 1) * 8 > Remaining()) throw new InvalidDataException($"tree {t} is truncated");
                var f = new int[n]; var th = new float[n]; var dl = new bool[n]; var lc = new int[n]; var rc = new int[n];
                for (int i = 0; i < n; i++)
                {
                    f[i] = ReadCount(r, featureCount - 1, "split feature");
                    th[i] = r.ReadSingle();
                    byte b = r.ReadByte();
                    if (b > 1) throw new InvalidDataException($"tree {t} node {i}: bad default-left byte {b}");
                    dl[i] = b == 1;
                    lc[i] = DecodeChild(r.Read7BitEncodedInt());
                    rc[i] = DecodeChild(r.Read7BitEncodedInt());
                }
                var leaves = new double[n + 1];
                for (int i = 0; i <= n; i++) leaves[i] = r.ReadDouble();
                trees[t] = new DecisionTree(f, th, dl, lc, rc, leaves);
            }
            if (Remaining() != 0) throw new InvalidDataException($"{Remaining()} unexpected trailing bytes");
            return new TreeEnsembleModel(featureCount, baseScore, trees, weights, names);
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or FormatException)
        {
            throw new InvalidDataException($"invalid tree ensemble: {e.Message}", e);
        }
    }

    private static int ReadCount(BinaryReader r, int max, string what)
    {
        int v = r.Read7BitEncodedInt();
        if (v < 0 || v > max) throw new InvalidDataException($"{what} {v} is out of range [0, {max}]");
        return v;
    }

    private static int EncodeChild(int c) => c >= 0 ? 2 * c : 2 * ~c + 1;

    private static int DecodeChild(int code)
    {
        if (code < 0) throw new InvalidDataException("negative child code");
        return (code & 1) == 0 ? code >> 1 : ~(code >> 1);
    }

    private static ulong Fnv1a(ReadOnlySpan<byte> data)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in data) { h ^= b; h *= 1099511628211UL; }
        return h;
    }
}
