using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;
using ClinicalFed.Data;

namespace ClinicalFed.Cdm.Features;

/// <summary>
/// Hourly sepsis features: one row per hour of each ICU stay, built only from what was observed up to the end of that
/// hour. Observations are read once, streaming, into compact (stay, hour, measurement, second) keys that sort in one
/// pass; rows are then produced stay by stay, so memory is O(observations × 12 bytes), never O(rows × columns).
/// </summary>
internal sealed class SepsisFeatureExtractor(FeatureSpec spec)
{
    private sealed class Stay
    {
        public required CdmEncounter Encounter;
        public DateTimeOffset Start, IcuAdmission;
        public int Hours;
        public DateTimeOffset? SepsisOnset;
        public double HospitalOffsetHours = double.NaN;
    }

    public FeatureSummary Extract(CdmStore store, FeatureTableFile.RowCallback? onRow, Action<double>? progress)
    {
        var summary = new FeatureSummary { Task = spec.Task, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version, Columns = spec.ColumnNames };
        var patients = store.Patients().ToDictionary(p => p.Id, StringComparer.Ordinal);
        var encounters = store.Encounters();
        var byId = encounters.ToDictionary(e => e.Id, StringComparer.Ordinal);
        var stays = new List<Stay>();
        var stayIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var e in encounters)
        {
            if (!e.IsIcuStay) continue;
            if (e.Start is not { } start || e.End is not { } end) { summary.Exclude("icu-stay-without-period"); continue; }
            var hours = (int)Math.Ceiling((end - start).TotalHours - 1e-9);
            if (hours <= 0) { summary.Exclude("icu-stay-shorter-than-an-hour"); continue; }
            var stay = new Stay { Encounter = e, Start = start, IcuAdmission = e.IcuAdmission ?? start, Hours = Math.Min(hours, 65535) };
            if (e.PartOfEncounterId is { } parent && byId.TryGetValue(parent, out var p) && p.Start is { } hs)
                stay.HospitalOffsetHours = (hs - stay.IcuAdmission).TotalHours;
            stayIndex[e.Id] = stays.Count;
            stays.Add(stay);
        }
        if (stays.Count >= 1 << 23) throw new CdmException("more than 8 million ICU stays in one CDM; split the site");
        foreach (var c in store.Conditions())
        {
            if (c.Code.System != Systems.Snomed || c.Code.Code != Systems.SepsisCode || c.Onset is not { } onset) continue;
            if (c.EncounterId is { } eid && stayIndex.TryGetValue(eid, out var si))
            {
                var s = stays[si];
                if (s.SepsisOnset is null || onset < s.SepsisOnset) s.SepsisOnset = onset;
            }
        }
        progress?.Invoke(0.05);

        // One streaming pass over Observations → packed keys: stay(23 bits) | hour(16) | measurement(8) | second in hour(12).
        var resolver = new MeasurementResolver(spec);
        if (resolver.Count > 255) throw new CdmException("a sepsis feature spec may define at most 255 measurements");
        var keys = new long[1 << 8]; // grows by doubling: small for one bedside patient, no cost for a site
        var vals = new float[1 << 8];
        int n = 0;
        store.Read(CdmResourceType.Observation, r =>
        {
            foreach (var o in r.Observations)
            {
                if (o.EncounterId is null || !stayIndex.TryGetValue(o.EncounterId, out var si)) continue;
                int m = resolver.Find(o);
                if (m < 0 || o.Effective is not { } t) continue;
                var stay = stays[si];
                double offset = (t - stay.Start).TotalSeconds;
                // Outside the stay's recorded hours (before its start or after its end): counted, not used — a value
                // from before the stay would otherwise look freshly measured in hour 0. Checked before Value(), so
                // such a value is not in the measurement's min/max either.
                if (offset < 0 || offset >= stay.Hours * 3600.0) { resolver.Quality[m].OutsideStay++; continue; }
                int hour = (int)(offset / 3600);
                double v = resolver.Value(m, o);
                if (double.IsNaN(v)) continue;
                int sec = (int)(offset - hour * 3600.0);
                if (n == keys.Length) { Array.Resize(ref keys, n * 2); Array.Resize(ref vals, n * 2); }
                keys[n] = ((long)si << 36) | ((long)hour << 20) | ((long)m << 12) | (long)Math.Min(sec, 4095);
                vals[n++] = (float)v;
            }
        }, progress: f => progress?.Invoke(0.05 + 0.6 * f));
        Array.Sort(keys, vals, 0, n);
        progress?.Invoke(0.7);

