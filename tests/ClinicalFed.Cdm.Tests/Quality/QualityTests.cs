using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Quality;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.Features;
using ClinicalFed.Cdm.Tests.TestSupport;

namespace ClinicalFed.Cdm.Tests.Quality;

public sealed class QualityTests : IDisposable
{
    private readonly TempFolder _tmp = new("quality");
    public void Dispose() => _tmp.Dispose();

    private static readonly DateTimeOffset T0 = TestCdm.T0;

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    /// <summary>
    /// Six patients with one 4-hour ICU stay each (24 rows): p1–p5 male, born 1955-06-01 (64.6 y at T0), p6 female,
    /// born 1985-01-01 (35 y). HR at hours 0 and 2 of every stay plus an implausible HR 500 in p2; DBP every hour;
    /// lactate in mg/dL once (p3); no temperature. p1 has sepsis onset 8 h after T0 (rows 2 and 3 positive). p6 also
    /// has an ICU stay without an end (excluded). One input record was rejected at conversion.
    /// </summary>
    private string Cdm(string name, string site = "siteQ")
    {
        var c = new TestCdm();
        for (int i = 1; i <= 6; i++)
        {
            string p = "p" + i, s = "s" + i;
            c.Patient(p, i <= 5 ? "male" : "female", i <= 5 ? new DateOnly(1955, 6, 1) : new DateOnly(1985, 1, 1))
                .Encounter(TestCdm.IcuStay(s, p, T0, 4))
                .Obs(p, s, "8867-4", T0.AddMinutes(5), 80, "/min")
                .Obs(p, s, "8867-4", T0.AddHours(2.5), 90, "/min");
            for (int h = 0; h < 4; h++) c.Obs(p, s, "8462-4", T0.AddHours(h + 0.25), 60 + h, "mm[Hg]");
        }
        c.Obs("p2", "s2", "8867-4", T0.AddHours(1.2), 500, "/min")
            .Obs("p3", "s3", "2524-7", T0.AddHours(1), 18, "mg/dL")
            .Encounter(new CdmEncounter { Id = "s6-open", PatientId = "p6", Class = "IMP", Start = T0.AddDays(-100), Types = [new CdmCoding(Systems.Snomed, Systems.IcuStayCode)] })
            .Condition("p1", "s1", Systems.Snomed, Systems.SepsisCode, onset: T0.AddHours(8));
        c.Report.Reject("input.csv", 17, RejectionKinds.InvalidValue, "HR 'abc' is not a number", "HR");
        return c.Write(_tmp.Combine(name), site);
    }

