using System.Globalization;
using System.Text.Json;
using ClinicalFed.Federation;

namespace ClinicalFed.Learning;

/// <summary>
/// How every site trains logistic regression in a round, carried in the round manifest's strategy options under
/// <c>client_</c> keys (so the coordinator, not each site, decides): local epochs, batch size, learning rate (cosine
/// schedule), L2, the seed base; FedProx's <c>proximal_mu</c> is read from the strategy itself. The simulation and
/// the site agent both train through <see cref="ClientTraining.TrainRound"/>, which is what makes a serverless
/// federation reproduce <c>clinicalfed simulate</c> exactly.
/// </summary>
public sealed record ClientTrainingSettings
{
    public const string LocalEpochsKey = "client_local_epochs";
    public const string BatchSizeKey = "client_batch_size";
    public const string LearningRateKey = "client_learning_rate";
    public const string L2Key = "client_l2";
    public const string SeedKey = "client_seed";

    public int LocalEpochs { get; init; } = 1;
    public int BatchSize { get; init; } = 256;
    public double LearningRate { get; init; } = 0.05;
    public double L2 { get; init; } = 1e-4;
    public double ProximalMu { get; init; }
    public int Seed { get; init; } = 1;

    /// <summary>Every problem at once (empty when valid), each naming its option key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (LocalEpochs is < 1 or > 100) p.Add($"'{LocalEpochsKey}' is {LocalEpochs}; expected 1 to 100");
        if (BatchSize is < 1 or > 1 << 20) p.Add($"'{BatchSizeKey}' is {BatchSize}; expected 1 to {1 << 20}");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) p.Add($"'{LearningRateKey}' is {LearningRate}; it must be a positive number");
        if (!(L2 >= 0) || !double.IsFinite(L2)) p.Add($"'{L2Key}' is {L2}; it must be a non-negative number");
        if (!(ProximalMu >= 0) || !double.IsFinite(ProximalMu)) p.Add($"'proximal_mu' is {ProximalMu}; it must be a non-negative number");
        return p;
    }

    /// <summary>The <c>client_</c> options to put in a strategy spec.</summary>
    public IReadOnlyDictionary<string, JsonElement> ToClientOptions() => new Dictionary<string, JsonElement>(StringComparer.Ordinal)
    {
        [LocalEpochsKey] = JsonSerializer.SerializeToElement(LocalEpochs),
        [BatchSizeKey] = JsonSerializer.SerializeToElement(BatchSize),
        [LearningRateKey] = JsonSerializer.SerializeToElement(LearningRate),
        [L2Key] = JsonSerializer.SerializeToElement(L2),
        [SeedKey] = JsonSerializer.SerializeToElement(Seed),
    };

    /// <summary>Reads the settings from a round's strategy spec (defaults for absent keys); throws listing every problem.</summary>
    public static ClientTrainingSettings From(StrategySpec strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        var problems = new List<string>();
        var typed = StrategyFactory.ParseOptions(strategy.Name, strategy.Options);
        var o = strategy.Options;
        var d = new ClientTrainingSettings();
        var settings = new ClientTrainingSettings
        {
            LocalEpochs = ReadInt(o, LocalEpochsKey, d.LocalEpochs, problems),
            BatchSize = ReadInt(o, BatchSizeKey, d.BatchSize, problems),
            LearningRate = ReadDouble(o, LearningRateKey, d.LearningRate, problems),
            L2 = ReadDouble(o, L2Key, d.L2, problems),
            Seed = ReadInt(o, SeedKey, d.Seed, problems),
            ProximalMu = typed is FedProxOptions fp ? fp.ProximalMu : 0,
        };
        problems.AddRange(settings.Validate());
        if (problems.Count > 0) throw new FederationDataException("strategy.options", problems);
        return settings;
    }

    /// <summary>The optimizer options of site <paramref name="siteIndex"/> (its position in the manifest's site list) in round <paramref name="round"/>.</summary>
    public ProximalSgdOptions ForRound(int round, int siteIndex) => new()
    {
        Epochs = LocalEpochs, BatchSize = BatchSize, LearningRate = LearningRateSchedule.Cosine(LearningRate), L2 = (float)L2,
        ProximalMu = (float)ProximalMu, Seed = Seed + 1000 * round + siteIndex,
    };

    private static int ReadInt(IReadOnlyDictionary<string, JsonElement> o, string key, int fallback, List<string> problems)
    {
        if (!o.TryGetValue(key, out var v)) return fallback;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        problems.Add($"'{key}' is {v.GetRawText()}; expected an integer");
        return fallback;
    }

    private static double ReadDouble(IReadOnlyDictionary<string, JsonElement> o, string key, double fallback, List<string> problems)
    {
        if (!o.TryGetValue(key, out var v)) return fallback;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double x)) return x;
        problems.Add($"'{key}' is {v.GetRawText()}; expected a number");
        return fallback;
    }
}

/// <summary>One site's work in one round of federated logistic regression.</summary>
public static class ClientTraining
{
    /// <summary>Local training from the round's global model (null in a round that starts from zeros).</summary>
    public static ProximalSgdResult TrainRound(FeatureMatrix data, LinearWeights? global, ClientTrainingSettings settings, int round, int siteIndex)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return ProximalSgdOptimizer.Train(data, global, settings.ForRound(round, siteIndex));
    }

    /// <summary>The update header's local metrics: the last epoch's training loss when finite.</summary>
    public static Dictionary<string, double> LocalMetrics(ProximalSgdResult result) =>
        result.EpochLosses.Count > 0 && double.IsFinite(result.EpochLosses[^1])
            ? new Dictionary<string, double>(StringComparer.Ordinal) { ["train_loss"] = result.EpochLosses[^1] }
            : new Dictionary<string, double>(StringComparer.Ordinal);

    /// <summary>
    /// The weight w of the site's own model in its personalized model w·own + (1 − w)·global, chosen among 0, ¼, ½,
    /// ¾ and 1 by AUROC on the site's validation rows (ties keep the smaller weight; 1 when there is no global
    /// model or the validation rows lack a class).
    /// </summary>
    public static double ChoosePersonalizationWeight(LinearWeights? global, LinearWeights own, float[] validationX, float[] validationY, int width)
    {
        if (global is null || !validationY.Any(y => y == 1) || !validationY.Any(y => y == 0)) return 1;
        double best = double.NegativeInfinity, bestWeight = 1;
        foreach (var w in new[] { 0.0, 0.25, 0.5, 0.75, 1.0 })
        {
            var mix = LinearWeights.Interpolate(global, own, (float)w);
            int n = validationY.Length;
            var p = new float[n];
            for (int i = 0; i < n; i++) p[i] = (float)mix.Probability(validationX.AsSpan(i * width, width));
            double auroc = Metrics.Auroc(p, validationY);
            if (auroc > best + 1e-9)
            {
                best = auroc;
                bestWeight = w;
            }
        }

        return bestWeight;
    }

    internal static string Format(double x) => x.ToString("R", CultureInfo.InvariantCulture);
}
