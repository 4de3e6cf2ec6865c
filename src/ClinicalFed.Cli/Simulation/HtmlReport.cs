using System.Globalization;
using System.Net;
using System.Text;

namespace ClinicalFed.Cli.Simulation;

/// <summary>Renders <c>report.html</c>: the per-site table and SVG plots (AUROC per round, ROC per site, calibration),
/// self-contained with no script or external resource, so it opens anywhere a hospital allows.</summary>
public static partial class HtmlReport
{
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
    private static readonly string[] Baselines = ["local", "centralized", "federated", "personalized"];
    private const int MinCalibrationRows = 20;

    public static string Render(SimulationReport r)
    {
        var sb = new StringBuilder(Head("ClinicalFed simulation report"));
        sb.Append($"<h1>ClinicalFed simulation — {E(r.Task)}, {E(r.Model)}{(r.TreeMode is null ? ", " + E(r.Strategy) : " (" + E(r.TreeMode) + ")")}</h1>");
        sb.Append($"<p>{r.Sites.Count} sites, {r.Rounds.Count} rounds, seed {r.Seed}, feature spec {E(r.FeatureSpec)}. Metrics on each site's protocol test split. " +
                  $"Uploaded {r.BytesUploaded.Total:N0} bytes of model parameters in total; no row left any site.</p>");
        foreach (var metric in new[] { "AUROC", "AUPRC" })
        {
            sb.Append($"<h2>{metric}</h2><table><tr><th>site</th><th>test rows</th><th>positives</th>");
            foreach (var b in Baselines) sb.Append($"<th>{b}</th>");
            sb.Append("<th>personalization</th></tr>");
            foreach (var s in r.Sites)
            {
                var m = metric == "AUROC" ? s.Auroc : s.Auprc;
                var vals = new[] { m.Local, m.Centralized, m.Federated, m.Personalized };
                double best = vals.Where(v => v is not null).Select(v => v!.Value).DefaultIfEmpty(double.NaN).Max();
                sb.Append($"<tr><td>{E(s.Name)}</td><td>{s.TestRows:N0}</td><td>{s.TestPositives:N0}</td>");
                foreach (var v in vals) sb.Append(v is null ? "<td>—</td>" : $"<td{(v == best ? " class=\"best\"" : "")}>{v.Value.ToString("F4", CultureInfo.InvariantCulture)}</td>");
                sb.Append($"<td>{E(s.Personalization?.Method ?? "—")}</td></tr>");
            }
            sb.Append("</table>");
        }
        sb.Append("<h2>Plots</h2><div class=\"plots\">");
        if (r.Rounds.Count > 0)
        {
            var series = r.Sites.Select(s => (s.Name, r.Rounds.Where(x => x.Auroc.ContainsKey(s.Name)).Select(x => ((double)x.Round, x.Auroc[s.Name])).ToArray())).ToList();
            sb.Append(Figure(LinePlot(series, "round", "test AUROC", xMin: 0, xMax: Math.Max(1, r.Rounds.Max(x => x.Round)), yMin: null, yMax: null, diagonal: false), "Federated model's test AUROC per round, per site"));
        }
        foreach (var s in r.Sites)
        {
            sb.Append(RocFigure(Baselines.Where(s.Roc.ContainsKey).Select(b => (b, s.Roc[b])).ToList(), $"ROC curves, site {s.Name}"));
            sb.Append(CalibrationFigure(Baselines.Where(s.Calibration.ContainsKey).Select(b => (b, s.Calibration[b])).ToList(), $"Calibration, site {s.Name}"));
        }
        sb.Append("</div>");
        if (r.Privacy is { } privacy) sb.Append(PrivacySection(privacy));
        sb.Append(ExperimentsSection(r));
        sb.Append("<h2>Where the time went</h2><table><tr><th>phase</th><th>seconds</th></tr>");
        foreach (var (k, v) in r.Seconds) sb.Append($"<tr><td>{E(k)}</td><td>{v.ToString("F1", CultureInfo.InvariantCulture)}</td></tr>");
        sb.Append("</table>");
        if (r.Notes.Count > 0) { sb.Append("<h2>Notes</h2><ul>"); foreach (var n in r.Notes) sb.Append($"<li>{E(n)}</li>"); sb.Append("</ul>"); }
        sb.Append("</body></html>");
        return sb.ToString();
    }

    /// <summary>The privacy section: each site's budget table, the mechanisms, and what the aggregator could see.</summary>
    private static string PrivacySection(PrivacyReport p)
    {
        static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.Append($"<h2>Privacy</h2><p>Privacy unit: the {E(p.Unit)} (all of a patient's rows are one record).</p>");
        sb.Append("<table><tr><th>site</th><th>patients</th><th>ε spent</th><th>ε budget</th><th>δ</th><th>noise multiplier σ</th><th>clip norm C</th><th>sampling rate q</th><th>steps</th><th>rounds</th></tr>");
        foreach (var s in p.Sites)
        {
            sb.Append($"<tr><td>{E(s.Name)}</td><td>{s.Patients:N0}</td><td>{F(s.EpsilonSpent, "F3")}</td><td>{(s.EpsilonBudget is { } budget ? F(budget, "G4") : "—")}</td><td>{F(s.Delta, "G3")}</td>" +
                      $"<td>{F(s.NoiseMultiplier, "F3")}</td><td>{F(s.ClipNorm, "G4")}</td><td>{F(s.SamplingRate, "G4")}</td><td>{s.Steps:N0}</td><td>{s.Rounds}</td></tr>");
        }

        sb.Append("</table><h3>Mechanisms</h3><ul>");
        foreach (var m in p.Mechanisms) sb.Append($"<li>{E(m)}</li>");
        sb.Append($"</ul><h3>What the aggregator could see</h3><p>{E(p.AggregatorView)}</p>");
        if (p.SiteLevel is { } site)
        {
            sb.Append($"<h3>Site-level DP-FedAvg</h3><p>{E(site.Mode)}-side clipping to C = {F(site.ClipNorm, "G4")}, noise multiplier z = {F(site.NoiseMultiplier, "G4")}, " +
                      $"{F(site.SitesPerRound, "G4")} sites a round: ε = {F(site.EpsilonTotal, "F3")} at δ = {F(site.Delta, "G3")} for any one site's whole participation.</p>");
        }
        if (p.Notes.Count > 0)
        {
            sb.Append("<ul>");
            foreach (var n in p.Notes) sb.Append($"<li>{E(n)}</li>");
            sb.Append("</ul>");
        }

        return sb.ToString();
    }

    /// <summary>The document's start up to and including <c>&lt;body&gt;</c>: title and the reports' shared style.</summary>
    internal static string Head(string title) =>
        $"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{E(title)}</title><style>" +
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}" +
        "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figcaption{font-size:90%;color:#555}.best{font-weight:bold}" +
        "</style></head><body>";

    internal static string E(string s) => WebUtility.HtmlEncode(s);

    internal static string Figure(string svg, string caption) => $"<figure>{svg}<figcaption>{E(caption)}</figcaption></figure>";

    /// <summary>ROC curves ([false positive rate, true positive rate] points) of several models in one plot; empty without any.</summary>
    internal static string RocFigure(IReadOnlyList<(string Name, double[][] Points)> curves, string caption) =>
        curves.Count == 0 ? "" : Figure(LinePlot(curves.Select(c => (c.Name, c.Points.Select(p => (p[0], p[1])).ToArray())).ToList(),
            "false positive rate", "true positive rate", 0, 1, 0, 1, diagonal: true), caption);

    /// <summary>
    /// Calibration of several models in one plot, on axes up to the largest drawn value. Bins with fewer than
    /// <see cref="MinCalibrationRows"/> rows swing wildly: they stay in the JSON but are not drawn.
    /// </summary>
    internal static string CalibrationFigure(IReadOnlyList<(string Name, CalibrationBin[] Bins)> models, string caption)
    {
        var cal = models.Select(m => (m.Name, m.Bins.Where(c => c.Count >= MinCalibrationRows).Select(c => (c.MeanPredicted, c.Observed)).ToArray())).ToList();
        if (cal.Count == 0) return "";
        double max = Math.Max(0.05, cal.SelectMany(c => c.Item2).SelectMany(p => new[] { p.Item1, p.Item2 }).DefaultIfEmpty(1).Max());
        max = Math.Min(1, Math.Ceiling(max * 10) / 10);
        return Figure(LinePlot(cal, "mean predicted risk", "observed rate", 0, max, 0, max, diagonal: true, markers: true), $"{caption} (bins of at least {MinCalibrationRows} rows)");
    }

    /// <summary>A line plot with axes, ticks and a legend, as inline SVG.</summary>
    public static string LinePlot(IReadOnlyList<(string Name, (double X, double Y)[] Points)> series, string xLabel, string yLabel,
        double xMin, double xMax, double? yMin, double? yMax, bool diagonal, bool markers = false)
    {
        const int W = 420, H = 320, L = 56, R = 12, T = 12, B = 44;
        var all = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.Y)).ToList();
        double y0 = yMin ?? (all.Count == 0 ? 0 : Math.Floor(all.Min(p => p.Y) * 20) / 20);
        double y1 = yMax ?? (all.Count == 0 ? 1 : Math.Ceiling(all.Max(p => p.Y) * 20) / 20);
        if (y1 <= y0) y1 = y0 + 0.05;
        if (xMax <= xMin) xMax = xMin + 1;
        double Px(double x) => L + (x - xMin) / (xMax - xMin) * (W - L - R);
        double Py(double y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
        string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
        var sb = new StringBuilder($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-size=\"11\">");
        sb.Append($"<rect x=\"{L}\" y=\"{T}\" width=\"{W - L - R}\" height=\"{H - T - B}\" fill=\"white\" stroke=\"#999\"/>");
        for (int i = 0; i <= 5; i++)
        {
            double xv = xMin + (xMax - xMin) * i / 5, yv = y0 + (y1 - y0) * i / 5;
            sb.Append($"<line x1=\"{F(Px(xv))}\" y1=\"{H - B}\" x2=\"{F(Px(xv))}\" y2=\"{H - B + 4}\" stroke=\"#999\"/><text x=\"{F(Px(xv))}\" y=\"{H - B + 16}\" text-anchor=\"middle\">{F(Math.Round(xv, 3))}</text>");
            sb.Append($"<line x1=\"{L - 4}\" y1=\"{F(Py(yv))}\" x2=\"{L}\" y2=\"{F(Py(yv))}\" stroke=\"#999\"/><text x=\"{L - 6}\" y=\"{F(Py(yv) + 4)}\" text-anchor=\"end\">{F(Math.Round(yv, 3))}</text>");
            sb.Append($"<line x1=\"{L}\" y1=\"{F(Py(yv))}\" x2=\"{W - R}\" y2=\"{F(Py(yv))}\" stroke=\"#eee\"/>");
        }
        sb.Append($"<text x=\"{(L + W - R) / 2}\" y=\"{H - 8}\" text-anchor=\"middle\">{E(xLabel)}</text>");
        sb.Append($"<text transform=\"translate(14,{(T + H - B) / 2}) rotate(-90)\" text-anchor=\"middle\">{E(yLabel)}</text>");
        if (diagonal) sb.Append($"<line x1=\"{F(Px(Math.Max(xMin, y0)))}\" y1=\"{F(Py(Math.Max(xMin, y0)))}\" x2=\"{F(Px(Math.Min(xMax, y1)))}\" y2=\"{F(Py(Math.Min(xMax, y1)))}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>");
        for (int s = 0; s < series.Count; s++)
        {
            var color = Palette[s % Palette.Length];
            var pts = series[s].Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).Select(p => $"{F(Px(p.X))},{F(Py(Math.Clamp(p.Y, y0, y1)))}").ToList();
            if (pts.Count > 0) sb.Append($"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{string.Join(' ', pts)}\"/>");
            if (markers || pts.Count == 1) foreach (var p in pts) { var xy = p.Split(','); sb.Append($"<circle cx=\"{xy[0]}\" cy=\"{xy[1]}\" r=\"2.5\" fill=\"{color}\"/>"); }
            // Legend in the lower right corner, which ROC, calibration and rising AUROC curves leave empty.
            int ly = H - B - 8 - (series.Count - s) * 15;
            sb.Append($"<rect x=\"{W - R - 110}\" y=\"{ly}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{W - R - 96}\" y=\"{ly + 9}\">{E(series[s].Name)}</text>");
        }
        sb.Append("</svg>");
        return sb.ToString();
    }
}
