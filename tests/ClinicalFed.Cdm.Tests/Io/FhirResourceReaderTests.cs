using System.Text;
using System.Text.Json;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Tests.Io;

public class FhirResourceReaderTests
{
    private static FhirReadResult Read(string json, FhirResourceReader.ReferenceResolver? resolve = null) =>
        new FhirResourceReader().Read(Encoding.UTF8.GetBytes(json), resolve);

    private const string HeartRate = """
        {"resourceType":"Observation","id":"hr-1","meta":{"lastUpdated":"2020-01-01T00:00:00Z"},"status":"final",
         "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
         "code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"},{"system":"http://snomed.info/sct","code":"364075005"}],"text":"HR"},
         "subject":{"reference":"Patient/p-1","display":"ignored"},
         "encounter":{"reference":"Encounter/e-1"},
         "effectiveDateTime":"2019-05-06T07:08:09+02:00",
         "issued":"2019-05-06T08:00:00Z",
         "performer":[{"reference":"Practitioner/x"}],
         "valueQuantity":{"value":72.50,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"},
         "interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"N"}]}]}
        """;

    [Fact]
    public void Observation_picks_code_subject_encounter_effective_and_quantity()
    {
        var res = Read(HeartRate);
        Assert.Equal("Observation", res.ResourceType);
        Assert.Equal("hr-1", res.Id);
        Assert.True(res.IsCdmType);
        var o = Assert.Single(res.Observations);
        Assert.Equal("hr-1", o.Id);
        Assert.Equal(new CdmCoding(Systems.Loinc, "8867-4", "Heart rate"), o.Code);
        Assert.Equal([new CdmCoding(Systems.Snomed, "364075005")], o.AdditionalCodes);
        Assert.Equal("p-1", o.PatientId);
        Assert.Equal("e-1", o.EncounterId);
        Assert.Equal(new DateTimeOffset(2019, 5, 6, 7, 8, 9, TimeSpan.FromHours(2)), o.Effective);
        Assert.Equal(72.50m, o.Value);
        Assert.Equal("/min", o.Unit); // the UCUM code, not the display unit
        Assert.Equal("final", o.Status);
        Assert.Equal("vital-signs", o.Category);
        Assert.Equal("N", o.Interpretation);
        Assert.Null(o.ValueCode);
        Assert.Null(o.ValueBoolean);
        Assert.Null(res.Patient);
        Assert.Null(res.Encounter);
    }

    [Fact]
    public void Quantity_without_code_takes_the_unit_text()
    {
        var o = Assert.Single(Read("""{"resourceType":"Observation","id":"o","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/p"},"valueQuantity":{"value":5.4,"unit":"mmol/L"}}""").Observations);
        Assert.Equal(5.4m, o.Value);
        Assert.Equal("mmol/L", o.Unit);
        Assert.Null(o.EncounterId);
        Assert.Null(o.Effective);
    }

    [Fact]
    public void Effective_period_start_and_absolute_references()
    {
        var o = Assert.Single(Read("""
            {"resourceType":"Observation","id":"o","status":"amended","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},
             "subject":{"reference":"https://fhir.example.org/r4/Patient/p9/_history/3"},"encounter":{"reference":"https://fhir.example.org/r4/Encounter/e9"},
             "effectivePeriod":{"start":"2019-01-02","end":"2019-01-03"},"valueInteger":7}
            """).Observations);
        Assert.Equal("p9", o.PatientId);
        Assert.Equal("e9", o.EncounterId);
        Assert.Equal("amended", o.Status);
        Assert.Equal(new DateTimeOffset(2019, 1, 2, 0, 0, 0, TimeSpan.Zero), o.Effective);
        Assert.Equal(7m, o.Value);
    }

    [Fact]
    public void Escaped_date_strings_are_read()
    {
        // System.Text.Json re-serialization (as of Bundle entries) writes '+' as \u002B.
        var json = HeartRate.Replace("2019-05-06T07:08:09+02:00", "2019-05-06T07:08:09\\u002B02:00");
        Assert.Contains("\\u002B", json);
        var o = Assert.Single(Read(json).Observations);
        Assert.Equal(new DateTimeOffset(2019, 5, 6, 7, 8, 9, TimeSpan.FromHours(2)), o.Effective);
        var p = Read("""{"resourceType":"Patient","id":"p","birthDate":"\u0031950-07-03"}""").Patient!;
        Assert.Equal(new DateOnly(1950, 7, 3), p.BirthDate);
    }

