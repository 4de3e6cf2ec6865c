using System.Net;

namespace ClinicalFed.Functions.Tests;

/// <summary>Every reason a site gets no upload ticket, and the status each maps to (401, 409, 501).</summary>
public sealed class TicketRefusalTests : HandlerTest
{
    private static void AssertRefused(Answer answer, HttpStatusCode status, string code, string messageFragment)
    {
        Assert.True(answer.Status == status, $"expected {(int)status}, got {(int)answer.Status}: {answer.Text}");
        Assert.Equal(code, answer.Json!["error"]!.GetValue<string>());
        Assert.Contains(messageFragment, answer.Json["message"]!.GetValue<string>());
        Assert.Null(answer.Json["upload_url"]);
    }

    [Fact]
    public async Task A_wrong_key_a_missing_key_and_another_sites_key_are_401()
    {
        var (keyA, keyB) = await Fixtures.OpenRoundZeroAsync(Host);
        AssertRefused(await Host.TicketAsync(F, "A", keyA + "x"), HttpStatusCode.Unauthorized, "unauthorized", "not an active site");
        AssertRefused(await Host.TicketAsync(F, "A", null), HttpStatusCode.Unauthorized, "unauthorized", FunctionCatalog.SiteKeyHeader);
        AssertRefused(await Host.TicketAsync(F, "A", ""), HttpStatusCode.Unauthorized, "unauthorized", FunctionCatalog.SiteKeyHeader);
        AssertRefused(await Host.TicketAsync(F, "A", keyB), HttpStatusCode.Unauthorized, "unauthorized", "not an active site");
        Assert.Equal(HttpStatusCode.OK, (await Host.TicketAsync(F, "A", keyA)).Status);
    }

    [Fact]
    public async Task An_unknown_site_is_401()
    {
        var (keyA, _) = await Fixtures.OpenRoundZeroAsync(Host);
        AssertRefused(await Host.TicketAsync(F, "Z", keyA), HttpStatusCode.Unauthorized, "unauthorized", "site 'Z'");
    }

    [Fact]
    public async Task A_withdrawn_sites_key_stops_working()
    {
        var (keyA, _) = await Fixtures.OpenRoundZeroAsync(Host);
        Assert.Equal(HttpStatusCode.OK, (await Host.WithdrawAsync(F, "A")).Status);
        AssertRefused(await Host.TicketAsync(F, "A", keyA), HttpStatusCode.Unauthorized, "unauthorized", "not an active site");
    }

    [Fact]
    public async Task A_second_upload_to_the_same_round_is_409()
    {
        var (keyA, _) = await Fixtures.OpenRoundZeroAsync(Host);
        Assert.Equal(HttpStatusCode.OK, (await Host.TicketAsync(F, "A", keyA)).Status);
        await Host.UploadUpdateAsync(F, 0, "A", [1, 2, 3]);
        AssertRefused(await Host.TicketAsync(F, "A", keyA), HttpStatusCode.Conflict, "not_open", "already uploaded its update for round 0");
    }

