using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace ClinicalFed.Functions;

/// <summary>
/// An HTTP function's request, whichever way it reached the handler: forwarded as the original request, or inside an
/// invocation payload's <c>Data.req</c>. Names of route values, query parameters and headers are case-insensitive.
/// </summary>
public sealed class HttpFunctionRequest
{
    public required string Method { get; init; }

    public IReadOnlyDictionary<string, string> RouteValues { get; init; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyDictionary<string, string> Query { get; init; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>The body as text, or null when there is none.</summary>
    public string? Body { get; init; }

    public string? Route(string name) => RouteValues.TryGetValue(name, out var v) ? v : null;

    public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;
}

/// <summary>What an HTTP function answers: status, JSON body, extra headers, and log lines (never secrets).</summary>
public sealed class FunctionResult
{
    public required int StatusCode { get; init; }

    public JsonNode? Body { get; init; }

    public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);

    public List<string> Logs { get; init; } = [];
}

/// <summary>
/// The JSON body of every error answer: <c>error</c> is a stable code (<c>bad_request</c>, <c>unauthorized</c>,
/// <c>not_found</c>, <c>not_open</c>, <c>conflict</c>, <c>not_supported</c>, <c>method_not_allowed</c>,
/// <c>internal_error</c>), <c>field</c> names the offending input when there is one, <c>problems</c> lists every
/// problem of a rejected document.
/// </summary>
public sealed record ErrorBody
{
    [JsonPropertyName("error")] public required string Error { get; init; }

    [JsonPropertyName("message")] public required string Message { get; init; }

    [JsonPropertyName("field")] [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Field { get; init; }

    [JsonPropertyName("problems")] [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<string>? Problems { get; init; }
}

/// <summary>What <c>RegisterSite</c> answers, once: the site's key (the store keeps only its SHA-256).</summary>
public sealed record SiteKeyBody
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    [JsonPropertyName("site")] public required string Site { get; init; }

    /// <summary>The key: sent by the site in <see cref="FunctionCatalog.SiteKeyHeader"/>; shown only in this answer.</summary>
    [JsonPropertyName("key")] public required string Key { get; init; }

    [JsonPropertyName("key_header")] public string KeyHeader { get; init; } = FunctionCatalog.SiteKeyHeader;

    [JsonPropertyName("registered_at")] public required DateTimeOffset RegisteredAt { get; init; }
}

/// <summary>What <c>WithdrawSite</c> answers.</summary>
public sealed record SiteWithdrawnBody
{
    [JsonPropertyName("federation")] public required string Federation { get; init; }

    [JsonPropertyName("site")] public required string Site { get; init; }

    [JsonPropertyName("status")] public required string Status { get; init; }

    [JsonPropertyName("withdrawn_at")] public DateTimeOffset? WithdrawnAt { get; init; }
}

/// <summary>The custom handler's answer to an invocation request (<c>{"Outputs", "Logs", "ReturnValue"}</c>).</summary>
public sealed record InvocationResponse
{
    [JsonPropertyName("Outputs")] public required JsonObject Outputs { get; init; }

    [JsonPropertyName("Logs")] public required IReadOnlyList<string> Logs { get; init; }

    [JsonPropertyName("ReturnValue")] public JsonNode? ReturnValue { get; init; }
}

internal static class FunctionJson
{
    /// <summary>Serialization of answers: property names come from the records' <c>[JsonPropertyName]</c>.</summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.General) { WriteIndented = false };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    public static JsonNode? ToNode<T>(T value) => JsonSerializer.SerializeToNode(value, Options);
}
