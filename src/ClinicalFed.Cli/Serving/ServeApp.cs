using System.Text.Json;
using System.Text.Json.Nodes;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Task = System.Threading.Tasks.Task;

namespace ClinicalFed.Cli.Serving;

/// <summary>Options of <c>clinicalfed serve</c>, validated with every problem reported at once.</summary>
public sealed record ServeOptions
{
    public required string ModelDirectory { get; init; }
    public string Urls { get; init; } = "http://127.0.0.1:8080";
    /// <summary>Serve this site's personalized model when the round has one.</summary>
    public string? Site { get; init; }
    /// <summary>Development only: accept requests without a bearer token.</summary>
    public bool DevNoAuth { get; init; }
    /// <summary>Largest request body, bytes.</summary>
    public long MaxRequestBytes { get; init; } = 4 << 20;

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (!Directory.Exists(ModelDirectory)) e.Add($"--model {ModelDirectory}: no such folder");
        if (!DevNoAuth) e.Add("bearer-token (JWT) authentication is not built yet: run with --dev-no-auth on a trusted network only");
        if (MaxRequestBytes is < 1024 or > 1L << 30) e.Add($"--max-request-bytes {MaxRequestBytes}: expected 1 KiB to 1 GiB");
        return e;
    }
}

/// <summary>
/// The scoring web app: FHIR R4 (<c>/fhir/metadata</c>, <c>POST /fhir/Patient/$sepsis-risk</c> or
/// <c>$readmission-risk</c> with a Bundle, answered with a RiskAssessment) and CDS Hooks 2.0 (<c>/cds-services</c>
/// discovery and a <c>patient-view</c> service scoring the prefetched resources). Bad input gets a 4xx
/// OperationOutcome. Responses are serialized with the Firely SDK.
/// </summary>
public static class ServeApp
{
    public const string ServiceId = "clinicalfed-risk";
    private static readonly FhirJsonSerializer Serializer = new();
    private static readonly FhirJsonDeserializer Deserializer = new(new DeserializerSettings().UsingMode(DeserializationMode.Strict));

    public static WebApplication Build(ServeOptions options)
    {
        var problems = options.Validate();
        if (problems.Count > 0) throw new ArgumentException("clinicalfed serve: " + string.Join("; ", problems));
        var model = ScoringModel.Load(options.ModelDirectory, options.Site);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseSetting(Microsoft.AspNetCore.Hosting.WebHostDefaults.ServerUrlsKey, options.Urls);
        builder.Services.Configure<KestrelServerOptions>(k => k.Limits.MaxRequestBodySize = options.MaxRequestBytes);
        var app = builder.Build();
        string operation = model.Task == "sepsis" ? "sepsis-risk" : "readmission-risk";

        app.MapGet("/fhir/metadata", () => Fhir(Capability(model, operation), 200));
        app.MapPost("/fhir/Patient/$" + operation, async (HttpRequest request) =>
        {
            var (body, error) = await ReadBodyAsync(request);
            if (error is not null) return error;
            string? encounter = request.Query["encounter"];
            try
            {
                Deserializer.Deserialize<Bundle>(body); // strict FHIR R4 first: a malformed Bundle is the caller's error
            }
            catch (Exception e) when (e is DeserializationFailedException or JsonException or FormatException or InvalidCastException or ArgumentException or InvalidOperationException)
            {
                return Outcome(400, OperationOutcome.IssueType.Structure, $"the body is not a valid FHIR R4 Bundle: {First(e.Message)}");
            }

            try
            {
                return Fhir(Assessment(model, model.Score(body, encounter)), 200);
            }
            catch (ScoringInputException e)
            {
                return Outcome(422, OperationOutcome.IssueType.Processing, e.Message);
            }
        });
        app.MapGet("/cds-services", () => Results.Json(Discovery(model)));
        app.MapPost("/cds-services/" + ServiceId, async (HttpRequest request) => await PatientViewAsync(request, model));
        app.MapFallback((HttpContext c) => Outcome(404, OperationOutcome.IssueType.NotFound, $"{c.Request.Method} {c.Request.Path} is not an operation of this server (see /fhir/metadata and /cds-services)"));
        return app;
    }

    private static async Task<IResult> PatientViewAsync(HttpRequest request, ScoringModel model)
    {
        var (body, error) = await ReadBodyAsync(request);
        if (error is not null) return error;
        JsonNode? call;
        try
        {
            call = JsonNode.Parse(body);
        }
        catch (JsonException e)
        {
            return Results.Json(new { error = $"the CDS Hooks request is not JSON: {First(e.Message)}" }, statusCode: 400);
        }

        if (call?["hook"]?.GetValue<string>() != "patient-view" || call["prefetch"] is not JsonObject prefetch)
            return Results.Json(new { error = "expected a patient-view call with prefetch (patient, encounters, observations)" }, statusCode: 400);
        var entries = new JsonArray();
        foreach (var (_, value) in prefetch)
        {
            if (value is not JsonObject resource) continue;
            if (resource["resourceType"]?.GetValue<string>() == "Bundle" && resource["entry"] is JsonArray inner)
                foreach (var entry in inner) if (entry?["resource"] is JsonNode r) entries.Add(new JsonObject { ["resource"] = r.DeepClone() });
            else entries.Add(new JsonObject { ["resource"] = resource.DeepClone() });
        }

        var bundle = new JsonObject { ["resourceType"] = "Bundle", ["type"] = "collection", ["entry"] = entries }.ToJsonString();
        RiskScore score;
        try
        {
            score = model.Score(bundle);
        }
        catch (ScoringInputException e)
        {
            return Results.Json(new { cards = Array.Empty<object>(), error = e.Message });
        }

        var (level, indicator) = Level(score.Probability);
        return Results.Json(new
        {
            cards = new[]
            {
                new
                {
                    uuid = Guid.NewGuid().ToString(),
                    summary = $"{(model.Task == "sepsis" ? "Sepsis" : "30-day readmission")} risk {score.Probability:P0} ({level})",
                    detail = $"Federated model {model.Header.Federation} round {model.Header.Round} ({model.Source}); strongest features: " +
                             string.Join(", ", score.TopFeatures.Take(3).Select(f => $"{f.Feature} ({f.Contribution:+0.00;-0.00})")),
                    indicator,
                    source = new { label = "ClinicalFed", url = "https://github.com/clinicalfed" },
                    links = new[] { new { label = "How this score is made", url = "https://github.com/clinicalfed#scoring", type = "absolute" } },
                },
            },
        });
    }

