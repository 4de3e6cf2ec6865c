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
            System.Console.Error.WriteLine("error: " + e.Message);
            if (Environment.GetEnvironmentVariable("CLINICALFED_DEBUG") is "1") System.Console.Error.WriteLine(e);
            return 2;
        }
    }

    /// <summary>A console over the current <see cref="System.Console.Out"/> (created per command, so output that
    /// is redirected after start-up, as in tests and pipelines, is honoured).</summary>
    public static IAnsiConsole Console()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(System.Console.Out),
            Interactive = Interactive ? InteractionSupport.Yes : InteractionSupport.No,
        });
        // Logs and CI capture output: don't wrap tables at 80 columns there.
        if (System.Console.IsOutputRedirected) console.Profile.Width = 200;
        return console;
    }

    public static bool Interactive => !System.Console.IsOutputRedirected && Environment.GetEnvironmentVariable("CI") is null;

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
