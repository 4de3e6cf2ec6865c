using System.Text.RegularExpressions;

namespace ClinicalFed.Functions;

/// <summary>
/// Last line of defence for log lines: the functions never put a key or an upload URL in a log line, and this removes
/// the query of any URL (where a SAS token lives), any <c>sig=</c> value, and the given secrets if one slipped in.
/// </summary>
public static partial class LogRedactor
{
    public const string Redacted = "[redacted]";

    public static string Redact(string line, params ReadOnlySpan<string?> secrets)
    {
        ArgumentNullException.ThrowIfNull(line);
        foreach (var secret in secrets)
        {
            if (!string.IsNullOrEmpty(secret)) line = line.Replace(secret, Redacted, StringComparison.Ordinal);
        }

        line = UrlQuery().Replace(line, m => m.Groups["base"].Value + "?" + Redacted);
        return Signature().Replace(line, "sig=" + Redacted);
    }

    [GeneratedRegex(@"(?<base>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?""'<>]+)\?[^\s""'<>]*", RegexOptions.CultureInvariant)]
    private static partial Regex UrlQuery();

    [GeneratedRegex(@"sig=[^&\s""'<>]+", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex Signature();
}
