using ClinicalFed.Federation;

namespace ClinicalFed.Cli.Simulation;

/// <summary>Options of <c>clinicalfed simulate</c>, validated all at once when the run is built.</summary>
public sealed partial record SimulationOptions
{
    public required string Task { get; init; }
    public required IReadOnlyList<SiteSource> Sites { get; init; }
    public IReadOnlyDictionary<string, int> Splits { get; init; } = new Dictionary<string, int>();
    public string Model { get; init; } = "logistic";
    public string TreeMode { get; init; } = "bagging";
    public string Strategy { get; init; } = StrategyNames.FedAvg;
    public int Rounds { get; init; } = 10;
    public required string OutputDirectory { get; init; }
    /// <summary>Local epochs per round (logistic) for the federated sites.</summary>
    public int LocalEpochs { get; init; } = 1;
    /// <summary>Epochs of the local-only and centralized baselines.</summary>
    public int BaselineEpochs { get; init; } = 5;
    /// <summary>FedProx μ (only with --strategy fedprox).</summary>
    public double ProximalMu { get; init; } = 0.01;
    public double LearningRate { get; init; } = 0.05;
    public double L2 { get; init; } = 1e-4;
    public int Seed { get; init; } = 1;
    public int Trees { get; init; } = 100;
    public int Leaves { get; init; } = 31;
    /// <summary>Record-level DP-SGD at every site with this ε budget (null: no DP); the patient is the unit.</summary>
    public double? DpEpsilon { get; init; }
    public double DpDelta { get; init; } = 1e-5;
    /// <summary>Per-patient clipping norm C.</summary>
    public double DpClipNorm { get; init; } = 1.0;
    /// <summary>Expected patients per DP-SGD batch (Poisson sampling).</summary>
    public int DpBatchSize { get; init; } = 1024;
    /// <summary>σ fixed instead of calibrated per site from ε, δ, its patients, the batch size and epochs × rounds.</summary>
    public double? DpNoiseMultiplier { get; init; }
    /// <summary>How a patient's rows form its clipped gradient under DP: mean or sum.</summary>
    public string DpPatientGradient { get; init; } = "mean";
    /// <summary>Secure aggregation (pairwise masking): the aggregator sees only masked vectors.</summary>
    public bool SecureAggregation { get; init; }
    /// <summary>Sites that drop out after masking in the middle round (with <see cref="SecureAggregation"/>).</summary>
    public int SecAggDropout { get; init; }

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (Task is not ("sepsis" or "readmission")) e.Add($"--task: '{Task}' (expected sepsis or readmission)");
        if (Sites.Count == 0) e.Add("--site: at least one site is required");
        var names = Sites.Select(s => s.Name).ToList();
        foreach (var d in names.GroupBy(n => n).Where(g => g.Count() > 1)) e.Add($"--site: '{d.Key}' is given twice");
        foreach (var (name, k) in Splits)
        {
            if (!names.Contains(name)) e.Add($"--split {name}:{k}: no site named '{name}'");
            if (k is < 2 or > 50) e.Add($"--split {name}:{k}: K must be 2 to 50");
        }
        if (Model is not ("logistic" or "trees")) e.Add($"--model: '{Model}' (expected logistic or trees)");
        if (TreeMode is not ("bagging" or "cyclic" or "histogram")) e.Add($"--tree-mode: '{TreeMode}' (expected bagging, cyclic or histogram)");
        if (Model == "trees" && TreeMode == "histogram" && Rounds > Trees) e.Add($"--rounds: {Rounds} checkpoints of histogram boosting need at least as many trees (--trees {Trees})");
        if (!StrategyNames.All.Contains(Strategy)) e.Add($"--strategy: '{Strategy}' (known: {string.Join(", ", StrategyNames.All)})");
        if (Rounds is < 1 or > 1000) e.Add($"--rounds: {Rounds} (expected 1 to 1000)");
        if (LocalEpochs is < 1 or > 100) e.Add($"--epochs: {LocalEpochs} (expected 1 to 100)");
        if (BaselineEpochs is < 1 or > 100) e.Add($"--baseline-epochs: {BaselineEpochs} (expected 1 to 100)");
        if (!(ProximalMu >= 0)) e.Add("--mu: must be non-negative");
        if (!(LearningRate > 0)) e.Add("--learning-rate: must be positive");
        if (Trees is < 1 or > 10000) e.Add($"--trees: {Trees} (expected 1 to 10000)");
        if (Leaves is < 2 or > 1024) e.Add($"--leaves: {Leaves} (expected 2 to 1024)");
        if (DpEpsilon is { } eps)
        {
            if (!(eps > 0) || !double.IsFinite(eps)) e.Add($"--dp-epsilon: {eps} (expected a positive number)");
            if (Model is not ("logistic" or "trees")) e.Add("--dp-epsilon: needs --model logistic (DP-SGD) or trees (noisy histograms)");
        }
        if (!(DpDelta > 0 && DpDelta < 1)) e.Add($"--dp-delta: {DpDelta} (expected a number in (0, 1))");
        if (!(DpClipNorm > 0) || !double.IsFinite(DpClipNorm)) e.Add($"--dp-clip: {DpClipNorm} (expected a positive number)");
        if (DpPatientGradient is not ("mean" or "sum")) e.Add($"--dp-patient-gradient: '{DpPatientGradient}' (expected mean or sum)");
        if (DpBatchSize is < 1 or > 1 << 20) e.Add($"--dp-batch: {DpBatchSize} (expected 1 to {1 << 20})");
        if (DpNoiseMultiplier is { } nm && (!(nm > 0) || !double.IsFinite(nm))) e.Add($"--dp-noise: {nm} (expected a positive number)");
        if (SecureAggregation && Model != "logistic" && !(Model == "trees" && TreeMode == "histogram"))
            e.Add("--secure-aggregation: needs --model logistic, or trees with --tree-mode histogram (bagging and cyclic send whole ensembles, which cannot be added in a ring)");
        if (SecAggDropout != 0 && Model == "trees") e.Add("--secagg-dropout: logistic only (histogram boosting has no dropout recovery: every site answers every split)");
        if (SecAggDropout != 0 && !SecureAggregation) e.Add("--secagg-dropout: needs --secure-aggregation");
        if (SecAggDropout < 0) e.Add($"--secagg-dropout: {SecAggDropout} (expected 0 or more)");
        if (string.IsNullOrWhiteSpace(OutputDirectory)) e.Add("--out: required");
        ValidateFederationExperiments(e);
        ValidateTreeShape(e);
        return e;
    }
}
