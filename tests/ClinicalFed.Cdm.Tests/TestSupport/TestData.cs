namespace ClinicalFed.Cdm.Tests.TestSupport;

/// <summary>
/// Locates the shared real-data folder (<c>shared/data</c>, beside the repository, never inside it) by walking up
/// from the test assembly's folder. Real-data tests return early with a logged message when it is absent.
/// </summary>
public static class TestData
{
    private static readonly Lazy<string?> Root = new(Find);

    /// <summary>The <c>shared/data</c> folder, or null when this machine does not have it.</summary>
    public static string? SharedDataRoot => Root.Value;

    private static string? Find()
    {
        var env = Environment.GetEnvironmentVariable("CLINICALFED_SHARED_DATA");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return Path.GetFullPath(env);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var candidate in new[] { Path.Combine(dir.FullName, "shared", "data"), Path.Combine(dir.FullName, "..", "shared", "data") })
                if (Directory.Exists(candidate)) return Path.GetFullPath(candidate);
        }
        return null;
    }

    /// <summary>The path of <paramref name="relative"/> under shared/data when it exists; otherwise null, after writing
    /// why to <paramref name="log"/>.</summary>
    public static string? Find(string relative, Action<string> log)
    {
        if (SharedDataRoot is null)
        {
            log($"SKIPPED: no shared/data folder above {AppContext.BaseDirectory}; this real-data test did not run.");
            return null;
        }
        var path = Path.Combine(SharedDataRoot, relative);
        if (File.Exists(path) || Directory.Exists(path)) return path;
        log($"SKIPPED: {path} does not exist; this real-data test did not run.");
        return null;
    }
}

/// <summary>A fresh folder under the system temp folder, deleted (with everything in it) on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public string Path { get; }

    public TempFolder(string? prefix = null)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"clinicalfed-{prefix ?? "test"}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    /// <summary>A path inside the folder (not created).</summary>
    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Writes a text file inside the folder and returns its path.</summary>
    public string WriteText(string name, string content)
    {
        var p = Combine(name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        File.WriteAllText(p, content);
        return p;
    }

    public void Dispose()
    {
        try { if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
