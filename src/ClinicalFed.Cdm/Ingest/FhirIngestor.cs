using System.Text;
using System.Text.Json;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;

namespace ClinicalFed.Cdm.Ingest;

/// <summary>
/// Normalizes FHIR R4 input into the CDM: Bulk Data NDJSON (a folder of <c>Type.ndjson[.gz]</c> files or one such
/// file) and Bundles (collection / transaction / searchset / batch; one JSON document, or NDJSON with a Bundle per
/// line). <c>urn:uuid</c> references are rewritten to <c>Type/id</c>, conditional references resolved against the
/// identifiers seen, panels flattened to one value per Observation, and resource types outside the CDM counted and
/// skipped.
/// </summary>
public sealed class FhirIngestor(CdmWriter writer, ConversionReport report, FhirResourceReader? reader = null)
{
    private readonly FhirResourceReader _reader = reader ?? new();
    private readonly Dictionary<string, string> _identifierIndex = new(StringComparer.Ordinal);

    public Action<double>? Progress { get; init; }

    /// <summary>True when the path looks like FHIR JSON (a folder of NDJSON files, or a file whose first record is
    /// a JSON object with a resourceType).</summary>
    public static bool LooksLikeFhir(string path)
    {
        if (Directory.Exists(path)) return BulkFiles(path).Count > 0 || Directory.EnumerateFiles(path, "*.json*").Any();
        if (!File.Exists(path)) return false;
        using var s = NdjsonLineReader.OpenMaybeGzip(path);
        var buf = new byte[4096];
        int n = s.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
        var text = Encoding.UTF8.GetString(buf, 0, n).TrimStart();
        return text.StartsWith('{') && text.Contains("\"resourceType\"", StringComparison.Ordinal);
    }

    private static List<string> BulkFiles(string dir) =>
        Directory.EnumerateFiles(dir)
            .Where(f => { var n = Path.GetFileName(f); return (n.EndsWith(".ndjson", StringComparison.Ordinal) || n.EndsWith(".ndjson.gz", StringComparison.Ordinal)) && char.IsAsciiLetterUpper(n[0]); })
            .Order(StringComparer.Ordinal).ToList();

