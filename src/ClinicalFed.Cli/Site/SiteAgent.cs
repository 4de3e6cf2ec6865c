using System.Text.Json.Serialization;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Data;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Statistics;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Site;

/// <summary>Options of <c>clinicalfed site run</c>, validated all at once.</summary>
public sealed record SiteAgentOptions
{
    public required string Federation { get; init; }
    public required string Site { get; init; }
    public required string Task { get; init; }
    public required SiteSource Source { get; init; }

    /// <summary>The site's own folder: CDM, feature table, state and its report. Nothing in it leaves the site.</summary>
    public required string WorkDirectory { get; init; }

    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Give up when nothing changes in the store for this long.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(6);

    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (FederationNames.Problem(Federation, "--federation") is { } f) e.Add(f);
        if (FederationNames.Problem(Site, "--site") is { } s) e.Add(s);
        if (Task is not ("sepsis" or "readmission")) e.Add($"--task: '{Task}' (expected sepsis or readmission)");
        if (string.IsNullOrWhiteSpace(WorkDirectory)) e.Add("--work: required");
        if (PollInterval <= TimeSpan.Zero) e.Add("--poll: must be positive");
        if (IdleTimeout <= TimeSpan.Zero) e.Add("--timeout: must be positive");
        return e;
    }
}

/// <summary>How a site writes to the federation: straight into the store (in-process or a local folder), or through
/// upload tickets from the serverless aggregator (Azure).</summary>
public interface ISiteUploader
{
    Task UploadStatisticsAsync(string federation, string site, StatisticsSet statistics, CancellationToken cancellationToken);

    Task UploadUpdateAsync(UpdateHeader header, float[] payload, CancellationToken cancellationToken);

    /// <summary>Uploads a tree-ensemble update (a federation of model kind trees).</summary>
    Task UploadTreeUpdateAsync(UpdateHeader header, Trees.TreeEnsembleModel ensemble, CancellationToken cancellationToken);

    /// <summary>
    /// Uploads a compressed delta (<c>client_compress</c>): <paramref name="header"/> already names its
    /// <c>payload_encoding</c>, <c>payload_bytes</c> and hash (<see cref="UpdateFile.Compressed"/>) and is signed.
    /// </summary>
    Task UploadCompressedUpdateAsync(UpdateHeader header, byte[] payload, CancellationToken cancellationToken);

    /// <summary>
    /// Uploads one secure-aggregation object of the open round (<paramref name="kind"/> a <c>secagg-</c> ticket kind) to
    /// <paramref name="path"/>; throws <see cref="StoreObjectExistsException"/> when it is already there or its phase closed.
    /// </summary>
    Task UploadSecAggAsync(string federation, string site, int round, string kind, string path, byte[] content, CancellationToken cancellationToken);
}

/// <summary>Writes through the store itself (the site holds write access: a local folder, a test).</summary>
public sealed class DirectStoreUploader(IFederationStore store) : ISiteUploader
{
    public Task UploadStatisticsAsync(string federation, string site, StatisticsSet statistics, CancellationToken cancellationToken) =>
        store.PutSiteStatisticsAsync(federation, site, statistics, cancellationToken);

    public Task UploadUpdateAsync(UpdateHeader header, float[] payload, CancellationToken cancellationToken) =>
        store.PutUpdateAsync(header, payload, cancellationToken);

    public async Task UploadTreeUpdateAsync(UpdateHeader header, Trees.TreeEnsembleModel ensemble, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(header);
        using var file = new MemoryStream();
        UpdateFile.Write(file, header, ensemble);
        file.Position = 0;
        await store.PutUpdateAsync(header.Federation, header.Round, header.Site, file, cancellationToken).ConfigureAwait(false);
    }

