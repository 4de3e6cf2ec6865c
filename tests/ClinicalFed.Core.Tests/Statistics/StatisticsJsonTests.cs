using System.Text.Json;
using System.Text.Json.Nodes;
using ClinicalFed.Statistics;

namespace ClinicalFed.Core.Tests.Statistics;

public sealed class StatisticsJsonTests
{
    private static StatisticsSet SiteSet(string site = "A", int seed = 5) =>
        StatisticsSet.Compute(
            site, "icu-v1", "2.3.0", StatisticsSetTests.Columns, StatisticsSetTests.Histograms, StatisticsSetTests.Dataset(200, seed), 4);

    [Fact]
    public void Round_trip_preserves_every_field_exactly()
    {
        StatisticsSet original = StatisticsSet.Merge([SiteSet("A", 1), SiteSet("Hôpital B", 2)]);

        string json = original.ToJson();
        StatisticsSet restored = StatisticsSet.FromJson(json, "stats.json");

        StatisticsSetTests.AssertSameStatistics(original, restored);
        for (int c = 0; c < original.Features.Count; c++)
        {
            Assert.Equal(original.Features[c].Sum, restored.Features[c].Sum); // bit-exact, not just close
            Assert.Equal(original.Features[c].SumOfSquares, restored.Features[c].SumOfSquares);
        }

        Assert.Equal(json, restored.ToJson());
        Assert.Contains("\"Hôpital B\"", json);
    }

    [Fact]
    public void Json_uses_snake_case_names_and_null_min_max_for_empty_columns()
    {
        using JsonDocument document = JsonDocument.Parse(SiteSet().ToJson());
        JsonElement root = document.RootElement;

        Assert.Equal(
            ["format_version", "scope", "sites", "feature_spec_id", "feature_spec_version", "rows", "features"],
            root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(1, root.GetProperty("format_version").GetInt32());
        Assert.Equal("site", root.GetProperty("scope").GetString());
        Assert.Equal("icu-v1", root.GetProperty("feature_spec_id").GetString());
        JsonElement empty = root.GetProperty("features")[3];
        Assert.Equal(
            ["name", "count", "missing", "sum", "sum_of_squares", "min", "max", "histogram", "bin_counts"],
            empty.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Null, empty.GetProperty("min").ValueKind);
        Assert.Equal(JsonValueKind.Null, empty.GetProperty("max").ValueKind);
        Assert.Equal(200, empty.GetProperty("missing").GetInt64());
        Assert.Equal(4, empty.GetProperty("histogram").GetProperty("bins").GetInt32());
        Assert.Equal(6, empty.GetProperty("bin_counts").GetArrayLength());
    }

    public static TheoryData<string, Action<JsonObject>, string> Corruptions => new()
    {
        {
            "bin_counts length",
            root => root["features"]![1]!["bin_counts"] = new JsonArray(1, 2, 3),
            "stats-A.json: features[1].bin_counts has 3 entries, expected 32"
        },
        {
            "missing field",
            root => root["features"]![2]!.AsObject().Remove("sum_of_squares"),
            "stats-A.json: features[2].sum_of_squares is missing."
        },
        {
            "format version",
            root => root["format_version"] = 2,
            "stats-A.json: format_version is 2, but only version 1 is supported."
        },
        {
            "negative count",
            root => root["features"]![0]!["count"] = -1,
            "stats-A.json: features[0].count must be a non-negative integer, found -1."
        },
        {
            "wrong type",
            root => root["rows"] = "200",
            "stats-A.json: rows must be a non-negative integer, found \"200\"."
        },
        {
            "rows disagree",
            root => root["rows"] = 201,
            "stats-A.json: features[0] has count"
        },
        {
            "null min with data",
            root => root["features"]![0]!["min"] = null,
            "stats-A.json: features[0].min is null, but count is"
        },
        {
            "bad histogram",
            root => root["features"]![0]!["histogram"]!["max"] = -5,
            "stats-A.json: features[0].histogram is invalid: Histogram max (-5) must be greater than min (0)."
        },
        {
            "bin counts do not sum to count",
            root => root["features"]![2]!["bin_counts"]![1] = root["features"]![2]!["bin_counts"]![1]!.GetValue<long>() + 1,
            "stats-A.json: features[2].bin_counts sum to"
        },
        {
            "unknown property",
            root => root["features"]![0]!["median"] = 3,
            "stats-A.json: features[0].median is not a recognised property"
        },
        {
            "unknown scope",
            root => root["scope"] = "global",
            "stats-A.json: scope is 'global', expected 'site' or 'federated'."
        },
        {
            "two sites in a site file",
            root => root["sites"] = new JsonArray("A", "B"),
            "stats-A.json: sites has 2 entries, but a 'site' scope file has exactly one site."
        },
        {
            "duplicate feature",
            root => root["features"]![1]!["name"] = "age",
            "stats-A.json: features[1].name"
        },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void FromJson_errors_name_the_source_and_the_field(string description, Action<JsonObject> corrupt, string expected)
    {
        JsonObject root = JsonNode.Parse(SiteSet().ToJson())!.AsObject();
        corrupt(root);

        var ex = Assert.Throws<FormatException>(() => StatisticsSet.FromJson(root.ToJsonString(), "stats-A.json"));

        Assert.True(ex.Message.StartsWith(expected, StringComparison.Ordinal), $"{description}: {ex.Message}");
    }

    [Fact]
    public void FromJson_reports_invalid_json_with_the_source_name()
    {
        var ex = Assert.Throws<FormatException>(() => StatisticsSet.FromJson("{\"format_version\": 1,", "stats-B.json"));

        Assert.StartsWith("stats-B.json: not valid JSON", ex.Message);
    }

    [Fact]
    public void Schema_file_describes_the_written_properties()
    {
        string path = FindSchema();
        using JsonDocument schema = JsonDocument.Parse(File.ReadAllText(path));
        using JsonDocument written = JsonDocument.Parse(SiteSet().ToJson());
        JsonElement root = schema.RootElement;
        JsonElement feature = root.GetProperty("$defs").GetProperty("feature");
        JsonElement histogram = root.GetProperty("$defs").GetProperty("histogram");

        Assert.Equal("https://json-schema.org/draft/2020-12/schema", root.GetProperty("$schema").GetString());
        Assert.Equal(Names(written.RootElement), Required(root));
        Assert.Equal(Names(written.RootElement), Names(root.GetProperty("properties")));
        JsonElement writtenFeature = written.RootElement.GetProperty("features")[0];
        Assert.Equal(Names(writtenFeature), Required(feature));
        Assert.Equal(Names(writtenFeature), Names(feature.GetProperty("properties")));
        Assert.Equal(Names(writtenFeature.GetProperty("histogram")), Required(histogram));
        Assert.Equal(HistogramSpec.MaxBins, histogram.GetProperty("properties").GetProperty("bins").GetProperty("maximum").GetInt32());
        Assert.Equal(StatisticsSet.CurrentFormatVersion, root.GetProperty("properties").GetProperty("format_version").GetProperty("const").GetInt32());

        static string[] Names(JsonElement element) => element.EnumerateObject().Select(p => p.Name).Order().ToArray();

        static string[] Required(JsonElement element) =>
            element.GetProperty("required").EnumerateArray().Select(e => e.GetString()!).Order().ToArray();
    }

    private static string FindSchema()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "schemas", "statistics.schema.json");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("schemas/statistics.schema.json not found above " + AppContext.BaseDirectory);
    }
}
