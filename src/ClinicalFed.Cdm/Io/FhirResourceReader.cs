using System.Text;
using System.Text.Json;
using ClinicalFed.Cdm.Model;

namespace ClinicalFed.Cdm.Io;

/// <summary>A resource that could not be read into the CDM, with the reason (the caller adds file and line).</summary>
public sealed class FhirReadException(string message, bool missing = false) : Exception(message)
{
    /// <summary>True when a required element is absent; false when an element is present but invalid.</summary>
    public bool IsMissing { get; } = missing;
}

/// <summary>What one JSON resource became: its type and the CDM records (several Observations for a panel).</summary>
public sealed class FhirReadResult
{
    public string ResourceType { get; internal set; } = "";
    public string? Id { get; internal set; }
    public CdmPatient? Patient { get; internal set; }
    public CdmEncounter? Encounter { get; internal set; }
    public CdmCondition? Condition { get; internal set; }
    public CdmMedicationRequest? MedicationRequest { get; internal set; }
    public List<CdmObservation> Observations { get; } = [];
    public bool IsCdmType => Patient is not null || Encounter is not null || Condition is not null || MedicationRequest is not null || Observations.Count > 0;
}

/// <summary>
/// The project's streaming FHIR R4 JSON reader: a forward-only <see cref="Utf8JsonReader"/> pass that picks out the
/// elements the CDM carries and skips everything else, interning repeated strings. It is the hot ingestion path
/// (millions of Observations); the Firely SDK is used to validate what the project writes, not to read bulk data.
/// </summary>
public sealed class FhirResourceReader
{
    /// <summary>Turns a FHIR reference ("Patient/1", "urn:uuid:…", an absolute URL) into the id of a resource of the
    /// expected type, or null when it cannot.</summary>
    public delegate string? ReferenceResolver(string reference, string expectedType);

    private readonly Utf8StringPool _pool;
    private readonly List<CdmCoding> _codings = [];
    private readonly List<CdmCoding> _types = [];
    private readonly List<(CdmCoding Code, decimal? Value, string? Unit)> _components = [];

    public FhirResourceReader(Utf8StringPool? pool = null) => _pool = pool ?? new Utf8StringPool();

    public static string? DefaultResolver(string reference, string expectedType)
    {
        // "Patient/123", "http://host/fhir/Patient/123", "Patient/123/_history/2"
        var s = reference.AsSpan();
        int hist = s.IndexOf("/_history/");
        if (hist >= 0) s = s[..hist];
        int slash = s.LastIndexOf('/');
        if (slash <= 0) return null;
        var type = s[..slash];
        int typeStart = type.LastIndexOf('/');
        if (typeStart >= 0) type = type[(typeStart + 1)..];
        if (!type.SequenceEqual(expectedType)) return null;
        var id = s[(slash + 1)..];
        return id.Length == 0 ? null : id.ToString();
    }

