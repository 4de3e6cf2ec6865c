using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Cli.Serving;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Data;
using ClinicalFed.Learning;
using ClinicalFed.Storage;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace ClinicalFed.Cli.Tests;

/// <summary>
/// <c>clinicalfed serve</c> in process on the demo's federated model: the CapabilityStatement, the $sepsis-risk
/// operation (its RiskAssessment equals the evaluation's score of the same patient's row), CDS Hooks discovery and
/// patient-view, and malformed requests (never a 5xx). Every FHIR response parses with the Firely SDK in strict mode.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class ServeTests
{
    private static readonly FhirJsonDeserializer Strict = new(new DeserializerSettings().UsingMode(DeserializationMode.Strict));

    private static IEnumerable<JsonNode> Ndjson(string path)
    {
        using var reader = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        while (reader.ReadLine() is { } line) if (line.Length > 0) yield return JsonNode.Parse(line)!;
    }

    /// <summary>One patient's whole record as a FHIR Bundle: the patient of <paramref name="cdm"/> with the most observations.</summary>
    internal static (string Bundle, string PatientId, List<JsonNode> Resources) BusiestPatient(string cdm)
    {
        var observations = Ndjson(Path.Combine(cdm, "Observation.ndjson.gz")).ToList();
        string patientRef = observations.GroupBy(o => o["subject"]!["reference"]!.GetValue<string>()).OrderByDescending(g => g.Count()).First().Key;
        string patientId = patientRef.Split('/')[1];
        var resources = new List<JsonNode>();
        foreach (var type in new[] { "Patient", "Encounter", "Observation", "Condition" })
        {
            foreach (var r in type == "Observation" ? observations : Ndjson(Path.Combine(cdm, type + ".ndjson.gz")))
            {
                bool mine = type == "Patient" ? r["id"]!.GetValue<string>() == patientId : r["subject"]?["reference"]?.GetValue<string>() == patientRef;
                if (mine) resources.Add(r.DeepClone());
            }
        }
        var bundle = new JsonObject
        {
            ["resourceType"] = "Bundle", ["type"] = "collection",
            ["entry"] = new JsonArray(resources.Select(r => (JsonNode)new JsonObject { ["resource"] = r.DeepClone() }).ToArray()),
        }.ToJsonString();
        return (bundle, patientId, resources);
    }

    /// <summary>
    /// What the evaluation scores for a patient: its latest row from the site's own CDM through the same extractor,
    /// imputed and standardized with the federation's statistics in <paramref name="store"/>.
    /// </summary>
    internal static async System.Threading.Tasks.Task<(RowKey Key, float[] Row)> PreparedLatestRowAsync(string cdm, string patientId, LocalFolderStore store, string federation = "simulation")
    {
        var spec = FeatureSpec.Load("sepsis");
        RowKey? last = null;
        float[]? raw = null;
        FeatureExtraction.Extract(spec, new CdmStore(cdm), (in RowKey k, float _, ReadOnlySpan<float> v) =>
        {
            if (k.PatientId != patientId || last is { } b && (string.CompareOrdinal(k.EncounterId, b.EncounterId) < 0 || k.EncounterId == b.EncounterId && k.Hour < b.Hour)) return;
            last = k;
            raw = v.ToArray();
        });
        var stats = (await store.GetFederatedStatisticsAsync(federation))!;
        var row = raw!.ToArray();
        new RowPreparation(stats, spec.Columns.Where(c => FeatureSpec.IsImputable(c.Kind)).Select(c => c.Name).ToHashSet()).Prepare(row);
        return (last!.Value, row);
    }

    [Fact]
    public async System.Threading.Tasks.Task Scores_a_Bundle_as_the_evaluation_does_and_answers_CDS_Hooks_and_bad_input_with_4xx()
    {
        using var tmp = new TempDir();
        var (exit, _, err) = Cli.Run("demo", "--out", tmp["demo"], "--patients", "150", "--rounds", "2");
        Assert.True(exit == 0, err);
        var cdm = tmp["demo/cdm/academic_micu"];
        var roundDir = tmp["demo/store/federations/simulation/rounds/00001"];

        var (bundle, patientId, resources) = BusiestPatient(cdm);
        var store = new LocalFolderStore(tmp["demo/store"]);
        var (last, row) = await PreparedLatestRowAsync(cdm, patientId, store);
        double expected = LinearWeights.FromParameterVector((await store.GetGlobalModelAsync("simulation", 1))!.Parameters).Probability(row);

        await using var app = ServeApp.Build(new ServeOptions { ModelDirectory = roundDir, Urls = "http://127.0.0.1:0", DevNoAuth = true });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };

        var capability = Strict.Deserialize<CapabilityStatement>(await http.GetStringAsync("/fhir/metadata"))!;
        Assert.Equal("sepsis-risk", capability.Rest[0].Resource[0].Operation[0].Name);

        var response = await http.PostAsync("/fhir/Patient/$sepsis-risk", new StringContent(bundle, Encoding.UTF8, "application/fhir+json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var assessment = Strict.Deserialize<RiskAssessment>(body)!;
        var probabilityElement = Assert.IsType<FhirDecimal>(assessment.Prediction[0].Probability);
        double probability = (double)probabilityElement.Value!.Value;
        Assert.Equal(expected, probability, 5); // the bedside score is the evaluation's score
        Assert.Equal($"Patient/{patientId}", assessment.Subject!.Reference);
        Assert.Equal($"Encounter/{last.EncounterId}", assessment.Encounter!.Reference);
        Assert.Contains("simulation/round/1", assessment.Method!.Coding[0].Code);
        Assert.Contains("strongest features", assessment.Prediction[0].Rationale);
        // basis: the patient, the encounter and the Observations the row drew on (each one of the request's).
        var observationIds = resources.Where(r => r["resourceType"]!.GetValue<string>() == "Observation" && r["encounter"]?["reference"]?.GetValue<string>() == $"Encounter/{last.EncounterId}")
            .Select(r => $"Observation/{r["id"]!.GetValue<string>()}").ToHashSet();
        var basisObservations = assessment.Basis.Select(b => b.Reference ?? "").Where(r => r.StartsWith("Observation/", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(basisObservations);
        Assert.All(basisObservations, r => Assert.Contains(r, observationIds));

        // CDS Hooks 2.0: discovery, then patient-view with its prefetch.
        var discovery = JsonNode.Parse(await http.GetStringAsync("/cds-services"))!;
        var service = discovery["services"]![0]!;
        Assert.Equal(("patient-view", ServeApp.ServiceId), (service["hook"]!.GetValue<string>(), service["id"]!.GetValue<string>()));
        Assert.Equal("Patient/{{context.patientId}}", service["prefetch"]!["patient"]!.GetValue<string>());
        var searchset = new JsonObject { ["resourceType"] = "Bundle", ["type"] = "searchset", ["entry"] = new JsonArray(resources.Where(r => r["resourceType"]!.GetValue<string>() != "Patient").Select(r => (JsonNode)new JsonObject { ["resource"] = r.DeepClone() }).ToArray()) };
        var call = new JsonObject
        {
            ["hook"] = "patient-view", ["hookInstance"] = Guid.NewGuid().ToString(), ["context"] = new JsonObject { ["userId"] = "Practitioner/1", ["patientId"] = patientId },
            ["prefetch"] = new JsonObject { ["patient"] = resources[0].DeepClone(), ["everything"] = searchset },
        };
        var cards = JsonNode.Parse(await (await http.PostAsync($"/cds-services/{ServeApp.ServiceId}", new StringContent(call.ToJsonString(), Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync())!;
        var card = cards["cards"]![0]!;
        Assert.StartsWith("Sepsis risk", card["summary"]!.GetValue<string>());
        Assert.Contains(card["indicator"]!.GetValue<string>(), new[] { "info", "warning", "critical" });
        Assert.Equal("ClinicalFed", card["source"]!["label"]!.GetValue<string>());
        // The prefetched Patient and search Bundle make the same record as the operation's Bundle: the same score.
        Assert.Contains($"Probability {probability.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)} ", card["detail"]!.GetValue<string>());

        // Parameters carrying the resources score the same.
        var parametersBody = new JsonObject
        {
            ["resourceType"] = "Parameters",
            ["parameter"] = new JsonArray(resources.Select(r => (JsonNode)new JsonObject { ["name"] = "resource", ["resource"] = r.DeepClone() }).ToArray()),
        }.ToJsonString();
        Assert.Equal(probability, await Probability(http.PostAsync("/fhir/Patient/$sepsis-risk", new StringContent(parametersBody, Encoding.UTF8, "application/fhir+json"))), 9);
        // Without an upstream FHIR server a Patient reference is a 400 that says so.
        var noUpstream = await http.PostAsync($"/fhir/Patient/{patientId}/$sepsis-risk", null);
        Assert.Equal(HttpStatusCode.BadRequest, noUpstream.StatusCode);
        Assert.Contains("--fhir-server", Strict.Deserialize<OperationOutcome>(await noUpstream.Content.ReadAsStringAsync())!.Issue[0].Diagnostics);

        // A Patient reference resolved against the EHR's FHIR server (a fake one, in process, that pages its searches).
        await using var ehr = FakeFhirServer(resources);
        await ehr.StartAsync();
        await using (var withUpstream = ServeApp.Build(new ServeOptions { ModelDirectory = roundDir, Urls = "http://127.0.0.1:0", DevNoAuth = true, FhirServer = ehr.Urls.First() + "/r4" }))
        {
            await withUpstream.StartAsync();
            using var client = new HttpClient { BaseAddress = new Uri(withUpstream.Urls.First()) };
            Assert.Equal(probability, await Probability(client.GetAsync($"/fhir/Patient/{patientId}/$sepsis-risk")), 9);
            Assert.Equal(probability, await Probability(client.PostAsync($"/fhir/Patient/{patientId}/$sepsis-risk", null)), 9);
            var byReference = new JsonObject
            {
                ["resourceType"] = "Parameters",
                ["parameter"] = new JsonArray(new JsonObject { ["name"] = "patient", ["valueReference"] = new JsonObject { ["reference"] = $"Patient/{patientId}" } }),
            }.ToJsonString();
            Assert.Equal(probability, await Probability(client.PostAsync("/fhir/Patient/$sepsis-risk", new StringContent(byReference, Encoding.UTF8, "application/fhir+json"))), 9);
            var broken = await client.GetAsync("/fhir/Patient/broken/$sepsis-risk"); // JSON that is not a resource
            Assert.Equal(HttpStatusCode.BadGateway, broken.StatusCode);
            var unknown = await client.GetAsync("/fhir/Patient/nobody/$sepsis-risk");
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            Assert.NotEmpty(Strict.Deserialize<OperationOutcome>(await unknown.Content.ReadAsStringAsync())!.Issue);
            await ehr.StopAsync();
            var down = await client.GetAsync($"/fhir/Patient/{patientId}/$sepsis-risk");
            Assert.Equal(HttpStatusCode.BadGateway, down.StatusCode); // the EHR is unreachable: a gateway error, not ours
            Assert.NotEmpty(Strict.Deserialize<OperationOutcome>(await down.Content.ReadAsStringAsync())!.Issue);
            await withUpstream.StopAsync();
        }

        // Bad input: 4xx with an OperationOutcome (strict FHIR), never a 5xx.
        foreach (var (payload, status) in new[] { ("not json", 400), ("{\"resourceType\":\"Patient\"}", 400), ("{\"resourceType\":\"Bundle\",\"type\":\"collection\"}", 422), ("", 400) })
        {
            var r = await http.PostAsync("/fhir/Patient/$sepsis-risk", new StringContent(payload, Encoding.UTF8, "application/fhir+json"));
            Assert.Equal(status, (int)r.StatusCode);
            Assert.NotEmpty(Strict.Deserialize<OperationOutcome>(await r.Content.ReadAsStringAsync())!.Issue);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/fhir/Observation")).StatusCode);
        // Well-formed JSON of the wrong shape, in Parameters and in CDS Hooks calls: 4xx, never a 5xx.
        foreach (var payload in new[]
                 {
                     """{"resourceType":"Parameters","parameter":[{"name":5}]}""",
                     """{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":7}}]}""",
                     """{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":7}}]}""",
                     """{"resourceType":"Parameters","parameter":"x"}""",
                     """{"resourceType":"Parameters","parameter":[],"parameter":[]}""",
                 })
        {
            var r = await http.PostAsync("/fhir/Patient/$sepsis-risk", new StringContent(payload, Encoding.UTF8, "application/fhir+json"));
            Assert.True((int)r.StatusCode is >= 400 and < 500, $"{payload}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            Assert.NotEmpty(Strict.Deserialize<OperationOutcome>(await r.Content.ReadAsStringAsync())!.Issue);
        }
        foreach (var payload in new[] { """{"hook":5}""", """{"hook":"patient-view","prefetch":{"p":{"resourceType":3}}}""", """{"hook":"patient-view","hook":"x","prefetch":{}}""" })
        {
            var r = await http.PostAsync($"/cds-services/{ServeApp.ServiceId}", new StringContent(payload, Encoding.UTF8, "application/json"));
            Assert.True((int)r.StatusCode < 500, $"{payload}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        }

        // Fuzz: truncated, byte-flipped and shuffled versions of the Bundle and of the CDS Hooks call.
        var random = new Random(11);
        var bytes = Encoding.UTF8.GetBytes(bundle);
        var callBytes = Encoding.UTF8.GetBytes(call.ToJsonString());
        for (int i = 0; i < 60; i++)
        {
            var source = i % 2 == 0 ? bytes : callBytes;
            var mutated = source.AsSpan(0, random.Next(source.Length)).ToArray();
            for (int f = 0; f < 3 && mutated.Length > 0; f++) mutated[random.Next(mutated.Length)] = (byte)random.Next(32, 127);
            var path = i % 2 == 0 ? "/fhir/Patient/$sepsis-risk" : $"/cds-services/{ServeApp.ServiceId}";
            var r = await http.PostAsync(path, new ByteArrayContent(mutated));
            Assert.True((int)r.StatusCode < 500, $"{path} answered {(int)r.StatusCode} to fuzz case {i}: {await r.Content.ReadAsStringAsync()}");
        }

        await app.StopAsync();
    }

    private static async System.Threading.Tasks.Task<double> Probability(System.Threading.Tasks.Task<HttpResponseMessage> call)
    {
        using var response = await call;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return (double)Assert.IsType<FhirDecimal>(Strict.Deserialize<RiskAssessment>(body)!.Prediction[0].Probability).Value!.Value;
    }

    /// <summary>
    /// A FHIR server holding <paramref name="resources"/> under <c>/r4</c>: read Patient/{id}, and search by patient with
    /// pages of 40 resources linked by absolute <c>next</c> URLs.
    /// </summary>
    private static WebApplication FakeFhirServer(IReadOnlyList<JsonNode> resources)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseSetting(Microsoft.AspNetCore.Hosting.WebHostDefaults.ServerUrlsKey, "http://127.0.0.1:0");
        var app = builder.Build();
        app.MapGet("/r4/Patient/{id}", (string id) => id == "broken" ? Results.Text("[1,2]", "application/fhir+json") : resources.FirstOrDefault(r => r["resourceType"]!.GetValue<string>() == "Patient" && r["id"]!.GetValue<string>() == id) is { } p
            ? Results.Text(p.ToJsonString(), "application/fhir+json")
            : Results.NotFound());
        app.MapGet("/r4/{type}", (string type, string patient, int? page, HttpRequest request) =>
        {
            var matches = resources.Where(r => r["resourceType"]!.GetValue<string>() == type && r["subject"]?["reference"]?.GetValue<string>() == $"Patient/{patient}").ToList();
            int at = page ?? 0;
            var bundle = new JsonObject
            {
                ["resourceType"] = "Bundle", ["type"] = "searchset", ["total"] = matches.Count,
                ["entry"] = new JsonArray(matches.Skip(at * 40).Take(40).Select(r => (JsonNode)new JsonObject { ["resource"] = r.DeepClone(), ["search"] = new JsonObject { ["mode"] = "match" } }).ToArray()),
            };
            if ((at + 1) * 40 < matches.Count)
                bundle["link"] = new JsonArray(new JsonObject { ["relation"] = "next", ["url"] = $"{request.Scheme}://{request.Host}/r4/{type}?patient={patient}&page={at + 1}" });
            return Results.Text(bundle.ToJsonString(), "application/fhir+json");
        });
        return app;
    }
}

/// <summary>Bearer tokens: issuer, audience, lifetime, signature and the SMART scope are all checked; failures are 401/403 OperationOutcomes.</summary>
[Collection(CliCollection.Name)]
public sealed class ServeAuthTests
{
    [Fact]
    public async System.Threading.Tasks.Task Only_a_valid_token_with_the_RiskAssessment_scope_may_score()
    {
        using var tmp = new TempDir();
        var (exit, _, err) = Cli.Run("demo", "--out", tmp["demo"], "--patients", "150", "--rounds", "1");
        Assert.True(exit == 0, err);
        using var issuerKey = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        File.WriteAllText(tmp["issuer.pem"], issuerKey.ExportSubjectPublicKeyInfoPem());
        var options = new ServeOptions
        {
            ModelDirectory = tmp["demo/store/federations/simulation/rounds/00000"], Urls = "http://127.0.0.1:0",
            JwtIssuer = "https://auth.hospital.example", JwtAudience = "https://score.hospital.example", JwtKeyFile = tmp["issuer.pem"],
        };
        Assert.Contains("--jwt-issuer: required", Assert.Throws<ArgumentException>(() => ServeApp.Build(options with { JwtIssuer = null })).Message);

        await using var app = ServeApp.Build(options);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        string Token(string? scope, string audience = "https://score.hospital.example", int minutes = 5, System.Security.Cryptography.ECDsa? signer = null)
        {
            var claims = new Dictionary<string, object> { ["sub"] = "ehr-backend" };
            if (scope is not null) claims["scope"] = scope;
            return new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
            {
                Issuer = "https://auth.hospital.example", Audience = audience, Claims = claims,
                NotBefore = DateTime.UtcNow.AddMinutes(-10), Expires = DateTime.UtcNow.AddMinutes(minutes),
                SigningCredentials = new Microsoft.IdentityModel.Tokens.SigningCredentials(new Microsoft.IdentityModel.Tokens.ECDsaSecurityKey(signer ?? issuerKey), "ES256"),
            });
        }
        async System.Threading.Tasks.Task<HttpResponseMessage> Call(string? token)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient/$sepsis-risk") { Content = new StringContent("{\"resourceType\":\"Bundle\",\"type\":\"collection\"}", Encoding.UTF8, "application/fhir+json") };
            if (token is not null) request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            return await http.SendAsync(request);
        }

        using var otherKey = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        foreach (var (token, status) in new[]
        {
            ((string?)null, 401), (Token(ServeOptions.RequiredScope, audience: "https://elsewhere.example"), 401), (Token(ServeOptions.RequiredScope, minutes: -5), 401),
            (Token(ServeOptions.RequiredScope, signer: otherKey), 401), (Token("system/Patient.read"), 403), (Token(null), 403),
        })
        {
            var r = await Call(token);
            Assert.Equal(status, (int)r.StatusCode);
            Assert.Equal("OperationOutcome", JsonNode.Parse(await r.Content.ReadAsStringAsync())!["resourceType"]!.GetValue<string>());
        }

        // Authorized: the request reaches the operation (this Bundle has no patient: 422, the operation's own answer).
        Assert.Equal(422, (int)(await Call(Token(ServeOptions.RequiredScope))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/fhir/metadata")).StatusCode); // the CapabilityStatement is public
        await app.StopAsync();
    }
}

/// <summary>A newer round's model replaces the served one in place.</summary>
[Collection(CliCollection.Name)]
public sealed class ServeReloadTests
{
    [Fact]
    public async System.Threading.Tasks.Task A_newer_round_is_picked_up_without_a_restart()
    {
        using var tmp = new TempDir();
        var (exit, _, err) = Cli.Run("demo", "--out", tmp["demo"], "--patients", "150", "--rounds", "2");
        Assert.True(exit == 0, err);
        await using var app = ServeApp.Build(new ServeOptions
        {
            ModelDirectory = tmp["demo/store/federations/simulation/rounds/00000"], Urls = "http://127.0.0.1:0", DevNoAuth = true, ReloadSeconds = 0,
        });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        Assert.Contains("round 0", await http.GetStringAsync("/fhir/metadata"));
        var registry = app.Services.GetRequiredService<ModelRegistry>();
        Assert.True(registry.Refresh());
        Assert.Contains("round 1", await http.GetStringAsync("/fhir/metadata"));
        Assert.False(registry.Refresh()); // nothing newer
        await app.StopAsync();
    }
}
