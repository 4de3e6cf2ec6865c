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
    /// <summary>
    /// A site's own personalized model file (what <c>site run</c> leaves in its work folder as
    /// <c>personalized-model.cfm</c>) to serve with the round's statistics; pinned: no reload.
    /// </summary>
    public string? PersonalizedModelFile { get; init; }
    /// <summary>Development only: accept requests without a bearer token.</summary>
    public bool DevNoAuth { get; init; }
    /// <summary>The token issuer (<c>iss</c>) accepted, e.g. the authorization server of SMART backend services.</summary>
    public string? JwtIssuer { get; init; }
    /// <summary>The audience (<c>aud</c>) tokens must name: this server.</summary>
    public string? JwtAudience { get; init; }
    /// <summary>PEM file of the issuer's public signing key (RSA or EC).</summary>
    public string? JwtKeyFile { get; init; }
    /// <summary>The SMART scope a token must carry to call the operations.</summary>
    public const string RequiredScope = "system/RiskAssessment.read";
    /// <summary>Seconds between checks for a newer round's model (0: never reload).</summary>
    public int ReloadSeconds { get; init; } = 30;
    /// <summary>Largest request body, bytes.</summary>
    public long MaxRequestBytes { get; init; } = 4 << 20;
    /// <summary>
    /// The EHR's FHIR R4 base URL: operations called with a Patient reference (<c>Patient/{id}/$sepsis-risk</c>, or
    /// Parameters with a <c>patient</c> reference) fetch the patient's data from it.
    /// </summary>
    public string? FhirServer { get; init; }
    /// <summary>File holding the bearer token sent to <see cref="FhirServer"/> (read once at start).</summary>
    public string? FhirServerTokenFile { get; init; }
    /// <summary>Seconds to wait for the upstream FHIR server per request.</summary>
    public int FhirServerTimeoutSeconds { get; init; } = 10;

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (!Directory.Exists(ModelDirectory)) e.Add($"--model {ModelDirectory}: no such folder");
        if (PersonalizedModelFile is not null)
        {
            if (!File.Exists(PersonalizedModelFile)) e.Add($"--personalized {PersonalizedModelFile}: no such file");
            if (Site is not null) e.Add("--personalized and --site: give one (--site picks a personalized model in the store, --personalized a file)");
        }
        if (!DevNoAuth)
        {
            if (string.IsNullOrWhiteSpace(JwtIssuer)) e.Add("--jwt-issuer: required (or --dev-no-auth, for development only)");
            if (string.IsNullOrWhiteSpace(JwtAudience)) e.Add("--jwt-audience: required (or --dev-no-auth, for development only)");
            if (string.IsNullOrWhiteSpace(JwtKeyFile)) e.Add("--jwt-key: required, the issuer's public key as PEM (or --dev-no-auth, for development only)");
            else if (!File.Exists(JwtKeyFile)) e.Add($"--jwt-key {JwtKeyFile}: no such file");
        }
        if (ReloadSeconds is < 0 or > 86_400) e.Add($"--reload-seconds {ReloadSeconds}: expected 0 to 86400");
        if (MaxRequestBytes is < 1024 or > 1L << 30) e.Add($"--max-request-bytes {MaxRequestBytes}: expected 1 KiB to 1 GiB");
        if (FhirServer is not null && (!Uri.TryCreate(FhirServer, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https")))
            e.Add($"--fhir-server {FhirServer}: expected an absolute http(s) URL, the FHIR base (e.g. https://ehr.example.org/fhir/r4)");
        if (FhirServerTokenFile is not null && FhirServer is null) e.Add("--fhir-server-token-file: needs --fhir-server");
        if (FhirServerTokenFile is not null && !File.Exists(FhirServerTokenFile)) e.Add($"--fhir-server-token-file {FhirServerTokenFile}: no such file");
        if (FhirServerTimeoutSeconds is < 1 or > 300) e.Add($"--fhir-server-timeout {FhirServerTimeoutSeconds}: expected 1 to 300 seconds");
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
        var registry = new ModelRegistry(options.ModelDirectory, options.Site, options.PersonalizedModelFile);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Services.AddSingleton(registry);
        if (options.ReloadSeconds > 0) builder.Services.AddHostedService(_ => new ModelReloader(registry, TimeSpan.FromSeconds(options.ReloadSeconds)));
        builder.Logging.ClearProviders();
        builder.WebHost.UseSetting(Microsoft.AspNetCore.Hosting.WebHostDefaults.ServerUrlsKey, options.Urls);
        builder.Services.Configure<KestrelServerOptions>(k => k.Limits.MaxRequestBodySize = options.MaxRequestBytes);
        builder.Services.AddAuthorization(a => a.AddPolicy("risk", p =>
        {
            if (options.DevNoAuth) p.RequireAssertion(_ => true);
            else p.RequireAuthenticatedUser().RequireAssertion(c => HasScope(c.User));
        }));
        if (!options.DevNoAuth) AddJwt(builder.Services, options);
        var app = builder.Build();
        if (!options.DevNoAuth) app.UseAuthentication();
        app.UseAuthorization();
        string operation = registry.Current.Task == "sepsis" ? "sepsis-risk" : "readmission-risk";

        app.MapGet("/fhir/metadata", () => Fhir(Capability(registry.Current, operation), 200));
        var upstream = options.FhirServer is null ? null : new UpstreamFhirClient(
            new HttpClient { Timeout = TimeSpan.FromSeconds(options.FhirServerTimeoutSeconds) }, new Uri(options.FhirServer),
            options.FhirServerTokenFile is null ? null : File.ReadAllText(options.FhirServerTokenFile).Trim());
        var risk = app.MapPost("/fhir/Patient/$" + operation, async (HttpRequest request) =>
        {
            var (body, error) = await ReadBytesAsync(request);
            if (error is not null) return error;
            using var pooled = body!;
            var bytes = pooled.Memory;
            string? encounter = request.Query["encounter"];
            var model = registry.Current; // one model for the whole request, whatever a reload does meanwhile
            if (TopLevelResourceType(bytes.Span) == "Parameters") return await ScoreParametersAsync(model, bytes, encounter, upstream, request.HttpContext.RequestAborted);
            return ScoreBundle(model, bytes, encounter);
        });
        risk.RequireAuthorization("risk");
        // Instance level: the patient's data comes from the configured FHIR server.
        app.MapMethods("/fhir/Patient/{id}/$" + operation, ["GET", "POST"], async (string id, HttpRequest request) =>
            await ScoreReferenceAsync(registry.Current, id, request.Query["encounter"], upstream, request.HttpContext.RequestAborted)).RequireAuthorization("risk");
        app.MapGet("/cds-services", () => Results.Json(Discovery(registry.Current)));
        app.MapPost("/cds-services/" + ServiceId, async (HttpRequest request) => await PatientViewAsync(request, registry.Current)).RequireAuthorization("risk");
        app.MapFallback((HttpContext c) => Outcome(404, OperationOutcome.IssueType.NotFound, $"{c.Request.Method} {c.Request.Path} is not an operation of this server (see /fhir/metadata and /cds-services)"));
        return app;
    }

    /// <summary>Scores a Bundle (the operation's body, or one assembled from Parameters or from the FHIR server).</summary>
    private static IResult ScoreBundle(ScoringModel model, ReadOnlyMemory<byte> bytes, string? encounter)
    {
        try
        {
            // The hot path: the project's streaming FHIR reader, as at the sites.
            return Fhir(Assessment(model, model.Score(bytes, encounter)), 200);
        }
        catch (ScoringInputException e)
        {
            // Only a refused request pays for Firely's strict parser, to say what is wrong with it as FHIR.
            return StrictProblem(System.Text.Encoding.UTF8.GetString(bytes.Span)) is { } structural
                ? Outcome(400, OperationOutcome.IssueType.Structure, $"the body is not a valid FHIR R4 Bundle: {structural}")
                : Outcome(422, OperationOutcome.IssueType.Processing, e.Message);
        }
    }

    /// <summary>
    /// Parameters in (FHIR's other way to call an operation): a <c>patient</c> parameter (valueReference) to fetch from
    /// the FHIR server, or <c>resource</c> parameters carrying the Patient, Encounters, Observations and Conditions (a
    /// Bundle among them counts by its entries); an optional <c>encounter</c> (valueReference or valueString).
    /// </summary>
    private static async Task<IResult> ScoreParametersAsync(ScoringModel model, ReadOnlyMemory<byte> bytes, string? encounter, UpstreamFhirClient? upstream, CancellationToken cancel)
    {
        JsonNode? parameters;
        try { parameters = JsonNode.Parse(bytes.Span); }
        catch (JsonException e) { return Outcome(400, OperationOutcome.IssueType.Structure, $"the body is not JSON: {First(e.Message)}"); }
        string? patient = null;
        var entries = new JsonArray();
        try
        {
            if (parameters is not JsonObject root || root["parameter"] is not JsonArray list)
                return Outcome(400, OperationOutcome.IssueType.Required, "Parameters without parameter: expected 'patient' (a reference) or 'resource' parameters");
            foreach (var p in list)
            {
                if (p is not JsonObject parameter) continue;
                switch (Text(parameter["name"]))
                {
                    case "patient":
                        patient = Text(parameter["valueReference"]?["reference"]) ?? Text(parameter["valueString"]);
                        break;
                    case "encounter":
                        encounter = (Text(parameter["valueReference"]?["reference"]) ?? Text(parameter["valueString"]))?.Split('/')[^1];
                        break;
                    case "resource" when parameter["resource"] is JsonObject r:
                        AddResource(entries, r);
                        break;
                }
            }
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return Outcome(400, OperationOutcome.IssueType.Structure, $"the Parameters do not have the shape this operation takes: {First(e.Message)}");
        }

        if (patient is not null && entries.Count > 0)
            return Outcome(400, OperationOutcome.IssueType.Invalid, "give either a 'patient' reference or 'resource' parameters, not both");
        if (patient is not null)
        {
            var parts = patient.Split('/');
            if (parts.Length < 2 || parts[^2] != "Patient") return Outcome(400, OperationOutcome.IssueType.Invalid, $"the 'patient' parameter '{patient}' is not a Patient reference (Patient/{{id}})");
            return await ScoreReferenceAsync(model, parts[^1], encounter, upstream, cancel);
        }

        if (entries.Count == 0) return Outcome(400, OperationOutcome.IssueType.Required, "Parameters carry neither a 'patient' reference nor 'resource' parameters");
        return ScoreBundle(model, System.Text.Encoding.UTF8.GetBytes(CollectionBundle(entries)), encounter);
    }

    /// <summary>Scores the patient <paramref name="id"/> with the data the configured FHIR server holds.</summary>
    private static async Task<IResult> ScoreReferenceAsync(ScoringModel model, string id, string? encounter, UpstreamFhirClient? upstream, CancellationToken cancel)
    {
        if (upstream is null)
            return Outcome(400, OperationOutcome.IssueType.NotSupported, $"Patient/{id}: this server has no upstream FHIR server (start it with --fhir-server URL), so send the patient's data in the body");
        if (!UpstreamFhirClient.IsFhirId(id)) return Outcome(400, OperationOutcome.IssueType.Invalid, $"'{id}' is not a FHIR id");
        byte[]? bundle;
        try
        {
            bundle = await upstream.FetchPatientBundleAsync(id, model.Task, cancel);
        }
        catch (UpstreamFhirException e)
        {
            return Outcome(e.Status, e.Status == 504 ? OperationOutcome.IssueType.Timeout : OperationOutcome.IssueType.Transient, e.Message);
        }

        return bundle is null
            ? Outcome(404, OperationOutcome.IssueType.NotFound, $"Patient/{id} is not on the FHIR server {upstream.BaseUri}")
            : ScoreBundle(model, bundle, encounter);
    }

    /// <summary>A JSON string's value, or null for anything else (a number where a string belongs is not an error to throw).</summary>
    internal static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    /// <summary>Adds a resource to a collection Bundle's entries; a Bundle (a search result) adds its entries' resources.</summary>
    private static void AddResource(JsonArray entries, JsonObject resource)
    {
        if (Text(resource["resourceType"]) == "Bundle" && resource["entry"] is JsonArray inner)
        {
            foreach (var entry in inner)
                if (entry is JsonObject e && e["resource"] is JsonObject r) entries.Add(new JsonObject { ["resource"] = r.DeepClone() });
        }
        else
        {
            entries.Add(new JsonObject { ["resource"] = resource.DeepClone() }); // a single resource, such as the Patient
        }
    }

    /// <summary>A collection Bundle of <paramref name="entries"/> as JSON.</summary>
    internal static string CollectionBundle(JsonArray entries) =>
        new JsonObject { ["resourceType"] = "Bundle", ["type"] = "collection", ["entry"] = entries }.ToJsonString();

    /// <summary>The top-level <c>resourceType</c> of a JSON document without parsing the rest (null when there is none).</summary>
    private static string? TopLevelResourceType(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json);
        try
        {
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("resourceType"u8)) return r.Read() && r.TokenType == JsonTokenType.String ? r.GetString() : null;
                r.Read();
                r.Skip();
            }
        }
        catch (JsonException)
        {
        }

        return null;
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

        var entries = new JsonArray();
        try
        {
            if (call is not JsonObject o || Text(o["hook"]) != "patient-view" || o["prefetch"] is not JsonObject prefetch)
                return Results.Json(new { error = "expected a patient-view call with prefetch (patient, encounters, observations)" }, statusCode: 400);
            foreach (var (_, value) in prefetch)
                if (value is JsonObject resource) AddResource(entries, resource);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return Results.Json(new { error = $"the CDS Hooks request does not have the shape of a patient-view call: {First(e.Message)}" }, statusCode: 400);
        }

        var bundle = CollectionBundle(entries);
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
                    detail = $"Probability {score.Probability.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)} from federated model {model.Header.Federation} round {model.Header.Round} ({model.Source}); strongest features: " +
                             string.Join(", ", score.TopFeatures.Take(3).Select(f => $"{f.Feature} ({f.Contribution:+0.00;-0.00})")),
                    indicator,
                    source = new { label = "ClinicalFed", url = "https://github.com/clinicalfed" },
                    links = new[] { new { label = "How this score is made", url = "https://github.com/clinicalfed#scoring", type = "absolute" } },
                },
            },
        });
    }

    /// <summary>SMART scopes: <c>system/RiskAssessment.read</c>, or a wider <c>system/RiskAssessment.*</c> / <c>system/*.read</c> / <c>system/*.*</c>.</summary>
    private static bool HasScope(System.Security.Claims.ClaimsPrincipal user) => user.FindAll("scope").Concat(user.FindAll("scp"))
        .SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        .Any(s => s is ServeOptions.RequiredScope or "system/RiskAssessment.*" or "system/*.read" or "system/*.*" or "system/RiskAssessment.rs");

    private static void AddJwt(IServiceCollection services, ServeOptions options)
    {
        var pem = File.ReadAllText(options.JwtKeyFile!);
        Microsoft.IdentityModel.Tokens.SecurityKey key;
        if (TryRsa(pem) is { } rsa) key = new Microsoft.IdentityModel.Tokens.RsaSecurityKey(rsa);
        else
        {
            var ec = System.Security.Cryptography.ECDsa.Create();
            try
            {
                ec.ImportFromPem(pem);
            }
            catch (Exception e) when (e is ArgumentException or System.Security.Cryptography.CryptographicException)
            {
                throw new ArgumentException($"--jwt-key {options.JwtKeyFile}: not an RSA or EC public key in PEM ({e.Message})");
            }
            key = new Microsoft.IdentityModel.Tokens.ECDsaSecurityKey(ec);
        }

        services.AddAuthentication(Microsoft.AspNetCore.Authentication.JwtBearer.JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(o =>
        {
            o.MapInboundClaims = false;
            o.TokenValidationParameters = new Microsoft.IdentityModel.Tokens.TokenValidationParameters
            {
                ValidIssuer = options.JwtIssuer, ValidAudience = options.JwtAudience, IssuerSigningKey = key,
                ValidateIssuer = true, ValidateAudience = true, ValidateLifetime = true, ValidateIssuerSigningKey = true,
                RequireExpirationTime = true, ClockSkew = TimeSpan.FromSeconds(30),
            };
            o.Events = new Microsoft.AspNetCore.Authentication.JwtBearer.JwtBearerEvents
            {
                OnChallenge = async c =>
                {
                    c.HandleResponse();
                    await WriteOutcomeAsync(c.Response, 401, OperationOutcome.IssueType.Login,
                        c.AuthenticateFailure is null ? "a bearer token (JWT) is required" : $"the bearer token was refused: {First(c.AuthenticateFailure.Message)}");
                },
                OnForbidden = c => WriteOutcomeAsync(c.Response, 403, OperationOutcome.IssueType.Forbidden, $"the token lacks the scope {ServeOptions.RequiredScope}"),
            };
        });
    }

    private static System.Security.Cryptography.RSA? TryRsa(string pem)
    {
        try
        {
            var rsa = System.Security.Cryptography.RSA.Create();
            rsa.ImportFromPem(pem);
            return rsa;
        }
        catch (Exception e) when (e is ArgumentException or System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
    }

    private static async Task WriteOutcomeAsync(HttpResponse response, int status, OperationOutcome.IssueType type, string message)
    {
        response.StatusCode = status;
        response.ContentType = "application/fhir+json";
        await response.WriteAsync(Serializer.SerializeToString(new OperationOutcome
        {
            Issue = [new OperationOutcome.IssueComponent { Severity = OperationOutcome.IssueSeverity.Error, Code = type, Diagnostics = message }],
        }));
    }

    private static (string Level, string Indicator) Level(double p) => p >= 0.2 ? ("high", "critical") : p >= 0.05 ? ("moderate", "warning") : ("low", "info");

    /// <summary>
    /// A request body in a buffer rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/> (a typical Bundle is
    /// larger than the 85 KB above which every fresh array would land on the large-object heap); dispose to return it.
    /// </summary>
    private sealed class PooledBody(byte[] buffer, int length) : IDisposable
    {
        private byte[]? _buffer = buffer;

        public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, length);

        public void Dispose()
        {
            if (_buffer is { } b) System.Buffers.ArrayPool<byte>.Shared.Return(b);
            _buffer = null;
        }
    }

    private static async Task<(PooledBody? Body, IResult? Error)> ReadBytesAsync(HttpRequest request)
    {
        var pool = System.Buffers.ArrayPool<byte>.Shared;
        var buffer = pool.Rent(request.ContentLength is > 0 and < int.MaxValue ? (int)request.ContentLength + 1 : 1 << 16);
        int length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = pool.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    pool.Return(buffer);
                    buffer = larger;
                }

                int n = await request.Body.ReadAsync(buffer.AsMemory(length));
                if (n == 0) break;
                length += n;
            }
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            pool.Return(buffer);
            return (null, Outcome(e.StatusCode, OperationOutcome.IssueType.TooLong, e.Message));
        }
        catch
        {
            pool.Return(buffer);
            throw;
        }

        if (length == 0)
        {
            pool.Return(buffer);
            return (null, Outcome(400, OperationOutcome.IssueType.Required, "the request has no body"));
        }

        return (new PooledBody(buffer, length), null);
    }

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

    /// <summary>Why Firely's strict parser refuses <paramref name="body"/> as a Bundle, or null when it accepts it.</summary>
    private static string? StrictProblem(string body)
    {
        try
        {
            Deserializer.Deserialize<Bundle>(body);
            return null;
        }
        catch (Exception e) when (e is DeserializationFailedException or JsonException or FormatException or InvalidCastException or ArgumentException or InvalidOperationException)
        {
            return First(e.Message);
        }
    }

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
                        Operation =
                        [
                            new CapabilityStatement.OperationComponent
                            {
                                Name = operation, Definition = $"http://clinicalfed.dev/OperationDefinition/{operation}",
                                Documentation = $"POST [base]/Patient/${operation} with a Bundle (Patient, Encounters, Observations, Conditions) or Parameters (resource parameters, or a patient reference); "
                                    + $"GET or POST [base]/Patient/[id]/${operation} fetches the record from the configured FHIR server. Returns a RiskAssessment.",
                            },
                        ],
                    },
                ],
            },
        ],
    };

    /// <summary>The RiskAssessment of <paramref name="score"/> as FHIR JSON (the operation's response body).</summary>
    internal static string RenderAssessment(ScoringModel model, RiskScore score) => Serializer.SerializeToString(Assessment(model, score));

    private static RiskAssessment Assessment(ScoringModel model, RiskScore score) => new()
    {
        Status = ObservationStatus.Final,
        Subject = new ResourceReference($"Patient/{score.PatientId}"),
        Encounter = new ResourceReference($"Encounter/{score.EncounterId}"),
        Occurrence = new FhirDateTime(DateTimeOffset.UtcNow),
        Method = new CodeableConcept("http://clinicalfed.dev/model", $"{model.Header.Federation}/round/{model.Header.Round}", $"{model.Header.Strategy} {model.Description}, {model.Source}"),
        Basis = [new ResourceReference($"Patient/{score.PatientId}"), new ResourceReference($"Encounter/{score.EncounterId}"),
            .. score.BasisObservations.Select(id => new ResourceReference($"Observation/{id}"))],
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

/// <summary>Checks for a newer round's model on a timer (<see cref="ModelRegistry.Refresh"/>).</summary>
internal sealed class ModelReloader(ModelRegistry registry, TimeSpan interval) : Microsoft.Extensions.Hosting.BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(stoppingToken)) registry.Refresh();
    }
}
