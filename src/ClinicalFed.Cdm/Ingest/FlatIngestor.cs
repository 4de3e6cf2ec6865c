using System.Globalization;
using System.Text;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Ingest;

/// <summary>
/// Converts flat EHR extracts described by a <see cref="MappingFile"/> into the CDM, streaming: rows are read one at
/// a time, each stay's rows must be contiguous (as in every EHR export sorted by patient and stay), and only the
/// current stay is held in memory. Bad cells and rows are counted in the report with file, line and column; a
/// missing column is an error before anything is written.
/// </summary>
public sealed partial class FlatIngestor
{
    private readonly MappingFile _m;
    private readonly CdmWriter _w;
    private readonly ConversionReport _report;
    private readonly string? _site;
    private readonly HashSet<string> _missing;
    private readonly HashSet<string> _patientsWritten = new(StringComparer.Ordinal);
    private readonly HashSet<string> _staysDone = new(StringComparer.Ordinal);
    private readonly string[] _slugs;
    private readonly string[] _medSlugs;

    public FlatIngestor(MappingFile mapping, CdmWriter writer, ConversionReport report, string? site)
    {
        _m = mapping; _w = writer; _report = report;
        _missing = new HashSet<string>(mapping.Source.MissingValues, StringComparer.Ordinal);
        _slugs = mapping.Observations.Select(o => Slug(o.Column)).ToArray();
        _medSlugs = mapping.Medications.Select(o => Slug(o.Column)).ToArray();
        if (site is not null && mapping.Sites.Count > 0 && !mapping.Sites.ContainsKey(site))
            report.Warnings.Add($"mapping '{mapping.Name}' defines sites {string.Join(", ", mapping.Sites.Keys)}; '{site}' is none of them, so every row is converted");
        _site = site is not null && mapping.Sites.ContainsKey(site) ? site : null;
    }

    /// <summary>Progress as the fraction of input bytes consumed (compressed bytes for gzip files).</summary>
    public Action<double>? Progress { get; init; }

    public void Ingest(string input)
    {
        if (Directory.Exists(input))
        {
            var per = _m.Source.PerPatientFiles ?? throw new CdmException($"{input}: is a folder, but mapping '{_m.Name}' has no source.per_patient_files section");
            var files = Directory.GetFiles(input, per.Pattern, SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0) throw new CdmException($"{input}: no files match '{per.Pattern}'");
            for (int i = 0; i < files.Length; i++)
            {
                IngestFile(files[i], (byte)per.Delimiter[0], Path.GetFileNameWithoutExtension(files[i]));
                if (i % 200 == 0) Progress?.Invoke((double)i / files.Length);
            }
        }
        else if (File.Exists(input)) IngestFile(input, (byte)_m.Source.Delimiter[0], null);
        else throw new CdmException($"{input}: no such file or folder");
        Progress?.Invoke(1);
    }

    private sealed class Columns
    {
        public int PatientId = -1, EncounterId = -1, Time = -1, IcuHours = -1, HospOffset = -1, Los = -1, Gender = -1, Age = -1;
        public int Priority = -1, AdmitSource = -1, Discharge = -1, SiteColumn = -1;
        public int[] Types = [], Obs = [], Dx = [], Meds = [], Labels = [];
        public Dictionary<string, int> SiteColumns = [];
    }

