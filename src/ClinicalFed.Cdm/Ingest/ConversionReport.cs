using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClinicalFed.Cdm.Ingest;

/// <summary>One input record (line, row, cell or resource) that did not enter the CDM, and why.</summary>
public sealed record Rejection(
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("line")] long Line,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("column")] string? Column = null);

/// <summary>Stable rejection kinds, for scripts that count them.</summary>
public static class RejectionKinds
{
    public const string MalformedJson = "malformed-json";
    public const string MissingRequired = "missing-required";
    public const string InvalidValue = "invalid-value";
    public const string UnknownCode = "unknown-code";
    public const string UnconvertibleUnit = "unconvertible-unit";
    public const string MalformedRow = "malformed-row";
    public const string UnsupportedResource = "unsupported-resource";
}

/// <summary><c>convert-report.json</c>: what a conversion read, wrote, skipped and rejected (aggregates and input
/// positions only; no values that identify a patient).</summary>
public sealed class ConversionReport
{
    public const int MaxExamples = 200;

    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("site")] public string Site { get; set; } = "";
    [JsonPropertyName("input")] public string Input { get; set; } = "";
    [JsonPropertyName("input_kind")] public string InputKind { get; set; } = "";
    [JsonPropertyName("mapping")] public string? Mapping { get; set; }
    [JsonPropertyName("started_at")] public DateTimeOffset StartedAt { get; set; }
    [JsonPropertyName("seconds")] public double Seconds { get; set; }
    [JsonPropertyName("files_read")] public List<string> FilesRead { get; } = [];
    [JsonPropertyName("files_skipped")] public Dictionary<string, string> FilesSkipped { get; } = [];
    [JsonPropertyName("records_read")] public long RecordsRead { get; set; }
    [JsonPropertyName("rows_outside_site")] public long RowsOutsideSite { get; set; }
    [JsonPropertyName("resources_written")] public Dictionary<string, long> ResourcesWritten { get; set; } = [];
    [JsonPropertyName("skipped_resource_types")] public SortedDictionary<string, long> SkippedResourceTypes { get; } = new(StringComparer.Ordinal);
    [JsonPropertyName("rejected_total")] public long RejectedTotal { get; set; }
    [JsonPropertyName("rejected_by_kind")] public SortedDictionary<string, long> RejectedByKind { get; } = new(StringComparer.Ordinal);
    [JsonPropertyName("rejected_examples")] public List<Rejection> RejectedExamples { get; } = [];
    [JsonPropertyName("warnings")] public List<string> Warnings { get; } = [];

    public void Reject(string file, long line, string kind, string message, string? column = null)
    {
        RejectedTotal++;
        RejectedByKind[kind] = RejectedByKind.GetValueOrDefault(kind) + 1;
        if (RejectedExamples.Count < MaxExamples) RejectedExamples.Add(new Rejection(file, line, kind, message, column));
    }

    public void Skip(string resourceType) => SkippedResourceTypes[resourceType] = SkippedResourceTypes.GetValueOrDefault(resourceType) + 1;

    // Populate: the collections are get-only, so Read must fill them rather than skip them.
    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, PreferredObjectCreationHandling = JsonObjectCreationHandling.Populate };

    public void WriteTo(Stream s) => JsonSerializer.Serialize(s, this, JsonOptions);

    public static ConversionReport Read(string path) =>
        JsonSerializer.Deserialize<ConversionReport>(File.ReadAllText(path), JsonOptions) ?? throw new CdmException($"{path}: empty report");
}
