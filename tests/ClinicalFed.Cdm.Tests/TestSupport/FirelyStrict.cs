using System.Text.Json;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace ClinicalFed.Cdm.Tests.TestSupport;

/// <summary>A resource the Firely SDK refused in strict mode.</summary>
public sealed class FirelyStrictException(string message) : Exception(message);

/// <summary>
/// Parses FHIR R4 JSON with the Firely SDK (Hl7.Fhir.R4) in <see cref="DeserializationMode.Strict"/> mode: unknown
/// elements, wrong JSON types, malformed primitives (dates, codes, ids, decimals), invalid enum codes and missing
/// required elements are all errors. Used to prove that what ClinicalFed writes is valid FHIR R4.
/// </summary>
public static class FirelyStrict
{
    // The deserializer keeps no per-call state, but one per thread costs nothing and removes the question.
    private static readonly ThreadLocal<FhirJsonDeserializer> Deserializer =
        new(() => new FhirJsonDeserializer(new DeserializerSettings().UsingMode(DeserializationMode.Strict)));

    /// <summary>Returns the parsed resource, or throws <see cref="FirelyStrictException"/> naming the resource
    /// (type/id) and every issue the SDK reported.</summary>
    public static Resource Parse(string json)
    {
        Resource? resource;
        IEnumerable<Hl7.Fhir.Utility.CodedException> issues;
        bool ok;
        try { ok = Deserializer.Value!.TryDeserializeResource(json, out resource, out issues); }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or DeserializationFailedException)
        {
            throw new FirelyStrictException($"{Describe(json, null)}: the Firely SDK could not parse it: {e.Message}\n{Shorten(json)}");
        }
        var list = issues?.ToList() ?? [];
        if (!ok || resource is null || list.Count > 0)
            throw new FirelyStrictException(
                $"{Describe(json, resource)}: {list.Count} issue(s) in strict mode:\n  - " +
                string.Join("\n  - ", list.Select(i => $"[{i.ErrorCode}] {i.Message}")) + "\n" + Shorten(json));
        return resource;
    }

    /// <summary>Parses and checks the resource type as well.</summary>
    public static T Parse<T>(string json) where T : Resource
    {
        var r = Parse(json);
        return r as T ?? throw new FirelyStrictException($"{Describe(json, r)}: parsed as {r.TypeName}, expected {typeof(T).Name}");
    }

    private static string Describe(string json, Resource? parsed)
    {
        if (parsed is not null) return $"{parsed.TypeName}/{parsed.Id ?? "(no id)"}";
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            string type = root.TryGetProperty("resourceType", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "(no resourceType)";
            string id = root.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : "(no id)";
            return $"{type}/{id}";
        }
        catch (JsonException) { return "(not JSON)"; }
    }

    private static string Shorten(string json) => json.Length <= 2000 ? json : json[..2000] + "…";
}
