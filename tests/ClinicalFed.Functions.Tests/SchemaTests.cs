using System.Net;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ClinicalFed.Federation;
using ClinicalFed.Storage.Coordination;
using ClinicalFed.Testing;

namespace ClinicalFed.Functions.Tests;

/// <summary>
/// The schemas of what crosses the HTTP boundary against the handler's real answers, against the C# records (same
/// property names, same enumerations), and against broken documents.
/// </summary>
public sealed class SchemaTests : HandlerTest
{
    private static readonly MiniJsonSchema TicketSchema = MiniJsonSchema.Load(Path.Combine(Repo.Schemas, "upload-ticket.schema.json"));
    private static readonly MiniJsonSchema StatusSchema = MiniJsonSchema.Load(Path.Combine(Repo.Schemas, "round-status.schema.json"));
    private static readonly MiniJsonSchema OutcomeSchema = MiniJsonSchema.Load(Path.Combine(Repo.Schemas, "tick-outcome.schema.json"));

    private static void AssertValid(MiniJsonSchema schema, JsonNode document)
    {
        var errors = schema.Validate(Fixtures.Element(document));
        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors) + Environment.NewLine + document.ToJsonString());
    }

    private static void AssertInvalid(MiniJsonSchema schema, JsonNode document, string expectedFragment)
    {
        var errors = schema.Validate(Fixtures.Element(document));
        Assert.True(errors.Any(e => e.Contains(expectedFragment, StringComparison.Ordinal)),
            $"expected an error containing '{expectedFragment}', got: {string.Join(" | ", errors)}");
    }

    private async Task<List<JsonNode>> CollectOutcomesAsync(List<JsonNode> outcomes)
    {
        foreach (var o in await Host.TickOutcomesAsync()) outcomes.Add(o!.DeepClone());
        return outcomes;
    }

    [Fact]
    public async Task Real_tickets_statuses_and_tick_outcomes_of_a_whole_federation_are_valid()
    {
        var statuses = new List<JsonNode>();
        var tickets = new List<JsonNode>();
        var outcomes = new List<JsonNode>();
        async Task Status() => statuses.Add((await Host.StatusAsync(F)).Json!);

        await Host.CreateFederationAsync(Fixtures.Settings(rounds: 2, statistics: true));
        await Status(); // statistics phase, no sites
        string keyA = await Host.RegisterAsync(F, "A");
        string keyB = await Host.RegisterAsync(F, "B");
        await Host.RegisterAsync(F, "C");
        await Host.WithdrawAsync(F, "C");
        await CollectOutcomesAsync(outcomes); // waiting for statistics

        foreach (var (site, key) in new[] { ("A", keyA), ("B", keyB) })
        {
            var ticket = await Host.TicketAsync(F, site, key, kind: TicketKinds.Statistics);
            Assert.Equal(HttpStatusCode.OK, ticket.Status);
            tickets.Add(ticket.Json!);
            await Host.Local.PutSiteStatisticsAsync(F, site, ClinicalFed.Statistics.StatisticsSet.Compute(site, "sepsis-hourly", "1.0.0", ["hr"], [new(0, 300, 30)], [80, 95], 1));
        }

        await Status();
        await CollectOutcomesAsync(outcomes); // merged, round 0 opened
        await Status();
        var t = await Host.TicketAsync(F, "A", keyA);
        tickets.Add(t.Json!);
        await Host.UploadUpdateAsync(F, 0, "A", [1, 2, 3]);
        await Status();
        Host.Clock.Now += TimeSpan.FromHours(2);
        await CollectOutcomesAsync(outcomes); // quorum not met, round 1 opened
        await Host.UploadUpdateAsync(F, 1, "A", [1, 2, 3]);
        await Status();
        await CollectOutcomesAsync(outcomes); // waiting for B
        Host.Clock.Now += TimeSpan.FromHours(2);
        await CollectOutcomesAsync(outcomes); // completed
        await Status();

        Assert.Equal(["statistics", "statistics", "open", "open", "open", "completed"], statuses.Select(s => s["phase"]!.GetValue<string>()));
        Assert.Equal(["waiting", "round_opened", "round_opened", "waiting", "completed"], outcomes.Select(o => o["action"]!.GetValue<string>()));
        foreach (var s in statuses) AssertValid(StatusSchema, s);
        foreach (var ticket in tickets) AssertValid(TicketSchema, ticket);
        foreach (var o in outcomes) AssertValid(OutcomeSchema, o);
        var last = statuses[^1];
        Assert.Equal(2, last["history"]!.AsArray().Count);
        Assert.Equal(["C"], last["withdrawn_sites"]!.AsArray().Select(s => s!.GetValue<string>()));
    }

    [Fact]
    public async Task A_status_with_rejected_uploads_and_a_busy_outcome_are_valid()
    {
        await Fixtures.OpenRoundZeroAsync(Host);
        await Host.UploadUpdateAsync(F, 0, "A", [1, 2, 3]);
        // An update of the wrong dimension: stored (it is a well-formed file) but rejected by aggregation.
        await Host.UploadUpdateAsync(F, 0, "B", [1, 2]);
        Host.Clock.Now += TimeSpan.FromHours(2);
        await Host.TickOutcomesAsync();
        var status = (await Host.StatusAsync(F)).Json!;
        Assert.Equal("B", status["rejected"]![0]!["site"]!.GetValue<string>());
        AssertValid(StatusSchema, status);

        var busy = FunctionJson(new TickOutcome { Federation = F, Action = "busy", Message = "another aggregator invocation holds the federation's lease" });
        AssertValid(OutcomeSchema, busy);
    }

    [Fact]
    public async Task The_created_federation_document_is_valid_against_the_federation_schema()
    {
        var schema = MiniJsonSchema.Load(Path.Combine(Repo.Schemas, "federation.schema.json"));
        var created = await Host.CreateFederationAsync(Fixtures.Settings());
        AssertValid(schema, created.Json!);
    }

    private static JsonNode FunctionJson<T>(T value) => JsonSerializer.SerializeToNode(value)!;

    private static IEnumerable<string> JsonNames(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttribute<JsonIgnoreAttribute>() is null)
            .Select(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? throw new InvalidOperationException($"{type.Name}.{p.Name} has no [JsonPropertyName]"));

    private static IEnumerable<string> SchemaNames(string file, params string[] path)
    {
        var node = JsonNode.Parse(File.ReadAllText(Path.Combine(Repo.Schemas, file)))!;
        foreach (var p in path) node = node[p]!;
        return node["properties"]!.AsObject().Select(p => p.Key);
    }

    private static IEnumerable<string> SchemaEnum(string file, params string[] path)
    {
        var node = JsonNode.Parse(File.ReadAllText(Path.Combine(Repo.Schemas, file)))!;
        foreach (var p in path) node = node[p]!;
        return node["enum"]!.AsArray().Select(v => v!.GetValue<string>());
    }

    [Fact]
    public void The_schemas_name_exactly_the_properties_of_the_records()
    {
        Assert.Equal(JsonNames(typeof(UploadTicket)).Order(), SchemaNames("upload-ticket.schema.json").Order());
        Assert.Equal(JsonNames(typeof(FederationStatus)).Order(), SchemaNames("round-status.schema.json").Order());
        Assert.Equal(JsonNames(typeof(RejectedUpload)).Order(), SchemaNames("round-status.schema.json", "properties", "rejected", "items").Order());
        Assert.Equal(JsonNames(typeof(RoundSummary)).Order(), SchemaNames("round-status.schema.json", "properties", "history", "items").Order());
        Assert.Equal(JsonNames(typeof(TickOutcome)).Order(), SchemaNames("tick-outcome.schema.json").Order());
    }

    [Fact]
    public void The_schemas_enumerate_exactly_the_values_of_the_code()
    {
        Assert.Equal(TicketKinds.All.Order(), SchemaEnum("upload-ticket.schema.json", "properties", "kind").Order());
        string[] phases = [FederationPhases.Statistics, FederationPhases.Open, FederationPhases.Completed];
        Assert.Equal(phases.Order(), SchemaEnum("round-status.schema.json", "properties", "phase").Order());
        Assert.Equal(RoundStatuses.All.Order(), SchemaEnum("round-status.schema.json", "properties", "history", "items", "properties", "status").Order());
        Assert.Equal(StrategyNames.All.Concat(StrategyNames.Trees).Order(), SchemaEnum("round-status.schema.json", "properties", "strategy").Order());

        // Every action the coordinator can report is in the schema (its source is the one place that names them).
        var actions = SchemaEnum("tick-outcome.schema.json", "properties", "action").ToHashSet();
        var source = File.ReadAllText(Path.Combine(Repo.Root, "src", "ClinicalFed.Storage", "Coordination", "FederationCoordinator.cs"));
        var used = System.Text.RegularExpressions.Regex.Matches(source, "Action = \"([a-z_]+)\"").Select(m => m.Groups[1].Value).ToHashSet();
        Assert.NotEmpty(used);
        Assert.Subset(actions, used);
    }

    [Fact]
    public void Broken_documents_fail()
    {
        var ticket = new JsonObject
        {
            ["format_version"] = 1, ["federation"] = F, ["site"] = "A", ["kind"] = "update", ["round"] = 0,
            ["path"] = "federations/sepsis/rounds/00000/updates/A.cfu", ["upload_url"] = "https://x.blob.core.windows.net/c/b?sig=s",
            ["expires_at"] = "2025-03-01T08:15:00+00:00",
        };
        AssertValid(TicketSchema, ticket);
        AssertInvalid(TicketSchema, With(ticket, "round", null), "$.round: expected integer");
        AssertInvalid(TicketSchema, With(ticket, "kind", "statistics"), "$.round: expected null");
        AssertInvalid(TicketSchema, With(ticket, "path", "federations/sepsis/../x.cfu"), "$.path");
        AssertInvalid(TicketSchema, With(ticket, "upload_url", "ftp://x"), "$.upload_url");
        AssertInvalid(TicketSchema, With(ticket, "expires_at", "tomorrow"), "$.expires_at");
        AssertInvalid(TicketSchema, With(ticket, "key", "secret"), "unknown property 'key'");
        AssertInvalid(TicketSchema, With(ticket, "site", ".A"), "$.site");

        var outcome = new JsonObject { ["federation"] = F, ["action"] = "busy", ["round"] = null, ["message"] = "x" };
        AssertValid(OutcomeSchema, outcome);
        AssertInvalid(OutcomeSchema, With(outcome, "action", "exploded"), "$.action");
        AssertInvalid(OutcomeSchema, With(outcome, "message", ""), "$.message");
        var noRound = outcome.DeepClone().AsObject();
        noRound.Remove("round");
        AssertInvalid(OutcomeSchema, noRound, "required property 'round'");
    }

    private static JsonObject With(JsonObject document, string name, JsonNode? value)
    {
        var copy = document.DeepClone().AsObject();
        copy[name] = value;
        return copy;
    }

    [Fact]
    public void The_schemas_readme_lists_the_three_schemas()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Schemas, "README.md"));
        foreach (var file in new[] { "upload-ticket.schema.json", "round-status.schema.json", "tick-outcome.schema.json" })
            Assert.Contains($"| `{file}` |", readme);
    }
}
