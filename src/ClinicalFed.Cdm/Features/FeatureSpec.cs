using System.Text.Json;
using System.Text.Json.Serialization;
using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Features;

/// <summary>
/// A versioned feature specification: the measurements (codes, canonical UCUM unit, plausible range) and the ordered
/// columns every site derives from its CDM, so that all sites produce the same columns in the same order.
/// Schema: <c>schemas/feature-spec.schema.json</c>. Shipped: <c>sepsis-hourly</c>, <c>readmission-30d</c>.
/// </summary>
public sealed record FeatureSpec
{
    [JsonPropertyName("$schema")] public string? Schema { get; init; }
    public int FormatVersion { get; init; } = 1;
    public required string Id { get; init; }
    public required string Version { get; init; }
    /// <summary><c>sepsis</c> (one row per ICU hour) or <c>readmission</c> (one row per inpatient encounter).</summary>
    public required string Task { get; init; }
    public string? Description { get; init; }
    public required LabelSpec Label { get; init; }
    public IReadOnlyList<Measurement> Measurements { get; init; } = [];
    public required IReadOnlyList<Column> Columns { get; init; }

    public sealed record LabelSpec
    {
        public required string Name { get; init; }
        public string? Description { get; init; }
        /// <summary>Sepsis: hours before onset from which the label is 1 (PhysioNet 2019: 6).</summary>
        public double LeadHours { get; init; }
        /// <summary>Readmission: days after discharge within which a new inpatient admission counts.</summary>
        public double WindowDays { get; init; }
    }

    public sealed record Measurement
    {
        public required string Name { get; init; }
        public string? Display { get; init; }
        /// <summary>Codes as "system|code"; the first is the primary one.</summary>
        public required IReadOnlyList<string> Codes { get; init; }
        /// <summary>Canonical UCUM unit; values in other commensurable units are converted.</summary>
        public string? Unit { get; init; }
        public double PlausibleMin { get; init; } = double.NegativeInfinity;
        public double PlausibleMax { get; init; } = double.PositiveInfinity;
    }

    /// <summary>One output column. <c>kind</c> says how it is computed; <c>measurement</c> or <c>code</c> parameterize it.</summary>
    public sealed record Column
    {
        public required string Name { get; init; }
        public required string Kind { get; init; }
        public string? Measurement { get; init; }
        public string? Code { get; init; }
        public IReadOnlyList<string>? Codes { get; init; }
        public string? Description { get; init; }
    }

    /// <summary>Column kinds per task (documented in schemas/feature-spec.schema.json).</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlySet<string>> KindsByTask = new Dictionary<string, IReadOnlySet<string>>
    {
        ["sepsis"] = new HashSet<string> { "last", "measured", "hours-since", "age", "male", "encounter-type", "hospital-admission-offset-hours", "icu-hours" },
        ["readmission"] = new HashSet<string>
        {
            "last", "measured", "abnormal-level", "age", "male", "length-of-stay-days", "acute-admission", "prior-visits", "charlson-index",
            "charlson-condition", "diagnosis-count", "primary-diagnosis-chapter", "medication-count", "dose-change-count", "medication",
            "reported-count", "discharge-disposition", "admit-source",
        },
    };

