using ClinicalFed.Testing;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;

namespace ClinicalFed.Cdm.Tests.Schemas;

/// <summary>Validates real files against schemas/mapping.schema.json and schemas/convert-report.schema.json, and
/// checks that the schemas and the C# models they describe name the same properties.</summary>
public sealed class SchemaTests : IDisposable
{
    private static readonly string Root = FindRepositoryRoot();
    private static readonly string MappingSchemaPath = Path.Combine(Root, "schemas", "mapping.schema.json");
    private static readonly string ReportSchemaPath = Path.Combine(Root, "schemas", "convert-report.schema.json");
    private static readonly MiniJsonSchema MappingSchema = MiniJsonSchema.Load(MappingSchemaPath);
    private static readonly MiniJsonSchema ReportSchema = MiniJsonSchema.Load(ReportSchemaPath);

    private readonly string _tmp = Directory.CreateTempSubdirectory("clinicalfed-schema-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ClinicalFed.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("no ClinicalFed.sln above " + AppContext.BaseDirectory);
    }

    private static string ShippedMappingText(string name) => File.ReadAllText(Path.Combine(Root, "src", "ClinicalFed.Cdm", "Mappings", name + ".json"));

    // ------------------------------------------------------------------ mapping.schema.json

    public static TheoryData<string> ShippedMappings => new(MappingFile.ShippedNames);

    [Fact]
    public void The_documented_example_mappings_are_shipped() =>
        Assert.Subset(MappingFile.ShippedNames.ToHashSet(), new HashSet<string> { "physionet2019", "diabetes130" });

    [Theory]
    [MemberData(nameof(ShippedMappings))]
    public void Shipped_mapping_validates_against_the_schema(string name)
    {
        Assert.Empty(MappingSchema.Validate(ShippedMappingText(name)));
        Assert.Equal(name, MappingFile.Load(name).Name);
    }

    /// <summary>Each change breaks diabetes130.json: the schema and the C# loader must both reject it.</summary>
    [Theory]
    [InlineData("surprise", "1")]                                 // unknown top-level property
    [InlineData("encounter.admission_column", "\"x\"")]            // unknown nested property
    [InlineData("observations.0.units", "\"/min\"")]               // misspelt property in an array item
    [InlineData("format_version", "2")]
    [InlineData("encounter.time.kind", "\"hours\"")]
    [InlineData("patient.age.kind", "\"decade\"")]
    [InlineData("encounter.length_of_stay.unit", "\"w\"")]
    [InlineData("diagnoses.0.code_system", "\"icd-11\"")]
    [InlineData("labels.0.kind", "\"mortality\"")]
    [InlineData("patient.gender.map.F", "\"woman\"")]
    [InlineData("encounter.time", """{"kind": "timestamp"}""")]   // a time kind other than none needs a column
    [InlineData("source.delimiter", "\";;\"")]
    public void Broken_mapping_fails_validation_and_loading(string path, string valueJson)
    {
        var json = Mutate(ShippedMappingText("diabetes130"), path, valueJson);
        Assert.NotEmpty(MappingSchema.Validate(json));
        Assert.Throws<CdmException>(() => MappingFile.Parse(json, "test"));
    }

