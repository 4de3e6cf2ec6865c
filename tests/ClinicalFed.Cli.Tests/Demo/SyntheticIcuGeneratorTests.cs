using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text.RegularExpressions;
using ClinicalFed.Cli.Demo;

namespace ClinicalFed.Cli.Tests.Demo;

/// <summary>Generates the four default sites (1,000 patients each) once for all tests of the class.</summary>
public sealed class SyntheticIcuFixture : IDisposable
{
    public const int Seed = 2019;
    public const int PatientsPerSite = 1000;

    public SyntheticIcuFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "clinicalfed-synthetic-" + Guid.NewGuid().ToString("N"));
        Sites = SyntheticIcuGenerator.DefaultSites(PatientsPerSite);
        var stopwatch = Stopwatch.StartNew();
        Results = Sites.Select(s => SyntheticIcuGenerator.Generate(s, Seed, Path.Combine(Directory, s.Name + ".csv.gz"))).ToList();
        Elapsed = stopwatch.Elapsed;
    }

    public string Directory { get; }
    public IReadOnlyList<SyntheticSiteProfile> Sites { get; }
    public IReadOnlyList<GeneratedSite> Results { get; }
    public TimeSpan Elapsed { get; }

    public IEnumerable<(SyntheticSiteProfile Site, GeneratedSite Result)> Both => Sites.Zip(Results);

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}

public sealed class SyntheticIcuGeneratorTests(SyntheticIcuFixture fixture) : IClassFixture<SyntheticIcuFixture>
{
    private const string ExpectedHeader =
        "patient_id,hospital,hour,HR,O2Sat,Temp,SBP,MAP,DBP,Resp,EtCO2,BaseExcess,HCO3,FiO2,pH,PaCO2,SaO2,AST,BUN,Alkalinephos," +
        "Calcium,Chloride,Creatinine,Bilirubin_direct,Glucose,Lactate,Magnesium,Phosphate,Potassium,Bilirubin_total,TroponinI," +
        "Hct,Hgb,PTT,WBC,Fibrinogen,Platelets,Age,Gender,Unit1,Unit2,HospAdmTime,ICULOS,SepsisLabel";

    private const int FieldCount = 44;
    private const int FirstMeasure = 3;   // HR
    private const int MeasureCount = 34;  // HR..Platelets
    private const int Age = 37, Gender = 38, Unit1 = 39, Unit2 = 40, HospAdmTime = 41, IcuLos = 42, Label = 43;

    private static readonly string[] VitalNames = ["HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp", "EtCO2"];

    [Fact]
    public void Header_IsExactlyThePhysioNetLongCsvHeader()
    {
        Assert.Equal(ExpectedHeader, SyntheticIcuGenerator.Header);
        foreach (var result in fixture.Results)
        {
            using var reader = OpenText(result.Path);
            Assert.Equal(ExpectedHeader, reader.ReadLine());
            string? line;
            while ((line = reader.ReadLine()) != null)
                Assert.Equal(FieldCount, line.Split(',').Length);
        }
        Assert.Equal(34, SyntheticIcuGenerator.MeasurementColumns.Count);
        Assert.Equal("HR", SyntheticIcuGenerator.MeasurementColumns[0]);
        Assert.Equal("Platelets", SyntheticIcuGenerator.MeasurementColumns[^1]);
    }

    [Fact]
    public void Output_IsGzipCompressed()
    {
        var bytes = File.ReadAllBytes(fixture.Results[0].Path);
        Assert.Equal(0x1f, bytes[0]);
        Assert.Equal(0x8b, bytes[1]);
    }

    [Fact]
    public void SameSeedAndProfile_GiveByteIdenticalFiles_AndAnotherSeedDoesNot()
    {
        var site = fixture.Sites[1] with { Patients = 300 };
        var dir = Path.Combine(fixture.Directory, "determinism");
        var a = SyntheticIcuGenerator.Generate(site, 7, Path.Combine(dir, "a.csv.gz"));
        var b = SyntheticIcuGenerator.Generate(site, 7, Path.Combine(dir, "b.csv.gz"));
        var c = SyntheticIcuGenerator.Generate(site, 8, Path.Combine(dir, "c.csv.gz"));

        Assert.Equal(File.ReadAllBytes(a.Path), File.ReadAllBytes(b.Path));
        Assert.Equal((a.Rows, a.SepticPatients, a.PositiveRows, a.NonEmptyMeasurementCells), (b.Rows, b.SepticPatients, b.PositiveRows, b.NonEmptyMeasurementCells));
        Assert.Equal(a.NonEmptyCellsByColumn, b.NonEmptyCellsByColumn);
        Assert.NotEqual(File.ReadAllBytes(a.Path), File.ReadAllBytes(c.Path));

        // The fixture's file for the same site is reproduced exactly, too (no state shared between calls).
        var again = SyntheticIcuGenerator.Generate(fixture.Sites[3], SyntheticIcuFixture.Seed, Path.Combine(dir, "again.csv.gz"));
        Assert.Equal(File.ReadAllBytes(fixture.Results[3].Path), File.ReadAllBytes(again.Path));
    }

