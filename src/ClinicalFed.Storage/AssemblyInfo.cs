// ClinicalFed.Storage