    /// <summary>Reads one resource. Throws <see cref="FhirReadException"/> for a CDM resource that lacks what the CDM
    /// needs and <see cref="JsonException"/> for malformed JSON.</summary>
    public FhirReadResult Read(ReadOnlySpan<byte> json, ReferenceResolver? resolve = null)
    {
        var r = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 128 });
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject) throw new FhirReadException("the line is not a JSON object");
        return Read(ref r, resolve, identifiers: null);
    }

    /// <summary>
    /// Reads the resource whose <see cref="JsonTokenType.StartObject"/> <paramref name="r"/> is on (inside a larger
    /// document, such as a Bundle entry) and leaves <paramref name="r"/> on its <see cref="JsonTokenType.EndObject"/>.
    /// When <paramref name="identifiers"/> is given, the resource's identifiers (system, value) are added to it.
    /// </summary>
    public FhirReadResult Read(ref Utf8JsonReader r, ReferenceResolver? resolve, List<(string System, string Value)>? identifiers)
    {
        if (r.TokenType != JsonTokenType.StartObject) throw new FhirReadException("the resource is not a JSON object");
        resolve ??= DefaultResolver;
        var res = new FhirReadResult();

        string? resourceType = null, id = null, status = null, gender = null, cls = null, priority = null, category = null;
        string? subject = null, encounter = null, serviceProvider = null, partOf = null, interpretation = null, intent = null;
        string? clinicalStatus = null, doseChange = null;
        DateTimeOffset? effective = null, start = null, end = null, onset = null, recorded = null, deceased = null, authored = null;
        DateOnly? birth = null;
        decimal? value = null; string? unit = null; CdmCoding? valueCode = null; bool? valueBool = null;
        CdmCoding? admitSource = null, discharge = null, medication = null;
        int? rank = null;
        DateTimeOffset? icuAdmission = null;
        bool hasMedicationReference = false;
        _codings.Clear(); _types.Clear(); _components.Clear();

        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            var name = r.HasValueSequence || r.ValueIsEscaped ? Encoding.UTF8.GetBytes(r.GetString()!) : r.ValueSpan;
            r.Read();
            switch (PropertyOf(name))
            {
                case Prop.ResourceType: resourceType = Str(ref r); break;
                case Prop.Id: id = RawStr(ref r); break;
                case Prop.Status: status = Str(ref r); break;
                case Prop.Code: ReadCodeableConcept(ref r, _codings); break;
                case Prop.Subject: case Prop.Patient: subject = ReadReference(ref r); break;
                case Prop.Encounter: case Prop.Context: encounter = ReadReference(ref r); break;
                case Prop.EffectiveDateTime: case Prop.EffectiveInstant: effective = Date(ref r, "effectiveDateTime"); break;
                case Prop.EffectivePeriod: ReadPeriod(ref r, out effective, out _); break;
                case Prop.ValueQuantity: ReadQuantity(ref r, out value, out unit); break;
                case Prop.ValueCodeableConcept: valueCode = FirstCoding(ref r); break;
                case Prop.ValueBoolean: valueBool = r.TokenType == JsonTokenType.True ? true : r.TokenType == JsonTokenType.False ? false : throw new FhirReadException("valueBoolean is not a boolean"); break;
                case Prop.ValueInteger: value = r.GetDecimal(); break;
                case Prop.Category: category ??= FirstCode(ref r); break;
                case Prop.Component: ReadComponents(ref r); break;
                case Prop.Interpretation: interpretation = FirstCode(ref r); break;
                case Prop.Gender: gender = Str(ref r); break;
                case Prop.BirthDate: birth = BirthDate(ref r); break;
                case Prop.DeceasedDateTime: deceased = Date(ref r, "deceasedDateTime"); break;
                case Prop.Class: cls = ReadCodingCode(ref r); break;
                case Prop.Type: ReadCodeableConceptArray(ref r, _types); break;
                case Prop.Priority: priority = FirstCode(ref r); break;
                case Prop.Period: ReadPeriod(ref r, out start, out end); break;
                case Prop.Hospitalization: ReadHospitalization(ref r, out admitSource, out discharge); break;
                case Prop.ServiceProvider: serviceProvider = ReadReference(ref r); break;
                case Prop.PartOf: partOf = ReadReference(ref r); break;
                case Prop.OnsetDateTime: onset = Date(ref r, "onsetDateTime"); break;
                case Prop.OnsetPeriod: ReadPeriod(ref r, out onset, out _); break;
                case Prop.RecordedDate: recorded = Date(ref r, "recordedDate"); break;
                case Prop.ClinicalStatus: clinicalStatus = FirstCode(ref r); break;
                case Prop.Intent: intent = Str(ref r); break;
                case Prop.MedicationCodeableConcept: medication = FirstCoding(ref r); break;
                case Prop.MedicationReference: hasMedicationReference = true; r.Skip(); break;
                case Prop.AuthoredOn: authored = Date(ref r, "authoredOn"); break;
                case Prop.Extension: ReadExtensions(ref r, ref rank, ref doseChange, ref icuAdmission); break;
                case Prop.Identifier when identifiers is not null: ReadIdentifiers(ref r, identifiers); break;
                default: r.Skip(); break;
            }
        }
        if (r.TokenType != JsonTokenType.EndObject) throw new JsonException("unexpected token " + r.TokenType);

        res.ResourceType = resourceType ?? throw new FhirReadException("no resourceType", missing: true);
        res.Id = id;
        switch (resourceType)
        {
            case "Patient":
                res.Patient = new CdmPatient { Id = RequireId(id, resourceType), Gender = gender, BirthDate = birth, DeceasedDateTime = deceased };
                break;
            case "Encounter":
                res.Encounter = new CdmEncounter
                {
                    Id = RequireId(id, resourceType),
                    PatientId = Resolve(subject, "Patient", "subject", resourceType, id, resolve)!,
                    Status = status ?? throw Missing(resourceType, id, "status"),
                    Class = cls ?? throw Missing(resourceType, id, "class"),
                    Types = _types.Count == 0 ? [] : _types.ToArray(),
                    Priority = priority,
                    Start = start, End = end,
                    PartOfEncounterId = partOf is null ? null : resolve(partOf, "Encounter"),
                    AdmitSource = admitSource, DischargeDisposition = discharge,
                    IcuAdmission = icuAdmission,
                    ServiceProvider = serviceProvider is null ? null : NormalizeOrganization(serviceProvider, resolve),
                };
                break;
            case "Observation":
            {
                var pid = Resolve(subject, "Patient", "subject", resourceType, id, resolve)!;
                var eid = encounter is null ? null : resolve(encounter, "Encounter");
                var oid = RequireId(id, resourceType);
                var st = status ?? throw Missing(resourceType, id, "status");
                if (_codings.Count > 0 && (value is not null || valueCode is not null || valueBool is not null || _components.Count == 0))
                {
                    res.Observations.Add(new CdmObservation
                    {
                        Id = oid, PatientId = pid, EncounterId = eid, Status = st, Category = category,
                        Code = _codings[0], AdditionalCodes = _codings.Count > 1 ? _codings.Skip(1).ToArray() : [],
                        Effective = effective, Value = value, Unit = unit, ValueCode = valueCode, ValueBoolean = valueBool,
                        Interpretation = interpretation,
                    });
                }
                else if (_codings.Count == 0) throw Missing(resourceType, id, "code.coding");
                for (int i = 0; i < _components.Count; i++)
                {
                    var (code, v, u) = _components[i];
                    res.Observations.Add(new CdmObservation
                    {
                        Id = oid + "-c" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        PatientId = pid, EncounterId = eid, Status = st, Category = category,
                        Code = code, Effective = effective, Value = v, Unit = u,
                    });
                }
                break;
            }
            case "Condition":
                res.Condition = new CdmCondition
                {
                    Id = RequireId(id, resourceType),
                    PatientId = Resolve(subject, "Patient", "subject", resourceType, id, resolve)!,
                    EncounterId = encounter is null ? null : resolve(encounter, "Encounter"),
                    Code = _codings.Count > 0 ? _codings[0] : throw Missing(resourceType, id, "code.coding"),
                    AdditionalCodes = _codings.Count > 1 ? _codings.Skip(1).ToArray() : [],
                    Category = category ?? "encounter-diagnosis",
                    Onset = onset, Recorded = recorded, ClinicalStatus = clinicalStatus, Rank = rank,
                };
                break;
            case "MedicationRequest":
                if (medication is null)
                    throw new FhirReadException(hasMedicationReference
                        ? $"MedicationRequest/{id}: medicationReference is not supported by the CDM (only medicationCodeableConcept)"
                        : $"MedicationRequest/{id}: missing medicationCodeableConcept.coding");
                res.MedicationRequest = new CdmMedicationRequest
                {
                    Id = RequireId(id, resourceType),
                    PatientId = Resolve(subject, "Patient", "subject", resourceType, id, resolve)!,
                    EncounterId = encounter is null ? null : resolve(encounter, "Encounter"),
                    Medication = medication.Value,
                    Status = status ?? throw Missing(resourceType, id, "status"),
                    Intent = intent ?? throw Missing(resourceType, id, "intent"),
                    AuthoredOn = authored, DoseChange = doseChange,
                };
                break;
        }
        return res;
    }

    private enum Prop { None, Subject, Patient, Encounter, Context, EffectiveDateTime, EffectiveInstant, ResourceType, Id, Status, Code, EffectivePeriod, ValueQuantity, ValueCodeableConcept, ValueBoolean, ValueInteger, Category, Component, Interpretation, Gender, BirthDate, DeceasedDateTime, Class, Type, Priority, Period, Hospitalization, ServiceProvider, PartOf, OnsetDateTime, OnsetPeriod, RecordedDate, ClinicalStatus, Intent, MedicationCodeableConcept, MedicationReference, AuthoredOn, Extension, Identifier }

    private static Prop PropertyOf(ReadOnlySpan<byte> name)
    {
        switch (name.Length)
        {
            case 7 when name.SequenceEqual("subject"u8): return Prop.Subject;
            case 7 when name.SequenceEqual("patient"u8): return Prop.Patient;
            case 7 when name.SequenceEqual("context"u8): return Prop.Context;
            case 9 when name.SequenceEqual("encounter"u8): return Prop.Encounter;
            case 17 when name.SequenceEqual("effectiveDateTime"u8): return Prop.EffectiveDateTime;
            case 16 when name.SequenceEqual("effectiveInstant"u8): return Prop.EffectiveInstant;
            case 2:
                if (name.SequenceEqual("id"u8)) return Prop.Id;
                break;
            case 4:
                if (name.SequenceEqual("code"u8)) return Prop.Code;
                if (name.SequenceEqual("type"u8)) return Prop.Type;
                break;
            case 5:
                if (name.SequenceEqual("class"u8)) return Prop.Class;
                break;
            case 6:
                if (name.SequenceEqual("status"u8)) return Prop.Status;
                if (name.SequenceEqual("gender"u8)) return Prop.Gender;
                if (name.SequenceEqual("period"u8)) return Prop.Period;
                if (name.SequenceEqual("partOf"u8)) return Prop.PartOf;
                if (name.SequenceEqual("intent"u8)) return Prop.Intent;
                break;
            case 8:
                if (name.SequenceEqual("category"u8)) return Prop.Category;
                if (name.SequenceEqual("priority"u8)) return Prop.Priority;
                break;
            case 9:
                if (name.SequenceEqual("component"u8)) return Prop.Component;
                if (name.SequenceEqual("birthDate"u8)) return Prop.BirthDate;
                if (name.SequenceEqual("extension"u8)) return Prop.Extension;
                break;
            case 10 when name.SequenceEqual("identifier"u8): return Prop.Identifier;
            case 10:
                if (name.SequenceEqual("authoredOn"u8)) return Prop.AuthoredOn;
                break;
            case 11:
                if (name.SequenceEqual("onsetPeriod"u8)) return Prop.OnsetPeriod;
                break;
            case 12:
                if (name.SequenceEqual("resourceType"u8)) return Prop.ResourceType;
                if (name.SequenceEqual("valueBoolean"u8)) return Prop.ValueBoolean;
                if (name.SequenceEqual("valueInteger"u8)) return Prop.ValueInteger;
                if (name.SequenceEqual("recordedDate"u8)) return Prop.RecordedDate;
                break;
            case 13:
                if (name.SequenceEqual("valueQuantity"u8)) return Prop.ValueQuantity;
                if (name.SequenceEqual("onsetDateTime"u8)) return Prop.OnsetDateTime;
                break;
            case 14:
                if (name.SequenceEqual("interpretation"u8)) return Prop.Interpretation;
                if (name.SequenceEqual("clinicalStatus"u8)) return Prop.ClinicalStatus;
                break;
            case 15:
                if (name.SequenceEqual("effectivePeriod"u8)) return Prop.EffectivePeriod;
                if (name.SequenceEqual("hospitalization"u8)) return Prop.Hospitalization;
                if (name.SequenceEqual("serviceProvider"u8)) return Prop.ServiceProvider;
                break;
            case 16:
                if (name.SequenceEqual("deceasedDateTime"u8)) return Prop.DeceasedDateTime;
                break;
            case 19:
                if (name.SequenceEqual("medicationReference"u8)) return Prop.MedicationReference;
                break;
            case 20:
                if (name.SequenceEqual("valueCodeableConcept"u8)) return Prop.ValueCodeableConcept;
                break;
            case 25:
                if (name.SequenceEqual("medicationCodeableConcept"u8)) return Prop.MedicationCodeableConcept;
                break;
        }
        return Prop.None;
    }

    private static string NormalizeOrganization(string reference, ReferenceResolver resolve) =>
        resolve(reference, "Organization") is { } orgId ? "Organization/" + orgId : reference;

    private static string RequireId(string? id, string type)
    {
        if (string.IsNullOrEmpty(id)) throw new FhirReadException($"{type} without id", missing: true);
        if (id.Length > 64 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-' || c == '.'))
            throw new FhirReadException($"{type}/{id}: id is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})");
        return id;
    }

    private static FhirReadException Missing(string type, string? id, string field) => new($"{type}/{id}: missing required {field}", missing: true);

    private static string? Resolve(string? reference, string expected, string field, string type, string? id, ReferenceResolver resolve)
    {
        if (reference is null) throw Missing(type, id, field + ".reference");
        return resolve(reference, expected) ?? throw new FhirReadException($"{type}/{id}: {field} '{reference}' does not refer to a {expected}");
    }

    /// <summary>Reads an <c>identifier</c> array (the reader on its value) into (system, value) pairs; anything else is skipped.</summary>
    internal static void ReadIdentifiers(ref Utf8JsonReader r, List<(string System, string Value)> identifiers)
    {
        if (r.TokenType != JsonTokenType.StartArray) { r.Skip(); return; }
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.StartObject) { r.Skip(); continue; }
            string? system = null, value = null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                bool isSystem = r.ValueTextEquals("system"u8), isValue = !isSystem && r.ValueTextEquals("value"u8);
                r.Read();
                if (isSystem && r.TokenType == JsonTokenType.String) system = r.GetString();
                else if (isValue && r.TokenType == JsonTokenType.String) value = r.GetString();
                else r.Skip();
            }

            if (system is not null && value is not null) identifiers.Add((system, value));
        }
    }

    private string Str(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.String) throw new FhirReadException($"expected a string, found {r.TokenType}");
        return r.ValueIsEscaped || r.HasValueSequence ? r.GetString()! : _pool.Get(r.ValueSpan);
    }

    private static string RawStr(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.String) throw new FhirReadException($"expected a string, found {r.TokenType}");
        return r.GetString()!;
    }

    private static DateTimeOffset Date(ref Utf8JsonReader r, string field)
    {
        if (r.TokenType == JsonTokenType.String && FhirDateTime.TryParse(Unescaped(ref r), out var v)) return v;
        throw new FhirReadException($"{field} is not a valid FHIR dateTime");
    }

    private static DateOnly BirthDate(ref Utf8JsonReader r)
    {
        if (r.TokenType == JsonTokenType.String && FhirDateTime.TryParseDate(Unescaped(ref r), out var d)) return d;
        throw new FhirReadException("birthDate is not a valid FHIR date");
    }

    // Re-serialized JSON (Bundle entries, other writers) may escape characters such as '+' as "\u002B".
    private static ReadOnlySpan<byte> Unescaped(ref Utf8JsonReader r) =>
        r.ValueIsEscaped || r.HasValueSequence ? Encoding.UTF8.GetBytes(r.GetString()!) : r.ValueSpan;

    private string? ReadReference(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.StartObject) { r.Skip(); return null; }
        string? reference = null;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            bool isRef = r.ValueTextEquals("reference"u8);
            r.Read();
            if (isRef) reference = Str(ref r); else r.Skip();
        }
        return reference;
    }

    private void ReadPeriod(ref Utf8JsonReader r, out DateTimeOffset? start, out DateTimeOffset? end)
    {
        start = end = null;
        if (r.TokenType != JsonTokenType.StartObject) { r.Skip(); return; }
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            bool s = r.ValueTextEquals("start"u8), e = r.ValueTextEquals("end"u8);
            r.Read();
            if (s) start = Date(ref r, "period.start");
            else if (e) end = Date(ref r, "period.end");
            else r.Skip();
        }
    }

    private void ReadQuantity(ref Utf8JsonReader r, out decimal? value, out string? unit)
    {
        value = null; unit = null;
        string? code = null, unitText = null;
        if (r.TokenType != JsonTokenType.StartObject) { r.Skip(); return; }
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("value"u8))
            {
                r.Read();
                if (r.TokenType != JsonTokenType.Number) throw new FhirReadException("valueQuantity.value is not a number");
                if (r.TryGetDecimal(out var d)) value = d;
                else if (r.GetDouble() is var dbl && Math.Abs(dbl) < 7.9e28) value = (decimal)dbl;
                else throw new FhirReadException("valueQuantity.value is outside the range of a decimal");
            }
            else if (r.ValueTextEquals("code"u8)) { r.Read(); code = Str(ref r); }
            else if (r.ValueTextEquals("unit"u8)) { r.Read(); unitText = Str(ref r); }
            else { r.Read(); r.Skip(); }
        }
        unit = code ?? unitText;
    }

    private CdmCoding? ReadCoding(ref Utf8JsonReader r)
    {
        string? system = null, code = null, display = null;
        if (r.TokenType != JsonTokenType.StartObject) { r.Skip(); return null; }
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("system"u8)) { r.Read(); system = Str(ref r); }
            else if (r.ValueTextEquals("code"u8)) { r.Read(); code = Str(ref r); }
            else if (r.ValueTextEquals("display"u8)) { r.Read(); display = Str(ref r); }
            else { r.Read(); r.Skip(); }
        }
        return code is null ? null : new CdmCoding(system ?? "", code, display);
    }

    private string? ReadCodingCode(ref Utf8JsonReader r) => ReadCoding(ref r)?.Code;

    private void ReadCodeableConcept(ref Utf8JsonReader r, List<CdmCoding> into)
    {
        if (r.TokenType != JsonTokenType.StartObject) { r.Skip(); return; }
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            bool coding = r.ValueTextEquals("coding"u8);
            r.Read();
            if (coding && r.TokenType == JsonTokenType.StartArray)
            {
                while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                    if (ReadCoding(ref r) is { } c) into.Add(c);
            }
            else r.Skip();
        }
    }

    private readonly List<CdmCoding> _scratch = [];

    private CdmCoding? FirstCoding(ref Utf8JsonReader r)
    {
        _scratch.Clear();
        if (r.TokenType == JsonTokenType.StartArray) ReadCodeableConceptArray(ref r, _scratch);
        else ReadCodeableConcept(ref r, _scratch);
        return _scratch.Count > 0 ? _scratch[0] : null;
    }

    private string? FirstCode(ref Utf8JsonReader r) => FirstCoding(ref r)?.Code;

    private void ReadCodeableConceptArray(ref Utf8JsonReader r, List<CdmCoding> into)
    {
        if (r.TokenType != JsonTokenType.StartArray) { ReadCodeableConcept(ref r, into); return; }
        while (r.Read() && r.TokenType != JsonTokenType.EndArray) ReadCodeableConcept(ref r, into);
    }

    private void ReadHospitalization(ref Utf8JsonReader r, out CdmCoding? admit, out CdmCoding? discharge)
    {
        admit = discharge = null;
        if (r.TokenType != JsonTokenType.StartObject) { r.Skip(); return; }
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            bool a = r.ValueTextEquals("admitSource"u8), d = r.ValueTextEquals("dischargeDisposition"u8);
            r.Read();
            if (a) admit = FirstCoding(ref r);
            else if (d) discharge = FirstCoding(ref r);
            else r.Skip();
        }
    }

    private void ReadComponents(ref Utf8JsonReader r)
    {
        if (r.TokenType != JsonTokenType.StartArray) { r.Skip(); return; }
        var codes = new List<CdmCoding>(2);
        while (r.Read() && r.TokenType == JsonTokenType.StartObject)
        {
            codes.Clear();
            decimal? v = null; string? u = null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                bool code = r.ValueTextEquals("code"u8), q = r.ValueTextEquals("valueQuantity"u8);
                r.Read();
                if (code) ReadCodeableConcept(ref r, codes);
                else if (q) ReadQuantity(ref r, out v, out u);
                else r.Skip();
            }
            if (codes.Count > 0 && v is not null) _components.Add((codes[0], v, u));
        }
    }

    private void ReadExtensions(ref Utf8JsonReader r, ref int? rank, ref string? doseChange, ref DateTimeOffset? icuAdmission)
    {
        if (r.TokenType != JsonTokenType.StartArray) { r.Skip(); return; }
        while (r.Read() && r.TokenType == JsonTokenType.StartObject)
        {
            string? url = null; int? intValue = null; string? codeValue = null; DateTimeOffset? dateValue = null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("url"u8)) { r.Read(); url = Str(ref r); }
                else if (r.ValueTextEquals("valuePositiveInt"u8)) { r.Read(); intValue = r.TokenType == JsonTokenType.Number ? r.GetInt32() : null; }
                else if (r.ValueTextEquals("valueCode"u8)) { r.Read(); codeValue = Str(ref r); }
                else if (r.ValueTextEquals("valueDateTime"u8)) { r.Read(); dateValue = Date(ref r, "extension.valueDateTime"); }
                else { r.Read(); r.Skip(); }
            }
            if (url == CdmExtensions.DiagnosisRank) rank = intValue;
            else if (url == CdmExtensions.DoseChange) doseChange = codeValue;
            else if (url == CdmExtensions.IcuAdmission) icuAdmission = dateValue;
        }
    }
}