    private void IngestFile(string path, byte delimiter, string? patientFromFileName)
    {
        var name = Path.GetFileName(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        using var reader = new NdjsonLineReader(OpenMaybeGzip(fs));
        if (patientFromFileName is null || _report.FilesRead.Count < 20) _report.FilesRead.Add(name);
        if (!reader.TryReadLine(out var headerLine)) throw new CdmException($"{path}: the file is empty (no header line)");
        var header = Encoding.UTF8.GetString(headerLine).Split((char)delimiter).Select(h => h.Trim().Trim('"')).ToArray();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < header.Length; i++) index.TryAdd(header[i], i);
        bool perPatient = patientFromFileName is not null;
        var lacking = _m.RequiredColumns(perPatient).Where(c => !index.ContainsKey(c.Column)).ToList();
        if (lacking.Count > 0)
            throw new CdmException($"{path}: line 1: the header lacks {lacking.Count} column(s) that mapping '{_m.Name}' names: " +
                                   string.Join(", ", lacking.Select(c => $"'{c.Column}' ({c.Field})")));
        int Col(string? c) => c is not null && index.TryGetValue(c, out var i) ? i : -1;
        var cols = new Columns
        {
            PatientId = perPatient ? -1 : Col(_m.Patient.IdColumn), EncounterId = Col(_m.Encounter.IdColumn), Time = Col(_m.Encounter.Time.Column),
            IcuHours = Col(_m.Encounter.IcuHoursColumn), HospOffset = Col(_m.Encounter.HospitalAdmissionOffsetHoursColumn),
            Los = Col(_m.Encounter.LengthOfStay?.Column), Gender = Col(_m.Patient.Gender?.Column), Age = Col(_m.Patient.Age?.Column),
            Priority = Col(_m.Encounter.Priority?.Column), AdmitSource = Col(_m.Encounter.AdmitSource?.Column), Discharge = Col(_m.Encounter.DischargeDisposition?.Column),
            Types = _m.Encounter.Types.Select(t => Col(t.Column)).ToArray(), Obs = _m.Observations.Select(o => Col(o.Column)).ToArray(),
            Dx = _m.Diagnoses.Select(d => Col(d.Column)).ToArray(), Meds = _m.Medications.Select(d => Col(d.Column)).ToArray(),
            Labels = _m.Labels.Select(l => Col(l.Column)).ToArray(),
        };
        foreach (var (siteName, sel) in _m.Sites)
            if (sel.Column is not null)
                cols.SiteColumns[siteName] = Col(sel.Column) is var sc and >= 0 ? sc : throw new CdmException($"{path}: line 1: the header lacks column '{sel.Column}' (sites.{siteName}.column)");

        var row = new DelimitedRow();
        Stay? stay = null;
        long rowIndexInFile = 0;
        long lastProgress = 0;
        while (reader.TryReadLine(out var line))
        {
            if (line.IsEmpty) continue;
            _report.RecordsRead++;
            long lineNo = reader.LineNumber;
            row.Load(line, delimiter);
            if (row.Count != header.Length)
            {
                _report.Reject(name, lineNo, RejectionKinds.MalformedRow, $"{row.Count} fields where the header has {header.Length}");
                continue;
            }
            if (_site is not null && SiteOf(row, cols) != _site) { _report.RowsOutsideSite++; continue; }

            string patientId = perPatient ? patientFromFileName! : row.GetString(cols.PatientId);
            if (patientId.Length == 0 || _missing.Contains(patientId)) { _report.Reject(name, lineNo, RejectionKinds.MissingRequired, "no patient id", _m.Patient.IdColumn); continue; }
            patientId = _m.Patient.IdPrefix + patientId;
            string encKey = cols.EncounterId >= 0 ? row.GetString(cols.EncounterId) : "";
            if (stay is null || stay.PatientId != patientId || stay.Key != encKey)
            {
                if (stay is not null) Finish(stay, name);
                var encId = cols.EncounterId >= 0 ? _m.Encounter.IdPrefix + encKey + _m.Encounter.IdSuffix : patientId + _m.Encounter.IdSuffix;
                if (!IsFhirId(encId) || !IsFhirId(patientId))
                {
                    _report.Reject(name, lineNo, RejectionKinds.InvalidValue, "patient or stay id is not a valid FHIR id ([A-Za-z0-9-.]{1,64})", _m.Patient.IdColumn);
                    stay = null;
                    continue;
                }
                if (!_staysDone.Add(patientId + "\u0001" + encKey))
                    throw new CdmException($"{path}: line {lineNo}: rows of stay '{encId}' appear again after other stays; the extract must be grouped by patient and stay (sort it by them)");
                stay = new Stay { PatientId = patientId, Key = encKey, EncounterId = encId, FirstLine = lineNo };
                rowIndexInFile = 0;
                // A stay whose first row has no valid time starts at its next row (the row is rejected, not the file).
                if (!StartStay(stay, row, cols, name, lineNo)) { _staysDone.Remove(patientId + "\u0001" + encKey); stay = null; continue; }
            }
            ProcessRow(stay, row, cols, name, lineNo, rowIndexInFile++);
            if (Progress is not null && fs.Position - lastProgress > (1 << 20) && patientFromFileName is null)
            {
                lastProgress = fs.Position;
                Progress((double)fs.Position / Math.Max(1, fs.Length));
            }
        }
        if (stay is not null) Finish(stay, name);
    }

