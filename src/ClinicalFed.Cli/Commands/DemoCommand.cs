using System.CommandLine;

namespace ClinicalFed.Cli.Commands;

internal static class DemoCommand
{
    public static Command Create() => new("demo", "(being built)");
}
