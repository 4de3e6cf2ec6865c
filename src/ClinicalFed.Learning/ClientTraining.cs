using System.Globalization;
using System.Text.Json;
using ClinicalFed.Compression;
using ClinicalFed.Federation;
using ClinicalFed.Privacy;

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
    public const string DpEpsilonKey = "client_dp_epsilon";
    public const string DpDeltaKey = "client_dp_delta";
    public const string DpClipNormKey = "client_dp_clip_norm";
    public const string DpNoiseMultiplierKey = "client_dp_noise_multiplier";
    public const string DpRoundsKey = "client_dp_rounds";
    public const string DpPatientGradientKey = "client_dp_patient_gradient";
    public const string CompressKey = FederationConfig.ClientCompressKey;

    public int LocalEpochs { get; init; } = 1;
    public int BatchSize { get; init; } = 256;
    public double LearningRate { get; init; } = 0.05;
    public double L2 { get; init; } = 1e-4;
    public double ProximalMu { get; init; }
    public int Seed { get; init; } = 1;

    /// <summary>
    /// Record-level DP-SGD with the patient as the unit: every site's (ε, δ) budget (null: no DP). With DP the batch size
    /// is the expected number of <em>patients</em> per batch (Poisson sampling by patient).
    /// </summary>
    public double? DpEpsilon { get; init; }
    public double DpDelta { get; init; } = 1e-5;
    /// <summary>C, the per-patient gradient clipping bound.</summary>
    public double DpClipNorm { get; init; } = 1.0;
    /// <summary>σ; null: each site calibrates it from its own number of patients so that <see cref="DpRounds"/> rounds spend exactly ε.</summary>
    public double? DpNoiseMultiplier { get; init; }
    /// <summary>Rounds the budget is planned for (calibration); the ledger refuses any round beyond the budget regardless.</summary>
    public int DpRounds { get; init; } = 10;
    /// <summary>
    /// How a patient's rows form the gradient that is clipped: <c>mean</c> (the default: the mean of its rows' gradients) or
    /// <c>sum</c> (their sum, so long stays weigh as many rows until clipped; the batch is then divided by the expected
    /// rows). Either way one patient moves the batch sum by at most C.
    /// </summary>
    public string DpPatientGradient { get; init; } = "mean";

    /// <summary>
    /// How the sites compress their updates, as <c>--compress</c> takes it (<c>int8</c>, <c>int4</c>, <c>topk:F</c> with
    /// its options; null: float32). Each site then uploads its delta from the global model compressed
    /// (<see cref="CompressionSpec.ForRound"/> gives the round's encoding), keeping its top-k remainder in
    /// its work folder.
    /// </summary>
    public string? Compress { get; init; }

    /// <summary>The parsed <see cref="Compress"/> (null when absent or invalid; <see cref="Validate"/> reports why).</summary>
    public CompressionSpec? Compression => Compress is null ? null : CompressionSpec.Parse(Compress, []);

    /// <summary>True when the sites train with DP-SGD.</summary>
    public bool DifferentiallyPrivate => DpEpsilon is not null;

    /// <summary>Every problem at once (empty when valid), each naming its option key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var p = new List<string>();
        if (LocalEpochs is < 1 or > 100) p.Add($"'{LocalEpochsKey}' is {LocalEpochs}; expected 1 to 100");
        if (BatchSize is < 1 or > 1 << 20) p.Add($"'{BatchSizeKey}' is {BatchSize}; expected 1 to {1 << 20}");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) p.Add($"'{LearningRateKey}' is {LearningRate}; it must be a positive number");
        if (!(L2 >= 0) || !double.IsFinite(L2)) p.Add($"'{L2Key}' is {L2}; it must be a non-negative number");
        if (!(ProximalMu >= 0) || !double.IsFinite(ProximalMu)) p.Add($"'proximal_mu' is {ProximalMu}; it must be a non-negative number");
        AddDpBudgetProblems(DpEpsilon, DpDelta, DpNoiseMultiplier, DpRounds, p);
        if (!(DpClipNorm > 0) || !double.IsFinite(DpClipNorm)) p.Add($"'{DpClipNormKey}' is {DpClipNorm}; it must be a positive number");
        if (DpPatientGradient is not ("mean" or "sum")) p.Add($"'{DpPatientGradientKey}' is '{DpPatientGradient}'; expected mean or sum");
        if (Compress is not null)
        {
            var errors = new List<string>();
            CompressionSpec.Parse(Compress, errors);
            p.AddRange(errors.Select(e => $"'{CompressKey}': {e}"));
        }

        return p;
    }

    /// <summary>The <c>client_</c> options to put in a strategy spec.</summary>
    public IReadOnlyDictionary<string, JsonElement> ToClientOptions()
    {
        var o = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
        {
            [LocalEpochsKey] = JsonSerializer.SerializeToElement(LocalEpochs),
            [BatchSizeKey] = JsonSerializer.SerializeToElement(BatchSize),
            [LearningRateKey] = JsonSerializer.SerializeToElement(LearningRate),
            [L2Key] = JsonSerializer.SerializeToElement(L2),
            [SeedKey] = JsonSerializer.SerializeToElement(Seed),
        };
        if (DpEpsilon is { } eps)
        {
            AddDpBudgetOptions(o, eps, DpDelta, DpNoiseMultiplier, DpRounds);
            o[DpClipNormKey] = JsonSerializer.SerializeToElement(DpClipNorm);
            if (DpPatientGradient != "mean") o[DpPatientGradientKey] = JsonSerializer.SerializeToElement(DpPatientGradient);
        }

        if (Compress is not null) o[CompressKey] = JsonSerializer.SerializeToElement(Compress);

        return o;
    }

    /// <summary>Reads the settings from a round's strategy spec (defaults for absent keys); throws listing every problem.</summary>
    public static ClientTrainingSettings From(StrategySpec strategy)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        var problems = new List<string>();
        var typed = StrategyFactory.ParseOptions(strategy.Name, strategy.Options);
        var o = strategy.Options;
        var d = new ClientTrainingSettings();
        var budget = ReadDpBudget(o, d.DpDelta, d.DpRounds, problems);
        var settings = new ClientTrainingSettings
        {
            LocalEpochs = ReadInt(o, LocalEpochsKey, d.LocalEpochs, problems),
            BatchSize = ReadInt(o, BatchSizeKey, d.BatchSize, problems),
            LearningRate = ReadDouble(o, LearningRateKey, d.LearningRate, problems),
            L2 = ReadDouble(o, L2Key, d.L2, problems),
            Seed = ReadInt(o, SeedKey, d.Seed, problems),
            DpEpsilon = budget.Epsilon, DpDelta = budget.Delta, DpNoiseMultiplier = budget.NoiseMultiplier, DpRounds = budget.Rounds,
            DpClipNorm = ReadDouble(o, DpClipNormKey, d.DpClipNorm, problems),
            DpPatientGradient = o.TryGetValue(DpPatientGradientKey, out var pg) && pg.ValueKind == JsonValueKind.String ? pg.GetString()! : d.DpPatientGradient,
            Compress = ReadString(o, CompressKey, problems),
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
        SamplingUnit = DifferentiallyPrivate ? SamplingUnit.Group : SamplingUnit.Row,
        BatchSampling = DifferentiallyPrivate ? BatchSampling.Poisson : BatchSampling.Shuffle,
        GroupGradient = DpPatientGradient == "sum" ? GroupGradient.SumOfRows : GroupGradient.MeanOfRows,
    };

    /// <summary>The problems of the budget keys that logistic regression and trees share (<c>client_dp_epsilon</c>,
    /// <c>_delta</c>, <c>_noise_multiplier</c>, <c>_rounds</c>), each naming its key.</summary>
    internal static void AddDpBudgetProblems(double? epsilon, double delta, double? noiseMultiplier, int rounds, List<string> p)
    {
        if (epsilon is { } eps && (!(eps > 0) || !double.IsFinite(eps))) p.Add($"'{DpEpsilonKey}' is {eps}; it must be a positive number");
        if (!(delta > 0 && delta < 1)) p.Add($"'{DpDeltaKey}' is {delta}; expected a number in (0, 1)");
        if (noiseMultiplier is { } nm && (!(nm > 0) || !double.IsFinite(nm))) p.Add($"'{DpNoiseMultiplierKey}' is {nm}; it must be a positive number");
        if (rounds is < 1 or > 100_000) p.Add($"'{DpRoundsKey}' is {rounds}; expected 1 to 100000");
    }

    /// <summary>Writes the shared budget keys (the noise multiplier only when fixed).</summary>
    internal static void AddDpBudgetOptions(Dictionary<string, JsonElement> o, double epsilon, double delta, double? noiseMultiplier, int rounds)
    {
        o[DpEpsilonKey] = JsonSerializer.SerializeToElement(epsilon);
        o[DpDeltaKey] = JsonSerializer.SerializeToElement(delta);
        o[DpRoundsKey] = JsonSerializer.SerializeToElement(rounds);
        if (noiseMultiplier is { } nm) o[DpNoiseMultiplierKey] = JsonSerializer.SerializeToElement(nm);
    }

    /// <summary>Reads the shared budget keys (ε and σ null when absent).</summary>
    internal static (double? Epsilon, double Delta, double? NoiseMultiplier, int Rounds) ReadDpBudget(IReadOnlyDictionary<string, JsonElement> o, double delta, int rounds, List<string> problems) => (
        o.ContainsKey(DpEpsilonKey) ? ReadDouble(o, DpEpsilonKey, 0, problems) : null,
        ReadDouble(o, DpDeltaKey, delta, problems),
        o.ContainsKey(DpNoiseMultiplierKey) ? ReadDouble(o, DpNoiseMultiplierKey, 0, problems) : null,
        ReadInt(o, DpRoundsKey, rounds, problems));

    internal static string? ReadString(IReadOnlyDictionary<string, JsonElement> o, string key, List<string> problems)
    {
        if (!o.TryGetValue(key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        problems.Add($"'{key}' is {v.GetRawText()}; expected a string");
        return null;
    }

    internal static int ReadInt(IReadOnlyDictionary<string, JsonElement> o, string key, int fallback, List<string> problems)
    {
        if (!o.TryGetValue(key, out var v)) return fallback;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        problems.Add($"'{key}' is {v.GetRawText()}; expected an integer");
        return fallback;
    }

    internal static double ReadDouble(IReadOnlyDictionary<string, JsonElement> o, string key, double fallback, List<string> problems)
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

    /// <summary>
    /// The top-k refit (<c>CompressionSpec.RefitEpochs</c>): trains the round again from <paramref name="global"/> for
    /// <paramref name="epochs"/> epochs with only <paramref name="coordinates"/> free (the same data order as the round's
    /// training) and returns the change of each, in the order given. Not for DP-SGD: it is an extra, non-private pass.
    /// </summary>
    public static float[] RefitCoordinates(FeatureMatrix data, LinearWeights global, ClientTrainingSettings settings, int round, int siteIndex, int[] coordinates, int epochs)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(global);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(coordinates);
        if (settings.DifferentiallyPrivate) throw new ArgumentException("A refit is an extra pass over the data outside the DP-SGD accountant.", nameof(settings));
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "at least one epoch");
        var start = global.ToParameterVector();
        var fitted = ProximalSgdOptimizer.Train(data, global, settings.ForRound(round, siteIndex) with { Epochs = epochs }, new CoordinateMask(coordinates, start.Length))
            .Weights.ToParameterVector();
        var change = new float[coordinates.Length];
        for (int j = 0; j < coordinates.Length; j++) change[j] = fitted[coordinates[j]] - start[coordinates[j]];
        return change;
    }

    /// <summary>
    /// DP-SGD training of one round with the patient as the privacy unit (the settings must enable DP and
    /// <paramref name="data"/> must carry patient groups: <see cref="GroupedMatrix"/>). Checks the site's ledger first —
    /// <see cref="PrivacyBudgetExceededException"/> when this round would exceed its budget, before any training — then
    /// trains with Poisson sampling by patient, per-patient clipping and Gaussian noise from <paramref name="privacy"/>'s
    /// cryptographic generator, records the spend and returns the update header's <c>privacy</c> object.
    /// </summary>
    public static (ProximalSgdResult Result, UpdatePrivacy Privacy) TrainRoundPrivately(
        FeatureMatrix data, LinearWeights? global, ClientTrainingSettings settings, int round, int siteIndex, SitePrivacy privacy)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(privacy);
        if (!settings.DifferentiallyPrivate) throw new ArgumentException("The training settings do not enable differential privacy.", nameof(settings));
        if (data.GroupIds is null) throw new ArgumentException("DP-SGD needs the patient of every row (the privacy unit): build the matrix with ClientTraining.GroupedMatrix.", nameof(data));
        var options = settings.ForRound(round, siteIndex) with { Seed = privacy.Gaussian.NextSeed() };
        var plan = privacy.Plan(settings, data);
        privacy.Ledger.EnsureCanSpend(plan.SamplingRate, plan.NoiseMultiplier, plan.StepsPerRound, privacy.Site);
        var processor = new DpSgdGradientProcessor((float)settings.DpClipNorm, plan.NoiseMultiplier, privacy.Gaussian);
        var result = ProximalSgdOptimizer.Train(data, global, options, processor);
        var spend = privacy.Ledger.Spend(plan.SamplingRate, plan.NoiseMultiplier, result.Steps, privacy.Site);
        privacy.Saved();
        // The training losses are not differentially private: drop them so that they cannot reach the update header.
        result = result with { EpochLosses = [] };
        return (result, new UpdatePrivacy
        {
            Mechanism = PrivacyMechanisms.DpSgdPatient, EpsilonRound = spend.EpsilonRound, EpsilonTotal = spend.EpsilonTotal, Delta = privacy.Ledger.Delta,
            NoiseMultiplier = plan.NoiseMultiplier, ClipNorm = settings.DpClipNorm, SamplingRate = plan.SamplingRate, Steps = result.Steps,
        });
    }

    /// <summary>A training matrix whose groups are the rows' patients (dense indices in order of first appearance).</summary>
    public static FeatureMatrix GroupedMatrix(float[] x, int width, float[] y, IReadOnlyList<string> patients)
    {
        ArgumentNullException.ThrowIfNull(patients);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var groups = new int[patients.Count];
        for (int i = 0; i < groups.Length; i++)
        {
            if (!ids.TryGetValue(patients[i], out int id)) ids.Add(patients[i], id = ids.Count);
            groups[i] = id;
        }

        return new FeatureMatrix(x, width, y, null, groups, ids.Count);
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
