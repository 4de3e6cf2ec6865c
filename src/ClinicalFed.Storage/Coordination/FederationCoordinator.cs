using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using ClinicalFed.Federation;
using ClinicalFed.Statistics;

namespace ClinicalFed.Storage.Coordination;

/// <summary>A registered site's key, shown once: the store keeps only its SHA-256.</summary>
public sealed record SiteRegistration(string Federation, string Site, string Key);

/// <summary>
/// Runs federations from the store alone, so that a stateless serverless function (or the CLI, or a test) can:
/// administration (create a federation, register and withdraw sites), upload tickets for registered sites, and the
/// scheduled <see cref="TickAsync(CancellationToken)"/> that merges statistics, closes due rounds through
/// <see cref="RoundAggregator"/>, writes each site's personalized model and opens the next round.
/// <para>
/// Every tick holds the federation's lease (<see cref="StoreLayout.Lease"/>), so concurrent or repeated invocations
/// never work on a federation at the same time; and every step is idempotent over write-once objects, so an
/// invocation that dies anywhere is completed by the next one.
/// </para>
/// </summary>
public sealed partial class FederationCoordinator
{
    /// <summary>Local metric a site may report in its update: the weight (0 to 1) of its own model in its personalized model.</summary>
    public const string PersonalizationWeightMetric = "personalization_weight";

    private static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan MaxTicketLifetime = TimeSpan.FromMinutes(15);
    private const int ConflictRetries = 8;

    private readonly IFederationStore _store;
    private readonly TimeProvider _time;
    private readonly RandomNumberGenerator _random;

    public FederationCoordinator(IFederationStore store, TimeProvider? timeProvider = null, RandomNumberGenerator? random = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = timeProvider ?? TimeProvider.System;
        _random = random ?? RandomNumberGenerator.Create();
    }

    // ---- administration ----------------------------------------------------------------------------------------

