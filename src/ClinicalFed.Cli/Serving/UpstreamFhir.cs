using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace ClinicalFed.Cli.Serving;

/// <summary>The upstream FHIR server could not answer (unreachable, timed out, or an error status): a 502 or 504.</summary>
public sealed class UpstreamFhirException(string message, int status) : Exception(message)
{
    /// <summary>The status to answer the caller with: 502 (bad gateway) or 504 (timeout).</summary>
    public int Status { get; } = status;
}

/// <summary>
/// Fetches one patient's data from the EHR's FHIR R4 server for a risk operation called with a Patient reference
/// (<c>POST /fhir/Patient/{id}/$sepsis-risk</c>, or Parameters with a <c>patient</c> reference): the Patient, then
/// searches for its Encounters, Observations, Conditions and (readmission) MedicationRequests, following
/// <c>next</c> links within a bound, and hands them on as one collection Bundle — the same input the operation
/// takes in its body, so the score goes through the same converter and extractor.
/// </summary>
public sealed class UpstreamFhirClient(HttpClient http, Uri baseUri, string? bearerToken = null)
{
    /// <summary>Pages followed per search at most (a search beyond them is refused, not truncated silently).</summary>
    public const int MaxPages = 50;

    /// <summary>Resources per page asked for.</summary>
    public const int PageSize = 1000;

    private readonly Uri _base = new(baseUri.AbsoluteUri.EndsWith('/') ? baseUri.AbsoluteUri : baseUri.AbsoluteUri + "/");

    public Uri BaseUri => _base;

    /// <summary>
    /// The patient's resources as a collection Bundle (UTF-8 JSON), or null when the server does not know
    /// <paramref name="patientId"/> (404 / 410).
    /// </summary>
    public async Task<byte[]?> FetchPatientBundleAsync(string patientId, string task, CancellationToken cancel = default)
    {
        if (!IsFhirId(patientId)) throw new ArgumentException($"'{patientId}' is not a FHIR id ([A-Za-z0-9-.]{{1,64}})", nameof(patientId));
        var patient = await GetAsync($"Patient/{patientId}", cancel);
        if (patient is null) return null;
        if (patient is not JsonObject || ServeApp.Text(patient["resourceType"]) != "Patient")
            throw new UpstreamFhirException($"{_base}Patient/{patientId} answered {Kind(patient)}, not a Patient", 502);
        var entries = new JsonArray { new JsonObject { ["resource"] = patient } };
        var types = task == "readmission" ? new[] { "Encounter", "Observation", "Condition", "MedicationRequest" } : ["Encounter", "Observation", "Condition"];
        foreach (var type in types)
            foreach (var resource in await SearchAsync($"{type}?patient={Uri.EscapeDataString(patientId)}&_count={PageSize}", type, cancel))
                entries.Add(new JsonObject { ["resource"] = resource });
        return System.Text.Encoding.UTF8.GetBytes(ServeApp.CollectionBundle(entries));
    }

    /// <summary>What a JSON answer is, for messages: "a Patient", "a JSON array"…</summary>
    private static string Kind(JsonNode node) =>
        node is JsonObject o ? (ServeApp.Text(o["resourceType"]) is { } t ? $"a {t}" : "a JSON object without resourceType") : $"a JSON {node.GetValueKind().ToString().ToLowerInvariant()}";

    /// <summary>True for a FHIR id: 1 to 64 of A–Z, a–z, 0–9, '-' and '.'.</summary>
    public static bool IsFhirId(string id) => id.Length is > 0 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.');

    private async Task<List<JsonNode>> SearchAsync(string query, string type, CancellationToken cancel)
    {
        var found = new List<JsonNode>();
        string? next = query;
        for (int page = 0; next is not null; page++)
        {
            if (page == MaxPages) throw new UpstreamFhirException($"{_base}{query}: more than {MaxPages} pages of {PageSize}; refusing to score on a partial record", 502);
            var bundle = await GetAsync(next, cancel) ?? throw new UpstreamFhirException($"{_base}{next}: the search answered 404", 502);
            if (bundle is not JsonObject || ServeApp.Text(bundle["resourceType"]) != "Bundle")
                throw new UpstreamFhirException($"{_base}{query}: the search answered {Kind(bundle)}, not a Bundle", 502);
            if (bundle["entry"] is JsonArray entries)
                foreach (var entry in entries)
                {
                    // Only the matches: a searchset may also carry included resources and OperationOutcomes.
                    if (entry is not JsonObject e || e["resource"] is not JsonObject resource || ServeApp.Text(resource["resourceType"]) != type) continue;
                    if (e["search"] is JsonObject search && ServeApp.Text(search["mode"]) is { } mode && mode != "match") continue;
                    e.Remove("resource");
                    found.Add(resource);
                }

            next = ServeApp.Text((bundle["link"] as JsonArray)?.FirstOrDefault(l => l is JsonObject link && ServeApp.Text(link["relation"]) == "next")?["url"]);
        }

        return found;
    }

    private async Task<JsonNode?> GetAsync(string relativeOrAbsolute, CancellationToken cancel)
    {
        if (!Uri.TryCreate(_base, relativeOrAbsolute, out var uri))
            throw new UpstreamFhirException($"the FHIR server's link '{relativeOrAbsolute}' is not a URL", 502);
        if (!string.Equals(uri.Authority, _base.Authority, StringComparison.OrdinalIgnoreCase))
            throw new UpstreamFhirException($"{uri}: a link that leaves the configured FHIR server {_base} is not followed", 502);
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/fhir+json"));
        if (bearerToken is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearerToken);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancel);
        }
        catch (TaskCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new UpstreamFhirException($"{uri}: the FHIR server did not answer within {http.Timeout.TotalSeconds:0} s", 504);
        }
        catch (HttpRequestException e)
        {
            throw new UpstreamFhirException($"{uri}: {e.Message}", 502);
        }

        using (response)
        {
            if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone) return null;
            if (!response.IsSuccessStatusCode) throw new UpstreamFhirException($"{uri}: the FHIR server answered {(int)response.StatusCode} {response.ReasonPhrase}", 502);
            try
            {
                return JsonNode.Parse(await response.Content.ReadAsStreamAsync(cancel));
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new UpstreamFhirException($"{uri}: the answer is not JSON ({e.Message.Split('\n')[0]})", 502);
            }
        }
    }
}
