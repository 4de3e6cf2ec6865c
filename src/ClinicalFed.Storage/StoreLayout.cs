using System.Globalization;
using ClinicalFed.Federation;

namespace ClinicalFed.Storage;

/// <summary>
/// The store's paths, relative and '/'-separated: folders of <see cref="LocalFolderStore"/> and blob names of a
/// blob-container store alike (schemas/store-layout.md). Every method validates the names it is given.
/// <code>
/// federations/&lt;federation&gt;/federation.json                (settings and site registry; the one mutable document)
///                          aggregator.lease               (lock of the aggregator)
///                          statistics/sites/&lt;site&gt;.json   (a site's aggregate statistics of its training rows)
///                          statistics/federated.json      (the merge, which every site uses)
///                          rounds/&lt;round:D5&gt;/manifest.json
///                                             updates/&lt;site&gt;.cfu
///                                             global.cfm
///                                             personalized/&lt;site&gt;.cfm
///                                             server-state.bin
///                                             result.json
/// </code>
/// </summary>
public static class StoreLayout
{
    public const string ManifestFileName = "manifest.json";
    public const string GlobalModelFileName = "global.cfm";
    public const string ServerStateFileName = "server-state.bin";
    public const string ResultFileName = "result.json";
    public const string UpdatesFolder = "updates";
    public const string PersonalizedFolder = "personalized";

    public static string Federation(string federation) =>
        $"federations/{FederationNames.Validate(federation, "federation", nameof(federation))}";

    public const string FederationsFolder = "federations";
    public const string FederationFileName = "federation.json";
    public const string LeaseFileName = "aggregator.lease";

    /// <summary>The federation's settings and site registry (<see cref="FederationConfig"/>).</summary>
    public static string FederationDocument(string federation) => $"{Federation(federation)}/{FederationFileName}";

    /// <summary>The object the aggregator leases so that only one invocation works on a federation at a time.</summary>
    public static string Lease(string federation) => $"{Federation(federation)}/{LeaseFileName}";

    public static string SiteStatisticsFolder(string federation) => $"{Federation(federation)}/statistics/sites";

    public static string SiteStatistics(string federation, string site) =>
        $"{SiteStatisticsFolder(federation)}/{FederationNames.Validate(site, "site", nameof(site))}.json";

    public static string FederatedStatistics(string federation) => $"{Federation(federation)}/statistics/federated.json";

    public static string RoundsFolder(string federation) => $"{Federation(federation)}/rounds";

    public static string Round(string federation, int round) =>
        $"{RoundsFolder(federation)}/{FederationNames.ValidateRound(round).ToString("D5", CultureInfo.InvariantCulture)}";

    public static string Manifest(string federation, int round) => $"{Round(federation, round)}/{ManifestFileName}";

    public static string Updates(string federation, int round) => $"{Round(federation, round)}/{UpdatesFolder}";

    public static string Update(string federation, int round, string site) =>
        $"{Updates(federation, round)}/{FederationNames.Validate(site, "site", nameof(site))}{UpdateFile.Extension}";

    /// <summary>The record of an update's verification on upload (its payload hash and the stored object's version then).</summary>
    public static string UpdateVerification(string federation, int round, string site) =>
        $"{Updates(federation, round)}/{FederationNames.Validate(site, "site", nameof(site))}.verified.json";

    /// <summary>Same string as <see cref="GlobalModelPath.Format"/>, which round manifests use.</summary>
    public static string GlobalModel(string federation, int round) => $"{Round(federation, round)}/{GlobalModelFileName}";

    public static string PersonalizedModels(string federation, int round) => $"{Round(federation, round)}/{PersonalizedFolder}";

    public static string PersonalizedModel(string federation, int round, string site) =>
        $"{PersonalizedModels(federation, round)}/{FederationNames.Validate(site, "site", nameof(site))}{ModelFile.Extension}";

    public static string ServerState(string federation, int round) => $"{Round(federation, round)}/{ServerStateFileName}";

    public static string Result(string federation, int round) => $"{Round(federation, round)}/{ResultFileName}";

    /// <summary>The round number of a round folder name (five digits), or null.</summary>
    public static int? ParseRoundFolder(string name) =>
        name.Length == 5 && name.All(char.IsAsciiDigit) ? int.Parse(name, CultureInfo.InvariantCulture) : null;
}
