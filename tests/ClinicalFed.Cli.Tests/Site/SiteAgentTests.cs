using System.Collections.Concurrent;
using ClinicalFed.Cli.Demo;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Cli.Site;
using ClinicalFed.Federation;
using ClinicalFed.Storage;
using ClinicalFed.Storage.Coordination;

namespace ClinicalFed.Cli.Tests.Site;

/// <summary>Three generated sites, once for the class (300 patients each: a few seconds).</summary>
public sealed class ThreeSitesFixture : IDisposable
{
    public ThreeSitesFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "cf-agent-data-" + Guid.NewGuid().ToString("N")[..8]);
        var profiles = SyntheticIcuGenerator.DefaultSites(300).Take(3).ToList();
        Sources = profiles.Select((p, i) =>
        {
            var path = Path.Combine(Directory, p.Name + ".csv.gz");
            SyntheticIcuGenerator.Generate(p, 77 + i, path);
            return new SiteSource(p.Name, path, null);
        }).ToList();
    }

    public string Directory { get; }
    public IReadOnlyList<SiteSource> Sources { get; }

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}

[Collection(CliCollection.Name)]
public sealed class SiteAgentTests(ThreeSitesFixture data) : IClassFixture<ThreeSitesFixture>
{
    private const string Fed = "sepsis-study";

    /// <summary>
    /// Three site agents, a coordinator ticking like the timer function, one local folder store: the federation runs
    /// through statistics and three rounds, and its final global model is the one <c>simulate</c> produces with the
    /// same seeds and settings.
    /// </summary>
    [Fact]
    public async Task Agents_and_coordinator_reproduce_simulate()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var logs = new ConcurrentQueue<string>();
        var reports = await FederationHarness.RunAsync(store, data.Sources, tmp.Path, rounds: 3, log: logs.Enqueue);

        var sim = SimulationRunner.Run(new SimulationOptions
        {
            Task = "sepsis", Sites = data.Sources, Rounds = 3, OutputDirectory = tmp["sim"], BaselineEpochs = 1,
        });
        var simStore = new LocalFolderStore(Path.Combine(tmp["sim"], "store"));
        var expected = (await simStore.GetGlobalModelAsync(SimulationRunner.Federation, 2))!;
        var actual = (await store.GetGlobalModelAsync(Fed, 2))!;
        Assert.Equal(expected.Parameters.Length, actual.Parameters.Length);
        float maxDiff = 0;
        for (int i = 0; i < expected.Parameters.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(expected.Parameters[i] - actual.Parameters[i]));
        Assert.True(maxDiff <= 1e-5f, $"max |Δ| = {maxDiff}");

        // Every site trained every round, got a personalized model, and evaluated on its own test split.
        foreach (var r in reports)
        {
            Assert.Equal([0, 1, 2], r.RoundsTrained);
            Assert.NotNull(r.Auroc["global"]);
            Assert.NotNull(r.Auroc["personalized"]);
            Assert.NotNull(await store.GetPersonalizedModelAsync(Fed, 2, r.Site));
            Assert.Equal([0, 1, 2], r.AurocPerRound.Select(x => x.Round));
            Assert.Equal([(0, "float32"), (1, "float32"), (2, "float32")], r.Uploads.Select(u => (u.Round, u.PayloadEncoding)));
            Assert.All(r.Uploads, u => Assert.Equal(u.Float32Bytes, u.PayloadBytes));
            FederationHarness.AssertSiteReport(Path.Combine(tmp.Path, "sites", r.Site), r);
        }
        var simSite = sim.Sites.Single(s => s.Name == data.Sources[0].Name);
        Assert.Equal(simSite.Auroc.Federated!.Value, reports.Single(r => r.Site == simSite.Name).Auroc["global"]!.Value, 4);

