using System.IO.Compression;
using System.Text.Json;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Io;

/// <summary>
/// Writes a site's common data model as gzipped FHIR R4 NDJSON, one file per resource type, streaming with bounded
/// memory. Everything is written into a hidden staging folder beside the target and moved into place only by
/// <see cref="Commit"/>, so a failed or interrupted conversion never leaves a CDM that looks complete and never
/// damages the CDM already in the target folder.
/// </summary>
public sealed class CdmWriter : IDisposable
{
    public const string ReportFileName = "convert-report.json";

    private readonly string _target;
    private readonly string _staging;
    private readonly ResourceFile[] _files;
    private readonly bool _inMemory;
    private bool _committed;
    private readonly byte[] _dateBuf = new byte[40];

    public CdmWriter(string targetDirectory, CompressionLevel compression = CompressionLevel.Fastest)
    {
        _target = Path.GetFullPath(targetDirectory);
        EnsureTargetIsReplaceable(_target);
        var parent = Path.GetDirectoryName(_target.TrimEnd(Path.DirectorySeparatorChar)) ?? ".";
        Directory.CreateDirectory(parent);
        _staging = Path.Combine(parent, "." + Path.GetFileName(_target.TrimEnd(Path.DirectorySeparatorChar)) + ".partial-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_staging);
        _files = CdmResourceTypes.All.Select(t => new ResourceFile(Path.Combine(_staging, CdmResourceTypes.FileName(t)), compression)).ToArray();
    }

    /// <summary>
    /// A writer that keeps the CDM in memory, uncompressed (one NDJSON buffer per resource type, <see cref="Ndjson"/>),
    /// for converting one request's data: the same normalization as a folder, without touching the disk.
    /// </summary>
    public static CdmWriter InMemory() => new(records: null);

    /// <summary>
    /// A writer that keeps the normalized records themselves (<see cref="Records"/>) and writes no JSON at all: the
    /// scoring endpoint's path, where one request's resources go straight from the converter to the feature
    /// extractor (<see cref="Features.CdmStore(CdmRecords, string)"/>). The records are those the NDJSON would hold: the
    /// CDM's JSON form round-trips every field exactly (full-precision dates, round-trip numbers).
    /// </summary>
    public static CdmWriter ToRecords() => new(new CdmRecords());

    private CdmWriter(CdmRecords? records)
    {
        _inMemory = true;
        _target = _staging = "";
        _records = records;
        _files = records is not null ? [] : CdmResourceTypes.All.Select(_ => new ResourceFile(new MemoryStream())).ToArray();
    }

    private readonly CdmRecords? _records;

    /// <summary>The records a <see cref="ToRecords"/> writer received (after <see cref="Commit"/>).</summary>
    public CdmRecords Records => _records is not null && _committed ? _records : throw new InvalidOperationException("Records are available from a ToRecords writer after Commit");

    /// <summary>The NDJSON written for <paramref name="type"/> (an in-memory writer, after <see cref="Commit"/>).</summary>
    public ReadOnlyMemory<byte> Ndjson(CdmResourceType type)
    {
        if (!_inMemory || !_committed) throw new InvalidOperationException("Ndjson is available from an in-memory writer after Commit");
        return _files[(int)type].Memory;
    }

    public string TargetDirectory => _target;

    public long Count(CdmResourceType type) => _records?.Count(type) ?? _files[(int)type].Count;

    public IReadOnlyDictionary<string, long> Counts => CdmResourceTypes.All.ToDictionary(t => t.ToString(), Count);

    public void Write(CdmPatient p)
    {
        if (_records is not null) { _records.Patients.Add(p); return; }
        var w = Begin(CdmResourceType.Patient, "Patient", p.Id);
        if (p.Gender is not null) w.WriteString("gender"u8, p.Gender);
        if (p.BirthDate is { } bd) w.WriteString("birthDate"u8, _dateBuf.AsSpan(0, FhirDateTime.FormatDate(bd, _dateBuf)));
        if (p.DeceasedDateTime is { } dd) WriteDate(w, "deceasedDateTime"u8, dd);
        End(CdmResourceType.Patient);
    }

    public void Write(CdmEncounter e)
    {
        if (_records is not null) { _records.Encounters.Add(e); return; }
        var w = Begin(CdmResourceType.Encounter, "Encounter", e.Id);
        if (e.IcuAdmission is { } icu)
        {
            w.WriteStartArray("extension"u8);
            w.WriteStartObject();
            w.WriteString("url"u8, CdmExtensions.IcuAdmission);
            WriteDate(w, "valueDateTime"u8, icu);
            w.WriteEndObject();
            w.WriteEndArray();
        }
        w.WriteString("status"u8, e.Status);
        w.WriteStartObject("class"u8);
        w.WriteString("system"u8, Systems.ActCode);
        w.WriteString("code"u8, e.Class);
        w.WriteEndObject();
        if (e.Types.Count > 0)
        {
            w.WriteStartArray("type"u8);
            foreach (var t in e.Types) WriteCodeableConcept(w, null, t);
            w.WriteEndArray();
        }
        if (e.Priority is not null) WriteCodeableConcept(w, "priority", new CdmCoding(Systems.ActPriority, e.Priority));
        WriteReference(w, "subject"u8, "Patient/", e.PatientId);
        if (e.Start is not null || e.End is not null)
        {
            w.WriteStartObject("period"u8);
            if (e.Start is { } s) WriteDate(w, "start"u8, s);
            if (e.End is { } en) WriteDate(w, "end"u8, en);
            w.WriteEndObject();
        }
        if (e.AdmitSource is not null || e.DischargeDisposition is not null)
        {
            w.WriteStartObject("hospitalization"u8);
            if (e.AdmitSource is { } a) WriteCodeableConcept(w, "admitSource", a);
            if (e.DischargeDisposition is { } d) WriteCodeableConcept(w, "dischargeDisposition", d);
            w.WriteEndObject();
        }
        if (e.ServiceProvider is not null) { w.WriteStartObject("serviceProvider"u8); w.WriteString("reference"u8, e.ServiceProvider); w.WriteEndObject(); }
        if (e.PartOfEncounterId is not null) WriteReference(w, "partOf"u8, "Encounter/", e.PartOfEncounterId);
        End(CdmResourceType.Encounter);
    }

    public void Write(CdmObservation o)
    {
        if (_records is not null) { _records.Observations.Add(o); return; }
        var w = Begin(CdmResourceType.Observation, "Observation", o.Id);
        w.WriteString("status"u8, o.Status);
        if (o.Category is not null)
        {
            w.WriteStartArray("category"u8);
            WriteCodeableConcept(w, null, new CdmCoding(Systems.ObservationCategory, o.Category));
            w.WriteEndArray();
        }
        w.WriteStartObject("code"u8);
        w.WriteStartArray("coding"u8);
        WriteCoding(w, o.Code);
        foreach (var c in o.AdditionalCodes) WriteCoding(w, c);
        w.WriteEndArray();
        w.WriteEndObject();
        WriteReference(w, "subject"u8, "Patient/", o.PatientId);
        if (o.EncounterId is not null) WriteReference(w, "encounter"u8, "Encounter/", o.EncounterId);
        if (o.Effective is { } eff) WriteDate(w, "effectiveDateTime"u8, eff);
        if (o.Value is { } v)
        {
            w.WriteStartObject("valueQuantity"u8);
            w.WriteNumber("value"u8, v);
            if (o.Unit is not null)
            {
                w.WriteString("unit"u8, o.Unit);
                w.WriteString("system"u8, Systems.Ucum);
                w.WriteString("code"u8, o.Unit);
            }
            w.WriteEndObject();
        }
        else if (o.ValueCode is { } vc) WriteCodeableConcept(w, "valueCodeableConcept", vc);
        else if (o.ValueBoolean is { } vb) w.WriteBoolean("valueBoolean"u8, vb);
        if (o.Interpretation is not null)
        {
            w.WriteStartArray("interpretation"u8);
            WriteCodeableConcept(w, null, new CdmCoding("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", o.Interpretation));
            w.WriteEndArray();
        }
        End(CdmResourceType.Observation);
    }

    public void Write(CdmCondition c)
    {
        if (_records is not null) { _records.Conditions.Add(c); return; }
        var w = Begin(CdmResourceType.Condition, "Condition", c.Id);
        if (c.Rank is { } rank)
        {
            w.WriteStartArray("extension"u8);
            w.WriteStartObject();
            w.WriteString("url"u8, CdmExtensions.DiagnosisRank);
            w.WriteNumber("valuePositiveInt"u8, rank);
            w.WriteEndObject();
            w.WriteEndArray();
        }
        if (c.ClinicalStatus is not null) WriteCodeableConcept(w, "clinicalStatus", new CdmCoding("http://terminology.hl7.org/CodeSystem/condition-clinical", c.ClinicalStatus));
        w.WriteStartArray("category"u8);
        WriteCodeableConcept(w, null, new CdmCoding(Systems.ConditionCategory, c.Category));
        w.WriteEndArray();
        w.WriteStartObject("code"u8);
        w.WriteStartArray("coding"u8);
        WriteCoding(w, c.Code);
        foreach (var a in c.AdditionalCodes) WriteCoding(w, a);
        w.WriteEndArray();
        w.WriteEndObject();
        WriteReference(w, "subject"u8, "Patient/", c.PatientId);
        if (c.EncounterId is not null) WriteReference(w, "encounter"u8, "Encounter/", c.EncounterId);
        if (c.Onset is { } on) WriteDate(w, "onsetDateTime"u8, on);
        if (c.Recorded is { } rec) WriteDate(w, "recordedDate"u8, rec);
        End(CdmResourceType.Condition);
    }

    public void Write(CdmMedicationRequest m)
    {
        if (_records is not null) { _records.MedicationRequests.Add(m); return; }
        var w = Begin(CdmResourceType.MedicationRequest, "MedicationRequest", m.Id);
        if (m.DoseChange is not null)
        {
            w.WriteStartArray("extension"u8);
            w.WriteStartObject();
            w.WriteString("url"u8, CdmExtensions.DoseChange);
            w.WriteString("valueCode"u8, m.DoseChange);
            w.WriteEndObject();
            w.WriteEndArray();
        }
        w.WriteString("status"u8, m.Status);
        w.WriteString("intent"u8, m.Intent);
        WriteCodeableConcept(w, "medicationCodeableConcept", m.Medication);
        WriteReference(w, "subject"u8, "Patient/", m.PatientId);
        if (m.EncounterId is not null) WriteReference(w, "encounter"u8, "Encounter/", m.EncounterId);
        if (m.AuthoredOn is { } a) WriteDate(w, "authoredOn"u8, a);
        End(CdmResourceType.MedicationRequest);
    }

    /// <summary>Writes the report into the staging folder, closes every file and moves the CDM into place
    /// (replacing a previous CDM there only now, when the new one is complete).</summary>
    public void Commit(Action<Stream> writeReport)
    {
        if (_committed) throw new InvalidOperationException("The CDM was already committed.");
        foreach (var f in _files) f.Dispose();
        if (_inMemory)
        {
            _committed = true;
            return;
        }
        using (var s = File.Create(Path.Combine(_staging, ReportFileName))) writeReport(s);
        string? previous = null;
        if (Directory.Exists(_target))
        {
            previous = _staging.Replace(".partial-", ".previous-");
            Directory.Move(_target, previous);
        }
        try { Directory.Move(_staging, _target); }
        catch (IOException) when (previous is not null)
        {
            Directory.Move(previous, _target); // put the previous CDM back; the staging folder is cleaned by Dispose
            throw;
        }
        if (previous is not null) Directory.Delete(previous, recursive: true);
        _committed = true;
    }

    public void Dispose()
    {
        if (_committed) return;
        foreach (var f in _files) f.Dispose();
        if (_inMemory) return;
        try { Directory.Delete(_staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void EnsureTargetIsReplaceable(string target)
    {
        if (File.Exists(target)) throw new CdmException($"{target}: the output path is a file, not a folder.");
        if (!Directory.Exists(target)) return;
        var foreign = Directory.EnumerateFileSystemEntries(target)
            .Select(Path.GetFileName)
            .Where(n => n != ReportFileName && !CdmResourceTypes.All.Any(t => CdmResourceTypes.FileName(t) == n))
            .Take(3).ToList();
        if (foreign.Count > 0)
            throw new CdmException($"{target}: the output folder holds files that are not part of a ClinicalFed CDM ({string.Join(", ", foreign)}); choose an empty or new folder.");
    }

    private Utf8JsonWriter Begin(CdmResourceType type, string resourceType, string id)
    {
        var f = _files[(int)type];
        var w = f.Writer;
        w.WriteStartObject();
        w.WriteString("resourceType"u8, resourceType);
        w.WriteString("id"u8, id);
        return w;
    }

    private void End(CdmResourceType type)
    {
        var f = _files[(int)type];
        f.Writer.WriteEndObject();
        f.EndLine();
    }

    private void WriteDate(Utf8JsonWriter w, ReadOnlySpan<byte> name, DateTimeOffset value) =>
        w.WriteString(name, _dateBuf.AsSpan(0, FhirDateTime.Format(value, _dateBuf)));

    private static void WriteReference(Utf8JsonWriter w, ReadOnlySpan<byte> name, string prefix, string id)
    {
        w.WriteStartObject(name);
        w.WriteString("reference"u8, string.Concat(prefix, id));
        w.WriteEndObject();
    }

    private static void WriteCoding(Utf8JsonWriter w, CdmCoding c)
    {
        w.WriteStartObject();
        w.WriteString("system"u8, c.System);
        w.WriteString("code"u8, c.Code);
        if (c.Display is not null) w.WriteString("display"u8, c.Display);
        w.WriteEndObject();
    }

    private static void WriteCodeableConcept(Utf8JsonWriter w, string? name, CdmCoding c)
    {
        if (name is null) w.WriteStartObject(); else w.WriteStartObject(name);
        w.WriteStartArray("coding"u8);
        WriteCoding(w, c);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>One gzipped NDJSON file: a JSON writer over a buffer, flushed to the gzip stream line by line.</summary>
    private sealed class ResourceFile : IDisposable
    {
        private readonly Stream? _file;
        private readonly Stream _gzip;
        private readonly MemoryStream? _memory;
        private readonly System.Buffers.ArrayBufferWriter<byte> _buffer;
        private bool _disposed;
        public Utf8JsonWriter Writer { get; }
        public long Count { get; private set; }

        public ResourceFile(string path, CompressionLevel level)
        {
            _buffer = new(1 << 16);
            _file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            _gzip = new GZipStream(_file, level);
            Writer = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        }

        /// <summary>Uncompressed NDJSON into memory.</summary>
        public ResourceFile(MemoryStream memory)
        {
            _buffer = new(1 << 11); // one request's resources: grows as needed
            _memory = memory;
            _gzip = memory;
            Writer = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        }

        public ReadOnlyMemory<byte> Memory => _memory is null ? ReadOnlyMemory<byte>.Empty : _memory.GetBuffer().AsMemory(0, (int)_memory.Length);

        public void EndLine()
        {
            Writer.Flush();
            Writer.Reset();
            _buffer.GetSpan(1)[0] = (byte)'\n';
            _buffer.Advance(1);
            Count++;
            if (_buffer.WrittenCount > (1 << 15))
            {
                _gzip.Write(_buffer.WrittenSpan);
                _buffer.ResetWrittenCount();
            }
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            Writer.Flush();
            if (_buffer.WrittenCount > 0) _gzip.Write(_buffer.WrittenSpan);
            Writer.Dispose();
            if (_memory is not null) return; // the buffer stays readable
            _gzip.Dispose();
            _file!.Dispose();
        }
    }
}

/// <summary>Extensions defined by ClinicalFed for facts the base resources have no element for.</summary>
public static class CdmExtensions
{
    public const string DiagnosisRank = "https://clinicalfed.dev/fhir/StructureDefinition/diagnosis-rank";
    public const string DoseChange = "https://clinicalfed.dev/fhir/StructureDefinition/dose-change";
    /// <summary>On an ICU stay Encounter whose recorded period starts after the ICU admission (PhysioNet's ICULOS
    /// not starting at 1): the ICU admission time.</summary>
    public const string IcuAdmission = "https://clinicalfed.dev/fhir/StructureDefinition/icu-admission";
}

