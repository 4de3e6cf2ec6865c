using ClinicalFed.Cdm.Features;
using ClinicalFed.Federation;
using ClinicalFed.Learning;

namespace ClinicalFed.Cli.Site;

/// <summary>The settings of a new federation, built from command-line choices; validated all at once.</summary>
public sealed record FederationSetup
{
    public required string Federation { get; init; }
    public required string Task { get; init; }
    /// <summary><c>logistic</c> (float32 parameters) or <c>trees</c> (tree ensembles; strategy tree-bagging or tree-cyclic).</summary>
    public string Model { get; init; } = ModelKinds.Logistic;
    public string Strategy { get; init; } = StrategyNames.FedAvg;
    public double ProximalMu { get; init; } = 0.01;
    public int Rounds { get; init; } = 10;
    public int Quorum { get; init; } = 2;
    public int RoundSeconds { get; init; } = 24 * 3600;
    public bool Statistics { get; init; } = true;
    public string Description { get; init; } = "";

    /// <summary>The sites' training settings (same defaults as <c>clinicalfed simulate</c>).</summary>
    public ClientTrainingSettings Client { get; init; } = new();

    /// <summary>How the sites grow trees (model trees only).</summary>
    public Learning.Trees.TreeClientSettings Trees { get; init; } = new();

    /// <summary>Site-level DP-FedAvg (null: off); the strategy then weighs sites uniformly.</summary>
    public SiteLevelDpConfig? SiteLevelDp { get; init; }

    /// <summary>The federation document (without sites) for <see cref="Storage.Coordination.FederationCoordinator.CreateFederationAsync"/>.</summary>
    public FederationConfig ToConfig(DateTimeOffset now)
    {
        var problems = new List<string>();
        bool knownTask = Task is "sepsis" or "readmission";
        if (!knownTask) problems.Add($"--task: '{Task}' (expected sepsis or readmission)");
        bool trees = Model == ModelKinds.Trees;
        if (Model is not (ModelKinds.Logistic or ModelKinds.Trees)) problems.Add($"--model: '{Model}' (expected {ModelKinds.Logistic} or {ModelKinds.Trees})");
        var strategies = trees ? StrategyNames.Trees : StrategyNames.All;
        bool knownStrategy = strategies.Contains(Strategy);
        if (!knownStrategy) problems.Add($"--strategy: '{Strategy}' (known for model {Model}: {string.Join(", ", strategies)})");
        problems.AddRange(trees ? Trees.Validate() : Client.Validate());
        var spec = knownTask ? FeatureSpec.Load(Task) : null;
        var options = knownStrategy
            ? StrategyFactory.ParseOptions(Strategy, Strategy == StrategyNames.FedProx
                ? new Dictionary<string, System.Text.Json.JsonElement> { ["proximal_mu"] = System.Text.Json.JsonSerializer.SerializeToElement(ProximalMu) }
                : null)
            : trees ? new TreeCyclicOptions() : new FedAvgOptions();
        if (SiteLevelDp is not null) options = options with { Weighting = UpdateWeighting.Uniform }; // DP-FedAvg's sensitivity is C/n
        var config = new FederationConfig
        {
            Federation = Federation, Description = Description,
            Model = new ModelSpec
            {
                // Logistic: the weights and the bias; trees: the features they read.
                Kind = trees ? ModelKinds.Trees : ModelKinds.Logistic, Dimension = (spec?.ColumnNames.Count ?? 0) + (trees ? 0 : 1),
                FeatureSpecId = spec?.Id ?? Task, FeatureSpecVersion = spec?.Version ?? "?",
            },
            Strategy = StrategySpec.From(options, trees ? Trees.ToClientOptions() : Client.ToClientOptions()),
            Rounds = Rounds, Quorum = Quorum, RoundSeconds = RoundSeconds, Statistics = Statistics, CreatedAt = now, SiteLevelDp = SiteLevelDp,
        };
        // Every problem at once: the options' and the document's (federation name, rounds, quorum, round length).
        problems.AddRange(config.Validate());
        if (problems.Count > 0) throw new ArgumentException(string.Join("\n", problems));
        return config;
    }
}