    private static (string Level, string Indicator) Level(double p) => p >= 0.2 ? ("high", "critical") : p >= 0.05 ? ("moderate", "warning") : ("low", "info");

    private static async Task<(string Body, IResult? Error)> ReadBodyAsync(HttpRequest request)
    {
        try
        {
            using var reader = new StreamReader(request.Body);
            var body = await reader.ReadToEndAsync();
            return string.IsNullOrWhiteSpace(body) ? ("", Outcome(400, OperationOutcome.IssueType.Required, "the request has no body")) : (body, null);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            return ("", Outcome(e.StatusCode, OperationOutcome.IssueType.TooLong, e.Message));
        }
    }

    private static string First(string message) => message.Split('\n')[0];

    private static IResult Fhir(Resource resource, int status) =>
        Results.Text(Serializer.SerializeToString(resource), "application/fhir+json", System.Text.Encoding.UTF8, status);

    private static IResult Outcome(int status, OperationOutcome.IssueType type, string message) => Fhir(new OperationOutcome
    {
        Issue = [new OperationOutcome.IssueComponent { Severity = OperationOutcome.IssueSeverity.Error, Code = type, Diagnostics = message }],
    }, status);

    private static CapabilityStatement Capability(ScoringModel model, string operation) => new()
    {
        Status = PublicationStatus.Active,
        Date = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd"),
        Kind = CapabilityStatementKind.Instance,
        FhirVersion = FHIRVersion.N4_0_1,
        Format = ["application/fhir+json"],
        Software = new CapabilityStatement.SoftwareComponent { Name = "ClinicalFed scoring", Version = $"{model.Header.Federation} round {model.Header.Round}" },
        Rest =
        [
            new CapabilityStatement.RestComponent
            {
                Mode = CapabilityStatement.RestfulCapabilityMode.Server,
                Resource =
                [
                    new CapabilityStatement.ResourceComponent
                    {
                        Type = "Patient",
                        Operation = [new CapabilityStatement.OperationComponent { Name = operation, Definition = $"http://clinicalfed.dev/OperationDefinition/{operation}" }],
                    },
                ],
            },
        ],
    };

    private static RiskAssessment Assessment(ScoringModel model, RiskScore score) => new()
    {
        Status = ObservationStatus.Final,
        Subject = new ResourceReference($"Patient/{score.PatientId}"),
        Encounter = new ResourceReference($"Encounter/{score.EncounterId}"),
        Occurrence = new FhirDateTime(DateTimeOffset.UtcNow),
        Method = new CodeableConcept("http://clinicalfed.dev/model", $"{model.Header.Federation}/round/{model.Header.Round}", $"{model.Header.Strategy} federated logistic regression, {model.Source}"),
        Basis = [new ResourceReference($"Patient/{score.PatientId}"), new ResourceReference($"Encounter/{score.EncounterId}")],
        Prediction =
        [
            new RiskAssessment.PredictionComponent
            {
                Outcome = new CodeableConcept("http://snomed.info/sct", model.Task == "sepsis" ? "91302008" : "417005", model.Task == "sepsis" ? "Sepsis" : "Hospital re-admission"),
                Probability = new FhirDecimal((decimal)Math.Round(score.Probability, 6)),
                Rationale = $"{model.Spec.Id} {model.Spec.Version} row at hour {score.Hour}; strongest features: " +
                            string.Join(", ", score.TopFeatures.Select(f => $"{f.Feature} {f.Contribution:+0.0000;-0.0000}")),
            },
        ],
        Note = [new Annotation { Text = $"model {model.Header.Federation} round {model.Header.Round}, {model.Source}, sites {string.Join(", ", model.Header.Sites)}" }],
    };

    private static object Discovery(ScoringModel model) => new
    {
        services = new[]
        {
            new
            {
                hook = "patient-view",
                title = model.Task == "sepsis" ? "ClinicalFed sepsis risk" : "ClinicalFed 30-day readmission risk",
                description = $"Scores the patient's latest {(model.Task == "sepsis" ? "ICU hour" : "encounter")} with the federated model (round {model.Header.Round}).",
                id = ServiceId,
                prefetch = new Dictionary<string, string>
                {
                    ["patient"] = "Patient/{{context.patientId}}",
                    ["encounters"] = "Encounter?patient={{context.patientId}}",
                    ["observations"] = "Observation?patient={{context.patientId}}",
                    ["conditions"] = "Condition?patient={{context.patientId}}",
                },
            },
        },
    };
}
