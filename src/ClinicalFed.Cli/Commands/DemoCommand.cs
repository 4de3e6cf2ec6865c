using System.CommandLine;
using ClinicalFed.Cli.Demo;
using Spectre.Console;

namespace ClinicalFed.Cli.Commands;

internal static class DemoCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Output folder.", DefaultValueFactory = _ => "demo-out" };
        var patients = new Option<int>("--patients") { Description = "Patients per site (the largest site; the others are scaled by their profile).", DefaultValueFactory = _ => 2000 };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic data and the training (same seed, same results).", DefaultValueFactory = _ => 20261123 };
        var rounds = new Option<int>("--rounds") { Description = "Federated rounds.", DefaultValueFactory = _ => 10 };
        var cmd = new Command("demo", "ClinicalFed end to end on generated, seeded data for four non-IID hospitals: EHR extract → FHIR CDM → quality and the federated quality check → features → federated statistics and imputation → federated, local-only, centralized and personalized models → report.json and report.html.") { output, patients, seed, rounds };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            var console = CliSupport.Console();
            var o = new DemoOptions(pr.GetValue(output)!, pr.GetValue(patients), pr.GetValue(seed), pr.GetValue(rounds));
            DemoResult r;
            if (CliSupport.Interactive)
            {
                r = null!;
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn()).Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    r = DemoRunner.Run(o, (label, f) =>
                    {
                        if (!tasks.TryGetValue(label, out var t)) tasks[label] = t = ctx.AddTask(Markup.Escape(label), maxValue: 1.0);
                        t.Value = f;
                    });
                    foreach (var t in tasks.Values) t.Value = 1;
                });
            }
            else r = DemoRunner.Run(o);

            var table = new Table().Title("ClinicalFed demo — four synthetic ICUs").AddColumns("site", "patients", "hourly rows", "sepsis rows", "prevalence", "Observations", "HR missing", "lactate missing");
            foreach (var s in r.Sites)
                table.AddRow(s.Name, s.Patients.ToString("N0"), s.Rows.ToString("N0"), s.Positives.ToString("N0"), s.Prevalence.ToString("P2"), s.Observations.ToString("N0"), s.HrMissing.ToString("P1"), s.LactateMissing.ToString("P1"));
            console.Write(table);
            console.MarkupLine(r.Comparison.Flags.Count == 0 ? "Federated quality check: no site stands out." : $"Federated quality check: {r.Comparison.Flags.Count} flag(s):");
            foreach (var f in r.Comparison.Flags.Take(12)) console.MarkupLineInterpolated($"  [yellow]{f.Site}[/] {f.Metric}: {f.Value:G3} vs others {f.OthersMedian:G3}");
            SimulateCommand.Summarize(console, r.Report, r.OutputDirectory);
            console.MarkupLineInterpolated($"Seconds: {string.Join(", ", r.Seconds.Select(kv => $"{kv.Key} {kv.Value:F1}"))}");
            return 0;
        }));
        return cmd;
    }
}
