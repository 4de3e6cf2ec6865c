using System.Text.Json;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;

namespace ClinicalFed.Cdm.Features;

/// <summary>Reads a site's CDM folder (as written by <c>clinicalfed convert</c>) streaming, resource type by type.</summary>
public sealed class CdmStore
{
    public string Directory { get; }

    public CdmStore(string directory)
    {
        Directory = directory;
        if (!System.IO.Directory.Exists(directory)) throw new CdmException($"{directory}: no such CDM folder");
        if (!File.Exists(Path.Combine(directory, CdmWriter.ReportFileName)))
            throw new CdmException($"{directory}: no {CdmWriter.ReportFileName}, so this is not a complete ClinicalFed CDM (was the conversion interrupted?)");
    }

    private readonly Func<CdmResourceType, ReadOnlyMemory<byte>>? _memory;
    private FhirResourceReader? _reader;

    /// <summary>A CDM held in memory (an in-memory <see cref="CdmWriter"/>'s NDJSON per resource type).</summary>
    public CdmStore(Func<CdmResourceType, ReadOnlyMemory<byte>> ndjson, string name)
    {
        _memory = ndjson ?? throw new ArgumentNullException(nameof(ndjson));
        Directory = name;
    }

    private readonly CdmRecords? _records;

    /// <summary>A CDM held as records (a <see cref="CdmWriter.ToRecords"/> writer's): read without any JSON.</summary>
    public CdmStore(CdmRecords records, string name)
    {
        _records = records ?? throw new ArgumentNullException(nameof(records));
        Directory = name;
    }

    public string PathOf(CdmResourceType type) => Path.Combine(Directory, CdmResourceTypes.FileName(type));

    /// <summary>Calls <paramref name="onResource"/> for every resource of a type; the reader's pool interns repeated
    /// strings. A malformed line in a CDM is an error naming the file and line.</summary>
    public void Read(CdmResourceType type, Action<FhirReadResult> onResource, FhirResourceReader? reader = null, Action<double>? progress = null)
    {
        if (_records is not null)
        {
            ReadRecords(type, onResource);
            return;
        }

        var path = PathOf(type);
        if (_memory is null && !File.Exists(path)) return;
        // In memory (one request's resources) a single reader, and so one string pool, serves every resource type.
        reader ??= _memory is not null ? _reader ??= new FhirResourceReader() : new FhirResourceReader();
        Stream fs;
        if (_memory is not null)
        {
            var bytes = _memory(type);
            if (bytes.IsEmpty) return;
            fs = new MemoryStream(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(bytes, out var segment) ? segment.Array! : bytes.ToArray(),
                segment.Array is null ? 0 : segment.Offset, bytes.Length, writable: false);
        }
        else fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        using var owned = fs;
        long length = fs.Length;
        using var lr = _memory is not null
            ? new NdjsonLineReader(fs, (int)Math.Clamp(fs.Length + 1, 4096, 1 << 20)) // the whole in-memory NDJSON fits: no 1 MiB buffer per request
            : new NdjsonLineReader(fs.Length >= 2 && IsGzip(fs) ? new System.IO.Compression.GZipStream(fs, System.IO.Compression.CompressionMode.Decompress, leaveOpen: true) : fs);
        long lastReport = 0;
        while (lr.TryReadLine(out var line))
        {
            if (line.IsEmpty) continue;
            try { onResource(reader.Read(line)); }
            catch (Exception e) when (e is JsonException or FhirReadException or InvalidOperationException or FormatException)
            {
                throw new CdmException($"{path}: line {lr.LineNumber}: {e.Message}", e);
            }
            if (progress is not null && lr.LineNumber - lastReport > 50_000)
            {
                lastReport = lr.LineNumber;
                progress((double)fs.Position / Math.Max(1, length));
            }
        }
    }

    private void ReadRecords(CdmResourceType type, Action<FhirReadResult> onResource)
    {
        var r = new FhirReadResult { ResourceType = type.ToString() };
        switch (type)
        {
            case CdmResourceType.Patient:
                foreach (var x in _records!.Patients) { r.Id = x.Id; r.Patient = x; onResource(r); }
                break;
            case CdmResourceType.Encounter:
                foreach (var x in _records!.Encounters) { r.Id = x.Id; r.Encounter = x; onResource(r); }
                break;
            case CdmResourceType.Condition:
                foreach (var x in _records!.Conditions) { r.Id = x.Id; r.Condition = x; onResource(r); }
                break;
            case CdmResourceType.MedicationRequest:
                foreach (var x in _records!.MedicationRequests) { r.Id = x.Id; r.MedicationRequest = x; onResource(r); }
                break;
            case CdmResourceType.Observation:
                foreach (var x in _records!.Observations)
                {
                    r.Id = x.Id;
                    r.Observations.Clear();
                    r.Observations.Add(x);
                    onResource(r);
                }
                break;
        }
    }

    private static bool IsGzip(Stream fs)
    {
        int a = fs.ReadByte(), b = fs.ReadByte();
        fs.Position = 0;
        return a == 0x1f && b == 0x8b;
    }

    public List<CdmPatient> Patients() => ReadAll(CdmResourceType.Patient, r => r.Patient);

    public List<CdmEncounter> Encounters() => ReadAll(CdmResourceType.Encounter, r => r.Encounter);

    public List<CdmCondition> Conditions() => ReadAll(CdmResourceType.Condition, r => r.Condition);

    public List<CdmMedicationRequest> MedicationRequests() => ReadAll(CdmResourceType.MedicationRequest, r => r.MedicationRequest);

    private List<T> ReadAll<T>(CdmResourceType type, Func<FhirReadResult, T?> pick) where T : class
    {
        var list = new List<T>();
        Read(type, r => { if (pick(r) is { } x) list.Add(x); });
        return list;
    }
}
