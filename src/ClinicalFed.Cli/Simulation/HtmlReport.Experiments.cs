using System.Globalization;
using System.Text;

namespace ClinicalFed.Cli.Simulation;

/// <summary>The report's robustness, rejection, contribution, hierarchy and asynchronous sections.</summary>
public static partial class HtmlReport
{
    private static string ExperimentsSection(SimulationReport r)
    {
        static string F(double v, string format) => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "—";
        var sb = new StringBuilder();
        if (r.Robustness is { } rob)
        {
            sb.Append($"<h2>Robustness</h2><p>Malicious: {E(string.Join(", ", rob.MaliciousSites))}. Honest sites' final federated test AUROC in each run.</p>");
            var honest = rob.Runs[0].HonestAuroc.Keys.ToList();
            sb.Append("<table><tr><th>run</th><th>strategy</th><th>attacks</th>");
            foreach (var h in honest) sb.Append($"<th>{E(h)}</th>");
            sb.Append("<th>largest honest drop vs clean</th><th>rejected</th></tr>");
            foreach (var run in rob.Runs)
            {
                sb.Append($"<tr><td>{E(run.Name)}</td><td>{E(run.Strategy)}</td><td>{E(string.Join(", ", run.Attacks))}</td>");
                foreach (var h in honest) sb.Append($"<td>{F(run.HonestAuroc[h], "F4")}</td>");
                sb.Append($"<td>{(run.MaxHonestDropVsClean is { } d ? F(d, "F4") : "—")}</td><td>{run.Rejected}</td></tr>");
            }
            sb.Append("</table><div class=\"plots\">");
            var series = rob.Runs.Select(run => ($"{run.Name} ({run.Strategy})", run.MeanHonestAurocPerRound.Select((v, i) => (i + 1.0, v)).ToArray())).ToList();
            sb.Append(Figure(LinePlot(series, "round", "mean honest test AUROC", 0, Math.Max(1, rob.Runs.Max(x => x.MeanHonestAurocPerRound.Count)), null, null, diagonal: false, markers: true),
                "Honest sites' mean test AUROC per round: clean, under attack, and FedAvg under the same attack"));
            sb.Append("</div>");
        }

        if (r.Rejected.Count > 0)
        {
            sb.Append("<h2>Rejected updates</h2><table><tr><th>round</th><th>site</th><th>reason</th></tr>");
            foreach (var x in r.Rejected) sb.Append($"<tr><td>{x.Round}</td><td>{E(x.Site)}</td><td style=\"text-align:left\">{E(x.Reason)}</td></tr>");
            sb.Append("</table>");
        }

        if (r.Contribution is { } c)
        {
            sb.Append($"<h2>Contribution</h2><p>{E(c.Method)}. Utility: {E(c.Utility)}. {c.CoalitionsEvaluated:N0} candidate models scored.</p>");
            sb.Append("<table><tr><th>site</th><th>rank</th><th>Shapley</th><th>leave-one-out</th></tr>");
            foreach (var s in c.Sites.OrderBy(s => s.Rank)) sb.Append($"<tr><td>{E(s.Name)}</td><td>{s.Rank}</td><td>{F(s.Shapley, "F4")}</td><td>{F(s.LeaveOneOut, "F4")}</td></tr>");
            sb.Append("</table>");
        }

        if (r.Hierarchy is { } hierarchy)
        {
            sb.Append("<h2>Hierarchy</h2><table><tr><th>region</th><th>sites</th></tr>");
            foreach (var (region, sites) in hierarchy.Regions) sb.Append($"<tr><td>{E(region)}</td><td style=\"text-align:left\">{E(string.Join(", ", sites))}</td></tr>");
            sb.Append($"</table><p>Largest |hierarchical − flat FedAvg| over every parameter and round: {F(hierarchy.MaxAbsDiffVsFlat, "G3")}. {E(hierarchy.Note)}</p>");
        }

        if (r.Compression is { } z)
        {
            sb.Append($"<h2>Compression ({E(z.Encoding)})</h2><p>Payloads: {z.PayloadBytes:N0} bytes against {z.Float32PayloadBytes:N0} as float32 ({F(z.PayloadRatio * 100, "F1")} %); " +
                      $"whole update files {z.FileBytes:N0} against {z.UncompressedFileBytes:N0} bytes. Largest final AUROC difference from the float32 run: {F(z.MaxAbsAurocDiff, "F4")}.</p>");
            sb.Append("<table><tr><th>site</th><th>compressed</th><th>float32</th></tr>");
            foreach (var (site, auroc) in z.Auroc) sb.Append($"<tr><td>{E(site)}</td><td>{F(auroc, "F4")}</td><td>{F(z.UncompressedAuroc[site], "F4")}</td></tr>");
            sb.Append("</table>");
            if (z.Rounds.Count > 0)
            {
                sb.Append("<table><tr><th>round</th><th>encoding</th><th>payload bytes</th><th>mean AUROC</th><th>float32 mean AUROC</th></tr>");
                foreach (var round in z.Rounds)
                    sb.Append($"<tr><td>{round.Round}</td><td>{E(round.Encoding)}</td><td>{round.PayloadBytes:N0}</td><td>{(round.MeanAuroc is { } m ? F(m, "F4") : "")}</td><td>{(round.UncompressedMeanAuroc is { } u ? F(u, "F4") : "")}</td></tr>");
                sb.Append("</table><div class=\"plots\">");
                var series = new List<(string, (double X, double Y)[])>
                {
                    ("compressed", z.Rounds.Where(x => x.MeanAuroc is not null).Select(x => ((double)x.Round, x.MeanAuroc!.Value)).ToArray()),
                    ("float32", z.Rounds.Where(x => x.UncompressedMeanAuroc is not null).Select(x => ((double)x.Round, x.UncompressedMeanAuroc!.Value)).ToArray()),
                };
                sb.Append(Figure(LinePlot(series, "round", "mean test AUROC", 1, Math.Max(2, z.Rounds.Count), null, null, diagonal: false, markers: true), "Mean test AUROC per round, compressed and float32"));
                sb.Append("</div>");
            }
        }

        if (r.Async is { } a)
        {
            string S(double? v) => v is { } x ? F(x, "F1") + " s" : "not reached";
            sb.Append($"<h2>Synchronous versus asynchronous</h2><p>Target mean test AUROC {F(a.TargetMeanAuroc, "F4")}: synchronous {S(a.Synchronous.SecondsToTarget)}, " +
                      $"buffered asynchronous (K = {a.BufferSize}) {S(a.Asynchronous.SecondsToTarget)}{(a.Speedup is { } sp ? $", {F(sp, "F2")}× faster" : "")}. {E(a.Clock)}.</p>");
            sb.Append("<table><tr><th>site</th><th>seconds per local round (simulated)</th></tr>");
            foreach (var (site, sec) in a.SiteRoundSeconds) sb.Append($"<tr><td>{E(site)}</td><td>{F(sec, "F2")}</td></tr>");
            sb.Append("</table><div class=\"plots\">");
            var series = new List<(string, (double X, double Y)[])>
            {
                ("synchronous", a.Synchronous.Timeline.Select(p => (p.Seconds, p.MeanAuroc)).ToArray()),
                ("asynchronous", a.Asynchronous.Timeline.Select(p => (p.Seconds, p.MeanAuroc)).ToArray()),
                ("target", [(0.0, a.TargetMeanAuroc), (a.Synchronous.Timeline.Concat(a.Asynchronous.Timeline).Select(p => p.Seconds).DefaultIfEmpty(1).Max(), a.TargetMeanAuroc)]),
            };
            double xMax = Math.Max(1, series.SelectMany(s => s.Item2).Select(p => p.X).Max());
            sb.Append(Figure(LinePlot(series, "simulated seconds", "mean test AUROC", 0, xMax, null, null, diagonal: false, markers: true), "Mean test AUROC over simulated wall-clock time"));
            sb.Append("</div>");
        }

        return sb.ToString();
    }
}
