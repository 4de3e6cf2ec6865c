using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.TestSupport;

namespace ClinicalFed.Cdm.Tests.Ingest;

public class FhirIngestorTests
{
    private sealed record Run(ConversionReport Report, string Cdm);

    private static Run Convert(TempFolder tmp, string input, string outName = "cdm")
    {
        var output = tmp.Combine(outName);
        return new Run(CdmConverter.Convert(new ConvertOptions(input, "site-1", output)), output);
    }

    private static string Minify(string json) => JsonNode.Parse(json)!.ToJsonString();

    // A Synthea-style transaction: urn:uuid fullUrls, references by urn, request entries; the Patient has no id
    // (its id comes from its urn) and the Encounter's id differs from its urn.
    private const string TransactionBundle = """
        {
          "resourceType": "Bundle", "type": "transaction",
          "entry": [
            { "fullUrl": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000001",
              "resource": { "resourceType": "Patient", "gender": "male", "birthDate": "1960-02-03" },
              "request": { "method": "POST", "url": "Patient" } },
            { "fullUrl": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000002",
              "resource": { "resourceType": "Encounter", "id": "enc-1", "status": "finished",
                            "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP" },
                            "subject": { "reference": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000001" },
                            "period": { "start": "2015-01-01T10:00:00+01:00", "end": "2015-01-03T10:00:00+01:00" } },
              "request": { "method": "POST", "url": "Encounter" } },
            { "fullUrl": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000003",
              "resource": { "resourceType": "Observation", "id": "obs-1", "status": "final",
                            "code": { "coding": [ { "system": "http://loinc.org", "code": "8867-4" } ] },
                            "subject": { "reference": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000001" },
                            "encounter": { "reference": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000002" },
                            "effectiveDateTime": "2015-01-01T11:00:00+01:00",
                            "valueQuantity": { "value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min" } },
              "request": { "method": "POST", "url": "Observation" } },
            { "fullUrl": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000004",
              "resource": { "resourceType": "Condition", "id": "cond-1",
                            "code": { "coding": [ { "system": "http://snomed.info/sct", "code": "44054006" } ] },
                            "subject": { "reference": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000001" },
                            "encounter": { "reference": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000002" },
                            "onsetDateTime": "2015-01-01T12:00:00+01:00" },
              "request": { "method": "POST", "url": "Condition" } },
            { "fullUrl": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000005",
              "resource": { "resourceType": "Claim", "id": "claim-1", "status": "active",
                            "patient": { "reference": "urn:uuid:7f3a0c1e-0000-4000-8000-000000000001" } },
              "request": { "method": "POST", "url": "Claim" } }
          ]
        }
        """;

    [Fact]
    public void Transaction_bundle_urn_references_are_rewritten_to_type_and_id()
    {
        using var tmp = new TempFolder();
        var (report, cdm) = Convert(tmp, tmp.WriteText("tx.json", TransactionBundle));
        Assert.True(report.RejectedTotal == 0, string.Join("\n", report.RejectedExamples));
        Assert.Equal("fhir-json", report.InputKind);

        const string patientId = "7f3a0c1e-0000-4000-8000-000000000001";
        var p = Assert.Single(CdmFiles.Patients(cdm));
        Assert.Equal(patientId, p.Id);
        Assert.Equal(new DateOnly(1960, 2, 3), p.BirthDate);

        var e = Assert.Single(CdmFiles.Encounters(cdm));
        Assert.Equal(("enc-1", patientId), (e.Id, e.PatientId));

        var o = Assert.Single(CdmFiles.Observations(cdm));
        Assert.Equal(("obs-1", patientId, "enc-1"), (o.Id, o.PatientId, o.EncounterId));
        Assert.Equal(88m, o.Value);

        var c = Assert.Single(CdmFiles.Conditions(cdm));
        Assert.Equal((patientId, "enc-1"), (c.PatientId, c.EncounterId));

        // The written JSON refers by Type/id, never by urn.
        foreach (var t in CdmResourceTypes.All)
            Assert.All(CdmFiles.Lines(cdm, t), l => Assert.DoesNotContain("urn:uuid", l));
        Assert.Contains("\"reference\":\"Encounter/enc-1\"", CdmFiles.Lines(cdm, CdmResourceType.Observation)[0]);
        Assert.Contains($"\"reference\":\"Patient/{patientId}\"", CdmFiles.Lines(cdm, CdmResourceType.Observation)[0]);

        Assert.Equal(1, report.SkippedResourceTypes["Claim"]);
        Assert.Equal(4, CdmFiles.AssertAllStrictFhir(cdm));
    }

