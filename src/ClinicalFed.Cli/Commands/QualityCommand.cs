using System.CommandLine;

namespace ClinicalFed.Cli.Commands;

internal static class QualityCommand
{
    public static Command Create() => new("quality", "(being built)");
}
