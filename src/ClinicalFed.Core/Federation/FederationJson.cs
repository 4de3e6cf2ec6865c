using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClinicalFed.Federation;

/// <summary>
/// System.Text.Json settings for every federation document: property names come from <c>[JsonPropertyName]</c>
/// (snake_case), unknown properties are errors (the schemas say <c>additionalProperties: false</c>), nullable
/// annotations and required properties are enforced. No type names are ever written.
/// </summary>
internal static class FederationJson
{
    public static JsonSerializerOptions Compact { get; } = Create(indented: false);

    public static JsonSerializerOptions Indented { get; } = Create(indented: true);

    private static JsonSerializerOptions Create(bool indented)
    {
        var options = new JsonSerializerOptions
        {
            WriteIndented = indented,
            RespectNullableAnnotations = true,
            RespectRequiredConstructorParameters = true,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            NumberHandling = JsonNumberHandling.Strict,
            AllowTrailingCommas = false,
            ReadCommentHandling = JsonCommentHandling.Disallow,
            MaxDepth = 16,
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>Deserializes, turning every JSON error into a <see cref="FederationDataException"/> naming <paramref name="origin"/> and the JSON path.</summary>
    public static T Deserialize<T>(ReadOnlySpan<byte> utf8, string origin)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(utf8, Compact) ?? throw new FederationDataException(origin, "the JSON document is null");
        }
        catch (JsonException e)
        {
            string where = e.Path is { Length: > 0 } p ? $" at {p}" : "";
            throw new FederationDataException(origin, $"invalid JSON{where}: {FirstSentence(e.Message)}", e);
        }
    }

    private static string FirstSentence(string message)
    {
        // STJ appends " Path: $.x | LineNumber: ..." which the caller already reports.
        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }

    public static byte[] Serialize<T>(T value, bool indented) =>
        JsonSerializer.SerializeToUtf8Bytes(value, indented ? Indented : Compact);

    /// <summary>Problems with a metric dictionary: names must be non-empty, values finite.</summary>
    public static void CheckMetrics(IReadOnlyDictionary<string, double>? metrics, string field, List<string> problems)
    {
        if (metrics is null)
        {
            problems.Add($"'{field}' is missing");
            return;
        }

        foreach (var (name, value) in metrics)
        {
            if (string.IsNullOrWhiteSpace(name)) problems.Add($"'{field}' has an empty metric name");
            if (!double.IsFinite(value)) problems.Add($"'{field}.{name}' is {value}, not a finite number");
        }
    }

    public static bool IsSha256Hex(string? s) =>
        s is { Length: 64 } && s.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));
}
