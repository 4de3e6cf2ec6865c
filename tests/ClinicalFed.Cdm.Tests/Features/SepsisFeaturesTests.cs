using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.TestSupport;
using ClinicalFed.Data;

namespace ClinicalFed.Cdm.Tests.Features;

public sealed class SepsisFeaturesTests : IDisposable
{
    private readonly TempFolder _tmp = new("sepsis-features");
    public void Dispose() => _tmp.Dispose();

    private static readonly DateTimeOffset T0 = TestCdm.T0;
    private const string Hr = "8867-4", Temp = "8310-5", Lactate = "2524-7", Wbc = "6690-2";

    /// <summary>
    /// One ICU stay of 5 hours (rows 0..4) starting at T0, ICU admission 2 h before the recorded period (so the stay's
    /// ICU hour at row h is h + 3), inside a hospital encounter that started 10 h before T0 (8 h before ICU
    /// admission). HR 80 at 0:10 and <paramref name="hrAtHour3"/> at 3:00, an implausible HR 400 at 1:30, temperature
    /// 98.6 [degF] (= 37 Cel) at 2:00, lactate 18 mg/dL at 1:00 (not convertible to mmol/L), an HR after the stay end,
    /// and a Sepsis condition with onset at hour 4.
    /// </summary>
    private static TestCdm MainCdm(decimal hrAtHour3 = 90, decimal? tempAtHour4 = null)
    {
        var cdm = new TestCdm()
            .Patient("p1", "male", new DateOnly(1960, 1, 1))
            .Encounter(new CdmEncounter { Id = "hosp1", PatientId = "p1", Class = "IMP", Start = T0.AddHours(-10), End = T0.AddDays(3) })
            .Encounter(TestCdm.IcuStay("icu1", "p1", T0, 5, parent: "hosp1", icuAdmission: T0.AddHours(-2), "MICU"))
            .Obs("p1", "icu1", Hr, T0.AddMinutes(10), 80, "/min")
            .Obs("p1", "icu1", Hr, T0.AddHours(3), hrAtHour3, "/min")
            .Obs("p1", "icu1", Hr, T0.AddHours(1.5), 400, "/min")
            .Obs("p1", "icu1", Temp, T0.AddHours(2), 98.6m, "[degF]")
            .Obs("p1", "icu1", Lactate, T0.AddHours(1), 18, "mg/dL")
            .Obs("p1", "icu1", Hr, T0.AddHours(6), 70, "/min") // after the stay's last hour
            .Condition("p1", "icu1", Systems.Snomed, Systems.SepsisCode, onset: T0.AddHours(4));
        if (tempAtHour4 is { } t) cdm.Obs("p1", "icu1", Temp, T0.AddHours(4.5), t, "Cel");
        return cdm;
    }

    private (FeatureTable Table, FeatureSummary Summary) Extract(TestCdm cdm, string name) =>
        Extracted.Run("sepsis", cdm.Write(_tmp.Combine(name, "cdm")), _tmp.Combine(name, "features"));

    [Fact]
    public void One_row_per_icu_hour_in_order()
    {
        var (t, s) = Extract(MainCdm(), "rows");
        Assert.Equal(5, t.Rows);
        Assert.Equal([0, 1, 2, 3, 4], t.Keys.Select(k => k.Hour));
        Assert.All(t.Keys, k => Assert.Equal(("p1", "icu1"), (k.PatientId, k.EncounterId)));
        Assert.Equal(108, t.Columns);
        Assert.Equal(5, s.Rows);
        Assert.Equal(1, s.Encounters); // the hospital encounter is not an ICU stay
        Assert.Equal(1, s.Patients);
    }

