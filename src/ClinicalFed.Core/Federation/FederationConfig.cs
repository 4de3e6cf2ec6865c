using System.Text.Json.Serialization;

namespace ClinicalFed.Federation;

/// <summary>
/// A federation's settings and site registry (<c>federation.json</c>, schemas/federation.schema.json): the model
/// and strategy every round uses, how many rounds, how long each stays open, the quorum, and the registered sites
/// with the SHA-256 of each site's key. The only mutable document of a store: administration replaces it with an
/// optimistic-concurrency check; everything a round produces stays write-once.
/// </summary>
public sealed record FederationConfig
{
    public const int CurrentFormatVersion = 1;

    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = CurrentFormatVersion;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    /// <summary>Free text for people: the study, the data, the contact.</summary>
    [JsonPropertyName("description")] public string Description { get; init; } = "";

    [JsonPropertyName("model")] public required ModelSpec Model { get; init; }

    /// <summary>Strategy of every round; <c>client_</c> options carry the sites' training settings.</summary>
    [JsonPropertyName("strategy")] public required StrategySpec Strategy { get; init; }

    /// <summary>Number of rounds (0 to <c>rounds - 1</c>); after the last one the federation is complete.</summary>
    [JsonPropertyName("rounds")] public required int Rounds { get; init; }

    /// <summary>Minimum accepted updates for a round to produce a global model; a round opens only when at least this many sites are active.</summary>
    [JsonPropertyName("quorum")] public required int Quorum { get; init; }

    /// <summary>How long a round stays open for uploads, in seconds; the aggregator closes it at the deadline.</summary>
    [JsonPropertyName("round_seconds")] public required int RoundSeconds { get; init; }

    /// <summary>
    /// Whether round 0 waits for federated statistics: every active site uploads aggregate statistics of its
    /// training rows, the aggregator merges them, and sites impute and standardize with the merged figures.
    /// </summary>
    [JsonPropertyName("statistics")] public bool Statistics { get; init; } = true;

