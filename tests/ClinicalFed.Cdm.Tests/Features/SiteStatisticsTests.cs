using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.TestSupport;
using ClinicalFed.Data;
using ClinicalFed.Statistics;

namespace ClinicalFed.Cdm.Tests.Features;

public sealed class SiteStatisticsTests : IDisposable
{
    private readonly TempFolder _tmp = new("site-stats");
    public void Dispose() => _tmp.Dispose();

    private static readonly DateTimeOffset T0 = TestCdm.T0;

    /// <summary>Site A: two stays (4 h and 3 h) with hospital parents; site B: one 5-hour stay without a parent
    /// (hospital offset unknown) and a patient without birth date.</summary>
    private static void AddSiteA(TestCdm c)
    {
        c.Patient("a1", "male", new DateOnly(1950, 3, 1)).Patient("a2", "female", new DateOnly(1980, 7, 1))
            .Encounter(new CdmEncounter { Id = "a1-h", PatientId = "a1", Class = "IMP", Start = T0.AddHours(-30), End = T0.AddDays(2) })
            .Encounter(TestCdm.IcuStay("a1-icu", "a1", T0, 4, parent: "a1-h"))
            .Encounter(new CdmEncounter { Id = "a2-h", PatientId = "a2", Class = "IMP", Start = T0.AddHours(-5), End = T0.AddDays(2) })
            .Encounter(TestCdm.IcuStay("a2-icu", "a2", T0, 3, parent: "a2-h"))
            .Obs("a1", "a1-icu", "8867-4", T0.AddHours(1), 88, "/min")
            .Obs("a1", "a1-icu", "8867-4", T0.AddHours(3), 104, "/min")
            .Obs("a2", "a2-icu", "8867-4", T0, 71, "/min")
            .Obs("a2", "a2-icu", "8310-5", T0.AddHours(2), 38.2m, "Cel")
            .Condition("a2", "a2-icu", Systems.Snomed, Systems.SepsisCode, onset: T0.AddHours(7));
    }

    private static void AddSiteB(TestCdm c)
    {
        c.Patient("b1", "female", new DateOnly(1940, 1, 1)).Patient("b2", null, null)
            .Encounter(TestCdm.IcuStay("b1-icu", "b1", T0, 5))
            .Encounter(TestCdm.IcuStay("b2-icu", "b2", T0, 2))
            .Obs("b1", "b1-icu", "8867-4", T0.AddHours(2), 120, "/min")
            .Obs("b1", "b1-icu", "8310-5", T0, 36.5m, "Cel")
            .Obs("b2", "b2-icu", "8867-4", T0.AddHours(1), 95, "/min");
    }

    private string Features(string name, Action<TestCdm> fill, string site, string task = "sepsis")
    {
        var cdm = new TestCdm();
        fill(cdm);
        var outDir = _tmp.Combine(name, "features");
        FeatureExtraction.Run(new FeatureOptions(task, cdm.Write(_tmp.Combine(name, "cdm"), site), outDir, site));
        return outDir;
    }

    private static string Table(string dir) => Path.Combine(dir, FeatureTableFile.FileName);

    [Fact]
    public void Merge_of_site_statistics_equals_statistics_of_pooled_rows()
    {
        var a = SiteStatistics.Compute(Features("A", AddSiteA, "A"));
        var b = SiteStatistics.Compute(Features("B", AddSiteB, "B"));
        var pooled = SiteStatistics.Compute(Features("AB", c => { AddSiteA(c); AddSiteB(c); }, "AB"));
        Assert.Equal(StatisticsSet.SiteScope, a.Scope);
        Assert.Equal(["A"], a.Sites);
        Assert.Equal(7, a.Rows);
        Assert.Equal(7, b.Rows);

        var merged = StatisticsSet.Merge([a, b]);
        Assert.Equal(StatisticsSet.FederatedScope, merged.Scope);
        Assert.Equal(["A", "B"], merged.Sites);
        Assert.Equal(14, merged.Rows);
        Assert.Equal(pooled.Rows, merged.Rows);
        Assert.Equal(pooled.Features.Select(f => f.Name), merged.Features.Select(f => f.Name));
        for (int c = 0; c < merged.Features.Count; c++)
        {
            var m = merged.Features[c];
            var p = pooled.Features[c];
            Assert.Equal(p.Count, m.Count);
            Assert.Equal(p.Missing, m.Missing);
            Assert.Equal(p.BinCounts, m.BinCounts);
            Assert.Equal(p.Histogram, m.Histogram);
            Assert.Equal(p.Sum, m.Sum, 9);
            Assert.Equal(p.SumOfSquares, m.SumOfSquares, 6);
            if (p.Count > 0) { Assert.Equal(p.Min, m.Min); Assert.Equal(p.Max, m.Max); }
        }

        // Hand-computed: HR is known in A from the first HR (a1: hours 1,2,3 → 88, 88, 104; a2: 71, 71, 71) and in
        // B (b1: hours 2,3,4 → 120 ×3; b2: hour 1 → 95): 10 of 14 rows.
        var hr = merged.FindFeature("hr")!;
        Assert.Equal(10, hr.Count);
        Assert.Equal(4, hr.Missing);
        Assert.Equal(88 + 88 + 104 + 71 * 3 + 120 * 3 + 95, hr.Sum, 6);
        Assert.Equal(71, hr.Min);
        Assert.Equal(120, hr.Max);
        // Hospital offset known only for site A's 7 rows (-30 h and -5 h).
        var off = merged.FindFeature("hospital_admission_offset_hours")!;
        Assert.Equal(7, off.Count);
        Assert.Equal(-30 * 4 + -5 * 3, off.Sum, 6);
    }

