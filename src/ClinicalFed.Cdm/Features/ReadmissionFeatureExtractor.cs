using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Data;

namespace ClinicalFed.Cdm.Features;

/// <summary>
/// 30-day readmission features: one row per inpatient encounter, from what is known at discharge. Other encounters
/// of the patient count only when they ended before this admission started (no look-ahead); the label looks forward
/// by design.
/// </summary>
internal sealed class ReadmissionFeatureExtractor(FeatureSpec spec)
{
    private sealed class Index
    {
        public required CdmEncounter Encounter;
        public readonly float[] Last;
        public readonly DateTimeOffset[] LastTime;
        public readonly int[] Level;
        public int LabObservations;
        public bool? Outcome;
        public readonly Dictionary<string, double> Reported = new(StringComparer.Ordinal);

        public Index(int measurements)
        {
            Last = new float[measurements];
            Array.Fill(Last, float.NaN);
            LastTime = new DateTimeOffset[measurements];
            Level = new int[measurements];
        }
    }

    public FeatureSummary Extract(CdmStore store, FeatureTableFile.RowCallback? onRow, Action<double>? progress)
    {
        var summary = new FeatureSummary { Task = spec.Task, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version, Columns = spec.ColumnNames };
        var patients = store.Patients().ToDictionary(p => p.Id, StringComparer.Ordinal);
        var encounters = store.Encounters();
        var byPatient = encounters.GroupBy(e => e.PatientId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.OrderBy(e => e.Start ?? DateTimeOffset.MinValue).ToList(), StringComparer.Ordinal);
        var resolver = new MeasurementResolver(spec);
        var index = new Dictionary<string, Index>(StringComparer.Ordinal);
        var order = new List<Index>();
        foreach (var e in encounters)
        {
            if (e.Class != "IMP") continue;
            if (e.PartOfEncounterId is not null) { summary.Exclude("part-of-another-encounter"); continue; }
            if (e.DischargeDisposition?.Code is "exp" or "hosp") { summary.Exclude("died-or-hospice"); continue; }
            if (e.Start is null || e.End is null) { summary.Exclude("no-admission-or-discharge-time"); continue; }
            var ix = new Index(resolver.Count) { Encounter = e };
            index[e.Id] = ix;
            order.Add(ix);
        }
        progress?.Invoke(0.1);
        var conditions = store.Conditions();
        var condByEncounter = conditions.Where(c => c.EncounterId is not null).GroupBy(c => c.EncounterId!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var condByPatient = conditions.GroupBy(c => c.PatientId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var meds = store.MedicationRequests().Where(m => m.EncounterId is not null && index.ContainsKey(m.EncounterId)).GroupBy(m => m.EncounterId!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var reportedCodes = new HashSet<string>(spec.Columns.SelectMany(c => c.Codes ?? []).Where(c => c.StartsWith(Systems.ClinicalFed + "|", StringComparison.Ordinal)).Select(c => c[(Systems.ClinicalFed.Length + 1)..]), StringComparer.Ordinal);
        store.Read(CdmResourceType.Observation, r =>
        {
            foreach (var o in r.Observations)
            {
                if (o.EncounterId is null || !index.TryGetValue(o.EncounterId, out var ix)) continue;
                if (o.Code.System == Systems.ClinicalFed)
                {
                    if (o.Code.Code == Systems.ReadmissionLabelCode && o.ValueBoolean is { } b) ix.Outcome = b;
                    else if (reportedCodes.Contains(o.Code.Code) && o.Value is { } rv) ix.Reported[o.Code.Code] = (double)rv;
                    continue;
                }
                if (o.Category == "laboratory") ix.LabObservations++;
                int m = resolver.Find(o);
                if (m < 0) continue;
                var t = o.Effective ?? ix.Encounter.Start!.Value;
                int level = o.Interpretation switch { "H" or "L" or "A" => 1, "HH" or "LL" or "AA" => 2, _ => 0 };
                if (level > ix.Level[m]) ix.Level[m] = level;
                double v = o.Value is null ? double.NaN : resolver.Value(m, o);
                if (o.Value is null) resolver.Quality[m].Used++; // categorical result: measured, no number
                if (ix.LastTime[m] == default || t >= ix.LastTime[m])
                {
                    ix.LastTime[m] = t;
                    if (!double.IsNaN(v)) ix.Last[m] = (float)v;
                }
            }
        }, progress: f => progress?.Invoke(0.1 + 0.6 * f));

        var cols = spec.Columns.ToArray();
        var measIndex = cols.Select(c => c.Measurement is null ? -1 : spec.Measurements.ToList().FindIndex(m => m.Name == c.Measurement)).ToArray();
        var colCharlson = cols.Select(c => c.Kind == "charlson-condition" ? Enum.Parse<CharlsonCondition>(c.Code!) : (CharlsonCondition?)null).ToArray();
        var row = new float[cols.Length];
        var missing = new long[cols.Length];
        var measuredRows = new long[resolver.Count];
        var patientsSeen = new HashSet<string>(StringComparer.Ordinal);
        var charlson = new CharlsonAccumulator();
        long rows = 0, positives = 0;
        var window = TimeSpan.FromDays(spec.Label.WindowDays > 0 ? spec.Label.WindowDays : 30);
        foreach (var ix in order)
        {
            var e = ix.Encounter;
            var start = e.Start!.Value;
            var end = e.End!.Value;
            patients.TryGetValue(e.PatientId, out var patient);
            var history = byPatient[e.PatientId];
            // Label: recorded outcome, else another top-level inpatient admission starting within the window.
            bool label;
            if (ix.Outcome is { } outcome) { label = outcome; Count(summary.LabelSource, "recorded-outcome"); }
            else
            {
                label = history.Any(o => o.Id != e.Id && o.Class == "IMP" && o.PartOfEncounterId is null && o.Start is { } s2 && s2 >= end && s2 - end < window);
                Count(summary.LabelSource, "derived-from-encounters");
            }
            // Conditions known at discharge: this encounter's, and those of encounters that ended before admission.
            charlson.Reset();
            var ownDx = condByEncounter.GetValueOrDefault(e.Id) ?? [];
            foreach (var c in ownDx) AddCharlson(charlson, c);
            if (condByPatient.TryGetValue(e.PatientId, out var pdx))
                foreach (var c in pdx)
                {
                    if (c.EncounterId == e.Id) continue;
                    DateTimeOffset? known = c.EncounterId is { } ce && history.Find(h => h.Id == ce) is { } he ? he.End : c.Recorded ?? c.Onset;
                    if (known is { } k && k < start) AddCharlson(charlson, c);
                }
            var primary = ownDx.Where(c => Charlson.IcdVersionFromSystem(c.Code.System) is not null).OrderBy(c => c.Rank ?? int.MaxValue).FirstOrDefault();
            var primaryChapter = primary is null ? null : Charlson.DiagnosisGroup(primary.Code);
            var encMeds = meds.GetValueOrDefault(e.Id) ?? [];
            for (int c = 0; c < cols.Length; c++)
            {
                var col = cols[c];
                int m = measIndex[c];
                row[c] = col.Kind switch
                {
                    "age" => patient?.BirthDate is { } bd ? (float)((start.UtcDateTime - bd.ToDateTime(TimeOnly.MinValue)).TotalDays / 365.25) : float.NaN,
                    "male" => patient?.Gender switch { "male" => 1, "female" => 0, _ => float.NaN },
                    "length-of-stay-days" => (float)(end - start).TotalDays,
                    "acute-admission" => IsAcute(e, history) ? 1 : 0,
                    "prior-visits" => Reported(ix, col) ?? history.Count(o => o.Id != e.Id && o.Class == col.Code && o.End is { } oe && oe <= start && o.Start >= start.AddDays(-365)),
                    "charlson-index" => charlson.Index,
                    "charlson-condition" => charlson.Conditions.Contains(colCharlson[c]!.Value) ? 1 : 0,
                    "diagnosis-count" => Reported(ix, col) ?? ownDx.Count,
                    "primary-diagnosis-chapter" => primaryChapter == col.Code ? 1 : 0,
                    "last" => ix.Last[m],
                    "measured" => ix.LastTime[m] != default ? 1 : 0,
                    "abnormal-level" => ix.Level[m],
                    "reported-count" => Reported(ix, col) ?? (col.Codes?.Any(x => x.EndsWith("|lab-test-count", StringComparison.Ordinal)) == true ? ix.LabObservations : 0),
                    "medication-count" => Reported(ix, col) ?? encMeds.Select(x => x.Medication.Code).Distinct().Count(),
                    "dose-change-count" => encMeds.Count(x => x.DoseChange is "up" or "down"),
                    "medication" => encMeds.Any(x => col.Codes!.Contains(x.Medication.System + "|" + x.Medication.Code)) ? 1 : 0,
                    "discharge-disposition" => e.DischargeDisposition?.Code == col.Code ? 1 : 0,
                    "admit-source" => e.AdmitSource is { } a && (col.Codes ?? [col.Code!]).Contains(a.Code) ? 1 : 0,
                    _ => throw new CdmException($"column kind '{col.Kind}' is not implemented for readmission"),
                };
                if (float.IsNaN(row[c])) missing[c]++;
            }
            for (int m = 0; m < resolver.Count; m++) if (ix.LastTime[m] != default) measuredRows[m]++;
            rows++;
            if (label) positives++;
            patientsSeen.Add(e.PatientId);
            onRow?.Invoke(new RowKey(e.PatientId, e.Id, 0), label ? 1 : 0, row);
        }
        summary.Rows = rows;
        summary.Positives = positives;
        summary.Encounters = rows;
        summary.PositiveEncounters = positives;
        summary.Prevalence = rows == 0 ? 0 : (double)positives / rows;
        summary.Patients = patientsSeen.Count;
        for (int c = 0; c < cols.Length; c++) summary.ColumnMissingFraction[cols[c].Name] = rows == 0 ? 0 : Math.Round((double)missing[c] / rows, 6);
        for (int m = 0; m < resolver.Count; m++) resolver.Quality[m].RowsMeasuredFraction = rows == 0 ? 0 : Math.Round((double)measuredRows[m] / rows, 6);
        summary.Measurements.AddRange(resolver.Quality);
        progress?.Invoke(1);
        return summary;
    }

    private static void Count(SortedDictionary<string, long> d, string key) => d[key] = d.GetValueOrDefault(key) + 1;

    private static float? Reported(Index ix, FeatureSpec.Column col)
    {
        if (col.Codes is null) return null;
        foreach (var c in col.Codes)
        {
            var bar = c.IndexOf('|');
            if (c.AsSpan(0, bar).SequenceEqual(Systems.ClinicalFed) && ix.Reported.TryGetValue(c[(bar + 1)..], out var v)) return (float)v;
        }
        return null;
    }

    private static void AddCharlson(CharlsonAccumulator acc, CdmCondition c)
    {
        if (Charlson.IcdVersionFromSystem(c.Code.System) is { } v) acc.Add(c.Code.Code, v);
        foreach (var a in c.AdditionalCodes)
            if (Charlson.IcdVersionFromSystem(a.System) is { } av) acc.Add(a.Code, av);
    }

    private static bool IsAcute(CdmEncounter e, List<CdmEncounter> history)
    {
        if (e.Priority is "EM" or "UR") return true;
        if (e.AdmitSource?.Code == "emd") return true;
        var start = e.Start!.Value;
        return history.Any(o => o.Class == "EMER" && o.End is { } oe && oe <= start.AddHours(1) && oe >= start.AddHours(-24));
    }
}
