using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Data;

namespace ClinicalFed.Cdm.Tests.Features;

/// <summary>A small hand-written CDM: records are collected, then written with <see cref="CdmWriter"/> and committed
/// with a <see cref="ConversionReport"/> (as <c>clinicalfed convert</c> would).</summary>
internal sealed class TestCdm
{
    public static readonly DateTimeOffset T0 = new(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public List<CdmPatient> Patients { get; } = [];
    public List<CdmEncounter> Encounters { get; } = [];
    public List<CdmObservation> Observations { get; } = [];
    public List<CdmCondition> Conditions { get; } = [];
    public List<CdmMedicationRequest> Medications { get; } = [];
    public ConversionReport Report { get; } = new() { Site = "test-site", Input = "hand-written", InputKind = "test" };
    private int _next;

    public string NextId(string prefix) => $"{prefix}{++_next}";

    public TestCdm Patient(string id, string? gender, DateOnly? birthDate)
    {
        Patients.Add(new CdmPatient { Id = id, Gender = gender, BirthDate = birthDate });
        return this;
    }

    public TestCdm Encounter(CdmEncounter e)
    {
        Encounters.Add(e);
        return this;
    }

    /// <summary>An ICU stay encounter (typed SNOMED 305351004).</summary>
    public static CdmEncounter IcuStay(string id, string patient, DateTimeOffset start, double hours, string? parent = null,
        DateTimeOffset? icuAdmission = null, params string[] unitCodes) => new()
    {
        Id = id, PatientId = patient, Class = "IMP", Start = start, End = start.AddHours(hours), PartOfEncounterId = parent, IcuAdmission = icuAdmission,
        Types = [new CdmCoding(Systems.Snomed, Systems.IcuStayCode), .. unitCodes.Select(u => new CdmCoding(Systems.ClinicalFed, u))],
    };

    public TestCdm Obs(string patient, string? encounter, string loinc, DateTimeOffset? at, decimal? value, string? unit,
        string? category = null, string? interpretation = null, string system = Systems.Loinc, bool? valueBoolean = null)
    {
        Observations.Add(new CdmObservation
        {
            Id = NextId("o"), PatientId = patient, EncounterId = encounter, Code = new CdmCoding(system, loinc), Effective = at,
            Value = value, Unit = unit, Category = category, Interpretation = interpretation, ValueBoolean = valueBoolean,
        });
        return this;
    }

    public TestCdm Condition(string patient, string? encounter, string system, string code, DateTimeOffset? onset = null, int? rank = null,
        DateTimeOffset? recorded = null, string category = "encounter-diagnosis")
    {
        Conditions.Add(new CdmCondition
        {
            Id = NextId("c"), PatientId = patient, EncounterId = encounter, Code = new CdmCoding(system, code), Onset = onset, Rank = rank,
            Recorded = recorded, Category = category,
        });
        return this;
    }

    public TestCdm Medication(string patient, string encounter, string system, string code, string? doseChange = null)
    {
        Medications.Add(new CdmMedicationRequest { Id = NextId("m"), PatientId = patient, EncounterId = encounter, Medication = new CdmCoding(system, code), DoseChange = doseChange });
        return this;
    }

    /// <summary>Writes the CDM into <paramref name="directory"/> and returns it.</summary>
    public string Write(string directory, string? site = null)
    {
        if (site is not null) Report.Site = site;
        using var w = new CdmWriter(directory);
        foreach (var p in Patients) w.Write(p);
        foreach (var e in Encounters) w.Write(e);
        foreach (var o in Observations) w.Write(o);
        foreach (var c in Conditions) w.Write(c);
        foreach (var m in Medications) w.Write(m);
        Report.ResourcesWritten = w.Counts.ToDictionary();
        w.Commit(Report.WriteTo);
        return directory;
    }
}

/// <summary>Runs the feature extraction the way the CLI does and loads the resulting table.</summary>
internal static class Extracted
{
    public static (FeatureTable Table, FeatureSummary Summary) Run(string task, string cdm, string outDir, string? site = null)
    {
        var summary = FeatureExtraction.Run(new FeatureOptions(task, cdm, outDir, site));
        var table = FeatureTableFile.Load(Path.Combine(outDir, FeatureTableFile.FileName));
        return (table, summary);
    }

    public static int Col(this FeatureTable t, string name)
    {
        int i = t.Header.Columns.ToList().IndexOf(name);
        Assert.True(i >= 0, $"column '{name}' is not in the table");
        return i;
    }

    public static float Get(this FeatureTable t, int row, string column) => t.Row(row)[t.Col(column)];

    /// <summary>The row of an encounter and hour (fails when absent).</summary>
    public static int RowOf(this FeatureTable t, string encounter, int hour = 0)
    {
        for (int i = 0; i < t.Rows; i++)
            if (t.Keys[i].EncounterId == encounter && t.Keys[i].Hour == hour) return i;
        Assert.Fail($"no row for encounter {encounter} hour {hour}");
        return -1;
    }
}
