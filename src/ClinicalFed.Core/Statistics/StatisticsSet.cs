using System.Diagnostics;

namespace ClinicalFed.Statistics;

/// <summary>
/// The statistics file a site shares (scope "site") or the merge of several sites (scope "federated"):
/// per-column aggregates only, never rows. Instances are immutable.
/// </summary>
public sealed class StatisticsSet
{
    /// <summary>The file format version this code reads and writes.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>Scope of a single site's statistics.</summary>
    public const string SiteScope = "site";

    /// <summary>Scope of merged statistics.</summary>
    public const string FederatedScope = "federated";

    /// <summary>
    /// Creates a validated set. The features are copied, so later changes to the arguments do not affect it.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// Unknown scope; a site scope without exactly one site; blank or duplicate sites, spec id/version or feature
    /// names; no features; or a feature whose Count + Missing differs from <paramref name="rows"/>.
    /// </exception>
    public StatisticsSet(
        string scope,
        IReadOnlyList<string> sites,
        string featureSpecId,
        string featureSpecVersion,
        long rows,
        IReadOnlyList<FeatureStatistics> features)
        : this(scope, sites, featureSpecId, featureSpecVersion, rows, CopyFeatures(features), owned: true)
    {
    }

    // Adopts ownedFeatures without copying (the bool only distinguishes this overload) and makes them read-only.
    private StatisticsSet(
        string scope,
        IReadOnlyList<string> sites,
        string featureSpecId,
        string featureSpecVersion,
        long rows,
        FeatureStatistics[] ownedFeatures,
        bool owned)
    {
        Debug.Assert(owned, "The private constructor always adopts its feature array.");
        if (scope is not (SiteScope or FederatedScope))
        {
            throw new ArgumentException($"Scope must be '{SiteScope}' or '{FederatedScope}', got '{scope}'.", nameof(scope));
        }

        ArgumentNullException.ThrowIfNull(sites);
        if (sites.Count == 0)
        {
            throw new ArgumentException("At least one site is required.", nameof(sites));
        }

        if (scope == SiteScope && sites.Count != 1)
        {
            throw new ArgumentException(
                $"A '{SiteScope}' statistics set has exactly one site, got {sites.Count}: {string.Join(", ", sites)}.", nameof(sites));
        }

        var seenSites = new HashSet<string>(StringComparer.Ordinal);
        foreach (string site in sites)
        {
            if (string.IsNullOrWhiteSpace(site))
            {
                throw new ArgumentException("Site names must not be empty.", nameof(sites));
            }

            if (!seenSites.Add(site))
            {
                throw new ArgumentException($"Site '{site}' is listed more than once.", nameof(sites));
            }
        }

        ValidateSpecIdentity(featureSpecId, featureSpecVersion);
        if (rows < 0)
        {
            throw new ArgumentException($"Rows must not be negative, got {rows}.", nameof(rows));
        }

        if (ownedFeatures.Length == 0)
        {
            throw new ArgumentException("At least one feature is required.", nameof(ownedFeatures));
        }

        var seenNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (FeatureStatistics feature in ownedFeatures)
        {
            if (!seenNames.Add(feature.Name))
            {
                throw new ArgumentException($"Feature '{feature.Name}' appears more than once.", "features");
            }

            if (feature.Total != rows)
            {
                throw new ArgumentException(
                    $"Feature '{feature.Name}' has count {feature.Count} + missing {feature.Missing} = {feature.Total}, but the set has {rows} rows.",
                    "features");
            }

            feature.MakeReadOnly();
        }

        Scope = scope;
        Sites = Array.AsReadOnly(sites.ToArray());
        FeatureSpecId = featureSpecId;
        FeatureSpecVersion = featureSpecVersion;
        Rows = rows;
        Features = Array.AsReadOnly(ownedFeatures);
    }

    /// <summary>Always <see cref="CurrentFormatVersion"/> (1).</summary>
    public int FormatVersion => CurrentFormatVersion;

    /// <summary>"site" or "federated".</summary>
    public string Scope { get; }

    /// <summary>Names of the sites whose rows these statistics summarise.</summary>
    public IReadOnlyList<string> Sites { get; }

    /// <summary>Identifier of the feature spec that produced the columns.</summary>
    public string FeatureSpecId { get; }

