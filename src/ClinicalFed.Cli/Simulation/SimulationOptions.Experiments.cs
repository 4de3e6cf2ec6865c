using System.CommandLine;
using System.Globalization;
using ClinicalFed.Federation;

namespace ClinicalFed.Cli.Simulation;

/// <summary>The robustness, contribution, participation, hierarchy and asynchronous options of <c>simulate</c>.</summary>
public sealed partial record SimulationOptions
{
    /// <summary><c>--attack KIND:SITE[:FACTOR]</c>, repeatable.</summary>
    public IReadOnlyList<string> Attacks { get; init; } = [];
    /// <summary>With attacks: also run the clean federation and FedAvg under the same attacks, for the report's comparison.</summary>
    public bool CompareAttacks { get; init; } = true;
    /// <summary><c>--contribution exact|sampled|off</c>.</summary>
    public string? Contribution { get; init; }

    /// <summary>The contribution scoring in force: <see cref="Contribution"/>, or by default exact for logistic
    /// regression and off for trees (a tree coalition is a whole boosting run of its own).</summary>
    public string ContributionMethod => Contribution ?? (Model == "logistic" ? ContributionScoring.Exact : "off");
    public int ContributionPermutations { get; init; } = 20;
    /// <summary><c>--downweight-contributors</c>: leave out sites whose summed Shapley value is negative (from round 3).</summary>
    public bool DownweightContributors { get; init; }
    /// <summary><c>--participation K</c>: K of the n sites, drawn per round (null: all).</summary>
    public int? Participation { get; init; }
    /// <summary><c>--absent SITE:FROM-TO</c>: rounds (1-based, inclusive) in which a site sends nothing.</summary>
    public IReadOnlyList<string> Absent { get; init; } = [];
    /// <summary><c>--region NAME=SITE,SITE</c>: regional aggregators between those sites and the global aggregator.</summary>
    public IReadOnlyList<string> Regions { get; init; } = [];
    /// <summary><c>--async-buffer K</c>: also compare buffered asynchronous aggregation against synchronous rounds.</summary>
    public int? AsyncBuffer { get; init; }
    /// <summary><c>--slow SITE:FACTOR</c>: the site's local rounds take FACTOR times longer on the simulated clock.</summary>
    public IReadOnlyList<string> Slow { get; init; } = [];
    /// <summary><c>--target-auroc X</c>: the mean test AUROC the asynchronous comparison times.</summary>
    public double? TargetAuroc { get; init; }
    /// <summary><c>--compress int8|int4|topk:F</c>: sites send compressed deltas; the report compares the uncompressed run.</summary>
    public string? Compress { get; init; }

    /// <summary><c>--dp-site-clip C</c>: site-level DP-FedAvg at the aggregator with this clip norm (null: off).</summary>
    public double? DpSiteClip { get; init; }
    public double DpSiteNoise { get; init; } = 1.0;
    public string DpSiteMode { get; init; } = ClinicalFed.Privacy.SiteDpModes.Server;
    public double DpSiteDelta { get; init; } = 1e-5;

    public ClinicalFed.Privacy.SiteDpOptions? SiteDp() => DpSiteClip is { } c
        ? new ClinicalFed.Privacy.SiteDpOptions { ClipNorm = c, NoiseMultiplier = DpSiteNoise, Mode = DpSiteMode, Delta = DpSiteDelta }
        : null;

    /// <summary><c>--tree-features K</c>: features each tree may split on, drawn per tree (null: all; 8 with DP trees).</summary>
    public int? TreeFeatures { get; init; }
    /// <summary><c>--tree-depth D</c>: the trees' maximum depth (null: leaves only; 4 with DP trees).</summary>
    public int? TreeDepth { get; init; }
    /// <summary><c>--tree-bins B</c>: value bins per feature (null: 255; 32 with DP trees).</summary>
    public int? TreeBins { get; init; }
    /// <summary><c>--tree-learning-rate η</c> (null: 0.1; 0.3 with DP trees).</summary>
    public double? TreeLearningRate { get; init; }
    /// <summary><c>--dp-patient-weight W</c>: with DP trees, a patient's rows weigh at most W together.</summary>
    public double DpPatientWeight { get; init; } = 1.0;

    /// <summary>Differential privacy of histogram-mode trees (<c>--model trees --tree-mode histogram --dp-epsilon E</c>).</summary>
    public bool DpTrees => Model == "trees" && DpEpsilon is not null;