    [Theory]
    [InlineData("1e40")]
    [InlineData("-1e40")]
    [InlineData("1e400")]
    public void Quantity_beyond_decimal_range_is_an_error_not_a_crash(string number)
    {
        var json = HeartRate.Replace("\"value\":72.50", "\"value\":" + number);
        var e = Record.Exception(() => Read(json));
        Assert.True(e is FhirReadException or FormatException, e?.ToString() ?? "no exception");
    }

    [Fact]
    public void Coded_and_boolean_values()
    {
        var coded = Assert.Single(Read("""{"resourceType":"Observation","id":"s","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"72166-2"}]},"subject":{"reference":"Patient/p"},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"266919005","display":"Never smoker"}]}}""").Observations);
        Assert.Equal(new CdmCoding(Systems.Snomed, "266919005", "Never smoker"), coded.ValueCode);
        Assert.Null(coded.Value);
        var flag = Assert.Single(Read("""{"resourceType":"Observation","id":"b","status":"final","code":{"coding":[{"system":"x","code":"y"}]},"subject":{"reference":"Patient/p"},"valueBoolean":false}""").Observations);
        Assert.False(flag.ValueBoolean);
    }

    private const string BloodPressurePanel = """
        {"resourceType":"Observation","id":"bp-7","status":"final",
         "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
         "code":{"coding":[{"system":"http://loinc.org","code":"55284-4","display":"Blood pressure systolic and diastolic"}]},
         "subject":{"reference":"Patient/p-2"},"encounter":{"reference":"Encounter/e-2"},
         "effectiveDateTime":"2019-05-06T07:08:09Z",
         "component":[
           {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6","display":"Systolic blood pressure"}]},"valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
           {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4","display":"Diastolic blood pressure"}]},"valueQuantity":{"value":81.5,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}
         ]}
        """;

    [Fact]
    public void Blood_pressure_panel_is_flattened_into_one_observation_per_component()
    {
        var res = Read(BloodPressurePanel);
        Assert.Equal(2, res.Observations.Count);
        var (sys, dia) = (res.Observations[0], res.Observations[1]);
        Assert.Equal("bp-7-c1", sys.Id);
        Assert.Equal("bp-7-c2", dia.Id);
        Assert.Equal(new CdmCoding(Systems.Loinc, "8480-6", "Systolic blood pressure"), sys.Code);
        Assert.Equal(new CdmCoding(Systems.Loinc, "8462-4", "Diastolic blood pressure"), dia.Code);
        Assert.Equal(120m, sys.Value);
        Assert.Equal(81.5m, dia.Value);
        foreach (var o in res.Observations)
        {
            Assert.Equal("mm[Hg]", o.Unit);
            Assert.Equal("p-2", o.PatientId);
            Assert.Equal("e-2", o.EncounterId);
            Assert.Equal("vital-signs", o.Category);
            Assert.Equal(new DateTimeOffset(2019, 5, 6, 7, 8, 9, TimeSpan.Zero), o.Effective);
        }
        Assert.DoesNotContain(res.Observations, o => o.Code.Code == "55284-4");
    }

    [Fact]
    public void Panel_with_its_own_value_keeps_it_beside_the_components()
    {
        var json = BloodPressurePanel.Replace("\"effectiveDateTime\"", "\"valueQuantity\":{\"value\":93,\"code\":\"mm[Hg]\"},\"effectiveDateTime\"");
        var res = Read(json);
        Assert.Equal(["bp-7", "bp-7-c1", "bp-7-c2"], res.Observations.Select(o => o.Id));
        Assert.Equal(93m, res.Observations[0].Value);
    }

    [Fact]
    public void Observation_without_subject_is_a_read_error()
    {
        var json = HeartRate.Replace("\"subject\":{\"reference\":\"Patient/p-1\",\"display\":\"ignored\"},", "");
        Assert.NotEqual(HeartRate, json);
        var e = Assert.Throws<FhirReadException>(() => Read(json));
        Assert.Contains("Observation/hr-1", e.Message);
        Assert.Contains("subject", e.Message);
    }

