using System.Text.Json;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Tests.Ingest;

public class MappingFileTests
{
    private const string Valid = """
        {
          "format_version": 1,
          "name": "m",
          "patient": { "id_column": "pid" },
          "encounter": { "time": { "kind": "hour-offset", "column": "hour" } },
          "observations": [
            { "column": "HR", "code": "8867-4", "unit": "/min" },
            { "column": "SBP", "code": "8480-6", "unit": "mm[Hg]" }
          ]
        }
        """;

    [Fact]
    public void Valid_mapping_parses()
    {
        var m = MappingFile.Parse(Valid, "m.json");
        Assert.Equal("m", m.Name);
        Assert.Equal(2, m.Observations.Count);
        Assert.Equal(Systems.Loinc, m.Observations[0].System);
        Assert.Equal("hour-offset", m.Encounter.Time.Kind);
        Assert.Equal(new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero), m.Anchor);
    }

    [Fact]
    public void Three_mistakes_are_reported_together()
    {
        var json = Valid
            .Replace("\"8867-4\"", "\"8867-5\"")           // 1: LOINC check digit
            .Replace("\"mm[Hg]\"", "\"mmHg\"")             // 2: not UCUM
            .Replace("\"hour-offset\"", "\"minutes\"");    // 3: unknown time kind
        var e = Assert.Throws<CdmException>(() => MappingFile.Parse(json, "bad.json"));
        Assert.StartsWith("bad.json: 3 problem(s)", e.Message);
        Assert.Contains("'8867-5'", e.Message);
        Assert.Contains("'mmHg'", e.Message);
        Assert.Contains("'minutes'", e.Message);
        Assert.Equal(3, e.Message.Split('\n').Count(l => l.TrimStart().StartsWith("- ", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("\"name\": \"m\",", "\"name\": \"m\", \"anchr\": \"2000-01-01T00:00:00Z\",", "anchr")]
    [InlineData("\"time\": {", "\"icu_hour_column\": \"ICULOS\", \"time\": {", "icu_hour_column")]
    [InlineData("\"unit\": \"/min\"", "\"unit\": \"/min\", \"units\": \"/min\"", "units")]
    [InlineData("\"id_column\": \"pid\"", "\"idColumn\": \"pid\"", "idColumn")] // camelCase is not the schema's spelling
    public void Unknown_property_is_an_error(string from, string to, string name)
    {
        var json = Valid.Replace(from, to);
        Assert.NotEqual(Valid, json);
        var e = Assert.Throws<CdmException>(() => MappingFile.Parse(json, "typo.json"));
        Assert.Contains("typo.json", e.Message);
        Assert.Contains(name, e.Message);
    }

    [Fact]
    public void Malformed_json_and_missing_required_members_are_errors()
    {
        Assert.Throws<CdmException>(() => MappingFile.Parse("{\"format_version\": 1,", "x.json"));
        Assert.Throws<CdmException>(() => MappingFile.Parse(Valid.Replace("\"name\": \"m\",", ""), "x.json"));
    }

    [Fact]
    public void Load_by_name_path_or_neither()
    {
        Assert.Equal(["diabetes130", "physionet2019"], MappingFile.ShippedNames);
        Assert.Equal("physionet2019", MappingFile.Load("physionet2019").Name);
        var e = Assert.Throws<CdmException>(() => MappingFile.Load("no-such-mapping"));
        Assert.Contains("diabetes130", e.Message);
        Assert.Contains("physionet2019", e.Message);
    }

    // ------------------------------------------------------------------ LOINC codes of the shipped mappings

    /// <summary>LOINC's mod-10 check digit is the Luhn check digit of the code's digits: an independent
    /// implementation to check <see cref="Loinc"/> against.</summary>
    private static int Luhn(string digits)
    {
        int sum = 0;
        for (int i = 0; i < digits.Length; i++)
        {
            int d = digits[digits.Length - 1 - i] - '0';
            if (i % 2 == 0) { d *= 2; if (d > 9) d -= 9; }
            sum += d;
        }
        return (10 - sum % 10) % 10;
    }

    private static bool IndependentlyValid(string code)
    {
        var parts = code.Split('-');
        return parts.Length == 2 && parts[0].Length is >= 1 and <= 7 && parts[0].All(char.IsAsciiDigit)
               && parts[1].Length == 1 && char.IsAsciiDigit(parts[1][0]) && Luhn(parts[0]) == parts[1][0] - '0';
    }

    [Theory]
    [InlineData("8867-4", true)]   // heart rate
    [InlineData("2345-7", true)]   // glucose
    [InlineData("777-3", true)]    // platelets
    [InlineData("10839-9", true)]  // troponin I
    [InlineData("8867-5", false)]
    [InlineData("88674", false)]
    [InlineData("8867-", false)]
    [InlineData("-4", false)]
    [InlineData("8a67-4", false)]
    [InlineData("12345678-9", false)]
    public void Loinc_check_digit_examples(string code, bool valid)
    {
        Assert.Equal(valid, Loinc.IsValidCode(code));
        Assert.Equal(valid, IndependentlyValid(code));
    }

    [Fact]
    public void Loinc_check_digit_agrees_with_luhn()
    {
        for (int n = 1; n < 200_000; n += 7)
        {
            var digits = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(Luhn(digits), Loinc.CheckDigit(digits));
        }
    }

    /// <summary>The mapping JSON as shipped in the repository (read as text, not through <see cref="MappingFile"/>,
    /// which would refuse a bad code before the test could see it).</summary>
    private static IEnumerable<(string Mapping, string Column, string Code)> ShippedLoincCodes()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClinicalFed.sln"))) dir = dir.Parent;
        Assert.True(dir is not null, "repository root (ClinicalFed.sln) not found above " + AppContext.BaseDirectory);
        foreach (var name in new[] { "physionet2019", "diabetes130" })
        {
            var path = Path.Combine(dir!.FullName, "src", "ClinicalFed.Cdm", "Mappings", name + ".json");
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            foreach (var o in doc.RootElement.GetProperty("observations").EnumerateArray())
            {
                var system = o.TryGetProperty("system", out var s) ? s.GetString() : Systems.Loinc; // LOINC is the default
                if (system == Systems.Loinc) yield return (name, o.GetProperty("column").GetString()!, o.GetProperty("code").GetString()!);
            }
        }
    }

    [Fact]
    public void Every_loinc_code_in_the_shipped_mappings_is_valid()
    {
        var codes = ShippedLoincCodes().ToList();
        Assert.Equal(34, codes.Count(c => c.Mapping == "physionet2019"));
        Assert.Equal(2, codes.Count(c => c.Mapping == "diabetes130"));
        var bad = codes.Where(c => !Loinc.IsValidCode(c.Code) || !IndependentlyValid(c.Code)).ToList();
        Assert.True(bad.Count == 0, "invalid LOINC codes: " + string.Join(", ", bad));
    }

    [Theory]
    [InlineData("physionet2019")]
    [InlineData("diabetes130")]
    public void Shipped_mappings_load_and_match_the_files(string name)
    {
        var m = MappingFile.Load(name);
        var fromFile = ShippedLoincCodes().Where(c => c.Mapping == name).Select(c => c.Code);
        Assert.Equal(fromFile, m.Observations.Where(o => o.System == Systems.Loinc).Select(o => o.Code));
        Assert.All(m.Observations.Where(o => o.Unit is not null), o => Assert.True(Ucum.IsKnown(o.Unit!), o.Unit));
    }
}
