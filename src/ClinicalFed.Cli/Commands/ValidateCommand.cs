using System.CommandLine;
using ClinicalFed.Cdm.Io;
using Spectre.Console;

namespace ClinicalFed.Cli.Commands;

internal static class ValidateCommand
{
    public static Command Create()
    {
        var cdm = CliSupport.Required("--cdm", "The CDM folder to check.");
        var max = new Option<long>("--max") { Description = "At most this many resources per type (strict parsing runs at tens of thousands per second).", DefaultValueFactory = _ => 200_000 };
        var cmd = new Command("validate", "Parse a CDM's resources with the Firely SDK in strict mode and report any that fail.") { cdm, max };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var console = CliSupport.Console();
            var results = CliSupport.WithProgress("validate", p => CdmValidator.Validate(pr.GetValue(cdm)!, pr.GetValue(max), p));
            var table = new Table().AddColumns("resource", "checked", "failed");
            foreach (var r in results) table.AddRow(r.ResourceType, r.Checked.ToString("N0"), r.Failed.ToString("N0"));
            console.Write(table);
            foreach (var e in results.SelectMany(r => r.Examples)) Console.Error.WriteLine(e);
            return results.Any(r => r.Failed > 0) ? 1 : 0;
        }));
        return cmd;
    }
}