    /// <summary>The tree shape options' problems (added to <see cref="Validate"/>).</summary>
    private void ValidateTreeShape(List<string> e)
    {
        if (TreeFeatures is { } k && k < 1) e.Add($"--tree-features: {k} (expected at least 1)");
        if (TreeDepth is { } depth && depth is < 1 or > 16) e.Add($"--tree-depth: {depth} (expected 1 to 16)");
        if (TreeBins is { } bins && bins is < 2 or > 255) e.Add($"--tree-bins: {bins} (expected 2 to 255)");
        if (!(DpPatientWeight > 0) || !double.IsFinite(DpPatientWeight)) e.Add($"--dp-patient-weight: {DpPatientWeight} (expected a positive number)");
        if ((TreeFeatures is not null || TreeDepth is not null || TreeBins is not null || TreeLearningRate is not null) && Model != "trees")
            e.Add("--tree-features, --tree-depth, --tree-bins, --tree-learning-rate: need --model trees");
        if (TreeLearningRate is { } lr && !(lr > 0 && lr <= 1)) e.Add($"--tree-learning-rate: {lr} (expected a number in (0, 1])");
    }

    /// <summary><c>--strategy-option KEY=VALUE</c>: options of the strategy (numbers, or strings such as weighting=uniform).</summary>
    public IReadOnlyList<string> StrategyOptionValues { get; init; } = [];

    public Dictionary<string, System.Text.Json.JsonElement> ParsedStrategyOptions() => ParseStrategyOptions([]);