    [Theory]
    [InlineData("\"subject\":{\"reference\":\"Patient/p-1\",\"display\":\"ignored\"}", "\"subject\":{\"reference\":\"Group/g1\"}", "subject")] // not a Patient
    [InlineData("\"subject\":{\"reference\":\"Patient/p-1\",\"display\":\"ignored\"}", "\"subject\":{\"display\":\"no reference\"}", "subject")]
    [InlineData("\"status\":\"final\",", "", "status")]
    [InlineData("\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\",\"display\":\"Heart rate\"},{\"system\":\"http://snomed.info/sct\",\"code\":\"364075005\"}],\"text\":\"HR\"},", "\"code\":{\"text\":\"HR\"},", "code")]
    [InlineData("\"id\":\"hr-1\",", "", "without id")]
    [InlineData("\"id\":\"hr-1\",", "\"id\":\"hr_1\",", "not a valid FHIR id")]
    [InlineData("\"effectiveDateTime\":\"2019-05-06T07:08:09+02:00\"", "\"effectiveDateTime\":\"2019-05-06T07:08:09\"", "effectiveDateTime")]
    [InlineData("\"value\":72.50", "\"value\":\"72.5\"", "valueQuantity")]
    public void Observation_lacking_what_the_cdm_needs_is_a_read_error(string from, string to, string messagePart)
    {
        var json = HeartRate.Replace(from, to);
        Assert.NotEqual(HeartRate, json);
        var e = Assert.Throws<FhirReadException>(() => Read(json));
        Assert.Contains(messagePart, e.Message);
    }

    [Theory]
    [InlineData("""{"resourceType":"Claim","id":"c1","status":"active","patient":{"reference":"Patient/p"}}""", "Claim")]
    [InlineData("""{"resourceType":"Organization","id":"o1","identifier":[{"system":"s","value":"v"}],"name":"General"}""", "Organization")]
    [InlineData("""{"resourceType":"Procedure","id":"pr","status":"completed","code":{"coding":[{"system":"http://snomed.info/sct","code":"1"}]},"subject":{"reference":"Patient/p"}}""", "Procedure")]
    public void Types_outside_the_cdm_are_read_but_not_cdm(string json, string type)
    {
        var res = Read(json);
        Assert.Equal(type, res.ResourceType);
        Assert.False(res.IsCdmType);
        Assert.Empty(res.Observations);
    }

    [Fact]
    public void Patient()
    {
        var p = Read("""{"resourceType":"Patient","id":"p-1","extension":[{"url":"http://x","valueString":"y"}],"name":[{"family":"Doe"}],"gender":"female","birthDate":"1950-07-03","deceasedDateTime":"2019-01-02T03:04:05-05:00"}""").Patient;
        Assert.NotNull(p);
        Assert.Equal(new CdmPatient { Id = "p-1", Gender = "female", BirthDate = new DateOnly(1950, 7, 3), DeceasedDateTime = new DateTimeOffset(2019, 1, 2, 3, 4, 5, TimeSpan.FromHours(-5)) }, p);
        Assert.Throws<FhirReadException>(() => Read("""{"resourceType":"Patient","id":"p","birthDate":"1950-02-30"}"""));
        Assert.Throws<FhirReadException>(() => Read("""{"resourceType":"Patient"}"""));
    }

    [Fact]
    public void Encounter()
    {
        var e = Read("""
            {"resourceType":"Encounter","id":"e-1","status":"finished",
             "extension":[{"url":"https://clinicalfed.dev/fhir/StructureDefinition/icu-admission","valueDateTime":"2000-01-01T01:00:00Z"}],
             "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"EMER"},
             "type":[{"coding":[{"system":"http://snomed.info/sct","code":"50849002","display":"Emergency room admission"}]},{"coding":[{"system":"x","code":"y"}]}],
             "priority":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActPriority","code":"EM"}]},
             "subject":{"reference":"Patient/p-1"},
             "period":{"start":"2000-01-01T03:00:00Z","end":"2000-01-02T03:00:00Z"},
             "hospitalization":{"admitSource":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/admit-source","code":"emd"}]},"dischargeDisposition":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/discharge-disposition","code":"home"}]}},
             "serviceProvider":{"reference":"Organization/org-1"},
             "partOf":{"reference":"Encounter/e-0"}}
            """).Encounter;
        Assert.NotNull(e);
        Assert.Equal("e-1", e.Id);
        Assert.Equal("p-1", e.PatientId);
        Assert.Equal("finished", e.Status);
        Assert.Equal("EMER", e.Class);
        Assert.Equal([new CdmCoding(Systems.Snomed, "50849002", "Emergency room admission"), new CdmCoding("x", "y")], e.Types);
        Assert.Equal("EM", e.Priority);
        Assert.Equal(new DateTimeOffset(2000, 1, 1, 3, 0, 0, TimeSpan.Zero), e.Start);
        Assert.Equal(new DateTimeOffset(2000, 1, 2, 3, 0, 0, TimeSpan.Zero), e.End);
        Assert.Equal(new CdmCoding(Systems.AdmitSource, "emd"), e.AdmitSource);
        Assert.Equal(new CdmCoding(Systems.DischargeDisposition, "home"), e.DischargeDisposition);
        Assert.Equal("Organization/org-1", e.ServiceProvider);
        Assert.Equal("e-0", e.PartOfEncounterId);
        Assert.Equal(new DateTimeOffset(2000, 1, 1, 1, 0, 0, TimeSpan.Zero), e.IcuAdmission);
        Assert.False(e.IsIcuStay);
        Assert.Throws<FhirReadException>(() => Read("""{"resourceType":"Encounter","id":"e","status":"finished","subject":{"reference":"Patient/p"}}""")); // no class
    }

