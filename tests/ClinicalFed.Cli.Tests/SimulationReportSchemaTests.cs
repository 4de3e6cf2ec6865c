using ClinicalFed.Testing;
using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ClinicalFed.Cli.Simulation;
using StrategyNames = ClinicalFed.Federation.StrategyNames;

namespace ClinicalFed.Cli.Tests;

/// <summary>
/// schemas/simulation-report.schema.json against real <c>report.json</c> files (a logistic demo and a cyclic-tree
/// simulation on the demo's CDM folders), against reports serialized from hand-built models with every edge case
/// (undefined metrics, "NaN" round metrics, empty validation AUROCs), and against broken reports; and the schema
/// against the C# records by reflection, so that the two cannot drift apart.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class SimulationReportSchemaTests
{
    private static readonly string Root = FindRepositoryRoot();
    private static readonly string SchemaPath = Path.Combine(Root, "schemas", "simulation-report.schema.json");
    private static readonly MiniJsonSchema Schema = MiniJsonSchema.Load(SchemaPath);
    private static readonly string[] DemoSites = ["academic_micu", "community", "surgical_centre", "rural"];

    [Fact]
    public void SimulationReportSchema_accepts_the_demo_report_and_rejects_it_broken()
    {
        using var tmp = new TempDir();
        var dir = tmp["demo"];
        var (exit, _, err) = Cli.Run("demo", "--out", dir, "--patients", "200", "--rounds", "2");
        Assert.True(exit == 0, err);
        var json = File.ReadAllText(Path.Combine(dir, "report.json"));
        AssertValid(json);
        using (var doc = JsonDocument.Parse(json))
        {
            Assert.Equal("logistic", doc.RootElement.GetProperty("model").GetString());
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("tree_mode").ValueKind);
            Assert.Equal(DemoSites, doc.RootElement.GetProperty("sites").EnumerateArray().Select(s => s.GetProperty("name").GetString()!));
        }

        Assert.NotEmpty(Schema.Validate(Mutate(json, "sites/0/auroc/federated", "\"high\"")));
        Assert.NotEmpty(Schema.Validate(Mutate(json, "rounds", null)));
        Assert.NotEmpty(Schema.Validate(Mutate(json, "sites/0/auprc/local", "\"NaN\"")));
        Assert.NotEmpty(Schema.Validate(Mutate(json, "bytes_uploaded", null)));
        Assert.NotEmpty(Schema.Validate(Mutate(json, "seconds", null)));
    }

    [Fact]
    public void SimulationReportSchema_accepts_a_cyclic_tree_report_on_the_demo_cdms()
    {
        using var tmp = new TempDir();
        var demo = tmp["demo"];
        var (exit, _, err) = Cli.Run("demo", "--out", demo, "--patients", "200", "--rounds", "1");
        Assert.True(exit == 0, err);
        var args = new List<string> { "simulate", "--task", "sepsis", "--model", "trees", "--tree-mode", "cyclic", "--rounds", "2", "--trees", "10", "--leaves", "7", "--out", tmp["trees"] };
        foreach (var site in DemoSites) args.AddRange(["--site", $"{site}={Path.Combine(demo, "cdm", site)}"]);
        (exit, _, err) = Cli.Run([.. args]);
        Assert.True(exit == 0, err);
        var json = File.ReadAllText(tmp["trees/report.json"]);
        AssertValid(json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("trees", doc.RootElement.GetProperty("model").GetString());
        Assert.Equal("cyclic", doc.RootElement.GetProperty("tree_mode").GetString());
        Assert.Equal(2, doc.RootElement.GetProperty("rounds").GetArrayLength());
        // The trees' candidates are not the logistic ones, and bagging exchanges once.
        Assert.NotEmpty(Schema.Validate(Mutate(json, "sites/0/personalization/method", "\"fine-tune\"")));
        Assert.NotEmpty(Schema.Validate(Mutate(json, "tree_mode", "\"bagging\"")));
        Assert.NotEmpty(Schema.Validate(Mutate(json, "tree_mode", "null")));
    }

    [Fact]
    public async System.Threading.Tasks.Task Histogram_tree_simulation_writes_a_valid_report_and_a_servable_round()
    {
        using var tmp = new TempDir();
        var demo = tmp["demo"];
        var (exit, _, err) = Cli.Run("demo", "--out", demo, "--patients", "150", "--rounds", "1");
        Assert.True(exit == 0, err);
        var args = new List<string> { "simulate", "--task", "sepsis", "--model", "trees", "--tree-mode", "histogram", "--rounds", "2", "--trees", "9", "--leaves", "7", "--out", tmp["trees"] };
        foreach (var site in DemoSites.Take(3)) args.AddRange(["--site", $"{site}={Path.Combine(demo, "cdm", site)}"]);
        (exit, _, err) = Cli.Run([.. args]);
        Assert.True(exit == 0, err);
        var json = File.ReadAllText(tmp["trees/report.json"]);
        AssertValid(json);
        var report = System.Text.Json.JsonSerializer.Deserialize<SimulationReport>(json, SimulationReport.JsonOptions)!;
        Assert.Equal(("histogram", TreeSimulation.HistogramStrategy), (report.TreeMode, report.Strategy));
        Assert.Equal(2, report.Rounds.Count);
        Assert.Equal(report.BytesUploaded.Total, report.Rounds.Sum(r => r.BytesUploaded));
        Assert.Equal(report.BytesUploaded.Total, report.BytesUploaded.PerSite.Values.Sum());
        Assert.Contains(report.Notes, n => n.Contains("histogram of summed gradients", StringComparison.Ordinal));

        // Round 0 holds the 9-tree ensemble under a manifest, and serves like any round.
        var roundDir = tmp["trees/store/federations/simulation/rounds/00000"];
        var model = ClinicalFed.Cli.Serving.ScoringModel.Load(roundDir);
        Assert.Equal(ClinicalFed.Federation.ModelKinds.Trees, model.Kind);
        var global = (await new ClinicalFed.Storage.LocalFolderStore(tmp["trees/store"]).GetGlobalModelAsync("simulation", 0))!;
        Assert.Equal((9, TreeSimulation.HistogramStrategy), (global.TreeEnsemble.Trees.Count, global.Header.Strategy));
        Assert.True(File.Exists(Path.Combine(roundDir, "personalized", DemoSites[0] + ".cfm")));

        Assert.NotEmpty(Schema.Validate(Mutate(json, "tree_mode", "\"boosting\"")));
        Assert.Empty(report.Rejected);

        Assert.Null(report.Contribution); // off by default for trees

        // Contribution: one ensemble per coalition of the three sites, scored by federated validation AUROC.
        var scored = new List<string>(args) { "--contribution", "exact" };
        scored[scored.IndexOf("--out") + 1] = tmp["scored"];
        (exit, _, err) = Cli.Run([.. scored]);
        Assert.True(exit == 0, err);
        json = File.ReadAllText(tmp["scored/report.json"]);
        AssertValid(json);
        var withContribution = System.Text.Json.JsonSerializer.Deserialize<SimulationReport>(json, SimulationReport.JsonOptions)!;
        var contribution = withContribution.Contribution!;
        Assert.Equal(8, contribution.CoalitionsEvaluated);
        Assert.Equal([1, 2, 3], contribution.Sites.Select(c => c.Rank).Order());
        // Efficient values add up to u(all) − u(none): the federation's validation AUROC above the base score's 0.5.
        Assert.InRange(contribution.Sites.Sum(c => c.Shapley), 0.01, 0.5);
        Assert.True(withContribution.Seconds.ContainsKey("contribution_scoring"));

        // A site sending noise is left out at its first histogram, and the report says why.
        var attacked = new List<string>(args) { "--attack", $"noise:{DemoSites[2]}", "--contribution", "exact" };
        attacked[attacked.IndexOf("--out") + 1] = tmp["attacked"];
        (exit, _, err) = Cli.Run([.. attacked]);
        Assert.True(exit == 0, err);
        json = File.ReadAllText(tmp["attacked/report.json"]);
        AssertValid(json);
        var attackedReport = System.Text.Json.JsonSerializer.Deserialize<SimulationReport>(json, SimulationReport.JsonOptions)!;
        var rejected = Assert.Single(attackedReport.Rejected);
        Assert.Equal((1, DemoSites[2]), (rejected.Round, rejected.Site));
        Assert.Contains("is not a whole number", rejected.Reason);
        // It is rejected in every coalition too (alone, none is left to grow trees): it contributed nothing.
        var nothing = attackedReport.Contribution!.Sites.Single(c => c.Name == DemoSites[2]);
        Assert.Equal((0.0, 0.0), (nothing.Shapley, nothing.LeaveOneOut));
        // More checkpoints than trees is refused when the options are built.
        args[args.IndexOf("--trees") + 1] = "1";
        args[args.IndexOf("--out") + 1] = tmp["few"];
        (exit, _, err) = Cli.Run([.. args]);
        Assert.NotEqual(0, exit);
        Assert.Contains("--rounds: 2 checkpoints of histogram boosting need at least as many trees (--trees 1)", err);
        // Secure aggregation adds histograms in a ring; whole ensembles (bagging, cyclic) cannot be.
        args[args.IndexOf("--tree-mode") + 1] = "cyclic";
        (exit, _, err) = Cli.Run([.. args, "--secure-aggregation"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("--secure-aggregation: needs --model logistic, or trees with --tree-mode histogram", err);
    }

    [Fact]
    public void Private_histogram_trees_write_a_valid_report_with_the_budget_they_spent()
    {
        using var tmp = new TempDir();
        var demo = tmp["demo"];
        var (exit, _, err) = Cli.Run("demo", "--out", demo, "--patients", "150", "--rounds", "1");
        Assert.True(exit == 0, err);
        var args = new List<string> { "simulate", "--task", "sepsis", "--model", "trees", "--tree-mode", "histogram", "--rounds", "2", "--trees", "6",
            "--dp-epsilon", "4", "--secure-aggregation", "--out", tmp["dp"] };
        foreach (var site in DemoSites.Take(3)) args.AddRange(["--site", $"{site}={Path.Combine(demo, "cdm", site)}"]);
        (exit, _, err) = Cli.Run([.. args]);
        Assert.True(exit == 0, err);
        var json = File.ReadAllText(tmp["dp/report.json"]);
        AssertValid(json);
        var report = System.Text.Json.JsonSerializer.Deserialize<SimulationReport>(json, SimulationReport.JsonOptions)!;
        var privacy = report.Privacy!;
        Assert.Equal("patient", privacy.Unit);
        Assert.StartsWith(ClinicalFed.Privacy.PrivacyMechanisms.HistogramGaussian, privacy.Mechanisms[0]);
        Assert.Equal(3, privacy.Sites.Count);
        // The defaults: depth 4, so 2 + 6 × 5 queries; σ calibrated to spend at most ε = 4 on them.
        Assert.All(privacy.Sites, s =>
        {
            Assert.Equal(32, s.Steps);
            Assert.InRange(s.EpsilonSpent, 3.9, 4.0);
            Assert.Equal(ClinicalFed.Privacy.HistogramPrivacy.Guarantee(s.NoiseMultiplier, 32, 1e-5).Epsilon, s.EpsilonSpent, 3);
            Assert.True(s.Patients > 0);
        });
        Assert.Contains(report.Notes, n => n.Contains("Histogram mode with differential privacy", StringComparison.Ordinal));
        Assert.Contains(report.Notes, n => n.Contains("learning rate 0.3, depth at most 4, 32 bins per feature, 8 features drawn per tree", StringComparison.Ordinal));
        var global = ClinicalFed.Cli.Serving.ScoringModel.Load(tmp["dp/store/federations/simulation/rounds/00000"]);
        Assert.Equal(ClinicalFed.Federation.ModelKinds.Trees, global.Kind);

        // A fixed σ that would overspend is refused, naming both numbers.
        args[args.IndexOf("--out") + 1] = tmp["over"];
        (exit, _, err) = Cli.Run([.. args, "--dp-noise", "0.5"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("--dp-noise 0.5: 32 queries", err);
        Assert.Contains("more than --dp-epsilon 4", err);

        // Bagging: every site grows the ensemble it uploads privately, one turn of 2 + 6 × 5 queries charged to its ledger.
        args[args.IndexOf("--tree-mode") + 1] = "bagging";
        args[args.IndexOf("--out") + 1] = tmp["bagging"];
        args.Remove("--secure-aggregation");
        (exit, _, err) = Cli.Run([.. args]);
        Assert.True(exit == 0, err);
        json = File.ReadAllText(tmp["bagging/report.json"]);
        AssertValid(json);
        var bagging = System.Text.Json.JsonSerializer.Deserialize<SimulationReport>(json, SimulationReport.JsonOptions)!.Privacy!;
        Assert.Contains("grows the ensemble it uploads", bagging.Mechanisms[0]);
        Assert.All(bagging.Sites, s => Assert.Equal((32L, 1), (s.Steps, s.Rounds)));
        Assert.All(bagging.Sites, s => Assert.InRange(s.EpsilonSpent, 3.9, 4.0));
        (exit, _, err) = Cli.Run("simulate", "--task", "sepsis", "--site", $"{DemoSites[0]}={Path.Combine(demo, "cdm", DemoSites[0])}", "--tree-depth", "0", "--out", tmp["bad"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("--tree-depth: 0 (expected 1 to 16)", err);
        Assert.Contains("--tree-features, --tree-depth, --tree-bins, --tree-learning-rate: need --model trees", err);
    }

    [Fact]
    public void SimulationReportSchema_accepts_serialized_edge_cases()
    {
        var logistic = Sample("logistic").ToJson();
        AssertValid(logistic);
        Assert.Contains("\"NaN\"", logistic); // the serializer writes the undefined round metrics as named literals
        AssertValid(Sample("trees", "bagging").ToJson());
        AssertValid(Sample("trees", "cyclic", rounds: 3).ToJson());
        AssertValid((Sample("logistic") with { Sites = [Site("A", personalization: null)] }).ToJson());
    }

    [Theory]
    [InlineData("surprise", "true")]
    [InlineData("format_version", "2")]
    [InlineData("task", "\"mortality\"")]
    [InlineData("model", "\"forest\"")]
    [InlineData("strategy", "\"fedmagic\"")]
    [InlineData("rounds_requested", "0")]
    [InlineData("feature_spec", "\"sepsis-hourly\"")]
    [InlineData("tree_mode", "\"cyclic\"")]
    [InlineData("rounds", null)]
    [InlineData("rounds", "[]")]
    [InlineData("sites", "[]")]
    [InlineData("sites/0/name", "\"st marys\"")]
    [InlineData("sites/0/surprise", "1")]
    [InlineData("sites/0/test_rows", "0")]
    [InlineData("sites/0/test_positives", "-1")]
    [InlineData("sites/0/auroc/federated", "\"high\"")]
    [InlineData("sites/0/auroc/federated", "1.2")]
    [InlineData("sites/0/auroc/federated", "\"NaN\"")]
    [InlineData("sites/0/auroc/personalized", null)]
    [InlineData("sites/0/auprc/pooled", "0.5")]
    [InlineData("sites/0/personalization/method", "\"magic\"")]
    [InlineData("sites/0/personalization/method", "\"local-trees\"")]
    [InlineData("sites/0/personalization/detail", "\"local trees on global\"")]
    [InlineData("sites/0/personalization/validation_auroc/global", "\"NaN\"")]
    [InlineData("sites/0/personalization/validation_auroc/global", "\"Infinity\"")]
    [InlineData("sites/0/personalization/validation_auroc/oracle", "0.9")]
    [InlineData("sites/0/roc/federated/1", "[0.5]")]
    [InlineData("sites/0/roc/oracle", "[[0, 0], [1, 1]]")]
    [InlineData("sites/0/roc/local", null)]
    [InlineData("sites/0/calibration/local/9", null)]
    [InlineData("sites/0/calibration/local/0/count", "-1")]
    [InlineData("sites/0/calibration/local/0/observed", "\"NaN\"")]
    [InlineData("rounds/0/round", "0")]
    [InlineData("rounds/0/auroc/A", "\"high\"")]
    [InlineData("rounds/0/auroc/A", "\"Infinity\"")]
    [InlineData("rounds/0/auroc/A", "null")]
    [InlineData("rounds/0/auprc/B", "-0.1")]
    [InlineData("rounds/0/seconds", "\"NaN\"")]
    [InlineData("bytes_uploaded/total", "-1")]
    [InlineData("bytes_uploaded/per_site/A", "1.5")]
    [InlineData("seconds/total", null)]
    [InlineData("seconds/lunch", "1")]
    [InlineData("notes/0", "3")]
    public void SimulationReportSchema_rejects_a_broken_report(string path, string? valueJson) =>
        Assert.NotEmpty(Schema.Validate(Mutate(Sample("logistic").ToJson(), path, valueJson)));

    [Theory]
    [InlineData("tree_mode", "null")]
    [InlineData("tree_mode", "\"boosting\"")]
    [InlineData("sites/0/personalization/method", "\"fine-tune\"")]
    [InlineData("sites/0/personalization/detail", "\"fine-tune\"")]
    [InlineData("sites/0/personalization/validation_auroc/fine-tune", "0.7")]
    public void SimulationReportSchema_rejects_logistic_values_in_a_tree_report(string path, string? valueJson) =>
        Assert.NotEmpty(Schema.Validate(Mutate(Sample("trees", "cyclic").ToJson(), path, valueJson)));

    [Fact]
    public void SimulationReportSchema_rejects_several_bagging_rounds()
    {
        var json = Sample("trees", "bagging").ToJson();
        var node = JsonNode.Parse(json)!;
        node["rounds"]!.AsArray().Add(node["rounds"]![0]!.DeepClone());
        Assert.NotEmpty(Schema.Validate(node.ToJsonString()));
    }

    /// <summary>Every record the report serializes and the schema object describing it name the same properties, all
    /// required (the writer never omits one), each with a description, null allowed exactly where C# allows it.</summary>
    [Fact]
    public void SimulationReportSchema_matches_the_records()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SchemaPath));
        var root = doc.RootElement;
        var problems = new List<string>();
        var visited = new HashSet<Type>();
        Compare(typeof(SimulationReport), root, root, "$", problems, visited);
        Assert.Empty(problems);
        Assert.Equal(
            new HashSet<Type> { typeof(SimulationReport), typeof(SiteResult), typeof(BaselineMetrics), typeof(PersonalizationChoice), typeof(CalibrationBin), typeof(RoundResult), typeof(BytesUploaded), typeof(PrivacyReport), typeof(SitePrivacyReport),
                typeof(RejectedReport), typeof(ContributionReport), typeof(SiteContribution), typeof(RobustnessReport), typeof(RobustnessRun), typeof(HierarchyReport),
                typeof(AsyncReport), typeof(ScheduleResult), typeof(TimelinePoint), typeof(CompressionReport), typeof(CompressedRoundReport), typeof(SiteLevelPrivacyReport), typeof(ExcludedContributor) },
            visited);
        Assert.Equal(StrategyNames.All.Concat(StrategyNames.Trees).Append(TreeSimulation.HistogramStrategy).ToHashSet(), Strings(root.GetProperty("properties").GetProperty("strategy").GetProperty("enum")).ToHashSet());
        Assert.Equal(new SimulationReport { Task = "sepsis", Model = "logistic", Strategy = "fedavg", FeatureSpec = "x 1", Sites = [], Rounds = [], BytesUploaded = new(), Seconds = new Dictionary<string, double>() }.FormatVersion,
            root.GetProperty("properties").GetProperty("format_version").GetProperty("const").GetInt32());
    }

    // ------------------------------------------------------------------ helpers

    private static void AssertValid(string json)
    {
        var errors = Schema.Validate(json);
        Assert.True(errors.Count == 0, string.Join("\n", errors.Take(20)));
    }

    private static SimulationReport Sample(string model, string? treeMode = null, int rounds = 2)
    {
        bool trees = model == "trees";
        int entries = treeMode == "bagging" ? 1 : rounds;
        var roundList = Enumerable.Range(1, entries).Select(r => new RoundResult
        {
            Round = r, BytesUploaded = 100, Seconds = 0.25,
            Auroc = new() { ["A"] = 0.7 + r / 100.0, ["B"] = double.NaN },
            Auprc = new() { ["A"] = 0.2, ["B"] = double.NaN },
        }).ToList();
        return new SimulationReport
        {
            Task = "sepsis", Model = model, TreeMode = treeMode, Strategy = StrategyNames.FedAvg, RoundsRequested = rounds, Seed = 1,
            FeatureSpec = "sepsis-hourly 1.0.0",
            Sites =
            [
                Site("A", new PersonalizationChoice("interpolation", "interpolation α=0.5", new Dictionary<string, double>
                {
                    ["global"] = 0.8, [trees ? "local trees on global" : "fine-tune"] = 0.79, ["local"] = 0.7,
                    ["interpolation α=0.25"] = 0.75, ["interpolation α=0.5"] = 0.81, ["interpolation α=0.75"] = 0.805,
                })),
                Site("B", new PersonalizationChoice("global", "global", new Dictionary<string, double>()), positives: 0),
            ],
            Rounds = roundList,
            BytesUploaded = new BytesUploaded { Total = 100 * entries, PerSite = new() { ["A"] = 50 * entries, ["B"] = 50 * entries } },
            Seconds = new Dictionary<string, double>
            {
                ["convert_and_features"] = 1, ["federated_statistics_and_imputation"] = 0.1, ["local_only"] = 0.2, ["centralized"] = 0.3,
                ["federated"] = 0.4, ["personalization_and_evaluation"] = 0.5, ["total"] = 2.5,
            },
            Notes = ["a note"],
        };
    }

    private static SiteResult Site(string name, PersonalizationChoice? personalization, int positives = 10)
    {
        double v = positives > 0 ? 0.75 : double.NaN;
        string[] baselines = ["local", "centralized", "federated", "personalized"];
        return new SiteResult
        {
            Name = name, TrainRows = 400, TestRows = 100, TestPositives = positives,
            Auroc = BaselineMetrics.From(v, v, v, v), Auprc = BaselineMetrics.From(v / 3, v / 3, v / 3, v / 3),
            Personalization = personalization,
            Roc = baselines.ToDictionary(b => b, _ => new[] { new[] { 0.0, 0.0 }, new[] { 0.25, 0.6 }, new[] { 1.0, 1.0 } }),
            Calibration = baselines.ToDictionary(b => b, _ => Enumerable.Range(0, 10).Select(i => i == 0 ? new CalibrationBin(0.05, 0.04, 90) : i == 9 ? new CalibrationBin(0.93, 0.8, 10) : new CalibrationBin(0, 0, 0)).ToArray()),
        };
    }

    /// <summary>Sets the value at a '/'-separated path (array indexes as numbers), adding the last member if absent;
    /// a null <paramref name="valueJson"/> removes it.</summary>
    private static string Mutate(string json, string path, string? valueJson)
    {
        var root = JsonNode.Parse(json)!;
        var parts = path.Split('/');
        var node = root;
        foreach (var part in parts[..^1]) node = node is JsonArray a ? a[int.Parse(part)]! : node[part]!;
        if (node is JsonArray arr)
        {
            if (valueJson is null) arr.RemoveAt(int.Parse(parts[^1]));
            else arr[int.Parse(parts[^1])] = JsonNode.Parse(valueJson);
        }
        else if (valueJson is null) Assert.True(node.AsObject().Remove(parts[^1]), $"{path}: nothing to remove");
        else node[parts[^1]] = JsonNode.Parse(valueJson);
        return root.ToJsonString();
    }

    private static readonly NullabilityInfoContext Nullability = new();

    /// <summary>Compares a record's serialized properties with the schema object describing it, then follows nested
    /// report records through lists (items) and dictionaries (additionalProperties).</summary>
    private static void Compare(Type type, JsonElement schema, JsonElement root, string path, List<string> problems, HashSet<Type> visited)
    {
        visited.Add(type);
        schema = NonNull(Deref(schema, root), root);
        if (!schema.TryGetProperty("additionalProperties", out var ap) || ap.ValueKind != JsonValueKind.False) problems.Add($"{path}: additionalProperties is not false");
        var props = schema.GetProperty("properties");
        var required = schema.TryGetProperty("required", out var req) ? Strings(req).ToHashSet() : [];
        var clr = new Dictionary<string, PropertyInfo>();
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var name = p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name;
            if (name is null) problems.Add($"{path}: {type.Name}.{p.Name} has no JsonPropertyName");
            else clr[name] = p;
        }
        foreach (var name in Names(props).Except(clr.Keys)) problems.Add($"{path}.{name}: in the schema, not in {type.Name}");
        foreach (var name in required.Except(clr.Keys)) problems.Add($"{path}.{name}: required by the schema, not in {type.Name}");
        foreach (var (name, p) in clr)
        {
            if (!props.TryGetProperty(name, out var ps)) { problems.Add($"{path}.{name}: in {type.Name}, not in the schema"); continue; }
            if (!required.Contains(name)) problems.Add($"{path}.{name}: not required, but the writer always writes it");
            if (!ps.TryGetProperty("description", out _) && !Deref(ps, root).TryGetProperty("description", out _)) problems.Add($"{path}.{name}: no description");
            bool nullable = Nullability.Create(p).ReadState == NullabilityState.Nullable;
            if (nullable != AllowsNull(ps, root)) problems.Add($"{path}.{name}: {(nullable ? "nullable" : "not nullable")} in {type.Name}, but the schema {(nullable ? "refuses" : "allows")} null");
            Follow(p.PropertyType, ps, root, $"{path}.{name}", problems, visited);
        }
    }

    private static void Follow(Type type, JsonElement schema, JsonElement root, string path, List<string> problems, HashSet<Type> visited)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.Namespace == typeof(SimulationReport).Namespace && type.IsClass && !type.IsArray) { Compare(type, schema, root, path, problems, visited); return; }
        if (type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type)) return;
        var s = NonNull(Deref(schema, root), root);
        var dictionary = type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>));
        if (dictionary is not null)
        {
            if (!s.TryGetProperty("additionalProperties", out var values)) { problems.Add($"{path}: a dictionary without additionalProperties"); return; }
            Follow(dictionary.GetGenericArguments()[1], values, root, path + ".*", problems, visited);
            return;
        }
        var element = type.IsArray ? type.GetElementType()! : type.GetInterfaces().Append(type).First(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>)).GetGenericArguments()[0];
        if (!s.TryGetProperty("items", out var items)) { problems.Add($"{path}: a list without items"); return; }
        Follow(element, items, root, path + "[]", problems, visited);
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

    /// <summary>The object branch of an <c>anyOf</c> of null and an object.</summary>
    private static JsonElement NonNull(JsonElement schema, JsonElement root) =>
        schema.TryGetProperty("anyOf", out var any) ? Deref(any.EnumerateArray().Single(b => !IsNullOnly(b)), root) : schema;

    private static bool IsNullOnly(JsonElement s) => s.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "null";

    private static bool AllowsNull(JsonElement schema, JsonElement root)
    {
        var s = Deref(schema, root);
        if (s.TryGetProperty("anyOf", out var any) && any.EnumerateArray().Any(b => AllowsNull(b, root))) return true;
        if (s.TryGetProperty("enum", out var e)) return e.EnumerateArray().Any(v => v.ValueKind == JsonValueKind.Null);
        if (s.TryGetProperty("const", out var c)) return c.ValueKind == JsonValueKind.Null;
        if (!s.TryGetProperty("type", out var t)) return false;
        return t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Any(x => x.GetString() == "null") : t.GetString() == "null";
    }

    private static HashSet<string> Names(JsonElement obj) => obj.EnumerateObject().Select(p => p.Name).ToHashSet();

    private static IEnumerable<string> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!);

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ClinicalFed.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("no ClinicalFed.sln above " + AppContext.BaseDirectory);
    }
}
