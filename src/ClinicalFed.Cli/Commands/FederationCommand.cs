using System.CommandLine;
using System.Text.Json;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Cli.Site;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Storage;
using ClinicalFed.Storage.Azure;
using ClinicalFed.Storage.Coordination;
using Spectre.Console;

namespace ClinicalFed.Cli.Commands;

/// <summary>Which federation store a command works on: a local folder, or an Azure Blob Storage container.</summary>
internal sealed class StoreArguments
{
    public const string ConnectionVariable = "CLINICALFED_STORE_CONNECTION_STRING";

    private readonly Option<string?> _folder = CliSupport.Optional("--store", "Federation store in a local folder (the embedded default).");
    private readonly Option<string?> _container = CliSupport.Optional("--container", "Azure Blob Storage container of the federation store (instead of --store).");
    private readonly Option<string?> _connection = CliSupport.Optional("--connection",
        $"With --container: a storage connection string, or an https:// service URL authorized by DefaultAzureCredential. Default: the {ConnectionVariable} environment variable (keeps secrets out of process lists).");
    private readonly Option<string?> _prefix = CliSupport.Optional("--prefix", "With --container: a folder inside the container.");

    public void AddTo(Command command)
    {
        command.Options.Add(_folder);
        command.Options.Add(_container);
        command.Options.Add(_connection);
        command.Options.Add(_prefix);
    }

    public FederationStore Open(ParseResult pr)
    {
        string? folder = pr.GetValue(_folder), container = pr.GetValue(_container);
        if (folder is not null && container is not null) throw new ArgumentException("give --store DIR or --container NAME, not both");
        if (folder is not null) return new LocalFolderStore(folder);
        if (container is null) throw new ArgumentException("a store is required: --store DIR, or --container NAME with --connection (or " + ConnectionVariable + ")");
        var connection = pr.GetValue(_connection) ?? Environment.GetEnvironmentVariable(ConnectionVariable)
            ?? throw new ArgumentException($"--container {container}: give --connection or set {ConnectionVariable}");
        return BlobFederationStore.Connect(connection, container, new BlobFederationStoreOptions { Prefix = pr.GetValue(_prefix) });
    }
}

