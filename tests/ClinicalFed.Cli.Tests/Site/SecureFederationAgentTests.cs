using System.Collections.Concurrent;
using System.Text;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Cli.Site;
using ClinicalFed.Federation;
using ClinicalFed.Storage;
using Xunit.Abstractions;

namespace ClinicalFed.Cli.Tests.Site;

/// <summary>
/// <c>site run</c> with secure aggregation: three agents and the ticking coordinator go through keys, shares, masked
/// uploads and reveals in every round. No plain update is ever stored, the global models equal those of the same
/// federation without masking within the fixed-point error, each site still gets its personalized model (made
/// locally), and nothing the sites send — keys, sealed shares, masked vectors, reveals, logs — holds a patient
/// identifier or date.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class SecureFederationAgentTests(ThreeSitesFixture data, ITestOutputHelper output) : IClassFixture<ThreeSitesFixture>
{
    [Fact]
    public async Task Agents_run_secure_rounds_that_equal_plain_rounds_and_send_no_patient_data()
    {
        using var tmp = new TempDir();
        var plainStore = new LocalFolderStore(tmp["plain/store"]);
        var plain = new AgentFederation(plainStore, "study", "sepsis", data.Sources, tmp["plain"]) { Rounds = 2 };
        await plain.RunAsync();

        var secureStore = new LocalFolderStore(tmp["secure/store"]);
        var secure = new AgentFederation(secureStore, "study", "sepsis", data.Sources, tmp["secure"]) { Rounds = 2, SecureAggregation = true };
        var uploads = new ConcurrentQueue<(string Site, string What, byte[] Bytes)>();
        var logs = new ConcurrentQueue<(string Site, string Line)>();
        var reports = await secure.RunAsync(
            uploader: site => new RecordingUploader(site, new DirectStoreUploader(secureStore), uploads),
            log: (site, line) => logs.Enqueue((site, line)));

        foreach (int round in new[] { 0, 1 })
        {
            Assert.Empty(await secureStore.ListUpdatesAsync("study", round)); // the aggregator never held a plain update
            var result = (await secureStore.GetRoundResultAsync("study", round))!;
            Assert.Equal(RoundStatuses.Aggregated, result.Status);
            Assert.Equal(data.Sources.Select(s => s.Name).Order(StringComparer.Ordinal), result.Accepted.Select(a => a.Site));
            var expected = (await plainStore.GetGlobalModelAsync("study", round))!.Parameters.ToArray();
            var actual = (await secureStore.GetGlobalModelAsync("study", round))!.Parameters.ToArray();
            double worst = 0;
            for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]) / Math.Max(1, Math.Abs(expected[i])));
            output.WriteLine($"round {round}: max relative |secure − plain| = {worst:E2}");
            Assert.True(worst <= 1e-4, $"round {round}: {worst}");
        }

        Assert.All(reports, r =>
        {
            Assert.Equal([0, 1], r.RoundsTrained);
            Assert.NotNull(r.Auroc.GetValueOrDefault("global"));
            Assert.NotNull(r.Auroc.GetValueOrDefault("personalized"));
            Assert.Empty(r.Uploads); // masked vectors only: no update of this site is in the store
            // The site made its personalized model itself and left it in its work folder, ready to serve.
            string file = Path.Combine(secure.WorkDirectory(r.Site), SiteAgent.PersonalizedModelFileName);
            var served = Serving.ScoringModel.Load(Path.Combine(tmp["secure/store"], "federations", "study", "rounds", "00001"), null, file);
            Assert.Equal((ModelKinds.Logistic, "study", 1, r.Site), (served.Kind, served.Header.Federation, served.Header.Round, served.Header.Site));
            Assert.Equal(file, served.Source);
        });
        // Every phase went through the site's uploader, once per round and site.
        foreach (var kind in new[] { "secagg-key", "secagg-shares", "secagg-masked", "secagg-unmask" })
            Assert.Equal(data.Sources.Count * 2, uploads.Count(u => u.What.StartsWith(kind, StringComparison.Ordinal)));

        var secrets = new PatientSecrets();
        foreach (var s in data.Sources)
        {
            secrets.AddIdentifiersFromCsv(s.Path, "patient_id");
            secrets.AddFromCdm(Path.Combine(secure.WorkDirectory(s.Name), "cdm"));
        }

        var leaks = uploads.SelectMany(u => secrets.Find(Encoding.Latin1.GetString(u.Bytes)).Select(hit => $"{u.Site} {u.What}: '{hit}'"))
            .Concat(logs.SelectMany(l => secrets.Find(l.Line).Select(hit => $"{l.Site} log '{l.Line}': '{hit}'"))).ToList();
        Assert.True(leaks.Count == 0, "patient data left a site:\n" + string.Join("\n", leaks.Take(20)));
        // The round secrets were kept in the work folder only until the site revealed.
        Assert.All(data.Sources, s => Assert.Empty(Directory.EnumerateFiles(Path.Combine(secure.WorkDirectory(s.Name), "secagg"), "*-round-*.json")));
    }

    [Fact]
    public async Task An_agent_stopped_after_publishing_its_key_resumes_with_the_same_key()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var sources = data.Sources.Take(2).ToList();
        var coordinator = new Storage.Coordination.FederationCoordinator(store);
        await coordinator.CreateFederationAsync(new FederationSetup { Federation = "resume", Task = "sepsis", Rounds = 1, Quorum = 2 }
            .ToConfig(DateTimeOffset.UtcNow) with { SecureAggregation = new SecureAggregationConfig() });
        foreach (var src in sources)
        {
            using var key = Privacy.Signing.SigningKeys.LoadOrCreatePrivateKey(Path.Combine(tmp["sites"], src.Name, Privacy.Signing.SigningKeys.PrivateKeyFileName), out _);
            await coordinator.RegisterSiteAsync("resume", src.Name, Privacy.Signing.SigningKeys.PublicKeyPem(key));
        }

        SiteAgent Agent(SiteSource src, Action<string> log) => new(new SiteAgentOptions
        {
            Federation = "resume", Site = src.Name, Task = "sepsis", Source = src, WorkDirectory = Path.Combine(tmp["sites"], src.Name),
            PollInterval = TimeSpan.FromMilliseconds(20), IdleTimeout = TimeSpan.FromMinutes(4),
        }, store, new DirectStoreUploader(store), log);

        using var stop = new CancellationTokenSource();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        using var both = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, limit.Token);
        var first = Task.Run(() => Agent(sources[0], line => { if (line.Contains("published this round's secure-aggregation key", StringComparison.Ordinal)) stop.Cancel(); }).RunAsync(both.Token));
        var other = Task.Run(() => Agent(sources[1], _ => { }).RunAsync(limit.Token));
        while (!first.IsCompleted)
        {
            await coordinator.TickAsync("resume", limit.Token);
            await Task.Delay(20);
        }

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        var published = (await new Storage.SecureAggregation.SecAggStore(store, "resume", 0).GetKeysAsync((await new Storage.SecureAggregation.SecAggStore(store, "resume", 0).GetSetupAsync())!))
            .Single(k => k.Site == sources[0].Name).PublicKey;
        var resumed = Task.Run(() => Agent(sources[0], _ => { }).RunAsync(limit.Token));
        while (!resumed.IsCompleted || !other.IsCompleted)
        {
            await coordinator.TickAsync("resume", limit.Token);
            await Task.Delay(20);
        }

        var report = await resumed;
        Assert.Equal([0], report.RoundsTrained);
        var result = (await store.GetRoundResultAsync("resume", 0))!;
        Assert.Equal(RoundStatuses.Aggregated, result.Status); // unmasking worked: the resumed agent masked with the key it had published
        Assert.Equal(2, result.Accepted.Count);
        Assert.Equal(published, (await new Storage.SecureAggregation.SecAggStore(store, "resume", 0).GetKeysAsync((await new Storage.SecureAggregation.SecAggStore(store, "resume", 0).GetSetupAsync())!))
            .Single(k => k.Site == sources[0].Name).PublicKey);
    }

    [Fact]
    public async Task Agents_add_distributed_site_level_dp_noise_before_masking()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var logs = new ConcurrentQueue<(string Site, string Line)>();
        var federation = new AgentFederation(store, "dp-secure", "sepsis", data.Sources, tmp.Path)
        {
            Rounds = 2, SecureAggregation = true,
            SiteLevelDp = new SiteLevelDpConfig { ClipNorm = 5, NoiseMultiplier = 0.5, Mode = Privacy.SiteDpModes.Client },
        };
        var reports = await federation.RunAsync(log: (site, line) => logs.Enqueue((site, line)));
        Assert.All(reports, r => Assert.Equal([0, 1], r.RoundsTrained));
        Assert.Equal(data.Sources.Count * 2, logs.Count(l => l.Line.Contains("added distributed site-level DP noise", StringComparison.Ordinal)));
        var notes = (await store.GetRoundResultAsync("dp-secure", 1))!.Notes;
        Assert.Contains(notes, n => n.Contains("distributed noise", StringComparison.Ordinal) && n.Contains("after 2 round(s)", StringComparison.Ordinal));
        Assert.Empty(await store.ListUpdatesAsync("dp-secure", 1));
    }
}