    [Fact]
    public void Labels_AreMonotonePerPatient_AndFollowOnsetMinusSixHours()
    {
        foreach (var (site, result) in fixture.Both)
        {
            long rows = 0, positives = 0;
            var septic = 0;
            foreach (var stay in ReadStays(result.Path))
            {
                var number = int.Parse(stay.Id.AsSpan(1), CultureInfo.InvariantCulture) - site.SiteIndex * 100_000;
                var plan = SyntheticIcuGenerator.PlanPatient(site, SyntheticIcuFixture.Seed, number);
                Assert.Equal(plan.Id, stay.Id);
                Assert.Equal(plan.StayHours, stay.Rows.Count);

                var labels = stay.Rows.Select(r => r[Label]).ToList();
                Assert.All(labels, l => Assert.True(l is "0" or "1", $"{stay.Id}: label '{l}'"));
                for (var h = 1; h < labels.Count; h++)
                    Assert.False(labels[h - 1] == "1" && labels[h] == "0", $"{stay.Id}: label drops from 1 to 0 at hour {h}");

                for (var h = 0; h < stay.Rows.Count; h++)
                {
                    var expected = plan.OnsetHour is int onset && h >= onset - 6;
                    Assert.True(expected == (labels[h] == "1"), $"{stay.Id} hour {h}: label {labels[h]}, onset {plan.OnsetHour}");
                }

                if (plan.OnsetHour is int t)
                {
                    septic++;
                    Assert.Equal("1", labels[^1]);
                    // Septic stays end a few hours after onset.
                    var after = stay.Rows.Count - 1 - t;
                    Assert.True(after is >= 2 and <= 10 || stay.Rows.Count == SyntheticIcuGenerator.MinStayHours, $"{stay.Id}: {after} h after onset");
                }
                else
                {
                    Assert.All(labels, l => Assert.Equal("0", l));
                }
                rows += stay.Rows.Count;
                positives += labels.Count(l => l == "1");
            }
            Assert.Equal(result.Rows, rows);
            Assert.Equal(result.PositiveRows, positives);
            Assert.Equal(result.SepticPatients, septic);
            Assert.Equal(site.Patients, result.Patients);
        }
    }

    [Fact]
    public void SepsisPrevalence_PerSite_IsWithinToleranceOfItsProfile()
    {
        foreach (var (site, result) in fixture.Both)
        {
            var septicInFile = ReadStays(result.Path).Count(s => s.Rows.Any(r => r[Label] == "1"));
            Assert.Equal(result.SepticPatients, septicInFile);
            var observed = (double)septicInFile / result.Patients;
            var p = site.SepsisPrevalence;
            var tolerance = 4 * Math.Sqrt(p * (1 - p) / result.Patients);
            Assert.True(Math.Abs(observed - p) <= tolerance, $"{site.Name}: prevalence {observed:P1}, profile {p:P1} ± {tolerance:P1}");
        }

        // The sites really differ: the academic MICU has more than twice the prevalence of the community hospital.
        var prevalence = fixture.Results.Select(r => (double)r.SepticPatients / r.Patients).ToList();
        Assert.True(prevalence[0] > 2 * prevalence[1], $"academic {prevalence[0]:P1} vs community {prevalence[1]:P1}");
    }