    [Fact]
    public void Impute_fills_exactly_the_missing_cells_of_imputable_columns_with_the_federated_median()
    {
        var dirA = Features("A", AddSiteA, "A");
        var dirB = Features("B", AddSiteB, "B");
        var merged = StatisticsSet.Merge([SiteStatistics.Compute(dirA), SiteStatistics.Compute(dirB)]);
        var outDir = _tmp.Combine("B-imputed");
        var (rows, filled) = SiteStatistics.Impute(dirB, merged, ImputationMethod.Median, outDir);

        var before = FeatureTableFile.Load(Table(dirB));
        var after = FeatureTableFile.Load(Table(outDir));
        Assert.Equal(7, rows);
        Assert.Equal(before.Rows, after.Rows);
        Assert.Equal(before.Keys, after.Keys);
        Assert.Equal(before.Labels, after.Labels);
        Assert.NotNull(after.Header.Imputation);
        Assert.Contains("median", after.Header.Imputation);
        Assert.Null(before.Header.Imputation);

        var imputable = before.Header.ImputableColumns.ToHashSet();
        Assert.Contains("hr", imputable);
        Assert.Contains("age", imputable);
        Assert.Contains("hospital_admission_offset_hours", imputable);
        Assert.DoesNotContain("hr_measured", imputable);
        Assert.DoesNotContain("hr_hours_since", imputable);
        Assert.DoesNotContain("icu_hours", imputable);

        long expectedFilled = 0;
        for (int r = 0; r < before.Rows; r++)
            for (int c = 0; c < before.Columns; c++)
            {
                string name = before.Header.Columns[c];
                float x = before.Row(r)[c], y = after.Row(r)[c];
                if (float.IsNaN(x) && imputable.Contains(name))
                {
                    var f = merged.Features[c];
                    float fill = f.Count == 0 ? 0f : (float)f.Median;
                    Assert.Equal(fill, y);
                    expectedFilled++;
                }
                else Assert.True(x.Equals(y), $"row {r} column {name}: {x} became {y}");
                Assert.False(float.IsNaN(y) && imputable.Contains(name), $"row {r} column {name} still missing");
            }
        Assert.Equal(expectedFilled, filled);

        // The fill of hr is the federated median of the 10 known values (71 71 71 88 88 95 104 120 120 120 → 91.5),
        // interpolated within 1.5-wide bins; the offset's from site A only (-30 ×4, -5 ×3 → between).
        var hrFill = after.Get(after.RowOf("b1-icu", 0), "hr");
        Assert.InRange(hrFill, 87f, 96f);
        Assert.Equal((float)merged.FindFeature("hr")!.Median, hrFill);
        var offFill = after.Get(after.RowOf("b1-icu", 0), "hospital_admission_offset_hours");
        Assert.InRange(offFill, -30f, -5f);
        // b2 has no birth date and no sex: both filled; _measured/_hours_since keep their values.
        int b2 = after.RowOf("b2-icu", 0);
        Assert.False(float.IsNaN(after.Get(b2, "age")));
        Assert.False(float.IsNaN(after.Get(b2, "male")));
        Assert.Equal(0f, after.Get(b2, "hr_measured"));
        Assert.Equal(1f, after.Get(b2, "hr_hours_since"));
        // Site-only statistics of B fill with B's own median instead.
        var own = SiteStatistics.Compute(dirB);
        SiteStatistics.Impute(dirB, own, ImputationMethod.Mean, _tmp.Combine("B-own"));
        var ownTable = FeatureTableFile.Load(Table(_tmp.Combine("B-own")));
        Assert.Equal((float)own.FindFeature("hr")!.Mean, ownTable.Get(ownTable.RowOf("b1-icu", 0), "hr"));
        Assert.Equal((120f * 3 + 95) / 4, ownTable.Get(ownTable.RowOf("b1-icu", 0), "hr"), 0.001f);
    }

