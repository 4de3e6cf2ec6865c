using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using ClinicalFed.Federation;

namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>Names of the secure-aggregation payload encoding and JSON helpers for its store objects.</summary>
public static class SecAggJson
{
    /// <summary>The payload encoding of a masked upload: uint32 little-endian values of the ring Z/2^32.</summary>
    public const string MaskedRing32 = "masked-ring32";

    public static byte[] Serialize<T>(T value) => FederationJson.Serialize(value, indented: true);

    public static T Deserialize<T>(ReadOnlySpan<byte> utf8, string origin) where T : class => FederationJson.Deserialize<T>(utf8, origin);
}

/// <summary>What every secure-aggregation object of a round names: its format version, federation and round.</summary>
public abstract record SecAggObject
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("federation")] public required string Federation { get; init; }
    [JsonPropertyName("round")] public required int Round { get; init; }
}

/// <summary><c>secagg/setup.json</c>: the round's secure-aggregation parameters, written when the round opens.</summary>
public sealed record SecAggSetup : SecAggObject
{
    /// <summary>The sites that may take part, in ordinal order (the order fixes each pairwise mask's sign and each site's Shamir x = index + 1).</summary>
    [JsonPropertyName("sites")] public required IReadOnlyList<string> Sites { get; init; }
    /// <summary>Shares needed to reconstruct a secret; the round completes while at least this many sites answer the unmask phase.</summary>
    [JsonPropertyName("threshold")] public required int Threshold { get; init; }
    /// <summary>The bound B on |parameter| behind the ring scale (<see cref="RingEncoding"/>).</summary>
    [JsonPropertyName("clip_bound")] public double ClipBound { get; init; } = RingEncoding.DefaultClipBound;

    public int ShamirX(string site)
    {
        int i = Sites.ToList().IndexOf(site);
        if (i < 0) throw new ArgumentException($"site '{site}' is not in the secure-aggregation setup", nameof(site));
        return i + 1;
    }

    /// <summary>Every problem (empty when valid).</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (FormatVersion != 1) p.Add($"'format_version' is {FormatVersion}; expected 1");
        if (Sites.Count < 2) p.Add("'sites' needs at least 2 sites");
        if (!Sites.SequenceEqual(Sites.Order(StringComparer.Ordinal)) || Sites.Distinct().Count() != Sites.Count) p.Add("'sites' must be distinct and in ordinal order");
        if (Threshold < 2 || Threshold > Sites.Count) p.Add($"'threshold' is {Threshold}; expected 2 to {Sites.Count}");
        if (!(ClipBound > 0) || !double.IsFinite(ClipBound)) p.Add($"'clip_bound' is {ClipBound}; expected a positive number");
        return p;
    }

    /// <summary>The SecAgg default threshold: a strict majority (t = ⌊n/2⌋ + 1), so two disjoint groups can never both unmask.</summary>
    public static int DefaultThreshold(int sites) => sites / 2 + 1;
}

/// <summary><c>secagg/keys/&lt;site&gt;.json</c>: a site's round public key, its example count, and a commitment to its self-mask seed.</summary>
public sealed record SecAggPublicKey : SecAggObject
{
    [JsonPropertyName("site")] public required string Site { get; init; }
    /// <summary>Base64 SubjectPublicKeyInfo of the site's ECDH P-256 key for this round.</summary>
    [JsonPropertyName("public_key")] public required string PublicKey { get; init; }
    /// <summary>The weight the site will apply to its update (sent in clear, as in every update header).</summary>
    [JsonPropertyName("example_count")] public required long ExampleCount { get; init; }
    /// <summary>Lower-case hex SHA-256 of the self-mask seed: lets the aggregator check a reconstructed seed.</summary>
    [JsonPropertyName("self_seed_sha256")] public required string SelfSeedSha256 { get; init; }

    /// <summary>The SHA-256 over the sorted participants' (site, public key, example count): every masked upload names it, so all used the same key set.</summary>
    public static string KeySetSha256(IEnumerable<SecAggPublicKey> keys)
    {
        var sb = new StringBuilder();
        foreach (var k in keys.OrderBy(k => k.Site, StringComparer.Ordinal)) sb.Append(k.Site).Append('\n').Append(k.PublicKey).Append('\n').Append(k.ExampleCount).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }
}