    [Fact]
    public void Last_value_is_forward_filled_with_measured_flag_and_hours_since()
    {
        var (t, _) = Extract(MainCdm(), "ffill");
        //                       hour:   0    1    2    3    4
        float[] hr = [80, 80, 80, 90, 90];       // the implausible 400 at 1:30 is ignored
        float[] hrSince = [0, 1, 2, 0, 1];
        float[] icuHours = [3, 4, 5, 6, 7];       // ICU admission 2 h before the period start
        for (int h = 0; h < 5; h++)
        {
            int r = t.RowOf("icu1", h);
            Assert.Equal(hr[h], t.Get(r, "hr"));
            Assert.Equal(1, t.Get(r, "hr_measured"));
            Assert.Equal(hrSince[h], t.Get(r, "hr_hours_since"));
            Assert.Equal(icuHours[h], t.Get(r, "icu_hours"));

            // Temperature: 98.6 [degF] at 2:00 → 37 Cel from hour 2 on; before that never measured.
            if (h < 2)
            {
                Assert.True(float.IsNaN(t.Get(r, "temp")), $"temp at hour {h}");
                Assert.Equal(0, t.Get(r, "temp_measured"));
                Assert.Equal(icuHours[h], t.Get(r, "temp_hours_since"));
            }
            else
            {
                Assert.Equal(37f, t.Get(r, "temp"), 0.001f);
                Assert.Equal(1, t.Get(r, "temp_measured"));
                Assert.Equal(h - 2, t.Get(r, "temp_hours_since"));
            }

            // Lactate in mg/dL cannot become mmol/L: the value is ignored, as if never measured.
            Assert.True(float.IsNaN(t.Get(r, "lactate")));
            Assert.Equal(0, t.Get(r, "lactate_measured"));
            Assert.Equal(icuHours[h], t.Get(r, "lactate_hours_since"));
            // Never observed at all.
            Assert.True(float.IsNaN(t.Get(r, "wbc")));
            Assert.Equal(0, t.Get(r, "wbc_measured"));
            Assert.Equal(icuHours[h], t.Get(r, "wbc_hours_since"));
        }
    }

    [Fact]
    public void Static_columns_age_sex_unit_and_hospital_offset()
    {
        var (t, _) = Extract(MainCdm(), "static");
        for (int r = 0; r < t.Rows; r++)
        {
            // Born 1960-01-01; ICU admission 2019-12-31T22:00Z: 21915 days (= 60 × 365.25) less 2 hours.
            Assert.Equal(60f - 2f / 24 / 365.25f, t.Get(r, "age"), 0.001f);
            Assert.Equal(1, t.Get(r, "male"));
            Assert.Equal(1, t.Get(r, "unit_micu"));
            Assert.Equal(0, t.Get(r, "unit_sicu"));
            // Hospital admission T0-10h, ICU admission T0-2h.
            Assert.Equal(-8f, t.Get(r, "hospital_admission_offset_hours"));
        }
    }

    [Fact]
    public void Labels_start_lead_hours_before_onset()
    {
        // Onset at hour 4, lead 6 h: every row of this 5-hour stay is at or after onset - 6 h.
        var (t, s) = Extract(MainCdm(), "label-all");
        Assert.All(t.Labels, l => Assert.Equal(1f, l));
        Assert.Equal(5, s.Positives);
        Assert.Equal(1, s.PositiveEncounters);
        Assert.Equal(1.0, s.Prevalence);
        Assert.Equal(1, s.LabelSource["sepsis-condition-onset"]);
    }

    [Fact]
    public void Label_boundary_on_a_longer_stay()
    {
        // 12-hour stay, onset at 9:00 → label 1 from 3:00 (row time = start of the hour) → rows 3..11.
        // A second stay of another patient has a Sepsis condition of a different encounter and no own onset.
        var cdm = new TestCdm()
            .Patient("p1", "female", new DateOnly(1970, 6, 1))
            .Patient("p2", null, null)
            .Encounter(TestCdm.IcuStay("icuA", "p1", T0, 12))
            .Encounter(TestCdm.IcuStay("icuB", "p2", T0, 4))
            .Encounter(new CdmEncounter { Id = "otherB", PatientId = "p2", Class = "IMP", Start = T0.AddDays(-30), End = T0.AddDays(-20) })
            .Condition("p1", "icuA", Systems.Snomed, Systems.SepsisCode, onset: T0.AddHours(9))
            .Condition("p1", "icuA", Systems.Snomed, Systems.SepsisCode, onset: T0.AddHours(11)) // later onset of the same stay: the earliest wins
            .Condition("p1", "icuA", Systems.Snomed, "233604007", onset: T0) // pneumonia: not sepsis
            .Condition("p2", "otherB", Systems.Snomed, Systems.SepsisCode, onset: T0.AddHours(1));
        var (t, s) = Extract(cdm, "label-boundary");
        Assert.Equal(16, t.Rows);
        for (int h = 0; h < 12; h++) Assert.Equal(h >= 3 ? 1f : 0f, t.Labels[t.RowOf("icuA", h)]);
        for (int h = 0; h < 4; h++) Assert.Equal(0f, t.Labels[t.RowOf("icuB", h)]);
        Assert.Equal(9, s.Positives);
        Assert.Equal(1, s.PositiveEncounters);
        Assert.Equal(2, s.Encounters);
        Assert.Equal(1, s.LabelSource["no-sepsis-condition"]);

        // No icu-admission extension: ICU hours count from the period start; no parent: offset unknown; sex/age unknown for p2.
        int r0 = t.RowOf("icuA", 0);
        Assert.Equal(1f, t.Get(r0, "icu_hours"));
        Assert.Equal(12f, t.Get(t.RowOf("icuA", 11), "icu_hours"));
        Assert.Equal(1f, t.Get(r0, "hr_hours_since"));
        Assert.True(float.IsNaN(t.Get(r0, "hospital_admission_offset_hours")));
        Assert.Equal(0, t.Get(r0, "male"));
        Assert.Equal(0, t.Get(r0, "unit_micu"));
        int b0 = t.RowOf("icuB", 0);
        Assert.True(float.IsNaN(t.Get(b0, "male")));
        Assert.True(float.IsNaN(t.Get(b0, "age")));
    }

