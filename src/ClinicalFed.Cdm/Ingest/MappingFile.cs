using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Ingest;

/// <summary>
/// A declarative description of a flat EHR extract (CSV / pipe-separated, one file or one file per patient):
/// which columns hold the patient, the stay, the time, each measured value (LOINC + UCUM), demographics, diagnoses
/// (ICD-9-CM / ICD-10), medications and outcome labels. Schema: <c>schemas/mapping.schema.json</c>.
/// </summary>
public sealed record MappingFile
{
    [JsonPropertyName("$schema")] public string? Schema { get; init; }
    public int FormatVersion { get; init; }
    public required string Name { get; init; }
    public string? Description { get; init; }
    public SourceSpec Source { get; init; } = new();
    /// <summary>Instant that hour offsets count from, and the start of encounters that have no time at all.</summary>
    public DateTimeOffset Anchor { get; init; } = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public required PatientSpec Patient { get; init; }
    public required EncounterSpec Encounter { get; init; }
    public IReadOnlyList<ObservationColumn> Observations { get; init; } = [];
    public IReadOnlyList<DiagnosisColumn> Diagnoses { get; init; } = [];
    public IReadOnlyList<MedicationColumn> Medications { get; init; } = [];
    public IReadOnlyList<LabelColumn> Labels { get; init; } = [];
    /// <summary>Named row subsets of one extract that act as separate sites (Diabetes 130 has no hospital id).</summary>
    public IReadOnlyDictionary<string, SiteSelector> Sites { get; init; } = new Dictionary<string, SiteSelector>();

    public sealed record SourceSpec
    {
        public string Delimiter { get; init; } = ",";
        public IReadOnlyList<string> MissingValues { get; init; } = ["", "NaN", "?"];
        /// <summary>When the input is a folder: one file per patient; the patient id is the file name without its
        /// extension and the hour offset is the row index.</summary>
        public PerPatientFiles? PerPatientFiles { get; init; }
    }

    public sealed record PerPatientFiles
    {
        public string Pattern { get; init; } = "*.psv";
        public string Delimiter { get; init; } = "|";
    }

    public sealed record ValueMap
    {
        public required string Column { get; init; }
        public IReadOnlyDictionary<string, string?> Map { get; init; } = new Dictionary<string, string?>();
    }

    public sealed record PatientSpec
    {
        public required string IdColumn { get; init; }
        public string IdPrefix { get; init; } = "";
        public ValueMap? Gender { get; init; }
        /// <summary>Age at the stay: <c>years</c> (a number) or <c>band</c> ("[70-80)", its midpoint is used).</summary>
        public AgeSpec? Age { get; init; }
    }

    public sealed record AgeSpec
    {
        public required string Column { get; init; }
        public string Kind { get; init; } = "years";
    }

    public sealed record EncounterSpec
    {
        /// <summary>Column with the stay/encounter id; without it, each patient's rows form one stay.</summary>
        public string? IdColumn { get; init; }
        public string IdPrefix { get; init; } = "";
        public string IdSuffix { get; init; } = "";
        public string Class { get; init; } = "IMP";
        public bool IcuStay { get; init; }
        public TimeSpec Time { get; init; } = new();
        /// <summary>ICU length of stay so far in hours (1 on the first ICU hour): the ICU admission is derived from it.</summary>
        public string? IcuHoursColumn { get; init; }
        /// <summary>Hours from hospital admission to ICU admission (negative): emits the hospital stay as the ICU
        /// stay's parent encounter (<c>partOf</c>).</summary>
        public string? HospitalAdmissionOffsetHoursColumn { get; init; }
        /// <summary>Length of stay when rows do not span it: <c>{"column": "time_in_hospital", "unit": "d"}</c>.</summary>
        public LengthOfStaySpec? LengthOfStay { get; init; }
        public ValueMap? Priority { get; init; }
        public ValueMap? AdmitSource { get; init; }
        public ValueMap? DischargeDisposition { get; init; }
        public IReadOnlyList<TypeFlag> Types { get; init; } = [];
    }

    public sealed record TimeSpec
    {
        /// <summary><c>hour-offset</c> (hours after the anchor), <c>timestamp</c> (ISO 8601) or <c>none</c>.</summary>
        public string Kind { get; init; } = "none";
        public string? Column { get; init; }
    }

    public sealed record LengthOfStaySpec
    {
        public required string Column { get; init; }
        public string Unit { get; init; } = "d";
    }