    private static Stream OpenMaybeGzip(FileStream fs)
    {
        Span<byte> magic = stackalloc byte[2];
        int n = fs.Read(magic);
        fs.Position = 0;
        return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b ? new System.IO.Compression.GZipStream(fs, System.IO.Compression.CompressionMode.Decompress, leaveOpen: true) : fs;
    }

    private string? SiteOf(DelimitedRow row, Columns cols)
    {
        string? otherwise = null;
        foreach (var (name, sel) in _m.Sites)
        {
            if (sel.Otherwise) { otherwise = name; continue; }
            var v = row[cols.SiteColumns[name]];
            foreach (var candidate in sel.Values)
                if (v.SequenceEqual(Encoding.UTF8.GetBytes(candidate))) return name;
        }
        return otherwise;
    }

    private sealed class Stay
    {
        public required string PatientId, Key, EncounterId;
        public long FirstLine;
        public DateTimeOffset Start, LastRowTime;
        public DateTimeOffset? IcuAdmission, HospitalAdmission, ExplicitEnd;
        public DateTimeOffset? SepsisFlagTime;
        public int SepsisLabelIndex = -1;
        public int Rows;
        public CdmEncounter? Encounter;
        public bool? Readmitted;
    }

    private DateTimeOffset? RowTime(DelimitedRow row, Columns cols, string file, long line, long rowIndex, out bool ok)
    {
        ok = true;
        switch (_m.Encounter.Time.Kind)
        {
            case "hour-offset":
                if (cols.Time < 0) return _m.Anchor.AddHours(rowIndex);
                if (DelimitedRow.TryParseDecimal(row[cols.Time], out var h)) return _m.Anchor.AddHours((double)h);
                break;
            case "timestamp":
                var s = row[cols.Time];
                if (FhirDateTime.TryParse(s, out var t)) return t;
                if (DateTimeOffset.TryParse(Encoding.UTF8.GetString(s), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out t)) return t;
                break;
            default:
                return null;
        }
        ok = false;
        _report.Reject(file, line, RejectionKinds.InvalidValue, $"time '{Encoding.UTF8.GetString(row[cols.Time])}' is not a {_m.Encounter.Time.Kind}", _m.Encounter.Time.Column);
        return null;
    }

