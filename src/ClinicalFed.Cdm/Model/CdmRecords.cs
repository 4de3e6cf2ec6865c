namespace ClinicalFed.Cdm.Model;

/// <summary>A code with its system, the unit of terminology binding in the CDM.</summary>
public readonly record struct CdmCoding(string System, string Code, string? Display = null)
{
    public override string ToString() => $"{System}|{Code}";
}

/// <summary>The resource types the ClinicalFed common data model carries; everything else is counted and skipped.</summary>
public enum CdmResourceType { Patient, Encounter, Observation, Condition, MedicationRequest }

public static class CdmResourceTypes
{
    public static readonly IReadOnlyList<CdmResourceType> All =
        [CdmResourceType.Patient, CdmResourceType.Encounter, CdmResourceType.Observation, CdmResourceType.Condition, CdmResourceType.MedicationRequest];

    public static string FileName(CdmResourceType type) => type + ".ndjson.gz";

    public static bool TryParse(ReadOnlySpan<char> name, out CdmResourceType type) => Enum.TryParse(name, ignoreCase: false, out type) && Enum.IsDefined(type);
}

public sealed record CdmPatient
{
    public required string Id { get; init; }
    /// <summary>FHIR administrative gender: male, female, other, unknown.</summary>
    public string? Gender { get; init; }
    public DateOnly? BirthDate { get; init; }
    public DateTimeOffset? DeceasedDateTime { get; init; }
}

public sealed record CdmEncounter
{
    public required string Id { get; init; }
    public required string PatientId { get; init; }
    public string Status { get; init; } = "finished";
    /// <summary>v3 ActCode class: IMP, EMER, AMB, ...</summary>
    public required string Class { get; init; }
    public IReadOnlyList<CdmCoding> Types { get; init; } = [];
    /// <summary>v3 ActPriority: EM (emergency), UR (urgent), EL (elective), ...</summary>
    public string? Priority { get; init; }
    public DateTimeOffset? Start { get; init; }
    public DateTimeOffset? End { get; init; }
    public string? PartOfEncounterId { get; init; }
    public CdmCoding? AdmitSource { get; init; }
    public CdmCoding? DischargeDisposition { get; init; }
    /// <summary>Reference to the organisation that provided the encounter ("Organization/x").</summary>
    public string? ServiceProvider { get; init; }
    /// <summary>ICU admission when it precedes the recorded period (see <c>CdmExtensions.IcuAdmission</c>).</summary>
    public DateTimeOffset? IcuAdmission { get; init; }

    public bool IsIcuStay => Types.Any(t => t.System == Terminology.Systems.Snomed && t.Code == Terminology.Systems.IcuStayCode);
}

/// <summary>One measured value. The CDM holds one value per Observation: panels with components are flattened.</summary>
public sealed record CdmObservation
{
    public required string Id { get; init; }
    public required string PatientId { get; init; }
    public string? EncounterId { get; init; }
    public string Status { get; init; } = "final";
    public string? Category { get; init; }
    public required CdmCoding Code { get; init; }
    public IReadOnlyList<CdmCoding> AdditionalCodes { get; init; } = [];
    public DateTimeOffset? Effective { get; init; }
    /// <summary>Quantity value as written in the source (decimal keeps the source's precision).</summary>
    public decimal? Value { get; init; }
    /// <summary>UCUM code of <see cref="Value"/>.</summary>
    public string? Unit { get; init; }
    public CdmCoding? ValueCode { get; init; }
    public bool? ValueBoolean { get; init; }
    /// <summary>v3 ObservationInterpretation code (N, H, HH, L, LL, A).</summary>
    public string? Interpretation { get; init; }
}

public sealed record CdmCondition
{
    public required string Id { get; init; }
    public required string PatientId { get; init; }
    public string? EncounterId { get; init; }
    public required CdmCoding Code { get; init; }
    public IReadOnlyList<CdmCoding> AdditionalCodes { get; init; } = [];
    /// <summary>encounter-diagnosis or problem-list-item.</summary>
    public string Category { get; init; } = "encounter-diagnosis";
    public DateTimeOffset? Onset { get; init; }
    public DateTimeOffset? Recorded { get; init; }
    public string? ClinicalStatus { get; init; }
    /// <summary>Rank of a diagnosis within its encounter (1 = principal), when the source says.</summary>
    public int? Rank { get; init; }
}

public sealed record CdmMedicationRequest
{
    public required string Id { get; init; }
    public required string PatientId { get; init; }
    public string? EncounterId { get; init; }
    public required CdmCoding Medication { get; init; }
    public string Status { get; init; } = "active";
    public string Intent { get; init; } = "order";
    public DateTimeOffset? AuthoredOn { get; init; }
    /// <summary>Dose change at this encounter, when the source records it: up, down, steady.</summary>
    public string? DoseChange { get; init; }
}

/// <summary>One in-memory CDM's records by type (a <see cref="Io.CdmWriter.ToRecords"/> writer's output).</summary>
public sealed class CdmRecords
{
    public List<CdmPatient> Patients { get; } = [];
    public List<CdmEncounter> Encounters { get; } = [];
    public List<CdmObservation> Observations { get; } = [];
    public List<CdmCondition> Conditions { get; } = [];
    public List<CdmMedicationRequest> MedicationRequests { get; } = [];

    public long Count(CdmResourceType type) => type switch
    {
        CdmResourceType.Patient => Patients.Count,
        CdmResourceType.Encounter => Encounters.Count,
        CdmResourceType.Observation => Observations.Count,
        CdmResourceType.Condition => Conditions.Count,
        CdmResourceType.MedicationRequest => MedicationRequests.Count,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };
}