    /// <summary>Version of the feature spec that produced the columns.</summary>
    public string FeatureSpecVersion { get; }

    /// <summary>Total number of rows summarised.</summary>
    public long Rows { get; }

    /// <summary>Per-column statistics in column order (read-only; use <see cref="FeatureStatistics.Clone"/> to modify).</summary>
    public IReadOnlyList<FeatureStatistics> Features { get; }

    /// <summary>The statistics of the column named <paramref name="name"/>, or null.</summary>
    public FeatureStatistics? FindFeature(string name) =>
        Features.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.Ordinal));

    /// <summary>Computes a site's statistics from a row-major table of <paramref name="columns"/> float32 columns.</summary>
    /// <exception cref="ArgumentException">Shapes disagree, names are invalid, or a value is ±Infinity.</exception>
    public static StatisticsSet Compute(
        string site,
        string specId,
        string specVersion,
        IReadOnlyList<string> columnNames,
        IReadOnlyList<HistogramSpec> histograms,
        float[] rowMajor,
        int columns)
    {
        ArgumentNullException.ThrowIfNull(columnNames);
        ArgumentNullException.ThrowIfNull(rowMajor);
        if (columns != columnNames.Count)
        {
            throw new ArgumentException($"columns is {columns} but {columnNames.Count} column names were given.", nameof(columns));
        }

        var builder = new StatisticsBuilder(site, specId, specVersion, columnNames, histograms);
        builder.AddRows(rowMajor);
        return builder.Build();
    }

    /// <summary>
    /// Merges site (or already merged) statistics into one "federated" set equal to the statistics of the pooled rows.
    /// All sets must share the feature spec id and version, column names (in order) and histogram specs, and no site
    /// may appear twice.
    /// </summary>
    /// <exception cref="StatisticsMergeException">Lists every mismatch at once.</exception>
    public static StatisticsSet Merge(IReadOnlyList<StatisticsSet> sets)
    {
        ArgumentNullException.ThrowIfNull(sets);
        if (sets.Count == 0)
        {
            throw new ArgumentException("At least one statistics set is required to merge.", nameof(sets));
        }

        var problems = new List<string>();
        StatisticsSet? reference = null;
        int referenceIndex = -1;
        var siteOwner = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < sets.Count; i++)
        {
            StatisticsSet? set = sets[i];
            if (set is null)
            {
                problems.Add($"set #{i + 1} is null.");
                continue;
            }

            foreach (string site in set.Sites)
            {
                if (siteOwner.TryGetValue(site, out int first))
                {
                    problems.Add(
                        $"site '{site}' appears in both {Label(sets[first], first)} and {Label(set, i)}; merging it twice would double count its rows.");
                }
                else
                {
                    siteOwner.Add(site, i);
                }
            }

            if (reference is null)
            {
                reference = set;
                referenceIndex = i;
                continue;
            }

            CompareWithReference(set, i, reference, referenceIndex, problems);
        }

        if (problems.Count > 0 || reference is null)
        {
            throw new StatisticsMergeException(problems);
        }

        FeatureStatistics[] merged = CopyFeatures(reference.Features);
        long rows = 0;
        foreach (StatisticsSet set in sets)
        {
            rows = checked(rows + set.Rows);
        }

        for (int i = referenceIndex + 1; i < sets.Count; i++)
        {
            for (int c = 0; c < merged.Length; c++)
            {
                merged[c].Merge(sets[i].Features[c]);
            }
        }

        return new StatisticsSet(
            FederatedScope,
            sets.SelectMany(s => s.Sites).ToArray(),
            reference.FeatureSpecId,
            reference.FeatureSpecVersion,
            rows,
            merged,
            owned: true);
    }

    /// <summary>Serialises the set as the shared JSON file (snake_case properties, indented).</summary>
    public string ToJson() => StatisticsJson.Write(this);

    /// <summary>
    /// Parses a shared statistics file. Errors are <see cref="FormatException"/>s whose message starts with
    /// <paramref name="sourceName"/> and names the offending field, e.g. "stats-A.json: features[3].bin_counts has 12 entries, expected 52".
    /// </summary>
    public static StatisticsSet FromJson(string json, string sourceName) => StatisticsJson.Read(json, sourceName);

    /// <inheritdoc />
    public override string ToString() =>
        $"{Scope} statistics of {string.Join(", ", Sites)} ({FeatureSpecId} {FeatureSpecVersion}): {Rows} rows, {Features.Count} features";

    internal static void ValidateIdentity(string site, string featureSpecId, string featureSpecVersion)
    {
        if (string.IsNullOrWhiteSpace(site))
        {
            throw new ArgumentException("Site name must not be empty.", nameof(site));
        }

        ValidateSpecIdentity(featureSpecId, featureSpecVersion);
    }

    private static void ValidateSpecIdentity(string featureSpecId, string featureSpecVersion)
    {
        if (string.IsNullOrWhiteSpace(featureSpecId))
        {
            throw new ArgumentException("Feature spec id must not be empty.", nameof(featureSpecId));
        }

        if (string.IsNullOrWhiteSpace(featureSpecVersion))
        {
            throw new ArgumentException("Feature spec version must not be empty.", nameof(featureSpecVersion));
        }
    }

    private static FeatureStatistics[] CopyFeatures(IReadOnlyList<FeatureStatistics> features)
    {
        ArgumentNullException.ThrowIfNull(features);
        var copy = new FeatureStatistics[features.Count];
        for (int i = 0; i < copy.Length; i++)
        {
            copy[i] = features[i]?.Clone() ?? throw new ArgumentException($"Feature {i} is null.", nameof(features));
        }

        return copy;
    }

    private static string Label(StatisticsSet set, int index) =>
        set.Scope == SiteScope
            ? $"set #{index + 1} (site '{set.Sites[0]}')"
            : $"set #{index + 1} (federated: {string.Join(", ", set.Sites.Select(s => $"'{s}'"))})";

    private static void CompareWithReference(
        StatisticsSet set, int index, StatisticsSet reference, int referenceIndex, List<string> problems)
    {
        string label = Label(set, index);
        string referenceLabel = Label(reference, referenceIndex);
        if (!string.Equals(set.FeatureSpecId, reference.FeatureSpecId, StringComparison.Ordinal))
        {
            problems.Add(
                $"{label} has feature_spec_id '{set.FeatureSpecId}' but {referenceLabel} has '{reference.FeatureSpecId}'.");
        }

        if (!string.Equals(set.FeatureSpecVersion, reference.FeatureSpecVersion, StringComparison.Ordinal))
        {
            problems.Add(
                $"{label} has feature_spec_version '{set.FeatureSpecVersion}' but {referenceLabel} has '{reference.FeatureSpecVersion}'.");
        }

        if (set.Features.Count != reference.Features.Count)
        {
            var names = set.Features.Select(f => f.Name).ToHashSet(StringComparer.Ordinal);
            var referenceNames = reference.Features.Select(f => f.Name).ToHashSet(StringComparer.Ordinal);
            string[] missing = reference.Features.Select(f => f.Name).Where(n => !names.Contains(n)).ToArray();
            string[] extra = set.Features.Select(f => f.Name).Where(n => !referenceNames.Contains(n)).ToArray();
            string detail = string.Join(
                "; ",
                new[]
                {
                    missing.Length > 0 ? "missing " + string.Join(", ", missing.Select(n => $"'{n}'")) : null,
                    extra.Length > 0 ? "extra " + string.Join(", ", extra.Select(n => $"'{n}'")) : null,
                }.Where(s => s is not null));
            problems.Add(
                $"{label} has {set.Features.Count} features but {referenceLabel} has {reference.Features.Count}" +
                (detail.Length > 0 ? $" ({detail})." : "."));
        }

        int common = Math.Min(set.Features.Count, reference.Features.Count);
        for (int c = 0; c < common; c++)
        {
            FeatureStatistics feature = set.Features[c];
            FeatureStatistics expected = reference.Features[c];
            if (!string.Equals(feature.Name, expected.Name, StringComparison.Ordinal))
            {
                problems.Add($"{label} has column {c} named '{feature.Name}' but {referenceLabel} has '{expected.Name}'.");
            }
            else if (!feature.Histogram.Equals(expected.Histogram))
            {
                problems.Add(
                    $"{label} has feature '{feature.Name}' histogram {feature.Histogram} but {referenceLabel} has {expected.Histogram}.");
            }
        }
    }
}