    private bool StartStay(Stay s, DelimitedRow row, Columns cols, string file, long line)
    {
        var t0 = RowTime(row, cols, file, line, 0, out bool ok);
        if (!ok) return false;
        s.Start = t0 ?? _m.Anchor;
        if (cols.IcuHours >= 0 && DelimitedRow.TryParseDecimal(row[cols.IcuHours], out var icuHours))
            s.IcuAdmission = s.Start.AddHours(-((double)icuHours - 1));
        var icu = s.IcuAdmission ?? s.Start;
        if (cols.HospOffset >= 0 && !IsMissing(row[cols.HospOffset]))
        {
            if (DelimitedRow.TryParseDecimal(row[cols.HospOffset], out var off)) s.HospitalAdmission = icu.AddHours((double)off);
            else _report.Reject(file, line, RejectionKinds.InvalidValue, "not a number", _m.Encounter.HospitalAdmissionOffsetHoursColumn);
        }
        if (cols.Los >= 0 && !IsMissing(row[cols.Los]))
        {
            if (DelimitedRow.TryParseDecimal(row[cols.Los], out var los) && los >= 0)
                s.ExplicitEnd = _m.Encounter.LengthOfStay!.Unit == "d" ? s.Start.AddDays((double)los) : s.Start.AddHours((double)los);
            else _report.Reject(file, line, RejectionKinds.InvalidValue, "length of stay is not a non-negative number", _m.Encounter.LengthOfStay!.Column);
        }

        if (!_patientsWritten.Contains(s.PatientId))
        {
            _patientsWritten.Add(s.PatientId);
            string? gender = null;
            if (cols.Gender >= 0 && !IsMissing(row[cols.Gender]))
            {
                var g = row.GetString(cols.Gender);
                if (!_m.Patient.Gender!.Map.TryGetValue(g, out gender))
                    _report.Reject(file, line, RejectionKinds.UnknownCode, $"gender value '{g}' is not in the mapping", _m.Patient.Gender.Column);
            }
            DateOnly? birth = null;
            if (cols.Age >= 0 && !IsMissing(row[cols.Age]))
            {
                double? age = null;
                var a = row[cols.Age];
                if (_m.Patient.Age!.Kind == "years" && DelimitedRow.TryParseDecimal(a, out var y)) age = (double)y;
                else if (_m.Patient.Age.Kind == "band" && TryBandMidpoint(Encoding.UTF8.GetString(a), out var mid)) age = mid;
                if (age is { } yrs && yrs is >= 0 and < 150) birth = DateOnly.FromDateTime(icu.UtcDateTime.AddDays(-yrs * 365.25));
                else _report.Reject(file, line, RejectionKinds.InvalidValue, $"age '{Encoding.UTF8.GetString(a)}' is not valid ({_m.Patient.Age.Kind})", _m.Patient.Age.Column);
            }
            _w.Write(new CdmPatient { Id = s.PatientId, Gender = gender, BirthDate = birth });
        }

        var types = new List<CdmCoding>();
        if (_m.Encounter.IcuStay) types.Add(new CdmCoding(Systems.Snomed, Systems.IcuStayCode, "Admission to intensive care unit"));
        for (int i = 0; i < cols.Types.Length; i++)
        {
            var tf = _m.Encounter.Types[i];
            if (row.Equals(cols.Types[i], tf.When)) types.Add(new CdmCoding(tf.System, tf.Code, tf.Display));
        }
        s.Encounter = new CdmEncounter
        {
            Id = s.EncounterId, PatientId = s.PatientId, Class = _m.Encounter.Class, Types = types,
            Priority = MapValue(_m.Encounter.Priority, cols.Priority, row, file, line),
            AdmitSource = MapValue(_m.Encounter.AdmitSource, cols.AdmitSource, row, file, line) is { } ad ? new CdmCoding(Systems.AdmitSource, ad) : null,
            DischargeDisposition = MapValue(_m.Encounter.DischargeDisposition, cols.Discharge, row, file, line) is { } dd ? new CdmCoding(Systems.DischargeDisposition, dd) : null,
            PartOfEncounterId = s.HospitalAdmission is null ? null : s.EncounterId + "-hospital",
            IcuAdmission = s.IcuAdmission is { } ia && ia != s.Start ? ia : null,
        };

        // Per-stay facts from the first row: diagnoses, medications, encounter-level labels.
        for (int i = 0; i < cols.Dx.Length; i++)
        {
            var dx = _m.Diagnoses[i];
            var v = row[cols.Dx[i]];
            if (IsMissing(v)) continue;
            var raw = Encoding.UTF8.GetString(v).Trim();
            var code = NormalizeIcd(raw, dx.CodeSystem);
            if (code is null) { _report.Reject(file, line, RejectionKinds.UnknownCode, $"'{raw}' is not a well-formed {dx.CodeSystem} code", dx.Column); continue; }
            _w.Write(new CdmCondition
            {
                Id = $"{s.EncounterId}-dx{i + 1}", PatientId = s.PatientId, EncounterId = s.EncounterId,
                Code = new CdmCoding(MappingFile.IcdSystem(dx.CodeSystem)!, code), Rank = dx.Rank, Recorded = s.Start,
            });
        }
        for (int i = 0; i < cols.Meds.Length; i++)
        {
            var med = _m.Medications[i];
            var v = row[cols.Meds[i]];
            if (IsMissing(v)) continue;
            var value = Encoding.UTF8.GetString(v);
            if (med.AbsentValues.Contains(value)) continue;
            string? change = null;
            if (med.DoseChange.Count > 0 && !med.DoseChange.TryGetValue(value, out change))
            {
                _report.Reject(file, line, RejectionKinds.UnknownCode, $"medication value '{value}' is neither absent nor a dose change in the mapping", med.Column);
                continue;
            }
            _w.Write(new CdmMedicationRequest
            {
                Id = $"{s.EncounterId}-rx-{_medSlugs[i]}", PatientId = s.PatientId, EncounterId = s.EncounterId,
                Medication = new CdmCoding(med.System, med.Code, med.Display), AuthoredOn = s.Start, DoseChange = change,
            });
        }
        for (int i = 0; i < cols.Labels.Length; i++)
        {
            var l = _m.Labels[i];
            if (l.Kind != "readmission-30d") continue;
            var v = row.GetString(cols.Labels[i]);
            if (l.Positive.Contains(v)) s.Readmitted = true;
            else if (l.Negative.Contains(v)) s.Readmitted = false;
            else _report.Reject(file, line, RejectionKinds.UnknownCode, $"label value '{v}' is neither positive nor negative in the mapping", l.Column);
        }
        return true;
    }