    [Fact]
    public async Task A_round_past_its_deadline_is_409_until_the_timer_opens_the_next()
    {
        var (keyA, keyB) = await Fixtures.OpenRoundZeroAsync(Host);
        await Host.UploadUpdateAsync(F, 0, "B", [1, 2, 3]);
        Host.Clock.Now += TimeSpan.FromHours(2); // round_seconds is one hour
        AssertRefused(await Host.TicketAsync(F, "A", keyA), HttpStatusCode.Conflict, "not_open", "passed its deadline");

        var outcome = (await Host.TickOutcomesAsync()).Single()!;
        Assert.Equal("round_opened", outcome["action"]!.GetValue<string>());
        Assert.Equal(1, outcome["round"]!.GetValue<int>());
        var ticket = await Host.TicketAsync(F, "A", keyA);
        Assert.Equal(HttpStatusCode.OK, ticket.Status);
        Assert.Equal(1, ticket.Json!["round"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, (await Host.TicketAsync(F, "B", keyB)).Status);
    }

    [Fact]
    public async Task The_closed_last_round_of_a_completed_federation_is_409()
    {
        var (keyA, keyB) = await Fixtures.OpenRoundZeroAsync(Host, rounds: 1);
        await Host.UploadUpdateAsync(F, 0, "A", [1, 2, 3]);
        await Host.UploadUpdateAsync(F, 0, "B", [3, 2, 1]);
        Assert.Equal("completed", (await Host.TickOutcomesAsync()).Single()!["action"]!.GetValue<string>());
        AssertRefused(await Host.TicketAsync(F, "A", keyA), HttpStatusCode.Conflict, "not_open", "round 0 of federation 'sepsis' is closed");
        AssertRefused(await Host.TicketAsync(F, "B", keyB), HttpStatusCode.Conflict, "not_open", "is closed");
    }

    [Fact]
    public async Task No_open_round_yet_statistics_not_collected_and_a_site_registered_after_the_round_opened_are_409()
    {
        await Host.CreateFederationAsync(Fixtures.Settings());
        string keyA = await Host.RegisterAsync(F, "A");
        await Host.RegisterAsync(F, "B");
        AssertRefused(await Host.TicketAsync(F, "A", keyA), HttpStatusCode.Conflict, "not_open", "has no open round yet");
        AssertRefused(await Host.TicketAsync(F, "A", keyA, kind: "statistics"), HttpStatusCode.Conflict, "not_open", "does not collect statistics");

        await Host.TickOutcomesAsync();
        string keyC = await Host.RegisterAsync(F, "C");
        AssertRefused(await Host.TicketAsync(F, "C", keyC), HttpStatusCode.Conflict, "not_open", "does not expect site 'C'");
    }

    [Fact]
    public async Task Statistics_already_merged_are_409()
    {
        await Host.CreateFederationAsync(Fixtures.Settings(statistics: true));
        string keyA = await Host.RegisterAsync(F, "A");
        await Host.Local.PutFederatedStatisticsAsync(F, Statistics.Merged());
        AssertRefused(await Host.TicketAsync(F, "A", keyA, kind: "statistics"), HttpStatusCode.Conflict, "not_open", "already merged");
    }

    [Fact]
    public async Task A_store_that_cannot_issue_tickets_is_501_after_authentication()
    {
        using var host = new HandlerHost(ticketing: false);
        await host.CreateFederationAsync(Fixtures.Settings());
        string key = await host.RegisterAsync(F, "A");
        AssertRefused(await host.TicketAsync(F, "A", key + "x"), HttpStatusCode.Unauthorized, "unauthorized", "not an active site");
        AssertRefused(await host.TicketAsync(F, "A", key), (HttpStatusCode)501, "not_supported", "cannot issue upload tickets");
    }

    [Fact]
    public async Task Refusals_never_log_the_key()
    {
        var (keyA, _) = await Fixtures.OpenRoundZeroAsync(Host);
        var answers = new List<Answer>
        {
            await Host.TicketAsync(F, "A", keyA + "x"),
            await Host.TicketAsync(F, "Z", keyA),
            await Host.TicketAsync(F, "A", keyA, kind: "statistics"),
        };
        var logs = Host.AllLogs(answers);
        Assert.Contains(logs, l => l.Contains("UploadTicket: 401 refused: unauthorized", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Contains("UploadTicket: 409 refused: not_open", StringComparison.Ordinal));
        Assert.DoesNotContain(logs, l => l.Contains(keyA, StringComparison.Ordinal));
    }
}

internal static class Statistics
{
    /// <summary>A merged statistics set of one site and one column (its content does not matter to the tickets).</summary>
    public static ClinicalFed.Statistics.StatisticsSet Merged() =>
        ClinicalFed.Statistics.StatisticsSet.Merge([ClinicalFed.Statistics.StatisticsSet.Compute("A", "sepsis-hourly", "1.0.0", ["hr"], [new(0, 300, 30)], [80, 90, float.NaN], 1)]);
}