    public sealed record TypeFlag
    {
        public required string Column { get; init; }
        public string When { get; init; } = "1";
        public string System { get; init; } = Systems.ClinicalFed;
        public required string Code { get; init; }
        public string? Display { get; init; }
    }

    public sealed record ObservationColumn
    {
        public required string Column { get; init; }
        public string System { get; init; } = Systems.Loinc;
        public required string Code { get; init; }
        public string? Display { get; init; }
        /// <summary>UCUM unit of the numbers in the column.</summary>
        public string? Unit { get; init; }
        /// <summary>observation-category code: vital-signs, laboratory, ...</summary>
        public string? Category { get; init; }
        /// <summary>For categorical columns: each source value → a v3 ObservationInterpretation code (N, H, HH, …) or
        /// null for "not measured".</summary>
        public IReadOnlyDictionary<string, string?>? Interpretations { get; init; }
        public string? Note { get; init; }
    }

    public sealed record DiagnosisColumn
    {
        public required string Column { get; init; }
        /// <summary><c>icd-9-cm</c>, <c>icd-10</c> or <c>icd-10-cm</c>.</summary>
        public string CodeSystem { get; init; } = "icd-9-cm";
        public int? Rank { get; init; }
    }

    public sealed record MedicationColumn
    {
        public required string Column { get; init; }
        public string System { get; init; } = Systems.ClinicalFed;
        public required string Code { get; init; }
        public string? Display { get; init; }
        /// <summary>Values meaning the drug was not given.</summary>
        public IReadOnlyList<string> AbsentValues { get; init; } = ["No"];
        /// <summary>Source value → dose change code (up, down, steady).</summary>
        public IReadOnlyDictionary<string, string> DoseChange { get; init; } = new Dictionary<string, string>();
    }

    public sealed record LabelColumn
    {
        public required string Column { get; init; }
        /// <summary><c>sepsis-onset</c> (hourly 0/1 flag that turns on <c>lead_hours</c> before onset) or
        /// <c>readmission-30d</c> (per encounter).</summary>
        public required string Kind { get; init; }
        public IReadOnlyList<string> Positive { get; init; } = ["1"];
        public IReadOnlyList<string> Negative { get; init; } = ["0"];
        public double LeadHours { get; init; }
    }

