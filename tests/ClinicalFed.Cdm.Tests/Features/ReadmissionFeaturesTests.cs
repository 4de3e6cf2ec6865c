using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.TestSupport;
using ClinicalFed.Data;

namespace ClinicalFed.Cdm.Tests.Features;

public sealed class ReadmissionFeaturesTests : IDisposable
{
    private readonly TempFolder _tmp = new("readmission-features");
    public void Dispose() => _tmp.Dispose();

    private static readonly DateTimeOffset D0 = TestCdm.T0;
    private const string Med = "https://clinicalfed.dev/fhir/CodeSystem/diabetes130-medication";

    private static CdmEncounter Enc(string id, string cls, double fromDay, double toDay, string? admitSource = null, string? disposition = null, string? priority = null) => new()
    {
        Id = id, PatientId = "p1", Class = cls, Start = D0.AddDays(fromDay), End = D0.AddDays(toDay), Priority = priority,
        AdmitSource = admitSource is null ? null : new CdmCoding(Systems.AdmitSource, admitSource),
        DischargeDisposition = disposition is null ? null : new CdmCoding(Systems.DischargeDisposition, disposition),
    };

    /// <summary>
    /// Patient p1 (female, born 1950-01-01). Inpatient stays E1 (days 0–3), E2 (20–25), E3 (100–101) and E4 (200–202,
    /// died: excluded). Emergency visits ER0 (ends 2 days before E1: not an emergency admission), ER1 (ends 1 h before
    /// E2) and ER2 (overlaps E2's admission); outpatient visits
    /// at days -400, -300, 10, 50, 150 and one that overlaps E3's admission.
    /// Diagnoses (ICD-9-CM): E1 428.0 CHF; E2 250.40 diabetes with complications (rank 1) + 491.21 COPD; E3 585.9 renal
    /// (rank 2, listed first) + 486 pneumonia (rank 1); E4 196.0 metastatic; a problem-list 042 (HIV) recorded day 50.
    /// </summary>
    private static TestCdm Cdm(bool withOutcomes = false, bool withReported = false)
    {
        var cdm = new TestCdm()
            .Patient("p1", "female", new DateOnly(1950, 1, 1))
            .Encounter(Enc("E1", "IMP", 0, 3, admitSource: "gp", disposition: "home"))
            .Encounter(Enc("E2", "IMP", 20, 25, disposition: "snf"))
            .Encounter(Enc("E3", "IMP", 100, 101, admitSource: "emd"))
            .Encounter(Enc("E4", "IMP", 200, 202, disposition: "exp"))
            .Encounter(Enc("ER0", "EMER", -2.2, -2))
            .Encounter(Enc("ER1", "EMER", 19.7, 20 - 1.0 / 24))
            .Encounter(Enc("ER2", "EMER", 19.9, 20 + 2.0 / 24))
            .Encounter(Enc("A1", "AMB", -400, -400 + 1.0 / 24))
            .Encounter(Enc("A0", "AMB", -300, -300 + 1.0 / 24))
            .Encounter(Enc("A2", "AMB", 10, 10 + 1.0 / 24))
            .Encounter(Enc("A3", "AMB", 50, 50 + 1.0 / 24))
            .Encounter(Enc("A4", "AMB", 150, 150 + 1.0 / 24))
            .Encounter(Enc("A5", "AMB", 99.9, 100.5))
            .Condition("p1", "E1", Systems.Icd9Cm, "428.0", rank: 1)
            .Condition("p1", "E2", Systems.Icd9Cm, "250.40", rank: 1)
            .Condition("p1", "E2", Systems.Icd9Cm, "491.21", rank: 2)
            .Condition("p1", "E3", Systems.Icd9Cm, "585.9", rank: 2)
            .Condition("p1", "E3", Systems.Icd9Cm, "486", rank: 1)
            .Condition("p1", "E4", Systems.Icd9Cm, "196.0", rank: 1)
            .Condition("p1", null, Systems.Icd9Cm, "042", recorded: D0.AddDays(50), category: "problem-list-item")
            // Labs of E2: glucose 150 (H) then 110 (N) → last 110, level 1; creatinine HH → level 2; haemoglobin 130 g/L → 13 g/dL.
            .Obs("p1", "E2", "2345-7", D0.AddDays(21), 150, "mg/dL", "laboratory", "H")
            .Obs("p1", "E2", "2345-7", D0.AddDays(24), 110, "mg/dL", "laboratory", "N")
            .Obs("p1", "E2", "2160-0", D0.AddDays(22), 1.2m, "mg/dL", "laboratory", "HH")
            .Obs("p1", "E2", "718-7", D0.AddDays(22), 130, "g/L", "laboratory")
            .Obs("p1", "E2", "8867-4", D0.AddDays(22), 77, "/min", "vital-signs") // not a readmission measurement, not a lab
            .Medication("p1", "E2", Med, "insulin", "up")
            .Medication("p1", "E2", Med, "insulin", "steady")
            .Medication("p1", "E2", Med, "metformin", "steady")
            .Medication("p1", "E2", Med, "glipizide", "down");
        if (withOutcomes)
        {
            cdm.Obs("p1", "E1", Systems.ReadmissionLabelCode, D0.AddDays(3), null, null, system: Systems.ClinicalFed, valueBoolean: false);
            cdm.Obs("p1", "E3", Systems.ReadmissionLabelCode, D0.AddDays(101), null, null, system: Systems.ClinicalFed, valueBoolean: true);
        }
        if (withReported)
        {
            cdm.Obs("p1", "E3", "prior-year-emergency-visits", D0.AddDays(100), 5, "{visits}", system: Systems.ClinicalFed);
            cdm.Obs("p1", "E3", "diagnosis-count", D0.AddDays(100), 9, null, system: Systems.ClinicalFed);
            cdm.Obs("p1", "E3", "medication-count", D0.AddDays(100), 17, null, system: Systems.ClinicalFed);
            cdm.Obs("p1", "E3", "lab-test-count", D0.AddDays(100), 40, null, system: Systems.ClinicalFed);
            cdm.Obs("p1", "E3", "procedure-count", D0.AddDays(100), 3, null, system: Systems.ClinicalFed);
        }
        return cdm;
    }

