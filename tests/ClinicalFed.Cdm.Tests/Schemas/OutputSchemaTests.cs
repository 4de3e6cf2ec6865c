using ClinicalFed.Testing;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Quality;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Data;
using ClinicalFed.Statistics;

namespace ClinicalFed.Cdm.Tests.Schemas;

/// <summary>
/// Two tiny one-patient sites converted to CDMs, with every output the schemas describe produced from them once:
/// site-a (sepsis onset in the stay, heart rate in /min, female born 1960) and site-b (no sepsis, heart rate in an
/// unconvertible unit, male born 1990), so that the comparison of their quality reports raises flags of every kind.
/// </summary>
public sealed class TinySites : IDisposable
{
    public static readonly DateTimeOffset T0 = new(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public string Folder { get; } = Directory.CreateTempSubdirectory("clinicalfed-outschema-").FullName;
    public string CdmA { get; }
    public string CdmB { get; }
    public string FeaturesA { get; }
    public FeatureSummary SummaryA { get; }
    public QualityReport QualityA { get; }
    public QualityReport QualityB { get; }
    public QualityComparison Comparison { get; }

    public TinySites()
    {
        CdmA = WriteCdm("cdm-a", "site-a", sepsis: true, hrUnit: "/min", gender: "female", birth: new DateOnly(1960, 5, 1));
        CdmB = WriteCdm("cdm-b", "site-b", sepsis: false, hrUnit: "kg", gender: "male", birth: new DateOnly(1990, 5, 1));
        FeaturesA = Path.Combine(Folder, "features-a");
        SummaryA = FeatureExtraction.Run(new FeatureOptions("sepsis", CdmA, FeaturesA));
        QualityA = QualityReport.Build(CdmA);
        QualityB = QualityReport.Build(CdmB);
        Comparison = QualityComparison.Compare([QualityA, QualityB]);
    }

    public string TablePath => Path.Combine(FeaturesA, FeatureTableFile.FileName);

    public string SummaryJson => File.ReadAllText(Path.Combine(FeaturesA, FeatureExtraction.SummaryFileName));

    private string WriteCdm(string name, string site, bool sepsis, string hrUnit, string gender, DateOnly birth)
    {
        var target = Path.Combine(Folder, name);
        using var w = new CdmWriter(target);
        w.Write(new CdmPatient { Id = "p1", Gender = gender, BirthDate = birth });
        w.Write(new CdmEncounter
        {
            Id = "p1-icu", PatientId = "p1", Class = "IMP", Start = T0, End = T0.AddHours(3),
            Types = [new CdmCoding(Systems.Snomed, Systems.IcuStayCode, "Admission to intensive care unit")],
        });
        foreach (var (minutes, value) in new[] { (10, 80m), (90, 95m) })
            w.Write(new CdmObservation
            {
                Id = $"p1-hr-{minutes}", PatientId = "p1", EncounterId = "p1-icu", Category = "vital-signs",
                Code = new CdmCoding(Systems.Loinc, "8867-4", "Heart rate"), Effective = T0.AddMinutes(minutes), Value = value, Unit = hrUnit,
            });
        if (sepsis)
            w.Write(new CdmCondition { Id = "p1-sepsis", PatientId = "p1", EncounterId = "p1-icu", Code = new CdmCoding(Systems.Snomed, Systems.SepsisCode, "Sepsis"), Onset = T0.AddHours(2) });
        var report = new ConversionReport
        {
            Site = site, Input = "tiny.ndjson", InputKind = "fhir-ndjson", StartedAt = T0, RecordsRead = 4,
            ResourcesWritten = new Dictionary<string, long>(w.Counts),
        };
        w.Commit(report.WriteTo);
        return target;
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

/// <summary>
/// Validates the shipped feature specs and the real outputs of <c>features</c>, <c>quality</c> and
/// <c>quality --compare</c> (features-summary.json, features.cft and its header, quality-report.json, the comparison)
/// against the schemas in <c>schemas/</c>; checks that each schema names exactly the properties of its C# model and
/// the enumerations the code uses, so schema and code cannot drift apart; and that broken documents fail.
/// </summary>
public sealed class OutputSchemaTests(TinySites sites) : IClassFixture<TinySites>
{
    private static readonly string Root = FindRepositoryRoot();
    private static string SchemaPath(string name) => Path.Combine(Root, "schemas", name + ".schema.json");
    private static readonly Dictionary<string, MiniJsonSchema> Schemas =
        new[] { "feature-spec", "features-summary", "quality-report", "quality-comparison", "feature-table" }.ToDictionary(n => n, n => MiniJsonSchema.Load(SchemaPath(n)));

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ClinicalFed.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("no ClinicalFed.sln above " + AppContext.BaseDirectory);
    }

    private static void AssertValid(string schema, string json) => Assert.Empty(Schemas[schema].Validate(json));

    // ------------------------------------------------------------------ feature-spec.schema.json

    private static string ShippedSpecText(string name) => File.ReadAllText(Path.Combine(Root, "src", "ClinicalFed.Cdm", "Features", "Specs", name + ".json"));

    public static TheoryData<string> ShippedSpecs => new(FeatureSpec.ShippedNames);

    [Fact]
    public void Both_documented_specs_are_shipped() =>
        Assert.Equal(new[] { "readmission-30d", "sepsis-hourly" }, FeatureSpec.ShippedNames.Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(ShippedSpecs))]
    public void Shipped_spec_validates_against_the_schema(string name)
    {
        AssertValid("feature-spec", ShippedSpecText(name));
        Assert.Equal(name, FeatureSpec.Load(name).Id);
    }

    /// <summary>Each change breaks a shipped spec: the schema and the C# loader must both reject it.</summary>
    [Theory]
    [InlineData("sepsis-hourly", "surprise", "1")]
    [InlineData("sepsis-hourly", "label.lead_time", "6")]                                  // misspelt nested property
    [InlineData("sepsis-hourly", "columns.0.unit", "\"/min\"")]                            // property of another record
    [InlineData("sepsis-hourly", "format_version", "2")]
    [InlineData("sepsis-hourly", "task", "\"mortality\"")]
    [InlineData("sepsis-hourly", "columns.0.kind", "\"abnormal-level\"")]                  // readmission-only kind
    [InlineData("sepsis-hourly", "columns.0.kind", "\"latest\"")]
    [InlineData("sepsis-hourly", "columns.0.measurement", "null")]                         // 'last' needs a measurement
    [InlineData("sepsis-hourly", "measurements.0.codes.0", "\"http://loinc.org|8867\"")]   // malformed LOINC code
    [InlineData("sepsis-hourly", "measurements.0.codes.0", "\"8867-4\"")]                  // no system
    [InlineData("sepsis-hourly", "measurements.0.codes", "[]")]
    [InlineData("sepsis-hourly", "columns", "[]")]
    [InlineData("sepsis-hourly", "label", "<remove>")]
    [InlineData("readmission-30d", "columns.0.kind", "\"icu-hours\"")]                     // sepsis-only kind
    [InlineData("readmission-30d", "columns.8.code", "\"HeartFailure\"")]                  // not a Charlson condition
    [InlineData("readmission-30d", "columns.4", """{"name": "prior_visits", "kind": "prior-visits"}""")]
    public void Broken_spec_fails_validation_and_loading(string spec, string path, string valueJson)
    {
        var json = Mutate(ShippedSpecText(spec), path, valueJson);
        Assert.NotEmpty(Schemas["feature-spec"].Validate(json));
        Assert.Throws<CdmException>(() => FeatureSpec.Parse(json, "test"));
    }

    /// <summary>Columns the loader accepts but the extractor cannot compute (it crashes, or the column is a constant):
    /// the schema is stricter on purpose.</summary>
    [Theory]
    [InlineData("sepsis-hourly", 104, """{"name": "unit_micu", "kind": "encounter-type", "codes": ["https://clinicalfed.dev/fhir/CodeSystem/cdm|MICU"]}""")]
    [InlineData("sepsis-hourly", 104, """{"name": "unit_micu", "kind": "encounter-type", "code": "MICU"}""")]
    [InlineData("readmission-30d", 15, """{"name": "primary_dx", "kind": "primary-diagnosis-chapter", "codes": ["circulatory"]}""")]
    [InlineData("readmission-30d", 15, """{"name": "primary_dx", "kind": "primary-diagnosis-chapter", "code": "cardiac"}""")]
    [InlineData("readmission-30d", 51, """{"name": "insulin", "kind": "medication", "code": "https://clinicalfed.dev/fhir/CodeSystem/diabetes130-medication|insulin"}""")]
    [InlineData("readmission-30d", 14, """{"name": "diagnosis_count", "kind": "diagnosis-count", "codes": ["diagnosis-count"]}""")]
    [InlineData("readmission-30d", 53, """{"name": "discharge_home", "kind": "discharge-disposition", "codes": ["home"]}""")]
    public void Spec_the_extractor_cannot_compute_fails_validation(string spec, int column, string columnJson)
    {
        var json = Mutate(ShippedSpecText(spec), $"columns.{column}", columnJson);
        Assert.Equal(JsonNode.Parse(ShippedSpecText(spec))!["columns"]![column]!["kind"]!.GetValue<string>(), JsonNode.Parse(columnJson)!["kind"]!.GetValue<string>());
        Assert.NotEmpty(Schemas["feature-spec"].Validate(json));
    }

    /// <summary>A column of each kind with nothing but name and kind: whenever the loader rejects it, the schema must too.</summary>
    public static TheoryData<string, string> TaskKinds
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var (task, kinds) in FeatureSpec.KindsByTask)
                foreach (var kind in kinds.Order(StringComparer.Ordinal)) data.Add(task, kind);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(TaskKinds))]
    public void Schema_rejects_every_bare_column_the_loader_rejects(string task, string kind)
    {
        var spec = MinimalSpec(task, new JsonObject { ["name"] = "x", ["kind"] = kind });
        bool loaderRejects = Throws(() => FeatureSpec.Parse(spec, "test"));
        if (loaderRejects) Assert.NotEmpty(Schemas["feature-spec"].Validate(spec));
    }

    /// <summary>One column of every kind of a task, parameterised as the schema asks: the schema and the loader
    /// accept the spec and the extractor computes it on a real CDM.</summary>
    [Theory]
    [InlineData("sepsis")]
    [InlineData("readmission")]
    public void Spec_with_every_kind_validates_loads_and_extracts(string task)
    {
        var columns = FeatureSpec.KindsByTask[task].Order(StringComparer.Ordinal).Select(k => ColumnOfKind(k)).ToArray();
        var json = MinimalSpec(task, columns);
        AssertValid("feature-spec", json);
        var path = Path.Combine(sites.Folder, $"every-kind-{task}.json");
        File.WriteAllText(path, json);
        var summary = FeatureExtraction.Run(new FeatureOptions(task, sites.CdmA, Path.Combine(sites.Folder, $"every-kind-{task}"), SpecPath: path));
        Assert.Equal(task == "sepsis" ? 3 : 1, summary.Rows);
        Assert.Equal(columns.Length, summary.Columns.Count);
    }

    [Fact]
    public void Spec_schema_kinds_match_the_code()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SchemaPath("feature-spec")));
        var root = doc.RootElement;
        var kindDef = root.GetProperty("$defs").GetProperty("columnKind");
        var union = FeatureSpec.KindsByTask.Values.SelectMany(k => k).ToHashSet();
        Assert.Equal(union, Strings(kindDef.GetProperty("enum")).ToHashSet());
        var documented = kindDef.GetProperty("oneOf").EnumerateArray().ToList();
        Assert.Equal(union, documented.Select(k => k.GetProperty("const").GetString()!).ToHashSet());
        Assert.All(documented, k => Assert.True(k.GetProperty("description").GetString()!.Length > 40, $"{k.GetProperty("const")}: describe what it computes"));
        Assert.Equal("#/$defs/columnKind", root.GetProperty("$defs").GetProperty("column").GetProperty("properties").GetProperty("kind").GetProperty("$ref").GetString());

        // Per task: allOf[i] = if task == T then columns.items.properties.kind.enum == KindsByTask[T].
        var perTask = root.GetProperty("allOf").EnumerateArray().ToDictionary(
            b => b.GetProperty("if").GetProperty("properties").GetProperty("task").GetProperty("const").GetString()!,
            b => Strings(b.GetProperty("then").GetProperty("properties").GetProperty("columns").GetProperty("items").GetProperty("properties").GetProperty("kind").GetProperty("enum")).ToHashSet());
        Assert.Equal(FeatureSpec.KindsByTask.Keys.ToHashSet(), perTask.Keys.ToHashSet());
        foreach (var (task, kinds) in FeatureSpec.KindsByTask) Assert.Equal(kinds.ToHashSet(), perTask[task]);
        Assert.Equal(FeatureSpec.KindsByTask.Keys.ToHashSet(), Strings(root.GetProperty("properties").GetProperty("task").GetProperty("enum")).ToHashSet());

        var columnRules = root.GetProperty("$defs").GetProperty("column").GetProperty("allOf").EnumerateArray().ToList();
        JsonElement Rule(string kind) => columnRules.Single(r =>
            r.GetProperty("if").GetProperty("properties").GetProperty("kind").TryGetProperty("const", out var c) && c.GetString() == kind);
        Assert.Equal(Enum.GetNames<CharlsonCondition>().ToHashSet(),
            Strings(Rule("charlson-condition").GetProperty("then").GetProperty("properties").GetProperty("code").GetProperty("enum")).ToHashSet());
        var chapters = Enumerable.Range(0, 1000).Select(i => Charlson.Icd9Chapter(i.ToString("000", System.Globalization.CultureInfo.InvariantCulture))).Append(Charlson.Icd9Chapter("V58")).ToHashSet();
        Assert.Equal(chapters, Strings(Rule("primary-diagnosis-chapter").GetProperty("then").GetProperty("properties").GetProperty("code").GetProperty("enum")).ToHashSet());
    }

    [Fact]
    public void Spec_schema_matches_the_model()
    {
        var naming = FeatureSpec.JsonOptions.PropertyNamingPolicy;
        var problems = new List<string>();
        CompareModel("feature-spec", typeof(FeatureSpec), "", naming, inputModel: true, problems);
        CompareModel("feature-spec", typeof(FeatureSpec.LabelSpec), "properties/label", naming, inputModel: true, problems);
        CompareModel("feature-spec", typeof(FeatureSpec.Measurement), "properties/measurements/items", naming, inputModel: true, problems);
        CompareModel("feature-spec", typeof(FeatureSpec.Column), "properties/columns/items", naming, inputModel: true, problems);
        Assert.Empty(problems);
    }

    private static string MinimalSpec(string task, params JsonObject[] columns) => new JsonObject
    {
        ["format_version"] = 1, ["id"] = "test-" + task, ["version"] = "0.0.1", ["task"] = task,
        ["label"] = new JsonObject { ["name"] = "y" },
        ["measurements"] = new JsonArray(new JsonObject { ["name"] = "hr", ["codes"] = new JsonArray("http://loinc.org|8867-4"), ["unit"] = "/min", ["plausible_min"] = 0, ["plausible_max"] = 300 }),
        ["columns"] = new JsonArray(columns.Select(c => (JsonNode)c).ToArray()),
    }.ToJsonString();

    private static JsonObject ColumnOfKind(string kind)
    {
        var c = new JsonObject { ["name"] = "c_" + kind, ["kind"] = kind };
        const string cdm = "https://clinicalfed.dev/fhir/CodeSystem/cdm|";
        switch (kind)
        {
            case "last" or "measured" or "hours-since" or "abnormal-level": c["measurement"] = "hr"; break;
            case "encounter-type": c["code"] = cdm + "MICU"; break;
            case "prior-visits": c["code"] = "EMER"; c["codes"] = new JsonArray(cdm + "prior-year-emergency-visits"); break;
            case "charlson-condition": c["code"] = "RenalDisease"; break;
            case "primary-diagnosis-chapter": c["code"] = "circulatory"; break;
            case "diagnosis-count": c["codes"] = new JsonArray(cdm + "diagnosis-count"); break;
            case "medication-count": c["codes"] = new JsonArray(cdm + "medication-count"); break;
            case "reported-count": c["codes"] = new JsonArray(cdm + "lab-test-count"); break;
            case "medication": c["codes"] = new JsonArray("http://www.nlm.nih.gov/research/umls/rxnorm|860975"); break;
            case "discharge-disposition": c["code"] = "home"; break;
            case "admit-source": c["codes"] = new JsonArray("emd"); break;
        }
        return c;
    }

    // ------------------------------------------------------------------ features-summary.schema.json, feature-table.schema.json

    [Fact]
    public void Real_features_summary_validates()
    {
        AssertValid("features-summary", sites.SummaryJson);
        Assert.Equal(3, sites.SummaryA.Rows);
        Assert.Equal(3, sites.SummaryA.Positives);
        Assert.Equal("site-a", sites.SummaryA.Site);
    }

    [Fact]
    public void Real_feature_table_header_validates_as_read_and_as_stored()
    {
        var header = FeatureTableFile.ReadHeader(sites.TablePath);
        AssertValid("feature-table", JsonSerializer.Serialize(header, FeatureTableFile.JsonOptions));
        AssertValid("feature-table", ReadStoredTable(sites.TablePath).HeaderJson);
        Assert.Equal("sepsis_label", header.Label);
        Assert.Null(header.Imputation);
        foreach (var method in Enum.GetNames<ImputationMethod>())
            foreach (var scope in new[] { "site", "federated" })
            {
                var imputed = header with { Imputation = $"{method.ToLowerInvariant()} of {scope} statistics (site-a, site-b)" };
                AssertValid("feature-table", JsonSerializer.Serialize(imputed, FeatureTableFile.JsonOptions));
            }
    }

    /// <summary>Reads features.cft byte by byte as the schema's description lays it out, and compares it with what
    /// the library's reader sees: the documented layout is the real one.</summary>
    [Fact]
    public void Feature_table_layout_is_as_documented()
    {
        var stored = ReadStoredTable(sites.TablePath);
        var table = FeatureTableFile.Load(sites.TablePath);
        Assert.Equal(JsonSerializer.Serialize(table.Header, FeatureTableFile.JsonOptions), stored.HeaderJson);
        Assert.Equal(table.Rows, stored.Rows.Count);
        Assert.Equal(sites.SummaryA.Rows, stored.Rows.Count);
        for (int i = 0; i < table.Rows; i++)
        {
            var (patient, encounter, hour, label, values) = stored.Rows[i];
            Assert.Equal(table.Keys[i], new RowKey(patient, encounter, hour));
            Assert.Equal(table.Labels[i], label);
            Assert.Equal(table.Row(i).ToArray().Select(BitConverter.SingleToInt32Bits), values.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Equal(new[] { 0, 1, 2 }, stored.Rows.Select(r => r.Hour));
        Assert.All(stored.Rows, r => Assert.Equal(("p1", "p1-icu", 1f), (r.Patient, r.Encounter, r.Label)));
        int hr = table.Header.Columns.ToList().IndexOf("hr"), temp = table.Header.Columns.ToList().IndexOf("temp");
        Assert.Equal(new[] { 80f, 95f, 95f }, stored.Rows.Select(r => r.Values[hr]));
        Assert.All(stored.Rows, r => Assert.True(float.IsNaN(r.Values[temp]), "never measured: NaN"));
    }

    private sealed record StoredTable(string HeaderJson, List<(string Patient, string Encounter, int Hour, float Label, float[] Values)> Rows);

    private static StoredTable ReadStoredTable(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal("CFFT\n"u8.ToArray(), bytes[..5]);
        int n = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(5, 4));
        Assert.Equal((byte)'{', bytes[9]); // UTF-8 without BOM
        var headerJson = Encoding.UTF8.GetString(bytes, 9, n);
        int columns = JsonNode.Parse(headerJson)!["columns"]!.AsArray().Count;
        using var body = new MemoryStream();
        using (var gz = new GZipStream(new MemoryStream(bytes, 9 + n, bytes.Length - 9 - n), CompressionMode.Decompress)) gz.CopyTo(body);
        var b = body.ToArray();
        var rows = new List<(string, string, int, float, float[])>();
        int pos = 0;
        string Id()
        {
            int len = b[pos++];
            var s = Encoding.UTF8.GetString(b, pos, len);
            pos += len;
            return s;
        }
        while (pos < b.Length)
        {
            var patient = Id();
            var encounter = Id();
            int hour = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(pos, 4));
            float label = BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(pos + 4, 4));
            pos += 8;
            var values = new float[columns];
            for (int c = 0; c < columns; c++, pos += 4) values[c] = BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(pos, 4));
            rows.Add((patient, encounter, hour, label, values));
        }
        Assert.Equal(b.Length, pos); // nothing after the last row
        return new StoredTable(headerJson, rows);
    }

    // ------------------------------------------------------------------ quality-report.schema.json, quality-comparison.schema.json

    [Fact]
    public void Real_quality_reports_validate()
    {
        AssertValid("quality-report", sites.QualityA.ToJson());
        AssertValid("quality-report", sites.QualityB.ToJson());
        Assert.Contains(sites.QualityA.SexDistribution, b => b.Suppressed && b.Count is null);   // one patient < min cell count
        Assert.Contains(sites.QualityA.SexDistribution, b => !b.Suppressed && b.Count == 0);
        Assert.Equal(2, sites.QualityB.Measurements.Single(m => m.Name == "hr").UnitProblems["kg"]);
    }

    [Fact]
    public void Real_quality_comparison_validates()
    {
        var c = sites.Comparison;
        AssertValid("quality-comparison", c.ToJson());
        Assert.Equal(new[] { "site-a", "site-b" }, c.Sites);
        Assert.Equal(new[] { "site-a", "site-b" }, c.OutlierSites);
        var metrics = c.Flags.Select(f => f.Metric).ToHashSet();
        Assert.Subset(metrics, new HashSet<string> { "label_prevalence", "missing_fraction:hr", "unit_problems:hr", "age_median", "male_fraction" });
        var same = QualityComparison.Compare([sites.QualityA, QualityReport.Build(sites.CdmA, site: "site-c")]);
        Assert.Empty(same.Flags);
        AssertValid("quality-comparison", same.ToJson());
    }

    [Fact]
    public void Output_schemas_match_the_models()
    {
        var problems = new List<string>();
        CompareModel("features-summary", typeof(FeatureSummary), "", FeatureSummary.JsonOptions.PropertyNamingPolicy, inputModel: false, problems);
        CompareModel("features-summary", typeof(MeasurementQuality), "properties/measurements/items", null, inputModel: false, problems);
        CompareModel("quality-report", typeof(QualityReport), "", QualityReport.JsonOptions.PropertyNamingPolicy, inputModel: false, problems);
        CompareModel("quality-report", typeof(MeasurementQualityEntry), "properties/measurements/items", null, inputModel: false, problems);
        CompareModel("quality-report", typeof(BinCount), "properties/age_distribution/items", null, inputModel: false, problems);
        CompareModel("quality-report", typeof(BinCount), "properties/sex_distribution/items", null, inputModel: false, problems);
        CompareModel("quality-comparison", typeof(QualityComparison), "", QualityReport.JsonOptions.PropertyNamingPolicy, inputModel: false, problems);
        CompareModel("quality-comparison", typeof(ComparisonOptions), "properties/options", QualityReport.JsonOptions.PropertyNamingPolicy, inputModel: false, problems);
        CompareModel("quality-comparison", typeof(QualityFlag), "properties/flags/items", QualityReport.JsonOptions.PropertyNamingPolicy, inputModel: false, problems);
        CompareModel("feature-table", typeof(FeatureTableHeader), "", FeatureTableFile.JsonOptions.PropertyNamingPolicy, inputModel: false, problems);
        Assert.Empty(problems);
    }

    /// <summary>The enumerations in the output schemas are the ones the code produces.</summary>
    [Fact]
    public void Output_schema_enumerations_match_the_code()
    {
        var extractors = new[] { "SepsisFeatureExtractor.cs", "ReadmissionFeatureExtractor.cs" }
            .Select(f => File.ReadAllText(Path.Combine(Root, "src", "ClinicalFed.Cdm", "Features", f))).ToList();
        var exclusions = extractors.SelectMany(s => Regex.Matches(s, """Exclude\("([^"]+)"\)""").Select(m => m.Groups[1].Value)).ToHashSet();
        var labelSources = extractors.SelectMany(s => s.Split('\n')).Where(l => l.Contains("summary.LabelSource", StringComparison.Ordinal))
            .SelectMany(l => Regex.Matches(l, "\"([a-z0-9-]+)\"").Select(m => m.Groups[1].Value)).ToHashSet();
        Assert.Equal(5, exclusions.Count);
        Assert.Equal(4, labelSources.Count);

        var summary = Schema("features-summary").GetProperty("properties");
        Assert.Equal(exclusions, EnumAt(summary, "excluded/propertyNames"));
        Assert.Equal(labelSources, EnumAt(summary, "label_source/propertyNames"));

        var quality = Schema("quality-report").GetProperty("properties");
        Assert.Equal(exclusions, EnumAt(quality, "excluded/propertyNames"));
        Assert.Equal(CdmResourceTypes.All.Select(t => t.ToString()).ToHashSet(), EnumAt(quality, "resources/propertyNames"));
        Assert.Equal(typeof(RejectionKinds).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetValue(null)!).ToHashSet(),
            EnumAt(quality, "conversion_rejected_by_kind/propertyNames"));
        Assert.Equal(sites.QualityA.AgeDistribution.Select(b => b.Bin).ToHashSet(), EnumAt(quality, "age_distribution/items/properties/bin"));
        Assert.Equal(sites.QualityA.SexDistribution.Select(b => b.Bin).ToHashSet(), EnumAt(quality, "sex_distribution/items/properties/bin"));
        Assert.Equal(sites.QualityA.AgeDistribution.Count, quality.GetProperty("age_distribution").GetProperty("minItems").GetInt32());

        foreach (var name in new[] { "features-summary", "quality-report", "quality-comparison", "feature-table" })
            Assert.Equal(FeatureSpec.KindsByTask.Keys.ToHashSet(), EnumAt(Schema(name).GetProperty("properties"), "task"));
    }

    /// <summary>Each change breaks a real output document: the schema must reject it.</summary>
    [Theory]
    [InlineData("features-summary", "rows", "<remove>")]
    [InlineData("features-summary", "surprise", "1")]
    [InlineData("features-summary", "prevalence", "1.5")]
    [InlineData("features-summary", "positives", "-1")]
    [InlineData("features-summary", "excluded.icu-stay-too-short", "1")]
    [InlineData("features-summary", "measurements.0.observations", "2")]
    [InlineData("features-summary", "columns", "[]")]
    [InlineData("quality-report", "positives", "<remove>")]
    [InlineData("quality-report", "task", "\"mortality\"")]
    [InlineData("quality-report", "resources.Procedure", "1")]
    [InlineData("quality-report", "conversion_rejected_by_kind.typo", "1")]
    [InlineData("quality-report", "measurements.0.missing_fraction", "2")]
    [InlineData("quality-report", "sex_distribution.0.bin", "\"woman\"")]
    [InlineData("quality-report", "sex_distribution.2.suppressed", "true")]           // a withheld count must be null
    [InlineData("quality-report", "sex_distribution.0.suppressed", "false")]          // a shown count must be a number
    [InlineData("quality-comparison", "options.prevalence_ratio", "0.5")]       // must exceed 1
    [InlineData("quality-comparison", "options.PrevalenceRatio", "2")]         // names are snake_case
    [InlineData("quality-comparison", "flags.0.metric", "\"prevalence\"")]
    [InlineData("quality-comparison", "flags.0.value", "\"NaN\"")]
    [InlineData("quality-comparison", "sites", "[\"site-a\"]")]
    [InlineData("quality-comparison", "outlier_sites", "<remove>")]
    [InlineData("feature-table", "label", "<remove>")]
    [InlineData("feature-table", "format_version", "2")]
    [InlineData("feature-table", "columns", "[\"hr\", \"hr\"]")]
    [InlineData("feature-table", "imputation", "\"filled with zeros\"")]
    [InlineData("feature-table", "site", "\"\"")]
    public void Broken_output_fails_validation(string schema, string path, string valueJson)
    {
        var original = RealDocument(schema);
        AssertValid(schema, original);
        Assert.NotEmpty(Schemas[schema].Validate(Mutate(original, path, valueJson)));
    }

    private string RealDocument(string schema) => schema switch
    {
        "features-summary" => sites.SummaryJson,
        "quality-report" => sites.QualityA.ToJson(),
        "quality-comparison" => sites.Comparison.ToJson(),
        "feature-table" => ReadStoredTable(sites.TablePath).HeaderJson,
        _ => throw new ArgumentOutOfRangeException(nameof(schema)),
    };

    [Fact]
    public void Every_property_of_the_new_schemas_is_described()
    {
        var problems = new List<string>();
        foreach (var name in Schemas.Keys)
        {
            var root = Schema(name);
            if (!root.TryGetProperty("$id", out var id) || id.GetString() != $"https://clinicalfed.dev/schemas/{name}.schema.json") problems.Add($"{name}: $id");
            if (root.GetProperty("$schema").GetString() != "https://json-schema.org/draft/2020-12/schema") problems.Add($"{name}: $schema");
            if (root.GetProperty("description").GetString()!.Length < 200) problems.Add($"{name}: top-level description too short");
            Walk(root, name, root, problems);
        }
        Assert.Empty(problems);

        static void Walk(JsonElement node, string path, JsonElement root, List<string> problems)
        {
            if (node.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var item in node.EnumerateArray()) Walk(item, $"{path}[{i++}]", root, problems);
                return;
            }
            if (node.ValueKind != JsonValueKind.Object) return;
            if (node.TryGetProperty("properties", out var props) && props.ValueKind == JsonValueKind.Object && !path.Contains("/if", StringComparison.Ordinal) && !path.Contains("/then", StringComparison.Ordinal) && !path.Contains("/else", StringComparison.Ordinal) && !path.EndsWith("/items", StringComparison.Ordinal))
                foreach (var p in props.EnumerateObject())
                    if (!p.Value.TryGetProperty("description", out _) && !Deref(p.Value, root).TryGetProperty("description", out _))
                        problems.Add($"{path}.{p.Name}: no description");
            foreach (var kw in node.EnumerateObject()) Walk(kw.Value, $"{path}/{kw.Name}", root, problems);
        }
    }

    // ------------------------------------------------------------------ helpers

    private static JsonElement Schema(string name) => JsonDocument.Parse(File.ReadAllText(SchemaPath(name))).RootElement.Clone();

    private static bool Throws(Action a)
    {
        try { a(); return false; }
        catch (CdmException) { return true; }
    }

    /// <summary>The object schema at a '/'-separated path of keywords below the root, following $ref at each step.</summary>
    private static JsonElement At(JsonElement root, string path)
    {
        var node = Deref(root, root);
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries)) node = Deref(node.GetProperty(part), root);
        return node;
    }

    private static HashSet<string> EnumAt(JsonElement properties, string path)
    {
        var parts = path.Split('/');
        var node = properties.GetProperty(parts[0]);
        foreach (var part in parts[1..]) node = node.GetProperty(part);
        return Strings(node.GetProperty("enum")).ToHashSet();
    }

    private static JsonElement Deref(JsonElement schema, JsonElement root)
    {
        while (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("$ref", out var r))
        {
            var node = root;
            foreach (var part in r.GetString()!.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries)) node = node.GetProperty(part);
            schema = node;
        }
        return schema;
    }

    private static IEnumerable<string> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!);

    /// <summary>The schema object at <paramref name="path"/> must name exactly the JSON properties of
    /// <paramref name="type"/> (JsonPropertyName, else the serializer's naming policy, else the C# name), describe each,
    /// forbid others, and require: for an input model its C# <c>required</c> members, for an output model everything
    /// (the writers always write every property).</summary>
    private static void CompareModel(string schemaName, Type type, string path, JsonNamingPolicy? naming, bool inputModel, List<string> problems)
    {
        var root = Schema(schemaName);
        var obj = At(root, path);
        var where = $"{schemaName}:{(path.Length == 0 ? "$" : path)} ({type.Name})";
        var clr = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttribute<JsonIgnoreAttribute>() is null && (inputModel ? p.CanWrite : p.CanRead))
            .ToDictionary(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? naming?.ConvertName(p.Name) ?? p.Name);
        var props = obj.GetProperty("properties");
        var schemaNames = props.EnumerateObject().Select(p => p.Name).ToHashSet();
        foreach (var n in schemaNames.Except(clr.Keys)) problems.Add($"{where}: '{n}' in the schema, not in the model");
        foreach (var n in clr.Keys.Except(schemaNames)) problems.Add($"{where}: '{n}' in the model, not in the schema");
        foreach (var p in props.EnumerateObject())
            if (!p.Value.TryGetProperty("description", out _) && !Deref(p.Value, root).TryGetProperty("description", out _)) problems.Add($"{where}: '{p.Name}' has no description");
        if (!obj.TryGetProperty("additionalProperties", out var ap) || ap.ValueKind != JsonValueKind.False) problems.Add($"{where}: additionalProperties is not false");
        var required = obj.TryGetProperty("required", out var r) ? Strings(r).ToHashSet() : [];
        var expected = inputModel ? clr.Where(kv => kv.Value.GetCustomAttribute<RequiredMemberAttribute>() is not null).Select(kv => kv.Key).ToHashSet() : clr.Keys.ToHashSet();
        if (!required.SetEquals(expected)) problems.Add($"{where}: required [{string.Join(", ", required.Order())}], expected [{string.Join(", ", expected.Order())}]");
    }

    /// <summary>Sets the value at a dotted path (array indexes as numbers), adding the last member if absent; the
    /// value "&lt;remove&gt;" removes it.</summary>
    private static string Mutate(string json, string path, string valueJson)
    {
        var root = JsonNode.Parse(json)!;
        var parts = path.Split('.');
        var node = root;
        foreach (var part in parts[..^1]) node = node is JsonArray a ? a[int.Parse(part, System.Globalization.CultureInfo.InvariantCulture)]! : node[part]!;
        if (valueJson == "<remove>")
        {
            if (node is JsonArray arr) arr.RemoveAt(int.Parse(parts[^1], System.Globalization.CultureInfo.InvariantCulture));
            else Assert.True(node.AsObject().Remove(parts[^1]), $"no '{path}' to remove");
            return root.ToJsonString();
        }
        var value = JsonNode.Parse(valueJson);
        if (node is JsonArray array) array[int.Parse(parts[^1], System.Globalization.CultureInfo.InvariantCulture)] = value;
        else node[parts[^1]] = value;
        return root.ToJsonString();
    }
}
