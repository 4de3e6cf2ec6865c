using System.CommandLine;
using ClinicalFed.Cdm.Quality;
using Spectre.Console;

namespace ClinicalFed.Cli.Commands;

internal static class QualityCommand
{
    public static Command Create()
    {
        var cdm = CliSupport.Optional("--cdm", "The site's CDM folder: build this site's report.");
        var compare = new Option<string[]>("--compare") { Description = "Two or more sites' quality-report.json files: flag sites far from the rest (the federated check).", AllowMultipleArgumentsPerToken = true };
        var output = CliSupport.Required("--out", "Output JSON file; a readable .txt is written beside it.");
        var task = CliSupport.Optional("--task", "sepsis or readmission (default: sepsis when the CDM has ICU stays).");
        var site = CliSupport.Optional("--site", "Site name (default: the one recorded by convert).");
        var minCell = new Option<int>("--min-cell") { Description = "Withhold demographic counts below this (small cells can single out patients).", DefaultValueFactory = _ => 5 };
        var cmd = new Command("quality", "Data-quality report of a site's CDM (aggregates only: no row-level data), or --compare several sites' reports.") { cdm, compare, output, task, site, minCell };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var outPath = pr.GetValue(output)!;
            var reports = pr.GetValue(compare) ?? [];
            var cdmDir = pr.GetValue(cdm);
            if ((cdmDir is null) == (reports.Length == 0)) throw new ArgumentException("give either --cdm DIR or --compare A.json B.json ...");
            string text, json;
            if (cdmDir is not null)
            {
                var r = CliSupport.WithProgress("quality", p => QualityReport.Build(cdmDir, pr.GetValue(task), pr.GetValue(site), pr.GetValue(minCell), p));
                (text, json) = (r.ToText(), r.ToJson());
            }
            else
            {
                var c = QualityComparison.Compare(reports.Select(QualityReport.Read).ToList());
                (text, json) = (c.ToText(), c.ToJson());
            }
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
            File.WriteAllText(outPath, json);
            File.WriteAllText(Path.ChangeExtension(outPath, ".txt"), text);
            Console.Write(text);
            return 0;
        }));
        return cmd;
    }
}
