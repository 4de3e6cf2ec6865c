using System.Security.Cryptography;
using System.Text;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.TestSupport;
using FM = Hl7.Fhir.Model;

namespace ClinicalFed.Cdm.Tests.Io;

public class CdmWriterTests
{
    private static readonly DateTimeOffset T0 = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    // Every field of every record type is set at least once; the values are chosen to survive a round trip.
    private static readonly CdmPatient[] Patients =
    [
        new() { Id = "p-1", Gender = "female", BirthDate = new DateOnly(1950, 7, 3), DeceasedDateTime = new DateTimeOffset(2019, 1, 2, 3, 4, 5, TimeSpan.FromHours(-5)) },
        new() { Id = "p.2" },
    ];

    private static readonly CdmEncounter[] Encounters =
    [
        new()
        {
            Id = "p-1-icu", PatientId = "p-1", Class = "IMP", Status = "finished",
            Types = [new CdmCoding(Systems.Snomed, Systems.IcuStayCode, "Admission to intensive care unit"), new CdmCoding(Systems.ClinicalFed, "MICU", "Medical intensive care unit")],
            Priority = "EM", Start = T0, End = T0.AddHours(40.5), PartOfEncounterId = "p-1-icu-hospital",
            AdmitSource = new CdmCoding(Systems.AdmitSource, "emd"), DischargeDisposition = new CdmCoding(Systems.DischargeDisposition, "home"),
            ServiceProvider = "Organization/org-9", IcuAdmission = T0.AddHours(-3),
        },
        new() { Id = "p-1-icu-hospital", PatientId = "p-1", Class = "IMP", Start = T0.AddHours(-20), End = T0.AddHours(40.5) },
        new() { Id = "e2", PatientId = "p.2", Class = "AMB", Status = "in-progress", Start = new DateTimeOffset(2010, 5, 6, 7, 8, 9, 123, TimeSpan.FromHours(3)) },
    ];

    private static readonly CdmObservation[] Observations =
    [
        new()
        {
            Id = "p-1-icu-hr-0", PatientId = "p-1", EncounterId = "p-1-icu", Category = "vital-signs",
            Code = new CdmCoding(Systems.Loinc, "8867-4", "Heart rate"), AdditionalCodes = [new CdmCoding(Systems.Snomed, "364075005")],
            Effective = T0, Value = 80.50m, Unit = "/min", Interpretation = "N",
        },
        new() { Id = "o-neg", PatientId = "p-1", Code = new CdmCoding(Systems.Loinc, "1925-7"), Effective = T0.AddHours(2), Value = -3.2m, Unit = "mmol/L", Status = "preliminary" },
        new() { Id = "o-big", PatientId = "p-1", Code = new CdmCoding(Systems.Loinc, "777-3"), Value = 123456789.000123m, Unit = "10*3/uL" },
        new() { Id = "o-noval", PatientId = "p.2", Code = new CdmCoding(Systems.Loinc, "8310-5") },
        new()
        {
            Id = "e2-glu", PatientId = "p.2", EncounterId = "e2", Category = "laboratory", Code = new CdmCoding(Systems.Loinc, "2345-7"),
            Effective = T0, ValueCode = new CdmCoding(Systems.ClinicalFed + "/source-value", ">200"), Interpretation = "H",
        },
        new()
        {
            Id = "e2-readmit30", PatientId = "p.2", EncounterId = "e2",
            Code = new CdmCoding(Systems.ClinicalFed, Systems.ReadmissionLabelCode, "Inpatient readmission within 30 days of discharge"),
            Effective = T0.AddDays(3), ValueBoolean = true,
        },
    ];

    private static readonly CdmCondition[] Conditions =
    [
        new()
        {
            Id = "p-1-icu-sepsis", PatientId = "p-1", EncounterId = "p-1-icu", Code = new CdmCoding(Systems.Snomed, Systems.SepsisCode, "Sepsis"),
            Onset = T0.AddHours(8), ClinicalStatus = "active",
        },
        new()
        {
            Id = "e2-dx1", PatientId = "p.2", EncounterId = "e2", Code = new CdmCoding(Systems.Icd9Cm, "250.83"),
            AdditionalCodes = [new CdmCoding(Systems.Icd10Cm, "E11.65")], Rank = 1, Recorded = T0, Category = "problem-list-item",
        },
    ];

