using System.Net;
using System.Text.Json.Nodes;
using ClinicalFed.Storage;

namespace ClinicalFed.Functions.Tests;

/// <summary>The timer: ticks that overlap, repeat, or find nothing to do.</summary>
public sealed class AggregateRoundTests : HandlerTest
{
    private static string Action(JsonNode outcome) => outcome["action"]!.GetValue<string>();

    [Fact]
    public async Task Two_timer_invocations_at_once_aggregate_the_round_exactly_once()
    {
        await Fixtures.OpenRoundZeroAsync(Host);
        await Host.UploadUpdateAsync(F, 0, "A", [1, 2, 3], examples: 1);
        await Host.UploadUpdateAsync(F, 0, "B", [3, 4, 5], examples: 3);
        var store = Host.Store!;
        store.HoldNextLease(); // the first invocation keeps the lease until the second has tried to take it

        var answers = await Task.WhenAll(Host.TickAsync(), Host.TickAsync());

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.Status));
        var outcomes = answers.Select(a => Assert.Single(a.Json!["ReturnValue"]!.AsArray())!).ToList();
        var worked = Assert.Single(outcomes, o => Action(o) == "round_opened");
        Assert.Equal(1, worked["round"]!.GetValue<int>());
        Assert.Contains("round 0", worked["message"]!.GetValue<string>());
        var other = Assert.Single(outcomes, o => !ReferenceEquals(o, worked));
        Assert.Contains(Action(other), new[] { "busy", "waiting" });
        if (Action(other) == "busy") Assert.Contains("lease", other["message"]!.GetValue<string>());
        Assert.True(store.LeaseAttempts >= 2);

        // Exactly once: one write of the result, of the global model and of round 1's manifest.
        Assert.Equal(1, store.WritesEndingWith("rounds/00000/" + StoreLayout.ResultFileName));
        Assert.Equal(1, store.WritesEndingWith("rounds/00000/" + StoreLayout.GlobalModelFileName));
        Assert.Equal(1, store.WritesEndingWith("rounds/00001/" + StoreLayout.ManifestFileName));
        var global = (await Host.Local.GetGlobalModelAsync(F, 0))!;
        Assert.Equal([2.5f, 3.5f, 4.5f], global.Parameters.ToArray()); // (1·A + 3·B) / 4

        // The busy (or idle) invocation says so in its logs.
        var logs = answers.SelectMany(a => a.Json!["Logs"]!.AsArray().Select(l => l!.GetValue<string>())).ToList();
        Assert.Contains(logs, l => l.Contains($"federation '{F}': round_opened (round 1)", StringComparison.Ordinal));
        Assert.Contains(logs, l => l.Contains($"federation '{F}': busy", StringComparison.Ordinal) || l.Contains($"federation '{F}': waiting", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_repeated_tick_is_a_no_op_and_a_due_round_closes_on_the_next_tick()
    {
        await Fixtures.OpenRoundZeroAsync(Host);
        await Host.UploadUpdateAsync(F, 0, "A", [1, 2, 3]);

        var waiting = (await Host.TickOutcomesAsync()).Single()!;
        Assert.Equal("waiting", Action(waiting));
        Assert.Equal(0, waiting["round"]!.GetValue<int>());
        Assert.Equal(0, Host.Store!.WritesEndingWith(StoreLayout.ResultFileName));

        Host.Clock.Now += TimeSpan.FromHours(1); // the deadline: round_seconds is one hour
        var closed = (await Host.TickOutcomesAsync()).Single()!;
        Assert.Equal("round_opened", Action(closed));
        var result = (await Host.Local.GetRoundResultAsync(F, 0))!;
        Assert.Equal("quorum_not_met", result.Status); // one update for a quorum of two
        Assert.Equal(["B"], result.Missing);

        Assert.Equal("waiting", Action((await Host.TickOutcomesAsync()).Single()!));
        Assert.Equal(1, Host.Store.WritesEndingWith("rounds/00000/" + StoreLayout.ResultFileName));
    }

    [Fact]
    public async Task Every_federation_gets_its_own_outcome_and_an_error_in_one_does_not_stop_the_others()
    {
        await Host.CreateFederationAsync(Fixtures.Settings("alpha"));
        await Host.CreateFederationAsync(Fixtures.Settings("beta", quorum: 1));
        await Host.CreateFederationAsync(Fixtures.Settings("gamma"));
        await Host.RegisterAsync("beta", "A");
        File.WriteAllText(Path.Combine(Host.Folder, "federations", "gamma", "federation.json"), "{ damaged");

        var outcomes = (await Host.TickOutcomesAsync()).ToDictionary(o => o!["federation"]!.GetValue<string>(), o => o!);
        Assert.Equal(["alpha", "beta", "gamma"], outcomes.Keys.Order());
        Assert.Equal("error", Action(outcomes["alpha"])); // no active site yet for a quorum of two: round 0 cannot open
        Assert.Contains("cannot open: only 0 active site(s) for a quorum of 2", outcomes["alpha"]["message"]!.GetValue<string>());
        Assert.Equal("round_opened", Action(outcomes["beta"]));
        Assert.Equal("error", Action(outcomes["gamma"]));
        Assert.Contains("federation.json", outcomes["gamma"]["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Statistics_are_merged_only_once_the_quorum_has_registered_and_sent_them()
    {
        await Host.CreateFederationAsync(Fixtures.Settings(statistics: true, quorum: 2));
        await Host.RegisterAsync(F, "A");
        await Host.Local.PutSiteStatisticsAsync(F, "A", SiteStatistics("A"));
        var waiting = (await Host.TickOutcomesAsync()).Single()!;
        Assert.Equal("waiting", Action(waiting));
        Assert.Contains("statistics from 1 of 1 active site(s) (quorum 2)", waiting["message"]!.GetValue<string>());
        Assert.Null(await Host.Local.GetFederatedStatisticsAsync(F));

        await Host.RegisterAsync(F, "B");
        await Host.Local.PutSiteStatisticsAsync(F, "B", SiteStatistics("B"));
        var opened = (await Host.TickOutcomesAsync()).Single()!;
        Assert.Equal("round_opened", Action(opened));
        Assert.Contains("merged the statistics of 2 site(s)", opened["message"]!.GetValue<string>());
        Assert.Equal(["A", "B"], (await Host.Local.GetFederatedStatisticsAsync(F))!.Sites);
    }

    private static ClinicalFed.Statistics.StatisticsSet SiteStatistics(string site) =>
        ClinicalFed.Statistics.StatisticsSet.Compute(site, "sepsis-hourly", "1.0.0", ["hr"], [new(0, 300, 30)], [80, 90, float.NaN], 1);

    [Fact]
    public async Task A_store_failure_fails_the_invocation_with_a_redacted_log_line()
    {
        await Host.CreateFederationAsync(Fixtures.Settings());
        Host.Store!.FailListing = true;

        var answer = await Host.TickAsync();

        Assert.Equal(HttpStatusCode.InternalServerError, answer.Status);
        string line = Assert.Single(answer.Json!["Logs"]!.AsArray())!.GetValue<string>();
        Assert.Contains("the tick failed: IOException: listing federations failed (simulated) at https://teststore.blob.core.windows.net/federation?[redacted]", line);
        Assert.Null(answer.Json["ReturnValue"]);
        Assert.DoesNotContain(Host.AllLogs([answer]), l => l.Contains(TicketingStore.Signature, StringComparison.Ordinal));
    }
}
