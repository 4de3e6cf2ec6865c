namespace ClinicalFed.Functions;

/// <summary>An HTTP-triggered function: its folder name, the one method and route its function.json declares, and its authLevel.</summary>
public sealed record HttpFunction(string Name, string Method, string Route, string AuthLevel);

/// <summary>
/// The functions of the app, as their folders' <c>function.json</c> files declare them (a test checks that they
/// agree). The Functions host calls the handler in two ways:
/// <list type="bullet">
/// <item>an invocation request, <c>POST /&lt;function name&gt;</c> with the payload <c>{"Data": …, "Metadata": …}</c>:
/// always for the timer, and for HTTP functions when host.json does not enable forwarding;</item>
/// <item>for HTTP-only functions when host.json sets <c>customHandler.enableForwardingHttpRequest</c> (it does), a
/// copy of the original request at its original path, <c>/api/&lt;route&gt;</c>.</item>
/// </list>
/// The handler answers both.
/// </summary>
public static class FunctionCatalog
{
    /// <summary>host.json <c>extensions.http.routePrefix</c>.</summary>
    public const string RoutePrefix = "api";

    /// <summary>The header that carries a site's key to <see cref="UploadTicket"/>.</summary>
    public const string SiteKeyHeader = "X-ClinicalFed-Site-Key";

    /// <summary>The timer function's folder name.</summary>
    public const string AggregateRound = "AggregateRound";

    /// <summary>The app setting with the NCRONTAB schedule of <see cref="AggregateRound"/>.</summary>
    public const string ScheduleSetting = "CLINICALFED_AGGREGATE_SCHEDULE";

    /// <summary>Binding name of the HTTP trigger in every HTTP function's function.json (<c>Data.req</c> of an invocation).</summary>
    public const string RequestBinding = "req";

    /// <summary>Binding name of the HTTP output in every HTTP function's function.json (<c>Outputs.res</c> of a response).</summary>
    public const string ResponseBinding = "res";

    public static readonly HttpFunction UploadTicket = new("UploadTicket", "POST", "federations/{federation}/sites/{site}/tickets", "anonymous");
    public static readonly HttpFunction RoundStatus = new("RoundStatus", "GET", "federations/{federation}/status", "function");
    public static readonly HttpFunction CreateFederation = new("CreateFederation", "POST", "federations", "admin");
    public static readonly HttpFunction RegisterSite = new("RegisterSite", "POST", "federations/{federation}/sites/{site}", "admin");
    public static readonly HttpFunction WithdrawSite = new("WithdrawSite", "DELETE", "federations/{federation}/sites/{site}", "admin");

    public static IReadOnlyList<HttpFunction> Http { get; } = [UploadTicket, RoundStatus, CreateFederation, RegisterSite, WithdrawSite];

    /// <summary>Every function folder name.</summary>
    public static IReadOnlyList<string> Names { get; } = [AggregateRound, .. Http.Select(f => f.Name)];
}
