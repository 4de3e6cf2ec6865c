using ClinicalFed.Testing;
using System.Buffers.Binary;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ClinicalFed.Federation;
using ClinicalFed.Storage;
using ClinicalFed.Trees;

namespace ClinicalFed.Storage.Tests;

/// <summary>
/// The federation schemas against files a store and a round aggregation really write, against the C# records (same
/// property names, same enumerations), and against broken documents.
/// </summary>
public sealed class SchemaTests : IDisposable
{
    private static readonly string SchemaFolder = FindSchemas();
    private static readonly MiniJsonSchema ManifestSchema = MiniJsonSchema.Load(Path.Combine(SchemaFolder, "round-manifest.schema.json"));
    private static readonly MiniJsonSchema UpdateSchema = MiniJsonSchema.Load(Path.Combine(SchemaFolder, "update.schema.json"));
    private static readonly MiniJsonSchema ModelSchema = MiniJsonSchema.Load(Path.Combine(SchemaFolder, "model.schema.json"));

    private readonly TempStore _temp = new();

    public void Dispose() => _temp.Dispose();

    private static string FindSchemas()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "schemas");
            if (File.Exists(Path.Combine(candidate, "round-manifest.schema.json"))) return candidate;
        }

        throw new DirectoryNotFoundException("schemas/ not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The JSON header of a framed file, as written (magic, int32 LE length, header).</summary>
    private static JsonElement Header(byte[] file)
    {
        int length = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(5));
        return JsonDocument.Parse(file.AsMemory(9, length)).RootElement.Clone();
    }

    private static void AssertValid(MiniJsonSchema schema, JsonElement document)
    {
        var errors = schema.Validate(document);
        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors) + Environment.NewLine + document.GetRawText());
    }

    private static void AssertInvalid(MiniJsonSchema schema, JsonNode document, string expectedFragment)
    {
        var errors = schema.Validate(JsonDocument.Parse(document.ToJsonString()).RootElement);
        Assert.True(errors.Any(e => e.Contains(expectedFragment)), $"expected an error containing '{expectedFragment}', got: {string.Join(" | ", errors)}");
    }

    private static StrategySpec[] AllSpecs() =>
    [
        new StrategySpec { Name = "fedavg" },
        StrategySpec.From(new FedAvgOptions { Weighting = UpdateWeighting.Uniform }),
        StrategySpec.From(new FedProxOptions { ProximalMu = 0.01 }, new Dictionary<string, JsonElement>
        {
            ["client_local_epochs"] = JsonSerializer.SerializeToElement(2),
            ["client_optimizer"] = JsonSerializer.SerializeToElement("sgd"),
        }),
        StrategySpec.From(new FedAvgMOptions()),
        StrategySpec.From(new FedAdamOptions()),
        StrategySpec.From(new FedYogiOptions()),
        StrategySpec.From(new FedAdagradOptions()),
        StrategySpec.From(new TreeBaggingOptions { Weighting = UpdateWeighting.Uniform }),
        StrategySpec.From(new TreeCyclicOptions()),
    ];

    /// <summary>A manifest for <paramref name="spec"/>, of model kind trees for the tree strategies.</summary>
    private static RoundManifest ManifestFor(int round, StrategySpec spec) =>
        StrategyNames.Trees.Contains(spec.Name) ? TreeManifest(round, spec) : Fixtures.Manifest(round, spec);

    private static RoundManifest TreeManifest(int round, StrategySpec spec) => Fixtures.Manifest(round, spec, dimension: 108) with
    {
        Model = new ModelSpec { Kind = ModelKinds.Trees, Dimension = 108, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
    };

    /// <summary>A two-tree ensemble over 108 features.</summary>
    private static TreeEnsembleModel Ensemble() =>
        new(108, -3.2, [new DecisionTree([7], [0.5f], [true], [~0], [~1], [0.1, -0.2]), DecisionTree.Constant(0.05)]);

    private static byte[] TreeUpdateBytes(string site, long examples)
    {
        using var ms = new MemoryStream();
        UpdateFile.Write(ms, Fixtures.Header(site, examples, dimension: 108), Ensemble());
        return ms.ToArray();
    }

    [Fact]
    public async Task Written_manifests_of_every_strategy_are_valid()
    {
        var specs = AllSpecs();
        for (int round = 0; round < specs.Length; round++)
            await _temp.Store.PutManifestAsync(ManifestFor(round, specs[round]));

        for (int round = 0; round < specs.Length; round++)
        {
            var bytes = File.ReadAllBytes(_temp.Store.FullPath(StoreLayout.Manifest("sepsis", round)));
            AssertValid(ManifestSchema, JsonDocument.Parse(bytes).RootElement);
        }
    }

    [Fact]
    public async Task Written_update_and_model_headers_are_valid()
    {
        var store = _temp.Store;
        await store.PutManifestAsync(Fixtures.Manifest(0, StrategySpec.From(new FedAvgMOptions())));
        await store.PutUpdateAsync(Fixtures.Header("A", 3, metrics: new Dictionary<string, double> { ["loss"] = 0.4 }), new float[] { 1, 2, 3 });
        await store.PutUpdateAsync(Fixtures.Header("B", 5, kind: ParameterKinds.Delta), new float[] { -1, 0, 1 });
        var outcome = await new RoundAggregator(store, new ManualClock(Fixtures.T0.AddHours(1))).AggregateAsync("sepsis", 0, closeNow: true);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);
        await store.PutPersonalizedModelAsync(Fixtures.Model([1, 1, 1], site: "A"));
        var lightGbm = ModelFile.FromOpaque(Fixtures.Model([1]).Header with { Kind = ModelKinds.Trees, Dimension = 108, Site = "B" }, "tree\n"u8.ToArray());
        await store.PutPersonalizedModelAsync(lightGbm);

        foreach (var site in new[] { "A", "B" })
            AssertValid(UpdateSchema, Header(File.ReadAllBytes(store.FullPath(StoreLayout.Update("sepsis", 0, site)))));
        AssertValid(ModelSchema, Header(File.ReadAllBytes(store.FullPath(StoreLayout.GlobalModel("sepsis", 0)))));
        foreach (var site in new[] { "A", "B" })
            AssertValid(ModelSchema, Header(File.ReadAllBytes(store.FullPath(StoreLayout.PersonalizedModel("sepsis", 0, site)))));
    }

    [Fact]
    public async Task Written_tree_updates_and_tree_global_model_are_valid()
    {
        var store = _temp.Store;
        await store.PutManifestAsync(TreeManifest(0, new StrategySpec { Name = StrategyNames.TreeBagging }));
        foreach (var (site, examples) in new[] { ("A", 3L), ("B", 5L) })
            await store.PutUpdateAsync("sepsis", 0, site, new MemoryStream(TreeUpdateBytes(site, examples)));
        var outcome = await new RoundAggregator(store, new ManualClock(Fixtures.T0.AddHours(1))).AggregateAsync("sepsis", 0, closeNow: true);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);

        foreach (var site in new[] { "A", "B" })
        {
            var header = Header(File.ReadAllBytes(store.FullPath(StoreLayout.Update("sepsis", 0, site))));
            Assert.Equal("tree-ensemble", header.GetProperty("payload_encoding").GetString());
            AssertValid(UpdateSchema, header);
        }

        var global = Header(File.ReadAllBytes(store.FullPath(StoreLayout.GlobalModel("sepsis", 0))));
        Assert.Equal("tree-ensemble", global.GetProperty("payload_encoding").GetString());
        AssertValid(ModelSchema, global);
    }

    public static TheoryData<string, Type> SchemaRecords => new()
    {
        { "round-manifest.schema.json", typeof(RoundManifest) },
        { "update.schema.json", typeof(UpdateHeader) },
        { "model.schema.json", typeof(ModelHeader) },
    };

    /// <summary>
    /// Properties a reader accepts without: an update's payload_encoding and payload_bytes, which float32 updates
    /// leave out (as every update did before tree ensembles), and an unsigned update's signature, all of which the C# record
    /// does not write when null.
    /// </summary>
    private static readonly Dictionary<string, string[]> Optional = new()
    {
        ["update.schema.json"] = ["payload_bytes", "payload_encoding", "privacy", "signature"],
    };

    [Theory]
    [MemberData(nameof(SchemaRecords))]
    public void Schema_properties_match_the_record_and_are_all_required(string schemaFile, Type record)
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(SchemaFolder, schemaFile)));
        var root = schema.RootElement;
        var schemaProperties = root.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order().ToArray();
        Assert.Equal(JsonNames(record), schemaProperties);
        var optional = Optional.GetValueOrDefault(schemaFile, []);
        Assert.Equal(schemaProperties.Except(optional), root.GetProperty("required").EnumerateArray().Select(e => e.GetString()!).Order());
        Assert.Equal(optional, OmittedWhenNull(record));
        Assert.False(root.GetProperty("additionalProperties").GetBoolean());
    }

    [Fact]
    public void Nested_manifest_objects_match_their_records()
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(SchemaFolder, "round-manifest.schema.json")));
        var props = schema.RootElement.GetProperty("properties");
        Assert.Equal(JsonNames(typeof(StrategySpec)), props.GetProperty("strategy").GetProperty("properties").EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(JsonNames(typeof(ModelSpec)), props.GetProperty("model").GetProperty("properties").EnumerateObject().Select(p => p.Name).Order());

        // Every option key the strategies write is described.
        var described = props.GetProperty("strategy").GetProperty("properties").GetProperty("options").GetProperty("properties")
            .EnumerateObject().Select(p => p.Name).ToHashSet();
        foreach (var spec in AllSpecs())
            Assert.All(spec.Options.Keys.Where(k => !k.StartsWith("client_")), k => Assert.Contains(k, described));
    }

    [Fact]
    public void Schema_enumerations_match_the_code()
    {
        JsonElement Enum(string file, params string[] path)
        {
            var e = JsonDocument.Parse(File.ReadAllText(Path.Combine(SchemaFolder, file))).RootElement;
            foreach (var p in path) e = e.GetProperty(p);
            return e.GetProperty("enum");
        }

        static string[] Values(JsonElement e) => e.EnumerateArray().Select(v => v.GetString()!).ToArray();
        Assert.Equal(StrategyNames.All.Concat(StrategyNames.Trees), Values(Enum("round-manifest.schema.json", "properties", "strategy", "properties", "name")));
        var treeRule = JsonDocument.Parse(File.ReadAllText(Path.Combine(SchemaFolder, "round-manifest.schema.json"))).RootElement.GetProperty("allOf")[0];
        Assert.Equal(StrategyNames.Trees, Values(treeRule.GetProperty("if").GetProperty("properties").GetProperty("strategy").GetProperty("properties").GetProperty("name").GetProperty("enum")));
        Assert.Equal(ModelKinds.All, Values(Enum("round-manifest.schema.json", "properties", "model", "properties", "kind")));
        Assert.Equal(ModelKinds.All, Values(Enum("model.schema.json", "properties", "kind")));
        Assert.Equal(ParameterKinds.All, Values(Enum("update.schema.json", "properties", "parameter_kind")));
        Assert.Equal(PayloadEncodings.All, Values(Enum("model.schema.json", "properties", "payload_encoding")));
        Assert.Equal(UpdatePayloadEncodings.All, Values(Enum("update.schema.json", "properties", "payload_encoding")));
    }

    [Theory]
    [InlineData("A", true)]
    [InlineData("hospital_A-2.icu", true)]
    [InlineData("-x_", true)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData(".a", false)]
    [InlineData("a.", false)]
    [InlineData("a/b", false)]
    [InlineData("", false)]
    public void Schema_name_pattern_agrees_with_FederationNames(string name, bool valid)
    {
        Assert.Equal(valid, FederationNames.IsValid(name));
        var doc = JsonNode.Parse(Fixtures.Manifest().ToJsonBytes())!;
        doc["federation"] = name;
        Assert.Equal(valid, ManifestSchema.Validate(JsonDocument.Parse(doc.ToJsonString()).RootElement).Count == 0);
    }

    [Fact]
    public void Broken_manifests_fail()
    {
        JsonNode Manifest(StrategySpec? spec = null, int round = 0) => JsonNode.Parse(Fixtures.Manifest(round, spec).ToJsonBytes())!;

        // A later round may start from zeros (no earlier round reached its quorum); a number is still no path.
        var later = Manifest(round: 2);
        later["global_model"] = 3;
        AssertInvalid(ManifestSchema, later, "$.global_model");

        var traversal = Manifest(round: 2);
        traversal["global_model"] = "federations/../rounds/00001/global.cfm";
        AssertInvalid(ManifestSchema, traversal, "$.global_model");

        var fedavgWithMu = Manifest();
        fedavgWithMu["strategy"]!["options"] = new JsonObject { ["proximal_mu"] = 0.1 };
        AssertInvalid(ManifestSchema, fedavgWithMu, "property name 'proximal_mu'");

        var proxWithoutMu = Manifest();
        proxWithoutMu["strategy"] = new JsonObject { ["name"] = "fedprox", ["options"] = new JsonObject() };
        AssertInvalid(ManifestSchema, proxWithoutMu, "required property 'proximal_mu' is missing");

        var nested = Manifest();
        nested["strategy"]!["options"] = new JsonObject { ["client_schedule"] = new JsonArray(1, 2) };
        AssertInvalid(ManifestSchema, nested, "$.strategy.options.client_schedule: expected number or string");

        var unknownStrategy = Manifest();
        unknownStrategy["strategy"]!["name"] = "fedsgd";
        AssertInvalid(ManifestSchema, unknownStrategy, "is not one of");

        var extra = Manifest();
        extra["notes"] = "x";
        AssertInvalid(ManifestSchema, extra, "unknown property 'notes'");

        var zeroQuorum = Manifest();
        zeroQuorum["quorum"] = 0;
        AssertInvalid(ManifestSchema, zeroQuorum, "$.quorum: 0 < minimum 1");

        var baggingLogistic = Manifest();
        baggingLogistic["strategy"] = new JsonObject { ["name"] = "tree-bagging", ["options"] = new JsonObject() };
        AssertInvalid(ManifestSchema, baggingLogistic, "$.model.kind");
        var cyclicMomentum = JsonNode.Parse(TreeManifest(0, new StrategySpec { Name = StrategyNames.TreeCyclic }).ToJsonBytes())!;
        AssertValid(ManifestSchema, JsonDocument.Parse(cyclicMomentum.ToJsonString()).RootElement);
        cyclicMomentum["strategy"]!["options"] = new JsonObject { ["server_momentum"] = 0.9 };
        AssertInvalid(ManifestSchema, cyclicMomentum, "property name 'server_momentum'");
    }

    [Fact]
    public void Broken_update_and_model_headers_fail()
    {
        var update = JsonNode.Parse(Header(Fixtures.UpdateBytes(Fixtures.Header("A", 3), [1, 2, 3])).GetRawText())!;
        var badSite = update.DeepClone();
        badSite["site"] = "../A";
        AssertInvalid(UpdateSchema, badSite, "$.site");
        var upperHash = update.DeepClone();
        upperHash["payload_sha256"] = ((string)update["payload_sha256"]!).ToUpperInvariant();
        AssertInvalid(UpdateSchema, upperHash, "$.payload_sha256");
        var kind = update.DeepClone();
        kind["parameter_kind"] = "gradient";
        AssertInvalid(UpdateSchema, kind, "$.parameter_kind");
        var missing = update.DeepClone().AsObject();
        missing.Remove("example_count");
        AssertInvalid(UpdateSchema, missing, "required property 'example_count' is missing");

        var model = JsonNode.Parse(Header(Fixtures.Model([1, 2]).ToBytes()).GetRawText())!;
        var lightGbmLogistic = model.DeepClone();
        lightGbmLogistic["payload_encoding"] = "lightgbm-text";
        AssertInvalid(ModelSchema, lightGbmLogistic, "$.kind");
        var noSite = model.DeepClone().AsObject();
        noSite.Remove("site");
        AssertInvalid(ModelSchema, noSite, "required property 'site' is missing");
        // Tree ensembles: the encoding ties payload_bytes, parameter_kind and kind.
        static JsonObject Edited(JsonNode document, Action<JsonObject> edit)
        {
            var copy = document.DeepClone().AsObject();
            edit(copy);
            return copy;
        }

        var tree = JsonNode.Parse(Header(TreeUpdateBytes("A", 3)).GetRawText())!;
        AssertInvalid(ModelSchema, Edited(model, m => m["payload_encoding"] = "tree-ensemble"), "$.kind");
        AssertInvalid(UpdateSchema, Edited(tree, u => u.Remove("payload_bytes")), "required property 'payload_bytes' is missing");
        AssertInvalid(UpdateSchema, Edited(tree, u => u["parameter_kind"] = "delta"), "$.parameter_kind");
        AssertInvalid(UpdateSchema, Edited(tree, u => u["payload_encoding"] = "onnx"), "$.payload_encoding");
        var floatSpelledOut = Edited(update, u => (u["payload_encoding"], u["payload_bytes"]) = ("float32", 12));
        AssertValid(UpdateSchema, JsonDocument.Parse(floatSpelledOut.ToJsonString()).RootElement);
    }

    private static string[] OmittedWhenNull(Type type) => type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.GetCustomAttribute<JsonIgnoreAttribute>()?.Condition == JsonIgnoreCondition.WhenWritingNull)
        .Select(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()!.Name)
        .Order()
        .ToArray();

    private static string[] JsonNames(Type type) => type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Select(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name)
        .Where(n => n is not null)
        .Select(n => n!)
        .Order()
        .ToArray();
}