    private void ProcessRow(Stay s, DelimitedRow row, Columns cols, string file, long line, long rowIndex)
    {
        DateTimeOffset t;
        if (_m.Encounter.Time.Kind == "none") t = s.Start;
        else
        {
            var rt = RowTime(row, cols, file, line, rowIndex, out bool ok);
            if (!ok) return;
            t = rt!.Value;
        }
        s.LastRowTime = t;
        int r = s.Rows++;
        var rowSuffix = _m.Encounter.Time.Kind == "none" ? "" : "-" + r.ToString(CultureInfo.InvariantCulture);
        for (int i = 0; i < cols.Obs.Length; i++)
        {
            var v = row[cols.Obs[i]];
            if (IsMissing(v)) continue;
            var o = _m.Observations[i];
            if (o.Interpretations is { } interp)
            {
                var key = Encoding.UTF8.GetString(v);
                if (!interp.TryGetValue(key, out var code)) { _report.Reject(file, line, RejectionKinds.UnknownCode, $"value '{key}' is not among the mapping's categories", o.Column); continue; }
                if (code is null) continue; // the source says "not measured"
                _w.Write(new CdmObservation
                {
                    Id = s.EncounterId + "-" + _slugs[i] + rowSuffix, PatientId = s.PatientId, EncounterId = s.EncounterId, Category = o.Category,
                    Code = new CdmCoding(o.System, o.Code, o.Display), Effective = t, Interpretation = code,
                    ValueCode = new CdmCoding(Systems.ClinicalFed + "/source-value", key),
                });
                continue;
            }
            if (!DelimitedRow.TryParseDecimal(v, out var value))
            {
                _report.Reject(file, line, RejectionKinds.InvalidValue, $"'{Encoding.UTF8.GetString(v)}' is not a number", o.Column);
                continue;
            }
            _w.Write(new CdmObservation
            {
                Id = s.EncounterId + "-" + _slugs[i] + rowSuffix, PatientId = s.PatientId, EncounterId = s.EncounterId, Category = o.Category,
                Code = new CdmCoding(o.System, o.Code, o.Display), Effective = t, Value = value, Unit = o.Unit,
            });
        }
        for (int i = 0; i < cols.Labels.Length; i++)
        {
            var l = _m.Labels[i];
            if (l.Kind != "sepsis-onset") continue;
            var v = row[cols.Labels[i]];
            var text = Encoding.UTF8.GetString(v);
            bool positive = l.Positive.Contains(text);
            if (!positive && !l.Negative.Contains(text)) { _report.Reject(file, line, RejectionKinds.UnknownCode, $"label value '{text}' is neither positive nor negative in the mapping", l.Column); continue; }
            if (positive) s.SepsisFlagTime ??= t;
            else if (s.SepsisFlagTime is not null)
                _report.Reject(file, line, RejectionKinds.InvalidValue, "the sepsis label turns off after it turned on; onset is taken from the first positive row", l.Column);
            s.SepsisLabelIndex = i;
        }
    }