    [Fact]
    public void Mapping_schema_names_every_model_property_and_describes_each()
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(MappingSchemaPath));
        var problems = new List<string>();
        CompareProperties(typeof(MappingFile), schema.RootElement, schema.RootElement, "$", problems);
        Assert.Empty(problems);
    }

    // ------------------------------------------------------------------ convert-report.schema.json

    private const string HandMadeReport = """
        {
          "format_version": 1,
          "site": "stmarys-icu",
          "input": "extract-2024.csv",
          "input_kind": "flat-delimited",
          "mapping": "stmarys",
          "started_at": "2025-03-01T08:30:00+00:00",
          "seconds": 12.5,
          "files_read": ["extract-2024.csv"],
          "files_skipped": {},
          "records_read": 1000,
          "rows_outside_site": 20,
          "resources_written": { "Patient": 10, "Encounter": 12, "Observation": 950, "Condition": 0, "MedicationRequest": 0 },
          "skipped_resource_types": {},
          "rejected_total": 3,
          "rejected_by_kind": { "invalid-value": 2, "malformed-row": 1 },
          "rejected_examples": [
            { "file": "extract-2024.csv", "line": 17, "kind": "invalid-value", "message": "'fast' is not a number", "column": "HR" },
            { "file": "extract-2024.csv", "line": 40, "kind": "malformed-row", "message": "4 fields where the header has 5" },
            { "file": "extract-2024.csv", "line": 41, "kind": "invalid-value", "message": "not a number", "column": "HospAdmTime" }
          ],
          "warnings": []
        }
        """;

    [Fact]
    public void Hand_made_report_validates_and_reads()
    {
        Assert.Empty(ReportSchema.Validate(HandMadeReport));
        var path = Path.Combine(_tmp, "convert-report.json");
        File.WriteAllText(path, HandMadeReport);
        Assert.Equal("stmarys-icu", ConversionReport.Read(path).Site);
    }

    [Theory]
    [InlineData("surprise", "true")]
    [InlineData("input_kind", "\"csv\"")]
    [InlineData("rejected_examples.0.kind", "\"typo\"")]
    [InlineData("rejected_examples.0.line", "0")]
    [InlineData("rejected_examples.1.value", "\"80\"")]
    [InlineData("rejected_by_kind.typo", "1")]
    [InlineData("resources_written.Procedure", "1")]
    [InlineData("records_read", "-1")]
    [InlineData("site", "\"st marys\"")]
    public void Broken_report_fails_validation(string path, string valueJson) =>
        Assert.NotEmpty(ReportSchema.Validate(Mutate(HandMadeReport, path, valueJson)));

    [Fact]
    public void Report_of_a_real_flat_conversion_validates()
    {
        var mapping = Path.Combine(_tmp, "tiny.json");
        File.WriteAllText(mapping, """
            {
              "$schema": "https://clinicalfed.dev/schemas/mapping.schema.json",
              "format_version": 1,
              "name": "tiny",
              "patient": { "id_column": "pid", "gender": { "column": "sex", "map": { "F": "female", "M": "male" } } },
              "encounter": { "time": { "kind": "hour-offset", "column": "hour" } },
              "observations": [ { "column": "HR", "code": "8867-4", "unit": "/min", "category": "vital-signs" } ],
              "sites": { "A": { "column": "ward", "values": ["1"] }, "B": { "otherwise": true } }
            }
            """);
        Assert.Empty(MappingSchema.Validate(File.ReadAllText(mapping)));
        var csv = Path.Combine(_tmp, "tiny.csv");
        File.WriteAllText(csv, "pid,ward,sex,hour,HR\np1,1,F,0,80\np1,1,F,1,fast\np2,1,X,0,70\n,1,F,0,70\np3,2,M,0,60\np4,1,M\n");

        var report = Convert(new ConvertOptions(csv, "A", Path.Combine(_tmp, "cdm-flat"), mapping), out var errors);

        Assert.Empty(errors);
        Assert.Equal(1, report.RowsOutsideSite);
        Assert.Contains(report.RejectedExamples, r => r.Column is not null);
        Assert.Contains(report.RejectedExamples, r => r.Column is null);
    }

    [Fact]
    public void Report_of_a_real_fhir_conversion_validates()
    {
        var input = Path.Combine(_tmp, "export.ndjson");
        File.WriteAllText(input, """
            {"resourceType":"Patient","id":"p1","gender":"female"}
            {"resourceType":"Practitioner","id":"dr1"}
            {"resourceType":"Patient","gender":
            {"resourceType":"Patient","gender":"male"}

            """);

        var report = Convert(new ConvertOptions(input, "site-1", Path.Combine(_tmp, "cdm-fhir")), out var errors);

        Assert.Empty(errors);
        Assert.Null(report.Mapping);
        Assert.Equal(1, report.SkippedResourceTypes["Practitioner"]);
        Assert.Equal(2, report.RejectedTotal);
    }

    private static ConversionReport Convert(ConvertOptions options, out List<string> errors)
    {
        var report = CdmConverter.Convert(options);
        errors = ReportSchema.Validate(File.ReadAllText(Path.Combine(options.OutputDirectory, CdmWriter.ReportFileName)));
        return report;
    }

    [Fact]
    public void Report_schema_matches_the_model()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(ReportSchemaPath));
        var root = doc.RootElement;
        var defs = root.GetProperty("$defs");

        Assert.Equal(JsonNames(typeof(ConversionReport)), Names(root.GetProperty("properties")));
        Assert.Equal(JsonNames(typeof(ConversionReport)).Except(["mapping"]).ToHashSet(), Strings(root.GetProperty("required")).ToHashSet());
        Assert.Equal(JsonNames(typeof(Rejection)), Names(defs.GetProperty("rejection").GetProperty("properties")));
        Assert.Equal(
            typeof(RejectionKinds).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetValue(null)!).ToHashSet(),
            Strings(defs.GetProperty("rejectionKind").GetProperty("enum")).ToHashSet());
        Assert.Equal(
            CdmResourceTypes.All.Select(t => t.ToString()).ToHashSet(),
            Strings(root.GetProperty("properties").GetProperty("resources_written").GetProperty("required")).ToHashSet());
        Assert.Equal(ConversionReport.MaxExamples, root.GetProperty("properties").GetProperty("rejected_examples").GetProperty("maxItems").GetInt32());
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>Sets the value at a dotted path (array indexes as numbers), adding the last member if absent.</summary>
    private static string Mutate(string json, string path, string valueJson)
    {
        var root = JsonNode.Parse(json)!;
        var parts = path.Split('.');
        var node = root;
        foreach (var part in parts[..^1]) node = node is JsonArray a ? a[int.Parse(part)]! : node[part]!;
        var value = JsonNode.Parse(valueJson);
        if (node is JsonArray arr) arr[int.Parse(parts[^1])] = value;
        else node[parts[^1]] = value;
        return root.ToJsonString();
    }

    private static HashSet<string> Names(JsonElement obj) => obj.EnumerateObject().Select(p => p.Name).ToHashSet();

    private static IEnumerable<string> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!);

    private static HashSet<string> JsonNames(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name)
            .OfType<string>().ToHashSet();

    private static JsonElement Deref(JsonElement schema, JsonElement root)
    {
        while (schema.TryGetProperty("$ref", out var r))
        {
            var node = root;
            foreach (var part in r.GetString()!.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries)) node = node.GetProperty(part);
            schema = node;
        }
        return schema;
    }

    /// <summary>The serialized properties of <paramref name="type"/> and the schema object's properties must be the
    /// same, each with a description; nested mapping records are compared recursively (lists via items,
    /// dictionaries via additionalProperties).</summary>
    private static void CompareProperties(Type type, JsonElement schema, JsonElement root, string path, List<string> problems)
    {
        schema = Deref(schema, root);
        var props = schema.GetProperty("properties");
        var clr = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite)
            .ToDictionary(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name), p => p.PropertyType);
        foreach (var name in Names(props).Except(clr.Keys)) problems.Add($"{path}.{name}: in the schema, not in {type.Name}");
        foreach (var (name, propertyType) in clr)
        {
            if (!props.TryGetProperty(name, out var ps)) { problems.Add($"{path}.{name}: in {type.Name}, not in the schema"); continue; }
            if (!ps.TryGetProperty("description", out _) && !Deref(ps, root).TryGetProperty("description", out _)) problems.Add($"{path}.{name}: no description");
            var (nested, keyword) = propertyType switch
            {
                { DeclaringType: var d } when d == typeof(MappingFile) => (propertyType, null),
                { IsGenericType: true } g when g.GetGenericArguments()[^1].DeclaringType == typeof(MappingFile) =>
                    (g.GetGenericArguments()[^1], g.GetGenericArguments().Length == 1 ? "items" : "additionalProperties"),
                _ => ((Type?)null, (string?)null),
            };
            if (nested is null) continue;
            var child = keyword is null ? ps : Deref(ps, root).GetProperty(keyword);
            CompareProperties(nested, child, root, $"{path}.{name}", problems);
        }
    }
}
