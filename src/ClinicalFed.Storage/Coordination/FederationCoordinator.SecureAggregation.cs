using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;
using ClinicalFed.Storage.SecureAggregation;

namespace ClinicalFed.Storage.Coordination;

/// <summary>
/// Secure aggregation in the serverless path: the round's phases advance tick by tick from the store alone
/// (schemas/store-layout.md, "Secure aggregation, serverless"). A phase closes as soon as every site it waits for has
/// posted, or at its deadline — a share of the round's time — with at least the threshold of sites; a round that
/// cannot reach the threshold closes without a model, as a round without quorum does.
/// </summary>
public sealed partial class FederationCoordinator
{
    /// <summary>When each phase closes at the latest, as a fraction of the round's time: keys, shares, masked uploads (reveals run to the deadline).</summary>
    public static readonly (double Keys, double Shares, double Masked) SecAggPhaseEnds = (0.2, 0.4, 0.8);

    private FederationStore SecAggCapableStore => _store as FederationStore
        ?? throw new NotSupportedException($"secure aggregation needs a {nameof(FederationStore)} (the folder or blob store), not {_store.GetType().Name}");

    /// <summary>The moment phase <paramref name="fraction"/> of <paramref name="manifest"/>'s round closes at the latest.</summary>
    public static DateTimeOffset SecAggPhaseEnd(RoundManifest manifest, double fraction) =>
        manifest.OpenedAt + TimeSpan.FromTicks((long)((manifest.Deadline - manifest.OpenedAt).Ticks * fraction));

    private async Task<SecAggSetup> EnsureSecAggSetupAsync(FederationConfig config, RoundManifest manifest, CancellationToken ct)
    {
        var sa = new SecAggStore(SecAggCapableStore, config.Federation, manifest.Round);
        if (await sa.GetSetupAsync(ct).ConfigureAwait(false) is { } existing) return existing;
        var sites = manifest.Sites.Order(StringComparer.Ordinal).ToArray();
        var setup = new SecAggSetup
        {
            Federation = config.Federation, Round = manifest.Round, Sites = sites,
            Threshold = Math.Min(sites.Length, config.SecureAggregation!.Threshold ?? SecAggSetup.DefaultThreshold(sites.Length)),
            ClipBound = config.SecureAggregation.ClipBound,
        };
        try
        {
            await sa.PutSetupAsync(setup, ct).ConfigureAwait(false);
        }
        catch (StoreObjectExistsException)
        {
            return (await sa.GetSetupAsync(ct).ConfigureAwait(false))!;
        }

        return setup;
    }

