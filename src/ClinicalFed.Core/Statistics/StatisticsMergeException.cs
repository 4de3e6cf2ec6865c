namespace ClinicalFed.Statistics;

/// <summary>Statistics sets that cannot be merged; <see cref="Problems"/> lists every mismatch found.</summary>
public sealed class StatisticsMergeException : ArgumentException
{
    /// <summary>Creates the exception from the full list of problems.</summary>
    public StatisticsMergeException(IReadOnlyList<string> problems)
        : base(FormatMessage(problems))
    {
        Problems = problems.ToArray();
    }

    /// <summary>Every mismatch found, one sentence each.</summary>
    public IReadOnlyList<string> Problems { get; }

    private static string FormatMessage(IReadOnlyList<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        string noun = problems.Count == 1 ? "problem" : "problems";
        return $"Cannot merge statistics sets ({problems.Count} {noun}):" + Environment.NewLine +
            string.Join(Environment.NewLine, problems.Select(p => " - " + p));
    }
}
