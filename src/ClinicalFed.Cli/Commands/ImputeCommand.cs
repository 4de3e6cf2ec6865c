using System.CommandLine;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Statistics;

namespace ClinicalFed.Cli.Commands;

internal static class ImputeCommand
{
    public static Command Create()
    {
        var features = CliSupport.Required("--features", "Feature folder (output of features).");
        var stats = CliSupport.Required("--stats", "Reference statistics: federated (stats merge) or this site's own (stats).");
        var method = new Option<string>("--method") { Description = "mean or median (median from the merged histogram).", DefaultValueFactory = _ => "median" };
        var output = CliSupport.Required("--out", "Output folder for the imputed feature table.");
        var cmd = new Command("impute", "Fill missing values locally from agreed reference statistics; missingness indicators stay as they are.") { features, stats, method, output };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var m = pr.GetValue(method) switch
            {
                "mean" => ImputationMethod.Mean,
                "median" => ImputationMethod.Median,
                var x => throw new ArgumentException($"--method: '{x}' (expected mean or median)"),
            };
            var statsPath = pr.GetValue(stats)!;
            var set = StatisticsSet.FromJson(File.ReadAllText(statsPath), statsPath);
            var (rows, filled) = SiteStatistics.Impute(pr.GetValue(features)!, set, m, pr.GetValue(output)!);
            Console.WriteLine($"imputed {filled:N0} cells in {rows:N0} rows with the {m.ToString().ToLowerInvariant()} of {set.Scope} statistics ({string.Join(", ", set.Sites)}) → {pr.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }
}
