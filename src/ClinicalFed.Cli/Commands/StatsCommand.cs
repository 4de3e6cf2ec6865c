using System.CommandLine;

namespace ClinicalFed.Cli.Commands;

internal static class StatsCommand
{
    public static Command Create() => new("stats", "(being built)");
}
