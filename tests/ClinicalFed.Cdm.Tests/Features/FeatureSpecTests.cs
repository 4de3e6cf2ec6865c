using System.Text.Json;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.TestSupport;

namespace ClinicalFed.Cdm.Tests.Features;

public sealed class FeatureSpecTests : IDisposable
{
    private readonly TempFolder _tmp = new("feature-spec");
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void Both_shipped_specs_load_by_task_and_by_id()
    {
        Assert.Contains("sepsis-hourly", FeatureSpec.ShippedNames);
        Assert.Contains("readmission-30d", FeatureSpec.ShippedNames);
        var sepsis = FeatureSpec.Load("sepsis");
        var readmission = FeatureSpec.Load("readmission");
        Assert.Equal(("sepsis-hourly", "sepsis", "sepsis_label"), (sepsis.Id, sepsis.Task, sepsis.Label.Name));
        Assert.Equal(("readmission-30d", "readmission", "readmitted_30d"), (readmission.Id, readmission.Task, readmission.Label.Name));
        Assert.Equal(6, sepsis.Label.LeadHours);
        Assert.Equal(30, readmission.Label.WindowDays);
        Assert.Equal(sepsis.ColumnNames, FeatureSpec.Load("sepsis-hourly").ColumnNames);
        Assert.Equal(readmission.ColumnNames, FeatureSpec.Load("readmission-30d").ColumnNames);
        Assert.Empty(sepsis.Validate());
        Assert.Empty(readmission.Validate());
    }

    [Fact]
    public void Sepsis_column_order_is_pinned()
    {
        var names = FeatureSpec.Load("sepsis").ColumnNames;
        Assert.Equal(108, names.Count);
        Assert.Equal(["hr", "o2sat", "temp", "sbp", "map"], names.Take(5));
        Assert.Equal(["male", "unit_micu", "unit_sicu", "hospital_admission_offset_hours", "icu_hours"], names.TakeLast(5));
        Assert.Equal(34, FeatureSpec.Load("sepsis").Measurements.Count); // 34 × (last, measured, hours-since) + 6
    }

    [Fact]
    public void Readmission_column_order_is_pinned()
    {
        var names = FeatureSpec.Load("readmission").ColumnNames;
        Assert.Equal(62, names.Count);
        Assert.Equal(["age", "male", "length_of_stay_days", "acute_admission", "prior_emergency_visits"], names.Take(5));
        Assert.Equal(["discharge_long", "discharge_aadvice", "admit_from_emergency", "admit_referral", "admit_transfer"], names.TakeLast(5));
    }

    [Theory]
    [InlineData("sepsis-hourly")]
    [InlineData("readmission-30d")]
    public void Column_order_matches_the_spec_file(string id)
    {
        // Read the embedded JSON independently of FeatureSpec's deserializer.
        using var s = typeof(FeatureSpec).Assembly.GetManifestResourceStream("featurespec:" + id)!;
        using var doc = JsonDocument.Parse(s);
        var fromJson = doc.RootElement.GetProperty("columns").EnumerateArray().Select(c => c.GetProperty("name").GetString()!).ToList();
        Assert.Equal(fromJson, FeatureSpec.Load(id).ColumnNames);
        Assert.Equal(fromJson.Count, fromJson.Distinct().Count());
    }

    [Theory]
    [InlineData("sepsis")]
    [InlineData("readmission")]
    public void Every_loinc_code_in_the_specs_has_a_valid_check_digit(string task)
    {
        var codes = FeatureSpec.Load(task).Measurements.SelectMany(m => m.Codes).Where(c => c.StartsWith(Systems.Loinc + "|", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(codes);
        foreach (var c in codes)
        {
            var code = c[(Systems.Loinc.Length + 1)..];
            Assert.True(Loinc.IsValidCode(code), $"{task}: {code}");
            Assert.True(ClinicalFed.Cdm.Tests.Terminology.LoincTests.IndependentCheck(code), $"{task}: {code} (independent mod-10)");
        }
    }

    [Fact]
    public void Spec_with_three_mistakes_reports_all_three()
    {
        const string json = """
        {
          "id": "broken", "version": "0.1.0", "task": "sepsis",
          "label": { "name": "y", "lead_hours": 6 },
          "measurements": [
            { "name": "hr", "codes": ["http://loinc.org|8867-3"], "unit": "/min", "plausible_min": 0, "plausible_max": 300 }
          ],
          "columns": [
            { "name": "hr", "kind": "last", "measurement": "hr" },
            { "name": "hr_median", "kind": "median", "measurement": "hr" },
            { "name": "lactate", "kind": "last", "measurement": "lactate" }
          ]
        }
        """;
        var e = Assert.Throws<CdmException>(() => FeatureSpec.Parse(json, "broken.json"));
        Assert.StartsWith("broken.json: 3 problem(s)", e.Message);
        Assert.Contains("8867-3", e.Message);
        Assert.Contains("'median'", e.Message);
        Assert.Contains("'lactate' is not defined", e.Message);

        // Through a file as well.
        var path = _tmp.WriteText("broken.json", json);
        var e2 = Assert.Throws<CdmException>(() => FeatureSpec.Load(path));
        Assert.Contains("3 problem(s)", e2.Message);
    }

    [Fact]
    public void Unknown_properties_and_unknown_specs_are_errors()
    {
        var e = Assert.Throws<CdmException>(() => FeatureSpec.Parse("""{ "id": "x", "version": "1", "task": "sepsis", "label": { "name": "y" }, "columns": [], "colums": [] }""", "typo.json"));
        Assert.StartsWith("typo.json:", e.Message);
        var e2 = Assert.Throws<CdmException>(() => FeatureSpec.Load("no-such-spec"));
        Assert.Contains("sepsis-hourly", e2.Message);
    }

    [Fact]
    public void A_valid_custom_spec_file_loads_and_drives_extraction_columns()
    {
        var path = _tmp.WriteText("mini.json", """
        {
          "id": "mini", "version": "2.0.0", "task": "sepsis",
          "label": { "name": "sepsis_label", "lead_hours": 6 },
          "measurements": [ { "name": "hr", "codes": ["http://loinc.org|8867-4"], "unit": "/min", "plausible_min": 0, "plausible_max": 300 } ],
          "columns": [ { "name": "icu_hours", "kind": "icu-hours" }, { "name": "hr", "kind": "last", "measurement": "hr" } ]
        }
        """);
        var spec = FeatureSpec.Load(path);
        Assert.Equal(["icu_hours", "hr"], spec.ColumnNames);
        var cdm = new TestCdm().Patient("p", "male", null)
            .Encounter(TestCdm.IcuStay("s", "p", TestCdm.T0, 2))
            .Obs("p", "s", "8867-4", TestCdm.T0.AddHours(1), 70, "/min")
            .Write(_tmp.Combine("cdm"));
        var outDir = _tmp.Combine("out");
        FeatureExtraction.Run(new FeatureOptions("sepsis", cdm, outDir, SpecPath: path));
        var t = ClinicalFed.Data.FeatureTableFile.Load(Path.Combine(outDir, ClinicalFed.Data.FeatureTableFile.FileName));
        Assert.Equal(("mini", "2.0.0"), (t.Header.FeatureSpecId, t.Header.FeatureSpecVersion));
        Assert.Equal(new float[] { 1, float.NaN, 2, 70 }, t.Values);

        // A spec for the other task is refused.
        var e = Assert.Throws<CdmException>(() => FeatureExtraction.Run(new FeatureOptions("readmission", cdm, _tmp.Combine("out2"), SpecPath: path)));
        Assert.Contains("'sepsis', not 'readmission'", e.Message);
    }
}
