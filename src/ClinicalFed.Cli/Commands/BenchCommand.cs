using System.CommandLine;

namespace ClinicalFed.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create() => new("bench", "(being built)");
}