    [Fact]
    public void Build_counts_prevalence_and_resources()
    {
        var now = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);
        var r = QualityReport.Build(Cdm("counts"), time: new FixedTime(now));
        Assert.Equal("siteQ", r.Site);
        Assert.Equal("sepsis", r.Task);
        Assert.Equal("sepsis-hourly", r.FeatureSpecId);
        Assert.Equal(now, r.GeneratedAt);
        Assert.Equal(6, r.Patients);
        Assert.Equal(7, r.Encounters);
        Assert.Equal(24, r.Rows);
        Assert.Equal(2, r.Positives);
        Assert.Equal(0.083333, r.LabelPrevalence, 6);
        Assert.Equal(1, r.PositiveEncounters);
        Assert.Equal(0.166667, r.EncounterPrevalence, 6);
        Assert.Equal(new Dictionary<string, long> { ["icu-stay-without-period"] = 1 }, r.Excluded);
        Assert.Equal(1, r.ConversionRejected);
        Assert.Equal(new Dictionary<string, long> { [RejectionKinds.InvalidValue] = 1 }, r.ConversionRejectedByKind);
        Assert.Equal(6, r.Resources["Patient"]);
        Assert.Equal(7, r.Resources["Encounter"]);
        Assert.Equal(12 + 24 + 1 + 1, r.Resources["Observation"]);
        Assert.Equal(1, r.Resources["Condition"]);
        Assert.Equal(0, r.Resources["MedicationRequest"]);
        Assert.Equal(64.6, r.AgeMedian); // sorted ages 35, 64.59 ×5: the middle one
        Assert.Equal(0.8333, r.MaleFraction);
        Assert.Equal("other-site", QualityReport.Build(Cdm("counts2"), site: "other-site").Site);
    }

    [Fact]
    public void Build_measurements_missing_implausible_and_unit_problems()
    {
        var r = QualityReport.Build(Cdm("measurements"));
        var hr = r.Measurements.Single(m => m.Name == "hr");
        Assert.Equal("/min", hr.Unit);
        Assert.Equal((0.0, 300.0), (hr.PlausibleMin, hr.PlausibleMax));
        Assert.Equal(13, hr.Observations);        // 12 used + 1 implausible
        Assert.Equal(1, hr.Implausible);
        Assert.Equal(0.076923, hr.ImplausibleFraction, 6);
        Assert.Equal(0.5, hr.MissingFraction, 6); // taken in 2 of 4 hours of every stay
        Assert.Empty(hr.UnitProblems);

        var dbp = r.Measurements.Single(m => m.Name == "dbp");
        Assert.Equal(24, dbp.Observations);
        Assert.Equal(0.0, dbp.MissingFraction, 6);
        Assert.Equal(0, dbp.Implausible);

        var lactate = r.Measurements.Single(m => m.Name == "lactate");
        Assert.Equal(1, lactate.Observations);
        Assert.Equal(1.0, lactate.MissingFraction, 6);
        Assert.Equal(new Dictionary<string, long> { ["mg/dL"] = 1 }, lactate.UnitProblems);

        var temp = r.Measurements.Single(m => m.Name == "temp");
        Assert.Equal(0, temp.Observations);
        Assert.Equal(1.0, temp.MissingFraction, 6);
        Assert.Equal(0, temp.ImplausibleFraction);
        Assert.Equal(1.0, r.ColumnMissingFraction["temp"], 6);
        Assert.Equal(0.0, r.ColumnMissingFraction["hr"], 6); // forward filled from hour 0
        Assert.Equal(34, r.Measurements.Count);

        var text = r.ToText();
        Assert.Contains("siteQ", text);
        Assert.Contains("mg/dL:1", text);
    }

    [Fact]
    public void Small_cells_are_suppressed_unless_min_cell_count_is_zero()
    {
        var r = QualityReport.Build(Cdm("cells"));
        Assert.Equal(5, r.MinCellCount);
        Assert.Equal(new BinCount("60-69", 5), r.AgeDistribution.Single(b => b.Bin == "60-69"));
        Assert.Equal(new BinCount("30-39", null, true), r.AgeDistribution.Single(b => b.Bin == "30-39"));
        Assert.Equal(new BinCount("0-17", 0), r.AgeDistribution.Single(b => b.Bin == "0-17"));
        Assert.Equal(new BinCount("unknown", 0), r.AgeDistribution.Single(b => b.Bin == "unknown"));
        Assert.Equal(new BinCount("male", 5), r.SexDistribution.Single(b => b.Bin == "male"));
        Assert.Equal(new BinCount("female", null, true), r.SexDistribution.Single(b => b.Bin == "female"));
        Assert.Equal(10, r.AgeDistribution.Count);
        Assert.Equal(["female", "male", "other", "unknown"], r.SexDistribution.Select(b => b.Bin));

        // The suppressed cells stay suppressed in the shared JSON.
        var path = _tmp.WriteText("q.json", r.ToJson());
        var back = QualityReport.Read(path);
        Assert.Equal(new BinCount("30-39", null, true), back.AgeDistribution.Single(b => b.Bin == "30-39"));
        Assert.Equal(r.Rows, back.Rows);
        Assert.Equal(r.Measurements.Single(m => m.Name == "hr").ImplausibleFraction, back.Measurements.Single(m => m.Name == "hr").ImplausibleFraction);
        // Every get-only collection survives the round trip (QualityComparison reads the shared files).
        Assert.Equal(34, back.Measurements.Count);
        Assert.Equal(new Dictionary<string, long> { ["mg/dL"] = 1 }, back.Measurements.Single(m => m.Name == "lactate").UnitProblems);
        Assert.Equal(r.AgeDistribution, back.AgeDistribution);
        Assert.Equal(r.SexDistribution, back.SexDistribution);
        Assert.Equal(r.Resources, back.Resources);
        Assert.Equal(r.Excluded, back.Excluded);
        Assert.Equal(r.ColumnMissingFraction, back.ColumnMissingFraction);
        Assert.Equal(r.ToJson(), back.ToJson());
        Assert.Contains("<5", r.ToText());

        var open = QualityReport.Build(Cdm("cells-open"), minCellCount: 0);
        Assert.Equal(new BinCount("30-39", 1), open.AgeDistribution.Single(b => b.Bin == "30-39"));
        Assert.Equal(new BinCount("female", 1), open.SexDistribution.Single(b => b.Bin == "female"));
        Assert.DoesNotContain(open.AgeDistribution, b => b.Suppressed);

        var strict = QualityReport.Build(Cdm("cells-strict"), minCellCount: 6);
        Assert.Equal(new BinCount("60-69", null, true), strict.AgeDistribution.Single(b => b.Bin == "60-69"));
        Assert.Equal(new BinCount("male", null, true), strict.SexDistribution.Single(b => b.Bin == "male"));
    }

    [Fact]
    public void Read_of_a_non_report_is_a_clear_error()
    {
        var path = _tmp.WriteText("bad.json", "[1, 2");
        var e = Assert.Throws<CdmException>(() => QualityReport.Read(path));
        Assert.Contains("not a quality report", e.Message);
    }

    // ------------------------------------------------------------------ federated comparison

    private static QualityReport Site(string site, double prevalence, double dbpMissing, string task = "sepsis")
    {
        var r = new QualityReport { Site = site, Task = task, LabelPrevalence = prevalence, AgeMedian = 62, MaleFraction = 0.55 };
        r.Measurements.Add(new MeasurementQualityEntry { Name = "hr", MissingFraction = 0.10, Observations = 1000, Implausible = 1, ImplausibleFraction = 0.001 });
        r.Measurements.Add(new MeasurementQualityEntry { Name = "dbp", MissingFraction = dbpMissing, Observations = 800 });
        return r;
    }

    [Fact]
    public void Compare_flags_prevalence_three_times_the_others_and_dbp_missingness_fifty_points_off()
    {
        var c = QualityComparison.Compare([Site("A", 0.020, 0.14), Site("B", 0.021, 0.15), Site("C", 0.019, 0.64), Site("D", 0.060, 0.13)]);
        Assert.Equal("sepsis", c.Task);
        Assert.Equal(["A", "B", "C", "D"], c.Sites);
        Assert.Equal(2, c.Flags.Count);
        var prev = Assert.Single(c.Flags, f => f.Metric == "label_prevalence");
        Assert.Equal(("D", 0.060, 0.020), (prev.Site, prev.Value, prev.OthersMedian));
        var dbp = Assert.Single(c.Flags, f => f.Metric == "missing_fraction:dbp");
        Assert.Equal(("C", 0.64, 0.14), (dbp.Site, dbp.Value, dbp.OthersMedian));
        Assert.Equal(["C", "D"], c.OutlierSites);
        Assert.Contains("[D] label_prevalence", c.ToText());
        Assert.Contains("\"outlier_sites\"", c.ToJson());
    }

    [Fact]
    public void Compare_flags_a_site_with_a_third_of_the_prevalence_too()
    {
        var c = QualityComparison.Compare([Site("A", 0.030, 0.1), Site("B", 0.031, 0.1), Site("C", 0.010, 0.1)]);
        var f = Assert.Single(c.Flags);
        Assert.Equal(("C", "label_prevalence"), (f.Site, f.Metric));
    }

    [Fact]
    public void Compare_does_not_flag_near_identical_sites()
    {
        var c = QualityComparison.Compare([Site("A", 0.020, 0.14), Site("B", 0.0205, 0.145), Site("C", 0.0198, 0.139)]);
        Assert.Empty(c.Flags);
        Assert.Empty(c.OutlierSites);
        Assert.Contains("no site stands out", c.ToText());
    }

    [Fact]
    public void Compare_of_built_reports_flags_unit_problems_only()
    {
        // As the CLI does it: each site shares its report file, the comparison reads them back.
        var x = QualityReport.Read(_tmp.WriteText("x.json", QualityReport.Build(Cdm("x", "X")).ToJson()));
        var y = QualityReport.Read(_tmp.WriteText("y.json", QualityReport.Build(Cdm("y", "Y")).ToJson()));
        var c = QualityComparison.Compare([x, y]);
        Assert.Equal(["unit_problems:lactate", "unit_problems:lactate"], c.Flags.Select(f => f.Metric));
        Assert.Equal(["X", "Y"], c.OutlierSites);
    }

    [Fact]
    public void Compare_errors_clearly_on_duplicate_sites_a_single_report_mixed_tasks_and_bad_options()
    {
        var dup = Assert.Throws<CdmException>(() => QualityComparison.Compare([Site("A", 0.02, 0.1), Site("A", 0.02, 0.1), Site("B", 0.02, 0.1)]));
        Assert.Contains("given twice: A", dup.Message);
        var one = Assert.Throws<CdmException>(() => QualityComparison.Compare([Site("A", 0.02, 0.1)]));
        Assert.Contains("at least two", one.Message);
        var mixed = Assert.Throws<CdmException>(() => QualityComparison.Compare([Site("A", 0.02, 0.1), Site("B", 0.02, 0.1, "readmission")]));
        Assert.Contains("different tasks", mixed.Message);
        var opts = Assert.Throws<CdmException>(() => QualityComparison.Compare([Site("A", 0.02, 0.1), Site("B", 0.02, 0.1)], new ComparisonOptions(PrevalenceRatio: 1)));
        Assert.Contains("prevalence ratio", opts.Message);
        // All problems at once.
        var all = Assert.Throws<CdmException>(() => QualityComparison.Compare([Site("A", 0.02, 0.1)], new ComparisonOptions(MissingDifference: 2)));
        Assert.Contains("at least two", all.Message);
        Assert.Contains("missing difference", all.Message);
    }
}