    [Fact]
    public void Missingness_DiffersBetweenSitesAsConfigured()
    {
        var missing = fixture.Results.Select(r => MissingRates(r.Path)).ToList();
        var columns = SyntheticIcuGenerator.MeasurementColumns;
        int Col(string name) => columns.ToList().IndexOf(name);
        var labs = Enumerable.Range(8, 26).ToList();

        for (var s = 0; s < fixture.Sites.Count; s++)
        {
            var site = fixture.Sites[s];
            var m = missing[s];
            Assert.InRange(m[Col("HR")], 0.06, 0.16);
            Assert.InRange(m[Col("Temp")], 0.55, 0.78);
            Assert.All(labs, j => Assert.InRange(m[j], 0.70, 0.999));
            if (site.RecordsEtCO2) Assert.InRange(m[Col("EtCO2")], 0.80, 0.995);
            else Assert.Equal(1.0, m[Col("EtCO2")]);
        }
        Assert.Contains(fixture.Sites, s => !s.RecordsEtCO2);

        // Sites are ranked by their configured multipliers: vitals by MissingnessMultiplier, labs by the product with the lab multiplier.
        var vitalOrder = Enumerable.Range(0, fixture.Sites.Count).OrderBy(s => fixture.Sites[s].MissingnessMultiplier).ToList();
        var labOrder = Enumerable.Range(0, fixture.Sites.Count)
            .OrderBy(s => fixture.Sites[s].MissingnessMultiplier * fixture.Sites[s].LabMissingnessMultiplier).ToList();
        double VitalMissing(int s) => new[] { "HR", "O2Sat", "SBP", "MAP", "Resp" }.Average(n => missing[s][Col(n)]);
        double LabMissing(int s) => labs.Average(j => missing[s][j]);
        for (var k = 1; k < fixture.Sites.Count; k++)
        {
            Assert.True(VitalMissing(vitalOrder[k - 1]) < VitalMissing(vitalOrder[k]),
                $"vital missingness {fixture.Sites[vitalOrder[k - 1]].Name} {VitalMissing(vitalOrder[k - 1]):P1} !< {fixture.Sites[vitalOrder[k]].Name} {VitalMissing(vitalOrder[k]):P1}");
            Assert.True(LabMissing(labOrder[k - 1]) < LabMissing(labOrder[k]),
                $"lab missingness {fixture.Sites[labOrder[k - 1]].Name} {LabMissing(labOrder[k - 1]):P2} !< {fixture.Sites[labOrder[k]].Name} {LabMissing(labOrder[k]):P2}");
        }
    }

    [Fact]
    public void MissingnessMultiplier_ScalesTheOddsOfMissing()
    {
        var baseSite = new SyntheticSiteProfile { SiteIndex = 7, Name = "reference", Patients = 400, SepsisPrevalence = 0.05 };
        var dir = Path.Combine(fixture.Directory, "multiplier");
        var reference = MissingRates(SyntheticIcuGenerator.Generate(baseSite, 3, Path.Combine(dir, "x1.csv.gz")).Path);
        var sparse = MissingRates(SyntheticIcuGenerator.Generate(baseSite with { MissingnessMultiplier = 2 }, 3, Path.Combine(dir, "x2.csv.gz")).Path);
        var hr = SyntheticIcuGenerator.MeasurementColumns.ToList().IndexOf("HR");
        static double Odds(double p) => p / (1 - p);
        Assert.InRange(Odds(sparse[hr]) / Odds(reference[hr]), 1.7, 2.3);
        var glucose = SyntheticIcuGenerator.MeasurementColumns.ToList().IndexOf("Glucose");
        Assert.True(sparse[glucose] > reference[glucose] + 0.03, $"glucose missing {reference[glucose]:P1} → {sparse[glucose]:P1}");
    }

    [Fact]
    public void ReturnedNonEmptyCellCount_EqualsRecountFromFile()
    {
        foreach (var result in fixture.Results)
        {
            var byColumn = new long[MeasureCount];
            foreach (var row in ReadRows(result.Path))
            {
                for (var j = 0; j < MeasureCount; j++)
                    if (row[FirstMeasure + j].Length > 0) byColumn[j]++;
            }
            Assert.Equal(byColumn.Sum(), result.NonEmptyMeasurementCells);
            Assert.Equal(byColumn, result.NonEmptyCellsByColumn);
            Assert.True(result.NonEmptyMeasurementCells > 0);
        }
    }

