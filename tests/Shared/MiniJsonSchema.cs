using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ClinicalFed.Testing;

/// <summary>
/// A small JSON Schema (draft 2020-12) validator for the keywords the repository's schemas use: no validator package
/// that handles draft 2020-12 (<c>$defs</c>, <c>const</c>, <c>propertyNames</c>) is available offline. A keyword it
/// does not implement throws instead of being ignored, so a schema cannot silently outgrow it. <c>$ref</c> resolves
/// JSON pointers inside the same document only (<c>#/$defs/name</c>); <c>format</c> is an annotation, as in 2020-12.
/// </summary>
public sealed class MiniJsonSchema(JsonElement root)
{
    private static readonly HashSet<string> Annotations =
        ["$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples", "format", "deprecated"];

    public static MiniJsonSchema Load(string path) => new(JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone());

    /// <summary>Every violation as "instance-path: problem"; empty when the instance is valid.</summary>
    public List<string> Validate(JsonElement instance)
    {
        var errors = new List<string>();
        Check(root, instance, "$", errors);
        return errors;
    }

    public List<string> Validate(string json) => Validate(JsonDocument.Parse(json).RootElement);

    private bool Valid(JsonElement schema, JsonElement x, string path)
    {
        var e = new List<string>();
        Check(schema, x, path, e);
        return e.Count == 0;
    }