        // Logs hold no patient identifiers.
        var patientIds = SyntheticIcuGenerator.DefaultSites(300).Take(3).SelectMany(p => new[] { SyntheticIcuGenerator.PatientId(p, 1), SyntheticIcuGenerator.PatientId(p, 2) });
        Assert.NotEmpty(logs);
        Assert.DoesNotContain(logs, line => patientIds.Any(id => line.Contains(id, StringComparison.Ordinal)));
    }

    /// <summary>
    /// With <c>client_compress</c> topk:0.1 the agents upload compressed deltas (8-bit warm-up, top-k with error feedback
    /// and refit, 4-bit last round), keep the top-k remainder in their work folders, and the federation's global model
    /// is the one <c>simulate --compress topk:0.1</c> produces.
    /// </summary>
    [Fact]
    public async Task Agents_with_compressed_updates_reproduce_simulate()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var logs = new ConcurrentQueue<string>();
        var reports = await FederationHarness.RunAsync(store, data.Sources, tmp.Path, rounds: 3, log: logs.Enqueue,
            configure: s => s with { Client = s.Client with { Compress = "topk:0.1" } });

        SimulationRunner.Run(new SimulationOptions
        {
            Task = "sepsis", Sites = data.Sources, Rounds = 3, OutputDirectory = tmp["sim"], BaselineEpochs = 1, Compress = "topk:0.1", Contribution = "off",
        });
        var expected = (await new LocalFolderStore(Path.Combine(tmp["sim"], "store")).GetGlobalModelAsync(SimulationRunner.Federation, 2))!;
        var actual = (await store.GetGlobalModelAsync(Fed, 2))!;
        float maxDiff = 0;
        for (int i = 0; i < expected.Parameters.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(expected.Parameters[i] - actual.Parameters[i]));
        Assert.True(maxDiff <= 1e-5f, $"max |Δ| = {maxDiff}");

        string[] encodings = ["int8", "topk", "int4"];
        foreach (var r in reports)
        {
            Assert.Equal([0, 1, 2], r.RoundsTrained);
            for (int round = 0; round < 3; round++)
            {
                await using var update = (await store.OpenUpdateAsync(Fed, round, r.Site))!;
                var header = ClinicalFed.Federation.UpdateFile.ReadHeader(update);
                Assert.Equal((encodings[round], ParameterKinds.Delta), (header.PayloadEncoding, header.ParameterKind));
                Assert.True(header.PayloadBytes < 4L * header.Dimension * (round == 0 ? 0.3 : 0.2), $"{r.Site} round {round}: {header.PayloadBytes} bytes");
            }

            // The site report says what left the site, round by round.
            Assert.Equal(encodings, r.Uploads.Select(u => u.PayloadEncoding));
            Assert.All(r.Uploads.Skip(1), u => Assert.True(u.PayloadBytes < 0.2 * u.Float32Bytes!.Value, $"round {u.Round}: {u.PayloadBytes} of {u.Float32Bytes}"));
            FederationHarness.AssertSiteReport(Path.Combine(tmp.Path, "sites", r.Site), r);
            Assert.Contains("What left the site: 3 update(s)", File.ReadAllText(Path.Combine(tmp.Path, "sites", r.Site, "site-report.html")), StringComparison.Ordinal);

            var remainder = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.Path, "sites", r.Site, Fed + "-compression-remainder.json"))).RootElement;
            Assert.Equal((r.Site, 2), (remainder.GetProperty("site").GetString(), remainder.GetProperty("round").GetInt32()));
            Assert.Equal(actual.Parameters.Length, remainder.GetProperty("remainder").GetArrayLength());
        }
        Assert.Contains(logs, l => l.Contains("uploaded its delta as topk", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_damaged_compression_remainder_stops_the_agent_naming_the_file_before_it_uploads()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var coordinator = new FederationCoordinator(store);
        await coordinator.CreateFederationAsync(new FederationSetup { Federation = Fed, Task = "sepsis", Rounds = 1, Quorum = 1, Client = new() { Compress = "topk:0.1" } }.ToConfig(DateTimeOffset.UtcNow));
        await coordinator.RegisterSiteAsync(Fed, "solo");
        var options = FederationHarness.Options(data.Sources[0], "solo", tmp.Path);
        string remainder = Path.Combine(options.WorkDirectory, Fed + "-compression-remainder.json");
        Directory.CreateDirectory(options.WorkDirectory);
        File.WriteAllText(remainder, """{"format_version": 1, "federation": "sepsis-study", "site": "other", "round": 0, "remainder": [0]}""");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var agent = Task.Run(() => new SiteAgent(options, store, new DirectStoreUploader(store)).RunAsync(cts.Token));
        while (!agent.IsCompleted)
        {
            await coordinator.TickAsync(Fed);
            await Task.WhenAny(agent, Task.Delay(20));
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => agent);
        Assert.Contains(remainder, error.Message, StringComparison.Ordinal);
        Assert.Contains("site 'other''s", error.Message, StringComparison.Ordinal);
        Assert.Empty(await store.ListUpdatesAsync(Fed, 0));
    }

    [Fact]
    public async Task An_agent_restarted_after_uploading_does_not_upload_twice()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var coordinator = new FederationCoordinator(store);
        await coordinator.CreateFederationAsync(new FederationSetup { Federation = Fed, Task = "sepsis", Rounds = 1, Quorum = 1 }.ToConfig(DateTimeOffset.UtcNow));
        await coordinator.RegisterSiteAsync(Fed, "solo");
        var options = FederationHarness.Options(data.Sources[0], "solo", tmp.Path);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        // First run: uploads statistics, then (after the merge) its round-0 update, then we "crash" it.
        var first = Task.Run(() => new SiteAgent(options, store, new DirectStoreUploader(store)).RunAsync(cts.Token));
        while ((await coordinator.TickAsync(Fed)).Action != "round_opened") await Task.Delay(20);
        while ((await store.ListUpdatesAsync(Fed, 0)).Count == 0) await Task.Delay(20);
        // The update is in; a restarted agent (same work folder) must recognize it and wait, not upload again.
        var logs = new ConcurrentQueue<string>();
        var second = Task.Run(() => new SiteAgent(options, store, new DirectStoreUploader(store), logs.Enqueue).RunAsync(cts.Token));
        await Task.Delay(300);
        var tick = await coordinator.TickAsync(Fed);
        Assert.Equal("completed", tick.Action);
        var a = await first;
        var b = await second;
        Assert.Equal([0], a.RoundsTrained);
        Assert.Empty(b.RoundsTrained);
        Assert.Contains(logs, l => l.Contains("reusing the feature table", StringComparison.Ordinal));
        Assert.Single((await store.GetRoundResultAsync(Fed, 0))!.Accepted);
    }
}