    [Fact]
    public void No_look_ahead_row_of_hour_1_does_not_see_hour_3()
    {
        var (t, _) = Extract(MainCdm(), "no-look-ahead");
        int r1 = t.RowOf("icu1", 1), r2 = t.RowOf("icu1", 2);
        Assert.Equal(80f, t.Get(r1, "hr"));
        Assert.Equal(80f, t.Get(r2, "hr"));
        // An observation at 0:59:59 belongs to hour 0, one at 1:00:00 to hour 1.
        var cdm = new TestCdm()
            .Patient("p1", "male", new DateOnly(1960, 1, 1))
            .Encounter(TestCdm.IcuStay("icu1", "p1", T0, 3))
            .Obs("p1", "icu1", Hr, T0.AddSeconds(3599), 61, "/min")
            .Obs("p1", "icu1", Hr, T0.AddHours(1), 62, "/min");
        var (t2, _) = Extract(cdm, "hour-edges");
        Assert.Equal([61f, 62f, 62f], Enumerable.Range(0, 3).Select(h => t2.Get(t2.RowOf("icu1", h), "hr")));
        Assert.Equal([0f, 0f, 1f], Enumerable.Range(0, 3).Select(h => t2.Get(t2.RowOf("icu1", h), "hr_hours_since")));
    }

    [Fact]
    public void Changing_future_values_never_changes_earlier_rows()
    {
        var (a, _) = Extract(MainCdm(hrAtHour3: 90), "future-a");
        var (b, _) = Extract(MainCdm(hrAtHour3: 150, tempAtHour4: 39.5m), "future-b");
        Assert.Equal(a.Rows, b.Rows);
        for (int h = 0; h < 3; h++)
        {
            var ra = a.Row(a.RowOf("icu1", h)).ToArray();
            var rb = b.Row(b.RowOf("icu1", h)).ToArray();
            for (int c = 0; c < a.Columns; c++)
                Assert.True(ra[c].Equals(rb[c]), $"hour {h}, column {a.Header.Columns[c]}: {ra[c]} vs {rb[c]}");
        }
        // The rows from hour 3 on do see the changed values (so the comparison above could have failed).
        Assert.Equal(90f, a.Get(a.RowOf("icu1", 3), "hr"));
        Assert.Equal(150f, b.Get(b.RowOf("icu1", 3), "hr"));
        Assert.Equal(37f, a.Get(a.RowOf("icu1", 4), "temp"), 0.001f);
        Assert.Equal(39.5f, b.Get(b.RowOf("icu1", 4), "temp"));
        Assert.Equal(0f, b.Get(b.RowOf("icu1", 4), "temp_hours_since"));
    }

