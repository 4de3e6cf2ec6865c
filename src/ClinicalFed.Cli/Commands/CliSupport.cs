using System.CommandLine;
using ClinicalFed.Cdm;
using Spectre.Console;

namespace ClinicalFed.Cli.Commands;

/// <summary>Shared plumbing: error reporting (clear message, exit code 2 for bad input) and progress bars.</summary>
internal static class CliSupport
{
    public static Option<string> Required(string name, string description) => new(name) { Description = description, Required = true };

    public static Option<string?> Optional(string name, string description) => new(name) { Description = description };

    /// <summary>Runs a command body, turning data and configuration errors into one clear message on stderr.</summary>
    public static int Run(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is CdmException or InvalidDataException or ArgumentException or FileNotFoundException or DirectoryNotFoundException or System.Text.Json.JsonException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 2;
        }
    }

    public static bool Interactive => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("CI") is null;

    /// <summary>Runs work with a Spectre.Console progress bar when a person is watching, plainly otherwise.</summary>
    public static T WithProgress<T>(string label, Func<Action<double>, T> work)
    {
        if (!Interactive) return work(_ => { });
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: 1.0);
                result = work(f => task.Value = Math.Clamp(f, 0, 1));
                task.Value = 1;
            });
        return result;
    }
}