    /// <summary>Advances the open secure round one or more phases; Waiting until it is aggregated or fails.</summary>
    private async Task<RoundOutcome> SecureStepAsync(FederationConfig config, int round, CancellationToken ct)
    {
        var store = SecAggCapableStore;
        string f = config.Federation;
        var manifest = (await _store.GetManifestAsync(f, round, ct).ConfigureAwait(false))!;
        var sa = new SecAggStore(store, f, round);
        var setup = await EnsureSecAggSetupAsync(config, manifest, ct).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        if (await _store.GetRoundResultAsync(f, round, ct).ConfigureAwait(false) is null)
        {
            // Phase 1 → 2: the key set.
            var keySet = await sa.GetKeySetAsync(ct).ConfigureAwait(false);
            if (keySet is null)
            {
                var keys = (await sa.GetKeysAsync(setup, ct).ConfigureAwait(false)).Select(k => k.Site).ToArray();
                if (keys.Length < setup.Sites.Count && now < SecAggPhaseEnd(manifest, SecAggPhaseEnds.Keys))
                    return Waiting($"secure round {round}: keys from {keys.Length} of {setup.Sites.Count} site(s); the key phase closes at {SecAggPhaseEnd(manifest, SecAggPhaseEnds.Keys):O}");
                if (keys.Length < setup.Threshold) return await FailSecureRoundAsync(manifest, $"only {keys.Length} site(s) published keys, fewer than the threshold {setup.Threshold}", ct).ConfigureAwait(false);
                keySet = await PutOnceAsync(sa.PutKeySetAsync, sa.GetKeySetAsync, new SecAggSiteList { Federation = f, Round = round, Sites = keys }, ct).ConfigureAwait(false);
            }

            // Phase 2 → 3: the participants (key and shares), with whom every masked update pairs.
            var participants = await sa.GetParticipantsAsync(ct).ConfigureAwait(false);
            if (participants is null)
            {
                var sent = (await sa.ListShareSitesAsync(ct).ConfigureAwait(false)).Where(keySet.Sites.Contains).ToArray();
                if (sent.Length < keySet.Sites.Count && now < SecAggPhaseEnd(manifest, SecAggPhaseEnds.Shares))
                    return Waiting($"secure round {round}: shares from {sent.Length} of {keySet.Sites.Count} site(s); the share phase closes at {SecAggPhaseEnd(manifest, SecAggPhaseEnds.Shares):O}");
                if (sent.Length < setup.Threshold) return await FailSecureRoundAsync(manifest, $"only {sent.Length} site(s) sent their shares, fewer than the threshold {setup.Threshold}", ct).ConfigureAwait(false);
                participants = await PutOnceAsync(sa.PutParticipantsAsync, sa.GetParticipantsAsync, new SecAggSiteList { Federation = f, Round = round, Sites = sent }, ct).ConfigureAwait(false);
            }

            // Phase 3 → 4: the survivors.
            var aggregator = new SecureRoundAggregator(store, _time);
            var survivors = await sa.GetSurvivorsAsync(ct).ConfigureAwait(false);
            if (survivors is null)
            {
                var masked = (await sa.ListMaskedAsync(ct).ConfigureAwait(false)).Where(participants.Sites.Contains).Count();
                if (masked < participants.Sites.Count && now < SecAggPhaseEnd(manifest, SecAggPhaseEnds.Masked))
                    return Waiting($"secure round {round}: masked updates from {masked} of {participants.Sites.Count} participant(s); the masking phase closes at {SecAggPhaseEnd(manifest, SecAggPhaseEnds.Masked):O}");
                survivors = await aggregator.CloseMaskingAsync(f, round, ct).ConfigureAwait(false);
            }

            if (survivors.Survivors.Count < setup.Threshold)
                return await FailSecureRoundAsync(manifest, $"only {survivors.Survivors.Count} masked update(s) were accepted, fewer than the threshold {setup.Threshold} needed to unmask", ct, survivors).ConfigureAwait(false);

            // Phase 4: reveals, then the sum.
            var outcome = await aggregator.AggregateAsync(f, round, ct, await DistributedDpNotesAsync(config, manifest, survivors, ct).ConfigureAwait(false)).ConfigureAwait(false);
            if (outcome.Status != RoundOutcomeStatus.Waiting) return outcome;
            if (now < manifest.Deadline) return Waiting($"secure round {round}: {outcome.Message}; reveals are open until {manifest.Deadline:O}");
            return await FailSecureRoundAsync(manifest, $"the round's deadline passed with {outcome.Message}", ct, survivors).ConfigureAwait(false);
        }

        // A result without its global model: a tick died in between; the sum is recomputed from the same objects.
        return await new SecureRoundAggregator(store, _time).AggregateAsync(f, round, ct).ConfigureAwait(false);

        static RoundOutcome Waiting(string message) => new(RoundOutcomeStatus.Waiting, null, message);
    }