    private (FeatureTable Table, FeatureSummary Summary) Extract(TestCdm cdm, string name) =>
        Extracted.Run("readmission", cdm.Write(_tmp.Combine(name, "cdm")), _tmp.Combine(name, "features"));

    [Fact]
    public void One_row_per_inpatient_encounter_died_excluded_and_counted()
    {
        var (t, s) = Extract(Cdm(), "rows");
        Assert.Equal(["E1", "E2", "E3"], t.Keys.Select(k => k.EncounterId).Order());
        Assert.All(t.Keys, k => Assert.Equal(0, k.Hour));
        Assert.Equal(62, t.Columns);
        Assert.Equal(3, s.Rows);
        Assert.Equal(new Dictionary<string, long> { ["died-or-hospice"] = 1 }, s.Excluded);
    }

    [Fact]
    public void Labels_derived_from_next_inpatient_admission()
    {
        var (t, s) = Extract(Cdm(), "labels");
        Assert.Equal(1f, t.Labels[t.RowOf("E1")]); // E2 starts 17 days after E1's discharge
        Assert.Equal(0f, t.Labels[t.RowOf("E2")]); // E3 starts 75 days after
        Assert.Equal(0f, t.Labels[t.RowOf("E3")]); // E4 starts 99 days after
        Assert.Equal(1, s.Positives);
        Assert.Equal(3, s.LabelSource["derived-from-encounters"]);
    }

    [Fact]
    public void Recorded_outcome_overrides_derived_label()
    {
        var (t, s) = Extract(Cdm(withOutcomes: true), "outcomes");
        Assert.Equal(0f, t.Labels[t.RowOf("E1")]);
        Assert.Equal(0f, t.Labels[t.RowOf("E2")]);
        Assert.Equal(1f, t.Labels[t.RowOf("E3")]);
        Assert.Equal(2, s.LabelSource["recorded-outcome"]);
        Assert.Equal(1, s.LabelSource["derived-from-encounters"]);
    }

