using System.Text.RegularExpressions;

namespace ClinicalFed.Federation;

/// <summary>
/// Rules for the names that become parts of store paths and blob names: federations and sites. A name is 1–64
/// characters from <c>A–Z a–z 0–9 _ . -</c>; it may not start or end with '.' (Windows and Azure Blob Storage drop
/// trailing dots, leading dots make hidden files, and "." / ".." would walk the folder tree) and may not be a Windows device name (CON, NUL, COM1, ...).
/// Rounds are numbered 0 to <see cref="MaxRound"/> (five digits in store paths).
/// </summary>
public static partial class FederationNames
{
    public const int MaxLength = 64;

    /// <summary>Highest round number: store paths use five digits.</summary>
    public const int MaxRound = 99_999;

    private static readonly HashSet<string> DeviceNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "CON", "PRN", "AUX", "NUL",
        "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
        "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    };

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    /// <summary>True when <paramref name="name"/> may be used as a federation or site name.</summary>
    public static bool IsValid(string? name) => Problem(name, "name") is null;

    /// <summary>Why <paramref name="name"/> is not a valid name, as a sentence starting with <paramref name="what"/>; null when it is valid.</summary>
    public static string? Problem(string? name, string what)
    {
        if (string.IsNullOrEmpty(name)) return $"{what} is missing or empty";
        if (!NamePattern().IsMatch(name))
            return $"{what} '{Shorten(name)}' is not valid: use 1 to {MaxLength} characters from A-Z, a-z, 0-9, '_', '.' and '-'";
        if (name.StartsWith('.') || name.EndsWith('.')) return $"{what} '{name}' is not valid: it may not start or end with '.'";
        int dot = name.IndexOf('.');
        if (DeviceNames.Contains(dot < 0 ? name : name[..dot]))
            return $"{what} '{name}' is not valid: it is a reserved device name on Windows";
        return null;
    }

    /// <summary>Why <paramref name="round"/> is not a valid round number; null when it is.</summary>
    public static string? RoundProblem(int round, string what = "round") =>
        round is < 0 or > MaxRound ? $"{what} {round} is out of range (0 to {MaxRound})" : null;

    /// <summary>Throws <see cref="ArgumentException"/> naming the parameter when <paramref name="name"/> is not valid.</summary>
    public static string Validate(string? name, string what, string? paramName = null)
    {
        var problem = Problem(name, what);
        if (problem is not null) throw new ArgumentException(problem, paramName ?? what);
        return name!;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when <paramref name="round"/> is not a valid round number.</summary>
    public static int ValidateRound(int round, string paramName = "round")
    {
        var problem = RoundProblem(round);
        if (problem is not null) throw new ArgumentOutOfRangeException(paramName, round, problem);
        return round;
    }

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";
}
