// ClinicalFed.Learning: ML.NET trainers and evaluation for the federation.
