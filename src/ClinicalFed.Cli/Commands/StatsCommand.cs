using System.CommandLine;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Statistics;

namespace ClinicalFed.Cli.Commands;

internal static class StatsCommand
{
    public static Command Create()
    {
        var features = CliSupport.Required("--features", "Feature folder (output of features).");
        var output = CliSupport.Required("--out", "Output statistics JSON (schemas/statistics.schema.json): counts, sums, sums of squares, histogram bins; never rows.");
        var site = CliSupport.Optional("--site", "Site name (default: from the feature table).");
        var spec = CliSupport.Optional("--spec", "Feature spec file, when the table was made with a custom one.");
        var cmd = new Command("stats", "Compute this site's shareable feature statistics for the federated imputation step.") { features, output, site, spec };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var s = SiteStatistics.Compute(pr.GetValue(features)!, pr.GetValue(site), pr.GetValue(spec));
            WriteAtomically(pr.GetValue(output)!, s.ToJson());
            Console.WriteLine($"{string.Join(",", s.Sites)}: statistics of {s.Rows:N0} rows × {s.Features.Count} columns → {pr.GetValue(output)}");
            return 0;
        }));

        var inputs = new Option<string[]>("--in") { Description = "Two or more sites' statistics files.", Required = true, AllowMultipleArgumentsPerToken = true };
        var mergedOut = CliSupport.Required("--out", "Output federated statistics JSON.");
        var merge = new Command("merge", "Merge sites' statistics into federated statistics (exactly the statistics of the pooled rows, without pooling them).") { inputs, mergedOut };
        merge.SetAction(pr => CliSupport.Run(() =>
        {
            var sets = pr.GetValue(inputs)!.Select(p => StatisticsSet.FromJson(File.ReadAllText(p), p)).ToList();
            var merged = StatisticsSet.Merge(sets);
            WriteAtomically(pr.GetValue(mergedOut)!, merged.ToJson());
            Console.WriteLine($"federated statistics of {string.Join(", ", merged.Sites)}: {merged.Rows:N0} rows → {pr.GetValue(mergedOut)}");
            return 0;
        }));
        cmd.Subcommands.Add(merge);
        return cmd;
    }

    internal static void WriteAtomically(string path, string text) => WriteAtomically(path, System.Text.Encoding.UTF8.GetBytes(text));

    internal static void WriteAtomically(string path, byte[] content)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var partial = $"{full}.{Guid.NewGuid():N}.partial"; // unique: two writers never share a temporary file
        File.WriteAllBytes(partial, content);
        File.Move(partial, full, overwrite: true);
    }
}