    [Fact]
    public void Summary_counts_implausible_unit_problems_and_conversions()
    {
        var (_, s) = Extract(MainCdm(), "summary");
        var hr = s.Measurements.Single(m => m.Name == "hr");
        Assert.Equal(2, hr.Used);          // 80 and 90; the one after the stay is not used
        Assert.Equal(1, hr.Implausible);   // 400 /min
        Assert.Equal(1, hr.OutsideStay);
        Assert.Empty(hr.UnitProblems);
        Assert.Equal(0, hr.UnitConverted);
        Assert.Equal(0.4, hr.RowsMeasuredFraction, 6); // HR taken in hours 0 and 3 of 5
        Assert.Equal(80, hr.Minimum);
        Assert.Equal(90, hr.Maximum);

        var temp = s.Measurements.Single(m => m.Name == "temp");
        Assert.Equal(1, temp.UnitConverted);
        Assert.Equal(1, temp.Used);
        Assert.Equal(0, temp.Implausible);
        Assert.Equal(37.0, temp.Minimum!.Value, 6);

        var lactate = s.Measurements.Single(m => m.Name == "lactate");
        Assert.Equal(new Dictionary<string, long> { ["mg/dL"] = 1 }, lactate.UnitProblems);
        Assert.Equal(0, lactate.Used);
        Assert.Equal(0, lactate.RowsMeasuredFraction);

        Assert.Equal(5, s.Rows);
        Assert.Equal(5, s.Positives);
        Assert.Equal(0.4, s.ColumnMissingFraction["temp"], 6);   // hours 0 and 1 of 5
        Assert.Equal(1.0, s.ColumnMissingFraction["lactate"], 6);
        Assert.Equal(0.0, s.ColumnMissingFraction["hr"], 6);
        Assert.Equal(0.0, s.ColumnMissingFraction["hr_hours_since"], 6);
    }

    [Fact]
    public void Run_writes_summary_and_optional_csv()
    {
        var cdm = MainCdm().Write(_tmp.Combine("csv", "cdm"));
        var outDir = _tmp.Combine("csv", "features");
        var s = FeatureExtraction.Run(new FeatureOptions("sepsis", cdm, outDir, Site: "siteX", Csv: true));
        Assert.Equal("siteX", s.Site);
        Assert.True(File.Exists(Path.Combine(outDir, FeatureExtraction.SummaryFileName)));
        Assert.Equal("siteX", FeatureTableFile.ReadHeader(Path.Combine(outDir, FeatureTableFile.FileName)).Site);
        using var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(outDir, FeatureExtraction.CsvFileName)), System.IO.Compression.CompressionMode.Decompress);
        var lines = new StreamReader(gz).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, lines.Length);
        Assert.StartsWith("patient_id,encounter_id,hour,sepsis_label,hr,o2sat,temp,", lines[0]);
        Assert.StartsWith("p1,icu1,3,1,90,,37,", lines[4]);
        Assert.Empty(Directory.GetFiles(outDir, "*.partial"));
    }

    [Fact]
    public void Wrong_task_or_missing_cdm_is_a_clear_error()
    {
        var e = Assert.Throws<CdmException>(() => FeatureExtraction.Run(new FeatureOptions("mortality", _tmp.Combine("nope"), "")));
        Assert.Contains("--task", e.Message);
        Assert.Contains("--cdm", e.Message);
        Assert.Contains("--out", e.Message);
        Directory.CreateDirectory(_tmp.Combine("empty"));
        var e2 = Assert.Throws<CdmException>(() => FeatureExtraction.Run(new FeatureOptions("sepsis", _tmp.Combine("empty"), _tmp.Combine("out"))));
        Assert.Contains("convert-report.json", e2.Message);
    }

    [Fact]
    public void An_observation_before_the_stay_is_counted_outside_and_not_used()
    {
        var cdm = new TestCdm()
            .Patient("p1", "female", new DateOnly(1970, 1, 1))
            .Encounter(TestCdm.IcuStay("icu1", "p1", T0, 3))
            .Obs("p1", "icu1", Hr, T0.AddHours(-30), 120, "/min") // a day before the stay: must not look fresh in hour 0
            .Obs("p1", "icu1", Hr, T0.AddHours(1), 85, "/min");
        var (t, s) = Extract(cdm, "before");
        Assert.True(float.IsNaN(t.Get(0, "hr")));
        Assert.Equal(0, t.Get(0, "hr_measured"));
        Assert.Equal(85, t.Get(1, "hr"));
        Assert.Equal(0, t.Get(1, "hr_hours_since"));
        var hr = s.Measurements.Single(m => m.Name == "hr");
        Assert.Equal(1, hr.OutsideStay);
        Assert.Equal(1, hr.Used);
        Assert.Equal(85, hr.Maximum);
    }
}
