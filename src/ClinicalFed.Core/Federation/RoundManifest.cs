using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClinicalFed.Federation;

/// <summary>
/// What the coordinator publishes when it opens a round (<c>manifest.json</c>, schemas/round-manifest.schema.json):
/// the strategy and its options, the model, the global model the round starts from, who is expected and until when.
/// Sites read it to train; the aggregator reads it to combine their updates.
/// </summary>
public sealed record RoundManifest
{
    public const int CurrentFormatVersion = 1;

    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = CurrentFormatVersion;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    [JsonPropertyName("round")] public required int Round { get; init; }

    [JsonPropertyName("strategy")] public required StrategySpec Strategy { get; init; }

    [JsonPropertyName("model")] public required ModelSpec Model { get; init; }

    /// <summary>Store path of the global model this round starts from (<c>federations/&lt;f&gt;/rounds/&lt;r&gt;/global.cfm</c>); null when training starts from zeros (round 0, or later when no earlier round reached its quorum).</summary>
    [JsonPropertyName("global_model")]
    [JsonRequired]
    public string? GlobalModel { get; init; }

    /// <summary>Minimum number of accepted updates for the round to produce a global model.</summary>
    [JsonPropertyName("quorum")] public required int Quorum { get; init; }

    /// <summary>Sites expected to upload, in no particular order; updates from other sites are rejected.</summary>
    [JsonPropertyName("sites")] public required IReadOnlyList<string> Sites { get; init; }

    [JsonPropertyName("opened_at")] public required DateTimeOffset OpenedAt { get; init; }

    /// <summary>After this instant the aggregator combines whatever has arrived, if the quorum is met.</summary>
    [JsonPropertyName("deadline")] public required DateTimeOffset Deadline { get; init; }

    /// <summary>Every problem with this manifest (empty when valid); each names its field.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (FormatVersion != CurrentFormatVersion)
            p.Add($"'format_version' is {FormatVersion}; this reader supports {CurrentFormatVersion}");
        Add(p, FederationNames.Problem(Federation, "'federation'"));
        Add(p, FederationNames.RoundProblem(Round, "'round'"));
        if (Strategy is null) p.Add("'strategy' is missing");
        else Strategy.Validate(p);
        if (Model is null) p.Add("'model' is missing");
        else Model.Validate(p, "model");

        if (GlobalModel is null)
        {
            // Training starts from zeros: round 0, or a later round when no earlier round reached its quorum.
        }
        else if (!GlobalModelPath.TryParse(GlobalModel, out _, out int fromRound))
        {
            p.Add($"'global_model' '{GlobalModel}' is not a global model path (federations/<federation>/rounds/<round:D5>/global.cfm)");
        }
        else if (fromRound >= Round && GlobalModelPath.TryParse(GlobalModel, out var fromFederation, out _) && fromFederation == Federation)
        {
            p.Add($"'global_model' refers to round {fromRound} of this federation, which is not before round {Round}");
        }

        if (Sites is null || Sites.Count == 0)
        {
            p.Add("'sites' must list at least one expected site");
        }
        else
        {
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (int i = 0; i < Sites.Count; i++)
            {
                Add(p, FederationNames.Problem(Sites[i], $"'sites[{i}]'"));
                if (Sites[i] is not null && !seen.Add(Sites[i]))
                    p.Add($"'sites[{i}]' '{Sites[i]}' repeats another site (names are compared ignoring case, since stores on Windows and macOS do)");
            }
        }

        if (Quorum < 1) p.Add($"'quorum' is {Quorum}; it must be at least 1");
        else if (Sites is { Count: > 0 } && Quorum > Sites.Count) p.Add($"'quorum' is {Quorum} but only {Sites.Count} site(s) are expected");
        if (Deadline <= OpenedAt) p.Add($"'deadline' ({Deadline:O}) must be after 'opened_at' ({OpenedAt:O})");
        return p;
    }

    /// <summary>Throws <see cref="FederationDataException"/> listing every problem, naming <paramref name="origin"/>.</summary>
    public RoundManifest EnsureValid(string origin = "round manifest")
    {
        var problems = Validate();
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return this;
    }

    /// <summary>Indented UTF-8 JSON; throws when the manifest is not valid.</summary>
    public byte[] ToJsonBytes()
    {
        EnsureValid();
        return FederationJson.Serialize(this, indented: true);
    }

    /// <summary>Parses and validates a manifest; every problem is reported naming <paramref name="origin"/>.</summary>
    public static RoundManifest Parse(ReadOnlySpan<byte> utf8Json, string origin = "manifest.json") =>
        FederationJson.Deserialize<RoundManifest>(utf8Json, origin).EnsureValid(origin);

    private static void Add(List<string> problems, string? problem)
    {
        if (problem is not null) problems.Add(problem);
    }
}

