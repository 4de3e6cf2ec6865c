namespace ClinicalFed.Federation;

/// <summary>
/// A federation file or document (round manifest, update, model, server state, round result) that is malformed,
/// inconsistent or corrupt. <see cref="Origin"/> names the file or store path; <see cref="Problems"/> lists every
/// problem found, each naming the field it concerns.
/// </summary>
public sealed class FederationDataException : Exception
{
    public FederationDataException(string origin, IReadOnlyList<string> problems, Exception? inner = null)
        : base(Format(origin, problems), inner)
    {
        Origin = origin;
        Problems = problems.ToArray();
    }

    public FederationDataException(string origin, string problem, Exception? inner = null)
        : this(origin, [problem], inner)
    {
    }

    /// <summary>The file, store path or description of what was being read or written.</summary>
    public string Origin { get; }

    /// <summary>Every problem found, one sentence each.</summary>
    public IReadOnlyList<string> Problems { get; }

    private static string Format(string origin, IReadOnlyList<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        if (problems.Count == 1) return $"{origin}: {problems[0]}";
        return $"{origin}: {problems.Count} problems:" + Environment.NewLine +
            string.Join(Environment.NewLine, problems.Select(p => " - " + p));
    }
}

/// <summary>Strategy options that are not valid; <see cref="Problems"/> lists every problem at once.</summary>
public sealed class StrategyOptionsException : ArgumentException
{
    public StrategyOptionsException(string strategy, IReadOnlyList<string> problems)
        : base(Format(strategy, problems))
    {
        Strategy = strategy;
        Problems = problems.ToArray();
    }

    public string Strategy { get; }

    public IReadOnlyList<string> Problems { get; }

    private static string Format(string strategy, IReadOnlyList<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        string noun = problems.Count == 1 ? "problem" : "problems";
        return $"Invalid options for strategy '{strategy}' ({problems.Count} {noun}):" + Environment.NewLine +
            string.Join(Environment.NewLine, problems.Select(p => " - " + p));
    }
}

/// <summary>
/// An update a strategy refuses for this round (wrong federation, round or dimension, unexpected or repeated site,
/// no examples, non-finite values). The strategy's accumulated state is unchanged, so the caller can record
/// <see cref="Reason"/> and go on with the next update.
/// </summary>
public sealed class UpdateRejectedException : Exception
{
    public UpdateRejectedException(string site, IReadOnlyList<string> reasons)
        : base($"update from site '{site}' rejected: {string.Join("; ", reasons)}")
    {
        Site = site;
        Reasons = reasons.ToArray();
    }

    public string Site { get; }

    public IReadOnlyList<string> Reasons { get; }

    /// <summary>All reasons in one sentence, as recorded in the round result.</summary>
    public string Reason => string.Join("; ", Reasons);
}
