using ClinicalFed.Cdm.Features;
using ClinicalFed.Federation;
using ClinicalFed.Learning;

namespace ClinicalFed.Cli.Site;

/// <summary>The settings of a new federation, built from command-line choices; validated all at once.</summary>
public sealed record FederationSetup
{
    public required string Federation { get; init; }
    public required string Task { get; init; }
    public string Strategy { get; init; } = StrategyNames.FedAvg;
    public double ProximalMu { get; init; } = 0.01;
    public int Rounds { get; init; } = 10;
    public int Quorum { get; init; } = 2;
    public int RoundSeconds { get; init; } = 24 * 3600;
    public bool Statistics { get; init; } = true;
    public string Description { get; init; } = "";

    /// <summary>The sites' training settings (same defaults as <c>clinicalfed simulate</c>).</summary>
    public ClientTrainingSettings Client { get; init; } = new();

    /// <summary>The federation document (without sites) for <see cref="Storage.Coordination.FederationCoordinator.CreateFederationAsync"/>.</summary>
    public FederationConfig ToConfig(DateTimeOffset now)
    {
        var problems = new List<string>();
        if (Task is not ("sepsis" or "readmission")) problems.Add($"--task: '{Task}' (expected sepsis or readmission)");
        if (!StrategyNames.All.Contains(Strategy)) problems.Add($"--strategy: '{Strategy}' (known: {string.Join(", ", StrategyNames.All)})");
        problems.AddRange(Client.Validate());
        if (problems.Count > 0) throw new ArgumentException(string.Join("\n", problems));
        var spec = FeatureSpec.Load(Task);
        var options = StrategyFactory.ParseOptions(Strategy, Strategy == StrategyNames.FedProx
            ? new Dictionary<string, System.Text.Json.JsonElement> { ["proximal_mu"] = System.Text.Json.JsonSerializer.SerializeToElement(ProximalMu) }
            : null);
        var config = new FederationConfig
        {
            Federation = Federation, Description = Description,
            Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = spec.ColumnNames.Count + 1, FeatureSpecId = spec.Id, FeatureSpecVersion = spec.Version },
            Strategy = StrategySpec.From(options, Client.ToClientOptions()),
            Rounds = Rounds, Quorum = Quorum, RoundSeconds = RoundSeconds, Statistics = Statistics, CreatedAt = now,
        };
        var invalid = config.Validate();
        if (invalid.Count > 0) throw new ArgumentException(string.Join("\n", invalid));
        return config;
    }
}
