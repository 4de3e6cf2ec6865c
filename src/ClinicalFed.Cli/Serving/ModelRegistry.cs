using System.Globalization;

namespace ClinicalFed.Cli.Serving;

/// <summary>
/// The model being served, swapped without dropping requests: every request reads <see cref="Current"/> once and scores
/// with that model to the end, while <see cref="Refresh"/> (called on a timer) loads the newest round of the same
/// federation that has a model and replaces the reference atomically. A round that cannot be loaded is skipped and
/// the current model stays.
/// </summary>
public sealed class ModelRegistry
{
    private readonly string _roundsFolder;
    private readonly string? _site;
    private readonly bool _pinned;
    private ScoringModel _current;

    /// <param name="personalizedFile">A site's own personalized model file: served as it is, never replaced by a newer round.</param>
    public ModelRegistry(string roundDirectory, string? site, string? personalizedFile = null)
    {
        _site = site;
        _pinned = personalizedFile is not null;
        _current = ScoringModel.Load(roundDirectory, site, personalizedFile);
        _roundsFolder = Path.GetDirectoryName(Path.GetFullPath(roundDirectory).TrimEnd(Path.DirectorySeparatorChar))!;
    }

    public ScoringModel Current => Volatile.Read(ref _current);

    /// <summary>The last reload problem, if any (the current model stays in service).</summary>
    public string? LastProblem { get; private set; }

    /// <summary>Loads the newest round with a model if it is newer than the current one; returns true when the model changed.</summary>
    public bool Refresh()
    {
        if (_pinned) return false;
        var newest = Directory.EnumerateDirectories(_roundsFolder)
            .Select(d => (Path: d, Round: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out int r) ? r : -1))
            .Where(x => x.Round > Current.Header.Round && File.Exists(Path.Combine(x.Path, "global.cfm")))
            .OrderByDescending(x => x.Round).FirstOrDefault();
        if (newest.Path is null) return false;
        try
        {
            var next = ScoringModel.Load(newest.Path, _site);
            if (next.Task != Current.Task) throw new InvalidOperationException($"round {newest.Round} serves {next.Task}, not {Current.Task}");
            Volatile.Write(ref _current, next);
            LastProblem = null;
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or NotSupportedException or ClinicalFed.Federation.FederationDataException or UnauthorizedAccessException)
        {
            LastProblem = $"round {newest.Round}: {e.Message}";
            return false;
        }
    }
}