    [Fact]
    public void Searchset_bundle_with_absolute_full_urls()
    {
        const string searchset = """
            {"resourceType":"Bundle","type":"searchset","total":3,"link":[{"relation":"self","url":"https://fhir.example.org/r4/Observation?patient=42"}],
             "entry":[
               {"fullUrl":"https://fhir.example.org/r4/Patient/42","resource":{"resourceType":"Patient","id":"42","gender":"female"},"search":{"mode":"include"}},
               {"fullUrl":"https://fhir.example.org/r4/Observation/a1","resource":{"resourceType":"Observation","id":"a1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/42"},"valueQuantity":{"value":5.5,"code":"mmol/L"}},"search":{"mode":"match"}},
               {"fullUrl":"https://fhir.example.org/r4/Observation/a2","resource":{"resourceType":"Observation","id":"a2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"https://fhir.example.org/r4/Patient/42"},"valueQuantity":{"value":6.1,"code":"mmol/L"}},"search":{"mode":"match"}},
               {"fullUrl":"https://fhir.example.org/r4/OperationOutcome/x","resource":{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]},"search":{"mode":"outcome"}}
             ]}
            """;
        using var tmp = new TempFolder();
        var (report, cdm) = Convert(tmp, tmp.WriteText("search.json", searchset));
        Assert.Equal(0, report.RejectedTotal);
        Assert.Equal("42", Assert.Single(CdmFiles.Patients(cdm)).Id);
        var obs = CdmFiles.Observations(cdm);
        Assert.Equal(["a1", "a2"], obs.Select(o => o.Id));
        Assert.All(obs, o => Assert.Equal("42", o.PatientId));
        Assert.Equal([5.5m, 6.1m], obs.Select(o => o.Value!.Value));
        Assert.Equal(1, report.SkippedResourceTypes["OperationOutcome"]);
    }

    [Fact]
    public void Forward_references_and_a_type_after_the_entries_resolve_as_in_a_two_pass_read()
    {
        // The Observation comes first and names its patient by an absolute URL that a later entry's fullUrl maps to a
        // different id, and its encounter by a urn:uuid defined later; Bundle.type comes last. A single forward scan
        // cannot know either answer when it reads the Observation, so the Bundle must be read again with the full map.
        const string bundle = """
            {"entry":[
               {"resource":{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
                 "subject":{"reference":"https://ehr.example.org/fhir/Patient/mrn-77"},"encounter":{"reference":"urn:uuid:enc-9"},
                 "effectiveDateTime":"2020-01-01T01:00:00Z","valueQuantity":{"value":91,"code":"/min"}},"fullUrl":"https://ehr.example.org/fhir/Observation/o1"},
               {"fullUrl":"https://ehr.example.org/fhir/Patient/mrn-77","resource":{"resourceType":"Patient","id":"p-internal-1","gender":"male"}},
               {"fullUrl":"urn:uuid:enc-9","resource":{"resourceType":"Encounter","status":"finished","class":{"code":"IMP"},"subject":{"reference":"Patient/p-internal-1"}}},
               {"fullUrl":"https://ehr.example.org/fhir/Observation/o2","resource":{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
                 "subject":{"reference":"Patient/p-internal-1"},"encounter":{"reference":"urn:uuid:enc-9"},"effectiveDateTime":"2020-01-01T02:00:00Z","valueQuantity":{"value":95,"code":"/min"}}}
             ],"resourceType":"Bundle","type":"collection"}
            """;
        using var tmp = new TempFolder();
        var (report, cdm) = Convert(tmp, tmp.WriteText("forward.json", bundle));
        Assert.True(report.RejectedTotal == 0, string.Join("\n", report.RejectedExamples));
        Assert.Equal("p-internal-1", Assert.Single(CdmFiles.Patients(cdm)).Id);
        Assert.Equal(("enc-9", "p-internal-1"), Assert.Single(CdmFiles.Encounters(cdm)) is var e ? (e.Id, e.PatientId) : default);
        var obs = CdmFiles.Observations(cdm);
        Assert.Equal(["o1", "o2"], obs.Select(o => o.Id));
        Assert.All(obs, o => Assert.Equal(("p-internal-1", "enc-9"), (o.PatientId, o.EncounterId)));
    }

    [Fact]
    public void A_refused_entry_in_a_bundle_is_reported_once_and_the_others_convert()
    {
        const string bundle = """
            {"resourceType":"Bundle","type":"collection","entry":[
               {"fullUrl":"Patient/p1","resource":{"resourceType":"Patient","id":"p1"}},
               {"resource":{"resourceType":"Observation","id":"bad","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"valueBoolean":"yes"}},
               {"resource":{"resourceType":"Observation","id":"ok","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":80,"code":"/min"}}}
             ]}
            """;
        using var tmp = new TempFolder();
        var (report, cdm) = Convert(tmp, tmp.WriteText("refused.json", bundle));
        Assert.Equal(1, report.RejectedTotal);
        Assert.Equal(["ok"], CdmFiles.Observations(cdm).Select(o => o.Id));
    }

