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
public sealed class FhirIngestor(CdmWriter writer, ConversionReport report)
{
    private readonly FhirResourceReader _reader = new();
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

    private void IngestResource(ReadOnlySpan<byte> json, string file, long line, FhirResourceReader.ReferenceResolver? resolve)
    {
        FhirReadResult res;
        try { res = _reader.Read(json, resolve); }
        catch (JsonException e) { report.Reject(file, line, RejectionKinds.MalformedJson, "malformed JSON: " + e.Message); return; }
        catch (FhirReadException e) { report.Reject(file, line, e.IsMissing ? RejectionKinds.MissingRequired : RejectionKinds.InvalidValue, e.Message); return; }
        catch (InvalidOperationException e) { report.Reject(file, line, RejectionKinds.InvalidValue, e.Message); return; }
        catch (FormatException e) { report.Reject(file, line, RejectionKinds.InvalidValue, e.Message); return; }
        if (res.Patient is { } p) writer.Write(p);
        else if (res.Encounter is { } e) writer.Write(e);
        else if (res.Condition is { } c) writer.Write(c);
        else if (res.MedicationRequest is { } m) writer.Write(m);
        else if (res.Observations.Count > 0) foreach (var o in res.Observations) writer.Write(o);
        else if (res.ResourceType == "Observation") { }
        else report.Skip(res.ResourceType);
    }

    private void IngestBundle(ReadOnlySpan<byte> json, string file, long line)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray()); }
        catch (JsonException e) { report.Reject(file, line, RejectionKinds.MalformedJson, "malformed JSON: " + e.Message); return; }
        using (doc)
        {
            var root = doc.RootElement;
            var type = root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type is not ("collection" or "transaction" or "searchset" or "batch" or "transaction-response" or "batch-response" or "message" or "document"))
            {
                report.Reject(file, line, RejectionKinds.UnsupportedResource, $"Bundle.type '{type}' is not supported");
                return;
            }
            if (!root.TryGetProperty("entry", out var entries) || entries.ValueKind != JsonValueKind.Array) return;
            // Pass 1: fullUrl → Type/id (references may point forward), identifiers for conditional references.
            var urls = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in entries.EnumerateArray())
            {
                if (!entry.TryGetProperty("resource", out var r) || !r.TryGetProperty("resourceType", out var rt)) continue;
                var rtype = rt.GetString()!;
                var id = r.TryGetProperty("id", out var idEl) ? idEl.GetString() : null;
                var fullUrl = entry.TryGetProperty("fullUrl", out var fu) ? fu.GetString() : null;
                if (id is null && fullUrl is not null && fullUrl.StartsWith("urn:uuid:", StringComparison.Ordinal)) id = fullUrl["urn:uuid:".Length..];
                if (id is null) continue;
                if (fullUrl is not null) urls[fullUrl] = rtype + "/" + id;
                if (r.TryGetProperty("identifier", out var ids) && ids.ValueKind == JsonValueKind.Array)
                    foreach (var ident in ids.EnumerateArray())
                        if (ident.TryGetProperty("system", out var sys) && ident.TryGetProperty("value", out var val))
                            _identifierIndex[$"{rtype}?identifier={sys.GetString()}|{val.GetString()}"] = rtype + "/" + id;
            }
            string? Resolve(string reference, string expected)
            {
                if (urls.TryGetValue(reference, out var typed)) reference = typed;
                else if (reference.Contains('?') && _identifierIndex.TryGetValue(reference, out var byIdent)) reference = byIdent;
                return FhirResourceReader.DefaultResolver(reference, expected);
            }
            foreach (var entry in entries.EnumerateArray())
            {
                if (!entry.TryGetProperty("resource", out var r)) continue;
                var bytes = JsonSerializer.SerializeToUtf8Bytes(r);
                if (r.TryGetProperty("resourceType", out var rt) && rt.GetString() is { } rtype && (rtype is "Bundle"))
                {
                    IngestBundle(bytes, file, line);
                    continue;
                }
                if (!r.TryGetProperty("id", out _) && entry.TryGetProperty("fullUrl", out var fu) && fu.GetString() is { } u && u.StartsWith("urn:uuid:", StringComparison.Ordinal))
                    bytes = AddId(bytes, u["urn:uuid:".Length..]);
                IngestResource(bytes, file, line, Resolve);
            }
        }
    }

    private static byte[] AddId(byte[] resource, string id)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(resource)!.AsObject();
        node["id"] = id;
        return JsonSerializer.SerializeToUtf8Bytes(node);
    }
}
