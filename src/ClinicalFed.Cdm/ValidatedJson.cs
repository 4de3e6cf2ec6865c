using System.Text.Json;

namespace ClinicalFed.Cdm;

/// <summary>Configuration documents (mappings, feature specs): shipped as embedded resources or given as files,
/// deserialized strictly and validated with every problem reported at once.</summary>
internal static class ValidatedJson
{
    public static T Parse<T>(string json, string source, JsonSerializerOptions options, Func<T, IReadOnlyList<string>> validate, string what) where T : class
    {
        T? value;
        try { value = JsonSerializer.Deserialize<T>(json, options); }
        catch (JsonException e) { throw new CdmException($"{source}: {e.Message}", e); }
        if (value is null) throw new CdmException($"{source}: empty {what}");
        var errors = validate(value);
        if (errors.Count > 0) throw new CdmException($"{source}: {errors.Count} problem(s):\n  - " + string.Join("\n  - ", errors));
        return value;
    }

    /// <summary>The text of a shipped resource (<paramref name="prefix"/>:name) or of a file, and a name for errors.</summary>
    public static (string Json, string Source)? Find(string prefix, string nameOrPath, string what)
    {
        using var stream = typeof(ValidatedJson).Assembly.GetManifestResourceStream(prefix + ":" + nameOrPath);
        if (stream is not null) return (new StreamReader(stream).ReadToEnd(), $"{what} '{nameOrPath}'");
        if (File.Exists(nameOrPath)) return (File.ReadAllText(nameOrPath), nameOrPath);
        return null;
    }

    public static IReadOnlyList<string> ShippedNames(string prefix) =>
        typeof(ValidatedJson).Assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix + ":", StringComparison.Ordinal)).Select(n => n[(prefix.Length + 1)..]).Order().ToList();
}