    private static readonly CdmMedicationRequest[] MedicationRequests =
    [
        new()
        {
            Id = "e2-rx-metformin", PatientId = "p.2", EncounterId = "e2",
            Medication = new CdmCoding("https://clinicalfed.dev/fhir/CodeSystem/diabetes130-medication", "metformin", "metformin"),
            AuthoredOn = T0, DoseChange = "up",
        },
        new() { Id = "rx2", PatientId = "p-1", Medication = new CdmCoding(Systems.RxNorm, "860975"), Status = "completed", Intent = "plan" },
    ];

    private static void WriteAll(CdmWriter w)
    {
        foreach (var p in Patients) w.Write(p);
        foreach (var e in Encounters) w.Write(e);
        foreach (var o in Observations) w.Write(o);
        foreach (var c in Conditions) w.Write(c);
        foreach (var m in MedicationRequests) w.Write(m);
    }

    private static string WriteCdm(TempFolder tmp, string name = "cdm", Action<CdmWriter>? write = null, string report = "{\"ok\":true}")
    {
        var target = tmp.Combine(name);
        using var w = new CdmWriter(target);
        (write ?? WriteAll)(w);
        w.Commit(s => s.Write(Encoding.UTF8.GetBytes(report)));
        return target;
    }

    [Fact]
    public void Every_written_resource_is_strict_fhir_r4()
    {
        using var tmp = new TempFolder();
        var cdm = WriteCdm(tmp);
        Assert.Equal(Patients.Length, CdmFiles.Lines(cdm, CdmResourceType.Patient).Select(FirelyStrict.Parse<FM.Patient>).Count());
        Assert.Equal(Encounters.Length, CdmFiles.Lines(cdm, CdmResourceType.Encounter).Select(FirelyStrict.Parse<FM.Encounter>).Count());
        Assert.Equal(Observations.Length, CdmFiles.Lines(cdm, CdmResourceType.Observation).Select(FirelyStrict.Parse<FM.Observation>).Count());
        Assert.Equal(Conditions.Length, CdmFiles.Lines(cdm, CdmResourceType.Condition).Select(FirelyStrict.Parse<FM.Condition>).Count());
        Assert.Equal(MedicationRequests.Length, CdmFiles.Lines(cdm, CdmResourceType.MedicationRequest).Select(FirelyStrict.Parse<FM.MedicationRequest>).Count());
    }

    [Fact]
    public void Firely_sees_the_values_that_were_written()
    {
        using var tmp = new TempFolder();
        var cdm = WriteCdm(tmp);
        var enc = FirelyStrict.Parse<FM.Encounter>(CdmFiles.Lines(cdm, CdmResourceType.Encounter)[0]);
        Assert.Equal("p-1-icu", enc.Id);
        Assert.Equal("Patient/p-1", enc.Subject!.Reference);
        Assert.Equal("Encounter/p-1-icu-hospital", enc.PartOf!.Reference);
        Assert.Equal("IMP", enc.Class!.Code);
        Assert.Equal(Systems.ActCode, enc.Class!.System);
        Assert.Equal("2000-01-01T00:00:00Z", enc.Period!.Start);
        Assert.Equal("2000-01-02T16:30:00Z", enc.Period!.End);
        Assert.Equal("emd", enc.Hospitalization!.AdmitSource!.Coding[0].Code);
        var icu = Assert.Single(enc.Extension);
        Assert.Equal(CdmExtensions.IcuAdmission, icu.Url);
        Assert.Equal("1999-12-31T21:00:00Z", Assert.IsType<FM.FhirDateTime>(icu.Value).Value);

        var hr = FirelyStrict.Parse<FM.Observation>(CdmFiles.Lines(cdm, CdmResourceType.Observation)[0]);
        var q = Assert.IsType<FM.Quantity>(hr.Value);
        Assert.Equal(80.50m, q.Value);
        Assert.Equal("/min", q.Code);
        Assert.Equal(Systems.Ucum, q.System);
        Assert.Equal(FM.ObservationStatus.Final, hr.Status);
        Assert.Equal("Encounter/p-1-icu", hr.Encounter!.Reference);

        var dx = FirelyStrict.Parse<FM.Condition>(CdmFiles.Lines(cdm, CdmResourceType.Condition)[1]);
        Assert.Equal(1, Assert.IsType<FM.PositiveInt>(Assert.Single(dx.Extension).Value).Value);
        var rx = FirelyStrict.Parse<FM.MedicationRequest>(CdmFiles.Lines(cdm, CdmResourceType.MedicationRequest)[0]);
        Assert.Equal("up", Assert.IsType<FM.Code>(Assert.Single(rx.Extension).Value).Value);
        var p = FirelyStrict.Parse<FM.Patient>(CdmFiles.Lines(cdm, CdmResourceType.Patient)[0]);
        Assert.Equal("1950-07-03", p.BirthDate);
        Assert.Equal("2019-01-02T03:04:05-05:00", Assert.IsType<FM.FhirDateTime>(p.Deceased).Value);
    }

