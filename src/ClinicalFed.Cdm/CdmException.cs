namespace ClinicalFed.Cdm;

/// <summary>An error in a site's data or configuration, with a message naming the file, line or field.</summary>
public sealed class CdmException(string message, Exception? inner = null) : Exception(message, inner);
