using System.Net;
using System.Text.Json.Nodes;
using ClinicalFed.Storage;

namespace ClinicalFed.Functions.Tests;

/// <summary>
/// The HTTP functions as the Functions host forwards them (host.json <c>enableForwardingHttpRequest</c>): the original
/// request at <c>/api/&lt;route&gt;</c>, answered with the HTTP response itself.
/// </summary>
public sealed class ForwardedHttpTests : HandlerTest
{
    private static void AssertError(Answer answer, HttpStatusCode status, string code, string? field = null)
    {
        Assert.True(answer.Status == status, $"expected {(int)status}, got {(int)answer.Status}: {answer.Text}");
        Assert.StartsWith("application/json", answer.Headers["Content-Type"]);
        Assert.Equal(code, answer.Json!["error"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(answer.Json["message"]!.GetValue<string>()));
        if (field is not null) Assert.Equal(field, answer.Json["field"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_federation_runs_through_two_rounds_over_http_and_the_timer()
    {
        var created = await Host.CreateFederationAsync(Fixtures.Settings(rounds: 2));
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal("/api/federations/sepsis/status", created.Headers["Location"]);
        Assert.Equal(Host.Clock.Now, created.Json!["created_at"]!.GetValue<DateTimeOffset>());

        string keyA = await Host.RegisterAsync(F, "A");
        string keyB = await Host.RegisterAsync(F, "B");
        Assert.NotEqual(keyA, keyB);

        var before = await Host.StatusAsync(F);
        Assert.Equal(HttpStatusCode.OK, before.Status);
        Assert.Equal("open", before.Json!["phase"]!.GetValue<string>());
        Assert.Null(before.Json["round"]);

        Assert.Equal("round_opened", (await Host.TickOutcomesAsync())[0]!["action"]!.GetValue<string>());
        for (int round = 0; round < 2; round++)
        {
            foreach (var (site, key) in new[] { ("A", keyA), ("B", keyB) })
            {
                var ticket = await Host.TicketAsync(F, site, key);
                Assert.Equal(HttpStatusCode.OK, ticket.Status);
                Assert.Equal("no-store", ticket.Headers["Cache-Control"]);
                Assert.Equal(round, ticket.Json!["round"]!.GetValue<int>());
                Assert.Equal(StoreLayout.Update(F, round, site), ticket.Json["path"]!.GetValue<string>());
                Assert.True(ticket.Json["expires_at"]!.GetValue<DateTimeOffset>() <= Host.Clock.Now.AddMinutes(15));
                await Host.UploadUpdateAsync(F, round, site, [1 + round, 2, 3]);
            }

            var outcome = (await Host.TickOutcomesAsync()).Single()!;
            Assert.Equal(round == 0 ? "round_opened" : "completed", outcome["action"]!.GetValue<string>());
        }

        var after = await Host.StatusAsync(F);
        Assert.Equal("completed", after.Json!["phase"]!.GetValue<string>());
        Assert.Equal(2, after.Json["history"]!.AsArray().Count);
        Assert.Equal("federations/sepsis/rounds/00001/global.cfm", after.Json["latest_global_model"]!.GetValue<string>());
        Assert.NotNull(await Host.Local.GetPersonalizedModelAsync(F, 1, "A"));
    }

    [Fact]
    public async Task The_statistics_phase_hands_out_statistics_tickets_until_every_active_site_sent_them()
    {
        await Host.CreateFederationAsync(Fixtures.Settings(statistics: true));
        string keyA = await Host.RegisterAsync(F, "A");
        await Host.RegisterAsync(F, "B");

        var status = await Host.StatusAsync(F);
        Assert.Equal("statistics", status.Json!["phase"]!.GetValue<string>());
        var ticket = await Host.TicketAsync(F, "A", keyA, kind: "statistics");
        Assert.Equal(HttpStatusCode.OK, ticket.Status);
        Assert.Null(ticket.Json!["round"]);
        Assert.Equal("federations/sepsis/statistics/sites/A.json", ticket.Json["path"]!.GetValue<string>());

        var outcome = (await Host.TickOutcomesAsync()).Single()!;
        Assert.Equal("waiting", outcome["action"]!.GetValue<string>());
        Assert.Contains("statistics from 0 of 2", outcome["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task CreateFederation_reports_every_problem_of_the_settings_naming_the_fields()
    {
        var body = JsonNode.Parse(Fixtures.Settings())!.AsObject();
        body["rounds"] = 0;
        body["round_seconds"] = -5;
        body["model"]!["kind"] = "forest";
        var answer = await Host.CreateFederationAsync(body.ToJsonString());
        AssertError(answer, HttpStatusCode.BadRequest, "bad_request");
        var problems = answer.Json!["problems"]!.AsArray().Select(p => p!.GetValue<string>()).ToList();
        Assert.Contains(problems, p => p.Contains("'rounds'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("'round_seconds'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("'model.kind'", StringComparison.Ordinal));
        Assert.Equal("model.kind", answer.Json["field"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("", "body")]
    [InlineData("[1, 2]", "body")]
    [InlineData("{\"federation\": ", "body")]
    [InlineData("{\"federation\": \"x\", \"rounds\": \"three\"}", "rounds")]
    public async Task CreateFederation_refuses_a_malformed_body_naming_the_field(string body, string field)
    {
        var answer = await Host.SendAsync(HttpMethod.Post, "/api/federations", body);
        AssertError(answer, HttpStatusCode.BadRequest, "bad_request", field);
    }

    [Fact]
    public async Task CreateFederation_sets_sites_and_created_at_itself()
    {
        var body = JsonNode.Parse(Fixtures.Settings())!.AsObject();
        body["format_version"] = 1;
        body["created_at"] = "2020-01-01T00:00:00+00:00";
        body["sites"] = new JsonArray(new JsonObject
        {
            ["name"] = "A", ["key_sha256"] = new string('a', 64), ["status"] = "active", ["registered_at"] = "2020-01-01T00:00:00+00:00",
        });
        var answer = await Host.CreateFederationAsync(body.ToJsonString());
        Assert.Equal(HttpStatusCode.Created, answer.Status);
        Assert.Empty(answer.Json!["sites"]!.AsArray());
        Assert.Equal(Host.Clock.Now, answer.Json["created_at"]!.GetValue<DateTimeOffset>());
        Assert.Contains(Host.Logs.Lines, l => l.Contains("the 1 site(s) in the body were ignored", StringComparison.Ordinal));
    }

    [Fact]
    public async Task CreateFederation_refuses_unknown_properties_and_bad_strategy_options()
    {
        var unknown = JsonNode.Parse(Fixtures.Settings())!.AsObject();
        unknown["colour"] = "blue";
        var a = await Host.CreateFederationAsync(unknown.ToJsonString());
        AssertError(a, HttpStatusCode.BadRequest, "bad_request", "colour");

        var options = JsonNode.Parse(Fixtures.Settings())!.AsObject();
        options["strategy"] = new JsonObject { ["name"] = "fedprox", ["options"] = new JsonObject { ["proximal_mu"] = -1 } };
        var b = await Host.CreateFederationAsync(options.ToJsonString());
        AssertError(b, HttpStatusCode.BadRequest, "bad_request");
        Assert.Contains("proximal_mu", b.Text);
    }

    [Fact]
    public async Task Creating_a_federation_twice_or_registering_an_active_site_twice_is_a_409()
    {
        Assert.Equal(HttpStatusCode.Created, (await Host.CreateFederationAsync(Fixtures.Settings())).Status);
        AssertError(await Host.CreateFederationAsync(Fixtures.Settings()), HttpStatusCode.Conflict, "conflict", "federation");

        await Host.RegisterAsync(F, "A");
        AssertError(await Host.SendAsync(HttpMethod.Post, "/api/federations/sepsis/sites/A"), HttpStatusCode.Conflict, "conflict", "site");
        AssertError(await Host.SendAsync(HttpMethod.Post, "/api/federations/sepsis/sites/a"), HttpStatusCode.Conflict, "conflict", "site");
    }

    [Fact]
    public async Task A_withdrawn_site_can_register_again_with_a_new_key()
    {
        await Host.CreateFederationAsync(Fixtures.Settings());
        string first = await Host.RegisterAsync(F, "A");
        var withdrawn = await Host.WithdrawAsync(F, "A");
        Assert.Equal(HttpStatusCode.OK, withdrawn.Status);
        Assert.Equal(HttpStatusCode.OK, (await Host.WithdrawAsync(F, "A")).Status); // idempotent
        string second = await Host.RegisterAsync(F, "A");
        Assert.NotEqual(first, second);
        var status = await Host.StatusAsync(F);
        Assert.Equal(["A"], status.Json!["sites"]!.AsArray().Select(s => s!.GetValue<string>()));
    }

    [Fact]
    public async Task Unknown_federations_and_sites_are_404_and_bad_names_are_400_naming_the_field()
    {
        AssertError(await Host.StatusAsync("nosuch"), HttpStatusCode.NotFound, "not_found", "federation");
        AssertError(await Host.SendAsync(HttpMethod.Post, "/api/federations/nosuch/sites/A"), HttpStatusCode.NotFound, "not_found", "federation");
        AssertError(await Host.WithdrawAsync("nosuch", "A"), HttpStatusCode.NotFound, "not_found", "federation");
        AssertError(await Host.TicketAsync("nosuch", "A", "key"), HttpStatusCode.NotFound, "not_found", "federation");

        await Host.CreateFederationAsync(Fixtures.Settings());
        AssertError(await Host.WithdrawAsync(F, "Z"), HttpStatusCode.NotFound, "not_found", "site");

        AssertError(await Host.StatusAsync("NUL"), HttpStatusCode.BadRequest, "bad_request", "federation");
        AssertError(await Host.StatusAsync(".hidden"), HttpStatusCode.BadRequest, "bad_request", "federation");
        AssertError(await Host.SendAsync(HttpMethod.Post, "/api/federations/sepsis/sites/a%20b"), HttpStatusCode.BadRequest, "bad_request", "site");
        AssertError(await Host.TicketAsync(F, new string('x', 65), "key"), HttpStatusCode.BadRequest, "bad_request", "site");
    }

    [Theory]
    [InlineData(null, null, "kind")]
    [InlineData("model", null, "kind")]
    [InlineData(null, "{\"kind\": 3}", "kind")]
    [InlineData(null, "{\"kind\": \"update\", \"round\": 2}", "round")]
    [InlineData("update", "{\"kind\": \"statistics\"}", "kind")]
    [InlineData(null, "[\"update\"]", "body")]
    [InlineData(null, "kind=update", "body")]
    public async Task UploadTicket_refuses_a_missing_or_malformed_kind_naming_the_field(string? queryKind, string? body, string field)
    {
        await Host.CreateFederationAsync(Fixtures.Settings());
        string key = await Host.RegisterAsync(F, "A");
        var answer = await Host.TicketAsync(F, "A", key, queryKind, body);
        AssertError(answer, HttpStatusCode.BadRequest, "bad_request", field);
    }

    [Fact]
    public async Task An_oversized_body_is_refused()
    {
        var answer = await Host.SendAsync(HttpMethod.Post, "/api/federations", "{\"description\": \"" + new string('x', InvocationEndpoints.MaxBodyBytes) + "\"}");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer.Status);
    }
}