    private void Check(JsonElement s, JsonElement x, string path, List<string> errors)
    {
        if (s.ValueKind == JsonValueKind.True) return;
        if (s.ValueKind == JsonValueKind.False) { errors.Add($"{path}: not allowed"); return; }
        void Fail(string m) => errors.Add($"{path}: {m}");
        foreach (var kw in s.EnumerateObject())
        {
            var v = kw.Value;
            switch (kw.Name)
            {
                case "$ref": Check(Resolve(v.GetString()!), x, path, errors); break;
                case "type":
                    var types = v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(t => t.GetString()!).ToList() : [v.GetString()!];
                    if (!types.Any(t => HasType(x, t))) Fail($"expected {string.Join(" or ", types)}, got {x.ValueKind}");
                    break;
                case "enum": if (!v.EnumerateArray().Any(c => JsonElement.DeepEquals(c, x))) Fail($"{x.GetRawText()} is not one of {v.GetRawText()}"); break;
                case "const": if (!JsonElement.DeepEquals(v, x)) Fail($"{x.GetRawText()} is not {v.GetRawText()}"); break;
                case "minimum": if (x.ValueKind == JsonValueKind.Number && x.GetDouble() < v.GetDouble()) Fail($"{x} < minimum {v}"); break;
                case "maximum": if (x.ValueKind == JsonValueKind.Number && x.GetDouble() > v.GetDouble()) Fail($"{x} > maximum {v}"); break;
                case "minLength": if (x.ValueKind == JsonValueKind.String && Length(x) < v.GetInt32()) Fail($"shorter than {v}"); break;
                case "maxLength": if (x.ValueKind == JsonValueKind.String && Length(x) > v.GetInt32()) Fail($"longer than {v}"); break;
                case "pattern":
                    if (x.ValueKind == JsonValueKind.String && !Regex.IsMatch(x.GetString()!, v.GetString()!, RegexOptions.None, TimeSpan.FromSeconds(1)))
                        Fail($"'{x.GetString()}' does not match {v.GetString()}");
                    break;
                case "minItems": if (x.ValueKind == JsonValueKind.Array && x.GetArrayLength() < v.GetInt32()) Fail($"fewer than {v} items"); break;
                case "maxItems": if (x.ValueKind == JsonValueKind.Array && x.GetArrayLength() > v.GetInt32()) Fail($"more than {v} items"); break;
                case "uniqueItems":
                    if (v.GetBoolean() && x.ValueKind == JsonValueKind.Array)
                    {
                        var items = x.EnumerateArray().ToList();
                        for (int i = 0; i < items.Count; i++)
                            for (int j = i + 1; j < items.Count; j++)
                                if (JsonElement.DeepEquals(items[i], items[j])) Fail($"items {i} and {j} are equal");
                    }
                    break;
                case "items":
                    if (x.ValueKind == JsonValueKind.Array)
                    {
                        int i = 0;
                        foreach (var item in x.EnumerateArray()) Check(v, item, $"{path}[{i++}]", errors);
                    }
                    break;
                case "required":
                    if (x.ValueKind == JsonValueKind.Object)
                        foreach (var r in v.EnumerateArray())
                            if (!x.TryGetProperty(r.GetString()!, out _)) Fail($"required property '{r.GetString()}' is missing");
                    break;
                case "properties":
                    if (x.ValueKind == JsonValueKind.Object)
                        foreach (var p in x.EnumerateObject())
                            if (v.TryGetProperty(p.Name, out var ps)) Check(ps, p.Value, $"{path}.{p.Name}", errors);
                    break;
                case "additionalProperties":
                    if (x.ValueKind == JsonValueKind.Object)
                    {
                        bool hasProps = s.TryGetProperty("properties", out var props);
                        foreach (var p in x.EnumerateObject())
                            if (!hasProps || !props.TryGetProperty(p.Name, out _))
                            {
                                if (v.ValueKind == JsonValueKind.False) Fail($"unknown property '{p.Name}'");
                                else Check(v, p.Value, $"{path}.{p.Name}", errors);
                            }
                    }
                    break;
                case "propertyNames":
                    if (x.ValueKind == JsonValueKind.Object)
                        foreach (var p in x.EnumerateObject())
                            Check(v, JsonDocument.Parse(JsonSerializer.Serialize(p.Name)).RootElement, $"{path} (property name '{p.Name}')", errors);
                    break;
                case "allOf": foreach (var sub in v.EnumerateArray()) Check(sub, x, path, errors); break;
                case "anyOf": if (!v.EnumerateArray().Any(sub => Valid(sub, x, path))) Fail("matches none of anyOf"); break;
                case "oneOf":
                    int n = v.EnumerateArray().Count(sub => Valid(sub, x, path));
                    if (n != 1) Fail($"matches {n} of oneOf, not exactly 1");
                    break;
                case "not": if (Valid(v, x, path)) Fail($"must not match {v.GetRawText()}"); break;
                case "if":
                    var branch = Valid(v, x, path) ? "then" : "else";
                    if (s.TryGetProperty(branch, out var b)) Check(b, x, path, errors);
                    break;
                case "then" or "else": break; // handled with "if"
                default:
                    if (!Annotations.Contains(kw.Name)) throw new NotSupportedException($"MiniJsonSchema does not implement keyword '{kw.Name}'");
                    break;
            }
        }
    }

    private static bool HasType(JsonElement x, string type) => type switch
    {
        "object" => x.ValueKind == JsonValueKind.Object,
        "array" => x.ValueKind == JsonValueKind.Array,
        "string" => x.ValueKind == JsonValueKind.String,
        "number" => x.ValueKind == JsonValueKind.Number,
        "integer" => x.ValueKind == JsonValueKind.Number && decimal.TryParse(x.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d == decimal.Truncate(d),
        "boolean" => x.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => x.ValueKind == JsonValueKind.Null,
        _ => throw new NotSupportedException($"unknown type '{type}'"),
    };

    private static int Length(JsonElement x) => x.GetString()!.EnumerateRunes().Count();

    private JsonElement Resolve(string reference)
    {
        if (!reference.StartsWith('#')) throw new NotSupportedException($"only local $ref is supported: '{reference}'");
        var node = root;
        foreach (var token in reference[1..].Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = Uri.UnescapeDataString(token).Replace("~1", "/").Replace("~0", "~");
            node = node.ValueKind == JsonValueKind.Array ? node[int.Parse(name, CultureInfo.InvariantCulture)]
                : node.TryGetProperty(name, out var child) ? child : throw new InvalidOperationException($"unresolved $ref '{reference}'");
        }
        return node;
    }
}