    [Fact]
    public void Impute_never_touches_columns_outside_the_imputable_list_even_when_they_hold_NaN()
    {
        // Extraction never leaves NaN in indicator/count columns, so plant some in a copy of a real table.
        var dirA = Features("A", AddSiteA, "A");
        var stats = SiteStatistics.Compute(dirA);
        var source = FeatureTableFile.Load(Table(dirA));
        var planted = _tmp.Combine("A-planted");
        Directory.CreateDirectory(planted);
        string[] nonImputable = ["hr_measured", "hr_hours_since", "icu_hours", "unit_micu"];
        using (var w = new FeatureTableFile.Writer(Table(planted), source.Header))
            for (int r = 0; r < source.Rows; r++)
            {
                var v = source.Row(r).ToArray();
                if (r == 0) foreach (var c in nonImputable) v[source.Col(c)] = float.NaN;
                w.Write(source.Keys[r], source.Labels[r], v);
            }
        var outDir = _tmp.Combine("A-planted-imputed");
        SiteStatistics.Impute(planted, stats, ImputationMethod.Median, outDir);
        var after = FeatureTableFile.Load(Table(outDir));
        foreach (var c in nonImputable) Assert.True(float.IsNaN(after.Get(0, c)), c);
        Assert.False(float.IsNaN(after.Get(0, "hr"))); // a1 hour 0: no HR yet, filled
        Assert.Equal((float)stats.FindFeature("hr")!.Median, after.Get(0, "hr"));
    }

    [Fact]
    public void Imputing_an_imputed_table_is_a_clear_error()
    {
        var dirA = Features("A", AddSiteA, "A");
        var stats = SiteStatistics.Compute(dirA);
        var once = _tmp.Combine("A-imputed");
        SiteStatistics.Impute(dirA, stats, ImputationMethod.Median, once);
        var e = Assert.Throws<CdmException>(() => SiteStatistics.Impute(once, stats, ImputationMethod.Median, _tmp.Combine("A-twice")));
        Assert.Contains("already imputed", e.Message);
        Assert.False(File.Exists(Table(_tmp.Combine("A-twice"))));
        // Writing over the input is refused too.
        var e2 = Assert.Throws<CdmException>(() => SiteStatistics.Impute(dirA, stats, ImputationMethod.Median, dirA));
        Assert.Contains("--out", e2.Message);
    }

    [Fact]
    public void Statistics_of_another_spec_are_a_clear_error()
    {
        var sepsis = Features("A", AddSiteA, "A");
        var readmission = Features("R", c => c.Patient("r1", "male", new DateOnly(1960, 1, 1))
            .Encounter(new CdmEncounter { Id = "r1-e", PatientId = "r1", Class = "IMP", Start = T0, End = T0.AddDays(2) }), "R", "readmission");
        var rstats = SiteStatistics.Compute(readmission);
        Assert.Equal("readmission-30d", rstats.FeatureSpecId);
        var e = Assert.Throws<CdmException>(() => SiteStatistics.Impute(sepsis, rstats, ImputationMethod.Median, _tmp.Combine("bad")));
        Assert.Contains("readmission-30d", e.Message);
        Assert.Contains("sepsis-hourly", e.Message);
        Assert.False(File.Exists(Table(_tmp.Combine("bad"))));

        // Merging statistics of two different specs fails as well.
        Assert.Throws<StatisticsMergeException>(() => StatisticsSet.Merge([SiteStatistics.Compute(sepsis), rstats]));
        // And computing with a spec that did not produce the table.
        var e2 = Assert.Throws<CdmException>(() => SiteStatistics.Compute(sepsis, specPath: "readmission"));
        Assert.Contains("sepsis-hourly", e2.Message);
    }

    [Fact]
    public void Compute_without_a_table_is_a_clear_error()
    {
        Directory.CreateDirectory(_tmp.Combine("empty"));
        var e = Assert.Throws<CdmException>(() => SiteStatistics.Compute(_tmp.Combine("empty")));
        Assert.Contains(FeatureTableFile.FileName, e.Message);
    }

    [Fact]
    public void Histograms_line_up_with_the_spec()
    {
        var spec = FeatureSpec.Load("sepsis");
        var h = SiteStatistics.Histograms(spec);
        Assert.Equal(spec.Columns.Count, h.Count);
        Assert.Equal(new HistogramSpec(0, 300, SiteStatistics.DefaultBins), h[spec.ColumnNames.ToList().IndexOf("hr")]);
        Assert.Equal(new HistogramSpec(25, 45, SiteStatistics.DefaultBins), h[spec.ColumnNames.ToList().IndexOf("temp")]);
        Assert.Equal(new HistogramSpec(0, 2, 2), h[spec.ColumnNames.ToList().IndexOf("hr_measured")]);
        Assert.Equal(new HistogramSpec(0, 120, 120), h[spec.ColumnNames.ToList().IndexOf("age")]);
    }
}
