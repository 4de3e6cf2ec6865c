using ClinicalFed.Cli;

namespace ClinicalFed.Cli.Tests;

/// <summary>Console redirection is process-wide, so tests that run the CLI share one non-parallel collection.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CliCollection
{
    public const string Name = "cli";
}

internal static class Cli
{
    /// <summary>Runs the clinicalfed command line in-process and returns its exit code and output.</summary>
    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            int exit = Program.BuildRoot().Parse(args).Invoke(new System.CommandLine.InvocationConfiguration { Output = o, Error = e });
            return (exit, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    /// <summary>A file of the repository's schemas/ folder, found from the test binaries upwards.</summary>
    public static string SchemaPath(string name)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(System.IO.Path.Combine(d.FullName, "schemas", name))) return System.IO.Path.Combine(d.FullName, "schemas", name);
        throw new FileNotFoundException(name);
    }
}

internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cf-cli-" + Guid.NewGuid().ToString("N")[..8]);
    public TempDir() => Directory.CreateDirectory(Path);
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}
