using System.Globalization;
using System.Text;
using ClinicalFed.Cli.Simulation;

namespace ClinicalFed.Cli.Site;

/// <summary>
/// <c>site-report.html</c>, beside <c>site-report.json</c> in the site's work folder: what the federation gave this
/// site, on its own test patients. The final global and personalized models' AUROC and AUPRC, the global model's AUROC
/// round by round, ROC curves and calibration. Self-contained SVG, no script, as <c>report.html</c>.
/// </summary>
public static class SiteReportHtml
{
    public static string Render(SiteAgentReport r)
    {
        ArgumentNullException.ThrowIfNull(r);
        string F(double? v) => v is double x ? x.ToString("F4", CultureInfo.InvariantCulture) : "—";
        var sb = new StringBuilder(HtmlReport.Head($"ClinicalFed site report — {r.Site}"));
        sb.Append($"<h1>ClinicalFed site report — {HtmlReport.E(r.Site)} in {HtmlReport.E(r.Federation)} ({HtmlReport.E(r.ModelKind)})</h1>");
        sb.Append($"<p>Trained in round(s) {HtmlReport.E(r.RoundsTrained.Count == 0 ? "none" : string.Join(", ", r.RoundsTrained))} of the federation, which ended after round {r.FinalRound}; " +
                  $"{r.TrainRows:N0} training rows. Metrics on this site's protocol test split: {r.TestRows:N0} rows, {r.TestPositives:N0} positive. " +
                  "Only model parameters left the site; this report stays in its work folder.</p>");
        if (r.Privacy is { } p)
            sb.Append(FormattableString.Invariant($"<p>Differential privacy, the patient as the unit: ε = {p.EpsilonSpent:0.###} spent of this site's budget of {p.EpsilonBudget:0.###} (δ = {p.Delta:G3}), ") +
                      FormattableString.Invariant($"over {p.Rounds} round(s) and {p.Steps:N0} noisy steps or queries, from the ledger in the work folder.</p>"));
        if (r.Uploads.Count > 0)
        {
            long sent = r.Uploads.Sum(u => u.PayloadBytes);
            long? dense = r.Uploads.All(u => u.Float32Bytes is not null) ? r.Uploads.Sum(u => u.Float32Bytes!.Value) : null;
            sb.Append($"<p>What left the site: {r.Uploads.Count} update(s), {sent:N0} payload bytes in all" +
                      (dense is long d && d > 0 ? FormattableString.Invariant($" ({100.0 * sent / d:0.#} % of the same parameters as float32)") : "") + ": " +
                      HtmlReport.E(string.Join(", ", r.Uploads.Select(u => $"round {u.Round} {u.PayloadEncoding} {u.PayloadBytes:N0} B"))) + ".</p>");
        }

        sb.Append("<table><tr><th>model</th><th>AUROC</th><th>AUPRC</th></tr>");
        foreach (var name in r.Auroc.Keys)
            sb.Append($"<tr><td>{HtmlReport.E(name)}</td><td>{F(r.Auroc[name])}</td><td>{F(r.Auprc.GetValueOrDefault(name))}</td></tr>");
        sb.Append("</table><div class=\"plots\">");
        var curve = r.AurocPerRound.Where(x => x.Auroc is not null).Select(x => ((double)x.Round, x.Auroc!.Value)).ToArray();
        if (curve.Length > 0)
            sb.Append(HtmlReport.Figure(HtmlReport.LinePlot([("global", curve)], "round", "test AUROC", xMin: 0, xMax: Math.Max(1, curve.Max(p => p.Item1)), yMin: null, yMax: null, diagonal: false, markers: true),
                "The global model's test AUROC after each round"));
        sb.Append(HtmlReport.RocFigure(r.Roc.Select(kv => (kv.Key, kv.Value)).ToList(), "ROC curves of the final models"));
        sb.Append(HtmlReport.CalibrationFigure(r.Calibration.Select(kv => (kv.Key, kv.Value)).ToList(), "Calibration of the final models"));
        sb.Append("</div></body></html>");
        return sb.ToString();
    }
}
