using System.CommandLine;
using System.Text.Json;
using ClinicalFed.Cli.Simulation;

namespace ClinicalFed.Cli.Commands;

internal static class ReportCommand
{
    public static Command Create()
    {
        var input = CliSupport.Required("--in", "A report.json written by simulate or demo.");
        var output = CliSupport.Optional("--out", "The HTML file to write (default: report.html beside the input).");
        var cmd = new Command("report", "Render report.html (tables, AUROC per round, ROC and calibration plots) from a simulation's report.json.") { input, output };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var path = pr.GetValue(input)!;
            SimulationReport report;
            try { report = JsonSerializer.Deserialize<SimulationReport>(File.ReadAllText(path), SimulationReport.JsonOptions) ?? throw new InvalidDataException($"{path}: empty report"); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: not a simulation report: {e.Message}", e); }
            var outPath = pr.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "report.html");
            StatsCommand.WriteAtomically(outPath, HtmlReport.Render(report));
            Console.WriteLine($"{report.Sites.Count} sites, {report.Rounds.Count} rounds → {outPath}");
            return 0;
        }));
        return cmd;
    }
}
