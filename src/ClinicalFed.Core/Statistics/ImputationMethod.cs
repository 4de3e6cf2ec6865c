namespace ClinicalFed.Statistics;

/// <summary>Which reference statistic replaces missing values.</summary>
public enum ImputationMethod
{
    /// <summary>The column mean.</summary>
    Mean,

    /// <summary>The histogram-interpolated column median.</summary>
    Median,
}
