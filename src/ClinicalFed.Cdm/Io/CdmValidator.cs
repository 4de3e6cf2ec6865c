using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using ClinicalFed.Cdm.Model;

namespace ClinicalFed.Cdm.Io;

/// <summary>Result of validating one resource type of a CDM folder with the Firely SDK in strict mode.</summary>
public sealed record CdmValidationResult(string ResourceType, long Checked, long Failed, IReadOnlyList<string> Examples);

/// <summary>
/// Parses a CDM's resources with the Firely SDK in strict mode (unknown elements, wrong types, invalid values and
/// codes are errors). Slow by design (tens of thousands of resources per second): <c>maxPerType</c> bounds the work.
/// </summary>
public static class CdmValidator
{
    public static IReadOnlyList<CdmValidationResult> Validate(string cdmDirectory, long maxPerType = long.MaxValue, Action<double>? progress = null)
    {
        var deserializer = new FhirJsonDeserializer(new DeserializerSettings().UsingMode(DeserializationMode.Strict));
        var results = new List<CdmValidationResult>();
        var types = CdmResourceTypes.All;
        for (int t = 0; t < types.Count; t++)
        {
            var path = Path.Combine(cdmDirectory, CdmResourceTypes.FileName(types[t]));
            if (!File.Exists(path)) continue;
            long n = 0, failed = 0;
            var examples = new List<string>();
            using var lr = NdjsonLineReader.Open(path);
            while (n < maxPerType && lr.TryReadLine(out var line))
            {
                if (line.IsEmpty) continue;
                n++;
                try
                {
                    var r = deserializer.Deserialize<Resource>(System.Text.Encoding.UTF8.GetString(line));
                    if (r.TypeName != types[t].ToString())
                    {
                        failed++;
                        if (examples.Count < 10) examples.Add($"{Path.GetFileName(path)}: line {lr.LineNumber}: expected {types[t]}, found {r.TypeName}");
                    }
                }
                catch (DeserializationFailedException e)
                {
                    failed++;
                    if (examples.Count < 10) examples.Add($"{Path.GetFileName(path)}: line {lr.LineNumber}: {e.Message}");
                }
            }
            results.Add(new CdmValidationResult(types[t].ToString(), n, failed, examples));
            progress?.Invoke((t + 1.0) / types.Count);
        }
        return results;
    }
}
