using System.Text;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.TestSupport;

namespace ClinicalFed.Cdm.Tests.Ingest;

public class FlatIngestorTests
{
    private static readonly DateTimeOffset Anchor = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    // ------------------------------------------------------------------ an hourly ICU extract (PhysioNet-like)

    private const string IcuMapping = """
        {
          "format_version": 1,
          "name": "tiny-icu",
          "source": { "delimiter": ",", "missing_values": ["", "NaN"], "per_patient_files": { "pattern": "*.psv", "delimiter": "|" } },
          "anchor": "2000-01-01T00:00:00Z",
          "patient": { "id_column": "pid", "gender": { "column": "sex", "map": { "0": "female", "1": "male" } }, "age": { "column": "age", "kind": "years" } },
          "encounter": {
            "id_suffix": "-icu", "class": "IMP", "icu_stay": true,
            "time": { "kind": "hour-offset", "column": "hour" },
            "icu_hours_column": "iculos",
            "hospital_admission_offset_hours_column": "hosp",
            "types": [ { "column": "micu", "when": "1", "code": "MICU", "display": "Medical intensive care unit" } ]
          },
          "observations": [
            { "column": "HR", "code": "8867-4", "display": "Heart rate", "unit": "/min", "category": "vital-signs" },
            { "column": "Lactate", "code": "2524-7", "unit": "mmol/L", "category": "laboratory" }
          ],
          "labels": [ { "column": "sepsis", "kind": "sepsis-onset", "lead_hours": 6 } ]
        }
        """;

    private const string IcuHeader = "pid,hour,HR,Lactate,sex,age,micu,iculos,hosp,sepsis";

    // p1: ICU admission at its first row (ICULOS 1), hospital admission 10 h before, sepsis flag from hour 2.
    // p2: ICULOS starts at 3 (ICU admission 2 h before the first row), no hospital offset, never septic.
    private static readonly string[] IcuRows =
    [
        "p1,0,80,,1,64.5,1,1,-10,0",
        "p1,1,82,1.8,1,64.5,1,2,-10,0",
        "p1,2,,2.5,1,64.5,1,3,-10,1",
        "p1,3,90,,1,64.5,1,4,-10,1",
        "p2,0,70,,0,40,0,3,,0",
        "p2,1,,,0,40,0,4,,0",
    ];

    private static string Csv(string header, IEnumerable<string> rows) => string.Join("\n", rows.Prepend(header)) + "\n";

    private sealed record Run(ConversionReport Report, string Cdm);

    private static Run Convert(TempFolder tmp, string mappingJson, string inputName, string content, string? site = "s1")
    {
        var input = tmp.WriteText(inputName, content);
        return ConvertPath(tmp, mappingJson, input, site);
    }

    private static Run ConvertPath(TempFolder tmp, string mappingJson, string input, string? site = "s1", string outName = "cdm")
    {
        var mapping = tmp.WriteText($"mapping-{Guid.NewGuid():N}.json", mappingJson);
        var output = tmp.Combine(outName);
        var report = CdmConverter.Convert(new ConvertOptions(input, site ?? "s1", output, mapping));
        return new Run(report, output);
    }

    [Fact]
    public void Icu_extract_ids_times_and_patients()
    {
        using var tmp = new TempFolder();
        var (report, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, IcuRows));
        Assert.Equal(0, report.RejectedTotal);
        Assert.Equal(6, report.RecordsRead);
        Assert.Equal("tiny-icu", report.Mapping);
        Assert.Equal("flat-delimited", report.InputKind);

        var patients = CdmFiles.Patients(cdm).ToDictionary(p => p.Id);
        Assert.Equal(["p1", "p2"], patients.Keys.Order());
        Assert.Equal("male", patients["p1"].Gender);
        Assert.Equal("female", patients["p2"].Gender);
        // Age 40 at the ICU admission (1999-12-31T22:00Z for p2): 40 × 365.25 days earlier.
        Assert.Equal(new DateOnly(1959, 12, 31), patients["p2"].BirthDate);