/// <summary>Runs a whole federation in-process: a coordinator ticking like the timer function and one agent per site.</summary>
internal static class FederationHarness
{
    /// <summary>
    /// The agent's <c>site-report.json</c> in <paramref name="workDirectory"/> matches schemas/site-report.schema.json and
    /// the report it returned, its learning curve ends at the final global AUROC, and <c>site-report.html</c> draws it.
    /// </summary>
    public static void AssertSiteReport(string workDirectory, SiteAgentReport report)
    {
        var json = File.ReadAllText(Path.Combine(workDirectory, "site-report.json"));
        var errors = ClinicalFed.Testing.MiniJsonSchema.Load(Cli.SchemaPath("site-report.schema.json")).Validate(json);
        Assert.True(errors.Count == 0, string.Join("\n", errors.Take(20)));
        Assert.Equal(report.Auroc["global"], report.AurocPerRound[^1].Auroc);
        Assert.Equal(report.FinalRound, report.AurocPerRound[^1].Round);
        Assert.Equal(["global", "personalized"], report.Roc.Keys.Order(StringComparer.Ordinal));
        var html = File.ReadAllText(Path.Combine(workDirectory, "site-report.html"));
        Assert.Contains("test AUROC after each round", html);
        Assert.Equal(3, html.Split("<svg").Length - 1); // learning curve, ROC, calibration
    }

    public static SiteAgentOptions Options(SiteSource source, string site, string root) => new()
    {
        Federation = "sepsis-study", Site = site, Task = "sepsis", Source = source, WorkDirectory = Path.Combine(root, "sites", site),
        PollInterval = TimeSpan.FromMilliseconds(20), IdleTimeout = TimeSpan.FromSeconds(120),
    };

    public static async Task<IReadOnlyList<SiteAgentReport>> RunAsync(IFederationStore store, IReadOnlyList<SiteSource> sources, string root, int rounds,
        Action<string>? log = null, Func<IFederationStore, ISiteUploader>? uploader = null, Func<Task>? tick = null, Func<FederationSetup, FederationSetup>? configure = null)
    {
        var coordinator = new FederationCoordinator(store);
        var setup = new FederationSetup { Federation = "sepsis-study", Task = "sepsis", Rounds = rounds, Quorum = sources.Count };
        await coordinator.CreateFederationAsync((configure?.Invoke(setup) ?? setup).ToConfig(DateTimeOffset.UtcNow));
        foreach (var s in sources) await coordinator.RegisterSiteAsync("sepsis-study", s.Name);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var agents = sources.Select(s => Task.Run(() =>
            new SiteAgent(Options(s, s.Name, root), store, (uploader ?? (st => new DirectStoreUploader(st)))(store), line => log?.Invoke($"{s.Name}: {line}")).RunAsync(cts.Token))).ToList();
        tick ??= async () => await coordinator.TickAsync(cts.Token);
        while (!agents.All(a => a.IsCompleted))
        {
            await tick();
            await Task.WhenAny(Task.WhenAll(agents), Task.Delay(50));
        }
        return await Task.WhenAll(agents);
    }
}
