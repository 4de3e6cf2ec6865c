using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ClinicalFed.Statistics;

/// <summary>Reads and writes the shared statistics file (schemas/statistics.schema.json).</summary>
internal static class StatisticsJson
{
    private static readonly string[] RootProperties =
        ["format_version", "scope", "sites", "feature_spec_id", "feature_spec_version", "rows", "features"];

    private static readonly string[] FeatureProperties =
        ["name", "count", "missing", "sum", "sum_of_squares", "min", "max", "histogram", "bin_counts"];

    private static readonly string[] HistogramProperties = ["min", "max", "bins"];

    public static string Write(StatisticsSet set)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var options = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        using (var writer = new Utf8JsonWriter(buffer, options))
        {
            writer.WriteStartObject();
            writer.WriteNumber("format_version", set.FormatVersion);
            writer.WriteString("scope", set.Scope);
            writer.WriteStartArray("sites");
            foreach (string site in set.Sites)
            {
                writer.WriteStringValue(site);
            }

            writer.WriteEndArray();
            writer.WriteString("feature_spec_id", set.FeatureSpecId);
            writer.WriteString("feature_spec_version", set.FeatureSpecVersion);
            writer.WriteNumber("rows", set.Rows);
            writer.WriteStartArray("features");
            foreach (FeatureStatistics feature in set.Features)
            {
                writer.WriteStartObject();
                writer.WriteString("name", feature.Name);
                writer.WriteNumber("count", feature.Count);
                writer.WriteNumber("missing", feature.Missing);
                // Utf8JsonWriter writes the shortest round-trippable form, so sums survive exactly.
                writer.WriteNumber("sum", feature.Sum);
                writer.WriteNumber("sum_of_squares", feature.SumOfSquares);
                WriteNullableNumber(writer, "min", feature.Min);
                WriteNullableNumber(writer, "max", feature.Max);
                writer.WriteStartObject("histogram");
                writer.WriteNumber("min", feature.Histogram.Min);
                writer.WriteNumber("max", feature.Histogram.Max);
                writer.WriteNumber("bins", feature.Histogram.Bins);
                writer.WriteEndObject();
                // One line per feature rather than one line per bin.
                writer.WritePropertyName("bin_counts");
                writer.WriteRawValue(
                    "[" + string.Join(",", feature.BinCounts.Select(c => c.ToString(CultureInfo.InvariantCulture))) + "]");
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }

    public static StatisticsSet Read(string json, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(sourceName);
        var reader = new Reader(string.IsNullOrWhiteSpace(sourceName) ? "statistics" : sourceName);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException ex)
        {
            throw new FormatException(
                $"{reader.Source}: not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}): {ex.Message}", ex);
        }

        using (document)
        {
            return reader.ReadSet(document.RootElement);
        }
    }