    [Fact]
    public void Written_records_read_back_equal()
    {
        using var tmp = new TempFolder();
        var cdm = WriteCdm(tmp);
        Assert.Equivalent(Patients, CdmFiles.Patients(cdm), strict: true);
        Assert.Equivalent(Encounters, CdmFiles.Encounters(cdm), strict: true);
        Assert.Equivalent(Observations, CdmFiles.Observations(cdm), strict: true);
        Assert.Equivalent(Conditions, CdmFiles.Conditions(cdm), strict: true);
        Assert.Equivalent(MedicationRequests, CdmFiles.MedicationRequests(cdm), strict: true);
        // Equivalence compares instants; the written offsets must be the source's as well.
        Assert.Equal(TimeSpan.FromHours(3), CdmFiles.Encounters(cdm)[2].Start!.Value.Offset);
        Assert.Equal(TimeSpan.FromHours(-5), CdmFiles.Patients(cdm)[0].DeceasedDateTime!.Value.Offset);
        Assert.Equal("80.50", CdmFiles.Observations(cdm)[0].Value!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Counts_and_report()
    {
        using var tmp = new TempFolder();
        var target = tmp.Combine("cdm");
        using var w = new CdmWriter(target);
        WriteAll(w);
        Assert.Equal(Observations.Length, w.Count(CdmResourceType.Observation));
        Assert.Equal(Encounters.Length, w.Counts["Encounter"]);
        Assert.Equal(CdmResourceTypes.All.Count, w.Counts.Count);
        Assert.Equal(Path.GetFullPath(target), w.TargetDirectory);
        w.Commit(s => s.Write("{\"report\":1}"u8));
        Assert.Equal("{\"report\":1}", File.ReadAllText(Path.Combine(target, CdmWriter.ReportFileName)));
        Assert.Equal(
            CdmResourceTypes.All.Select(CdmResourceTypes.FileName).Append(CdmWriter.ReportFileName).Order(),
            Directory.GetFiles(target).Select(Path.GetFileName).Order());
        Assert.Throws<InvalidOperationException>(() => w.Commit(_ => { }));
    }

    [Fact]
    public void Empty_cdm_has_every_file_and_they_are_empty()
    {
        using var tmp = new TempFolder();
        var cdm = WriteCdm(tmp, write: _ => { });
        foreach (var t in CdmResourceTypes.All) Assert.Empty(CdmFiles.Lines(cdm, t));
    }

    private static string[] EntriesBeside(string target) =>
        Directory.GetFileSystemEntries(Path.GetDirectoryName(target)!).Select(Path.GetFileName).Order().ToArray()!;

    [Fact]
    public void Writer_disposed_without_commit_leaves_no_folder()
    {
        using var tmp = new TempFolder();
        var target = tmp.Combine("cdm");
        using (var w = new CdmWriter(target))
        {
            WriteAll(w);
            Assert.Single(EntriesBeside(target)); // the hidden staging folder, while writing
            Assert.False(Directory.Exists(target));
        }
        Assert.False(Directory.Exists(target));
        Assert.Empty(EntriesBeside(target));
    }

    private static Dictionary<string, string> Snapshot(string dir) =>
        Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f)!, f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    [Fact]
    public void Writer_disposed_without_commit_does_not_touch_the_existing_cdm()
    {
        using var tmp = new TempFolder();
        var cdm = WriteCdm(tmp);
        var before = Snapshot(cdm);
        using (var w = new CdmWriter(cdm))
        {
            w.Write(new CdmPatient { Id = "intruder" });
            Assert.Equal(2, EntriesBeside(cdm).Length);
        }
        Assert.Equal(before, Snapshot(cdm));
        Assert.Equal(["cdm"], EntriesBeside(cdm));
        Assert.Equal(Patients.Select(p => p.Id), CdmFiles.Patients(cdm).Select(p => p.Id));
    }

    [Fact]
    public void Commit_replaces_an_existing_cdm()
    {
        using var tmp = new TempFolder();
        var cdm = WriteCdm(tmp);
        WriteCdm(tmp, write: w => w.Write(new CdmPatient { Id = "new-1" }), report: "{\"second\":true}");
        Assert.Equal(["new-1"], CdmFiles.Patients(cdm).Select(p => p.Id));
        Assert.Empty(CdmFiles.Lines(cdm, CdmResourceType.Observation));
        Assert.Equal("{\"second\":true}", File.ReadAllText(Path.Combine(cdm, CdmWriter.ReportFileName)));
        Assert.Equal(["cdm"], EntriesBeside(cdm)); // no staging or previous folder left behind
    }

    [Fact]
    public void Target_with_foreign_files_is_refused_and_left_alone()
    {
        using var tmp = new TempFolder();
        var target = tmp.Combine("out");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "thesis.docx"), "precious");
        File.WriteAllText(Path.Combine(target, CdmResourceTypes.FileName(CdmResourceType.Patient)), "");
        var e = Assert.Throws<CdmException>(() => new CdmWriter(target));
        Assert.Contains("thesis.docx", e.Message);
        Assert.DoesNotContain("Patient.ndjson.gz", e.Message);
        Assert.Equal("precious", File.ReadAllText(Path.Combine(target, "thesis.docx")));
        Assert.Equal(["out"], EntriesBeside(target));
    }

    [Fact]
    public void Target_with_a_subfolder_is_refused()
    {
        using var tmp = new TempFolder();
        var target = tmp.Combine("out");
        Directory.CreateDirectory(Path.Combine(target, "nested"));
        Assert.Contains("nested", Assert.Throws<CdmException>(() => new CdmWriter(target)).Message);
    }

    [Fact]
    public void Target_that_is_a_file_is_refused()
    {
        using var tmp = new TempFolder();
        var target = tmp.WriteText("out", "x");
        Assert.Throws<CdmException>(() => new CdmWriter(target));
        Assert.Equal("x", File.ReadAllText(target));
    }

    [Fact]
    public void Empty_existing_folder_is_accepted()
    {
        using var tmp = new TempFolder();
        var target = tmp.Combine("out");
        Directory.CreateDirectory(target);
        WriteCdm(tmp, "out");
        Assert.Equal(Patients.Length, CdmFiles.Patients(target).Count);
    }

    [Fact]
    public void Many_resources_survive_buffer_flushes()
    {
        using var tmp = new TempFolder();
        const int n = 20_000;
        var cdm = WriteCdm(tmp, write: w =>
        {
            for (int i = 0; i < n; i++)
                w.Write(new CdmObservation { Id = "o" + i, PatientId = "p", Code = new CdmCoding(Systems.Loinc, "8867-4"), Effective = T0.AddHours(i), Value = i, Unit = "/min" });
        });
        var obs = CdmFiles.Observations(cdm);
        Assert.Equal(n, obs.Count);
        Assert.Equal(Enumerable.Range(0, n).Select(i => (decimal)i), obs.Select(o => o.Value!.Value));
        Assert.Equal(T0.AddHours(n - 1), obs[^1].Effective);
    }
}