    private Dictionary<string, System.Text.Json.JsonElement> ParseStrategyOptions(List<string> e)
    {
        var result = new Dictionary<string, System.Text.Json.JsonElement>(StringComparer.Ordinal);
        foreach (var kv in StrategyOptionValues)
        {
            int eq = kv.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                e.Add($"--strategy-option {kv}: expected KEY=VALUE");
                continue;
            }
            string value = kv[(eq + 1)..];
            result[kv[..eq]] = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)
                ? System.Text.Json.JsonSerializer.SerializeToElement(d) : System.Text.Json.JsonSerializer.SerializeToElement(value);
        }
        return result;
    }

    public ClinicalFed.Compression.CompressionSpec? ParsedCompression() => Compress is null ? null : ClinicalFed.Compression.CompressionSpec.Parse(Compress, []);

    /// <summary>The names of the sites after <c>--split</c> (NAME1..NAMEK for a split site).</summary>
    public IReadOnlyList<string> SiteNames() => Sites.SelectMany(s => Splits.TryGetValue(s.Name, out int k)
        ? Enumerable.Range(1, k).Select(i => s.Name + i.ToString(CultureInfo.InvariantCulture)) : [s.Name]).ToList();

    public IReadOnlyList<SiteAttack> ParsedAttacks() => Attacks.Select(a => SiteAttack.Parse(a, [])).OfType<SiteAttack>().ToList();

    public IReadOnlyDictionary<string, (int From, int To)> ParsedAbsent() => ParseAbsent([]);

    public IReadOnlyDictionary<string, IReadOnlyList<string>> ParsedRegions() => ParseRegions([]);

    public IReadOnlyDictionary<string, double> ParsedSlow() => ParseSlow([]);

    private void ValidateFederationExperiments(List<string> e)
    {
        var names = SiteNames().ToHashSet(StringComparer.Ordinal);
        bool federated = Model == "logistic";
        foreach (var a in Attacks)
        {
            if (SiteAttack.Parse(a, e) is { } attack && !names.Contains(attack.Site))
                e.Add($"--attack {a}: no site named '{attack.Site}' (sites: {string.Join(", ", names)})");
        }
        if (Attacks.Count > 0 && !federated && !(Model == "trees" && TreeMode == "histogram" && DpEpsilon is null))
            e.Add("--attack: needs --model logistic, or trees with --tree-mode histogram without --dp-epsilon (noisy histograms cannot be checked)");
        if (Attacks.Select(a => a.Split(':').ElementAtOrDefault(1)).GroupBy(s => s).Any(g => g.Count() > 1)) e.Add("--attack: one attack per site");
        if (Contribution is not (null or ContributionScoring.Exact or ContributionScoring.Sampled or "off")) e.Add($"--contribution: '{Contribution}' (expected exact, sampled or off)");
        if (DownweightContributors && ContributionMethod == "off") e.Add("--downweight-contributors: needs --contribution exact or sampled");
        if (Model == "trees" && ContributionMethod != "off")
        {
            if (TreeMode != "histogram") e.Add("--contribution with trees: needs --tree-mode histogram (each coalition of sites boosts its own ensemble)");
            if (DpEpsilon is not null) e.Add("--contribution with trees: not combined with --dp-epsilon (every coalition's run would spend more of the sites' budgets)");
            if (SecureAggregation) e.Add("--contribution with trees: not combined with --secure-aggregation");
            if (DownweightContributors) e.Add("--downweight-contributors: logistic only");
        }
        if (ContributionPermutations is < 1 or > 10_000) e.Add($"--contribution-permutations: {ContributionPermutations} (expected 1 to 10000)");
        if (Participation is { } k && (k < 1 || k > names.Count)) e.Add($"--participation: {k} (expected 1 to the {names.Count} sites)");
        ParseAbsent(e);
        var regions = ParseRegions(e);
        if (regions.Count > 0)
        {
            var covered = regions.Values.SelectMany(v => v).ToList();
            foreach (var n in covered.Where(n => !names.Contains(n)).Distinct()) e.Add($"--region: no site named '{n}'");
            foreach (var n in covered.GroupBy(n => n).Where(g => g.Count() > 1)) e.Add($"--region: site '{n.Key}' is in more than one region");
            foreach (var n in names.Where(n => !covered.Contains(n))) e.Add($"--region: site '{n}' is in no region (every site reports through one)");
            foreach (var r in regions.Keys.Where(names.Contains)) e.Add($"--region {r}: a region cannot share a site's name");
            if (Participation is not null || Absent.Count > 0) e.Add("--region: not combined with --participation or --absent");
            if (SecureAggregation) e.Add("--region: not combined with --secure-aggregation");
        }
        if (AsyncBuffer is { } b && (b < 1 || b > names.Count)) e.Add($"--async-buffer: {b} (expected 1 to the {names.Count} sites)");
        if (AsyncBuffer is not null && !federated) e.Add("--async-buffer: needs --model logistic");
        if (AsyncBuffer is not null && DpEpsilon is not null) e.Add("--async-buffer: not combined with --dp-epsilon (the comparison trains without DP)");
        foreach (var n in ParseSlow(e).Keys.Where(n => !names.Contains(n))) e.Add($"--slow: no site named '{n}'");
        if (TargetAuroc is { } t && !(t > 0 && t < 1)) e.Add($"--target-auroc: {t} (expected a number in (0, 1))");
        if (Attacks.Count > 0 && SecureAggregation) e.Add("--attack: not combined with --secure-aggregation (masked updates cannot be screened)");
        if (SiteDp() is { } siteDp)
        {
            e.AddRange(siteDp.Validate().Select(p => "--dp-site-" + p.Replace("clip_norm", "clip").Replace("noise_multiplier", "noise")));
            if (!federated) e.Add("--dp-site-clip: needs --model logistic");
            if (SecureAggregation && siteDp.Mode != ClinicalFed.Privacy.SiteDpModes.Client)
                e.Add("--dp-site-clip with --secure-aggregation needs --dp-site-mode client: the aggregator cannot clip what it cannot see, so the sites clip and add their share of the noise before masking");
            if (Regions.Count > 0) e.Add("--dp-site-clip: not combined with --region");
        }
        var strategyOptions = ParseStrategyOptions(e);
        if (strategyOptions.Count > 0 && Model == "logistic" && StrategyNames.All.Contains(Strategy))
        {
            try
            {
                var withMu = new Dictionary<string, System.Text.Json.JsonElement>(strategyOptions);
                if (Strategy == StrategyNames.FedProx) withMu.TryAdd("proximal_mu", System.Text.Json.JsonSerializer.SerializeToElement(ProximalMu));
                StrategyFactory.ParseOptions(Strategy, withMu);
            }
            catch (StrategyOptionsException x)
            {
                e.AddRange(x.Problems.Select(p => $"--strategy-option: {p}"));
            }
        }
        if (Compress is not null)
        {
            ClinicalFed.Compression.CompressionSpec.Parse(Compress, e);
            if (!federated) e.Add("--compress: needs --model logistic");
            if (SecureAggregation) e.Add("--compress: not combined with --secure-aggregation (masked vectors are ring elements)");
        }
    }

    private IReadOnlyDictionary<string, (int From, int To)> ParseAbsent(List<string> e)
    {
        var result = new Dictionary<string, (int, int)>(StringComparer.Ordinal);
        var names = SiteNames();
        foreach (var a in Absent)
        {
            var parts = a.Split(':');
            var range = parts.Length == 2 ? parts[1].Split('-') : [];
            if (parts.Length != 2 || range.Length is < 1 or > 2 || !int.TryParse(range[0], CultureInfo.InvariantCulture, out int from)
                || !int.TryParse(range[^1], CultureInfo.InvariantCulture, out int to) || from < 1 || to < from)
            {
                e.Add($"--absent {a}: expected SITE:FROM-TO (rounds, 1-based) or SITE:ROUND");
                continue;
            }
            if (!names.Contains(parts[0])) e.Add($"--absent {a}: no site named '{parts[0]}'");
            result[parts[0]] = (from, to);
        }
        return result;
    }

    private IReadOnlyDictionary<string, IReadOnlyList<string>> ParseRegions(List<string> e)
    {
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var r in Regions)
        {
            int eq = r.IndexOf('=', StringComparison.Ordinal);
            var sites = eq > 0 ? r[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
            if (eq <= 0 || sites.Length == 0)
            {
                e.Add($"--region {r}: expected NAME=SITE,SITE");
                continue;
            }
            string name = r[..eq];
            if (!ClinicalFed.Federation.FederationNames.IsValid(name)) e.Add($"--region {r}: '{name}' is not a valid site name");
            if (!result.TryAdd(name, sites)) e.Add($"--region {name}: given twice");
        }
        return result;
    }

    private IReadOnlyDictionary<string, double> ParseSlow(List<string> e)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var s in Slow)
        {
            var parts = s.Split(':');
            if (parts.Length != 2 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double f) || !(f >= 1) || !double.IsFinite(f))
            {
                e.Add($"--slow {s}: expected SITE:FACTOR with FACTOR ≥ 1");
                continue;
            }
            result[parts[0]] = f;
        }
        return result;
    }
}