    public sealed record SiteSelector
    {
        public string? Column { get; init; }
        public IReadOnlyList<string> Values { get; init; } = [];
        /// <summary>The site takes every row no other site of the mapping takes.</summary>
        public bool Otherwise { get; init; }
    }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
    };

    public static IReadOnlyList<string> ShippedNames => ValidatedJson.ShippedNames("mapping");

    /// <summary>Loads a shipped mapping by name (<c>physionet2019</c>, <c>diabetes130</c>) or a mapping file by path,
    /// and validates it, reporting every problem at once.</summary>
    public static MappingFile Load(string nameOrPath)
    {
        var found = ValidatedJson.Find("mapping", nameOrPath, "mapping")
            ?? throw new CdmException($"No mapping named '{nameOrPath}' (shipped: {string.Join(", ", ShippedNames)}) and no such file.");
        return Parse(found.Json, found.Source);
    }

    public static MappingFile Parse(string json, string source) => ValidatedJson.Parse<MappingFile>(json, source, JsonOptions, m => m.Validate(), "mapping");

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (FormatVersion != 1) e.Add($"format_version: {FormatVersion} is not supported (expected 1)");
        if (Source.Delimiter.Length != 1) e.Add("source.delimiter: must be one character");
        if (Source.PerPatientFiles is { Delimiter.Length: not 1 }) e.Add("source.per_patient_files.delimiter: must be one character");
        if (Encounter.Time.Kind is not ("hour-offset" or "timestamp" or "none")) e.Add($"encounter.time.kind: '{Encounter.Time.Kind}' (expected hour-offset, timestamp or none)");
        if (Encounter.Time.Kind != "none" && Encounter.Time.Column is null) e.Add("encounter.time.column: required when time.kind is not none");
        if (Patient.Age is { Kind: not ("years" or "band") }) e.Add($"patient.age.kind: '{Patient.Age.Kind}' (expected years or band)");
        if (Encounter.LengthOfStay is { Unit: not ("d" or "h") }) e.Add($"encounter.length_of_stay.unit: '{Encounter.LengthOfStay.Unit}' (expected d or h)");
        if (Patient.Gender is { } g)
            foreach (var (k, v) in g.Map)
                if (v is not (null or "male" or "female" or "other" or "unknown")) e.Add($"patient.gender.map['{k}']: '{v}' is not a FHIR administrative gender");
        var seen = new HashSet<string>();
        for (int i = 0; i < Observations.Count; i++)
        {
            var o = Observations[i];
            if (!seen.Add(o.Column)) e.Add($"observations[{i}].column: '{o.Column}' is mapped twice");
            if (o.System == Systems.Loinc && !Loinc.IsValidCode(o.Code)) e.Add($"observations[{i}] ({o.Column}): '{o.Code}' is not a well-formed LOINC code (check digit)");
            if (o.Unit is not null && o.Interpretations is not null) e.Add($"observations[{i}] ({o.Column}): give either unit (numeric) or interpretations (categorical), not both");
            if (o.Unit is not null && !Ucum.IsKnown(o.Unit)) e.Add($"observations[{i}] ({o.Column}): unit '{o.Unit}' is not a UCUM code ClinicalFed knows (see Terminology/Ucum.cs)");
        }
        for (int i = 0; i < Diagnoses.Count; i++)
            if (IcdSystem(Diagnoses[i].CodeSystem) is null) e.Add($"diagnoses[{i}].code_system: '{Diagnoses[i].CodeSystem}' (expected icd-9-cm, icd-10 or icd-10-cm)");
        for (int i = 0; i < Labels.Count; i++)
        {
            var l = Labels[i];
            if (l.Kind is not ("sepsis-onset" or "readmission-30d")) e.Add($"labels[{i}].kind: '{l.Kind}' (expected sepsis-onset or readmission-30d)");
            if (l.Kind == "sepsis-onset" && Encounter.Time.Kind == "none") e.Add($"labels[{i}]: sepsis-onset needs a time column (encounter.time)");
            if (l.Positive.Intersect(l.Negative).Any()) e.Add($"labels[{i}]: a value is both positive and negative");
        }
        if (Sites.Count(s => s.Value.Otherwise) > 1) e.Add("sites: at most one site may be 'otherwise'");
        foreach (var (name, s) in Sites)
            if (!s.Otherwise && (s.Column is null || s.Values.Count == 0)) e.Add($"sites.{name}: needs column and values, or otherwise: true");
        return e;
    }

    public static string? IcdSystem(string name) => name switch
    {
        "icd-9-cm" => Systems.Icd9Cm,
        "icd-10" => Systems.Icd10,
        "icd-10-cm" => Systems.Icd10Cm,
        _ => null,
    };

    /// <summary>Every column the mapping reads, with the mapping field that names it (for "file lacks column" errors).</summary>
    public IEnumerable<(string Column, string Field)> RequiredColumns(bool perPatientFiles)
    {
        if (!perPatientFiles) yield return (Patient.IdColumn, "patient.id_column");
        if (Patient.Gender is { } g) yield return (g.Column, "patient.gender.column");
        if (Patient.Age is { } a) yield return (a.Column, "patient.age.column");
        if (Encounter.IdColumn is { } id) yield return (id, "encounter.id_column");
        if (Encounter.Time.Column is { } t && !(perPatientFiles && Encounter.Time.Kind == "hour-offset")) yield return (t, "encounter.time.column");
        if (Encounter.IcuHoursColumn is { } ic) yield return (ic, "encounter.icu_hours_column");
        if (Encounter.HospitalAdmissionOffsetHoursColumn is { } h) yield return (h, "encounter.hospital_admission_offset_hours_column");
        if (Encounter.LengthOfStay is { } los) yield return (los.Column, "encounter.length_of_stay.column");
        if (Encounter.Priority is { } p) yield return (p.Column, "encounter.priority.column");
        if (Encounter.AdmitSource is { } ad) yield return (ad.Column, "encounter.admit_source.column");
        if (Encounter.DischargeDisposition is { } d) yield return (d.Column, "encounter.discharge_disposition.column");
        for (int i = 0; i < Encounter.Types.Count; i++) yield return (Encounter.Types[i].Column, $"encounter.types[{i}].column");
        for (int i = 0; i < Observations.Count; i++) yield return (Observations[i].Column, $"observations[{i}].column");
        for (int i = 0; i < Diagnoses.Count; i++) yield return (Diagnoses[i].Column, $"diagnoses[{i}].column");
        for (int i = 0; i < Medications.Count; i++) yield return (Medications[i].Column, $"medications[{i}].column");
        for (int i = 0; i < Labels.Count; i++) yield return (Labels[i].Column, $"labels[{i}].column");
    }
}
