using System.Globalization;
using System.Text.RegularExpressions;

namespace ClinicalFed.Functions;

/// <summary>Where the federation store lives.</summary>
public enum StoreKind
{
    /// <summary>No (usable) store setting.</summary>
    None,

    /// <summary>Azure Blob Storage with a connection string (account key or SAS).</summary>
    ConnectionString,

    /// <summary>Azure Blob Storage at a service URI with Microsoft Entra ID (<c>DefaultAzureCredential</c>: the app's managed identity).</summary>
    ServiceUri,

    /// <summary>A local folder (<c>LocalFolderStore</c>): local runs and tests.</summary>
    Folder,
}

/// <summary>
/// The handler's app settings (environment variables), read and checked once at startup. <see cref="Problems"/>
/// lists every problem at once; a setting's secret value (a connection string) never appears in a problem.
/// </summary>
public sealed partial record HandlerSettings
{
    public const string ConnectionStringSetting = "CLINICALFED_STORE_CONNECTION_STRING";
    public const string ContainerSetting = "CLINICALFED_STORE_CONTAINER";
    public const string PrefixSetting = "CLINICALFED_STORE_PREFIX";
    public const string ServiceUriSetting = "CLINICALFED_STORE_SERVICE_URI";
    public const string FolderSetting = "CLINICALFED_STORE_FOLDER";

    /// <summary>The port the Functions host calls the handler on (it sets this variable when it starts the handler).</summary>
    public const string PortSetting = "FUNCTIONS_CUSTOMHANDLER_PORT";

    /// <summary>Port used when <see cref="PortSetting"/> is not set (a handler started by hand).</summary>
    public const int DefaultPort = 8080;

    public StoreKind Kind { get; init; }

    /// <summary>The connection string (secret: never logged).</summary>
    public string? ConnectionString { get; init; }

    public Uri? ServiceUri { get; init; }

    public string? Container { get; init; }

    public string? Prefix { get; init; }

    /// <summary>Absolute path of the local store folder.</summary>
    public string? Folder { get; init; }

    public int Port { get; init; } = DefaultPort;

    public IReadOnlyList<string> Problems { get; init; } = [];

    /// <summary>A description of the store that is safe to log (no secret).</summary>
    public string StoreDescription => Kind switch
    {
        StoreKind.ConnectionString => $"Azure Blob Storage container '{Container}'{PrefixText} (connection string)",
        StoreKind.ServiceUri => $"Azure Blob Storage container '{Container}'{PrefixText} at {ServiceUri!.GetLeftPart(UriPartial.Authority)} (managed identity)",
        StoreKind.Folder => $"local folder {Folder}",
        _ => "no store",
    };

    private string PrefixText => string.IsNullOrEmpty(Prefix) ? "" : $", prefix '{Prefix}'";

    /// <summary>Reads the settings from <paramref name="get"/> (a configuration or environment lookup).</summary>
    public static HandlerSettings Read(Func<string, string?> get)
    {
        ArgumentNullException.ThrowIfNull(get);
        string? Value(string name) => get(name) is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

        var problems = new List<string>();
        string? connectionString = Value(ConnectionStringSetting);
        string? serviceUriText = Value(ServiceUriSetting);
        string? folder = Value(FolderSetting);
        string? container = Value(ContainerSetting);
        string? prefixText = get(PrefixSetting) is { } rawPrefix && rawPrefix.Length > 0 ? rawPrefix.Trim() : null;

        var chosen = new List<string>();
        if (connectionString is not null) chosen.Add(ConnectionStringSetting);
        if (serviceUriText is not null) chosen.Add(ServiceUriSetting);
        if (folder is not null) chosen.Add(FolderSetting);

        var kind = StoreKind.None;
        if (chosen.Count == 0)
        {
            problems.Add($"no federation store is configured: set {ConnectionStringSetting} and {ContainerSetting} (Azure Blob Storage with a connection string), " +
                $"or {ServiceUriSetting} and {ContainerSetting} (Azure Blob Storage with the app's managed identity), or {FolderSetting} (a local folder)");
        }
        else if (chosen.Count > 1)
        {
            problems.Add($"set only one of {ConnectionStringSetting}, {ServiceUriSetting} and {FolderSetting}; found {string.Join(" and ", chosen)}");
        }
        else
        {
            kind = connectionString is not null ? StoreKind.ConnectionString : serviceUriText is not null ? StoreKind.ServiceUri : StoreKind.Folder;
        }

        if (connectionString is not null) CheckConnectionString(connectionString, problems);

        Uri? serviceUri = null;
        if (serviceUriText is not null) serviceUri = CheckServiceUri(serviceUriText, problems);

        string? folderPath = null;
        if (folder is not null) folderPath = CheckFolder(folder, problems);

        bool blob = connectionString is not null || serviceUriText is not null;
        if (blob)
        {
            if (container is null) problems.Add($"{ContainerSetting} is not set; Azure Blob Storage needs the name of the store's container");
            else if (ContainerProblem(container) is { } cp) problems.Add($"{ContainerSetting} '{container}' is not a valid container name: {cp}");
        }
        else if (folder is not null)
        {
            if (container is not null) problems.Add($"{ContainerSetting} is set but {FolderSetting} selects a local folder store, which has no container; remove one of them");
            if (prefixText is not null) problems.Add($"{PrefixSetting} is set but {FolderSetting} selects a local folder store, which has no prefix; remove one of them");
        }

        string? prefix = null;
        if (prefixText is not null && blob)
        {
            prefix = prefixText.Trim('/');
            if (PrefixProblem(prefix) is { } pp) problems.Add($"{PrefixSetting} '{Shorten(prefixText)}' is not a valid blob folder: {pp}");
            if (prefix.Length == 0) prefix = null;
        }

        int port = DefaultPort;
        if (Value(PortSetting) is { } portText)
        {
            if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
            {
                problems.Add($"{PortSetting} '{Shorten(portText)}' is not a TCP port (1 to 65535)");
                port = DefaultPort;
            }
        }

        return new HandlerSettings
        {
            Kind = problems.Count == 0 ? kind : StoreKind.None,
            ConnectionString = connectionString,
            ServiceUri = serviceUri,
            Container = container,
            Prefix = prefix,
            Folder = folderPath,
            Port = port,
            Problems = problems,
        };
    }

