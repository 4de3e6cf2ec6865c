using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ClinicalFed.Federation;
using ClinicalFed.Storage;
using ClinicalFed.Storage.Coordination;

namespace ClinicalFed.Functions;

/// <summary>
/// The functions: a thin HTTP layer over <see cref="FederationCoordinator"/>. Each takes an
/// <see cref="HttpFunctionRequest"/> (however it reached the handler) and returns a <see cref="FunctionResult"/>
/// whose log lines name federations, sites, rounds and store paths but never a key or an upload URL.
/// </summary>
public sealed partial class ClinicalFedFunctions(FederationCoordinator coordinator, FederationStore store, TimeProvider time)
{
    private const string JsonContentType = "application/json; charset=utf-8";

    /// <summary>Runs the HTTP function <paramref name="function"/>.</summary>
    public Task<FunctionResult> InvokeAsync(HttpFunction function, HttpFunctionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(request);
        if (!string.Equals(request.Method, function.Method, StringComparison.OrdinalIgnoreCase))
        {
            var result = Error(function, 405, "method_not_allowed", $"{function.Name} answers {function.Method} only, not {request.Method}");
            result.Headers["Allow"] = function.Method;
            return Task.FromResult(result);
        }

        return function.Name switch
        {
            "UploadTicket" => UploadTicketAsync(request, cancellationToken),
            "RoundStatus" => RoundStatusAsync(request, cancellationToken),
            "CreateFederation" => CreateFederationAsync(request, cancellationToken),
            "RegisterSite" => RegisterSiteAsync(request, cancellationToken),
            "WithdrawSite" => WithdrawSiteAsync(request, cancellationToken),
            _ => throw new ArgumentException($"unknown function '{function.Name}'", nameof(function)),
        };
    }

    // ---- UploadTicket ------------------------------------------------------------------------------------------

    /// <summary>
    /// A short-lived upload URL for the authenticated site's own object. Query or JSON body <c>kind</c> =
    /// <c>update</c> | <c>statistics</c>; the key in <see cref="FunctionCatalog.SiteKeyHeader"/>.
    /// </summary>
    public async Task<FunctionResult> UploadTicketAsync(HttpFunctionRequest request, CancellationToken cancellationToken)
    {
        var f = FunctionCatalog.UploadTicket;
        if (SiteRoute(f, request, out var federation, out var site) is { } badRoute) return badRoute;

        string? bodyKind = null;
        if (!string.IsNullOrWhiteSpace(request.Body))
        {
            if (ParseObject(f, request.Body, """{"kind": "update"}""", out var body) is { } bad) return bad;
            foreach (var (name, value) in body!)
            {
                if (name != "kind") return Error(f, 400, "bad_request", $"unknown property '{name}' in the body; the only property is 'kind'", name);
                if (value is not JsonValue v || !v.TryGetValue(out bodyKind))
                    return Error(f, 400, "bad_request", $"'kind' must be a string: one of {string.Join(", ", TicketKinds.All)}", "kind");
            }
        }

        string? queryKind = request.Query.TryGetValue("kind", out var q) && q.Length > 0 ? q : null;
        if (bodyKind is not null && queryKind is not null && bodyKind != queryKind)
            return Error(f, 400, "bad_request", $"'kind' is '{Shorten(queryKind)}' in the query but '{Shorten(bodyKind)}' in the body", "kind");
        string? kind = bodyKind ?? queryKind;
        if (kind is null)
            return Error(f, 400, "bad_request", $"'kind' is missing: give kind={TicketKinds.Update} or kind={TicketKinds.Statistics} in the query, or {{\"kind\": \"{TicketKinds.Update}\"}} as the body", "kind");
        if (!TicketKinds.All.Contains(kind))
            return Error(f, 400, "bad_request", $"'kind' is '{Shorten(kind)}'; expected one of {string.Join(", ", TicketKinds.All)}", "kind");

        if (await store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false) is null)
            return Error(f, 404, "not_found", $"federation '{federation}' does not exist", "federation");

        string? key = request.Header(FunctionCatalog.SiteKeyHeader);
        if (string.IsNullOrEmpty(key))
            return Error(f, 401, "unauthorized", $"the {FunctionCatalog.SiteKeyHeader} header with the site's key is missing", FunctionCatalog.SiteKeyHeader);

