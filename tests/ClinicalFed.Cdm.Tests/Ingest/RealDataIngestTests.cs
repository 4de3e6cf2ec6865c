using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Cdm.Tests.TestSupport;
using Xunit.Abstractions;

namespace ClinicalFed.Cdm.Tests.Ingest;

/// <summary>
/// Conversions of the real data sets in <c>shared/data</c> (beside the repository, never copied into it). Each test
/// returns early, with a logged message, on a machine without that data.
/// </summary>
[Trait("Category", "RealData")]
public class RealDataIngestTests(ITestOutputHelper output)
{
    private static readonly DateTimeOffset Anchor = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private void Log(string message) => output.WriteLine(message);

    // ------------------------------------------------------------------ PhysioNet 2019, hospital B

    private const int PhysioNetPatients = 300;

    private sealed record PhysioRow(string Patient, int Hour, bool Septic);

    [Fact]
    public void PhysioNet_slice_converts_every_value_and_recovers_the_sepsis_label()
    {
        var source = TestData.Find("physionet2019_sepsis/hospital_B.csv.gz", Log);
        if (source is null) return;
        var sw = Stopwatch.StartNew();
        using var tmp = new TempFolder("physionet");

        // The first PhysioNetPatients patients, written to a temp .csv.gz, counted independently as they go.
        var slice = tmp.Combine("hospital_B_slice.csv.gz");
        string[] header;
        var rows = new List<PhysioRow>();
        long nonEmptyCells = 0;
        var valueSums = new Dictionary<string, decimal>(StringComparer.Ordinal);
        var hospOffsetPatients = new HashSet<string>(StringComparer.Ordinal);
        using (var reader = new StreamReader(new GZipStream(File.OpenRead(source), CompressionMode.Decompress)))
        using (var writer = new StreamWriter(new GZipStream(File.Create(slice), CompressionLevel.Fastest)))
        {
            var headerLine = reader.ReadLine()!;
            header = headerLine.Split(',');
            writer.WriteLine(headerLine);
            int first = Array.IndexOf(header, "HR"), last = Array.IndexOf(header, "Platelets");
            int pid = Array.IndexOf(header, "patient_id"), hour = Array.IndexOf(header, "hour"), label = Array.IndexOf(header, "SepsisLabel"), hosp = Array.IndexOf(header, "HospAdmTime");
            Assert.Equal(34, last - first + 1);
            var patients = new HashSet<string>(StringComparer.Ordinal);
            string? line;
            while ((line = reader.ReadLine()) is not null)
            {
                var f = line.Split(',');
                Assert.Equal(header.Length, f.Length);
                if (patients.Add(f[pid]))
                {
                    if (patients.Count > PhysioNetPatients) break;
                    if (f[hosp].Length > 0) hospOffsetPatients.Add(f[pid]);
                }
                writer.WriteLine(line);
                rows.Add(new PhysioRow(f[pid], int.Parse(f[hour], CultureInfo.InvariantCulture), f[label] == "1"));
                for (int c = first; c <= last; c++)
                {
                    if (f[c].Length == 0) continue;
                    nonEmptyCells++;
                    valueSums[header[c]] = valueSums.GetValueOrDefault(header[c]) + decimal.Parse(f[c], NumberStyles.Float, CultureInfo.InvariantCulture);
                }
            }
        }
        Log($"slice: {rows.Count} rows, {nonEmptyCells} values, {sw.Elapsed.TotalSeconds:F1} s");

        var cdm = tmp.Combine("cdm");
        var report = CdmConverter.Convert(new ConvertOptions(slice, "B", cdm, "physionet2019"));
        Log($"converted: {string.Join(", ", report.ResourcesWritten.Select(kv => $"{kv.Key} {kv.Value}"))}, {sw.Elapsed.TotalSeconds:F1} s");

        Assert.True(report.RejectedTotal == 0, string.Join("\n", report.RejectedExamples));
        Assert.Equal(rows.Count, report.RecordsRead);
        Assert.Equal(nonEmptyCells, report.ResourcesWritten["Observation"]);
        Assert.Equal(PhysioNetPatients, report.ResourcesWritten["Patient"]);
        Assert.Equal(PhysioNetPatients + hospOffsetPatients.Count, report.ResourcesWritten["Encounter"]);

        // Read back: the same number of Observations, and per variable the same sum of values.
        var observations = CdmFiles.Observations(cdm);
        Assert.Equal(nonEmptyCells, observations.Count);
        var mapping = MappingFile.Load("physionet2019");
        var columnOfCode = mapping.Observations.ToDictionary(o => o.Code, o => o.Column);
        var sums = observations.GroupBy(o => columnOfCode[o.Code.Code]).ToDictionary(g => g.Key, g => g.Sum(o => o.Value!.Value));
        Assert.Equal(valueSums.OrderBy(kv => kv.Key, StringComparer.Ordinal), sums.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        Assert.Equal(PhysioNetPatients, CdmFiles.Patients(cdm).Count);

        // Sepsis: the Condition's onset recovers every row's label (label = row time >= onset - 6 h).
        var onsets = CdmFiles.Conditions(cdm)
            .Where(c => c.Code.System == Systems.Snomed && c.Code.Code == Systems.SepsisCode)
            .ToDictionary(c => c.PatientId, c => c.Onset!.Value);
        Assert.Equal(rows.Where(r => r.Septic).Select(r => r.Patient).Distinct().Order(), onsets.Keys.Order());
        Assert.NotEmpty(onsets);
        int mismatches = 0;
        foreach (var r in rows)
        {
            var t = Anchor.AddHours(r.Hour);
            bool recovered = onsets.TryGetValue(r.Patient, out var onset) && t >= onset.AddHours(-6);
            if (recovered != r.Septic) mismatches++;
        }
        Assert.Equal(0, mismatches);

        // Every resource of every type is valid FHIR R4 to the Firely SDK in strict mode.
        long parsed = CdmFiles.AssertAllStrictFhir(cdm);
        Assert.Equal(report.ResourcesWritten.Values.Sum(), parsed);
        Log($"strict-parsed {parsed} resources; total {sw.Elapsed.TotalSeconds:F1} s");
    }

    // ------------------------------------------------------------------ Synthea: Bulk NDJSON and Bundles

    [Fact]
    public void Synthea_bulk_and_bundles_give_the_same_cdm()
    {
        var folder = TestData.Find("synthea_r4", Log);
        if (folder is null) return;
        var bundles = Path.Combine(folder, "bundles.ndjson.gz");
        if (!File.Exists(bundles)) { Log($"SKIPPED: {bundles} does not exist"); return; }
        var sw = Stopwatch.StartNew();
        using var tmp = new TempFolder("synthea");

        var bulkCdm = tmp.Combine("bulk");
        var bulk = CdmConverter.Convert(new ConvertOptions(folder, "synthea", bulkCdm));
        Log($"bulk: {string.Join(", ", bulk.ResourcesWritten.Select(kv => $"{kv.Key} {kv.Value}"))}; rejected {bulk.RejectedTotal}; {sw.Elapsed.TotalSeconds:F1} s");
        var bundleCdm = tmp.Combine("bundles");
        var fromBundles = CdmConverter.Convert(new ConvertOptions(bundles, "synthea", bundleCdm));
        Log($"bundles: {string.Join(", ", fromBundles.ResourcesWritten.Select(kv => $"{kv.Key} {kv.Value}"))}; rejected {fromBundles.RejectedTotal}; {sw.Elapsed.TotalSeconds:F1} s");

        Assert.Equal("fhir-bulk-ndjson", bulk.InputKind);
        Assert.Contains("bundles.ndjson.gz", bulk.FilesSkipped.Keys);
        Assert.Equal(617, fromBundles.RecordsRead);
        foreach (var r in new[] { bulk, fromBundles })
        {
            Assert.Equal(615, r.ResourcesWritten["Patient"]);
            Assert.Equal(18_098, r.ResourcesWritten["Encounter"]);
            Assert.Equal(4_546, r.ResourcesWritten["Condition"]);
            Assert.Equal(22_810, r.SkippedResourceTypes["Claim"]);
            Assert.True(r.RejectedTotal == 0, string.Join("\n", r.RejectedExamples.Take(20)));
        }
        Assert.Equal(bulk.ResourcesWritten["Observation"], fromBundles.ResourcesWritten["Observation"]);
        Assert.Equal(bulk.ResourcesWritten["MedicationRequest"], fromBundles.ResourcesWritten["MedicationRequest"]);
        Assert.True(bulk.ResourcesWritten["Observation"] >= 88_674); // panels are flattened into their components

        // Same resources by id, and the bundles' urn references were rewritten to the same ids as the bulk files'.
        foreach (var type in new[] { CdmResourceType.Encounter, CdmResourceType.Condition, CdmResourceType.MedicationRequest })
        {
            var a = CdmFiles.Read(bulkCdm, type).Select(Key).Order(StringComparer.Ordinal).ToList();
            var b = CdmFiles.Read(bundleCdm, type).Select(Key).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(a, b);
        }
        var encounters = CdmFiles.Encounters(bundleCdm);
        Assert.Equal(621, encounters.Count(e => e.Class == "IMP"));
        Assert.All(encounters, e => Assert.StartsWith("Organization/", e.ServiceProvider)); // conditional references resolved
        Assert.Equal(99, encounters.Select(e => e.ServiceProvider).Distinct().Count());
        Assert.Equal(615, encounters.Select(e => e.PatientId).Distinct().Count());

        // Strict FHIR: everything but Observations in full, and a spread sample of 5,000 Observations.
        foreach (var cdm in new[] { bulkCdm, bundleCdm })
        {
            foreach (var type in new[] { CdmResourceType.Patient, CdmResourceType.Encounter, CdmResourceType.Condition, CdmResourceType.MedicationRequest })
                CdmFiles.ForEachLine(cdm, type, l => FirelyStrict.Parse(l));
            long total = bulk.ResourcesWritten["Observation"], step = Math.Max(1, total / 5000), i = 0, sampled = 0;
            CdmFiles.ForEachLine(cdm, CdmResourceType.Observation, l =>
            {
                if (i++ % step == 0 && sampled < 5000) { FirelyStrict.Parse(l); sampled++; }
            });
            Assert.Equal(5000, sampled);
        }
        Log($"total {sw.Elapsed.TotalSeconds:F1} s");
    }

    private static string Key(FhirReadResult r) => r.Encounter is { } e ? $"{e.Id}|{e.PatientId}|{e.Class}|{e.Start:O}|{e.End:O}|{e.ServiceProvider}"
        : r.Condition is { } c ? $"{c.Id}|{c.PatientId}|{c.EncounterId}|{c.Code}|{c.Onset:O}"
        : r.MedicationRequest is { } m ? $"{m.Id}|{m.PatientId}|{m.EncounterId}|{m.Medication}|{m.AuthoredOn:O}"
        : throw new InvalidOperationException(r.ResourceType);

    // ------------------------------------------------------------------ Diabetes 130, site ER

    [Fact]
    public void Diabetes_er_site_converts_the_emergency_admissions()
    {
        var source = TestData.Find("diabetes130/diabetic_data.csv.gz", Log);
        if (source is null) return;
        var sw = Stopwatch.StartNew();

        // Counted independently from the CSV: ER rows (admission_source_id 7), their patients, diagnoses given,
        // medications given (anything but "No"), and observations (counts, measured categories, the label).
        long rows = 0, erRows = 0, erDiagnoses = 0, erMedications = 0, erObservations = 0;
        var erPatients = new HashSet<string>(StringComparer.Ordinal);
        string[] counts = ["num_lab_procedures", "num_procedures", "num_medications", "number_outpatient", "number_emergency", "number_inpatient", "number_diagnoses"];
        using (var reader = new StreamReader(new GZipStream(File.OpenRead(source), CompressionMode.Decompress)))
        {
            var header = reader.ReadLine()!.Split(',');
            int src = Array.IndexOf(header, "admission_source_id"), pat = Array.IndexOf(header, "patient_nbr");
            int[] diag = [.. new[] { "diag_1", "diag_2", "diag_3" }.Select(c => Array.IndexOf(header, c))];
            int[] meds = [.. Enumerable.Range(Array.IndexOf(header, "metformin"), 23)];
            int[] numbers = [.. counts.Select(c => Array.IndexOf(header, c))];
            int[] categories = [Array.IndexOf(header, "max_glu_serum"), Array.IndexOf(header, "A1Cresult")];
            Assert.Equal("metformin-pioglitazone", header[meds[^1]]);
            Assert.DoesNotContain(-1, diag.Concat(numbers).Concat(categories));
            string? line;
            while ((line = reader.ReadLine()) is not null)
            {
                var f = line.Split(',');
                Assert.Equal(header.Length, f.Length);
                rows++;
                if (f[src] != "7") continue;
                erRows++;
                erPatients.Add(f[pat]);
                erDiagnoses += diag.Count(i => f[i] != "?");
                erMedications += meds.Count(i => f[i] != "No");
                erObservations += 1 + numbers.Count(i => f[i] != "?") + categories.Count(i => f[i] != "None");
            }
        }
        Assert.Equal(101_766, rows);

        using var tmp = new TempFolder("diabetes");
        var cdm = tmp.Combine("cdm");
        var report = CdmConverter.Convert(new ConvertOptions(source, "ER", cdm, "diabetes130"));
        Log($"ER: {erRows} rows; {string.Join(", ", report.ResourcesWritten.Select(kv => $"{kv.Key} {kv.Value}"))}; rejected {report.RejectedTotal} {string.Join(", ", report.RejectedByKind)}; {sw.Elapsed.TotalSeconds:F1} s");
        foreach (var r in report.RejectedExamples.Take(10)) Log($"  {r}");

        Assert.Empty(report.Warnings);
        Assert.Equal(erRows, report.ResourcesWritten["Encounter"]);
        Assert.Equal(rows - erRows, report.RowsOutsideSite);
        Assert.Equal(rows, report.RecordsRead);
        Assert.Equal(erPatients.Count, report.ResourcesWritten["Patient"]);
        Assert.Equal(erDiagnoses - report.RejectedByKind.GetValueOrDefault(RejectionKinds.UnknownCode), report.ResourcesWritten["Condition"]);
        Assert.Equal(erMedications, report.ResourcesWritten["MedicationRequest"]);
        Assert.Equal(erObservations, report.ResourcesWritten["Observation"]);
        Assert.Equal(erRows, CdmFiles.Observations(cdm).Count(o => o.Code.Code == Systems.ReadmissionLabelCode));
        Assert.All(CdmFiles.Encounters(cdm), e => Assert.Equal("emd", e.AdmitSource?.Code));
        Assert.True(report.RejectedTotal < erRows / 100, $"{report.RejectedTotal} rejections for {erRows} rows");
        Assert.All(report.RejectedExamples, r => Assert.False(string.IsNullOrEmpty(r.Column), r.ToString()));

        // A sample of the output is strict FHIR.
        foreach (var type in CdmResourceTypes.All)
        {
            int n = 0;
            CdmFiles.ForEachLine(cdm, type, l => { if (n++ < 2000) FirelyStrict.Parse(l); });
        }
        Log($"total {sw.Elapsed.TotalSeconds:F1} s");
    }
}