/// <summary>The command-line options behind <see cref="SimulationOptions"/>' experiment settings.</summary>
internal static class SimulateExperimentOptions
{
    private static readonly Option<string[]> Attack = new("--attack") { Description = "KIND:SITE[:FACTOR]: the site is malicious. KIND: signflip (sends −4Δ), scale (10Δ), labelflip (trains on 1 − y), noise (Gaussian Δ, σ 1), freerider (sends the global model back), labelshuffle. The report then also shows the clean run and FedAvg under the same attack. With --tree-mode histogram the attacker tampers with its histograms instead (signflip −FACTOR·g, scale FACTOR·g and h, noise on every number, freerider zeros) and the coordinator leaves out a site whose histogram fails its checks.", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<bool> NoCompare = new("--no-attack-comparison") { Description = "With --attack: skip the clean and FedAvg comparison runs." };
    private static readonly Option<string?> Contribution = new("--contribution") { Description = "Contribution scoring by federated evaluation: exact (Shapley over every coalition, each round), sampled (Monte-Carlo permutations) or off. Default: exact for logistic regression, off for trees (with --tree-mode histogram, exact or sampled boosts one ensemble per coalition of sites)." };
    private static readonly Option<bool> Downweight = new("--downweight-contributors") { Description = "From round 3, leave out (weight 0) every site whose summed Shapley value is negative." };
    private static readonly Option<int> Permutations = new("--contribution-permutations") { Description = "Permutations per round with --contribution sampled.", DefaultValueFactory = _ => 20 };
    private static readonly Option<int?> Participation = new("--participation") { Description = "K: K of the n sites take part in each round, drawn with the seed (k-of-n rounds)." };
    private static readonly Option<string[]> Absent = new("--absent") { Description = "SITE:FROM-TO: the site sends nothing in those rounds (1-based); the rounds close without it.", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<string[]> Region = new("--region") { Description = "NAME=SITE,SITE: a regional aggregator combines these sites and forwards one update (example counts carried up) to the global aggregator.", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<int?> AsyncBuffer = new("--async-buffer") { Description = "K: also run buffered asynchronous aggregation (FedBuff, K updates per global step) against synchronous rounds on a simulated clock; see --slow." };
    private static readonly Option<string[]> Slow = new("--slow") { Description = "SITE:FACTOR: on the simulated clock the site's local rounds take FACTOR times its measured time.", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<double?> Target = new("--target-auroc") { Description = "Mean test AUROC whose time the asynchronous comparison reports (default: 0.005 below the synchronous run's final)." };
    private static readonly Option<double?> DpSiteClip = new("--dp-site-clip") { Description = "Site-level DP-FedAvg: every site's update is clipped to this L2 norm (by the aggregator, or by the sites with --dp-site-mode client) and the aggregate gets Gaussian noise; sites are weighed uniformly." };
    private static readonly Option<double> DpSiteNoise = new("--dp-site-noise") { Description = "Site-level DP noise multiplier z: the mean gets N(0, (z·C/n)²) per parameter.", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<string> DpSiteMode = new("--dp-site-mode") { Description = "server (the aggregator clips) or client (each site clips; the aggregator checks and adds noise).", DefaultValueFactory = _ => "server" };
    private static readonly Option<double> DpSiteDelta = new("--dp-site-delta") { Description = "δ of the site-level guarantee.", DefaultValueFactory = _ => 1e-5 };
    private static readonly Option<string[]> StrategyOption = new("--strategy-option") { Description = "KEY=VALUE: an option of --strategy, as in a round manifest (e.g. weighting=uniform, byzantine=1, trim_fraction=0.2, clip_update_norm=5, max_update_norm=20).", AllowMultipleArgumentsPerToken = true };
    private static readonly Option<int?> TreeFeatures = new("--tree-features") { Description = "Trees: features each tree may split on, drawn afresh per tree from the seed (default all; 8 with --dp-epsilon)." };
    private static readonly Option<int?> TreeDepth = new("--tree-depth") { Description = "Trees: maximum depth (default: leaves only; 4 with --dp-epsilon, which needs a depth for its accounting)." };
    private static readonly Option<int?> TreeBins = new("--tree-bins") { Description = "Trees: value bins per feature, 2 to 255 (default 255; 32 with --dp-epsilon)." };
    private static readonly Option<double?> TreeLearningRate = new("--tree-learning-rate") { Description = "Trees: learning rate (shrinkage) of every tree (default 0.1; 0.3 with --dp-epsilon)." };
    private static readonly Option<double> DpPatientWeight = new("--dp-patient-weight") { Description = "DP trees: every row of a patient with n rows weighs min(1, W/n), so a patient's rows weigh at most W together.", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<string?> Compress = new("--compress") { Description = "int8 or int4 (quantized deltas, stochastic rounding) or topk:F (the fraction F of largest coordinates: error feedback decayed by 0.6 and a 2-epoch refit of the chosen coordinates; tune with :noef, :decay=G, :refit=N). Top-k runs begin with a dense 8-bit warm-up round and end with a dense 4-bit round (:final=int8, or :final=topk for top-k to the end). The report then also shows the uncompressed run." };

    public static void AddTo(Command command)
    {
        foreach (var o in new Option[] { Attack, NoCompare, Contribution, Downweight, Permutations, Participation, Absent, Region, AsyncBuffer, Slow, Target, Compress, StrategyOption, DpSiteClip, DpSiteNoise, DpSiteMode, DpSiteDelta, TreeFeatures, TreeDepth, TreeBins, TreeLearningRate, DpPatientWeight }) command.Options.Add(o);
    }

    public static SimulationOptions Apply(ParseResult pr, SimulationOptions o) => o with
    {
        Attacks = pr.GetValue(Attack) ?? [], CompareAttacks = !pr.GetValue(NoCompare), Contribution = pr.GetValue(Contribution),
        ContributionPermutations = pr.GetValue(Permutations), DownweightContributors = pr.GetValue(Downweight), Participation = pr.GetValue(Participation), Absent = pr.GetValue(Absent) ?? [],
        Regions = pr.GetValue(Region) ?? [], AsyncBuffer = pr.GetValue(AsyncBuffer), Slow = pr.GetValue(Slow) ?? [], TargetAuroc = pr.GetValue(Target), Compress = pr.GetValue(Compress),
        StrategyOptionValues = pr.GetValue(StrategyOption) ?? [],
        DpSiteClip = pr.GetValue(DpSiteClip), DpSiteNoise = pr.GetValue(DpSiteNoise), DpSiteMode = pr.GetValue(DpSiteMode)!, DpSiteDelta = pr.GetValue(DpSiteDelta),
        TreeFeatures = pr.GetValue(TreeFeatures), TreeDepth = pr.GetValue(TreeDepth), TreeBins = pr.GetValue(TreeBins), TreeLearningRate = pr.GetValue(TreeLearningRate), DpPatientWeight = pr.GetValue(DpPatientWeight),
    };
}
