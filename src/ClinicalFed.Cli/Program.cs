using System.CommandLine;
using ClinicalFed.Cli.Commands;

namespace ClinicalFed.Cli;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        return await BuildRoot().Parse(args).InvokeAsync();
    }

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("ClinicalFed: federated clinical prediction for hospital sites. Patient records never leave the site.");
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(ValidateCommand.Create());
        root.Subcommands.Add(QualityCommand.Create());
        root.Subcommands.Add(FeaturesCommand.Create());
        root.Subcommands.Add(StatsCommand.Create());
        root.Subcommands.Add(ImputeCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(SimulateCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(FederationCommand.Create());
        root.Subcommands.Add(SiteCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        return root;
    }
}