    private static void CheckConnectionString(string value, List<string> problems)
    {
        // Never quote the value: it holds an account key or a SAS.
        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0)
            {
                problems.Add($"{ConnectionStringSetting} is not a connection string of 'Name=value' pairs separated by ';' (its value is not shown because it holds a secret)");
                return;
            }

            keys.Add(part[..eq].Trim());
        }

        bool development = value.Contains("UseDevelopmentStorage=true", StringComparison.OrdinalIgnoreCase);
        if (!development && !keys.Contains("AccountName") && !keys.Contains("BlobEndpoint"))
            problems.Add($"{ConnectionStringSetting} names neither AccountName nor BlobEndpoint (copy it from the storage account's 'Access keys')");
        if (!development && !keys.Contains("AccountKey") && !keys.Contains("SharedAccessSignature"))
            problems.Add($"{ConnectionStringSetting} has neither AccountKey nor SharedAccessSignature; for a managed identity set {ServiceUriSetting} instead");
    }

    private static Uri? CheckServiceUri(string value, List<string> problems)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            problems.Add($"{ServiceUriSetting} '{Shorten(StripQuery(value))}' is not an absolute https URL such as https://<account>.blob.core.windows.net");
            return null;
        }

        bool ok = true;
        if (uri.Query.Length > 1)
        {
            problems.Add($"{ServiceUriSetting} carries a query (a SAS token?); give the bare service URL, the app authenticates with its managed identity");
            ok = false;
        }

        if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback)
        {
            problems.Add($"{ServiceUriSetting} '{uri.GetLeftPart(UriPartial.Authority)}' uses http; Microsoft Entra ID tokens are sent only over https (http is allowed for a local emulator on loopback)");
            ok = false;
        }

        if (uri.AbsolutePath.Trim('/').Length > 0 && !uri.IsLoopback)
        {
            problems.Add($"{ServiceUriSetting} has a path ('{uri.AbsolutePath}'); give the account's blob endpoint only and the container in {ContainerSetting}");
            ok = false;
        }

        return ok ? uri : null;
    }

    private static string? CheckFolder(string value, List<string> problems)
    {
        try
        {
            var full = Path.GetFullPath(value);
            if (File.Exists(full))
            {
                problems.Add($"{FolderSetting} '{full}' is a file, not a folder");
                return null;
            }

            return full;
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException or System.Security.SecurityException)
        {
            problems.Add($"{FolderSetting} '{Shorten(value)}' is not a valid path: {e.Message}");
            return null;
        }
    }

    /// <summary>Azure container naming rules: 3–63 characters, lower-case letters, digits and single hyphens, starting and ending with a letter or digit.</summary>
    public static string? ContainerProblem(string name) =>
        name.Length is < 3 or > 63 ? $"it has {name.Length} characters; use 3 to 63"
        : !ContainerPattern().IsMatch(name) ? "use lower-case letters, digits and hyphens, starting and ending with a letter or digit"
        : name.Contains("--", StringComparison.Ordinal) ? "it has two hyphens in a row"
        : null;

    /// <summary>The rules of a store path inside the container: no empty, '.' or '..' segment, no backslash or control character, at most 900 characters.</summary>
    public static string? PrefixProblem(string prefix) =>
        prefix.Length > 900 ? "it is longer than 900 characters"
        : prefix.Contains('\\') ? "it contains a backslash"
        : prefix.Any(char.IsControl) ? "it contains a control character"
        : prefix.Length > 0 && prefix.Split('/').Any(s => s.Length == 0 || s == "." || s == "..") ? "it has an empty, '.' or '..' segment"
        : null;

    [GeneratedRegex("^[a-z0-9][a-z0-9-]*[a-z0-9]$", RegexOptions.CultureInvariant)]
    private static partial Regex ContainerPattern();

    private static string StripQuery(string s) => s.IndexOf('?') is int q and >= 0 ? s[..q] + "?…" : s;

    private static string Shorten(string s) => s.Length <= 120 ? s : s[..117] + "...";
}

/// <summary>The handler's settings are not usable; <see cref="Problems"/> lists every problem.</summary>
public sealed class HandlerConfigurationException(IReadOnlyList<string> problems)
    : Exception("ClinicalFed.Functions cannot start: " + problems.Count + (problems.Count == 1 ? " problem" : " problems") + " with its app settings:" +
        Environment.NewLine + string.Join(Environment.NewLine, problems.Select(p => " - " + p)))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