    /// <summary>
    /// Whether every update must be signed by its site's registered key (schemas/federation.schema.json). When false
    /// (the default, for federations created before signing), only sites that registered a
    /// <see cref="RegisteredSite.SigningPublicKey"/> must sign; when true, an update of a site without a registered key
    /// is rejected too. Left out of the document while false.
    /// </summary>
    [JsonPropertyName("require_signatures")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool RequireSignatures { get; init; }

    /// <summary>
    /// Site-level DP-FedAvg for every round (null: off): the aggregator clips each site's update (or checks that the
    /// sites clipped it, mode client) and adds Gaussian noise to the aggregate; the strategy must weigh sites uniformly.
    /// Left out of the document while off.
    /// </summary>
    [JsonPropertyName("site_level_dp")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SiteLevelDpConfig? SiteLevelDp { get; init; }

    /// <summary>
    /// Secure aggregation for every round (null: off): sites upload only masked vectors through the four phases of
    /// store-layout.md ("Secure aggregation"), and the aggregator unmasks only their sum. Left out while off.
    /// </summary>
    [JsonPropertyName("secure_aggregation")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SecureAggregationConfig? SecureAggregation { get; init; }

    [JsonPropertyName("sites")] public IReadOnlyList<RegisteredSite> Sites { get; init; } = [];

    [JsonPropertyName("created_at")] public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Active (not withdrawn) sites, in registration order.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> ActiveSites => Sites.Where(s => s.Status == SiteStatuses.Active).Select(s => s.Name).ToArray();

    public RegisteredSite? FindSite(string site) => Sites.FirstOrDefault(s => string.Equals(s.Name, site, StringComparison.Ordinal));

    /// <summary>The strategy option with which the sites compress their updates (read by the site agent).</summary>
    public const string ClientCompressKey = StrategyOptions.ClientPrefix + "compress";

    /// <summary>Every problem with this document (empty when valid), each naming its field.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (FormatVersion != CurrentFormatVersion)
            p.Add($"'format_version' is {FormatVersion}; this reader supports {CurrentFormatVersion}");
        if (FederationNames.Problem(Federation, "'federation'") is { } fp) p.Add(fp);
        if (Description is null) p.Add("'description' is null");
        if (Model is null) p.Add("'model' is missing");
        else Model.Validate(p, "model");
        if (Strategy is null) p.Add("'strategy' is missing");
        else Strategy.Validate(p);
        if (Rounds is < 1 or > FederationNames.MaxRound + 1) p.Add($"'rounds' is {Rounds}; expected 1 to {FederationNames.MaxRound + 1}");
        if (RoundSeconds is < 1 or > 366 * 24 * 3600) p.Add($"'round_seconds' is {RoundSeconds}; expected 1 to {366 * 24 * 3600}");
        if (Sites is null)
        {
            p.Add("'sites' is missing");
            return p;
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < Sites.Count; i++)
        {
            var s = Sites[i];
            if (s is null)
            {
                p.Add($"'sites[{i}]' is null");
                continue;
            }

            if (FederationNames.Problem(s.Name, $"'sites[{i}].name'") is { } np) p.Add(np);
            else if (!seen.Add(s.Name)) p.Add($"'sites[{i}].name' '{s.Name}' repeats another site (names are compared ignoring case)");
            if (!FederationJson.IsSha256Hex(s.KeySha256)) p.Add($"'sites[{i}].key_sha256' is not 64 lower-case hex digits");
            if (!SiteStatuses.All.Contains(s.Status)) p.Add($"'sites[{i}].status' is '{s.Status}'; expected one of {string.Join(", ", SiteStatuses.All)}");
            if (s.Status == SiteStatuses.Withdrawn && s.WithdrawnAt is null) p.Add($"'sites[{i}].withdrawn_at' is missing for a withdrawn site");
            if (s.SigningPublicKey is not null && ClinicalFed.Privacy.Signing.SigningKeys.PublicKeyProblem(s.SigningPublicKey) is { } kp)
                p.Add($"'sites[{i}].signing_public_key' is {kp}");
        }

        if (SiteLevelDp is { } dp)
        {
            foreach (var problem in dp.ToOptions().Validate())
            {
                int colon = problem.IndexOf(':');
                p.Add(colon > 0 ? $"'site_level_dp.{problem[..colon]}' is{problem[(colon + 1)..]}" : $"'site_level_dp': {problem}");
            }
            if (Strategy is not null && Strategy.Options.TryGetValue("weighting", out var w) && w.ValueKind == System.Text.Json.JsonValueKind.String && w.GetString() == "uniform") { }
            else p.Add("'site_level_dp' needs the strategy option weighting=uniform (the sensitivity of the mean is C/n only when every site weighs the same)");
        }

        if (SecureAggregation is { } sa)
        {
            if (sa.Threshold is { } t && t < 1) p.Add($"'secure_aggregation.threshold' is {t}; it must be at least 1 (default: a strict majority of the round's sites)");
            if (!(sa.ClipBound > 0) || !double.IsFinite(sa.ClipBound)) p.Add($"'secure_aggregation.clip_bound' is {sa.ClipBound}; it must be a positive number");
            if (Model is not null && Model.Kind != ModelKinds.Logistic) p.Add($"'secure_aggregation' needs float32 parameters (model kind {ModelKinds.Logistic}), not '{Model.Kind}'");
            if (SiteLevelDp is { Mode: not ClinicalFed.Privacy.SiteDpModes.Client })
                p.Add("'secure_aggregation' with 'site_level_dp' needs 'site_level_dp.mode' client: the aggregator cannot clip what it cannot see, so each site clips its update and adds its share of the noise before masking");
            if (Strategy is not null && Strategy.Options.ContainsKey(ClientCompressKey))
                p.Add($"'secure_aggregation' with 'strategy.options.{ClientCompressKey}': masked updates are dense float32 vectors (a mask covers every coordinate), so they cannot be compressed");
        }

        if (Model is not null && Strategy is not null)
        {
            bool treeStrategy = StrategyNames.Trees.Contains(Strategy.Name);
            if (Model.Kind == ModelKinds.Trees && StrategyNames.All.Contains(Strategy.Name))
                p.Add($"'strategy.name' is '{Strategy.Name}', which aggregates float32 parameters; a '{ModelKinds.Trees}' federation needs {string.Join(" or ", StrategyNames.Trees)}");
            if (Model.Kind == ModelKinds.Logistic && treeStrategy)
                p.Add($"'strategy.name' is '{Strategy.Name}', which aggregates tree ensembles; a '{ModelKinds.Logistic}' federation needs one of {string.Join(", ", StrategyNames.All)}");
            if (Strategy.Name == StrategyNames.TreeBagging && Rounds != 1)
                p.Add($"'rounds' is {Rounds}; {StrategyNames.TreeBagging} is one exchange (every site sends its whole ensemble once), so it needs exactly 1 round");
            if (Model.Kind == ModelKinds.Trees && Strategy.Options.ContainsKey(ClientCompressKey))
                p.Add($"'strategy.options.{ClientCompressKey}' compresses float32 parameters (model kind {ModelKinds.Logistic}), not '{Model.Kind}'");
            if (Model.Kind == ModelKinds.Trees && SiteLevelDp is not null)
                p.Add($"'site_level_dp' clips and noises float32 parameters (model kind {ModelKinds.Logistic}), not '{Model.Kind}'");
        }

        // A quorum above the number of active sites is allowed while sites register; a round refuses to open then.
        if (Quorum < 1) p.Add($"'quorum' is {Quorum}; it must be at least 1");
        return p;
    }

    public FederationConfig EnsureValid(string origin = "federation.json")
    {
        var problems = Validate();
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return this;
    }

    public byte[] ToJsonBytes()
    {
        EnsureValid();
        return FederationJson.Serialize(this, indented: true);
    }

    public static FederationConfig Parse(ReadOnlySpan<byte> utf8Json, string origin = "federation.json") =>
        FederationJson.Deserialize<FederationConfig>(utf8Json, origin).EnsureValid(origin);
}

/// <summary>A site registered in a federation. The key itself is never stored: only its SHA-256.</summary>
public sealed record RegisteredSite
{
    [JsonPropertyName("name")] public required string Name { get; init; }

    /// <summary>Lower-case hex SHA-256 of the site's key (the UTF-8 bytes of the key string).</summary>
    [JsonPropertyName("key_sha256")] public required string KeySha256 { get; init; }

    /// <summary><see cref="SiteStatuses.Active"/> or <see cref="SiteStatuses.Withdrawn"/>.</summary>
    [JsonPropertyName("status")] public required string Status { get; init; }

    [JsonPropertyName("registered_at")] public required DateTimeOffset RegisteredAt { get; init; }

    [JsonPropertyName("withdrawn_at")] public DateTimeOffset? WithdrawnAt { get; init; }

    /// <summary>
    /// The site's ECDSA P-256 public key that verifies its update signatures: base64 of the DER SubjectPublicKeyInfo
    /// (<see cref="ClinicalFed.Privacy.Signing.SigningKeys"/>); absent when the site registered none.
    /// </summary>
    [JsonPropertyName("signing_public_key")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SigningPublicKey { get; init; }
}

public static class SiteStatuses
{
    public const string Active = "active";
    public const string Withdrawn = "withdrawn";
    public static IReadOnlyList<string> All { get; } = [Active, Withdrawn];
}

/// <summary>The <c>site_level_dp</c> object of federation.json (schemas/federation.schema.json).</summary>
public sealed record SiteLevelDpConfig
{
    /// <summary>C: the L2 bound of each site's update.</summary>
    [JsonPropertyName("clip_norm")] public double ClipNorm { get; init; } = 1.0;

    /// <summary>z: the noise on the mean has standard deviation z·C / n.</summary>
    [JsonPropertyName("noise_multiplier")] public double NoiseMultiplier { get; init; } = 1.0;

    [JsonPropertyName("delta")] public double Delta { get; init; } = 1e-5;

    /// <summary>server (the aggregator clips) or client (the sites clip; the aggregator rejects a longer update).</summary>
    [JsonPropertyName("mode")] public string Mode { get; init; } = ClinicalFed.Privacy.SiteDpModes.Server;

    /// <summary>A round that would take the federation's site-level ε above this is refused (null: no limit).</summary>
    [JsonPropertyName("target_epsilon")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TargetEpsilon { get; init; }

    public ClinicalFed.Privacy.SiteDpOptions ToOptions() => new()
    {
        ClipNorm = ClipNorm, NoiseMultiplier = NoiseMultiplier, Delta = Delta, Mode = Mode, TargetEpsilon = TargetEpsilon,
    };
}

/// <summary>The <c>secure_aggregation</c> object of federation.json (schemas/federation.schema.json).</summary>
public sealed record SecureAggregationConfig
{
    /// <summary>Shamir threshold t (null: a strict majority of the round's sites, ⌊n/2⌋ + 1).</summary>
    [JsonPropertyName("threshold")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Threshold { get; init; }

    /// <summary>B: the largest |parameter| a site may mask (the fixed-point range).</summary>
    [JsonPropertyName("clip_bound")] public double ClipBound { get; init; } = ClinicalFed.Privacy.SecureAggregation.RingEncoding.DefaultClipBound;
}
