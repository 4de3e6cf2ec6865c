using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Cli.Site;
using ClinicalFed.Federation;
using ClinicalFed.Functions;
using ClinicalFed.Storage;
using ClinicalFed.Storage.Azure;
using ClinicalFed.Testing;
using Hl7.Fhir.Serialization;
using Microsoft.AspNetCore.Mvc.Testing;
using Xunit.Abstractions;

namespace ClinicalFed.EndToEnd.Tests;

/// <summary>
/// The serverless path end to end on real data: the Functions custom handler in process over Azurite, administration
/// through its HTTP functions, three site agents (Diabetes 130 ER, REF, OTH from ../shared/data) that read the
/// store and upload only through upload tickets (SAS URLs), and the timer function driving statistics and three
/// rounds. The final global model must equal, within 1e-5, the one <c>clinicalfed simulate</c> produces with the
/// same seeds and settings.
/// </summary>
[Collection(AzuriteCollection.Name)]
[Trait("Category", "RealData")]
public sealed class ServerlessFederationTests(AzuriteFixture azurite, ITestOutputHelper output)
{
    private const string Fed = "readmission-study";
    private const int Rounds = 3;

    [Theory]
    [InlineData(false, null)]
    [InlineData(true, null)]
    [InlineData(false, "topk:0.1")]
    public async Task Three_agents_over_azurite_reproduce_simulate(bool secureAggregation, string? compress)
    {
        var data = SharedData.Find("diabetes130/diabetic_data.csv.gz", output.WriteLine);
        if (data is null) return;
        var root = Directory.CreateTempSubdirectory("cf-e2e-").FullName;
        try
        {
            string container = AzuriteFixture.NewContainerName("e2e");
            // The deployment (functions/deploy/main.bicep) creates the container; here the test does.
            var readStore = new BlobFederationStore(azurite.ConnectionString, container);
            await readStore.EnsureContainerAsync();
            using var factory = Handler(container);
            using var http = factory.CreateClient();
            var sites = new[] { "ER", "REF", "OTH" }.Select(s => new SiteSource(s, data, s)).ToList();

            // Administration through the HTTP functions: the federation document, then the sites' keys.
            var setup = new FederationSetup { Federation = Fed, Task = "readmission", Rounds = Rounds, Quorum = 3, RoundSeconds = 3600, Client = new() { Compress = compress } };
            var config = setup.ToConfig(DateTimeOffset.UtcNow) with { SecureAggregation = secureAggregation ? new SecureAggregationConfig() : null };
            var logs = new ConcurrentQueue<string>();
            var (keys, reports) = await RunFederationAsync(factory, http, readStore, config, sites, root, logs);

            // The same federation, simulated in one process.
            var sim = SimulationRunner.Run(new SimulationOptions
            {
                Task = "readmission", Sites = sites, Rounds = Rounds, OutputDirectory = Path.Combine(root, "sim"), BaselineEpochs = 1,
                Compress = compress, Contribution = compress is null ? null : "off",
            });
            var expected = (await new LocalFolderStore(Path.Combine(root, "sim", "store")).GetGlobalModelAsync(SimulationRunner.Federation, Rounds - 1))!;
            var actual = (await readStore.GetGlobalModelAsync(Fed, Rounds - 1))!;
            Assert.Equal(expected.Parameters.Length, actual.Parameters.Length);
            float maxDiff = 0;
            for (int i = 0; i < expected.Parameters.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(expected.Parameters[i] - actual.Parameters[i]));
            output.WriteLine($"max |global(serverless{(secureAggregation ? ", secure" : "")}{(compress is null ? "" : ", " + compress)}) - global(simulate)| = {maxDiff:E2}");
            // Secure aggregation sums in fixed point: equal within its error (store-layout.md), not bit for bit.
            Assert.True(maxDiff <= (secureAggregation ? 1e-4f : 1e-5f), $"max |Δ| = {maxDiff}");
            if (secureAggregation)
                for (int r = 0; r < Rounds; r++) Assert.Empty(await readStore.ListUpdatesAsync(Fed, r)); // only masked vectors were ever stored
            if (compress is not null)
            {
                // What went through the tickets: an 8-bit warm-up, top-k, a 4-bit last round, each a signed delta.
                string[] encodings = ["int8", "topk", "int4"];
                for (int r = 0; r < Rounds; r++)
                    foreach (var site in sites)
                    {
                        await using var update = (await readStore.OpenUpdateAsync(Fed, r, site.Name))!;
                        var header = UpdateFile.ReadHeader(update);
                        Assert.Equal((encodings[r], ParameterKinds.Delta, true), (header.PayloadEncoding, header.ParameterKind, header.Signature is not null));
                    }
            }

            foreach (var r in reports)
            {
                Assert.Equal(Enumerable.Range(0, Rounds), r.RoundsTrained);
                // With secure aggregation each site personalizes locally (the aggregator never sees its model).
                if (!secureAggregation) Assert.NotNull(await readStore.GetPersonalizedModelAsync(Fed, Rounds - 1, r.Site));
                else Assert.NotNull(r.Auroc.GetValueOrDefault("personalized"));
                var simSite = sim.Sites.Single(s => s.Name == r.Site);
                Assert.Equal(simSite.Auroc.Federated!.Value, r.Auroc["global"]!.Value, 4);
            }

            // RoundStatus reports the completed federation with every round's uploads.
            var status = JsonNode.Parse(await http.GetStringAsync($"/api/federations/{Fed}/status"))!;
            Assert.Equal("completed", status["phase"]!.GetValue<string>());
            Assert.Equal(Rounds, status["history"]!.AsArray().Count);
            Assert.All(status["history"]!.AsArray(), h => Assert.Equal(3, h!["accepted"]!.AsArray().Count));
            Assert.Empty(status["rejected"]!.AsArray());
            // What the sites sent, per round: encodings and payload bytes (compressed rounds far below float32).
            string[] expectedEncodings = secureAggregation ? ["masked", "masked", "masked"] : compress is null ? ["float32", "float32", "float32"] : ["int8", "topk", "int4"];
            var history = status["history"]!.AsArray();
            long float32Round = 3 * 4L * config.Model.Dimension;
            for (int r = 0; r < Rounds; r++)
            {
                Assert.All(history[r]!["payload_encodings"]!.AsObject(), kv => Assert.Equal(expectedEncodings[r], kv.Value!.GetValue<string>()));
                long bytes = history[r]!["payload_bytes"]!.GetValue<long>();
                if (compress is null) Assert.Equal(float32Round, bytes);
                else Assert.InRange(bytes, 1, float32Round * (r == 0 ? 0.3 : 0.2));
            }
            // No key and no SAS URL in any log line.
            Assert.DoesNotContain(logs, l => keys.Values.Any(k => l.Contains(k, StringComparison.Ordinal)) || l.Contains("sig=", StringComparison.Ordinal));

            // The readmission model at the bedside: the README's example body through $readmission-risk.
            if (!secureAggregation && compress is null) await ScoresTheReadmissionExample(Path.Combine(root, "sim", "store", "federations", SimulationRunner.Federation, "rounds", (Rounds - 1).ToString("D5")));
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Tree federations over the same serverless path: tree-cyclic on the three Diabetes 130 sites, 3 rounds. The timer
    /// gives each round to one site in registration order, each site uploads its grown ensemble through its ticket,
    /// and the final global ensemble is exactly the one grown turn by turn here from the sites' own prepared rows.
    /// </summary>
    [Fact]
    public async Task Tree_cyclic_agents_over_azurite_grow_the_expected_ensemble()
    {
        var data = SharedData.Find("diabetes130/diabetic_data.csv.gz", output.WriteLine);
        if (data is null) return;
        var root = Directory.CreateTempSubdirectory("cf-e2e-trees-").FullName;
        try
        {
            string container = AzuriteFixture.NewContainerName("e2e-trees");
            var readStore = new BlobFederationStore(azurite.ConnectionString, container);
            await readStore.EnsureContainerAsync();
            using var factory = Handler(container);
            using var http = factory.CreateClient();
            var sites = new[] { "ER", "REF", "OTH" }.Select(s => new SiteSource(s, data, s)).ToList();
            var trees = new ClinicalFed.Learning.Trees.TreeClientSettings { Trees = 5, Leaves = 15 };
            var config = new FederationSetup
            {
                Federation = "readmission-trees", Task = "readmission", Model = ModelKinds.Trees, Strategy = StrategyNames.TreeCyclic,
                Rounds = 3, Quorum = 1, RoundSeconds = 3600, Trees = trees,
            }.ToConfig(DateTimeOffset.UtcNow);
            var logs = new ConcurrentQueue<string>();
            var (_, reports) = await RunFederationAsync(factory, http, readStore, config, sites, root, logs);

            for (int r = 0; r < 3; r++)
            {
                Assert.Equal([sites[r].Name], (await readStore.GetManifestAsync(config.Federation, r))!.Sites);
                Assert.Equal([sites[r].Name], (await readStore.GetRoundResultAsync(config.Federation, r))!.Accepted.Select(a => a.Site));
            }
            var actual = (await readStore.GetGlobalModelAsync(config.Federation, 2))!.TreeEnsemble;
            var statistics = (await readStore.GetFederatedStatisticsAsync(config.Federation))!;
            var prepared = sites.Select(s => SitePreparation.Prepare(s.Name,
                ClinicalFed.Data.FeatureTableFile.Load(Path.Combine(root, "sites", s.Name, "features", ClinicalFed.Data.FeatureTableFile.FileName)), statistics)).ToArray();
            int d = prepared[0].Width;
            var expected = ClinicalFed.Learning.Trees.CyclicTreeBoosting.InitialModel(d, [(prepared[0].TrainY.Sum(y => (double)y), prepared[0].TrainRows)], prepared[0].Columns.ToArray());
            for (int r = 0; r < 3; r++)
                expected = ClinicalFed.Learning.Trees.GradientTreeBooster.Boost(expected, new ClinicalFed.Learning.FeatureMatrix(prepared[r].TrainX, d, prepared[r].TrainY), trees.Boosting(trees.Trees, trees.Seed + r, 2));
            Assert.Equal(15, actual.Trees.Count);
            Assert.Equal(ClinicalFed.Learning.Trees.TreeEnsembleMlNet.ToLightGbmModelText(expected), ClinicalFed.Learning.Trees.TreeEnsembleMlNet.ToLightGbmModelText(actual));

            foreach (var (r, i) in reports.Select((r, i) => (r, i)))
            {
                Assert.Equal([sites.FindIndex(s => s.Name == r.Site)], r.RoundsTrained);
                Assert.NotNull(r.Auroc["global"]);
                Assert.True(File.Exists(Path.Combine(root, "sites", r.Site, SiteAgent.PersonalizedModelFileName)));
                output.WriteLine($"{r.Site}: global AUROC {r.Auroc["global"]:F4}, personalized {r.Auroc["personalized"]:F4}");
            }
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The Functions custom handler in process over Azurite's <paramref name="container"/>.</summary>
    private WebApplicationFactory<Program> Handler(string container) => new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
    {
        web.UseSetting(HandlerSettings.ConnectionStringSetting, azurite.ConnectionString);
        web.UseSetting(HandlerSettings.ContainerSetting, container);
        web.UseSetting(HandlerSettings.ServiceUriSetting, "");
        web.UseSetting(HandlerSettings.FolderSetting, "");
        web.UseSetting(HandlerSettings.PrefixSetting, "");
    });

    /// <summary>
    /// Creates <paramref name="config"/> and registers the sites through the HTTP functions, runs one agent per site
    /// (reading the store, writing only through tickets) and the timer every 200 ms until every agent is done.
    /// </summary>
    private async Task<(Dictionary<string, string> Keys, SiteAgentReport[] Reports)> RunFederationAsync(WebApplicationFactory<Program> factory, HttpClient http,
        IFederationStore readStore, FederationConfig config, IReadOnlyList<SiteSource> sites, string root, ConcurrentQueue<string> logs)
    {
        string fed = config.Federation;
        var create = await http.PostAsync("/api/federations", new StringContent(Encoding.UTF8.GetString(config.ToJsonBytes()), Encoding.UTF8, "application/json"));
        Assert.True(create.IsSuccessStatusCode, await create.Content.ReadAsStringAsync());
        var keys = new Dictionary<string, string>();
        foreach (var s in sites)
        {
            var reg = await http.PostAsync($"/api/federations/{fed}/sites/{s.Name}", null);
            Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
            keys[s.Name] = JsonNode.Parse(await reg.Content.ReadAsStringAsync())!["key"]!.GetValue<string>();
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        string task = config.Model.FeatureSpecId.StartsWith("sepsis", StringComparison.Ordinal) ? "sepsis" : "readmission";
        var agents = sites.Select(s =>
        {
            var api = factory.CreateClient();
            api.BaseAddress = new Uri(api.BaseAddress!, "/api/");
            var options = new SiteAgentOptions
            {
                Federation = fed, Site = s.Name, Task = task, Source = s, WorkDirectory = Path.Combine(root, "sites", s.Name),
                PollInterval = TimeSpan.FromMilliseconds(100), IdleTimeout = TimeSpan.FromMinutes(5),
            };
            return Task.Run(() => new SiteAgent(options, readStore, new TicketUploader(api, keys[s.Name]), line => logs.Enqueue($"{s.Name}: {line}")).RunAsync(cts.Token));
        }).ToList();

        // The timer: the Functions host's invocation request, every 200 ms until every agent is done.
        int ticks = 0;
        while (!agents.All(a => a.IsCompleted))
        {
            var tick = await http.PostAsync("/AggregateRound", new StringContent(TimerPayload(), Encoding.UTF8, "application/json"));
            Assert.True(tick.IsSuccessStatusCode, await tick.Content.ReadAsStringAsync());
            ticks++;
            await Task.WhenAny(Task.WhenAll(agents), Task.Delay(200));
        }
        var reports = await Task.WhenAll(agents);
        output.WriteLine($"{ticks} timer invocations");
        foreach (var line in logs) output.WriteLine(line);
        return (keys, reports);
    }

    private async Task ScoresTheReadmissionExample(string roundDirectory)
    {
        string example = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(example, "examples", "scoring", "readmission-bundle.json"))) example = Path.GetDirectoryName(example) ?? throw new FileNotFoundException("examples/scoring/readmission-bundle.json");
        var body = await File.ReadAllTextAsync(Path.Combine(example, "examples", "scoring", "readmission-bundle.json"));
        await using var app = ClinicalFed.Cli.Serving.ServeApp.Build(new ClinicalFed.Cli.Serving.ServeOptions { ModelDirectory = roundDirectory, Urls = "http://127.0.0.1:0", DevNoAuth = true });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        var strict = new Hl7.Fhir.Serialization.FhirJsonDeserializer(new Hl7.Fhir.Serialization.DeserializerSettings().UsingMode(Hl7.Fhir.Serialization.DeserializationMode.Strict));
        var capability = strict.Deserialize<Hl7.Fhir.Model.CapabilityStatement>(await http.GetStringAsync("/fhir/metadata"))!;
        Assert.Equal("readmission-risk", capability.Rest[0].Resource[0].Operation[0].Name);
        var response = await http.PostAsync("/fhir/Patient/$readmission-risk", new StringContent(body, Encoding.UTF8, "application/fhir+json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        var assessment = strict.Deserialize<Hl7.Fhir.Model.RiskAssessment>(text)!;
        Assert.Equal("Encounter/r-demo-1-adm", assessment.Encounter!.Reference);
        var probability = (double)Assert.IsType<Hl7.Fhir.Model.FhirDecimal>(assessment.Prediction[0].Probability).Value!.Value;
        Assert.InRange(probability, 0.0, 1.0);
        output.WriteLine($"$readmission-risk of the example: {probability:F4}; {assessment.Prediction[0].Rationale}");
        await app.StopAsync();
    }

    private static string TimerPayload() => new JsonObject
    {
        ["Data"] = new JsonObject
        {
            ["timer"] = new JsonObject { ["Schedule"] = new JsonObject { ["AdjustForDST"] = true }, ["IsPastDue"] = false },
        },
        ["Metadata"] = new JsonObject { ["sys"] = new JsonObject { ["MethodName"] = "AggregateRound", ["UtcNow"] = DateTimeOffset.UtcNow.ToString("O"), ["RandGuid"] = Guid.NewGuid().ToString() } },
    }.ToJsonString();
}

/// <summary>Finds shared/data beside the repository (never inside it); real-data tests log and return when it is absent.</summary>
internal static class SharedData
{
    public static string? Find(string relative, Action<string> log)
    {
        var env = Environment.GetEnvironmentVariable("CLINICALFED_SHARED_DATA");
        string? root = !string.IsNullOrEmpty(env) && Directory.Exists(env) ? env : null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null && root is null; dir = dir.Parent)
            foreach (var candidate in new[] { Path.Combine(dir.FullName, "shared", "data"), Path.Combine(dir.FullName, "..", "shared", "data") })
                if (root is null && Directory.Exists(candidate)) root = Path.GetFullPath(candidate);
        var path = root is null ? null : Path.Combine(root, relative);
        if (path is null || !File.Exists(path))
        {
            log($"SKIPPED: {relative} not found under shared/data; this real-data test did not run.");
            return null;
        }
        return path;
    }
}