    /// <summary>Creates a federation with no sites; fails if it exists. <c>created_at</c> and <c>sites</c> are set here.</summary>
    public async Task<FederationConfig> CreateFederationAsync(FederationConfig settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var config = settings with { Sites = [], CreatedAt = _time.GetUtcNow() };
        StrategyFactory.ParseOptions(config.Strategy.Name, config.Strategy.Options); // every option problem at once
        try
        {
            await _store.PutFederationAsync(config, null, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreVersionConflictException e)
        {
            throw new InvalidOperationException($"federation '{config.Federation}' already exists", e);
        }

        return config;
    }

    /// <summary>
    /// Registers a site (or re-activates a withdrawn one) with a new random key, returned once. A site that is
    /// already active keeps its key: registering it again is an error.
    /// </summary>
    public Task<SiteRegistration> RegisterSiteAsync(string federation, string site, CancellationToken cancellationToken = default) =>
        RegisterSiteAsync(federation, site, null, cancellationToken);

    /// <summary>
    /// Registers a site as <see cref="RegisterSiteAsync(string, string, CancellationToken)"/> does, with the ECDSA P-256
    /// public key that verifies its update signatures (PEM or base64 DER SubjectPublicKeyInfo, stored as base64 DER), or
    /// none (null). Throws <see cref="ArgumentException"/> when the key is not a P-256 public key.
    /// </summary>
    public async Task<SiteRegistration> RegisterSiteAsync(string federation, string site, string? signingPublicKey, CancellationToken cancellationToken = default)
    {
        FederationNames.Validate(site, "site", nameof(site));
        string? publicKey = signingPublicKey is null ? null : Privacy.Signing.SigningKeys.NormalizePublicKey(signingPublicKey);
        var keyBytes = new byte[32];
        _random.GetBytes(keyBytes);
        string key = Base64Url.EncodeToString(keyBytes);
        await UpdateFederationAsync(federation, config =>
        {
            var existing = config.Sites.FirstOrDefault(s => string.Equals(s.Name, site, StringComparison.OrdinalIgnoreCase));
            if (existing is not null && existing.Name != site)
                throw new InvalidOperationException($"site '{site}' differs only in case from registered site '{existing.Name}'");
            if (existing?.Status == SiteStatuses.Active)
                throw new InvalidOperationException($"site '{site}' is already registered and active in federation '{federation}'");
            var entry = new RegisteredSite
            {
                Name = site, KeySha256 = HashKey(key), Status = SiteStatuses.Active, RegisteredAt = _time.GetUtcNow(), SigningPublicKey = publicKey,
            };
            var sites = config.Sites.Where(s => s.Name != site).Append(entry).ToArray();
            return config with { Sites = sites };
        }, cancellationToken).ConfigureAwait(false);
        return new SiteRegistration(federation, site, key);
    }

    /// <summary>Withdraws a site: its key stops working and later rounds no longer expect it. Its past uploads stay.</summary>
    public Task WithdrawSiteAsync(string federation, string site, CancellationToken cancellationToken = default) =>
        UpdateFederationAsync(federation, config =>
        {
            var existing = config.FindSite(site) ?? throw new InvalidOperationException($"site '{site}' is not registered in federation '{federation}'");
            if (existing.Status == SiteStatuses.Withdrawn) return config;
            var sites = config.Sites.Select(s => s.Name == site ? s with { Status = SiteStatuses.Withdrawn, WithdrawnAt = _time.GetUtcNow() } : s).ToArray();
            return config with { Sites = sites };
        }, cancellationToken);

    /// <summary>True when <paramref name="key"/> is the key of the active site <paramref name="site"/> (constant-time comparison).</summary>
    public async Task<bool> AuthenticateAsync(string federation, string site, string key, CancellationToken cancellationToken = default)
    {
        if (!FederationNames.IsValid(federation) || !FederationNames.IsValid(site) || string.IsNullOrEmpty(key)) return false;
        var stored = await _store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false);
        var entry = stored?.Config.FindSite(site);
        if (entry is null || entry.Status != SiteStatuses.Active) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(HashKey(key)), Encoding.ASCII.GetBytes(entry.KeySha256));
    }

    public static string HashKey(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private async Task UpdateFederationAsync(string federation, Func<FederationConfig, FederationConfig> change, CancellationToken cancellationToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            var stored = await _store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"federation '{federation}' does not exist");
            var changed = change(stored.Config);
            if (ReferenceEquals(changed, stored.Config)) return;
            try
            {
                await _store.PutFederationAsync(changed, stored.Version, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (StoreVersionConflictException) when (attempt < ConflictRetries)
            {
                // Another administrator changed the document: apply the change again to the new version.
            }
        }
    }

    // ---- tickets -----------------------------------------------------------------------------------------------

    /// <summary>
    /// A short-lived permission for an authenticated site to create exactly its own object: its update of the open
    /// round (kind <see cref="TicketKinds.Update"/>) or its statistics before round 0 (<see cref="TicketKinds.Statistics"/>).
    /// Throws <see cref="TicketRefusedException"/> saying why not.
    /// </summary>
    public async Task<UploadTicket> IssueTicketAsync(string federation, string site, string key, string kind, CancellationToken cancellationToken = default)
    {
        if (!await AuthenticateAsync(federation, site, key, cancellationToken).ConfigureAwait(false))
            throw new TicketRefusedException(TicketRefusal.NotAuthorized, $"site '{site}' is not an active site of federation '{federation}' with that key");
        if (_store is not IUploadTicketIssuer issuer)
            throw new TicketRefusedException(TicketRefusal.NotSupported, "this store cannot issue upload tickets; sites write to it directly");
        var config = (await _store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false))!.Value.Config;
        var now = _time.GetUtcNow();
        string path;
        int? round = null;
        var expires = now + MaxTicketLifetime;
        switch (kind)
        {
            case TicketKinds.Statistics:
                if (!config.Statistics) throw new TicketRefusedException(TicketRefusal.NotOpen, $"federation '{federation}' does not collect statistics");
                if (await _store.GetFederatedStatisticsAsync(federation, cancellationToken).ConfigureAwait(false) is not null)
                    throw new TicketRefusedException(TicketRefusal.NotOpen, $"the statistics of federation '{federation}' are already merged");
                path = StoreLayout.SiteStatistics(federation, site);
                if ((await _store.ListSiteStatisticsAsync(federation, cancellationToken).ConfigureAwait(false)).Contains(site, StringComparer.Ordinal))
                    throw new TicketRefusedException(TicketRefusal.NotOpen, $"site '{site}' already uploaded its statistics");
                break;
            case TicketKinds.SecAggKey or TicketKinds.SecAggShares or TicketKinds.SecAggMasked or TicketKinds.SecAggUnmask:
                (path, round, expires) = await SecAggTicketAsync(config, site, kind, now, expires, cancellationToken).ConfigureAwait(false);
                break;
            case TicketKinds.Update:
                if (config.SecureAggregation is not null)
                    throw new TicketRefusedException(TicketRefusal.NotOpen, $"federation '{federation}' uses secure aggregation: sites upload masked updates (kinds {TicketKinds.SecAggKey}, {TicketKinds.SecAggShares}, {TicketKinds.SecAggMasked}, {TicketKinds.SecAggUnmask}), never a plain update");
                var latest = await _store.GetLatestRoundAsync(federation, cancellationToken).ConfigureAwait(false)
                    ?? throw new TicketRefusedException(TicketRefusal.NotOpen, $"federation '{federation}' has no open round yet");
                var manifest = (await _store.GetManifestAsync(federation, latest, cancellationToken).ConfigureAwait(false))!;
                if (await _store.GetRoundResultAsync(federation, latest, cancellationToken).ConfigureAwait(false) is not null)
                    throw new TicketRefusedException(TicketRefusal.NotOpen, $"round {latest} of federation '{federation}' is closed");
                if (now >= manifest.Deadline)
                    throw new TicketRefusedException(TicketRefusal.NotOpen, $"round {latest} of federation '{federation}' passed its deadline {manifest.Deadline:O}");
                if (!manifest.Sites.Contains(site, StringComparer.Ordinal))
                    throw new TicketRefusedException(TicketRefusal.NotOpen, $"round {latest} does not expect site '{site}' (it was registered after the round opened)");
                path = StoreLayout.Update(federation, latest, site);
                if ((await _store.ListUpdatesAsync(federation, latest, cancellationToken).ConfigureAwait(false)).Contains(site, StringComparer.Ordinal))
                    throw new TicketRefusedException(TicketRefusal.NotOpen, $"site '{site}' already uploaded its update for round {latest}");
                round = latest;
                if (manifest.Deadline < expires) expires = manifest.Deadline;
                break;
            default:
                throw new ArgumentException($"ticket kind '{kind}' is not one of {string.Join(", ", TicketKinds.All)}", nameof(kind));
        }

        var url = await issuer.CreateUploadUrlAsync(path, expires, cancellationToken).ConfigureAwait(false);
        return new UploadTicket { Federation = federation, Site = site, Kind = kind, Round = round, Path = path, UploadUrl = url, ExpiresAt = expires };
    }

    // ---- the scheduled tick ------------------------------------------------------------------------------------

    /// <summary>One tick over every federation in the store (errors of one federation do not stop the others).</summary>
    public async Task<IReadOnlyList<TickOutcome>> TickAsync(CancellationToken cancellationToken = default)
    {
        var outcomes = new List<TickOutcome>();
        foreach (var federation in await _store.ListFederationsAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                outcomes.Add(await TickAsync(federation, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                outcomes.Add(new TickOutcome { Federation = federation, Action = "error", Message = e.Message });
            }
        }

        return outcomes;
    }

    /// <summary>
    /// Advances one federation as far as it can go now: merge statistics when every active site has sent them, open
    /// round 0, close the open round when it is due, write personalized models, open the next round.
    /// </summary>
    public async Task<TickOutcome> TickAsync(string federation, CancellationToken cancellationToken = default)
    {
        var lease = await _store.TryAcquireLeaseAsync(StoreLayout.Lease(federation), LeaseDuration, cancellationToken).ConfigureAwait(false);
        if (lease is null) return new TickOutcome { Federation = federation, Action = "busy", Message = "another aggregator invocation holds the federation's lease" };
        await using (lease.ConfigureAwait(false))
        {
            var stored = await _store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false);
            if (stored is null) return new TickOutcome { Federation = federation, Action = "error", Message = $"{StoreLayout.FederationDocument(federation)} does not exist" };
            var config = stored.Value.Config;
            var done = new List<string>();

            int? latest = await _store.GetLatestRoundAsync(federation, cancellationToken).ConfigureAwait(false);
            if (latest is null)
            {
                if (config.Statistics && await _store.GetFederatedStatisticsAsync(federation, cancellationToken).ConfigureAwait(false) is null)
                {
                    var active = config.ActiveSites;
                    var sent = (await _store.ListSiteStatisticsAsync(federation, cancellationToken).ConfigureAwait(false)).Where(active.Contains).ToArray();
                    // Merge only once the quorum has registered: a site that registers later could no longer send its statistics.
                    if (active.Count == 0 || active.Count < config.Quorum || sent.Length < active.Count)
                        return new TickOutcome { Federation = federation, Action = "waiting", Message = $"statistics from {sent.Length} of {active.Count} active site(s) (quorum {config.Quorum})" };
                    var sets = new List<StatisticsSet>();
                    foreach (var site in sent.Order(StringComparer.Ordinal))
                        sets.Add((await _store.GetSiteStatisticsAsync(federation, site, cancellationToken).ConfigureAwait(false))!);
                    await PutIgnoringExistingAsync(() => _store.PutFederatedStatisticsAsync(federation, StatisticsSet.Merge(sets), cancellationToken)).ConfigureAwait(false);
                    done.Add($"merged the statistics of {sets.Count} site(s)");
                }

                await lease.RenewAsync(cancellationToken).ConfigureAwait(false);
                return await OpenRoundAsync(config, 0, null, done, cancellationToken).ConfigureAwait(false);
            }

            int round = latest.Value;
            var result = await _store.GetRoundResultAsync(federation, round, cancellationToken).ConfigureAwait(false);
            bool hasGlobal = await _store.GetGlobalModelAsync(federation, round, cancellationToken).ConfigureAwait(false) is not null;
            if (config.SecureAggregation is not null && (result is null || (result.Status == RoundStatuses.Aggregated && !hasGlobal)))
            {
                var secure = await SecureStepAsync(config, round, cancellationToken).ConfigureAwait(false);
                if (secure.Status == RoundOutcomeStatus.Waiting)
                    return new TickOutcome { Federation = federation, Action = "waiting", Round = round, Message = secure.Message };
                result = secure.Result!;
                done.Add(secure.Message);
            }
            else if (result is null || (result.Status == RoundStatuses.Aggregated && !hasGlobal))
            {
                var siteDp = await SiteDpAccountantAsync(config, round, cancellationToken).ConfigureAwait(false);
                var aggregator = siteDp is null
                    ? new RoundAggregator(_store, _time)
                    : new RoundAggregator(_store, _time, strategy => new Privacy.SiteLevelDpStrategy((IAggregationStrategy)strategy, siteDp, new Privacy.SecureGaussian(_random)));
                var outcome = await aggregator.AggregateAsync(federation, round, closeNow: false, cancellationToken).ConfigureAwait(false);
                if (outcome.Status == RoundOutcomeStatus.Waiting)
                    return new TickOutcome { Federation = federation, Action = "waiting", Round = round, Message = outcome.Message };
                result = outcome.Result!;
                done.Add(outcome.Message);
            }

            await lease.RenewAsync(cancellationToken).ConfigureAwait(false);
            var manifest = (await _store.GetManifestAsync(federation, round, cancellationToken).ConfigureAwait(false))!;
            if (result.Status == RoundStatuses.Aggregated)
            {
                int written = await PersonalizeAsync(manifest, result, cancellationToken).ConfigureAwait(false);
                if (written > 0) done.Add($"wrote {written} personalized model(s)");
            }

            if (round + 1 >= config.Rounds)
            {
                done.Add($"the federation completed its {config.Rounds} round(s)");
                return new TickOutcome { Federation = federation, Action = "completed", Round = round, Message = string.Join("; ", done) };
            }

            string? startFrom = result.Status == RoundStatuses.Aggregated ? result.GlobalModel : manifest.GlobalModel;
            return await OpenRoundAsync(config, round + 1, startFrom, done, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The federation's site-level DP account before <paramref name="round"/> (null when site-level DP is off): every
    /// earlier aggregated round charged with the sites its manifest asked, out of the active sites. The site agent
    /// replays the same account to know when the federation stops at its target ε.
    /// </summary>
    public static async Task<Privacy.SiteDpAccountant?> SiteDpAccountantAsync(IFederationStore store, FederationConfig config, int round, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(config);
        if (config.SiteLevelDp is not { } dp) return null;
        var options = dp.ToOptions();
        var accountant = new Privacy.SiteDpAccountant(options, Math.Max(1, config.ActiveSites.Count));
        for (int r = 0; r < round; r++)
        {
            if (await store.GetRoundResultAsync(config.Federation, r, cancellationToken).ConfigureAwait(false) is not { Status: RoundStatuses.Aggregated }) continue;
            var manifest = await store.GetManifestAsync(config.Federation, r, cancellationToken).ConfigureAwait(false);
            if (manifest is null) continue;
            // With secure aggregation the noise is distributed: only the survivors' shares reached the sum.
            if (config.SecureAggregation is not null && store is FederationStore fs
                && await new SecureAggregation.SecAggStore(fs, config.Federation, r).GetSurvivorsAsync(cancellationToken).ConfigureAwait(false) is { } survivors)
                accountant.Spend(manifest.Sites.Count, Privacy.SiteLevelDpMath.DistributedNoiseMultiplier(options, survivors.Survivors.Count, manifest.Sites.Count));
            else accountant.Spend(manifest.Sites.Count);
        }

        return accountant;
    }

    /// <summary>True when site-level DP's target ε keeps <paramref name="round"/> from opening.</summary>
    public static async Task<bool> SiteDpBudgetStopsAsync(IFederationStore store, FederationConfig config, int round, CancellationToken cancellationToken = default) =>
        config.SiteLevelDp?.TargetEpsilon is not null && BudgetStops(config, await SiteDpAccountantAsync(store, config, round, cancellationToken).ConfigureAwait(false));

    private static bool BudgetStops(FederationConfig config, Privacy.SiteDpAccountant? account) =>
        config.SiteLevelDp?.TargetEpsilon is { } target && account is not null && account.Projected(config.ActiveSites.Count) > target + 1e-12;

    private Task<Privacy.SiteDpAccountant?> SiteDpAccountantAsync(FederationConfig config, int round, CancellationToken cancellationToken) =>
        SiteDpAccountantAsync(_store, config, round, cancellationToken);

    private async Task<TickOutcome> OpenRoundAsync(FederationConfig config, int round, string? globalModel, List<string> done, CancellationToken cancellationToken)
    {
        var sites = config.ActiveSites;
        var account = config.SiteLevelDp?.TargetEpsilon is null ? null : await SiteDpAccountantAsync(config, round, cancellationToken).ConfigureAwait(false);
        if (BudgetStops(config, account))
        {
            done.Add($"round {round} does not open: it would take the federation's site-level ε from {account!.EpsilonTotal:F4} to {account.Projected(sites.Count):F4}, above its target {config.SiteLevelDp!.TargetEpsilon}");
            return new TickOutcome { Federation = config.Federation, Action = "completed", Round = round == 0 ? null : round - 1, Message = string.Join("; ", done) };
        }

        if (sites.Count < config.Quorum)
        {
            return new TickOutcome
            {
                Federation = config.Federation, Action = "error", Round = round,
                Message = string.Join("; ", done.Append($"round {round} cannot open: only {sites.Count} active site(s) for a quorum of {config.Quorum}")),
            };
        }

        var now = _time.GetUtcNow();
        // Cyclic boosting: each round is one site's turn, in the order the sites registered.
        IReadOnlyList<string> expected = config.Strategy.Name == StrategyNames.TreeCyclic ? [CyclicTurn(config, round)] : sites;
        var manifest = new RoundManifest
        {
            Federation = config.Federation, Round = round, Strategy = config.Strategy, Model = config.Model, GlobalModel = globalModel,
            Quorum = Math.Min(config.Quorum, expected.Count), Sites = expected, OpenedAt = now, Deadline = now.AddSeconds(config.RoundSeconds),
        };
        await PutIgnoringExistingAsync(() => _store.PutManifestAsync(manifest, cancellationToken)).ConfigureAwait(false);
        if (config.SecureAggregation is not null) await EnsureSecAggSetupAsync(config, manifest, cancellationToken).ConfigureAwait(false);
        done.Add($"opened round {round} for {expected.Count} site(s) until {manifest.Deadline:O}{(config.SecureAggregation is null ? "" : " with secure aggregation")}");
        return new TickOutcome { Federation = config.Federation, Action = "round_opened", Round = round, Message = string.Join("; ", done) };
    }

    /// <summary>
    /// The site whose turn <paramref name="round"/> is in a <c>tree-cyclic</c> federation: the active sites take turns in
    /// the order they registered (round r: site r mod n). A site agent finds its pass (r div n) and place the same way.
    /// </summary>
    public static string CyclicTurn(FederationConfig config, int round)
    {
        ArgumentNullException.ThrowIfNull(config);
        var sites = config.ActiveSites;
        if (sites.Count == 0) throw new InvalidOperationException($"federation '{config.Federation}' has no active site to take round {round}'s turn");
        return sites[round % sites.Count];
    }

    /// <summary>
    /// Each accepted site's personalized model for a closed round: w·(its own model) + (1 − w)·(the new global
    /// model), with w the site's reported <see cref="PersonalizationWeightMetric"/> (chosen on its own validation
    /// patients) or 1 when it reported none (its own model, which started from the global model: local fine-tuning).
    /// Streams one update at a time; models already written are kept. Logistic models only.
    /// </summary>
    private async Task<int> PersonalizeAsync(RoundManifest manifest, RoundResult result, CancellationToken cancellationToken)
    {
        if (manifest.Model.Kind != ModelKinds.Logistic) return 0;
        var global = await _store.GetGlobalModelAsync(manifest.Federation, manifest.Round, cancellationToken).ConfigureAwait(false);
        if (global is null) return 0;
        ModelFile? start = null;
        if (manifest.GlobalModel is not null && GlobalModelPath.TryParse(manifest.GlobalModel, out var fromFederation, out int fromRound))
            start = await _store.GetGlobalModelAsync(fromFederation, fromRound, cancellationToken).ConfigureAwait(false);
        var existing = (await _store.ListPersonalizedModelsAsync(manifest.Federation, manifest.Round, cancellationToken).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
        int dimension = manifest.Model.Dimension;
        var own = new float[dimension];
        int written = 0;
        foreach (var accepted in result.Accepted)
        {
            if (existing.Contains(accepted.Site)) continue;
            var stream = await _store.OpenUpdateAsync(manifest.Federation, manifest.Round, accepted.Site, cancellationToken).ConfigureAwait(false);
            if (stream is null) continue;
            UpdateHeader header;
            string origin = StoreLayout.Update(manifest.Federation, manifest.Round, accepted.Site);
            await using (stream.ConfigureAwait(false))
            {
                header = UpdateFile.ReadHeader(stream, origin);
                UpdateFile.ReadPayload(stream, header, own, origin, verifyHash: !(stream is VerifiedUpdateStream v && v.PayloadSha256 == header.PayloadSha256));
            }

            if (header.ParameterKind == ParameterKinds.Delta && start is not null)
                System.Numerics.Tensors.TensorPrimitives.Add(own, start.Parameters, own);
            double w = header.LocalMetrics.TryGetValue(PersonalizationWeightMetric, out var reported) ? Math.Clamp(reported, 0, 1) : 1;
            var personalized = new float[dimension];
            AggregationMath.Interpolate(global.Parameters, own, (float)w, personalized);
            var model = ModelFile.FromParameters(new ModelHeader
            {
                Federation = manifest.Federation, Round = manifest.Round, Site = accepted.Site, Kind = manifest.Model.Kind, Dimension = dimension,
                FeatureSpecId = manifest.Model.FeatureSpecId, FeatureSpecVersion = manifest.Model.FeatureSpecVersion, Strategy = result.Strategy,
                Sites = [accepted.Site], ExampleCount = accepted.ExampleCount,
                Metrics = new Dictionary<string, double>(StringComparer.Ordinal) { [PersonalizationWeightMetric] = w },
                CreatedAt = result.CompletedAt,
            }, personalized);
            await PutIgnoringExistingAsync(() => _store.PutPersonalizedModelAsync(model, cancellationToken)).ConfigureAwait(false);
            written++;
        }

        return written;
    }

    private static async Task PutIgnoringExistingAsync(Func<Task> put)
    {
        try
        {
            await put().ConfigureAwait(false);
        }
        catch (StoreObjectExistsException)
        {
            // Written by an earlier invocation that died before finishing the tick; the content is the same.
        }
    }

    // ---- status ------------------------------------------------------------------------------------------------

    /// <summary>The federation's state for <c>RoundStatus</c>: aggregates only.</summary>
    public async Task<FederationStatus?> GetStatusAsync(string federation, CancellationToken cancellationToken = default)
    {
        var stored = await _store.GetFederationAsync(federation, cancellationToken).ConfigureAwait(false);
        if (stored is null) return null;
        var config = stored.Value.Config;
        var rounds = await _store.ListRoundsAsync(federation, cancellationToken).ConfigureAwait(false);
        var history = new List<RoundSummary>();
        var rejected = new List<RejectedUpload>();
        string? latestGlobal = null;
        RoundResult? lastResult = null;
        foreach (int r in rounds)
        {
            var result = await _store.GetRoundResultAsync(federation, r, cancellationToken).ConfigureAwait(false);
            if (result is null) continue;
            lastResult = result;
            history.Add(new RoundSummary
            {
                Round = r, Status = result.Status, Accepted = result.Accepted.Select(a => a.Site).ToArray(), Missing = result.Missing,
                ExampleCount = result.ExampleCount, Metrics = result.Metrics, CompletedAt = result.CompletedAt,
                PayloadBytes = result.Accepted.All(a => a.PayloadBytes is not null) ? result.Accepted.Sum(a => a.PayloadBytes!.Value) : null,
                PayloadEncodings = result.Accepted.Where(a => a.PayloadEncoding is not null).ToDictionary(a => a.Site, a => a.PayloadEncoding!, StringComparer.Ordinal),
            });
            rejected.AddRange(result.Rejected.Select(x => new RejectedUpload { Round = r, Site = x.Site, Reason = x.Reason }));
            if (result.GlobalModel is not null) latestGlobal = result.GlobalModel;
        }

        int? latest = rounds.Count == 0 ? null : rounds[^1];
        string phase;
        IReadOnlyList<string> uploaded, missing;
        DateTimeOffset? deadline = null;
        if (latest is null)
        {
            phase = config.Statistics ? FederationPhases.Statistics : FederationPhases.Open;
            uploaded = (await _store.ListSiteStatisticsAsync(federation, cancellationToken).ConfigureAwait(false)).ToArray();
            missing = config.ActiveSites.Except(uploaded).ToArray();
        }
        else
        {
            var manifest = (await _store.GetManifestAsync(federation, latest.Value, cancellationToken).ConfigureAwait(false))!;
            bool closed = lastResult?.Round == latest.Value;
            phase = closed && latest.Value + 1 >= config.Rounds ? FederationPhases.Completed : FederationPhases.Open;
            // With secure aggregation a site's upload is its masked vector (there are no plain updates).
            uploaded = config.SecureAggregation is not null && _store is FederationStore secureStore
                ? await new SecureAggregation.SecAggStore(secureStore, federation, latest.Value).ListMaskedAsync(cancellationToken).ConfigureAwait(false)
                : await _store.ListUpdatesAsync(federation, latest.Value, cancellationToken).ConfigureAwait(false);
            missing = manifest.Sites.Except(uploaded).ToArray();
            if (!closed) deadline = manifest.Deadline;
        }

        return new FederationStatus
        {
            Federation = federation, Phase = phase, Round = latest, Rounds = config.Rounds, Strategy = config.Strategy.Name, Quorum = config.Quorum,
            Deadline = deadline, Sites = config.ActiveSites,
            WithdrawnSites = config.Sites.Where(s => s.Status == SiteStatuses.Withdrawn).Select(s => s.Name).ToArray(),
            Uploaded = uploaded, Missing = missing, Rejected = rejected, History = history, LatestGlobalModel = latestGlobal,
            AsOf = _time.GetUtcNow(),
        };
    }
}