    public async Task UploadCompressedUpdateAsync(UpdateHeader header, byte[] payload, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(header);
        using var file = new MemoryStream();
        UpdateFile.WriteCompressed(file, header, header.PayloadEncoding!, payload);
        file.Position = 0;
        await store.PutUpdateAsync(header.Federation, header.Round, header.Site, file, cancellationToken).ConfigureAwait(false);
    }

    public Task UploadSecAggAsync(string federation, string site, int round, string kind, string path, byte[] content, CancellationToken cancellationToken) =>
        (store as FederationStore ?? throw new NotSupportedException("secure aggregation needs a FederationStore"))
            .PutObjectAsync(path, async (s, c) => { await s.WriteAsync(content, c).ConfigureAwait(false); return true; }, cancellationToken);
}

/// <summary>What the site agent writes into its work folder at the end (aggregates only).</summary>
public sealed record SiteAgentReport
{
    [JsonPropertyName("federation")] public required string Federation { get; init; }
    [JsonPropertyName("site")] public required string Site { get; init; }
    /// <summary>logistic or trees.</summary>
    [JsonPropertyName("model_kind")] public string ModelKind { get; init; } = ModelKinds.Logistic;
    [JsonPropertyName("rounds_trained")] public required IReadOnlyList<int> RoundsTrained { get; init; }
    [JsonPropertyName("final_round")] public required int FinalRound { get; init; }
    [JsonPropertyName("global_model")] public string? GlobalModel { get; init; }
    [JsonPropertyName("train_rows")] public required int TrainRows { get; init; }
    [JsonPropertyName("test_rows")] public required int TestRows { get; init; }
    /// <summary>AUROC on the site's own test split of the final global and personalized models.</summary>
    [JsonPropertyName("auroc")] public required IReadOnlyDictionary<string, double?> Auroc { get; init; }
    [JsonPropertyName("auprc")] public required IReadOnlyDictionary<string, double?> Auprc { get; init; }
    [JsonPropertyName("test_positives")] public long TestPositives { get; init; }
    /// <summary>Every round's global model on the site's test split (the learning curve).</summary>
    [JsonPropertyName("auroc_per_round")] public IReadOnlyList<RoundAuroc> AurocPerRound { get; init; } = [];
    /// <summary>ROC points [false positive rate, true positive rate] of the final global and personalized models.</summary>
    [JsonPropertyName("roc")] public IReadOnlyDictionary<string, double[][]> Roc { get; init; } = new Dictionary<string, double[][]>();
    /// <summary>Calibration bins of the final global and personalized models.</summary>
    [JsonPropertyName("calibration")] public IReadOnlyDictionary<string, Simulation.CalibrationBin[]> Calibration { get; init; } = new Dictionary<string, Simulation.CalibrationBin[]>();
    /// <summary>What the site's record-level differential privacy spent (its ledger; null without DP).</summary>
    [JsonPropertyName("privacy")] public SitePrivacySpent? Privacy { get; init; }
    /// <summary>Every update of this site in the store, read back from the headers: what left the site, round by round.</summary>
    [JsonPropertyName("uploads")] public IReadOnlyList<SiteUpload> Uploads { get; init; } = [];
}

/// <summary>One update a site sent, as its stored header states it: the payload's encoding and size.</summary>
public sealed record SiteUpload(
    [property: JsonPropertyName("round")] int Round,
    [property: JsonPropertyName("payload_encoding")] string PayloadEncoding,
    [property: JsonPropertyName("payload_bytes")] long PayloadBytes,
    [property: JsonPropertyName("float32_bytes")] long? Float32Bytes);

/// <summary>A site's privacy ledger in its report: ε spent of its budget, at δ, over rounds and steps (DP-SGD steps or
/// the Gaussian queries of private trees).</summary>
public sealed record SitePrivacySpent(
    [property: JsonPropertyName("epsilon_spent")] double EpsilonSpent,
    [property: JsonPropertyName("epsilon_budget")] double EpsilonBudget,
    [property: JsonPropertyName("delta")] double Delta,
    [property: JsonPropertyName("rounds")] int Rounds,
    [property: JsonPropertyName("steps")] long Steps);