    private static void WriteNullableNumber(Utf8JsonWriter writer, string name, double value)
    {
        if (double.IsNaN(value))
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteNumber(name, value);
        }
    }

    private sealed class Reader(string source)
    {
        public string Source { get; } = source;

        public StatisticsSet ReadSet(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"{Source}: the document must be a JSON object, found {Kind(root)}.");
            }

            Dictionary<string, JsonElement> properties = Properties(root, string.Empty, RootProperties);

            long formatVersion = Int64(Required(properties, string.Empty, "format_version"), "format_version");
            if (formatVersion != StatisticsSet.CurrentFormatVersion)
            {
                throw Fail("format_version", $"is {formatVersion}, but only version {StatisticsSet.CurrentFormatVersion} is supported.");
            }

            string scope = String(Required(properties, string.Empty, "scope"), "scope");
            if (scope is not (StatisticsSet.SiteScope or StatisticsSet.FederatedScope))
            {
                throw Fail("scope", $"is '{scope}', expected '{StatisticsSet.SiteScope}' or '{StatisticsSet.FederatedScope}'.");
            }

            List<string> sites = ReadSites(Required(properties, string.Empty, "sites"), scope);
            string specId = String(Required(properties, string.Empty, "feature_spec_id"), "feature_spec_id");
            string specVersion = String(Required(properties, string.Empty, "feature_spec_version"), "feature_spec_version");
            long rows = Int64(Required(properties, string.Empty, "rows"), "rows");

            JsonElement featuresElement = Required(properties, string.Empty, "features");
            if (featuresElement.ValueKind != JsonValueKind.Array)
            {
                throw Fail("features", $"must be an array, found {Kind(featuresElement)}.");
            }

            if (featuresElement.GetArrayLength() == 0)
            {
                throw Fail("features", "must contain at least one feature.");
            }

            var features = new List<FeatureStatistics>();
            var firstIndexByName = new Dictionary<string, int>(StringComparer.Ordinal);
            int index = 0;
            foreach (JsonElement element in featuresElement.EnumerateArray())
            {
                string path = $"features[{index}]";
                FeatureStatistics feature = ReadFeature(element, path, rows);
                if (firstIndexByName.TryGetValue(feature.Name, out int first))
                {
                    throw Fail($"{path}.name", $"'{feature.Name}' duplicates features[{first}].name.");
                }

                firstIndexByName.Add(feature.Name, index);
                features.Add(feature);
                index++;
            }

            try
            {
                return new StatisticsSet(scope, sites, specId, specVersion, rows, features);
            }
            catch (ArgumentException ex)
            {
                throw new FormatException($"{Source}: {ex.Message}", ex);
            }
        }

        private List<string> ReadSites(JsonElement element, string scope)
        {
            if (element.ValueKind != JsonValueKind.Array)
            {
                throw Fail("sites", $"must be an array, found {Kind(element)}.");
            }

            var sites = new List<string>();
            foreach (JsonElement item in element.EnumerateArray())
            {
                string path = $"sites[{sites.Count}]";
                string site = String(item, path);
                int previous = sites.IndexOf(site);
                if (previous >= 0)
                {
                    throw Fail(path, $"'{site}' duplicates sites[{previous}].");
                }

                sites.Add(site);
            }

            if (sites.Count == 0)
            {
                throw Fail("sites", "must list at least one site.");
            }

            if (scope == StatisticsSet.SiteScope && sites.Count != 1)
            {
                throw Fail("sites", $"has {sites.Count} entries, but a '{StatisticsSet.SiteScope}' scope file has exactly one site.");
            }

            return sites;
        }

        private FeatureStatistics ReadFeature(JsonElement element, string path, long rows)
        {
            Dictionary<string, JsonElement> properties = Properties(element, path, FeatureProperties);
            string name = String(Required(properties, path, "name"), $"{path}.name");
            long count = Int64(Required(properties, path, "count"), $"{path}.count");
            long missing = Int64(Required(properties, path, "missing"), $"{path}.missing");
            double sum = Double(Required(properties, path, "sum"), $"{path}.sum");
            double sumOfSquares = Double(Required(properties, path, "sum_of_squares"), $"{path}.sum_of_squares");
            if (sumOfSquares < 0)
            {
                throw Fail($"{path}.sum_of_squares", $"is {sumOfSquares}, but a sum of squares cannot be negative.");
            }

            double min = NullableDouble(Required(properties, path, "min"), $"{path}.min");
            double max = NullableDouble(Required(properties, path, "max"), $"{path}.max");
            HistogramSpec histogram = ReadHistogram(Required(properties, path, "histogram"), $"{path}.histogram");
            long[] binCounts = ReadBinCounts(Required(properties, path, "bin_counts"), $"{path}.bin_counts", histogram);

            if (count > rows || missing != rows - count)
            {
                throw Fail(path, $"has count {count} + missing {missing}, which does not equal rows ({rows}).");
            }

            long binTotal = binCounts.Sum();
            if (binTotal != count)
            {
                throw Fail($"{path}.bin_counts", $"sum to {binTotal}, but count is {count}.");
            }

            if (count == 0)
            {
                if (!double.IsNaN(min))
                {
                    throw Fail($"{path}.min", "must be null when count is 0.");
                }

                if (!double.IsNaN(max))
                {
                    throw Fail($"{path}.max", "must be null when count is 0.");
                }
            }
            else
            {
                if (double.IsNaN(min))
                {
                    throw Fail($"{path}.min", $"is null, but count is {count}.");
                }

                if (double.IsNaN(max))
                {
                    throw Fail($"{path}.max", $"is null, but count is {count}.");
                }

                if (min > max)
                {
                    throw Fail($"{path}.min", $"({min}) is greater than max ({max}).");
                }
            }

            try
            {
                return FeatureStatistics.FromAggregates(name, histogram, count, missing, sum, sumOfSquares, min, max, binCounts);
            }
            catch (ArgumentException ex)
            {
                throw Fail(path, ex.Message);
            }
        }

        private HistogramSpec ReadHistogram(JsonElement element, string path)
        {
            Dictionary<string, JsonElement> properties = Properties(element, path, HistogramProperties);
            double min = Double(Required(properties, path, "min"), $"{path}.min");
            double max = Double(Required(properties, path, "max"), $"{path}.max");
            JsonElement binsElement = Required(properties, path, "bins");
            if (binsElement.ValueKind != JsonValueKind.Number || !binsElement.TryGetInt32(out int bins))
            {
                throw Fail($"{path}.bins", $"must be an integer between 1 and {HistogramSpec.MaxBins}, found {Describe(binsElement)}.");
            }

            try
            {
                return new HistogramSpec(min, max, bins);
            }
            catch (ArgumentException ex)
            {
                throw Fail(path, $"is invalid: {ex.Message}");
            }
        }

        private long[] ReadBinCounts(JsonElement element, string path, HistogramSpec histogram)
        {
            if (element.ValueKind != JsonValueKind.Array)
            {
                throw Fail(path, $"must be an array, found {Kind(element)}.");
            }

            int length = element.GetArrayLength();
            if (length != histogram.TotalBins)
            {
                throw Fail(path, $"has {length} entries, expected {histogram.TotalBins} (histogram bins {histogram.Bins} + underflow + overflow).");
            }

            var counts = new long[length];
            int i = 0;
            foreach (JsonElement item in element.EnumerateArray())
            {
                counts[i] = Int64(item, $"{path}[{i}]");
                i++;
            }

            return counts;
        }

        private Dictionary<string, JsonElement> Properties(JsonElement element, string path, string[] allowed)
        {
            if (element.ValueKind != JsonValueKind.Object)
            {
                throw Fail(path, $"must be an object, found {Kind(element)}.");
            }

            var properties = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (JsonProperty property in element.EnumerateObject())
            {
                string propertyPath = Join(path, property.Name);
                if (Array.IndexOf(allowed, property.Name) < 0)
                {
                    throw Fail(propertyPath, $"is not a recognised property (expected: {string.Join(", ", allowed)}).");
                }

                if (!properties.TryAdd(property.Name, property.Value))
                {
                    throw Fail(propertyPath, "appears more than once.");
                }
            }

            return properties;
        }

        private JsonElement Required(Dictionary<string, JsonElement> properties, string path, string name) =>
            properties.TryGetValue(name, out JsonElement value) ? value : throw Fail(Join(path, name), "is missing.");

        private string String(JsonElement element, string path)
        {
            if (element.ValueKind != JsonValueKind.String)
            {
                throw Fail(path, $"must be a string, found {Kind(element)}.");
            }

            string value = element.GetString()!;
            if (string.IsNullOrWhiteSpace(value))
            {
                throw Fail(path, "must not be empty.");
            }

            return value;
        }

        private long Int64(JsonElement element, string path)
        {
            if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long value) || value < 0)
            {
                throw Fail(path, $"must be a non-negative integer, found {Describe(element)}.");
            }

            return value;
        }

        private double Double(JsonElement element, string path)
        {
            if (element.ValueKind != JsonValueKind.Number || !element.TryGetDouble(out double value) || !double.IsFinite(value))
            {
                throw Fail(path, $"must be a finite number, found {Describe(element)}.");
            }

            return value;
        }

        private double NullableDouble(JsonElement element, string path) =>
            element.ValueKind == JsonValueKind.Null ? double.NaN : Double(element, path);

        private FormatException Fail(string path, string message) =>
            new(path.Length == 0 ? $"{Source}: {message}" : $"{Source}: {path} {message}");

        private static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

        private static string Kind(JsonElement element) => element.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            JsonValueKind.Null => "null",
            _ => "nothing",
        };

        private static string Describe(JsonElement element) =>
            element.ValueKind is JsonValueKind.Number or JsonValueKind.String ? element.GetRawText() : Kind(element);
    }
}
