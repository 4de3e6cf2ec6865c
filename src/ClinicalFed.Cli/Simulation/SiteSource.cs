using System.Text;
using ClinicalFed.Cdm;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;

namespace ClinicalFed.Cli.Simulation;

/// <summary>
/// One site of a simulation, from <c>--site NAME=PATH[:SELECTOR]</c>: PATH is a CDM folder, FHIR input, or a flat
/// extract whose shipped mapping is recognized from its header (PhysioNet 2019, Diabetes 130); SELECTOR picks one of
/// the mapping's sites (Diabetes 130: ER, REF, OTH).
/// </summary>
public sealed record SiteSource(string Name, string Path, string? Selector)
{
    public static SiteSource Parse(string spec)
    {
        int eq = spec.IndexOf('=');
        if (eq <= 0 || eq == spec.Length - 1) throw new ArgumentException($"--site '{spec}': expected NAME=PATH or NAME=PATH:SELECTOR");
        var name = spec[..eq];
        if (!name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) throw new ArgumentException($"--site '{spec}': the name may hold only letters, digits, '-', '_' and '.'");
        var rest = spec[(eq + 1)..];
        string? selector = null;
        int colon = rest.LastIndexOf(':');
        if (colon > 0 && !File.Exists(rest) && !Directory.Exists(rest) && (File.Exists(rest[..colon]) || Directory.Exists(rest[..colon])))
        {
            selector = rest[(colon + 1)..];
            rest = rest[..colon];
        }
        if (!File.Exists(rest) && !Directory.Exists(rest)) throw new ArgumentException($"--site '{spec}': '{rest}' does not exist");
        return new SiteSource(name, rest, selector);
    }

    public bool IsCdm => Directory.Exists(Path) && File.Exists(System.IO.Path.Combine(Path, CdmWriter.ReportFileName));

    /// <summary>The shipped mapping whose columns the extract's header holds, or null for FHIR input.</summary>
    public string? DetectMapping()
    {
        if (IsCdm || FhirIngestor.LooksLikeFhir(Path)) return null;
        string headerLine;
        if (Directory.Exists(Path))
        {
            var first = Directory.EnumerateFiles(Path).Order(StringComparer.Ordinal).FirstOrDefault() ?? throw new CdmException($"{Path}: empty folder");
            using var lr = NdjsonLineReader.Open(first);
            headerLine = lr.TryReadLine(out var h) ? Encoding.UTF8.GetString(h) : "";
        }
        else
        {
            using var lr = NdjsonLineReader.Open(Path);
            headerLine = lr.TryReadLine(out var h) ? Encoding.UTF8.GetString(h) : "";
        }
        foreach (var name in MappingFile.ShippedNames)
        {
            var m = MappingFile.Load(name);
            var delimiter = Directory.Exists(Path) ? m.Source.PerPatientFiles?.Delimiter ?? m.Source.Delimiter : m.Source.Delimiter;
            var header = headerLine.Split(delimiter[0]).Select(c => c.Trim().Trim('"')).ToHashSet();
            if (m.RequiredColumns(Directory.Exists(Path)).All(c => header.Contains(c.Column))) return name;
        }
        throw new CdmException($"{Path}: no shipped mapping ({string.Join(", ", MappingFile.ShippedNames)}) matches its header; convert it with --mapping FILE first and give the CDM folder");
    }
}

/// <summary>The evaluation protocol's test split and the hash shards of <c>--split NAME:K</c>.</summary>
public static class Splits
{
    /// <summary>PROTOCOL.md: a patient is in the test set when the number in its id is divisible by 5 (ids without
    /// digits fall back to a stable hash).</summary>
    public static bool IsTest(string patientId)
    {
        var digits = new string(patientId.Where(char.IsAsciiDigit).ToArray());
        if (digits.Length is > 0 and <= 18) return ulong.Parse(digits, System.Globalization.CultureInfo.InvariantCulture) % 5 == 0;
        return Hash(patientId) % 5 == 0;
    }

    /// <summary>A site's own validation patients, carved from its training patients (about 1 in 6), by hash.</summary>
    public static bool IsValidation(string patientId) => Hash("validation:" + patientId) % 6 == 0;

    /// <summary>The shard (0..k-1) of a patient for <c>--split NAME:K</c>, by a stable hash of the patient id.</summary>
    public static int Shard(string patientId, int k) => (int)(Hash("shard:" + patientId) % (ulong)k);

    /// <summary>64-bit FNV-1a: stable across runs, platforms and .NET versions (unlike string.GetHashCode).</summary>
    public static ulong Hash(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(s)) { h ^= b; h *= 1099511628211UL; }
        return h;
    }
}