    /// <summary>Kinds whose columns may hold NaN (a value not observed) and are filled by imputation; all other kinds
    /// (indicators, counts, hours since) never hold NaN.</summary>
    public static bool IsImputable(string kind) => kind is "last" or "age" or "male" or "hospital-admission-offset-hours" or "length-of-stay-days";

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = true,
    };

    public static IReadOnlyList<string> ShippedNames => ValidatedJson.ShippedNames("featurespec");

    /// <summary>The shipped spec for a task (<c>sepsis</c> → sepsis-hourly, <c>readmission</c> → readmission-30d),
    /// a shipped spec id, or a spec file.</summary>
    public static FeatureSpec Load(string taskOrIdOrPath)
    {
        var id = taskOrIdOrPath switch { "sepsis" => "sepsis-hourly", "readmission" => "readmission-30d", _ => taskOrIdOrPath };
        var found = ValidatedJson.Find("featurespec", id, "feature spec") ?? ValidatedJson.Find("featurespec", taskOrIdOrPath, "feature spec")
            ?? throw new CdmException($"No feature spec '{taskOrIdOrPath}' (shipped: {string.Join(", ", ShippedNames)}) and no such file.");
        return Parse(found.Json, found.Source);
    }

    public static FeatureSpec Parse(string json, string source) => ValidatedJson.Parse<FeatureSpec>(json, source, JsonOptions, s => s.Validate(), "feature spec");

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (FormatVersion != 1) e.Add($"format_version: {FormatVersion} is not supported (expected 1)");
        if (!KindsByTask.TryGetValue(Task, out var kinds)) { e.Add($"task: '{Task}' (expected sepsis or readmission)"); kinds = new HashSet<string>(); }
        var measurements = new HashSet<string>();
        for (int i = 0; i < Measurements.Count; i++)
        {
            var m = Measurements[i];
            if (!measurements.Add(m.Name)) e.Add($"measurements[{i}].name: '{m.Name}' appears twice");
            if (m.Codes.Count == 0) e.Add($"measurements[{i}] ({m.Name}): needs at least one code");
            foreach (var c in m.Codes)
            {
                var parts = c.Split('|');
                if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0) e.Add($"measurements[{i}] ({m.Name}): code '{c}' is not 'system|code'");
                else if (parts[0] == Systems.Loinc && !Loinc.IsValidCode(parts[1])) e.Add($"measurements[{i}] ({m.Name}): '{parts[1]}' is not a well-formed LOINC code");
            }
            if (m.Unit is not null && !Ucum.IsKnown(m.Unit)) e.Add($"measurements[{i}] ({m.Name}): unit '{m.Unit}' is not a known UCUM code");
            if (!(m.PlausibleMax > m.PlausibleMin)) e.Add($"measurements[{i}] ({m.Name}): plausible_max must exceed plausible_min");
        }
        var names = new HashSet<string>();
        for (int i = 0; i < Columns.Count; i++)
        {
            var c = Columns[i];
            if (!names.Add(c.Name)) e.Add($"columns[{i}].name: '{c.Name}' appears twice");
            if (!kinds.Contains(c.Kind)) e.Add($"columns[{i}] ({c.Name}): kind '{c.Kind}' is not available for task '{Task}'");
            if (c.Kind is "last" or "measured" or "hours-since" or "abnormal-level" && (c.Measurement is null || !measurements.Contains(c.Measurement)))
                e.Add($"columns[{i}] ({c.Name}): measurement '{c.Measurement}' is not defined in measurements");
            switch (c.Kind)
            {
                case "encounter-type" when c.Code is null || !IsSystemCode(c.Code):
                    e.Add($"columns[{i}] ({c.Name}): kind '{c.Kind}' needs code as 'system|code'"); break;
                case "prior-visits" when c.Code is null:
                    e.Add($"columns[{i}] ({c.Name}): kind 'prior-visits' needs code (the encounter class: EMER, IMP, AMB)"); break;
                case "charlson-condition" or "primary-diagnosis-chapter" or "discharge-disposition" when c.Code is null:
                    e.Add($"columns[{i}] ({c.Name}): kind '{c.Kind}' needs code"); break;
                case "medication" when c.Codes is not { Count: > 0 }:
                    e.Add($"columns[{i}] ({c.Name}): kind 'medication' needs codes as 'system|code'"); break;
                case "admit-source" when c.Code is null && c.Codes is not { Count: > 0 }:
                    e.Add($"columns[{i}] ({c.Name}): kind 'admit-source' needs code or codes"); break;
            }
            if (c.Codes is not null && c.Kind is not "admit-source")
                foreach (var code in c.Codes.Where(x => !IsSystemCode(x)))
                    e.Add($"columns[{i}] ({c.Name}): code '{code}' is not 'system|code'");
            if (c.Kind == "charlson-condition" && !Enum.TryParse<Terminology.CharlsonCondition>(c.Code, out _))
                e.Add($"columns[{i}] ({c.Name}): '{c.Code}' is not a Charlson condition ({string.Join(", ", Enum.GetNames<Terminology.CharlsonCondition>())})");
        }
        if (Columns.Count == 0) e.Add("columns: at least one column is required");
        return e;
    }

    private static bool IsSystemCode(string s) => s.IndexOf('|') is > 0 and var bar && bar < s.Length - 1;

    public IReadOnlyList<string> ColumnNames => Columns.Select(c => c.Name).ToList();
}