/// <summary>The round's aggregation strategy: a name from <see cref="StrategyFactory.KnownNames"/> and its options.</summary>
public sealed record StrategySpec
{
    [JsonPropertyName("name")] public required string Name { get; init; }

    /// <summary>
    /// Options as a flat JSON object of numbers and strings. Keys starting with <c>client_</c> are for the sites'
    /// trainers and ignored by the server; other keys must be options of the strategy (FedProx's
    /// <c>proximal_mu</c> is read by both).
    /// </summary>
    [JsonPropertyName("options")] public IReadOnlyDictionary<string, JsonElement> Options { get; init; } = new Dictionary<string, JsonElement>();

    /// <summary>A spec from typed, validated options, plus optional <c>client_</c> options for the sites.</summary>
    public static StrategySpec From(StrategyOptions options, IReadOnlyDictionary<string, JsonElement>? clientOptions = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.EnsureValid();
        var all = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (k, v) in options.ToDictionary()) all[k] = v;
        if (clientOptions is not null)
        {
            foreach (var (k, v) in clientOptions)
            {
                if (!k.StartsWith(StrategyOptions.ClientPrefix, StringComparison.Ordinal))
                    throw new ArgumentException($"client option '{k}' must start with '{StrategyOptions.ClientPrefix}'", nameof(clientOptions));
                all[k] = v.Clone();
            }
        }

        return new StrategySpec { Name = options.StrategyName, Options = all };
    }

    internal void Validate(List<string> p)
    {
        if (string.IsNullOrWhiteSpace(Name)) p.Add("'strategy.name' is missing or empty");
        if (Options is null)
        {
            p.Add("'strategy.options' is missing");
            return;
        }

        foreach (var (key, value) in Options)
        {
            if (!StrategyOptions.IsValidKey(key)) p.Add($"'strategy.options' key '{key}' is not a snake_case name");
            if (value.ValueKind is not (JsonValueKind.Number or JsonValueKind.String))
                p.Add($"'strategy.options.{key}' is a JSON {value.ValueKind.ToString().ToLowerInvariant()}; options must be numbers or strings");
        }
    }
}

/// <summary>The model a round trains.</summary>
public sealed record ModelSpec
{
    /// <summary><see cref="ModelKinds.Logistic"/> or <see cref="ModelKinds.Trees"/>.</summary>
    [JsonPropertyName("kind")] public required string Kind { get; init; }

    /// <summary>Number of float32 parameters of updates and global models (for logistic regression: features + 1).</summary>
    [JsonPropertyName("dimension")] public required int Dimension { get; init; }

    [JsonPropertyName("feature_spec_id")] public required string FeatureSpecId { get; init; }

    [JsonPropertyName("feature_spec_version")] public required string FeatureSpecVersion { get; init; }

    internal void Validate(List<string> p, string field)
    {
        if (!ModelKinds.All.Contains(Kind)) p.Add($"'{field}.kind' is '{Kind}'; expected one of {string.Join(", ", ModelKinds.All)}");
        if (Dimension is < 1 or > WireLimits.MaxDimension) p.Add($"'{field}.dimension' is {Dimension}; expected 1 to {WireLimits.MaxDimension}");
        if (string.IsNullOrWhiteSpace(FeatureSpecId)) p.Add($"'{field}.feature_spec_id' is missing or empty");
        if (string.IsNullOrWhiteSpace(FeatureSpecVersion)) p.Add($"'{field}.feature_spec_version' is missing or empty");
    }
}

/// <summary>
/// The store path of a round's global model, <c>federations/&lt;federation&gt;/rounds/&lt;round:D5&gt;/global.cfm</c>,
/// as round manifests refer to it (the same string is the blob name in Azure Blob Storage).
/// </summary>
public static class GlobalModelPath
{
    public static string Format(string federation, int round)
    {
        FederationNames.Validate(federation, "federation");
        FederationNames.ValidateRound(round);
        return $"federations/{federation}/rounds/{round:D5}/global.cfm";
    }

    public static bool TryParse(string? path, out string federation, out int round)
    {
        federation = "";
        round = -1;
        if (path is null) return false;
        var parts = path.Split('/');
        if (parts.Length != 5 || parts[0] != "federations" || parts[2] != "rounds" || parts[4] != "global.cfm") return false;
        if (!FederationNames.IsValid(parts[1])) return false;
        if (parts[3].Length != 5 || !parts[3].All(char.IsAsciiDigit)) return false;
        federation = parts[1];
        round = int.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture);
        return true;
    }
}