        UploadTicket ticket;
        try
        {
            ticket = await coordinator.IssueTicketAsync(federation, site, key, kind, cancellationToken).ConfigureAwait(false);
        }
        catch (TicketRefusedException refused)
        {
            var (status, code) = refused.Reason switch
            {
                TicketRefusal.NotAuthorized => (401, "unauthorized"),
                TicketRefusal.NotOpen => (409, "not_open"),
                _ => (501, "not_supported"),
            };
            return Error(f, status, code, refused.Message, secrets: [key]);
        }

        var result = Json(f, 200, FunctionJson.ToNode(ticket),
            $"issued an upload ticket ({kind}) to site '{site}' of federation '{federation}' for {ticket.Path}{(ticket.Round is int r ? $" (round {r})" : "")}, valid until {Iso(ticket.ExpiresAt)}");
        result.Headers["Cache-Control"] = "no-store";
        return result;
    }

    // ---- RoundStatus -------------------------------------------------------------------------------------------

    /// <summary>The federation's status (schemas/round-status.schema.json): aggregates only.</summary>
    public async Task<FunctionResult> RoundStatusAsync(HttpFunctionRequest request, CancellationToken cancellationToken)
    {
        var f = FunctionCatalog.RoundStatus;
        if (NameError(f, request, "federation") is { } e) return e;
        string federation = request.Route("federation")!;
        var status = await coordinator.GetStatusAsync(federation, cancellationToken).ConfigureAwait(false);
        if (status is null) return Error(f, 404, "not_found", $"federation '{federation}' does not exist", "federation");
        return Json(f, 200, FunctionJson.ToNode(status),
            $"status of federation '{federation}': phase {status.Phase}, round {(status.Round is int r ? r.ToString(CultureInfo.InvariantCulture) : "none")}, " +
            $"{status.Uploaded.Count} uploaded, {status.Missing.Count} missing");
    }

    // ---- administration ----------------------------------------------------------------------------------------

    /// <summary>
    /// Creates a federation from its settings (schemas/federation.schema.json without <c>sites</c>, which
    /// RegisterSite fills, and <c>created_at</c>, which is set here).
    /// </summary>
    public async Task<FunctionResult> CreateFederationAsync(HttpFunctionRequest request, CancellationToken cancellationToken)
    {
        var f = FunctionCatalog.CreateFederation;
        if (string.IsNullOrWhiteSpace(request.Body))
            return Error(f, 400, "bad_request", "the body is missing: send the federation's settings as JSON (schemas/federation.schema.json)", "body");
        if (ParseObject(f, request.Body, "the federation settings", out var settings) is { } bad) return bad;

        // 'sites' and 'created_at' are set by the server (schemas/federation.schema.json): sites register one by one
        // with RegisterSite, which returns each site's key.
        int ignoredSites = settings!["sites"] is JsonArray listed ? listed.Count : 0;
        settings["sites"] = new JsonArray();
        settings["created_at"] = JsonValue.Create(DateTimeOffset.UnixEpoch);

        FederationConfig config;
        try
        {
            config = FederationConfig.Parse(Encoding.UTF8.GetBytes(settings.ToJsonString()), "the request body");
            config = await coordinator.CreateFederationAsync(config, cancellationToken).ConfigureAwait(false);
        }
        catch (FederationDataException invalid)
        {
            return Error(f, 400, "bad_request", "the federation settings are not valid", FirstField(invalid.Problems), invalid.Problems);
        }
        catch (StrategyOptionsException invalid)
        {
            return Error(f, 400, "bad_request", $"the options of strategy '{invalid.Strategy}' are not valid", "strategy.options", invalid.Problems);
        }
        catch (ArgumentException invalid)
        {
            return Error(f, 400, "bad_request", invalid.Message, "strategy");
        }
        catch (InvalidOperationException exists)
        {
            return Error(f, 409, "conflict", exists.Message, "federation");
        }

        var result = Json(f, 201, JsonNode.Parse(config.ToJsonBytes()),
            $"created federation '{config.Federation}': {config.Strategy.Name}, {config.Rounds} round(s) of {config.RoundSeconds} s, quorum {config.Quorum}" +
            (ignoredSites > 0 ? $"; the {ignoredSites} site(s) in the body were ignored (register sites with RegisterSite)" : ""));
        result.Headers["Location"] = $"/{FunctionCatalog.RoutePrefix}/federations/{Uri.EscapeDataString(config.Federation)}/status";
        return result;
    }

    /// <summary>Registers (or re-activates) a site; the answer carries its new key, once.</summary>
    public async Task<FunctionResult> RegisterSiteAsync(HttpFunctionRequest request, CancellationToken cancellationToken)
    {
        var f = FunctionCatalog.RegisterSite;
        if (SiteRoute(f, request, out var federation, out var site) is { } badRoute) return badRoute;
        // Optional body {"signing_public_key": "<PEM or base64 DER SubjectPublicKeyInfo>"}: the key that verifies the site's update signatures.
        string? signingKey = null;
        if (!string.IsNullOrWhiteSpace(request.Body))
        {
            if (ParseObject(f, request.Body, """{"signing_public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE..."}""", out var keyBody) is { } bad) return bad;
            foreach (var (name, value) in keyBody!)
            {
                if (name != "signing_public_key")
                    return Error(f, 400, "bad_request", $"unknown property '{Shorten(name)}' in the body; the only property is 'signing_public_key'", name);
                if (value is not JsonValue v || !v.TryGetValue(out signingKey) || Privacy.Signing.SigningKeys.PublicKeyProblem(signingKey) is not null)
                    return Error(f, 400, "bad_request", "'signing_public_key' must be an ECDSA P-256 public key: PEM or base64 DER SubjectPublicKeyInfo", "signing_public_key");
            }
        }

        if (await store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false) is null)
            return Error(f, 404, "not_found", $"federation '{federation}' does not exist", "federation");

        SiteRegistration? registration = null;
        if (await ChangeAsync(f, async () => registration = await coordinator.RegisterSiteAsync(federation, site, signingKey, cancellationToken).ConfigureAwait(false))
                .ConfigureAwait(false) is { } refused)
            return refused;

        var stored = await store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false);
        var body = new SiteKeyBody
        {
            Federation = federation, Site = site, Key = registration!.Key, RegisteredAt = stored?.Config.FindSite(site)?.RegisteredAt ?? time.GetUtcNow(),
        };
        var result = Json(f, 201, FunctionJson.ToNode(body),
            $"registered site '{site}' in federation '{federation}' (its key was returned once and is not logged)", registration.Key);
        result.Headers["Cache-Control"] = "no-store";
        return result;
    }

    /// <summary>Withdraws a site: its key stops working and later rounds no longer expect it.</summary>
    public async Task<FunctionResult> WithdrawSiteAsync(HttpFunctionRequest request, CancellationToken cancellationToken)
    {
        var f = FunctionCatalog.WithdrawSite;
        if (SiteRoute(f, request, out var federation, out var site) is { } badRoute) return badRoute;
        var stored = await store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false);
        if (stored is null) return Error(f, 404, "not_found", $"federation '{federation}' does not exist", "federation");
        if (stored.Value.Config.FindSite(site) is null) return Error(f, 404, "not_found", $"site '{site}' is not registered in federation '{federation}'", "site");

        if (await ChangeAsync(f, () => coordinator.WithdrawSiteAsync(federation, site, cancellationToken)).ConfigureAwait(false) is { } refused) return refused;

        var after = (await store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false))?.Config.FindSite(site);
        var body = new SiteWithdrawnBody { Federation = federation, Site = site, Status = after?.Status ?? SiteStatuses.Withdrawn, WithdrawnAt = after?.WithdrawnAt };
        return Json(f, 200, FunctionJson.ToNode(body), $"withdrew site '{site}' from federation '{federation}'");
    }

    /// <summary>
    /// Runs a change of the federation document: a refusal of the coordinator (site already active, differs only in
    /// case, a writer race lost too often) or a document that would not be valid is a 409 naming the site.
    /// </summary>
    private static async Task<FunctionResult?> ChangeAsync(HttpFunction f, Func<Task> change)
    {
        try
        {
            await change().ConfigureAwait(false);
            return null;
        }
        catch (Exception conflict) when (conflict is InvalidOperationException or StoreVersionConflictException)
        {
            return Error(f, 409, "conflict", conflict.Message, "site");
        }
        catch (FederationDataException invalid)
        {
            return Error(f, 409, "conflict", "the federation document would not be valid after this change", "site", invalid.Problems);
        }
    }

    // ---- AggregateRound (timer) --------------------------------------------------------------------------------

    /// <summary>
    /// One aggregator tick over every federation (<see cref="FederationCoordinator.TickAsync(CancellationToken)"/>):
    /// the outcomes, and one readable log line per federation.
    /// </summary>
    public async Task<(IReadOnlyList<TickOutcome> Outcomes, List<string> Logs)> AggregateRoundAsync(bool isPastDue, CancellationToken cancellationToken)
    {
        var logs = new List<string> { $"{FunctionCatalog.AggregateRound}: tick at {Iso(time.GetUtcNow())}{(isPastDue ? " (the timer was past due)" : "")}" };
        var outcomes = await coordinator.TickAsync(cancellationToken).ConfigureAwait(false);
        if (outcomes.Count == 0) logs.Add($"{FunctionCatalog.AggregateRound}: the store holds no federation");
        foreach (var o in outcomes)
            logs.Add(LogRedactor.Redact($"{FunctionCatalog.AggregateRound}: federation '{o.Federation}': {o.Action}{(o.Round is int r ? $" (round {r})" : "")}: {o.Message}"));
        return (outcomes, logs);
    }

    // ---- helpers -----------------------------------------------------------------------------------------------

    /// <summary>The <c>{federation}</c> and <c>{site}</c> of a site route, or the 400 that names the bad one.</summary>
    private static FunctionResult? SiteRoute(HttpFunction f, HttpFunctionRequest request, out string federation, out string site)
    {
        federation = request.Route("federation") ?? "";
        site = request.Route("site") ?? "";
        return NameError(f, request, "federation") ?? NameError(f, request, "site");
    }

    private static FunctionResult? NameError(HttpFunction f, HttpFunctionRequest request, string field)
    {
        var problem = FederationNames.Problem(request.Route(field), field);
        return problem is null ? null : Error(f, 400, "bad_request", problem, field);
    }

    private static FunctionResult? ParseObject(HttpFunction f, string text, string what, out JsonObject? value)
    {
        value = null;
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            return Error(f, 400, "bad_request", $"the body is not valid JSON ({FirstSentence(e.Message)})", "body");
        }

        if (node is not JsonObject obj) return Error(f, 400, "bad_request", $"the body must be a JSON object: {what}", "body");
        value = obj;
        return null;
    }

    internal static FunctionResult Error(HttpFunction f, int status, string code, string message, string? field = null,
        IReadOnlyList<string>? problems = null, params string?[] secrets)
    {
        var body = new ErrorBody { Error = code, Message = message, Field = field, Problems = problems };
        string detail = problems is { Count: > 0 } ? $" ({string.Join("; ", problems)})" : "";
        return Json(f, status, FunctionJson.ToNode(body), $"refused: {code}: {message}{detail}", secrets);
    }

    private static FunctionResult Json(HttpFunction f, int status, JsonNode? body, string log, params string?[] secrets)
    {
        var result = new FunctionResult { StatusCode = status, Body = body, Logs = [LogRedactor.Redact($"{f.Name}: {status} {log}", secrets)] };
        result.Headers["Content-Type"] = JsonContentType;
        return result;
    }

    /// <summary>
    /// The field of the first problem: the JSON path of a parse error ("invalid JSON at $.rounds: …"), else the first
    /// quoted field name ("'rounds' is 0; …"), else "body".
    /// </summary>
    private static string? FirstField(IReadOnlyList<string> problems)
    {
        if (problems.Count == 0) return null;
        if (JsonPathField().Match(problems[0]) is { Success: true } path) return path.Groups[1].Value;
        return problems.Select(p => QuotedField().Match(p)).FirstOrDefault(m => m.Success)?.Groups[1].Value ?? "body";
    }

    [GeneratedRegex(@"'([a-z_][a-z0-9_]*(?:(?:\.|\[)[a-z0-9_\]]+)*)'", RegexOptions.CultureInvariant)]
    private static partial Regex QuotedField();

    [GeneratedRegex(@"invalid JSON at \$\.([A-Za-z0-9_.\[\]]+)", RegexOptions.CultureInvariant)]
    private static partial Regex JsonPathField();

    private static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..37] + "...";
}