        // Rows, stay by stay.
        var cols = spec.Columns.ToArray();
        int mCount = resolver.Count;
        var colMeasurement = cols.Select(c => c.Measurement is null ? -1 : spec.Measurements.ToList().FindIndex(m => m.Name == c.Measurement)).ToArray();
        var last = new float[mCount];
        var lastHour = new int[mCount];
        var measuredHours = new long[mCount];
        var row = new float[cols.Length];
        var missing = new long[cols.Length];
        var patientsSeen = new HashSet<string>(StringComparer.Ordinal);
        int k = 0;
        long rows = 0, positives = 0;
        var measuredThisHour = new bool[mCount];
        for (int si = 0; si < stays.Count; si++)
        {
            var stay = stays[si];
            var enc = stay.Encounter;
            patients.TryGetValue(enc.PatientId, out var patient);
            patientsSeen.Add(enc.PatientId);
            Array.Fill(last, float.NaN);
            Array.Fill(lastHour, -1);
            float age = patient?.BirthDate is { } bd ? (float)((stay.IcuAdmission.UtcDateTime - bd.ToDateTime(TimeOnly.MinValue)).TotalDays / 365.25) : float.NaN;
            float male = patient?.Gender switch { "male" => 1, "female" => 0, _ => float.NaN };
            double icuOffsetHours = (stay.Start - stay.IcuAdmission).TotalHours;
            summary.Encounters++;
            if (stay.SepsisOnset is not null) summary.PositiveEncounters++;
            summary.LabelSource[stay.SepsisOnset is null ? "no-sepsis-condition" : "sepsis-condition-onset"] = summary.LabelSource.GetValueOrDefault(stay.SepsisOnset is null ? "no-sepsis-condition" : "sepsis-condition-onset") + 1;
            for (int h = 0; h < stay.Hours; h++)
            {
                Array.Clear(measuredThisHour);
                while (k < n && (keys[k] >> 36) == si && ((keys[k] >> 20) & 0xFFFF) == h)
                {
                    int m = (int)((keys[k] >> 12) & 0xFF);
                    last[m] = vals[k];
                    lastHour[m] = h;
                    measuredThisHour[m] = true;
                    k++;
                }
                for (int m = 0; m < mCount; m++) if (measuredThisHour[m]) measuredHours[m]++;
                var rowTime = stay.Start.AddHours(h);
                float icuHours = (float)(icuOffsetHours + h + 1);
                for (int c = 0; c < cols.Length; c++)
                {
                    int m = colMeasurement[c];
                    row[c] = cols[c].Kind switch
                    {
                        "last" => last[m],
                        "measured" => lastHour[m] >= 0 ? 1 : 0,
                        "hours-since" => lastHour[m] >= 0 ? h - lastHour[m] : icuHours,
                        "age" => age,
                        "male" => male,
                        "encounter-type" => HasType(enc, cols[c].Code!) ? 1 : 0,
                        "hospital-admission-offset-hours" => (float)stay.HospitalOffsetHours,
                        "icu-hours" => icuHours,
                        _ => throw new CdmException($"column kind '{cols[c].Kind}' is not implemented for sepsis"),
                    };
                    if (float.IsNaN(row[c])) missing[c]++;
                }
                float label = stay.SepsisOnset is { } onset && rowTime >= onset.AddHours(-spec.Label.LeadHours) ? 1 : 0;
                rows++;
                if (label > 0) positives++;
                onRow?.Invoke(new RowKey(enc.PatientId, enc.Id, h), label, row);
            }
            // Keys of this stay beyond its hours were counted as outside the stay already; skip any leftovers.
            while (k < n && (keys[k] >> 36) == si) k++;
            if ((si & 1023) == 0) progress?.Invoke(0.7 + 0.3 * si / stays.Count);
        }
        summary.Rows = rows;
        summary.Positives = positives;
        summary.Prevalence = rows == 0 ? 0 : (double)positives / rows;
        summary.Patients = patientsSeen.Count;
        for (int c = 0; c < cols.Length; c++) summary.ColumnMissingFraction[cols[c].Name] = rows == 0 ? 0 : Math.Round((double)missing[c] / rows, 6);
        for (int m = 0; m < mCount; m++) resolver.Quality[m].RowsMeasuredFraction = rows == 0 ? 0 : Math.Round((double)measuredHours[m] / rows, 6);
        summary.Measurements.AddRange(resolver.Quality);
        progress?.Invoke(1);
        return summary;
    }

    private static bool HasType(CdmEncounter e, string code)
    {
        var bar = code.IndexOf('|');
        var system = code[..bar];
        var c = code.AsSpan(bar + 1);
        foreach (var t in e.Types) if (t.System == system && c.SequenceEqual(t.Code)) return true;
        return false;
    }
}