    [Fact]
    public void Demographics_stay_and_admission()
    {
        var (t, _) = Extract(Cdm(), "demo");
        int e1 = t.RowOf("E1"), e2 = t.RowOf("E2"), e3 = t.RowOf("E3");
        // Born 1950-01-01, admitted 2020-01-01: 25567 days.
        Assert.Equal(25567 / 365.25f, t.Get(e1, "age"), 0.001f);
        Assert.Equal((25567 + 100) / 365.25f, t.Get(e3, "age"), 0.001f);
        Assert.Equal(0, t.Get(e1, "male"));
        Assert.Equal([3f, 5f, 1f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "length_of_stay_days")));
        // E1: its emergency visit ended 2 days before, too early; E2: an emergency visit ended 1 h before admission;
        // E3: admitted from the emergency department.
        Assert.Equal([0f, 1f, 1f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "acute_admission")));
        Assert.Equal([0f, 0f, 1f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "admit_from_emergency")));
        Assert.Equal([1f, 0f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "admit_referral")));
        Assert.Equal([1f, 0f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "discharge_home")));
        Assert.Equal([0f, 1f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "discharge_snf")));
    }

    [Fact]
    public void Prior_visits_count_only_encounters_that_ended_before_admission_within_a_year()
    {
        var (t, _) = Extract(Cdm(), "prior");
        int e1 = t.RowOf("E1"), e2 = t.RowOf("E2"), e3 = t.RowOf("E3");
        // Emergency: E1 sees ER0; E2 sees ER0 and ER1 (ended 1 h before) but not ER2 (still open at admission); E3 sees all three.
        Assert.Equal([1f, 2f, 3f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "prior_emergency_visits")));
        // Inpatient: earlier stays only (never E4, never the encounter itself).
        Assert.Equal([0f, 1f, 2f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "prior_inpatient_admissions")));
        // Outpatient: E1 sees A0 (day -300; A1 at -400 is over a year before); E2 sees A0 and A2; E3 sees A2 and A3
        // (A0 is now over a year before, A5 was still open at admission, A4 is later).
        Assert.Equal([1f, 2f, 2f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "prior_outpatient_visits")));
    }

    [Fact]
    public void Charlson_uses_this_and_earlier_encounters_only()
    {
        var (t, _) = Extract(Cdm(), "charlson");
        int e1 = t.RowOf("E1"), e2 = t.RowOf("E2"), e3 = t.RowOf("E3");
        // E1: CHF (1). E2: + diabetes with complications (2) + COPD (1) = 4. E3: + renal (2) + HIV known since day 50 (6) = 12.
        // E4's metastatic tumour (6) and later encounters' diagnoses never count.
        Assert.Equal([1f, 4f, 12f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "charlson_index")));
        Assert.Equal([1f, 1f, 1f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "cci_congestive_heart_failure")));
        Assert.Equal([0f, 1f, 1f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "cci_chronic_pulmonary_disease")));
        Assert.Equal([0f, 1f, 1f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "cci_diabetes_with_chronic_complications")));
        Assert.Equal([0f, 0f, 1f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "cci_renal_disease")));
        Assert.Equal([0f, 0f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "cci_metastatic_solid_tumour")));
        Assert.Equal([0f, 0f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "cci_any_malignancy")));
    }

    [Fact]
    public void Primary_diagnosis_chapter_from_rank_one_and_diagnosis_count()
    {
        var (t, _) = Extract(Cdm(), "primary");
        int e1 = t.RowOf("E1"), e2 = t.RowOf("E2"), e3 = t.RowOf("E3");
        Assert.Equal([1f, 0f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "primary_dx_circulatory")));
        Assert.Equal([0f, 1f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "primary_dx_diabetes")));
        Assert.Equal([0f, 0f, 1f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "primary_dx_respiratory")));
        Assert.Equal([0f, 0f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "primary_dx_genitourinary"))); // 585.9 is rank 2
        Assert.Equal([0f, 0f, 0f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "primary_dx_neoplasms")));
        Assert.Equal([1f, 2f, 2f], new[] { e1, e2, e3 }.Select(r => t.Get(r, "diagnosis_count")));
    }

    [Fact]
    public void Labs_medications_and_dose_changes()
    {
        var (t, s) = Extract(Cdm(), "labs");
        int e1 = t.RowOf("E1"), e2 = t.RowOf("E2");
        Assert.Equal(110f, t.Get(e2, "glucose"));
        Assert.Equal(1f, t.Get(e2, "glucose_measured"));
        Assert.Equal(1f, t.Get(e2, "glucose_abnormal_level"));
        Assert.Equal(1.2f, t.Get(e2, "creatinine"));
        Assert.Equal(2f, t.Get(e2, "creatinine_abnormal_level"));
        Assert.Equal(13f, t.Get(e2, "hgb"), 0.0001f);
        Assert.Equal(0f, t.Get(e2, "hgb_abnormal_level"));
        Assert.True(float.IsNaN(t.Get(e2, "wbc")));
        Assert.Equal(0f, t.Get(e2, "wbc_measured"));
        Assert.True(float.IsNaN(t.Get(e1, "glucose")));
        Assert.Equal(0f, t.Get(e1, "glucose_measured"));
        Assert.Equal(4f, t.Get(e2, "lab_test_count"));   // four laboratory observations; the heart rate is not one
        Assert.Equal(0f, t.Get(e2, "procedure_count"));

        Assert.Equal(3f, t.Get(e2, "medication_count")); // insulin, metformin, glipizide
        Assert.Equal(2f, t.Get(e2, "dose_change_count")); // insulin up, glipizide down
        Assert.Equal(1f, t.Get(e2, "insulin"));
        Assert.Equal(1f, t.Get(e2, "metformin"));
        Assert.Equal([0f, 0f, 0f, 0f], new[] { "medication_count", "dose_change_count", "insulin", "metformin" }.Select(c => t.Get(e1, c)));

        var hgb = s.Measurements.Single(m => m.Name == "hgb");
        Assert.Equal(1, hgb.UnitConverted);
        Assert.Equal(2, s.Measurements.Single(m => m.Name == "glucose").Used);
        Assert.Equal(1.0 / 3, s.Measurements.Single(m => m.Name == "glucose").RowsMeasuredFraction, 5);
    }

    [Fact]
    public void Reported_counts_override_derived_ones()
    {
        var (plain, _) = Extract(Cdm(), "not-reported");
        var (t, _) = Extract(Cdm(withReported: true), "reported");
        int p3 = plain.RowOf("E3"), e3 = t.RowOf("E3");
        Assert.Equal(3f, plain.Get(p3, "prior_emergency_visits"));
        Assert.Equal(5f, t.Get(e3, "prior_emergency_visits"));
        Assert.Equal(2f, plain.Get(p3, "diagnosis_count"));
        Assert.Equal(9f, t.Get(e3, "diagnosis_count"));
        Assert.Equal(0f, plain.Get(p3, "medication_count"));
        Assert.Equal(17f, t.Get(e3, "medication_count"));
        Assert.Equal(40f, t.Get(e3, "lab_test_count"));
        Assert.Equal(3f, t.Get(e3, "procedure_count"));
        // Not reported for E3: derived as before.
        Assert.Equal(2f, t.Get(e3, "prior_inpatient_admissions"));
        Assert.Equal(2f, t.Get(e3, "prior_outpatient_visits"));
        // Reported observations of E3 do not leak into other encounters.
        int e2 = t.RowOf("E2");
        Assert.Equal(2f, t.Get(e2, "prior_emergency_visits"));
        Assert.Equal(2f, t.Get(e2, "diagnosis_count"));
    }
}
