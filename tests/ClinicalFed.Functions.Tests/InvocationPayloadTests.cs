using System.Net;
using System.Text.Json.Nodes;
using ClinicalFed.Storage.Coordination;

namespace ClinicalFed.Functions.Tests;

/// <summary>
/// Each function called the way the Functions host calls a custom handler when forwarding is off: <c>POST
/// /&lt;function&gt;</c> with <c>{"Data": …, "Metadata": …}</c>, answered with <c>{"Outputs", "Logs", "ReturnValue"}</c>.
/// </summary>
public sealed class InvocationPayloadTests : HandlerTest
{
    private static Dictionary<string, string> Route(string federation, string? site = null) =>
        site is null ? new() { ["federation"] = federation } : new() { ["federation"] = federation, ["site"] = site };

    private static void AssertInvocationShape(Answer answer)
    {
        Assert.Equal(HttpStatusCode.OK, answer.Status); // the invocation itself succeeded; the function's status is in Outputs.res
        Assert.StartsWith("application/json", answer.Headers["Content-Type"]);
        var json = answer.Json!.AsObject();
        Assert.Equal(["Outputs", "Logs", "ReturnValue"], json.Select(p => p.Key));
        Assert.IsType<JsonObject>(json["Outputs"]);
        Assert.All(json["Logs"]!.AsArray(), l => Assert.IsType<string>(l!.GetValue<string>()));
        Assert.NotEmpty(json["Logs"]!.AsArray());
    }

