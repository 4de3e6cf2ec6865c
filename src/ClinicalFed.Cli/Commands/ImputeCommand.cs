using System.CommandLine;

namespace ClinicalFed.Cli.Commands;

internal static class ImputeCommand
{
    public static Command Create() => new("impute", "(being built)");
}