    /// <summary>The site-level DP note of a secure round (distributed noise), or null when site-level DP is off.</summary>
    private async Task<IReadOnlyList<string>?> DistributedDpNotesAsync(FederationConfig config, RoundManifest manifest, SecAggSurvivors survivors, CancellationToken ct)
    {
        if (config.SiteLevelDp is not { } dp) return null;
        var account = (await SiteDpAccountantAsync(_store, config, manifest.Round, ct).ConfigureAwait(false))!;
        var options = dp.ToOptions();
        double z = Privacy.SiteLevelDpMath.DistributedNoiseMultiplier(options, survivors.Survivors.Count, manifest.Sites.Count);
        double epsilon = account.Spend(manifest.Sites.Count, z);
        return
        [
            string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"site-level DP-FedAvg with distributed noise: each site clipped its update to C = {options.ClipNorm:G4} and added N(0, ({Privacy.SiteLevelDpMath.SiteNoiseStd(options, manifest.Sites.Count):G4})²) before masking; {survivors.Survivors.Count} of {manifest.Sites.Count} noise shares reached the sum (effective z = {z:G4}); the federation's site-level ε = {epsilon:F4} (δ = {options.Delta:G3}) after {account.EpsilonPerRound.Count} round(s)"),
        ];
    }

    private static async Task<SecAggSiteList> PutOnceAsync(Func<SecAggSiteList, CancellationToken, Task> put, Func<CancellationToken, Task<SecAggSiteList?>> get, SecAggSiteList value, CancellationToken ct)
    {
        try
        {
            await put(value, ct).ConfigureAwait(false);
            return value;
        }
        catch (StoreObjectExistsException)
        {
            return (await get(ct).ConfigureAwait(false))!;
        }
    }

    /// <summary>Closes a secure round without a model (as a round without quorum): the next round starts from the same model.</summary>
    private async Task<RoundOutcome> FailSecureRoundAsync(RoundManifest manifest, string reason, CancellationToken ct, SecAggSurvivors? survivors = null)
    {
        var result = new RoundResult
        {
            Federation = manifest.Federation, Round = manifest.Round, Strategy = manifest.Strategy.Name, Status = RoundStatuses.QuorumNotMet, Quorum = manifest.Quorum,
            Accepted = [], Rejected = survivors?.Rejected ?? [], Missing = manifest.Sites.Order(StringComparer.Ordinal).ToArray(), ExampleCount = 0,
            Metrics = new Dictionary<string, double>(StringComparer.Ordinal), GlobalModel = null,
            Notes = [$"secure aggregation: {reason}; the round closed without a model"], CompletedAt = _time.GetUtcNow(),
        };
        try
        {
            await _store.PutRoundResultAsync(result, ct).ConfigureAwait(false);
        }
        catch (StoreObjectExistsException)
        {
            result = (await _store.GetRoundResultAsync(manifest.Federation, manifest.Round, ct).ConfigureAwait(false))!;
        }

        return new RoundOutcome(RoundOutcomeStatus.QuorumNotMet, result, $"secure round {manifest.Round} closed without a model: {reason}");
    }

    /// <summary>The path, round and expiry of a secure-aggregation ticket, or why not (<see cref="TicketRefusedException"/>).</summary>
    private async Task<(string Path, int Round, DateTimeOffset Expires)> SecAggTicketAsync(FederationConfig config, string site, string kind, DateTimeOffset now, DateTimeOffset expires, CancellationToken ct)
    {
        string f = config.Federation;
        if (config.SecureAggregation is null) throw new TicketRefusedException(TicketRefusal.NotOpen, $"federation '{f}' does not use secure aggregation");
        int round = await _store.GetLatestRoundAsync(f, ct).ConfigureAwait(false) ?? throw new TicketRefusedException(TicketRefusal.NotOpen, $"federation '{f}' has no open round yet");
        var manifest = (await _store.GetManifestAsync(f, round, ct).ConfigureAwait(false))!;
        if (await _store.GetRoundResultAsync(f, round, ct).ConfigureAwait(false) is not null) throw new TicketRefusedException(TicketRefusal.NotOpen, $"round {round} of federation '{f}' is closed");
        if (now >= manifest.Deadline) throw new TicketRefusedException(TicketRefusal.NotOpen, $"round {round} of federation '{f}' passed its deadline {manifest.Deadline:O}");
        if (!manifest.Sites.Contains(site, StringComparer.Ordinal)) throw new TicketRefusedException(TicketRefusal.NotOpen, $"round {round} does not expect site '{site}'");
        var sa = new SecAggStore(SecAggCapableStore, f, round);
        var keySet = await sa.GetKeySetAsync(ct).ConfigureAwait(false);
        var participants = await sa.GetParticipantsAsync(ct).ConfigureAwait(false);
        var survivors = await sa.GetSurvivorsAsync(ct).ConfigureAwait(false);
        (string path, string? refusal, double phaseEnd) = kind switch
        {
            TicketKinds.SecAggKey => (sa.KeyPath(site),
                keySet is not null ? "the key phase is closed" : (await sa.ListKeySitesAsync(ct).ConfigureAwait(false)).Contains(site) ? "its key is already published" : null,
                SecAggPhaseEnds.Keys),
            TicketKinds.SecAggShares => (sa.SharesPath(site),
                keySet is null ? "the key phase is still open" : !keySet.Sites.Contains(site) ? "it is not in the key set" : participants is not null ? "the share phase is closed"
                    : (await sa.ListShareSitesAsync(ct).ConfigureAwait(false)).Contains(site) ? "its shares are already published" : null,
                SecAggPhaseEnds.Shares),
            TicketKinds.SecAggMasked => (sa.MaskedPath(site),
                participants is null ? "the share phase is still open" : !participants.Sites.Contains(site) ? "it is not a participant (no key or shares in time)" : survivors is not null ? "the masking phase is closed"
                    : (await sa.ListMaskedAsync(ct).ConfigureAwait(false)).Contains(site) ? "its masked update is already uploaded" : null,
                SecAggPhaseEnds.Masked),
            _ => (sa.UnmaskPath(site),
                survivors is null ? "the masking phase is still open" : !survivors.Survivors.Contains(site) ? "it is not a survivor"
                    : (await sa.ListUnmaskSitesAsync(ct).ConfigureAwait(false)).Contains(site) ? "it already revealed" : null,
                1.0),
        };
        if (refusal is not null) throw new TicketRefusedException(TicketRefusal.NotOpen, $"{kind} for site '{site}' in round {round}: {refusal}");
        // A ticket never outlives the round; a phase that closes before the upload arrives leaves it uncounted.
        _ = phaseEnd;
        return (path, round, manifest.Deadline < expires ? manifest.Deadline : expires);
    }
}