/// <summary>A round's global model on the site's test split (null: the split has one class only).</summary>
public sealed record RoundAuroc([property: JsonPropertyName("round")] int Round, [property: JsonPropertyName("auroc")] double? Auroc);

/// <summary>
/// <c>clinicalfed site run</c>: the site's side of a federation. Prepares its data (CDM, features), shares its
/// training-row statistics and waits for the federated ones, then for every round it is expected in: reads the
/// manifest and global model, trains locally exactly as <c>clinicalfed simulate</c> does
/// (<see cref="ClientTraining"/>), and uploads only the parameters. Everything it decides comes from the store, so
/// after a crash it simply starts again: finished work is recognized there (a write-once upload), and training is
/// deterministic. Its log holds counts, round numbers and metrics, never patient data.
/// </summary>
public sealed partial class SiteAgent
{
    private readonly SiteAgentOptions _o;
    private readonly IFederationStore _store;
    private readonly ISiteUploader _uploader;
    private SiteLevelDpConfig? _siteDp;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private System.Security.Cryptography.ECDsa? _signingKey;
    private SitePrivacy? _privacy;

    public SiteAgent(SiteAgentOptions options, IFederationStore store, ISiteUploader uploader, Action<string>? log = null, TimeProvider? time = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0) throw new ArgumentException(string.Join("\n", errors));
        _o = options;
        _store = store;
        _uploader = uploader;
        _log = log ?? (_ => { });
        _time = time ?? TimeProvider.System;
    }

    public async Task<SiteAgentReport> RunAsync(CancellationToken cancellationToken = default)
    {
        string f = _o.Federation, site = _o.Site;
        var config = (await _store.GetFederationAsync(f, cancellationToken).ConfigureAwait(false))?.Config
            ?? throw new ArgumentException($"federation '{f}' does not exist in the store");
        if (config.FindSite(site) is not { Status: SiteStatuses.Active })
            throw new ArgumentException($"site '{site}' is not an active site of federation '{f}'");
        using var signingKey = LoadSigningKey(config.FindSite(site)!);
        _signingKey = signingKey;
        _siteDp = config.SiteLevelDp;
        _secure = config.SecureAggregation is not null;

        var table = LoadOrBuildTable();
        var spec = FeatureSpec.Load(_o.Task);
        if (config.Model.FeatureSpecId != spec.Id || config.Model.FeatureSpecVersion != spec.Version)
            throw new ArgumentException($"federation '{f}' trains on feature spec {config.Model.FeatureSpecId} {config.Model.FeatureSpecVersion}, but --task {_o.Task} is {spec.Id} {spec.Version}");
        if (config.Model.Kind is not (ModelKinds.Logistic or ModelKinds.Trees))
            throw new ArgumentException($"federation '{f}' trains '{config.Model.Kind}' models; the site agent trains {ModelKinds.Logistic} or {ModelKinds.Trees}");
        _trees = config.Model.Kind == ModelKinds.Trees;

        var statistics = await AgreeStatisticsAsync(config, table, spec, cancellationToken).ConfigureAwait(false);
        var prepared = SitePreparation.Prepare(site, table, statistics);
        int d = prepared.Width;
        int dimension = _trees ? d : d + 1;
        if (config.Model.Dimension != dimension)
            throw new ArgumentException($"federation '{f}' has model dimension {config.Model.Dimension}, but this site's features give {dimension}");
        _log($"prepared {prepared.TrainRows:N0} training, {prepared.ValidationY.Length:N0} validation and {prepared.TestRows:N0} test rows × {d} features");

        // Rows grouped by patient: the privacy unit of DP-SGD (plain training samples rows and is unchanged by the groups).
        var matrix = ClientTraining.GroupedMatrix(prepared.TrainX, d, prepared.TrainY, prepared.TrainPatients);
        var trained = new List<int>();
        var idleSince = _time.GetUtcNow();
        string lastState = "";
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int? latest = await _store.GetLatestRoundAsync(f, cancellationToken).ConfigureAwait(false);
            string state = "no round yet";
            if (latest is int r)
            {
                var manifest = (await _store.GetManifestAsync(f, r, cancellationToken).ConfigureAwait(false))!;
                var result = await _store.GetRoundResultAsync(f, r, cancellationToken).ConfigureAwait(false);
                state = $"round {r} " + (result is null ? "open" : "closed");
                if (result is not null && await IsPublishedAsync(result, cancellationToken).ConfigureAwait(false)
                    && (r + 1 >= config.Rounds || await Storage.Coordination.FederationCoordinator.SiteDpBudgetStopsAsync(_store, config, r + 1, cancellationToken).ConfigureAwait(false)))
                    return await FinishAsync(config, r, prepared, trained, cancellationToken).ConfigureAwait(false);
                if (config.SecureAggregation is not null)
                {
                    if (result is null && manifest.Sites.Contains(site, StringComparer.Ordinal) && _time.GetUtcNow() < manifest.Deadline)
                    {
                        var step = await SecureStepAsync(manifest, matrix, prepared, cancellationToken).ConfigureAwait(false);
                        if (step == SecureStep.Masked && !trained.Contains(r)) trained.Add(r);
                        state += $", secure phase: {step}";
                    }
                }
                else if (result is null && manifest.Sites.Contains(site, StringComparer.Ordinal)
                    && !(await _store.ListUpdatesAsync(f, r, cancellationToken).ConfigureAwait(false)).Contains(site, StringComparer.Ordinal)
                    && _time.GetUtcNow() < manifest.Deadline)
                {
                    if (_trees) await GrowAndUploadAsync(config, manifest, prepared, cancellationToken).ConfigureAwait(false);
                    else await TrainAndUploadAsync(config, manifest, matrix, prepared, cancellationToken).ConfigureAwait(false);
                    trained.Add(r);
                    state += ", uploaded";
                }
            }

            if (state != lastState)
            {
                lastState = state;
                idleSince = _time.GetUtcNow();
            }
            else if (_time.GetUtcNow() - idleSince > _o.IdleTimeout)
            {
                throw new TimeoutException($"nothing changed in federation '{f}' for {_o.IdleTimeout} ({state}); is the aggregator running?");
            }

            await Task.Delay(_o.PollInterval, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether everything a closed round produces for this site is in the store: the result is written first, then
    /// the global model, then the personalized models (possibly by a later tick, if one died in between).
    /// </summary>
    private async Task<bool> IsPublishedAsync(Federation.RoundResult result, CancellationToken cancellationToken)
    {
        if (result.GlobalModel is null) return true;
        if (await _store.GetGlobalModelAsync(result.Federation, result.Round, cancellationToken).ConfigureAwait(false) is null) return false;
        // With secure aggregation the aggregator never sees a site's model: the site personalizes itself.
        // Tree federations too: the site personalizes its ensemble itself at the end (PersonalizeTrees).
        return _secure || _trees || !result.Accepted.Any(a => a.Site == _o.Site)
               || (await _store.ListPersonalizedModelsAsync(result.Federation, result.Round, cancellationToken).ConfigureAwait(false)).Contains(_o.Site, StringComparer.Ordinal);
    }

    /// <summary>
    /// The site's signing key from its work folder, created there on first run (PKCS#8 PEM, mode 600). If the federation
    /// registered a public key for the site, it must be this key's.
    /// </summary>
    private System.Security.Cryptography.ECDsa LoadSigningKey(RegisteredSite registered)
    {
        string path = Path.Combine(Path.GetFullPath(_o.WorkDirectory), Privacy.Signing.SigningKeys.PrivateKeyFileName);
        var key = Privacy.Signing.SigningKeys.LoadOrCreatePrivateKey(path, out bool created);
        string publicKey = Privacy.Signing.SigningKeys.PublicKeyBase64(key);
        if (registered.SigningPublicKey is { } expected && expected != publicKey)
        {
            key.Dispose();
            throw new ArgumentException($"the signing key in {path} is not the one registered for site '{_o.Site}': the aggregator would reject every update; register this key's public key (clinicalfed site keygen --work ...) or restore the registered key");
        }

        if (created) _log($"created a signing key in {path}");
        if (registered.SigningPublicKey is null)
            _log("signing updates, but the federation has no public key registered for this site: print it with 'clinicalfed site keygen' and register it so the aggregator verifies them");
        return key;
    }

    private FeatureTable LoadOrBuildTable()
    {
        var siteWork = Path.GetFullPath(_o.WorkDirectory);
        var tablePath = Path.Combine(siteWork, "features", FeatureTableFile.FileName);
        if (File.Exists(tablePath))
        {
            _log($"reusing the feature table in {Path.Combine(siteWork, "features")}");
            return FeatureTableFile.Load(tablePath);
        }

        var (table, summary, _) = SitePreparation.LoadTable(_o.Task, _o.Source with { Name = _o.Site }, siteWork);
        _log($"converted and extracted {summary.Rows:N0} feature rows");
        return table;
    }

    private async Task<StatisticsSet> AgreeStatisticsAsync(FederationConfig config, FeatureTable table, FeatureSpec spec, CancellationToken cancellationToken)
    {
        string f = _o.Federation, site = _o.Site;
        var own = SitePreparation.TrainingStatistics(site, table, spec);
        if (!config.Statistics)
        {
            _log("the federation does not merge statistics: imputing and standardizing with this site's own");
            return own;
        }

        var merged = await _store.GetFederatedStatisticsAsync(f, cancellationToken).ConfigureAwait(false);
        if (merged is null && !(await _store.ListSiteStatisticsAsync(f, cancellationToken).ConfigureAwait(false)).Contains(site, StringComparer.Ordinal))
        {
            await _uploader.UploadStatisticsAsync(f, site, own, cancellationToken).ConfigureAwait(false);
            _log($"uploaded statistics of {own.Rows:N0} training rows (counts, sums, histograms)");
        }

        var since = _time.GetUtcNow();
        while (merged is null)
        {
            if (_time.GetUtcNow() - since > _o.IdleTimeout)
                throw new TimeoutException($"the federated statistics of '{f}' did not appear within {_o.IdleTimeout}");
            await Task.Delay(_o.PollInterval, _time, cancellationToken).ConfigureAwait(false);
            merged = await _store.GetFederatedStatisticsAsync(f, cancellationToken).ConfigureAwait(false);
        }

        _log($"using federated statistics of {merged.Sites.Count} site(s), {merged.Rows:N0} rows");
        return merged;
    }

    private async Task TrainAndUploadAsync(FederationConfig config, RoundManifest manifest, FeatureMatrix matrix, PreparedSite prepared, CancellationToken cancellationToken)
    {
        var local = await TrainAsync(manifest, matrix, prepared, cancellationToken).ConfigureAwait(false);
        var (header, parameters) = (local.Header, local.Parameters);
        var metrics = header.LocalMetrics;
        string sent;
        if (local.Settings.Compression is { } compression)
        {
            var upload = CompressedUpdate(config, manifest, local, matrix, compression);
            if (!await UploadOnceAsync(manifest.Round, () => _uploader.UploadCompressedUpdateAsync(upload.Header, upload.Payload, cancellationToken)).ConfigureAwait(false)) return;
            SaveRemainder(manifest.Round, upload.Feedback);
            sent = $"uploaded its delta as {upload.Header.PayloadEncoding}, {upload.Payload.Length:N0} payload bytes against {4L * header.Dimension:N0} as float32";
        }
        else
        {
            // Every update is signed with the site's key (the header, which binds the payload through its SHA-256).
            header = Privacy.Signing.UpdateSignature.Sign(header, parameters, _signingKey!);
            if (!await UploadOnceAsync(manifest.Round, () => _uploader.UploadUpdateAsync(header, parameters, cancellationToken)).ConfigureAwait(false)) return;
            sent = $"uploaded {header.Dimension} parameters";
        }

        _log($"round {manifest.Round}: trained {local.Settings.LocalEpochs} epoch(s) on {prepared.TrainRows:N0} rows, train loss {metrics.GetValueOrDefault("train_loss"):0.####}, personalization weight {local.Weight:0.##}; {sent}");
    }

    /// <summary>Runs <paramref name="upload"/>; false (logged) when the update is already in the store, from a run before a restart.</summary>
    private async Task<bool> UploadOnceAsync(int round, Func<Task> upload)
    {
        try
        {
            await upload().ConfigureAwait(false);
            return true;
        }
        catch (StoreObjectExistsException)
        {
            _log($"round {round}: an update was already uploaded (a run before a restart); keeping it");
            return false;
        }
    }

    /// <summary>One round's local training: the unsigned update header, the parameters to send, the personalization weight, and what the round started from.</summary>
    private sealed record LocalRound(UpdateHeader Header, float[] Parameters, double Weight, ClientTrainingSettings Settings, LinearWeights? Global, int SiteIndex);

    /// <summary>One round's local training, exactly as simulate's: the unsigned update header and the parameters to send.</summary>
    private async Task<LocalRound> TrainAsync(RoundManifest manifest, FeatureMatrix matrix, PreparedSite prepared, CancellationToken cancellationToken)
    {
        int siteIndex = manifest.Sites.ToList().IndexOf(_o.Site);
        var settings = ClientTrainingSettings.From(manifest.Strategy);
        LinearWeights? global = null;
        if (manifest.GlobalModel is not null && GlobalModelPath.TryParse(manifest.GlobalModel, out var gf, out int gr))
        {
            var model = await _store.GetGlobalModelAsync(gf, gr, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"round {manifest.Round} starts from {manifest.GlobalModel}, which is not in the store");
            global = LinearWeights.FromParameterVector(model.Parameters);
        }

        // With client_dp_ options: DP-SGD with the patient as unit; the ledger in the work folder refuses (throws) a round
        // that would exceed the site's budget, before training and therefore before any upload.
        ProximalSgdResult result;
        Privacy.UpdatePrivacy? privacy = null;
        if (settings.DifferentiallyPrivate)
        {
            _privacy ??= SitePrivacy.ForWorkFolder(_o.Site, Path.GetFullPath(_o.WorkDirectory), settings);
            (result, privacy) = ClientTraining.TrainRoundPrivately(matrix, global, settings, manifest.Round, siteIndex, _privacy);
            _log($"round {manifest.Round}: DP-SGD spent ε = {privacy.EpsilonRound:0.###} this round, {privacy.EpsilonTotal:0.###} in total of {_privacy.Ledger.EpsilonBudget:0.###} (δ = {privacy.Delta:G3}, σ = {privacy.NoiseMultiplier:0.###})");
        }
        else
        {
            result = ClientTraining.TrainRound(matrix, global, settings, manifest.Round, siteIndex);
        }

        var metrics = ClientTraining.LocalMetrics(result);
        double weight = ClientTraining.ChoosePersonalizationWeight(global, result.Weights, prepared.ValidationX, prepared.ValidationY, prepared.Width);
        metrics[Storage.Coordination.FederationCoordinator.PersonalizationWeightMetric] = weight;
        var header = new UpdateHeader
        {
            Federation = manifest.Federation, Round = manifest.Round, Site = _o.Site, ExampleCount = prepared.TrainRows,
            ParameterKind = ParameterKinds.Full, Dimension = prepared.Width + 1, CreatedAt = _time.GetUtcNow(), LocalMetrics = metrics,
            Privacy = privacy,
        };
        var parameters = result.Weights.ToParameterVector();
        if (_siteDp is { Mode: Privacy.SiteDpModes.Client } dp)
        {
            // Site-level DP with client clipping: this site bounds its own difference from the global model.
            var start = global?.ToParameterVector() ?? new float[parameters.Length];
            var own = new float[parameters.Length];
            System.Numerics.Tensors.TensorPrimitives.Subtract(parameters, start, own);
            Privacy.SiteLevelDpMath.ClipToNorm(own, dp.ClipNorm);
            System.Numerics.Tensors.TensorPrimitives.Add(start, own, parameters);
        }

        return new LocalRound(header, parameters, weight, settings, global, siteIndex);
    }

    private async Task<SiteAgentReport> FinishAsync(FederationConfig config, int lastRound, PreparedSite prepared, List<int> trained, CancellationToken cancellationToken)
    {
        string f = _o.Federation;
        int? globalRound = null;
        for (int r = lastRound; r >= 0 && globalRound is null; r--)
            if ((await _store.GetRoundResultAsync(f, r, cancellationToken).ConfigureAwait(false))?.GlobalModel is not null) globalRound = r;
        // The site's test patients' probabilities under the final global and personalized models.
        var probabilities = new Dictionary<string, float[]>(StringComparer.Ordinal);
        float[] Linear(ReadOnlySpan<float> parameters) => SimulationRunner.Predict(LinearWeights.FromParameterVector(parameters), prepared.TestX, prepared.Width);
        var perRound = new List<RoundAuroc>();
        bool both = prepared.TestY.Any(y => y == 1) && prepared.TestY.Any(y => y == 0);
        if (globalRound is int g)
        {
            var global = (await _store.GetGlobalModelAsync(f, g, cancellationToken).ConfigureAwait(false))!;
            if (_trees)
            {
                var personalizedEnsemble = PersonalizeTrees(config, global, prepared);
                probabilities["global"] = TreeProbabilities(global.TreeEnsemble, prepared.TestX, prepared.Width);
                probabilities["personalized"] = TreeProbabilities(personalizedEnsemble, prepared.TestX, prepared.Width);
            }
            else
            {
                probabilities["global"] = Linear(global.Parameters);
                var personalized = await _store.GetPersonalizedModelAsync(f, g, _o.Site, cancellationToken).ConfigureAwait(false);
                if (personalized is not null)
                {
                    probabilities["personalized"] = Linear(personalized.Parameters);
                    WritePersonalizedModel(personalized);
                }
                else if (LoadOwnModel(g) is { } own)
                {
                    // Secure aggregation: the site's personalized model, made here as the aggregator makes it elsewhere.
                    var mix = new float[own.Parameters.Length];
                    AggregationMath.Interpolate(global.Parameters, own.Parameters, (float)own.Weight, mix);
                    probabilities["personalized"] = Linear(mix);
                    WritePersonalizedModel(ModelFile.FromParameters(global.Header with
                    {
                        Site = _o.Site, Sites = [_o.Site], ExampleCount = prepared.TrainRows, CreatedAt = _time.GetUtcNow(),
                        Metrics = new Dictionary<string, double>(StringComparer.Ordinal) { [Storage.Coordination.FederationCoordinator.PersonalizationWeightMetric] = own.Weight },
                    }, mix));
                }
            }

            // The learning curve: every round's global model on this site's test patients (the last one is scored above).
            for (int r = 0; r <= g; r++)
            {
                float[] p;
                if (r == g) p = probabilities["global"];
                else if (await _store.GetGlobalModelAsync(f, r, cancellationToken).ConfigureAwait(false) is not { } model) continue;
                else p = _trees ? TreeProbabilities(model.TreeEnsemble, prepared.TestX, prepared.Width) : Linear(model.Parameters);
                perRound.Add(new RoundAuroc(r, both ? Finite(Math.Round(Metrics.Auroc(p, prepared.TestY), 6)) : null)); // rounded as the final metrics are
            }
        }

        var evaluated = both ? probabilities.ToDictionary(kv => kv.Key, kv => SimulationRunner.Evaluate(kv.Value, prepared.TestY)) : [];
        var auroc = probabilities.Keys.ToDictionary(k => k, k => evaluated.TryGetValue(k, out var e) ? Finite(e.Auroc) : null);
        var auprc = probabilities.Keys.ToDictionary(k => k, k => evaluated.TryGetValue(k, out var e) ? Finite(e.Auprc) : null);
        var report = new SiteAgentReport
        {
            Federation = f, Site = _o.Site, ModelKind = config.Model.Kind, RoundsTrained = trained, FinalRound = lastRound,
            GlobalModel = globalRound is int gr2 ? StoreLayout.GlobalModel(f, gr2) : null,
            TrainRows = prepared.TrainRows, TestRows = prepared.TestRows, TestPositives = (long)prepared.TestY.Sum(), Auroc = auroc, Auprc = auprc,
            AurocPerRound = perRound,
            Roc = evaluated.ToDictionary(kv => kv.Key, kv => SimulationRunner.Roc(kv.Value.Full)),
            Calibration = evaluated.ToDictionary(kv => kv.Key, kv => SimulationRunner.Calibration(kv.Value.Full)),
            Privacy = Privacy.PrivacyBudgetLedger.Load(Path.Combine(Path.GetFullPath(_o.WorkDirectory), Privacy.PrivacyBudgetLedger.FileName)) is { } ledger
                ? new SitePrivacySpent(Math.Round(ledger.EpsilonSpent, 6), ledger.EpsilonBudget, ledger.Delta, ledger.Rounds, ledger.Steps)
                : null,
        };
        report = report with { Uploads = await UploadsAsync(lastRound, cancellationToken).ConfigureAwait(false) };
        var path = Path.Combine(Path.GetFullPath(_o.WorkDirectory), "site-report.json");
        Commands.StatsCommand.WriteAtomically(path, System.Text.Json.JsonSerializer.Serialize(report, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        Commands.StatsCommand.WriteAtomically(Path.ChangeExtension(path, ".html"), SiteReportHtml.Render(report));
        _log($"federation '{f}' completed after round {lastRound}: test AUROC global {Show(auroc.GetValueOrDefault("global"))}, personalized {Show(auroc.GetValueOrDefault("personalized"))}; report {path} and site-report.html");
        return report;
    }

    /// <summary>This site's update headers in rounds 0 .. <paramref name="lastRound"/> (none under secure aggregation, whose masked vectors are not updates).</summary>
    private async Task<IReadOnlyList<SiteUpload>> UploadsAsync(int lastRound, CancellationToken cancellationToken)
    {
        var uploads = new List<SiteUpload>();
        for (int r = 0; r <= lastRound; r++)
        {
            var stream = await _store.OpenUpdateAsync(_o.Federation, r, _o.Site, cancellationToken).ConfigureAwait(false);
            if (stream is null) continue;
            UpdateHeader header;
            await using (stream.ConfigureAwait(false)) header = UpdateFile.ReadHeader(stream, StoreLayout.Update(_o.Federation, r, _o.Site));
            long float32 = 4L * header.Dimension;
            uploads.Add(header.IsPlainFloat32
                ? new SiteUpload(r, UpdatePayloadEncodings.Float32, float32, float32)
                : new SiteUpload(r, header.PayloadEncoding!, header.PayloadBytes ?? 0, header.IsTreeEnsemble ? null : float32));
        }

        return uploads;
    }

    private static double? Finite(double x) => double.IsFinite(x) ? x : null;

    private static string Show(double? x) => x is double v ? v.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture) : "n/a";
}
