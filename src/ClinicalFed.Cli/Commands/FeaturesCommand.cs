using System.CommandLine;
using ClinicalFed.Cdm.Features;
using Spectre.Console;

namespace ClinicalFed.Cli.Commands;

internal static class FeaturesCommand
{
    public static Command Create()
    {
        var task = CliSupport.Required("--task", "sepsis (one row per ICU hour) or readmission (one row per inpatient encounter).");
        var cdm = CliSupport.Required("--cdm", "The site's CDM folder (output of convert).");
        var output = CliSupport.Required("--out", "Output folder: features.cft (the feature table), features-summary.json, and features.csv.gz with --csv.");
        var spec = CliSupport.Optional("--spec", "A feature spec file instead of the shipped one (schemas/feature-spec.schema.json).");
        var site = CliSupport.Optional("--site", "Site name (default: the one recorded by convert).");
        var csv = new Option<bool>("--csv") { Description = "Also write features.csv.gz (patient_id, encounter_id, hour, label, features) for inspection." };
        var cmd = new Command("features", "Derive model-ready features from the CDM with no look-ahead, in the columns and order of the versioned feature spec.") { task, cdm, output, spec, site, csv };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var console = CliSupport.Console();
            var o = new FeatureOptions(pr.GetValue(task)!, pr.GetValue(cdm)!, pr.GetValue(output)!, pr.GetValue(site), pr.GetValue(spec), pr.GetValue(csv));
            var s = CliSupport.WithProgress($"features {o.Task}", p => FeatureExtraction.Run(o, p));
            console.MarkupLineInterpolated($"{s.Site}: {s.Rows:N0} rows, {s.Positives:N0} positive ({s.Prevalence:P2}), {s.Encounters:N0} encounters, {s.Patients:N0} patients, {s.Columns.Count} columns, {s.Seconds:F1} s → {o.OutputDirectory}");
            foreach (var (k, v) in s.Excluded) console.MarkupLineInterpolated($"  excluded {k}: {v:N0}");
            return 0;
        }));
        return cmd;
    }
}