    [Fact]
    public void Condition_with_rank_extension()
    {
        var c = Read("""
            {"resourceType":"Condition","id":"c-1",
             "extension":[{"url":"https://clinicalfed.dev/fhir/StructureDefinition/diagnosis-rank","valuePositiveInt":2}],
             "clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"resolved"}]},
             "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"problem-list-item"}]}],
             "code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-9-cm","code":"250.83"}]},
             "subject":{"reference":"Patient/p-1"},"encounter":{"reference":"Encounter/e-1"},
             "onsetDateTime":"2000-01-01T08:00:00Z","recordedDate":"2000-01-02"}
            """).Condition;
        Assert.NotNull(c);
        Assert.Equal(new CdmCoding(Systems.Icd9Cm, "250.83"), c.Code);
        Assert.Equal(2, c.Rank);
        Assert.Equal("resolved", c.ClinicalStatus);
        Assert.Equal("problem-list-item", c.Category);
        Assert.Equal("e-1", c.EncounterId);
        Assert.Equal(new DateTimeOffset(2000, 1, 1, 8, 0, 0, TimeSpan.Zero), c.Onset);
        Assert.Equal(new DateTimeOffset(2000, 1, 2, 0, 0, 0, TimeSpan.Zero), c.Recorded);
    }

    [Fact]
    public void MedicationRequest_needs_a_coded_medication()
    {
        var m = Read("""{"resourceType":"MedicationRequest","id":"m-1","status":"stopped","intent":"order","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"860975"}]},"subject":{"reference":"Patient/p-1"},"authoredOn":"2001-02-03T04:05:06Z","extension":[{"url":"https://clinicalfed.dev/fhir/StructureDefinition/dose-change","valueCode":"down"}]}""").MedicationRequest;
        Assert.NotNull(m);
        Assert.Equal(new CdmCoding(Systems.RxNorm, "860975"), m.Medication);
        Assert.Equal("stopped", m.Status);
        Assert.Equal("down", m.DoseChange);
        Assert.Equal(new DateTimeOffset(2001, 2, 3, 4, 5, 6, TimeSpan.Zero), m.AuthoredOn);
        var e = Assert.Throws<FhirReadException>(() => Read("""{"resourceType":"MedicationRequest","id":"m-2","status":"active","intent":"order","medicationReference":{"reference":"Medication/x"},"subject":{"reference":"Patient/p-1"}}"""));
        Assert.Contains("medicationReference", e.Message);
    }

    [Theory]
    [InlineData("""{"resourceType":"Patient","id":"p",""")]
    [InlineData("""{"resourceType":"Patient" "id":"p"}""")]
    public void Malformed_json_is_a_json_exception(string json) =>
        Assert.ThrowsAny<JsonException>(() => Read(json));

    [Fact]
    public void Not_an_object_or_no_resource_type_is_a_read_error()
    {
        Assert.Throws<FhirReadException>(() => Read("[1,2]"));
        Assert.Throws<FhirReadException>(() => Read("""{"id":"x"}"""));
    }

    [Fact]
    public void Custom_resolver_is_used_for_references()
    {
        var o = Assert.Single(Read(HeartRate.Replace("Patient/p-1", "urn:uuid:abc"), (r, t) => r == "urn:uuid:abc" && t == "Patient" ? "resolved" : FhirResourceReader.DefaultResolver(r, t)).Observations);
        Assert.Equal("resolved", o.PatientId);
    }

    [Theory]
    [InlineData("Patient/1", "Patient", "1")]
    [InlineData("Patient/1/_history/2", "Patient", "1")]
    [InlineData("http://h/fhir/Patient/a.b-c", "Patient", "a.b-c")]
    [InlineData("Encounter/1", "Patient", null)]
    [InlineData("urn:uuid:1234", "Patient", null)]
    [InlineData("Patient/", "Patient", null)]
    [InlineData("1", "Patient", null)]
    public void DefaultResolver(string reference, string type, string? expected) =>
        Assert.Equal(expected, FhirResourceReader.DefaultResolver(reference, type));
}