/// <summary><c>clinicalfed federation</c>: administration of a federation against its store, and one aggregator tick.</summary>
internal static class FederationCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var cmd = new Command("federation", "Administer a federation in its store (create, register or withdraw sites, status) and run the aggregator's tick by hand or from cron.");
        cmd.Subcommands.Add(CreateCommand());
        cmd.Subcommands.Add(RegisterCommand());
        cmd.Subcommands.Add(WithdrawCommand());
        cmd.Subcommands.Add(StatusCommand());
        cmd.Subcommands.Add(TickCommand());
        return cmd;
    }

    private static Option<string> FederationOption() => CliSupport.Required("--federation", "Federation name.");

    private static Command CreateCommand()
    {
        var store = new StoreArguments();
        var federation = FederationOption();
        var task = CliSupport.Required("--task", "sepsis or readmission (the feature spec every site uses).");
        var model = new Option<string>("--model") { Description = "logistic (float32 parameters) or trees (gradient-boosted tree ensembles).", DefaultValueFactory = _ => ModelKinds.Logistic };
        var strategy = new Option<string?>("--strategy") { Description = "Logistic: fedavg (default), fedavgm, fedprox, fedadam, fedyogi, fedadagrad, median, trimmed-mean, krum, multi-krum, geomedian. Trees: tree-cyclic (default; each round one site's turn adds trees to the ensemble) or tree-bagging (one round: the sites' ensembles averaged)." };
        var trees = new Option<int>("--trees") { Description = "Trees: per site (tree-bagging) or per turn (tree-cyclic).", DefaultValueFactory = _ => new Learning.Trees.TreeClientSettings().Trees };
        var leaves = new Option<int>("--leaves") { Description = "Trees: leaves per tree.", DefaultValueFactory = _ => new Learning.Trees.TreeClientSettings().Leaves };
        var treeLr = new Option<double>("--tree-learning-rate") { Description = "Trees: the boosting learning rate (shrinkage).", DefaultValueFactory = _ => new Learning.Trees.TreeClientSettings().LearningRate };
        var mu = new Option<double>("--mu") { Description = "FedProx proximal μ (with --strategy fedprox).", DefaultValueFactory = _ => 0.01 };
        var rounds = new Option<int?>("--rounds") { Description = "Rounds to run (default 10; tree-bagging: 1). tree-cyclic: each round is one site's turn, so 3 passes over 5 sites are 15 rounds." };
        var quorum = new Option<int>("--quorum") { Description = "Minimum accepted updates per round.", DefaultValueFactory = _ => 2 };
        var roundSeconds = new Option<int>("--round-seconds") { Description = "How long each round stays open.", DefaultValueFactory = _ => 24 * 3600 };
        var noStatistics = new Option<bool>("--no-statistics") { Description = "Skip the federated statistics step (sites then impute and standardize with their own)." };
        var epochs = new Option<int>("--epochs") { Description = "Sites' local epochs per round.", DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--learning-rate") { Description = "Sites' initial learning rate (cosine schedule).", DefaultValueFactory = _ => 0.05 };
        var l2 = new Option<double>("--l2") { Description = "Sites' L2 penalty.", DefaultValueFactory = _ => 1e-4 };
        var seed = new Option<int>("--seed") { Description = "Seed base of the sites' training.", DefaultValueFactory = _ => 1 };
        var description = CliSupport.Optional("--description", "Free text: the study, the data, the contact.");
        var requireSignatures = new Option<bool>("--require-signatures") { Description = "Reject every unsigned update, also of sites that registered no signing public key (sites with a key must sign either way)." };
        var dpClip = new Option<double?>("--dp-site-clip") { Description = "Site-level DP-FedAvg: every site's update is clipped to this L2 norm and the aggregate gets Gaussian noise (sites weighed uniformly)." };
        var dpNoise = new Option<double>("--dp-site-noise") { Description = "Site-level DP noise multiplier z (noise σ = z·C/n on the mean).", DefaultValueFactory = _ => 1.0 };
        var dpMode = new Option<string>("--dp-site-mode") { Description = "server (the aggregator clips) or client (the sites clip; longer updates are rejected).", DefaultValueFactory = _ => "server" };
        var dpDelta = new Option<double>("--dp-site-delta") { Description = "δ of the site-level guarantee.", DefaultValueFactory = _ => 1e-5 };
        var dpTarget = new Option<double?>("--dp-site-target-epsilon") { Description = "Stop opening rounds before the site-level ε would exceed this." };
        var treeDepth = new Option<int?>("--tree-depth") { Description = "Trees: maximum depth (default: leaves only; 4 with --dp-epsilon)." };
        var treeFeatures = new Option<int?>("--tree-features") { Description = "Trees: features each tree may split on, drawn per tree from the seed (default all; 8 with --dp-epsilon)." };
        var treeBins = new Option<int?>("--tree-bins") { Description = "Trees: value bins per feature, 2 to 255 (default 255; 32 with --dp-epsilon)." };
        var dpEpsilon = new Option<double?>("--dp-epsilon") { Description = "Record-level differential privacy at every site, the patient as the unit, with this ε budget per site over the whole federation: DP-SGD (logistic) or noisy-histogram trees. σ is calibrated by each site for --rounds rounds." };
        var dpDeltaRecord = new Option<double>("--dp-delta") { Description = "δ of every site's budget (with --dp-epsilon).", DefaultValueFactory = _ => 1e-5 };
        var dpRounds = new Option<int?>("--dp-rounds") { Description = "With --dp-epsilon: the rounds each site trains, which its σ is calibrated for (default --rounds; in tree-cyclic a site trains one round in every pass over the sites)." };
        var secure = new Option<bool>("--secure-aggregation") { Description = "Secure aggregation in every round: sites upload only masked updates (keys, sealed shares, masked vector, reveal, each with its own ticket); the aggregator unmasks only their sum." };
        var secThreshold = new Option<int?>("--secagg-threshold") { Description = "With --secure-aggregation: the survivors needed to unmask (default: a strict majority of the round's sites)." };
        var compress = new Option<string?>("--compress") { Description = "Logistic: the sites upload their deltas compressed: int8, int4 or topk:F (as simulate's --compress; top-k keeps its error-feedback remainder in each site's work folder). Not with --secure-aggregation." };
        var cmd = new Command("create", "Create a federation (no sites yet): model, strategy, the sites' training settings, rounds, quorum, round length.")
            { federation, task, model, strategy, trees, leaves, treeLr, mu, rounds, quorum, roundSeconds, noStatistics, epochs, lr, l2, seed, description, requireSignatures, dpClip, dpNoise, dpMode, dpDelta, dpTarget, secure, secThreshold, treeDepth, treeFeatures, treeBins, dpEpsilon, dpDeltaRecord, dpRounds, compress };
        store.AddTo(cmd);
        cmd.SetAction(pr => RunAsync(async () =>
        {
            string kind = pr.GetValue(model)!;
            // An option of the other model kind would be silently ignored: refuse it, naming it.
            Option[] otherKind = kind == ModelKinds.Trees ? [epochs, lr, l2, mu, compress] : [trees, leaves, treeLr, treeDepth, treeFeatures, treeBins];
            var given = otherKind.Where(o => pr.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
            if (given.Count > 0)
                throw new ArgumentException($"{string.Join(", ", given)}: not an option of --model {kind} ({(kind == ModelKinds.Trees ? "those set logistic regression's training" : "those set the trees")})");
            string strategyName = pr.GetValue(strategy) ?? (kind == ModelKinds.Trees ? StrategyNames.TreeCyclic : StrategyNames.FedAvg);
            int roundCount = pr.GetValue(rounds) ?? (strategyName == StrategyNames.TreeBagging ? 1 : 10);
            double? epsilon = pr.GetValue(dpEpsilon);
            bool dp = epsilon is not null;
            // Unless told otherwise, every site is assumed to train in every round, so its σ covers them all.
            int planned = pr.GetValue(dpRounds) ?? roundCount;
            if (pr.GetValue(dpRounds) is not null && !dp) throw new ArgumentException("--dp-rounds needs --dp-epsilon");
            var treeSettings = Learning.Trees.TreeClientSettings.Shaped(dp, pr.GetValue(treeDepth), pr.GetValue(treeFeatures), pr.GetValue(treeBins),
                pr.GetResult(treeLr) is { Implicit: false } ? pr.GetValue(treeLr) : null) with
            {
                Trees = pr.GetValue(trees), Leaves = pr.GetValue(leaves), Seed = pr.GetValue(seed),
                DpEpsilon = epsilon, DpDelta = pr.GetValue(dpDeltaRecord), DpRounds = planned,
            };
            var setup = new FederationSetup
            {
                Federation = pr.GetValue(federation)!, Task = pr.GetValue(task)!, Model = kind, Strategy = strategyName, ProximalMu = pr.GetValue(mu),
                Rounds = roundCount, Quorum = pr.GetValue(quorum), RoundSeconds = pr.GetValue(roundSeconds), Statistics = !pr.GetValue(noStatistics),
                Description = pr.GetValue(description) ?? "",
                Client = new ClientTrainingSettings
                {
                    LocalEpochs = pr.GetValue(epochs), LearningRate = pr.GetValue(lr), L2 = pr.GetValue(l2), Seed = pr.GetValue(seed),
                    DpEpsilon = epsilon, DpDelta = pr.GetValue(dpDeltaRecord), DpRounds = planned, Compress = pr.GetValue(compress),
                },
                Trees = treeSettings,
                SiteLevelDp = pr.GetValue(dpClip) is { } clip
                    ? new SiteLevelDpConfig { ClipNorm = clip, NoiseMultiplier = pr.GetValue(dpNoise), Mode = pr.GetValue(dpMode)!, Delta = pr.GetValue(dpDelta), TargetEpsilon = pr.GetValue(dpTarget) }
                    : null,
            };
            if (pr.GetValue(secThreshold) is not null && !pr.GetValue(secure)) throw new ArgumentException("--secagg-threshold needs --secure-aggregation");
            var config = await new FederationCoordinator(store.Open(pr)).CreateFederationAsync(setup.ToConfig(DateTimeOffset.UtcNow) with
            {
                RequireSignatures = pr.GetValue(requireSignatures),
                SecureAggregation = pr.GetValue(secure) ? new SecureAggregationConfig { Threshold = pr.GetValue(secThreshold) } : null,
            });
            Console.WriteLine($"created federation '{config.Federation}': {config.Model.FeatureSpecId} {config.Model.FeatureSpecVersion}, {config.Model.Kind}, {config.Strategy.Name}, {config.Rounds} round(s) of {config.RoundSeconds} s, quorum {config.Quorum}"
                + (config.SecureAggregation is null ? "" : ", secure aggregation") + (pr.GetValue(compress) is { } c ? $", updates compressed ({c})" : "") + (dp ? $", record-level DP (ε = {epsilon} per site)" : "") + (config.SiteLevelDp is null ? "" : $", site-level DP (C = {config.SiteLevelDp.ClipNorm}, z = {config.SiteLevelDp.NoiseMultiplier})"));
            return 0;
        }));
        return cmd;
    }

    private static Command RegisterCommand()
    {
        var store = new StoreArguments();
        var federation = FederationOption();
        var site = CliSupport.Required("--site", "Site name.");
        var keyFile = CliSupport.Optional("--key-file", "Write the site's key to this file (mode 600) instead of printing it.");
        var publicKey = CliSupport.Optional("--public-key", "File with the site's ECDSA P-256 signing public key (PEM or base64), as `clinicalfed site keygen` prints it; its updates must then be signed.");
        var cmd = new Command("register", "Register a site; its key is shown once (the store keeps only its SHA-256). Give it to the site over a secure channel.") { federation, site, keyFile, publicKey };
        store.AddTo(cmd);
        cmd.SetAction(pr => RunAsync(async () =>
        {
            string? signingKey = pr.GetValue(publicKey) is { } keyPath ? await File.ReadAllTextAsync(keyPath) : null;
            var reg = await new FederationCoordinator(store.Open(pr)).RegisterSiteAsync(pr.GetValue(federation)!, pr.GetValue(site)!, signingKey);
            if (pr.GetValue(keyFile) is { } path)
            {
                await File.WriteAllTextAsync(path, reg.Key + "\n");
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                Console.WriteLine($"registered site '{reg.Site}' in '{reg.Federation}'; key written to {path}");
            }
            else
            {
                Console.WriteLine($"registered site '{reg.Site}' in '{reg.Federation}'; its key (shown once):");
                Console.WriteLine(reg.Key);
            }
            return 0;
        }));
        return cmd;
    }

    private static Command WithdrawCommand()
    {
        var store = new StoreArguments();
        var federation = FederationOption();
        var site = CliSupport.Required("--site", "Site name.");
        var cmd = new Command("withdraw", "Withdraw a site: its key stops working and later rounds no longer expect it; its past uploads stay.") { federation, site };
        store.AddTo(cmd);
        cmd.SetAction(pr => RunAsync(async () =>
        {
            await new FederationCoordinator(store.Open(pr)).WithdrawSiteAsync(pr.GetValue(federation)!, pr.GetValue(site)!);
            Console.WriteLine($"withdrew site '{pr.GetValue(site)}' from '{pr.GetValue(federation)}'");
            return 0;
        }));
        return cmd;
    }

    private static Command StatusCommand()
    {
        var store = new StoreArguments();
        var federation = FederationOption();
        var cmd = new Command("status", "Print the federation's status as JSON (schemas/round-status.schema.json): round, uploads, rejected uploads with reasons, deadline, per-round metrics.") { federation };
        store.AddTo(cmd);
        cmd.SetAction(pr => RunAsync(async () =>
        {
            var status = await new FederationCoordinator(store.Open(pr)).GetStatusAsync(pr.GetValue(federation)!)
                ?? throw new ArgumentException($"federation '{pr.GetValue(federation)}' does not exist in the store");
            Console.WriteLine(JsonSerializer.Serialize(status, Indented));
            return 0;
        }));
        return cmd;
    }

    private static Command TickCommand()
    {
        var store = new StoreArguments();
        var federation = CliSupport.Optional("--federation", "Only this federation (default: every federation in the store).");
        var cmd = new Command("tick", "Run the aggregator's timer once (what the AggregateRound function does): merge statistics, close due rounds, write personalized models, open next rounds. Prints the outcomes as JSON.") { federation };
        store.AddTo(cmd);
        cmd.SetAction(pr => RunAsync(async () =>
        {
            var c = new FederationCoordinator(store.Open(pr));
            IReadOnlyList<TickOutcome> outcomes = pr.GetValue(federation) is { } f ? [await c.TickAsync(f)] : await c.TickAsync();
            Console.WriteLine(JsonSerializer.Serialize(outcomes, Indented));
            return outcomes.Any(o => o.Action == "error") ? 1 : 0;
        }));
        return cmd;
    }

    internal static int RunAsync(Func<Task<int>> body) => CliSupport.Run(() =>
    {
        try
        {
            return body().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is InvalidOperationException or FederationDataException or StoreVersionConflictException or TicketRefusedException or HttpRequestException or Azure.RequestFailedException)
        {
            throw new ArgumentException(e.Message, e);
        }
    });
}

/// <summary><c>clinicalfed site run</c>: the site agent; <c>clinicalfed site keygen</c>: its signing key.</summary>
internal static class SiteCommand
{
    private static Command KeygenCommand()
    {
        var work = CliSupport.Required("--work", "This site's own folder; the private key is kept there (signing-key.pem, mode 600) and never leaves it.");
        var cmd = new Command("keygen", "Create this site's ECDSA P-256 signing key in its work folder (or keep the existing one) and print the public key (PEM) to register with `clinicalfed federation register --public-key FILE`.") { work };
        cmd.SetAction(pr => CliSupport.Run(() =>
        {
            string path = Path.Combine(Path.GetFullPath(pr.GetValue(work)!), Privacy.Signing.SigningKeys.PrivateKeyFileName);
            using var key = Privacy.Signing.SigningKeys.LoadOrCreatePrivateKey(path, out bool created);
            Console.Error.WriteLine(created ? $"created a signing key in {path}" : $"using the existing signing key in {path}");
            Console.WriteLine(Privacy.Signing.SigningKeys.PublicKeyPem(key));
            return 0;
        }));
        return cmd;
    }

    public const string KeyVariable = "CLINICALFED_SITE_KEY";

    public static Command Create()
    {
        var store = new StoreArguments();
        var federation = CliSupport.Required("--federation", "Federation name.");
        var site = CliSupport.Required("--site", "This site's registered name.");
        var data = CliSupport.Required("--data", "This site's data: raw with its shipped mapping (e.g. hospital_A.csv.gz), FHIR input, or a CDM folder; PATH:SELECTOR picks a mapping site (e.g. diabetic_data.csv.gz:ER).");
        var task = CliSupport.Required("--task", "sepsis or readmission.");
        var work = CliSupport.Required("--work", "This site's own folder (CDM, features, its report); nothing in it leaves the site.");
        var functions = CliSupport.Optional("--functions", "Base URL of the aggregator's function app API (e.g. https://app.azurewebsites.net/api/): uploads go through UploadTicket. Without it the agent writes into the store directly.");
        var key = CliSupport.Optional("--key", $"The site's key (default: the {KeyVariable} environment variable).");
        var poll = new Option<double>("--poll") { Description = "Seconds between looks at the store.", DefaultValueFactory = _ => 15 };
        var timeout = new Option<double>("--timeout") { Description = "Give up after this many seconds without progress.", DefaultValueFactory = _ => 6 * 3600 };
        var run = new Command("run", "Run this site's side of a federation until it completes: statistics, then each round's local training and upload (only parameters leave the site); resumes after a crash.")
            { federation, site, data, task, work, functions, key, poll, timeout };
        store.AddTo(run);
        run.SetAction(pr => FederationCommand.RunAsync(async () =>
        {
            var options = new SiteAgentOptions
            {
                Federation = pr.GetValue(federation)!, Site = pr.GetValue(site)!, Task = pr.GetValue(task)!,
                Source = SiteSource.Parse($"{pr.GetValue(site)}={pr.GetValue(data)}"), WorkDirectory = pr.GetValue(work)!,
                PollInterval = TimeSpan.FromSeconds(pr.GetValue(poll)), IdleTimeout = TimeSpan.FromSeconds(pr.GetValue(timeout)),
            };
            var s = store.Open(pr);
            ISiteUploader uploader = new DirectStoreUploader(s);
            HttpClient? http = null;
            if (pr.GetValue(functions) is { } url)
            {
                var k = pr.GetValue(key) ?? Environment.GetEnvironmentVariable(KeyVariable) ?? throw new ArgumentException($"--functions needs the site's key: --key or {KeyVariable}");
                http = new HttpClient { BaseAddress = new Uri(url.EndsWith('/') ? url : url + "/") };
                uploader = new TicketUploader(http, k);
            }
            using (http)
            {
                var console = CliSupport.Console();
                var report = await new SiteAgent(options, s, uploader, line => console.MarkupLineInterpolated($"[grey]{DateTimeOffset.Now:HH:mm:ss}[/] {line}")).RunAsync();
                return 0;
            }
        }));
        var cmd = new Command("site", "The site agent: take part in a federation from next to the EHR.");
        cmd.Subcommands.Add(run);
        cmd.Subcommands.Add(KeygenCommand());
        return cmd;
    }
}
