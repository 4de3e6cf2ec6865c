using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Routing.Template;

namespace ClinicalFed.Functions;

/// <summary>
/// The routes the Functions host calls:
/// <list type="bullet">
/// <item><c>POST /AggregateRound</c>: the timer's invocation request <c>{"Data": {"timer": …}, "Metadata": …}</c>;
/// the answer is <c>{"Outputs": {}, "Logs": [...], "ReturnValue": [TickOutcome, …]}</c>.</item>
/// <item><c>POST /&lt;HTTP function&gt;</c>: an invocation request whose <c>Data.req</c> is the HTTP request
/// (<c>Url, Method, Query, Headers, Params, Body</c>); the answer's <c>Outputs.res</c> is the HTTP response
/// (<c>statusCode, headers, body</c>). The host sends this form when forwarding is off.</item>
/// <item><c>/api/&lt;route&gt;</c> with the function's method: the original request, forwarded
/// (<c>enableForwardingHttpRequest</c>); the answer is the HTTP response itself.</item>
/// <item><c>GET /</c>: a liveness answer for the host's readiness probe.</item>
/// </list>
/// </summary>
public static class InvocationEndpoints
{
    /// <summary>Largest request body read (federation settings are a few kilobytes).</summary>
    public const int MaxBodyBytes = 1 << 20;

    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/", () => Results.Json(new JsonObject
        {
            ["service"] = "ClinicalFed.Functions",
            ["functions"] = new JsonArray(FunctionCatalog.Names.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
        }));

        app.MapPost("/" + FunctionCatalog.AggregateRound, AggregateRoundAsync);

        foreach (var function in FunctionCatalog.Http)
        {
            app.MapPost("/" + function.Name, (HttpContext context) => InvokePayloadAsync(function, context));
            app.MapMethods($"/{FunctionCatalog.RoutePrefix}/{function.Route}", [function.Method], (HttpContext context) => InvokeForwardedAsync(function, context));
        }
    }

    // ---- the timer ---------------------------------------------------------------------------------------------

    private static async Task AggregateRoundAsync(HttpContext context)
    {
        var logger = Logger(context);
        var (body, tooLarge) = await ReadBodyAsync(context.Request).ConfigureAwait(false);
        bool pastDue = false;
        if (tooLarge)
        {
            await WriteJsonAsync(context, 413, Protocol("the invocation request is larger than 1 MiB")).ConfigureAwait(false);
            return;
        }

        if (!string.IsNullOrWhiteSpace(body))
        {
            JsonNode? payload;
            try
            {
                payload = JsonNode.Parse(body);
            }
            catch (JsonException e)
            {
                await WriteJsonAsync(context, 400, Protocol($"the invocation request is not JSON: {e.Message}")).ConfigureAwait(false);
                return;
            }

            pastDue = IsPastDue(payload);
        }

        var functions = context.RequestServices.GetRequiredService<ClinicalFedFunctions>();
        try
        {
            var (outcomes, logs) = await functions.AggregateRoundAsync(pastDue, context.RequestAborted).ConfigureAwait(false);
            foreach (var line in logs) logger.LogDebug("{Line}", line);
            var response = new InvocationResponse { Outputs = [], Logs = logs, ReturnValue = FunctionJson.ToNode(outcomes) };
            await WriteJsonAsync(context, 200, FunctionJson.ToNode(response)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
        {
            string line = LogRedactor.Redact($"{FunctionCatalog.AggregateRound}: the tick failed: {e.GetType().Name}: {e.Message}");
            logger.LogError("{Line}", line);
            // A failed status makes the host record the invocation as failed; the logs say why.
            var response = new InvocationResponse { Outputs = [], Logs = [line], ReturnValue = null };
            await WriteJsonAsync(context, 500, FunctionJson.ToNode(response)).ConfigureAwait(false);
        }
    }

    /// <summary><c>Data.&lt;timer binding&gt;.IsPastDue</c>; the timer's value may arrive as an object or as a JSON string.</summary>
    internal static bool IsPastDue(JsonNode? payload)
    {
        if (payload?["Data"] is not JsonObject data) return false;
        foreach (var (_, value) in data)
        {
            var timer = value;
            if (value is JsonValue text && text.TryGetValue(out string? s))
            {
                try
                {
                    timer = JsonNode.Parse(s);
                }
                catch (JsonException)
                {
                    continue;
                }
            }

            if (timer is JsonObject o && (o["IsPastDue"] ?? o["isPastDue"]) is JsonValue flag && flag.TryGetValue(out bool pastDue)) return pastDue;
        }

        return false;
    }

    // ---- HTTP functions ----------------------------------------------------------------------------------------

    private static async Task InvokeForwardedAsync(HttpFunction function, HttpContext context)
    {
        var (body, tooLarge) = await ReadBodyAsync(context.Request).ConfigureAwait(false);
        FunctionResult result;
        if (tooLarge)
        {
            result = ClinicalFedFunctions.Error(function, 413, "bad_request", "the body is larger than 1 MiB", "body");
        }
        else
        {
            var request = new HttpFunctionRequest
            {
                Method = context.Request.Method,
                RouteValues = context.Request.RouteValues.ToDictionary(kv => kv.Key, kv => Convert.ToString(kv.Value, CultureInfo.InvariantCulture) ?? "", StringComparer.OrdinalIgnoreCase),
                Query = context.Request.Query.ToDictionary(kv => kv.Key, kv => kv.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                Headers = context.Request.Headers.ToDictionary(kv => kv.Key, kv => kv.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                Body = body,
            };
            result = await RunAsync(function, request, context).ConfigureAwait(false);
        }

        var logger = Logger(context);
        foreach (var line in result.Logs) logger.LogInformation("{Line}", line);
        foreach (var (name, value) in result.Headers)
        {
            if (!name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)) context.Response.Headers[name] = value;
        }

        await WriteJsonAsync(context, result.StatusCode, result.Body).ConfigureAwait(false);
    }

    private static async Task InvokePayloadAsync(HttpFunction function, HttpContext context)
    {
        var (body, tooLarge) = await ReadBodyAsync(context.Request).ConfigureAwait(false);
        if (tooLarge)
        {
            await WriteJsonAsync(context, 413, Protocol("the invocation request is larger than 1 MiB")).ConfigureAwait(false);
            return;
        }

        HttpFunctionRequest request;
        try
        {
            request = ParseInvocation(function, body);
        }
        catch (InvocationFormatException e)
        {
            Logger(context).LogWarning("{Function}: malformed invocation request: {Problem}", function.Name, e.Message);
            await WriteJsonAsync(context, 400, Protocol(e.Message)).ConfigureAwait(false);
            return;
        }

        var result = await RunAsync(function, request, context).ConfigureAwait(false);
        foreach (var line in result.Logs) Logger(context).LogDebug("{Line}", line);
        await WriteJsonAsync(context, 200, FunctionJson.ToNode(ToInvocationResponse(result))).ConfigureAwait(false);
    }

    /// <summary>The invocation answer of an HTTP function: <c>Outputs.res = {statusCode, headers, body}</c>, the body as a JSON string.</summary>
    public static InvocationResponse ToInvocationResponse(FunctionResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var headers = new JsonObject();
        foreach (var (name, value) in result.Headers) headers[name] = value;
        var res = new JsonObject
        {
            ["statusCode"] = result.StatusCode,
            ["headers"] = headers,
            ["body"] = result.Body?.ToJsonString(FunctionJson.Options) ?? "",
        };
        return new InvocationResponse { Outputs = new JsonObject { [FunctionCatalog.ResponseBinding] = res }, Logs = result.Logs, ReturnValue = null };
    }

    private static async Task<FunctionResult> RunAsync(HttpFunction function, HttpFunctionRequest request, HttpContext context)
    {
        var functions = context.RequestServices.GetRequiredService<ClinicalFedFunctions>();
        try
        {
            return await functions.InvokeAsync(function, request, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
        {
            // The details go to the log (redacted); the caller learns only that it failed.
            string line = LogRedactor.Redact($"{function.Name}: failed: {e.GetType().Name}: {e.Message}", request.Header(FunctionCatalog.SiteKeyHeader));
            Logger(context).LogError("{Line}", line);
            var result = ClinicalFedFunctions.Error(function, 500, "internal_error", $"{function.Name} failed; the function's log has the details");
            result.Logs.Add(line);
            return result;
        }
    }

    /// <summary>Reads <c>Data.req</c> of an invocation request into an <see cref="HttpFunctionRequest"/>.</summary>
    public static HttpFunctionRequest ParseInvocation(HttpFunction function, string? body)
    {
        ArgumentNullException.ThrowIfNull(function);
        if (string.IsNullOrWhiteSpace(body)) throw new InvocationFormatException("the invocation request has no body; expected {\"Data\": {\"req\": …}, \"Metadata\": …}");
        JsonNode? payload;
        try
        {
            payload = JsonNode.Parse(body);
        }
        catch (JsonException e)
        {
            throw new InvocationFormatException($"the invocation request is not JSON: {e.Message}");
        }

        if (payload?["Data"] is not JsonObject data) throw new InvocationFormatException("the invocation request has no 'Data' object");
        var req = data[FunctionCatalog.RequestBinding] as JsonObject
            ?? data.Select(kv => kv.Value).OfType<JsonObject>().FirstOrDefault(o => o.ContainsKey("Method"))
            ?? throw new InvocationFormatException($"the invocation request has no 'Data.{FunctionCatalog.RequestBinding}' HTTP request");

        string method = Text(req["Method"]) ?? throw new InvocationFormatException($"'Data.{FunctionCatalog.RequestBinding}.Method' is missing");
        var headers = StringMap(req["Headers"], "Headers");
        var query = StringMap(req["Query"], "Query");
        var routeValues = StringMap(req["Params"], "Params");
        if (Text(req["Url"]) is { } url && Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            // Route values from the URL when the host did not send Params.
            var template = TemplateParser.Parse($"{FunctionCatalog.RoutePrefix}/{function.Route}");
            var values = new RouteValueDictionary();
            if (new TemplateMatcher(template, new RouteValueDictionary()).TryMatch(uri.AbsolutePath, values))
            {
                foreach (var (k, v) in values)
                    if (!routeValues.ContainsKey(k) && v is not null) routeValues[k] = Uri.UnescapeDataString(Convert.ToString(v, CultureInfo.InvariantCulture)!);
            }

            if (req["Query"] is null)
            {
                foreach (var (k, v) in Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(uri.Query)) query[k] = v.ToString();
            }
        }

        string? requestBody = req["Body"] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out string? s) => s,
            var other => other.ToJsonString(),
        };
        return new HttpFunctionRequest { Method = method, Headers = headers, Query = query, RouteValues = routeValues, Body = requestBody };
    }

    /// <summary>A name → value map that the host may send as an object (values strings, numbers or arrays) or as a JSON string of one.</summary>
    private static Dictionary<string, string> StringMap(JsonNode? node, string what)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (node is JsonValue text && text.TryGetValue(out string? s))
        {
            if (string.IsNullOrWhiteSpace(s)) return map;
            try
            {
                node = JsonNode.Parse(s);
            }
            catch (JsonException)
            {
                throw new InvocationFormatException($"'Data.{FunctionCatalog.RequestBinding}.{what}' is a string but not a JSON object");
            }
        }

        if (node is null) return map;
        if (node is not JsonObject obj) throw new InvocationFormatException($"'Data.{FunctionCatalog.RequestBinding}.{what}' is not an object");
        foreach (var (name, value) in obj)
        {
            string? v = value switch
            {
                null => null,
                JsonArray a => string.Join(",", a.Select(Text).Where(x => x is not null)),
                _ => Text(value),
            };
            if (v is not null) map[name] = v;
        }

        return map;
    }

    private static string? Text(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonValue v => v.ToJsonString(),
        _ => null,
    };

    // ---- plumbing ----------------------------------------------------------------------------------------------

    private static async Task<(string? Body, bool TooLarge)> ReadBodyAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxBodyBytes) return (null, true);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > MaxBodyBytes) return (null, true);
            buffer.Write(chunk, 0, n);
        }

        return (buffer.Length == 0 ? null : Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length), false);
    }

    private static JsonNode? Protocol(string message) => FunctionJson.ToNode(new ErrorBody { Error = "bad_request", Message = message });

    private static async Task WriteJsonAsync(HttpContext context, int status, JsonNode? body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        if (body is not null) await context.Response.WriteAsync(body.ToJsonString(FunctionJson.Options), context.RequestAborted).ConfigureAwait(false);
    }

    private static ILogger Logger(HttpContext context) =>
        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("ClinicalFed.Functions");
}

/// <summary>An invocation request from the Functions host that does not have the documented shape.</summary>
public sealed class InvocationFormatException(string message) : Exception(message);