    private const string OrganizationBundle = """
        {"resourceType":"Bundle","type":"transaction","entry":[
          {"fullUrl":"urn:uuid:org-uuid-1","resource":{"resourceType":"Organization","id":"org-1","identifier":[{"system":"https://github.com/synthetichealth/synthea","value":"ab12"}],"name":"General Hospital"},"request":{"method":"POST","url":"Organization"}},
          {"fullUrl":"urn:uuid:org-uuid-2","resource":{"resourceType":"Organization","id":"org-2","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"999"}],"name":"Clinic"},"request":{"method":"POST","url":"Organization"}}
        ]}
        """;

    private const string PatientBundle = """
        {"resourceType":"Bundle","type":"transaction","entry":[
          {"fullUrl":"urn:uuid:pat-1","resource":{"resourceType":"Patient","id":"pat-1","gender":"female"},"request":{"method":"POST","url":"Patient"}},
          {"fullUrl":"urn:uuid:enc-a","resource":{"resourceType":"Encounter","id":"enc-a","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:pat-1"},
             "serviceProvider":{"reference":"Organization?identifier=https://github.com/synthetichealth/synthea|ab12"}},"request":{"method":"POST","url":"Encounter"}},
          {"fullUrl":"urn:uuid:enc-b","resource":{"resourceType":"Encounter","id":"enc-b","status":"finished","class":{"code":"EMER"},"subject":{"reference":"urn:uuid:pat-1"},
             "serviceProvider":{"reference":"Organization?identifier=http://hl7.org/fhir/sid/us-npi|999"}},"request":{"method":"POST","url":"Encounter"}},
          {"fullUrl":"urn:uuid:enc-c","resource":{"resourceType":"Encounter","id":"enc-c","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:pat-1"},
             "serviceProvider":{"reference":"Organization/org-7"}},"request":{"method":"POST","url":"Encounter"}},
          {"fullUrl":"urn:uuid:claim-1","resource":{"resourceType":"Claim","id":"claim-1","status":"active","patient":{"reference":"urn:uuid:pat-1"}},"request":{"method":"POST","url":"Claim"}},
          {"fullUrl":"urn:uuid:claim-2","resource":{"resourceType":"Claim","id":"claim-2","status":"active","patient":{"reference":"urn:uuid:pat-1"}},"request":{"method":"POST","url":"Claim"}}
        ]}
        """;

    [Fact]
    public void Conditional_reference_is_resolved_from_an_organization_seen_earlier()
    {
        using var tmp = new TempFolder();
        var input = tmp.WriteText("bundles.ndjson", Minify(OrganizationBundle) + "\n" + Minify(PatientBundle) + "\n");
        var (report, cdm) = Convert(tmp, input);
        Assert.Equal(0, report.RejectedTotal);
        Assert.Equal("fhir-ndjson", report.InputKind);
        Assert.Equal(2, report.RecordsRead);
        var enc = CdmFiles.Encounters(cdm).ToDictionary(e => e.Id);
        Assert.Equal("Organization/org-1", enc["enc-a"].ServiceProvider);
        Assert.Equal("Organization/org-2", enc["enc-b"].ServiceProvider);
        Assert.Equal("Organization/org-7", enc["enc-c"].ServiceProvider);
        Assert.All(enc.Values, e => Assert.Equal("pat-1", e.PatientId));
        Assert.Equal(2, report.SkippedResourceTypes["Claim"]);
        Assert.Equal(2, report.SkippedResourceTypes["Organization"]);
        Assert.DoesNotContain("Claim", report.ResourcesWritten.Keys);
        CdmFiles.AssertAllStrictFhir(cdm);
    }

    [Fact]
    public void Conditional_reference_to_an_organization_never_seen_is_kept_as_written()
    {
        using var tmp = new TempFolder();
        var (_, cdm) = Convert(tmp, tmp.WriteText("b.json", PatientBundle));
        Assert.Equal("Organization?identifier=https://github.com/synthetichealth/synthea|ab12",
            CdmFiles.Encounters(cdm).Single(e => e.Id == "enc-a").ServiceProvider);
    }

    private static readonly string[] NdjsonLines =
    [
        """{"resourceType":"Patient","id":"p1","gender":"male"}""",
        """{"resourceType":"Patient","id":"p2",""",                                                    // truncated: line 2
        """{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":70,"code":"/min"}}""",
        "",
        """{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":71,"code":"/min"}}""", // no subject: line 5
        """{"resourceType":"Claim","id":"c1","status":"active"}""",
        """{"resourceType":"Observation","id":"o3","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2019-02-30T00:00:00Z"}""", // bad date: line 7
        """{"resourceType":"Observation","id":"o4","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"0000-01-01T00:00:00Z"}""", // year 0: line 8
        """{"resourceType":"Observation","id":"o5","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1e40,"code":"/min"}}""", // beyond decimal: line 9
        """{"resourceType":"Observation","id":"o6","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":72,"code":"/min"}}""",
    ];