        var obs = CdmFiles.Observations(cdm).ToDictionary(o => o.Id);
        Assert.Equal(["p1-icu-hr-0", "p1-icu-hr-1", "p1-icu-hr-3", "p1-icu-lactate-1", "p1-icu-lactate-2", "p2-icu-hr-0"], obs.Keys.Order(StringComparer.Ordinal));
        var lac = obs["p1-icu-lactate-2"];
        Assert.Equal(Anchor.AddHours(2), lac.Effective);
        Assert.Equal(2.5m, lac.Value);
        Assert.Equal("mmol/L", lac.Unit);
        Assert.Equal(new CdmCoding(Systems.Loinc, "2524-7"), lac.Code);
        Assert.Equal("laboratory", lac.Category);
        Assert.Equal("p1", lac.PatientId);
        Assert.Equal("p1-icu", lac.EncounterId);
        Assert.Equal(Anchor.AddHours(3), obs["p1-icu-hr-3"].Effective);
        Assert.Equal(90m, obs["p1-icu-hr-3"].Value);
        Assert.Equal(new CdmCoding(Systems.Loinc, "8867-4", "Heart rate"), obs["p1-icu-hr-3"].Code);
        Assert.Equal("vital-signs", obs["p1-icu-hr-3"].Category);
        Assert.Equal(Anchor, obs["p2-icu-hr-0"].Effective);
    }

    [Fact]
    public void Icu_extract_encounters_icu_admission_and_hospital_parent()
    {
        using var tmp = new TempFolder();
        var (_, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, IcuRows));
        var enc = CdmFiles.Encounters(cdm).ToDictionary(e => e.Id);
        Assert.Equal(["p1-icu", "p1-icu-hospital", "p2-icu"], enc.Keys.Order(StringComparer.Ordinal));

        var icu1 = enc["p1-icu"];
        Assert.Equal(Anchor, icu1.Start);
        Assert.Equal(Anchor.AddHours(4), icu1.End); // last row's hour + 1
        Assert.Null(icu1.IcuAdmission);              // ICULOS starts at 1: the stay starts at the ICU admission
        Assert.True(icu1.IsIcuStay);
        Assert.Contains(new CdmCoding(Systems.ClinicalFed, "MICU", "Medical intensive care unit"), icu1.Types);
        Assert.Equal("p1-icu-hospital", icu1.PartOfEncounterId);
        Assert.Equal("IMP", icu1.Class);

        var hosp = enc["p1-icu-hospital"];
        Assert.Equal("p1", hosp.PatientId);
        Assert.Equal(Anchor.AddHours(-10), hosp.Start);
        Assert.Equal(icu1.End, hosp.End);
        Assert.False(hosp.IsIcuStay);
        Assert.Null(hosp.PartOfEncounterId);

        var icu2 = enc["p2-icu"];
        Assert.Equal(Anchor.AddHours(-2), icu2.IcuAdmission); // ICULOS 3 at the first row
        Assert.Equal(Anchor, icu2.Start);
        Assert.Equal(Anchor.AddHours(2), icu2.End);
        Assert.Null(icu2.PartOfEncounterId);
        Assert.DoesNotContain(icu2.Types, t => t.Code == "MICU");

        // The extension is in the written JSON only for p2.
        var lines = CdmFiles.Lines(cdm, CdmResourceType.Encounter);
        Assert.Single(lines, l => l.Contains(CdmExtensions.IcuAdmission, StringComparison.Ordinal));
        Assert.Contains(CdmExtensions.IcuAdmission, lines.Single(l => l.Contains("\"id\":\"p2-icu\"", StringComparison.Ordinal)));
        Assert.Equal(2 + 3 + 6 + 1, CdmFiles.AssertAllStrictFhir(cdm)); // patients, encounters, observations, sepsis
    }

    [Fact]
    public void Sepsis_condition_onset_is_first_positive_row_plus_lead_hours()
    {
        using var tmp = new TempFolder();
        var (_, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, IcuRows));
        var c = Assert.Single(CdmFiles.Conditions(cdm));
        Assert.Equal("p1-icu-sepsis", c.Id);
        Assert.Equal("p1", c.PatientId);
        Assert.Equal("p1-icu", c.EncounterId);
        Assert.Equal(new CdmCoding(Systems.Snomed, Systems.SepsisCode, "Sepsis"), c.Code);
        Assert.Equal(Anchor.AddHours(2 + 6), c.Onset);
        Assert.Equal("active", c.ClinicalStatus);
    }

    [Fact]
    public void Sepsis_label_turning_off_is_reported_and_onset_kept()
    {
        using var tmp = new TempFolder();
        string[] rows = [.. IcuRows[..3], "p1,3,90,,1,64.5,1,4,-10,0"];
        var (report, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, rows));
        Assert.Equal(Anchor.AddHours(8), Assert.Single(CdmFiles.Conditions(cdm)).Onset);
        var r = Assert.Single(report.RejectedExamples);
        Assert.Equal((5L, "sepsis", RejectionKinds.InvalidValue), (r.Line, r.Column, r.Kind));
    }

    [Fact]
    public void Non_number_value_is_a_counted_rejection_and_the_rest_of_the_row_converts()
    {
        using var tmp = new TempFolder();
        string[] rows = [IcuRows[0], "p1,1,eighty,1.8,1,64.5,1,2,-10,0", .. IcuRows[2..]];
        var (report, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, rows));
        Assert.Equal(1, report.RejectedTotal);
        Assert.Equal(1, report.RejectedByKind[RejectionKinds.InvalidValue]);
        var r = Assert.Single(report.RejectedExamples);
        Assert.Equal("icu.csv", r.File);
        Assert.Equal(3, r.Line); // header is line 1
        Assert.Equal("HR", r.Column);
        Assert.Contains("eighty", r.Message);
        var ids = CdmFiles.Observations(cdm).Select(o => o.Id).ToHashSet();
        Assert.DoesNotContain("p1-icu-hr-1", ids);
        Assert.Contains("p1-icu-lactate-1", ids);
        Assert.Contains("p1-icu-hr-3", ids);
        // The report on disk says the same.
        var onDisk = ConversionReport.Read(Path.Combine(cdm, "convert-report.json"));
        Assert.Equal(1, onDisk.RejectedTotal);
        Assert.Equal("HR", Assert.Single(onDisk.RejectedExamples).Column);
    }

    [Fact]
    public void Row_with_the_wrong_field_count_is_a_malformed_row()
    {
        using var tmp = new TempFolder();
        string[] rows = [IcuRows[0], "p1,1,82,1.8,1,64.5,1,2,-10", .. IcuRows[2..]];
        var (report, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, rows));
        var r = Assert.Single(report.RejectedExamples);
        Assert.Equal((RejectionKinds.MalformedRow, 3L, "icu.csv"), (r.Kind, r.Line, r.File));
        Assert.Contains("9", r.Message);
        Assert.Contains("10", r.Message);
        // Nothing at hour 1; the rows before and after convert.
        var obs = CdmFiles.Observations(cdm).Where(o => o.PatientId == "p1").ToList();
        Assert.DoesNotContain(obs, o => o.Effective == Anchor.AddHours(1));
        Assert.Contains(obs, o => o.Effective == Anchor.AddHours(2) && o.Code.Code == "2524-7" && o.Value == 2.5m);
        Assert.Contains(obs, o => o.Effective == Anchor.AddHours(3) && o.Code.Code == "8867-4" && o.Value == 90m);
        Assert.Equal(obs.Count, obs.Select(o => o.Id).Distinct().Count());
    }

    [Fact]
    public void Column_the_mapping_names_but_the_file_lacks_is_an_error_before_any_output()
    {
        using var tmp = new TempFolder();
        var header = IcuHeader.Replace(",Lactate", "");
        var rows = IcuRows.Select(r => { var f = r.Split(','); return string.Join(",", f.Take(3).Concat(f.Skip(4))); });
        var input = tmp.WriteText("nolactate.csv", Csv(header, rows));
        var e = Assert.Throws<CdmException>(() => ConvertPath(tmp, IcuMapping, input, outName: "out"));
        Assert.Contains(input, e.Message);
        Assert.Contains("'Lactate'", e.Message);
        Assert.Contains("observations[1].column", e.Message);
        Assert.False(Directory.Exists(tmp.Combine("out")));
        Assert.DoesNotContain(Directory.GetFileSystemEntries(tmp.Path), p => Path.GetFileName(p).StartsWith(".out", StringComparison.Ordinal));
    }

    [Fact]
    public void Failed_conversion_leaves_an_existing_cdm_untouched()
    {
        using var tmp = new TempFolder();
        var (_, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, IcuRows));
        var before = CdmFiles.Lines(cdm, CdmResourceType.Observation);
        var bad = tmp.WriteText("bad.csv", Csv(IcuHeader.Replace("HR", "HeartRate"), IcuRows));
        Assert.Throws<CdmException>(() => ConvertPath(tmp, IcuMapping, bad));
        Assert.Equal(before, CdmFiles.Lines(cdm, CdmResourceType.Observation));
    }

    [Fact]
    public void Stay_rows_that_are_not_contiguous_are_an_error_naming_the_line()
    {
        using var tmp = new TempFolder();
        string[] rows = [IcuRows[0], IcuRows[1], IcuRows[4], IcuRows[2]];
        var e = Assert.Throws<CdmException>(() => Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, rows)));
        Assert.Contains("line 5", e.Message);
        Assert.Contains("p1-icu", e.Message);
        Assert.False(Directory.Exists(tmp.Combine("cdm")));
    }

    [Fact]
    public void Bad_time_on_the_first_row_of_a_stay_is_a_rejection_not_a_failure()
    {
        using var tmp = new TempFolder();
        string[] rows = ["p1,x,80,,1,64.5,1,1,-10,0", .. IcuRows[1..]];
        var (report, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, rows));
        var r = Assert.Single(report.RejectedExamples);
        Assert.Equal((RejectionKinds.InvalidValue, 2L, "hour"), (r.Kind, r.Line, r.Column));
        // The stay starts at its first row with a valid time; the other patient is unaffected.
        var obs = CdmFiles.Observations(cdm);
        Assert.DoesNotContain(obs, o => o.PatientId == "p1" && o.Effective < Anchor.AddHours(1));
        Assert.Contains(obs, o => o.PatientId == "p1" && o.Effective == Anchor.AddHours(1) && o.Code.Code == "2524-7" && o.Value == 1.8m);
        Assert.Contains(obs, o => o.Id == "p2-icu-hr-0");
        Assert.Equal(Anchor.AddHours(1), CdmFiles.Encounters(cdm).Single(e => e.Id == "p1-icu").Start);
        Assert.Equal(Anchor.AddHours(8), Assert.Single(CdmFiles.Conditions(cdm)).Onset);
    }

    [Fact]
    public void Unknown_gender_is_an_unknown_code_rejection()
    {
        using var tmp = new TempFolder();
        string[] rows = [.. IcuRows[..4], "p2,0,70,,9,40,0,3,,0", IcuRows[5]];
        var (report, cdm) = Convert(tmp, IcuMapping, "icu.csv", Csv(IcuHeader, rows));
        var r = Assert.Single(report.RejectedExamples);
        Assert.Equal((RejectionKinds.UnknownCode, 6L, "sex"), (r.Kind, r.Line, r.Column));
        Assert.Null(CdmFiles.Patients(cdm).Single(p => p.Id == "p2").Gender);
    }

    [Fact]
    public void Per_patient_psv_folder_converts_to_the_same_resources_as_the_long_csv()
    {
        using var tmp = new TempFolder();
        string[] rows =
        [
            .. IcuRows,
            "p3,0,101.5,4.25,1,77,0,1,-3.5,1",
            "p3,1,99,,1,77,0,2,-3.5,1",
        ];
        var (csvReport, csvCdm) = Convert(tmp, IcuMapping, "long.csv", Csv(IcuHeader, rows), site: "a");

        // The original PhysioNet layout: one pipe-separated file per patient, no id or hour column, NaN for missing.
        var dir = tmp.Combine("psv");
        Directory.CreateDirectory(dir);
        var psvHeader = string.Join("|", IcuHeader.Split(',').Skip(2));
        foreach (var group in rows.GroupBy(r => r.Split(',')[0]))
        {
            var body = group.Select(r => string.Join("|", r.Split(',').Skip(2).Select(v => v.Length == 0 ? "NaN" : v)));
            File.WriteAllText(Path.Combine(dir, group.Key + ".psv"), Csv(psvHeader, body));
        }
        File.WriteAllText(Path.Combine(dir, "README.txt"), "not a patient");
        Assert.Equal(3, Directory.GetFiles(dir, "*.psv").Length);
        var (psvReport, psvCdm) = ConvertPath(tmp, IcuMapping, dir, site: "a", outName: "cdm-psv");

        Assert.Equal("flat-per-patient-files", psvReport.InputKind);
        Assert.Equal(0, csvReport.RejectedTotal);
        Assert.Equal(0, psvReport.RejectedTotal);
        Assert.Equal(csvReport.RecordsRead, psvReport.RecordsRead);
        Assert.Equal(csvReport.ResourcesWritten, psvReport.ResourcesWritten);
        Assert.Equal(3, psvReport.ResourcesWritten["Patient"]);
        Assert.Equal(2, psvReport.ResourcesWritten["Condition"]);
        foreach (var t in CdmResourceTypes.All)
            Assert.Equal(CdmFiles.Lines(csvCdm, t).Order(StringComparer.Ordinal), CdmFiles.Lines(psvCdm, t).Order(StringComparer.Ordinal));
        Assert.Contains(CdmFiles.Observations(psvCdm), o => o.Id == "p3-icu-hr-0" && o.Value == 101.5m);
    }

    [Fact]
    public void Folder_input_without_per_patient_section_is_an_error()
    {
        using var tmp = new TempFolder();
        var dir = tmp.Combine("psv");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "p1.psv"), "HR\n1\n");
        var mapping = IcuMapping.Replace(""", "per_patient_files": { "pattern": "*.psv", "delimiter": "|" }""", "");
        Assert.NotEqual(IcuMapping, mapping);
        var e = Assert.Throws<CdmException>(() => ConvertPath(tmp, mapping, dir));
        Assert.Contains("per_patient_files", e.Message);
    }

    // ------------------------------------------------------------------ an encounter-per-row extract (Diabetes 130-like)

    private const string EncounterMapping = """
        {
          "format_version": 1,
          "name": "tiny-diabetes",
          "source": { "delimiter": ",", "missing_values": ["?", ""] },
          "anchor": "2000-01-01T00:00:00Z",
          "patient": {
            "id_column": "patient_nbr", "id_prefix": "d",
            "gender": { "column": "gender", "map": { "Female": "female", "Male": "male" } },
            "age": { "column": "age", "kind": "band" }
          },
          "encounter": {
            "id_column": "encounter_id", "id_prefix": "e", "class": "IMP",
            "time": { "kind": "none" },
            "length_of_stay": { "column": "time_in_hospital", "unit": "d" },
            "priority": { "column": "admission_type_id", "map": { "1": "EM", "3": "EL", "5": null } },
            "admit_source": { "column": "admission_source_id", "map": { "1": "gp", "4": "hosp-trans", "7": "emd" } },
            "discharge_disposition": { "column": "discharge_disposition_id", "map": { "1": "home", "11": "exp" } }
          },
          "observations": [
            { "column": "num_lab_procedures", "system": "https://clinicalfed.dev/fhir/CodeSystem/cdm", "code": "lab-test-count", "unit": "{tests}" },
            { "column": "max_glu_serum", "code": "2345-7", "category": "laboratory", "interpretations": { "None": null, "Norm": "N", ">200": "H", ">300": "HH" } }
          ],
          "diagnoses": [
            { "column": "diag_1", "code_system": "icd-9-cm", "rank": 1 },
            { "column": "diag_2", "code_system": "icd-9-cm", "rank": 2 },
            { "column": "diag_3", "code_system": "icd-9-cm", "rank": 3 }
          ],
          "medications": [
            { "column": "metformin", "system": "https://example.org/meds", "code": "metformin", "display": "metformin", "absent_values": ["No"], "dose_change": { "Up": "up", "Down": "down", "Steady": "steady" } },
            { "column": "insulin", "system": "https://example.org/meds", "code": "insulin", "absent_values": ["No"], "dose_change": { "Up": "up", "Down": "down", "Steady": "steady" } }
          ],
          "labels": [ { "column": "readmitted", "kind": "readmission-30d", "positive": ["<30"], "negative": ["NO", ">30"] } ],
          "sites": {
            "ER": { "column": "admission_source_id", "values": ["7"] },
            "REF": { "column": "admission_source_id", "values": ["1", "2"] },
            "OTH": { "otherwise": true }
          }
        }
        """;

    private const string EncounterHeader =
        "encounter_id,patient_nbr,gender,age,admission_type_id,admission_source_id,discharge_disposition_id,time_in_hospital,num_lab_procedures,max_glu_serum,diag_1,diag_2,diag_3,metformin,insulin,readmitted";

    private static readonly string[] EncounterRows =
    [
        "100,500,Female,[70-80),1,7,1,3,41,>200,8,250.83,V45,Up,No,<30",
        "101,500,Female,[70-80),5,1,1,2,12,None,428,?,E878,Steady,Down,NO",
        "102,501,Male,[50-60),3,7,11,5,30,Norm,250.01,401,?,No,Up,>30",
        "103,502,Male,[20-30),1,4,1,1,9,None,38,?,?,No,No,NO",
    ];

    [Fact]
    public void Encounter_extract_encounters()
    {
        using var tmp = new TempFolder();
        var (report, cdm) = Convert(tmp, EncounterMapping, "enc.csv", Csv(EncounterHeader, EncounterRows), site: "all");
        Assert.Equal(0, report.RejectedTotal);
        Assert.Contains(report.Warnings, w => w.Contains("'all'", StringComparison.Ordinal)); // not a site of the mapping: every row
        var enc = CdmFiles.Encounters(cdm).ToDictionary(e => e.Id);
        Assert.Equal(["e100", "e101", "e102", "e103"], enc.Keys.Order(StringComparer.Ordinal));
        var e100 = enc["e100"];
        Assert.Equal("d500", e100.PatientId);
        Assert.Equal(Anchor, e100.Start);
        Assert.Equal(Anchor.AddDays(3), e100.End);
        Assert.Equal("EM", e100.Priority);
        Assert.Equal(new CdmCoding(Systems.AdmitSource, "emd"), e100.AdmitSource);
        Assert.Equal(new CdmCoding(Systems.DischargeDisposition, "home"), e100.DischargeDisposition);
        Assert.Null(enc["e101"].Priority); // mapped to null: "not available"
        Assert.Equal("EL", enc["e102"].Priority);
        Assert.Equal("exp", enc["e102"].DischargeDisposition!.Value.Code);
        Assert.Equal(Anchor.AddDays(5), enc["e102"].End);

        var patients = CdmFiles.Patients(cdm);
        Assert.Equal(["d500", "d501", "d502"], patients.Select(p => p.Id).Order(StringComparer.Ordinal)); // d500 once for two encounters
        var d500 = patients.Single(p => p.Id == "d500");
        Assert.Equal("female", d500.Gender);
        Assert.Equal(new DateOnly(1924, 12, 31), d500.BirthDate); // band midpoint 75 × 365.25 days before 2000-01-01 (1924-12-31T06:00Z)
    }

    [Fact]
    public void Icd9_codes_are_zero_padded_and_ranked()
    {
        using var tmp = new TempFolder();
        var (_, cdm) = Convert(tmp, EncounterMapping, "enc.csv", Csv(EncounterHeader, EncounterRows), site: "all");
        var dx = CdmFiles.Conditions(cdm).ToDictionary(c => c.Id);
        Assert.Equal(["e100-dx1", "e100-dx2", "e100-dx3", "e101-dx1", "e101-dx3", "e102-dx1", "e102-dx2", "e103-dx1"], dx.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new CdmCoding(Systems.Icd9Cm, "008"), dx["e100-dx1"].Code);
        Assert.Equal("250.83", dx["e100-dx2"].Code.Code);
        Assert.Equal("V45", dx["e100-dx3"].Code.Code);
        Assert.Equal("E878", dx["e101-dx3"].Code.Code);
        Assert.Equal("038", dx["e103-dx1"].Code.Code);
        Assert.Equal([1, 2, 3], new[] { "e100-dx1", "e100-dx2", "e100-dx3" }.Select(i => dx[i].Rank!.Value));
        Assert.Equal("e100", dx["e100-dx1"].EncounterId);
        Assert.Equal("d500", dx["e100-dx1"].PatientId);
        Assert.Equal(Anchor, dx["e100-dx1"].Recorded);
        Assert.Equal("encounter-diagnosis", dx["e100-dx1"].Category);
    }

    [Theory]
    [InlineData("8", "008")]
    [InlineData("08", "008")]
    [InlineData("8.1", "008.1")]
    [InlineData("42", "042")]
    [InlineData("250.83", "250.83")]
    [InlineData("250", "250")]
    [InlineData(" v45.81 ", "V45.81")]
    [InlineData("E878.1", "E878.1")]
    [InlineData("2500", "250.0")]     // dotless, as many extracts store codes
    [InlineData("25083", "250.83")]
    [InlineData("V4501", "V45.01")]
    [InlineData("E8781", "E878.1")]
    [InlineData("250831", null)]
    [InlineData("250.", null)]
    [InlineData("250.123", null)]
    [InlineData("V4", null)]
    [InlineData("abc", null)]
    public void NormalizeIcd9(string raw, string? expected) => Assert.Equal(expected, FlatIngestor.NormalizeIcd(raw, "icd-9-cm"));

    [Theory]
    [InlineData("E11.65", "E11.65")]
    [InlineData("i21.4", "I21.4")]
    [InlineData("I214", "I21.4")]
    [InlineData("U07.1", null)] // U codes are reserved in the pattern
    [InlineData("8", null)]
    public void NormalizeIcd10(string raw, string? expected) => Assert.Equal(expected, FlatIngestor.NormalizeIcd(raw, "icd-10"));

    [Fact]
    public void Categorical_values_become_interpretations_and_counts_keep_their_unit()
    {
        using var tmp = new TempFolder();
        var (_, cdm) = Convert(tmp, EncounterMapping, "enc.csv", Csv(EncounterHeader, EncounterRows), site: "all");
        var obs = CdmFiles.Observations(cdm).ToDictionary(o => o.Id);
        var glu = obs["e100-max-glu-serum"];
        Assert.Equal("H", glu.Interpretation);
        Assert.Equal(new CdmCoding(Systems.ClinicalFed + "/source-value", ">200"), glu.ValueCode);
        Assert.Equal(new CdmCoding(Systems.Loinc, "2345-7"), glu.Code);
        Assert.Equal(Anchor, glu.Effective);
        Assert.Equal("N", obs["e102-max-glu-serum"].Interpretation);
        Assert.DoesNotContain("e101-max-glu-serum", obs.Keys); // "None" means not measured
        Assert.Equal(41m, obs["e100-num-lab-procedures"].Value);
        Assert.Equal("{tests}", obs["e100-num-lab-procedures"].Unit);
    }

    [Fact]
    public void Readmission_outcome_is_a_boolean_observation_at_discharge()
    {
        using var tmp = new TempFolder();
        var (_, cdm) = Convert(tmp, EncounterMapping, "enc.csv", Csv(EncounterHeader, EncounterRows), site: "all");
        var labels = CdmFiles.Observations(cdm).Where(o => o.Code.Code == Systems.ReadmissionLabelCode).ToDictionary(o => o.Id);
        Assert.Equal(["e100-readmit30", "e101-readmit30", "e102-readmit30", "e103-readmit30"], labels.Keys.Order(StringComparer.Ordinal));
        Assert.True(labels["e100-readmit30"].ValueBoolean);
        Assert.False(labels["e101-readmit30"].ValueBoolean);
        Assert.False(labels["e102-readmit30"].ValueBoolean); // ">30" is negative
        Assert.Equal(Anchor.AddDays(3), labels["e100-readmit30"].Effective);
        Assert.Equal(Systems.ClinicalFed, labels["e100-readmit30"].Code.System);
        Assert.Equal("e100", labels["e100-readmit30"].EncounterId);
    }

    [Fact]
    public void Medications_with_dose_change()
    {
        using var tmp = new TempFolder();
        var (_, cdm) = Convert(tmp, EncounterMapping, "enc.csv", Csv(EncounterHeader, EncounterRows), site: "all");
        var rx = CdmFiles.MedicationRequests(cdm).ToDictionary(m => m.Id, m => m);
        Assert.Equal(["e100-rx-metformin", "e101-rx-insulin", "e101-rx-metformin", "e102-rx-insulin"], rx.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("up", rx["e100-rx-metformin"].DoseChange);
        Assert.Equal("steady", rx["e101-rx-metformin"].DoseChange);
        Assert.Equal("down", rx["e101-rx-insulin"].DoseChange);
        Assert.Equal(new CdmCoding("https://example.org/meds", "metformin", "metformin"), rx["e100-rx-metformin"].Medication);
        Assert.Equal(("d501", "e102"), (rx["e102-rx-insulin"].PatientId, rx["e102-rx-insulin"].EncounterId));
        Assert.Equal(Anchor, rx["e100-rx-metformin"].AuthoredOn);
    }

    [Fact]
    public void Every_resource_of_the_encounter_extract_is_strict_fhir()
    {
        using var tmp = new TempFolder();
        var (report, cdm) = Convert(tmp, EncounterMapping, "enc.csv", Csv(EncounterHeader, EncounterRows), site: "all");
        Assert.Equal(report.ResourcesWritten.Values.Sum(), CdmFiles.AssertAllStrictFhir(cdm));
        Assert.True(report.ResourcesWritten.Values.Sum() > 20);
    }

    [Fact]
    public void Unknown_category_and_codes_are_unknown_code_rejections()
    {
        using var tmp = new TempFolder();
        string[] rows =
        [
            EncounterRows[0].Replace(",>200,", ",Huge,"),                // category not in interpretations
            EncounterRows[1].Replace(",Steady,Down,", ",Sometimes,Down,"), // medication value
            EncounterRows[2].Replace(",250.01,", ",25X.01,"),            // malformed ICD-9
            EncounterRows[3].Replace("103,502,Male,[20-30),1,4,1,", "103,502,Male,[20-30),1,4,99,"), // discharge code not mapped
        ];
        var (report, cdm) = Convert(tmp, EncounterMapping, "enc.csv", Csv(EncounterHeader, rows), site: "all");
        Assert.Equal(4, report.RejectedTotal);
        Assert.Equal(4, report.RejectedByKind[RejectionKinds.UnknownCode]);
        Assert.Equal(
            [(2L, "max_glu_serum"), (3L, "metformin"), (4L, "diag_1"), (5L, "discharge_disposition_id")],
            report.RejectedExamples.Select(r => (r.Line, r.Column!)).Order());
        Assert.All(report.RejectedExamples, r => Assert.Equal("enc.csv", r.File));
        Assert.Contains("Huge", report.RejectedExamples.Single(r => r.Column == "max_glu_serum").Message);
        // The rest of each row still converts.
        var obs = CdmFiles.Observations(cdm).Select(o => o.Id).ToHashSet();
        Assert.DoesNotContain("e100-max-glu-serum", obs);
        Assert.Contains("e100-num-lab-procedures", obs);
        var rx = CdmFiles.MedicationRequests(cdm).Select(m => m.Id).ToHashSet();
        Assert.DoesNotContain("e101-rx-metformin", rx);
        Assert.Contains("e101-rx-insulin", rx);
        Assert.Contains("e102-dx2", CdmFiles.Conditions(cdm).Select(c => c.Id));
        Assert.Null(CdmFiles.Encounters(cdm).Single(e => e.Id == "e103").DischargeDisposition);
    }

    [Fact]
    public void Site_selector_converts_only_that_sites_rows()
    {
        using var tmp = new TempFolder();
        var csv = Csv(EncounterHeader, EncounterRows);
        var (er, erCdm) = Convert(tmp, EncounterMapping, "enc.csv", csv, site: "ER");
        Assert.Equal(2, er.RowsOutsideSite);
        Assert.Equal(4, er.RecordsRead);
        Assert.Equal(["e100", "e102"], CdmFiles.Encounters(erCdm).Select(e => e.Id).Order(StringComparer.Ordinal));
        Assert.Equal(["d500", "d501"], CdmFiles.Patients(erCdm).Select(p => p.Id).Order(StringComparer.Ordinal));
        Assert.All(CdmFiles.Conditions(erCdm), c => Assert.Contains(c.EncounterId, new[] { "e100", "e102" }));

        var input = Path.Combine(tmp.Path, "enc.csv");
        var refRun = ConvertPath(tmp, EncounterMapping, input, site: "REF", outName: "ref");
        Assert.Equal(3, refRun.Report.RowsOutsideSite);
        Assert.Equal(["e101"], CdmFiles.Encounters(refRun.Cdm).Select(e => e.Id));
        var oth = ConvertPath(tmp, EncounterMapping, input, site: "OTH", outName: "oth");
        Assert.Equal(["e103"], CdmFiles.Encounters(oth.Cdm).Select(e => e.Id)); // admission source 4: neither ER nor REF
        Assert.Equal(3, oth.Report.RowsOutsideSite);
    }

    [Fact]
    public void Site_column_missing_from_the_file_is_an_error()
    {
        using var tmp = new TempFolder();
        var mapping = EncounterMapping.Replace("\"ER\": { \"column\": \"admission_source_id\"", "\"ER\": { \"column\": \"route\"");
        Assert.NotEqual(EncounterMapping, mapping);
        var e = Assert.Throws<CdmException>(() => Convert(tmp, mapping, "enc.csv", Csv(EncounterHeader, EncounterRows), site: "ER"));
        Assert.Contains("'route'", e.Message);
        Assert.Contains("enc.csv", e.Message);
    }

    [Fact]
    public void Quoted_fields_and_crlf_line_ends()
    {
        using var tmp = new TempFolder();
        var rows = EncounterRows.Select(r => r.Replace("[70-80)", "\"[70-80)\""));
        var content = Csv(EncounterHeader, rows).Replace("\n", "\r\n");
        var (report, cdm) = Convert(tmp, EncounterMapping, "enc.csv", content, site: "all");
        Assert.Equal(0, report.RejectedTotal);
        Assert.Equal(new DateOnly(1924, 12, 31), CdmFiles.Patients(cdm).Single(p => p.Id == "d500").BirthDate);
        Assert.True(CdmFiles.Observations(cdm).Single(o => o.Id == "e100-readmit30").ValueBoolean); // "<30\r" would not match
    }
}