    [Fact]
    public void PatientIds_AreUniqueAcrossSites_AndRowsSortedByPatientThenHour()
    {
        var idPattern = new Regex("^p[0-9]{6}$");
        var all = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (site, result) in fixture.Both)
        {
            var ids = new List<string>();
            foreach (var stay in ReadStays(result.Path))
            {
                Assert.Matches(idPattern, stay.Id);
                Assert.True(all.Add(stay.Id), $"duplicate patient id {stay.Id}");
                ids.Add(stay.Id);
                for (var h = 0; h < stay.Rows.Count; h++)
                {
                    Assert.Equal(h.ToString(CultureInfo.InvariantCulture), stay.Rows[h][2]);
                    Assert.Equal(site.Name, stay.Rows[h][1]);
                }
                var firstLos = int.Parse(stay.Rows[0][IcuLos], CultureInfo.InvariantCulture);
                Assert.True(firstLos >= 1);
                for (var h = 0; h < stay.Rows.Count; h++)
                    Assert.Equal(firstLos + h, int.Parse(stay.Rows[h][IcuLos], CultureInfo.InvariantCulture));
            }
            Assert.Equal(result.Patients, ids.Count);
            Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        }
        Assert.Equal(fixture.Results.Sum(r => r.Patients), all.Count);
        // A split on "patient number divisible by 5" selects about a fifth of the patients at every site.
        Assert.InRange(all.Count(id => int.Parse(id.AsSpan(1), CultureInfo.InvariantCulture) % 5 == 0), all.Count / 5 - 4, all.Count / 5 + 4);
    }

    [Fact]
    public void StayAttributes_AreConstantWithinStay_AndStayLengthsRealistic()
    {
        var lengths = new List<int>();
        int stays = 0, lateStart = 0;
        foreach (var result in fixture.Results)
        {
            foreach (var stay in ReadStays(result.Path))
            {
                stays++;
                lengths.Add(stay.Rows.Count);
                if (stay.Rows[0][IcuLos] != "1") lateStart++;
                var first = stay.Rows[0];
                foreach (var row in stay.Rows)
                    foreach (var c in new[] { Age, Gender, Unit1, Unit2, HospAdmTime })
                        Assert.Equal(first[c], row[c]);

                var age = double.Parse(first[Age], CultureInfo.InvariantCulture);
                Assert.InRange(age, 18, 100);
                Assert.True(Decimals(first[Age]) <= 2);
                Assert.Contains(first[Gender], new[] { "0", "1" });
                Assert.Contains((first[Unit1], first[Unit2]), new[] { ("1", "0"), ("0", "1"), ("", "") });
                var adm = double.Parse(first[HospAdmTime], CultureInfo.InvariantCulture);
                Assert.True(adm < 0, $"{stay.Id}: HospAdmTime {adm}");
                Assert.True(Decimals(first[HospAdmTime]) <= 2);
            }
        }
        Assert.All(lengths, l => Assert.InRange(l, SyntheticIcuGenerator.MinStayHours, SyntheticIcuGenerator.MaxStayHours));
        lengths.Sort();
        var median = lengths[lengths.Count / 2];
        Assert.InRange(median, 28, 42);
        Assert.True(lengths.Average() > median, "stay lengths should be right-skewed");
        Assert.InRange((double)lateStart / stays, 0.01, 0.06);
    }

    [Fact]
    public void SitesDifferInCaseMix()
    {
        double MaleShare(GeneratedSite r) => ReadStays(r.Path).Average(s => s.Rows[0][Gender] == "1" ? 1.0 : 0.0);
        double MeanAge(GeneratedSite r) => ReadStays(r.Path).Average(s => double.Parse(s.Rows[0][Age], CultureInfo.InvariantCulture));
        double SicuShare(GeneratedSite r) => ReadStays(r.Path).Average(s => s.Rows[0][Unit2] == "1" ? 1.0 : 0.0);
        double UnknownUnitShare(GeneratedSite r) => ReadStays(r.Path).Average(s => s.Rows[0][Unit1] == "" ? 1.0 : 0.0);

        foreach (var (site, result) in fixture.Both)
        {
            Assert.InRange(MeanAge(result), site.AgeMean - 3, site.AgeMean + 4);
            Assert.InRange(MaleShare(result), site.MaleShare - 0.07, site.MaleShare + 0.07);
            Assert.InRange(SicuShare(result), site.SicuShare - 0.07, site.SicuShare + 0.07);
            Assert.InRange(UnknownUnitShare(result), 1 - site.MicuShare - site.SicuShare - 0.07, 1 - site.MicuShare - site.SicuShare + 0.07);
        }

        // The thermometer bias of a site shows in its mean temperature.
        var temps = fixture.Results.Select(r => MeanOf(r.Path, FirstMeasure + 2)).ToList();
        var hottest = Enumerable.Range(0, 4).MaxBy(i => fixture.Sites[i].TempOffsetCelsius);
        var coldest = Enumerable.Range(0, 4).MinBy(i => fixture.Sites[i].TempOffsetCelsius);
        Assert.True(temps[hottest] - temps[coldest] > 0.2, $"temperature means {string.Join(", ", temps.Select(t => t.ToString("F2", CultureInfo.InvariantCulture)))}");
    }

    [Fact]
    public void Values_AreInvariantCultureNumbersWithAtMostTwoDecimals_AndIncludeRareImplausibleOutliers()
    {
        long values = 0, outliers = 0;
        foreach (var result in fixture.Results)
        {
            foreach (var row in ReadRows(result.Path))
            {
                for (var j = 0; j < MeasureCount; j++)
                {
                    var cell = row[FirstMeasure + j];
                    if (cell.Length == 0) continue;
                    values++;
                    Assert.True(double.TryParse(cell, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v),
                        $"{row[0]} {SyntheticIcuGenerator.MeasurementColumns[j]}: '{cell}'");
                    Assert.True(Decimals(cell) <= 2, $"{SyntheticIcuGenerator.MeasurementColumns[j]}: '{cell}'");
                    Assert.False(cell.StartsWith("-0", StringComparison.Ordinal) && v == 0, "negative zero written");
                    if (j == 0 && (v < 20 || v > 300)) outliers++;
                }
            }
        }
        var hrValues = fixture.Results.Sum(r => r.NonEmptyCellsByColumn[0]);
        Assert.True(outliers >= 1, "expected at least one implausible heart rate");
        Assert.True(outliers < hrValues / 2000.0, $"{outliers} implausible heart rates out of {hrValues}");
        Assert.True(values > 0);
    }

    [Fact]
    public void Vitals_CarrySepsisSignal_ButAreNotTriviallySeparable()
    {
        // Score = forward-filled z(HR) + z(Resp) − z(MAP) + z(lactate), pooled over sites; AUROC against the hourly label.
        var scores = new List<double>();
        var labels = new List<bool>();
        int[] columns = [FirstMeasure + 0, FirstMeasure + 6, FirstMeasure + 4, FirstMeasure + 22];
        double[] mean = [84, 18.5, 82, 1.7], sd = [15, 4.5, 13, 1.0], sign = [1, 1, -1, 1];
        foreach (var result in fixture.Results)
        {
            foreach (var stay in ReadStays(result.Path))
            {
                var last = (double[])mean.Clone();
                foreach (var row in stay.Rows)
                {
                    var score = 0.0;
                    for (var k = 0; k < columns.Length; k++)
                    {
                        if (row[columns[k]].Length > 0)
                            last[k] = Math.Clamp(double.Parse(row[columns[k]], CultureInfo.InvariantCulture), mean[k] - 5 * sd[k], mean[k] + 5 * sd[k]);
                        score += sign[k] * (last[k] - mean[k]) / sd[k];
                    }
                    scores.Add(score);
                    labels.Add(row[Label] == "1");
                }
            }
        }
        var auc = Auroc(scores, labels);
        Assert.InRange(auc, 0.68, 0.9);

        // Heart rate in the labelled (pre-onset and septic) hours is higher on average.
        var hrPositive = new List<double>();
        var hrNegative = new List<double>();
        foreach (var row in fixture.Results.SelectMany(r => ReadRows(r.Path)))
        {
            if (row[FirstMeasure].Length == 0) continue;
            var hr = double.Parse(row[FirstMeasure], CultureInfo.InvariantCulture);
            if (hr is < 20 or > 300) continue;
            (row[Label] == "1" ? hrPositive : hrNegative).Add(hr);
        }
        Assert.InRange(hrPositive.Average() - hrNegative.Average(), 4, 20);
    }

    [Fact]
    public void DefaultSites_AreFourContrastingSites()
    {
        var sites = SyntheticIcuGenerator.DefaultSites(1000);
        Assert.Equal(4, sites.Count);
        Assert.Equal(4, sites.Select(s => s.SiteIndex).Distinct().Count());
        Assert.Equal(4, sites.Select(s => s.Name).Distinct().Count());
        Assert.Equal(4, sites.Select(s => s.SepsisPrevalence).Distinct().Count());
        Assert.Equal(0.09, sites.Max(s => s.SepsisPrevalence));
        Assert.Equal(0.03, sites.Min(s => s.SepsisPrevalence));
        Assert.Single(sites, s => !s.RecordsEtCO2);
        Assert.Single(sites, s => s.Patients < 1000);
        Assert.True(sites.Max(s => s.LabMissingnessMultiplier) >= 2, "one site should have heavy lab missingness");
    }

    [Fact]
    public void InvalidProfiles_AreRejected()
    {
        var ok = new SyntheticSiteProfile { SiteIndex = 0, Name = "ok", Patients = 10, SepsisPrevalence = 0.1 };
        var path = Path.Combine(fixture.Directory, "invalid", "x.csv.gz");
        Assert.ThrowsAny<ArgumentException>(() => SyntheticIcuGenerator.Generate(ok with { SiteIndex = 10 }, 1, path));
        Assert.ThrowsAny<ArgumentException>(() => SyntheticIcuGenerator.Generate(ok with { Name = "a,b" }, 1, path));
        Assert.ThrowsAny<ArgumentException>(() => SyntheticIcuGenerator.Generate(ok with { Patients = 0 }, 1, path));
        Assert.ThrowsAny<ArgumentException>(() => SyntheticIcuGenerator.Generate(ok with { SepsisPrevalence = 1.5 }, 1, path));
        Assert.ThrowsAny<ArgumentException>(() => SyntheticIcuGenerator.Generate(ok with { MissingnessMultiplier = 0 }, 1, path));
        Assert.ThrowsAny<ArgumentException>(() => SyntheticIcuGenerator.Generate(ok with { MicuShare = 0.7, SicuShare = 0.7 }, 1, path));
        Assert.False(File.Exists(path));
        Assert.Equal(10, SyntheticIcuGenerator.Generate(ok, 1, path).Patients);
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    private sealed record Stay(string Id, List<string[]> Rows);

    private static StreamReader OpenText(string path) =>
        new(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));

    private static IEnumerable<string[]> ReadRows(string path)
    {
        using var reader = OpenText(path);
        Assert.Equal(ExpectedHeader, reader.ReadLine());
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            Assert.DoesNotContain("NaN", line, StringComparison.OrdinalIgnoreCase);
            var fields = line.Split(',');
            Assert.Equal(FieldCount, fields.Length);
            yield return fields;
        }
    }

    /// <summary>Groups rows into stays, asserting that each patient's rows are contiguous.</summary>
    private static IEnumerable<Stay> ReadStays(string path)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        Stay? current = null;
        foreach (var row in ReadRows(path))
        {
            if (current is null || current.Id != row[0])
            {
                if (current is not null) yield return current;
                Assert.True(seen.Add(row[0]), $"rows of {row[0]} are not contiguous");
                current = new Stay(row[0], []);
            }
            current.Rows.Add(row);
        }
        if (current is not null) yield return current;
    }

    private static double[] MissingRates(string path)
    {
        var nonEmpty = new long[MeasureCount];
        long rows = 0;
        foreach (var row in ReadRows(path))
        {
            rows++;
            for (var j = 0; j < MeasureCount; j++)
                if (row[FirstMeasure + j].Length > 0) nonEmpty[j]++;
        }
        return nonEmpty.Select(n => 1.0 - (double)n / rows).ToArray();
    }

    private static double MeanOf(string path, int column)
    {
        var values = ReadRows(path).Where(r => r[column].Length > 0)
            .Select(r => double.Parse(r[column], CultureInfo.InvariantCulture)).Where(v => v is > 30 and < 45).ToList();
        return values.Average();
    }

    private static int Decimals(string cell)
    {
        var dot = cell.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? 0 : cell.Length - dot - 1;
    }

    private static double Auroc(IReadOnlyList<double> scores, IReadOnlyList<bool> labels)
    {
        var order = Enumerable.Range(0, scores.Count).OrderBy(i => scores[i]).ToArray();
        double rankSum = 0;
        long positives = 0;
        for (var k = 0; k < order.Length;)
        {
            var end = k;
            while (end + 1 < order.Length && scores[order[end + 1]] == scores[order[k]]) end++;
            var rank = (k + end) / 2.0 + 1;
            for (var q = k; q <= end; q++)
                if (labels[order[q]]) { rankSum += rank; positives++; }
            k = end + 1;
        }
        var negatives = order.Length - positives;
        return (rankSum - positives * (positives + 1) / 2.0) / (positives * (double)negatives);
    }
}
