using System.CommandLine;

namespace ClinicalFed.Cli.Commands;

internal static class FeaturesCommand
{
    public static Command Create() => new("features", "(being built)");
}