    private void Finish(Stay s, string file)
    {
        var end = s.ExplicitEnd ?? (_m.Encounter.Time.Kind == "hour-offset" ? s.LastRowTime.AddHours(1) : _m.Encounter.Time.Kind == "timestamp" ? s.LastRowTime : s.Start);
        var enc = s.Encounter! with { Start = s.Start, End = end };
        _w.Write(enc);
        if (s.HospitalAdmission is { } ha)
            _w.Write(new CdmEncounter { Id = s.EncounterId + "-hospital", PatientId = s.PatientId, Class = "IMP", Start = ha, End = end });
        if (s.SepsisFlagTime is { } flag)
        {
            var lead = _m.Labels[s.SepsisLabelIndex].LeadHours;
            _w.Write(new CdmCondition
            {
                Id = s.EncounterId + "-sepsis", PatientId = s.PatientId, EncounterId = s.EncounterId,
                Code = new CdmCoding(Systems.Snomed, Systems.SepsisCode, "Sepsis"), Onset = flag.AddHours(lead), ClinicalStatus = "active",
            });
        }
        if (s.Readmitted is { } re)
            _w.Write(new CdmObservation
            {
                Id = s.EncounterId + "-readmit30", PatientId = s.PatientId, EncounterId = s.EncounterId,
                Code = new CdmCoding(Systems.ClinicalFed, Systems.ReadmissionLabelCode, "Inpatient readmission within 30 days of discharge"),
                Effective = end, ValueBoolean = re,
            });
    }

    private string? MapValue(MappingFile.ValueMap? map, int col, DelimitedRow row, string file, long line)
    {
        if (map is null || col < 0 || IsMissing(row[col])) return null;
        var v = row.GetString(col);
        if (map.Map.TryGetValue(v, out var code)) return code;
        _report.Reject(file, line, RejectionKinds.UnknownCode, $"value '{v}' is not in the mapping", map.Column);
        return null;
    }

    private bool IsMissing(ReadOnlySpan<byte> v)
    {
        if (v.IsEmpty) return _missing.Contains("");
        if (v.Length > 64) return false;
        Span<char> c = stackalloc char[64];
        int n = Encoding.UTF8.GetChars(v, c);
        return _missing.GetAlternateLookup<ReadOnlySpan<char>>().Contains(c[..n]);
    }

    internal static bool TryBandMidpoint(string band, out double mid)
    {
        // "[70-80)"
        mid = 0;
        var t = band.Trim().TrimStart('[', '(').TrimEnd(']', ')');
        var parts = t.Split('-');
        if (parts.Length == 2 && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var lo) && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var hi) && hi > lo)
        {
            mid = (lo + hi) / 2;
            return true;
        }
        return false;
    }

    /// <summary>Normalizes an ICD code (ICD-9-CM numeric codes lose leading zeros in many extracts: "8" → "008").
    /// Returns null when the code is not well-formed.</summary>
    public static string? NormalizeIcd(string code, string system)
    {
        code = code.Trim().ToUpperInvariant();
        if (system == "icd-9-cm")
        {
            // Dotless form, as many extracts store it: "25083" → "250.83", "V4501" → "V45.01", "E8781" → "E878.1".
            if (!code.Contains('.'))
            {
                int category = code.StartsWith('E') ? 4 : 3;
                if (code.Length > category && code.All(char.IsAsciiLetterOrDigit)) code = code[..category] + "." + code[category..];
            }
            int dot = code.IndexOf('.');
            var head = dot < 0 ? code : code[..dot];
            if (head.Length is 1 or 2 && head.All(char.IsAsciiDigit)) code = head.PadLeft(3, '0') + (dot < 0 ? "" : code[dot..]);
            return Icd9Pattern().IsMatch(code) ? code : null;
        }
        if (!code.Contains('.') && code.Length > 3 && code.All(char.IsAsciiLetterOrDigit)) code = code[..3] + "." + code[3..]; // "I214" → "I21.4"
        return Icd10Pattern().IsMatch(code) ? code : null;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^(V\d{2}(\.\d{1,2})?|E\d{3}(\.\d)?|\d{3}(\.\d{1,2})?)$")]
    private static partial System.Text.RegularExpressions.Regex Icd9Pattern();

    [System.Text.RegularExpressions.GeneratedRegex(@"^[A-TV-Z]\d[0-9A-Z](\.[0-9A-Z]{1,4})?$")]
    private static partial System.Text.RegularExpressions.Regex Icd10Pattern();

    internal static string Slug(string column)
    {
        var sb = new StringBuilder();
        foreach (var c in column.ToLowerInvariant()) sb.Append(char.IsAsciiLetterOrDigit(c) ? c : '-');
        return sb.ToString().Trim('-');
    }

    internal static bool IsFhirId(string id) => id.Length is > 0 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-' || c == '.');
}
