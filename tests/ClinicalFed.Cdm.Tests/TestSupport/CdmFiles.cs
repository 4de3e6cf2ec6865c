using System.Text;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;

namespace ClinicalFed.Cdm.Tests.TestSupport;

/// <summary>Reads a CDM folder back, independently of the code under test's own store: raw JSON lines per resource
/// type, and the records <see cref="FhirResourceReader"/> makes of them.</summary>
public static class CdmFiles
{
    public static string PathOf(string cdm, CdmResourceType type) => Path.Combine(cdm, CdmResourceTypes.FileName(type));

    /// <summary>Every line of one resource file, as text (the file is gzipped NDJSON).</summary>
    public static List<string> Lines(string cdm, CdmResourceType type)
    {
        var lines = new List<string>();
        using var r = NdjsonLineReader.Open(PathOf(cdm, type));
        while (r.TryReadLine(out var line))
            if (!line.IsEmpty) lines.Add(Encoding.UTF8.GetString(line));
        return lines;
    }

    /// <summary>Calls <paramref name="onLine"/> for every line without keeping them (for large CDMs).</summary>
    public static long ForEachLine(string cdm, CdmResourceType type, Action<string> onLine)
    {
        long n = 0;
        using var r = NdjsonLineReader.Open(PathOf(cdm, type));
        while (r.TryReadLine(out var line))
        {
            if (line.IsEmpty) continue;
            onLine(Encoding.UTF8.GetString(line));
            n++;
        }
        return n;
    }

    public static List<FhirReadResult> Read(string cdm, CdmResourceType type)
    {
        var reader = new FhirResourceReader();
        return Lines(cdm, type).Select(l => reader.Read(Encoding.UTF8.GetBytes(l))).ToList();
    }

    public static List<CdmPatient> Patients(string cdm) => Read(cdm, CdmResourceType.Patient).Select(r => r.Patient!).ToList();
    public static List<CdmEncounter> Encounters(string cdm) => Read(cdm, CdmResourceType.Encounter).Select(r => r.Encounter!).ToList();
    public static List<CdmObservation> Observations(string cdm) => Read(cdm, CdmResourceType.Observation).SelectMany(r => r.Observations).ToList();
    public static List<CdmCondition> Conditions(string cdm) => Read(cdm, CdmResourceType.Condition).Select(r => r.Condition!).ToList();
    public static List<CdmMedicationRequest> MedicationRequests(string cdm) => Read(cdm, CdmResourceType.MedicationRequest).Select(r => r.MedicationRequest!).ToList();

    /// <summary>Parses every line of every resource file with Firely in strict mode; returns the number parsed.</summary>
    public static long AssertAllStrictFhir(string cdm)
    {
        long n = 0;
        foreach (var t in CdmResourceTypes.All) n += ForEachLine(cdm, t, l => FirelyStrict.Parse(l));
        return n;
    }
}