/// <summary><c>secagg/survivors.json</c>: written by the aggregator when the masking phase closes; tells sites whose secrets to reveal.</summary>
public sealed record SecAggSurvivors : SecAggObject
{
    /// <summary>Sites whose masked update the aggregator will sum (their self-mask seeds get revealed).</summary>
    [JsonPropertyName("survivors")] public required IReadOnlyList<string> Survivors { get; init; }
    /// <summary>Sites that published keys and shares but sent no masked update (their private keys get revealed).</summary>
    [JsonPropertyName("dropped")] public required IReadOnlyList<string> Dropped { get; init; }
    [JsonPropertyName("key_set_sha256")] public required string KeySetSha256 { get; init; }
    /// <summary>Masked uploads that were refused (tampered, unsigned, another key set…), with the reason; their sites count as dropped.</summary>
    [JsonPropertyName("rejected")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<RejectedUpdate>? Rejected { get; init; }
}

/// <summary><c>secagg/unmask/&lt;site&gt;.json</c>: the shares one surviving site reveals, base64 <see cref="ShamirShare.ToBytes"/>, keyed by the owner of the secret.</summary>
public sealed record SecAggUnmask : SecAggObject
{
    [JsonPropertyName("site")] public required string Site { get; init; }
    /// <summary>Shares of survivors' self-mask seeds (never of a dropped site's).</summary>
    [JsonPropertyName("self_seed_shares")] public required IReadOnlyDictionary<string, string> SelfSeedShares { get; init; }
    /// <summary>Shares of dropped sites' ECDH private keys (never of a survivor's).</summary>
    [JsonPropertyName("private_key_shares")] public required IReadOnlyDictionary<string, string> PrivateKeyShares { get; init; }
}

/// <summary>The JSON header of a masked upload (<c>secagg/masked/&lt;site&gt;.cfm32</c>).</summary>
public sealed record MaskedUpdateHeader : SecAggObject
{
    [JsonPropertyName("site")] public required string Site { get; init; }
    [JsonPropertyName("example_count")] public required long ExampleCount { get; init; }
    [JsonPropertyName("parameter_kind")] public string ParameterKind { get; init; } = ParameterKinds.Full;
    [JsonPropertyName("dimension")] public required int Dimension { get; init; }
    [JsonPropertyName("payload_encoding")] public string PayloadEncoding { get; init; } = SecAggJson.MaskedRing32;
    /// <summary>The fixed-point scale the site encoded with (<see cref="RingEncoding.Scale"/> of the key set).</summary>
    [JsonPropertyName("scale")] public required double Scale { get; init; }
    [JsonPropertyName("key_set_sha256")] public required string KeySetSha256 { get; init; }
    [JsonPropertyName("local_metrics")] public IReadOnlyDictionary<string, double> LocalMetrics { get; init; } = new Dictionary<string, double>();
    [JsonPropertyName("created_at")] public required DateTimeOffset CreatedAt { get; init; }
    [JsonPropertyName("payload_sha256")] public string PayloadSha256 { get; init; } = "";
    /// <summary>
    /// The site's ECDSA P-256 signature (IEEE P1363, base64) over the header without it
    /// (<see cref="Signing.MaskedUpdateSignature"/>); absent when unsigned.
    /// </summary>
    [JsonPropertyName("signature")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Signature { get; init; }
}

/// <summary>
/// <c>secagg/shares/&lt;site&gt;.json</c>: everything a site sealed for the others in one object (so one upload ticket
/// covers it): for each recipient, its Shamir shares of the sender's private key and self seed, encrypted to that
/// recipient with their pairwise share key (base64). Only the recipient can open its entry.
/// </summary>
public sealed record SecAggShares : SecAggObject
{
    [JsonPropertyName("site")] public required string Site { get; init; }
    [JsonPropertyName("shares")] public required IReadOnlyDictionary<string, string> Shares { get; init; }
}

/// <summary>
/// A phase boundary the aggregator writes in the serverless protocol: <c>secagg/keyset.json</c> (the sites whose keys
/// count: they receive shares) and <c>secagg/participants.json</c> (the sites whose shares arrived: every masked
/// update pairs with exactly these).
/// </summary>
public sealed record SecAggSiteList : SecAggObject
{
    [JsonPropertyName("sites")] public required IReadOnlyList<string> Sites { get; init; }
}

/// <summary>
/// A site's secret state of one round (kept in its work folder, never uploaded), so that an agent that restarts
/// mid-round continues with the key it published.
/// </summary>
public sealed record SecAggSiteState : SecAggObject
{
    [JsonPropertyName("site")] public required string Site { get; init; }
    /// <summary>The ECDH private key, PKCS#8 DER, base64.</summary>
    [JsonPropertyName("private_key")] public required string PrivateKey { get; init; }
    /// <summary>The self-mask seed, base64.</summary>
    [JsonPropertyName("self_seed")] public required string SelfSeed { get; init; }
}