    [Fact]
    public void Malformed_ndjson_line_is_rejected_with_its_line_number_and_other_lines_convert()
    {
        using var tmp = new TempFolder();
        var (report, cdm) = Convert(tmp, tmp.WriteText("mixed.ndjson", string.Join("\n", NdjsonLines) + "\n"));
        Assert.Equal("fhir-ndjson", report.InputKind);
        Assert.Equal(["p1"], CdmFiles.Patients(cdm).Select(p => p.Id));
        Assert.Equal(["o1", "o6"], CdmFiles.Observations(cdm).Select(o => o.Id));
        Assert.Equal(1, report.SkippedResourceTypes["Claim"]);

        var byLine = report.RejectedExamples.ToDictionary(r => r.Line);
        Assert.Equal([2L, 5L, 7L, 8L, 9L], byLine.Keys.Order());
        Assert.All(report.RejectedExamples, r => Assert.Equal("mixed.ndjson", r.File));
        Assert.Equal(RejectionKinds.MalformedJson, byLine[2].Kind);
        Assert.Equal(RejectionKinds.MissingRequired, byLine[5].Kind);
        Assert.Contains("Observation/o2", byLine[5].Message);
        Assert.Contains("effectiveDateTime", byLine[7].Message);
        Assert.Contains("effectiveDateTime", byLine[8].Message);
        Assert.Contains("valueQuantity", byLine[9].Message);
        Assert.Equal(5, report.RejectedTotal);
        Assert.Equal(1, report.RejectedByKind[RejectionKinds.MalformedJson]);
        Assert.Equal(9, report.RecordsRead); // the empty line is not a record
    }

    [Fact]
    public void Gzipped_bulk_folder_reads_files_named_after_resource_types()
    {
        using var tmp = new TempFolder();
        var dir = tmp.Combine("bulk");
        Directory.CreateDirectory(dir);
        WriteGzip(Path.Combine(dir, "Patient.ndjson.gz"), """{"resourceType":"Patient","id":"p1"}""" + "\n" + """{"resourceType":"Patient","id":"p2"}""");
        File.WriteAllText(Path.Combine(dir, "Observation.ndjson"),
            """{"resourceType":"Observation","id":"bp","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/p1"},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"code":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"code":"mm[Hg]"}}]}""" + "\n");
        File.WriteAllText(Path.Combine(dir, "notes.ndjson"), "not fhir\n");
        File.WriteAllText(Path.Combine(dir, "manifest.json"), "{}");
        var (report, cdm) = Convert(tmp, dir);
        Assert.Equal("fhir-bulk-ndjson", report.InputKind);
        Assert.Equal(["Observation.ndjson", "Patient.ndjson.gz"], report.FilesRead.Order(StringComparer.Ordinal));
        Assert.Equal(["manifest.json", "notes.ndjson"], report.FilesSkipped.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(2, CdmFiles.Patients(cdm).Count);
        Assert.Equal(["bp-c1", "bp-c2"], CdmFiles.Observations(cdm).Select(o => o.Id));
        Assert.Equal(2, report.ResourcesWritten["Observation"]);
        CdmFiles.AssertAllStrictFhir(cdm);
    }

    [Fact]
    public void Unsupported_bundle_type_is_rejected()
    {
        using var tmp = new TempFolder();
        var (report, _) = Convert(tmp, tmp.WriteText("b.json", """{"resourceType":"Bundle","type":"history-ish","entry":[]}"""));
        var r = Assert.Single(report.RejectedExamples);
        Assert.Equal(RejectionKinds.UnsupportedResource, r.Kind);
    }

    [Fact]
    public void Input_that_is_not_fhir_needs_a_mapping()
    {
        using var tmp = new TempFolder();
        var e = Assert.Throws<CdmException>(() => Convert(tmp, tmp.WriteText("x.csv", "a,b\n1,2\n")));
        Assert.Contains("--mapping", e.Message);
        Assert.False(Directory.Exists(tmp.Combine("cdm")));
    }

    [Fact]
    public void Options_are_validated_all_at_once()
    {
        var e = Assert.Throws<CdmException>(() => CdmConverter.Convert(new ConvertOptions("/nonexistent/in", "bad site!", "")));
        Assert.Contains("--input", e.Message);
        Assert.Contains("--site", e.Message);
        Assert.Contains("--out", e.Message);
    }

    private static void WriteGzip(string path, string text)
    {
        using var fs = File.Create(path);
        using var gz = new GZipStream(fs, CompressionLevel.Fastest);
        gz.Write(Encoding.UTF8.GetBytes(text));
    }
}