    public void Ingest(string path)
    {
        if (Directory.Exists(path))
        {
            report.InputKind = "fhir-bulk-ndjson";
            var bulk = BulkFiles(path);
            var others = Directory.EnumerateFiles(path).Where(f => !bulk.Contains(f)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            if (bulk.Count > 0)
            {
                foreach (var o in others) report.FilesSkipped[o!] = "not a Bulk Data file named after its resource type; convert it on its own if it holds other data (e.g. Bundles)";
                // Patients and encounters first, so the report's counts read naturally; order does not affect the CDM.
                for (int i = 0; i < bulk.Count; i++)
                {
                    IngestNdjson(bulk[i]);
                    Progress?.Invoke((i + 1.0) / bulk.Count);
                }
            }
            else
            {
                report.InputKind = "fhir-json-files";
                var files = Directory.EnumerateFiles(path, "*.json*").Order(StringComparer.Ordinal).ToList();
                for (int i = 0; i < files.Count; i++) { IngestFile(files[i]); Progress?.Invoke((i + 1.0) / files.Count); }
            }
        }
        else IngestFile(path);
    }

    /// <summary>Ingests one FHIR JSON document held in memory (a Bundle or a single resource), named <paramref name="name"/> in errors.</summary>
    public void IngestJson(ReadOnlySpan<byte> json, string name)
    {
        if (report.InputKind == "") report.InputKind = "fhir-json";
        report.FilesRead.Add(name);
        IngestDocument(json, name, 1);
    }

    private void IngestFile(string file)
    {
        // NDJSON when the first line is a whole JSON object; otherwise a single (pretty-printed) JSON document.
        bool ndjson;
        using (var lr = NdjsonLineReader.Open(file))
        {
            ndjson = lr.TryReadLine(out var first) && IsCompleteJson(first);
        }
        if (ndjson) { if (report.InputKind == "") report.InputKind = "fhir-ndjson"; IngestNdjson(file); }
        else
        {
            if (report.InputKind == "") report.InputKind = "fhir-json";
            report.FilesRead.Add(Path.GetFileName(file));
            using var s = NdjsonLineReader.OpenMaybeGzip(file);
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            IngestDocument(ms.GetBuffer().AsSpan(0, (int)ms.Length), Path.GetFileName(file), 1);
        }
    }

    private static bool IsCompleteJson(ReadOnlySpan<byte> line)
    {
        if (line.IsEmpty) return false;
        var r = new Utf8JsonReader(line);
        try { return r.Read() && r.TokenType == JsonTokenType.StartObject && r.TrySkip() && r.BytesConsumed > 0; }
        catch (JsonException) { return false; }
    }

    private void IngestNdjson(string file)
    {
        var name = Path.GetFileName(file);
        report.FilesRead.Add(name);
        using var lr = NdjsonLineReader.Open(file);
        while (lr.TryReadLine(out var line))
        {
            if (line.IsEmpty || line.IndexOfAnyExcept((byte)' ', (byte)'\t') < 0) continue;
            IngestDocument(line, name, lr.LineNumber);
        }
    }

    private void IngestDocument(ReadOnlySpan<byte> json, string file, long line)
    {
        report.RecordsRead++;
        if (StartsWithBundle(json)) { IngestBundle(json, file, line); return; }
        IngestResource(json, file, line, null);
    }

    private static bool StartsWithBundle(ReadOnlySpan<byte> json)
    {
        // Cheap check on the top-level resourceType without parsing the whole document.
        var r = new Utf8JsonReader(json);
        try
        {
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return false;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("resourceType"u8)) { r.Read(); return r.TokenType == JsonTokenType.String && r.ValueTextEquals("Bundle"u8); }
                r.Read();
                r.Skip();
            }
        }
        catch (JsonException) { }
        return false;
    }

    private void IngestResource(ReadOnlySpan<byte> json, string file, long line, FhirResourceReader.ReferenceResolver? resolve) =>
        Apply(ReadOne(json, resolve), file, line);

    /// <summary>A resource read (or why it was refused), applied to the writer and report later.</summary>
    private readonly record struct ReadOutcome(FhirReadResult? Result, string? RejectKind, string? Message);

    private ReadOutcome ReadOne(ReadOnlySpan<byte> json, FhirResourceReader.ReferenceResolver? resolve)
    {
        try { return new ReadOutcome(_reader.Read(json, resolve), null, null); }
        catch (JsonException e) { return new ReadOutcome(null, RejectionKinds.MalformedJson, "malformed JSON: " + e.Message); }
        catch (FhirReadException e) { return new ReadOutcome(null, e.IsMissing ? RejectionKinds.MissingRequired : RejectionKinds.InvalidValue, e.Message); }
        catch (InvalidOperationException e) { return new ReadOutcome(null, RejectionKinds.InvalidValue, e.Message); }
        catch (FormatException e) { return new ReadOutcome(null, RejectionKinds.InvalidValue, e.Message); }
    }

    private void Apply(in ReadOutcome outcome, string file, long line)
    {
        if (outcome.Result is not { } res)
        {
            report.Reject(file, line, outcome.RejectKind!, outcome.Message!);
            return;
        }

        if (res.Patient is { } p) writer.Write(p);
        else if (res.Encounter is { } e) writer.Write(e);
        else if (res.Condition is { } c) writer.Write(c);
        else if (res.MedicationRequest is { } m) writer.Write(m);
        else if (res.Observations.Count > 0) foreach (var o in res.Observations) writer.Write(o);
        else if (res.ResourceType == "Observation") { }
        else report.Skip(res.ResourceType);
    }

    /// <summary>One Bundle entry found by <see cref="ScanBundle"/>: where its resource's JSON lies in the Bundle, and the
    /// resource as read during the scan.</summary>
    private sealed record BundleEntry(int Start, int Length, string? ResourceType, string? Id, string? FullUrl)
    {
        public ReadOutcome Outcome { get; set; }
    }

    /// <summary>
    /// Resolves a Bundle's references through its fullUrls and the identifiers seen. During the single scan
    /// (<c>complete</c> false) the map holds only the entries read so far, so the resolver notes every answer a later
    /// entry could change — a urn: or conditional reference, a reference that a later fullUrl turns out to name, a
    /// fullUrl given twice — and the Bundle is then read again with the complete map. References repeat on every
    /// Observation of a patient (the same pooled string): the last answer is reused.
    /// </summary>
    private sealed class BundleResolver(Dictionary<string, string> urls, Dictionary<string, string> identifiers, bool complete)
    {
        private List<string>? _misses;
        private string? _lastReference, _lastExpected, _lastResolved;

        public bool Uncertain { get; set; }

        public string? Resolve(string reference, string expected)
        {
            if (ReferenceEquals(reference, _lastReference) && ReferenceEquals(expected, _lastExpected)) return _lastResolved;
            string target = reference;
            if (urls.TryGetValue(reference, out var typed)) target = typed;
            else if (reference.Contains('?'))
            {
                if (identifiers.TryGetValue(reference, out var byIdentifier)) target = byIdentifier;
                if (!complete) Uncertain = true;
            }
            else if (!complete)
            {
                if (reference.StartsWith("urn:", StringComparison.Ordinal)) Uncertain = true;
                else (_misses ??= []).Add(reference);
            }

            (_lastReference, _lastExpected) = (reference, expected);
            return _lastResolved = FhirResourceReader.DefaultResolver(target, expected);
        }

        /// <summary>True when every answer given during the scan is the one the complete map gives.</summary>
        public bool Final => !Uncertain && (_misses is null || !_misses.Exists(urls.ContainsKey));
    }

    private void IngestBundle(ReadOnlySpan<byte> json, string file, long line)
    {
        // One forward pass over the Bundle's tokens finds each entry's resource (as a slice of the input: nothing is
        // copied or re-serialized), its type, id and fullUrl, the identifiers that conditional references use, and reads
        // the resource right away; only a Bundle whose references point forward is read a second time.
        var entries = new List<BundleEntry>(Math.Clamp(json.Length / 512, 4, 1 << 16));
        string? type;
        var urls = new Dictionary<string, string>(StringComparer.Ordinal);
        var eager = new BundleResolver(urls, _identifierIndex, complete: false);
        try { type = ScanBundle(json, entries, urls, eager); }
        catch (JsonException e) { report.Reject(file, line, RejectionKinds.MalformedJson, "malformed JSON: " + e.Message); return; }
        if (type is not ("collection" or "transaction" or "searchset" or "batch" or "transaction-response" or "batch-response" or "message" or "document"))
        {
            report.Reject(file, line, RejectionKinds.UnsupportedResource, $"Bundle.type '{type}' is not supported");
            return;
        }

        if (!eager.Final)
        {
            // A reference pointed forward (or a resource was refused): scan again for the complete map, then read.
            entries.Clear();
            urls.Clear();
            ScanBundle(json, entries, urls, eager: null);
            var complete = new BundleResolver(urls, _identifierIndex, complete: true);
            foreach (var entry in entries)
                if (entry.ResourceType != "Bundle") entry.Outcome = ReadEntry(json, entry, complete);
        }

        foreach (var entry in entries)
        {
            if (entry.ResourceType == "Bundle") IngestBundle(json.Slice(entry.Start, entry.Length), file, line);
            else Apply(entry.Outcome, file, line);
        }
    }

    private ReadOutcome ReadEntry(ReadOnlySpan<byte> json, BundleEntry entry, BundleResolver resolver)
    {
        var resource = json.Slice(entry.Start, entry.Length);
        return entry.Id is null && entry.FullUrl is { } u && u.StartsWith("urn:uuid:", StringComparison.Ordinal)
            ? ReadOne(AddId(resource, u["urn:uuid:".Length..]), resolver.Resolve)
            : ReadOne(resource, resolver.Resolve);
    }

    /// <summary>
    /// Reads a Bundle's top level: returns its <c>type</c>, adds every entry with a resource to
    /// <paramref name="entries"/>, maps each entry's fullUrl to <c>Type/id</c> (references may point forward) and
    /// indexes the resources' identifiers for conditional references.
    /// </summary>
    private string? ScanBundle(ReadOnlySpan<byte> json, List<BundleEntry> entries, Dictionary<string, string> urls, BundleResolver? eager)
    {
        var r = new Utf8JsonReader(json);
        Expect(ref r, JsonTokenType.StartObject);
        string? type = null;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("type"u8))
            {
                Next(ref r);
                type = r.TokenType == JsonTokenType.String ? r.GetString() : null;
                r.Skip();
            }
            else if (r.ValueTextEquals("entry"u8))
            {
                if (Next(ref r) != JsonTokenType.StartArray) { r.Skip(); continue; }
                while (Next(ref r) != JsonTokenType.EndArray)
                {
                    if (r.TokenType == JsonTokenType.StartObject) ScanEntry(json, ref r, entries, urls, eager);
                    else r.Skip();
                }
            }
            else
            {
                Next(ref r);
                r.Skip();
            }
        }

        if (r.Read()) throw new JsonException($"content after the Bundle at byte {r.TokenStartIndex}");
        return type;
    }

    private void ScanEntry(ReadOnlySpan<byte> json, ref Utf8JsonReader r, List<BundleEntry> entries, Dictionary<string, string> urls, BundleResolver? eager)
    {
        string? fullUrl = null, resourceType = null, id = null;
        int start = -1, length = 0;
        List<(string System, string Value)>? identifiers = null;
        FhirReadResult? read = null;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("fullUrl"u8))
            {
                fullUrl = Next(ref r) == JsonTokenType.String ? r.GetString() : null;
                r.Skip();
            }
            else if (r.ValueTextEquals("resource"u8))
            {
                if (Next(ref r) != JsonTokenType.StartObject) { r.Skip(); continue; }
                start = (int)r.TokenStartIndex;
                if (eager is not null)
                {
                    // Read the resource in this same pass, on a copy of the reader: a refused resource leaves the copy
                    // part way, and the Bundle is then read again the classic way (which also reports the refusal).
                    var copy = r;
                    (identifiers ??= []).Clear();
                    try
                    {
                        read = _reader.Read(ref copy, eager.Resolve, identifiers);
                        r = copy;
                        resourceType = read.ResourceType;
                        id = read.Id;
                    }
                    catch (Exception e) when (e is FhirReadException or InvalidOperationException or FormatException or JsonException)
                    {
                        eager.Uncertain = true;
                        r.Skip();
                    }

                    length = (int)r.BytesConsumed - start;
                    continue;
                }

                while (Next(ref r) == JsonTokenType.PropertyName)
                {
                    if (r.ValueTextEquals("resourceType"u8)) resourceType = Next(ref r) == JsonTokenType.String ? TypeName(ref r) : null;
                    else if (r.ValueTextEquals("id"u8)) id = Next(ref r) == JsonTokenType.String ? r.GetString() : null;
                    else if (r.ValueTextEquals("identifier"u8))
                    {
                        Next(ref r);
                        FhirResourceReader.ReadIdentifiers(ref r, identifiers ??= []);
                        continue;
                    }
                    else Next(ref r);
                    r.Skip();
                }

                length = (int)r.BytesConsumed - start;
            }
            else
            {
                Next(ref r);
                r.Skip();
            }
        }

        if (start < 0) return;
        var entry = new BundleEntry(start, length, resourceType, id, fullUrl);
        entries.Add(entry);
        string? effectiveId = id ?? (fullUrl is not null && fullUrl.StartsWith("urn:uuid:", StringComparison.Ordinal) ? fullUrl["urn:uuid:".Length..] : null);
        if (resourceType is not null && effectiveId is not null)
        {
            // A fullUrl that already ends in Type/id resolves to the same resource without the map.
            if (fullUrl is not null && !EndsWithTypeAndId(fullUrl, resourceType, effectiveId))
            {
                if (!urls.TryAdd(fullUrl, resourceType + "/" + effectiveId))
                {
                    urls[fullUrl] = resourceType + "/" + effectiveId; // the last entry wins
                    eager?.Uncertain = true;
                }
            }

            if (identifiers is not null)
            {
                // (A conditional reference read before this entry already made the scan uncertain.)
                foreach (var (system, value) in identifiers) _identifierIndex[$"{resourceType}?identifier={system}|{value}"] = resourceType + "/" + effectiveId;
            }
        }

        if (eager is null) return;
        // Refused, or a resource without an id that takes it from its urn:uuid fullUrl: read again the classic way.
        if (read is null || (id is null && fullUrl is not null && fullUrl.StartsWith("urn:uuid:", StringComparison.Ordinal))) eager.Uncertain = true;
        else if (resourceType != "Bundle") entry.Outcome = new ReadOutcome(read, null, null);
    }

    /// <summary>True when <paramref name="url"/> is <c>…/Type/id</c> (no version), which the default resolver reads as that resource.</summary>
    private static bool EndsWithTypeAndId(string url, string type, string id)
    {
        var u = url.AsSpan();
        if (u.Contains("/_history/", StringComparison.Ordinal) || !u.EndsWith(id, StringComparison.Ordinal)) return false;
        u = u[..^id.Length];
        if (!u.EndsWith("/", StringComparison.Ordinal)) return false;
        u = u[..^1];
        return u.EndsWith(type, StringComparison.Ordinal) && (u.Length == type.Length || u[^(type.Length + 1)] == '/');
    }

    /// <summary>The resource type as a shared string for the CDM's types (no allocation per entry).</summary>
    private static string TypeName(ref Utf8JsonReader r)
    {
        if (!r.ValueIsEscaped)
        {
            var v = r.ValueSpan;
            if (v.SequenceEqual("Observation"u8)) return "Observation";
            if (v.SequenceEqual("Patient"u8)) return "Patient";
            if (v.SequenceEqual("Encounter"u8)) return "Encounter";
            if (v.SequenceEqual("Condition"u8)) return "Condition";
            if (v.SequenceEqual("MedicationRequest"u8)) return "MedicationRequest";
            if (v.SequenceEqual("Bundle"u8)) return "Bundle";
        }

        return r.GetString()!;
    }

    private static JsonTokenType Next(ref Utf8JsonReader r)
    {
        if (!r.Read()) throw new JsonException("the document ends early");
        return r.TokenType;
    }

    private static void Expect(ref Utf8JsonReader r, JsonTokenType type)
    {
        if (Next(ref r) != type) throw new JsonException($"expected {type} at byte {r.TokenStartIndex}, found {r.TokenType}");
    }

    private static byte[] AddId(ReadOnlySpan<byte> resource, string id)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(resource)!.AsObject();
        node["id"] = id;
        return JsonSerializer.SerializeToUtf8Bytes(node);
    }
}