    [Fact]
    public async Task AggregateRound_answers_outputs_logs_and_the_tick_outcomes_as_return_value()
    {
        await Host.CreateFederationAsync(Fixtures.Settings());
        await Host.RegisterAsync(F, "A");
        await Host.RegisterAsync(F, "B");

        var answer = await Host.TickAsync(pastDue: true);

        AssertInvocationShape(answer);
        Assert.Empty(answer.Json!["Outputs"]!.AsObject()); // no output bindings
        var outcome = Assert.Single(answer.Json["ReturnValue"]!.AsArray())!.AsObject();
        Assert.Equal(F, outcome["federation"]!.GetValue<string>());
        Assert.Equal("round_opened", outcome["action"]!.GetValue<string>());
        Assert.Equal(0, outcome["round"]!.GetValue<int>());
        var logs = answer.Json["Logs"]!.AsArray().Select(l => l!.GetValue<string>()).ToList();
        Assert.Contains(logs, l => l.Contains("past due", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Contains($"federation '{F}': round_opened (round 0): opened round 0 for 2 site(s)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AggregateRound_accepts_the_timer_value_as_a_json_string_and_an_empty_store()
    {
        var payload = Payload.Timer(pastDue: true);
        payload["Data"]!["timer"] = payload["Data"]!["timer"]!.ToJsonString();
        using var response = await Host.Client.PostAsync("/AggregateRound", Payload.Json(payload));
        var answer = await Answer.ReadAsync(response);
        AssertInvocationShape(answer);
        Assert.Empty(answer.Json!["ReturnValue"]!.AsArray());
        Assert.Contains(answer.Json["Logs"]!.AsArray(), l => l!.GetValue<string>().Contains("past due", StringComparison.Ordinal));
        Assert.Contains(answer.Json["Logs"]!.AsArray(), l => l!.GetValue<string>().Contains("no federation", StringComparison.Ordinal));
    }

    [Fact]
    public async Task CreateFederation_RegisterSite_UploadTicket_RoundStatus_and_WithdrawSite_answer_in_outputs_res()
    {
        var created = await Host.InvokeAsync("CreateFederation", Payload.Http(FunctionCatalog.CreateFederation, body: Fixtures.Settings()));
        AssertInvocationShape(created);
        Assert.Equal(201, created.ResStatus);
        Assert.Equal(F, created.ResBody["federation"]!.GetValue<string>());
        Assert.Empty(created.ResBody["sites"]!.AsArray());
        Assert.Equal("/api/federations/sepsis/status", created.Res["headers"]!["Location"]!.GetValue<string>());
        Assert.StartsWith("application/json", created.Res["headers"]!["Content-Type"]!.GetValue<string>());

        var registered = await Host.InvokeAsync("RegisterSite", Payload.Http(FunctionCatalog.RegisterSite, Route(F, "A")));
        AssertInvocationShape(registered);
        Assert.Equal(201, registered.ResStatus);
        string key = registered.ResBody["key"]!.GetValue<string>();
        Assert.Equal(43, key.Length); // 32 random bytes, base64url
        Assert.Equal(FunctionCatalog.SiteKeyHeader, registered.ResBody["key_header"]!.GetValue<string>());
        Assert.Equal("no-store", registered.Res["headers"]!["Cache-Control"]!.GetValue<string>());
        await Host.RegisterAsync(F, "B");
        await Host.TickOutcomesAsync(); // opens round 0

        var ticket = await Host.InvokeAsync("UploadTicket", Payload.Http(FunctionCatalog.UploadTicket, Route(F, "A"),
            query: new Dictionary<string, string> { ["kind"] = "update" }, headers: new Dictionary<string, string> { [FunctionCatalog.SiteKeyHeader] = key }));
        AssertInvocationShape(ticket);
        Assert.Equal(200, ticket.ResStatus);
        Assert.Equal("update", ticket.ResBody["kind"]!.GetValue<string>());
        Assert.Equal(0, ticket.ResBody["round"]!.GetValue<int>());
        Assert.Equal("federations/sepsis/rounds/00000/updates/A.cfu", ticket.ResBody["path"]!.GetValue<string>());
        Assert.Contains(TicketingStore.Signature, ticket.ResBody["upload_url"]!.GetValue<string>());
        Assert.Equal("no-store", ticket.Res["headers"]!["Cache-Control"]!.GetValue<string>());

        var status = await Host.InvokeAsync("RoundStatus", Payload.Http(FunctionCatalog.RoundStatus, Route(F)));
        AssertInvocationShape(status);
        Assert.Equal(200, status.ResStatus);
        Assert.Equal("open", status.ResBody["phase"]!.GetValue<string>());
        Assert.Equal(["A", "B"], status.ResBody["missing"]!.AsArray().Select(s => s!.GetValue<string>()));

        var withdrawn = await Host.InvokeAsync("WithdrawSite", Payload.Http(FunctionCatalog.WithdrawSite, Route(F, "B")));
        AssertInvocationShape(withdrawn);
        Assert.Equal(200, withdrawn.ResStatus);
        Assert.Equal("withdrawn", withdrawn.ResBody["status"]!.GetValue<string>());
        Assert.Equal(Host.Clock.Now, withdrawn.ResBody["withdrawn_at"]!.GetValue<DateTimeOffset>());

        // The key and the upload URL reached the caller only: no log line has them.
        var logs = Host.AllLogs([created, registered, ticket, status, withdrawn]);
        Assert.DoesNotContain(logs, l => l.Contains(key, StringComparison.Ordinal) || l.Contains(TicketingStore.Signature, StringComparison.Ordinal));
        Assert.Contains(logs, l => l.StartsWith("UploadTicket: 200 issued an upload ticket (update) to site 'A'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UploadTicket_takes_the_query_as_a_json_string_the_kind_from_the_body_and_route_values_from_the_url()
    {
        var (keyA, _) = await Fixtures.OpenRoundZeroAsync(Host);
        var headers = new Dictionary<string, string> { [FunctionCatalog.SiteKeyHeader] = keyA };

        var fromQueryString = await Host.InvokeAsync("UploadTicket", Payload.Http(FunctionCatalog.UploadTicket, Route(F, "A"),
            query: new Dictionary<string, string> { ["kind"] = "update" }, headers: headers, queryAsString: true));
        Assert.Equal(200, fromQueryString.ResStatus);

        var fromBodyAndUrl = await Host.InvokeAsync("UploadTicket", Payload.Http(FunctionCatalog.UploadTicket, Route(F, "A"),
            body: """{"kind":"update"}""", headers: headers, sendParams: false));
        Assert.Equal(200, fromBodyAndUrl.ResStatus);
        Assert.Equal("A", fromBodyAndUrl.ResBody["site"]!.GetValue<string>());
    }

    [Fact]
    public async Task Errors_of_http_functions_are_the_function_status_in_outputs_res()
    {
        var missingFederation = await Host.InvokeAsync("RoundStatus", Payload.Http(FunctionCatalog.RoundStatus, Route("nosuch")));
        AssertInvocationShape(missingFederation);
        Assert.Equal(404, missingFederation.ResStatus);
        Assert.Equal("not_found", missingFederation.ResBody["error"]!.GetValue<string>());
        Assert.Equal("federation", missingFederation.ResBody["field"]!.GetValue<string>());

        var wrongMethod = await Host.InvokeAsync("RoundStatus", Payload.Http(FunctionCatalog.RoundStatus, Route(F), method: "DELETE"));
        Assert.Equal(405, wrongMethod.ResStatus);
        Assert.Equal("GET", wrongMethod.Res["headers"]!["Allow"]!.GetValue<string>());

        var badName = await Host.InvokeAsync("RegisterSite", Payload.Http(FunctionCatalog.RegisterSite, Route(F, "COM1")));
        Assert.Equal(400, badName.ResStatus);
        Assert.Equal("site", badName.ResBody["field"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("""{"Metadata": {}}""")]
    [InlineData("""{"Data": {"other": 1}}""")]
    [InlineData("""{"Data": {"req": {"Url": "https://x/api/federations/sepsis/status"}}}""")]
    [InlineData("""{"Data": {"req": {"Method": "GET", "Headers": [1, 2]}}}""")]
    public async Task A_malformed_invocation_request_is_a_400_that_says_what_is_wrong(string body)
    {
        using var response = await Host.Client.PostAsync("/RoundStatus", new StringContent(body));
        var answer = await Answer.ReadAsync(response);
        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal("bad_request", answer.Json!["error"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(answer.Json["message"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_timer_invocation_that_is_not_json_is_a_400()
    {
        using var response = await Host.Client.PostAsync("/AggregateRound", new StringContent("{"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public void Responses_of_http_functions_carry_the_body_as_a_json_string_and_the_status_as_a_number()
    {
        var result = new FunctionResult { StatusCode = 409, Body = new JsonObject { ["error"] = "not_open" }, Logs = ["x"] };
        result.Headers["Content-Type"] = "application/json; charset=utf-8";
        var response = InvocationEndpoints.ToInvocationResponse(result);
        var res = response.Outputs["res"]!.AsObject();
        Assert.Equal(409, res["statusCode"]!.GetValue<int>());
        Assert.Equal("""{"error":"not_open"}""", res["body"]!.GetValue<string>());
        Assert.Equal(["x"], response.Logs);
        Assert.Null(response.ReturnValue);
    }

    [Fact]
    public void Route_values_are_read_from_params_or_else_from_the_url()
    {
        var withParams = InvocationEndpoints.ParseInvocation(FunctionCatalog.UploadTicket,
            Payload.Http(FunctionCatalog.UploadTicket, Route("fed.1", "site_2")).ToJsonString());
        Assert.Equal("fed.1", withParams.Route("federation"));
        Assert.Equal("site_2", withParams.Route("site"));
        Assert.Equal("test", withParams.Header("user-agent"));

        var fromUrl = InvocationEndpoints.ParseInvocation(FunctionCatalog.UploadTicket,
            Payload.Http(FunctionCatalog.UploadTicket, Route("fed.1", "site_2"), query: new Dictionary<string, string> { ["kind"] = "statistics" }, sendParams: false).ToJsonString());
        Assert.Equal("fed.1", fromUrl.Route("federation"));
        Assert.Equal("site_2", fromUrl.Route("site"));
        Assert.Equal(TicketKinds.Statistics, fromUrl.Query["kind"]);
    }
}
