namespace ClinicalFed.Cdm.Terminology;

/// <summary>Code system URIs used by the ClinicalFed common data model.</summary>
public static class Systems
{
    public const string Loinc = "http://loinc.org";
    public const string Ucum = "http://unitsofmeasure.org";
    public const string Snomed = "http://snomed.info/sct";
    public const string Icd9Cm = "http://hl7.org/fhir/sid/icd-9-cm";
    public const string Icd10 = "http://hl7.org/fhir/sid/icd-10";
    public const string Icd10Cm = "http://hl7.org/fhir/sid/icd-10-cm";
    public const string RxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";
    public const string ActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    public const string ActPriority = "http://terminology.hl7.org/CodeSystem/v3-ActPriority";
    public const string AdmitSource = "http://terminology.hl7.org/CodeSystem/admit-source";
    public const string DischargeDisposition = "http://terminology.hl7.org/CodeSystem/discharge-disposition";
    public const string ObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category";
    public const string ConditionCategory = "http://terminology.hl7.org/CodeSystem/condition-category";

    /// <summary>ClinicalFed's own code system, for concepts that have no standard code (outcome labels,
    /// pre-aggregated utilisation counts from flat extracts, ICU unit types).</summary>
    public const string ClinicalFed = "https://clinicalfed.dev/fhir/CodeSystem/cdm";

    /// <summary>SNOMED CT 305351004 |Admission to intensive care unit (procedure)|: marks an ICU stay encounter.</summary>
    public const string IcuStayCode = "305351004";

    /// <summary>SNOMED CT 91302008 |Sepsis (disorder)|.</summary>
    public const string SepsisCode = "91302008";

    public const string ReadmissionLabelCode = "readmission-30d";
}
