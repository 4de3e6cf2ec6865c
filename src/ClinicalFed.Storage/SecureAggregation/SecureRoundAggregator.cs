using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;

namespace ClinicalFed.Storage.SecureAggregation;

/// <summary>
/// Closes a secure-aggregation round from the store alone, around any float32 strategy (a decorator: the strategy
/// is the manifest's, unchanged). Two steps, each safe to repeat:
/// <list type="number">
/// <item><see cref="CloseMaskingAsync"/>: checks every masked upload and writes <c>secagg/survivors.json</c>
/// (accepted uploads are survivors; sites that published keys but whose upload is missing or rejected are dropped).</item>
/// <item><see cref="AggregateAsync"/>: once at least t survivors have revealed their shares, sums the survivors'
/// masked vectors in the ring one at a time, removes the masks (<see cref="SecAggUnmasker"/>), decodes the
/// example-weighted mean, and hands it to the strategy as the round's single aggregate update; then writes
/// <c>result.json</c>, <c>server-state.bin</c> (stateful strategies) and <c>global.cfm</c> as <see cref="RoundAggregator"/> does.</item>
/// </list>
/// The aggregator never holds an unmasked site update: only masked vectors, and their sum after unmasking.
/// </summary>
public sealed class SecureRoundAggregator(FederationStore store, TimeProvider? time = null)
{
    /// <summary>The site name under which the unmasked aggregate enters the strategy.</summary>
    public const string AggregateSite = "secure-aggregate";

    /// <summary>The <c>payload_encoding</c> result.json gives a survivor's masked vector (32-bit ring elements).</summary>
    public const string MaskedEncoding = "masked";

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public async Task<SecAggSurvivors> CloseMaskingAsync(string federation, int round, CancellationToken ct = default)
    {
        var sa = new SecAggStore(store, federation, round);
        if (await sa.GetSurvivorsAsync(ct).ConfigureAwait(false) is { } existing) return existing;
        var setup = await sa.GetSetupAsync(ct).ConfigureAwait(false) ?? throw new InvalidOperationException($"{sa.SetupPath} does not exist");
        var keys = await sa.GetKeysAsync(setup, ct).ConfigureAwait(false);
        var manifest = await store.GetManifestAsync(federation, round, ct).ConfigureAwait(false) ?? throw new InvalidOperationException($"round {round} has no manifest");
        var check = new SecAggUnmasker(setup, keys, manifest.Model.Dimension);
        // The federation's signing policy (a store without federation.json, as simulate's, has none).
        var config = (await store.GetFederationAsync(federation, ct).ConfigureAwait(false))?.Config;
        var rejected = new List<RejectedUpdate>();
        foreach (var site in await sa.ListMaskedAsync(ct).ConfigureAwait(false))
        {
            string? reason;
            try
            {
                var m = await sa.ReadMaskedAsync(site, ct).ConfigureAwait(false);
                if (m is null) continue;
                reason = m.Value.Header.Site != site ? $"the masked update at {sa.MaskedPath(site)} names site '{m.Value.Header.Site}'"
                    : !keys.Any(k => k.Site == site) ? "the site is not among the round's participants (it sent no key or no shares in time)"
                    : config is null ? null
                    : Privacy.Signing.MaskedUpdateSignature.Rejection(m.Value.Header, federation, round, site, config.FindSite(site)?.SigningPublicKey, config.RequireSignatures);
                reason ??= check.Add(m.Value.Header, m.Value.Payload);
            }
            catch (Exception e) when (e is FederationDataException or EndOfStreamException)
            {
                reason = e.Message;
            }

            if (reason is not null) rejected.Add(new RejectedUpdate { Site = site, Reason = reason });
        }
        var survivors = new SecAggSurvivors
        {
            Federation = federation, Round = round, Survivors = check.Summed.Order(StringComparer.Ordinal).ToArray(),
            Dropped = keys.Select(k => k.Site).Where(s => !check.Summed.Contains(s)).ToArray(), KeySetSha256 = check.KeySetSha256,
            Rejected = rejected.Count == 0 ? null : rejected,
        };
        try
        {
            await sa.PutSurvivorsAsync(survivors, ct).ConfigureAwait(false);
        }
        catch (StoreObjectExistsException)
        {
            return await sa.GetSurvivorsAsync(ct).ConfigureAwait(false) ?? survivors;
        }
        return survivors;
    }

    /// <param name="extraNotes">Notes for the round's <c>result.json</c> (the coordinator's privacy account).</param>
    public async Task<RoundOutcome> AggregateAsync(string federation, int round, CancellationToken ct = default, IReadOnlyList<string>? extraNotes = null)
    {
        var sa = new SecAggStore(store, federation, round);
        var manifest = await store.GetManifestAsync(federation, round, ct).ConfigureAwait(false) ?? throw new InvalidOperationException($"round {round} has no manifest");
        var existing = await store.GetRoundResultAsync(federation, round, ct).ConfigureAwait(false);
        if (existing is not null && (existing.Status != RoundStatuses.Aggregated || await store.GetGlobalModelAsync(federation, round, ct).ConfigureAwait(false) is not null))
            return new(RoundOutcomeStatus.AlreadyCompleted, existing, $"round {round} was aggregated earlier");
        // (A result without its global model: an earlier call died in between; the same sum is computed again.)
        var setup = await sa.GetSetupAsync(ct).ConfigureAwait(false) ?? throw new InvalidOperationException($"{sa.SetupPath} does not exist");
        var survivors = await sa.GetSurvivorsAsync(ct).ConfigureAwait(false);
        if (survivors is null) return new(RoundOutcomeStatus.Waiting, null, "the masking phase is still open (no secagg/survivors.json)");
        var reveals = await sa.GetUnmasksAsync(ct).ConfigureAwait(false);
        int revealed = reveals.Count(r => survivors.Survivors.Contains(r.Site));
        if (revealed < setup.Threshold) return new(RoundOutcomeStatus.Waiting, null, $"{revealed} of the {setup.Threshold} reveals needed");
        var keys = await sa.GetKeysAsync(setup, ct).ConfigureAwait(false);
        int dimension = manifest.Model.Dimension;
        var unmasker = new SecAggUnmasker(setup, keys, dimension);
        var accepted = new List<AcceptedUpdate>();
        var metricSums = new SortedDictionary<string, (double Sum, double Weight)>(StringComparer.Ordinal);
        foreach (var site in survivors.Survivors)
        {
            var m = await sa.ReadMaskedAsync(site, ct).ConfigureAwait(false) ?? throw new SecAggException($"the masked update of survivor '{site}' is gone");
            if (unmasker.Add(m.Header, m.Payload) is { } reason) throw new SecAggException($"survivor '{site}': {reason}");
            accepted.Add(new AcceptedUpdate
            {
                Site = site, ExampleCount = m.Header.ExampleCount, ParameterKind = ParameterKinds.Full, UpdateNorm = 0, PayloadSha256 = m.Header.PayloadSha256,
                PayloadEncoding = MaskedEncoding, PayloadBytes = 4L * m.Payload.Length,
            });
            foreach (var (k, v) in m.Header.LocalMetrics)
            {
                var (s, w) = metricSums.GetValueOrDefault(k);
                metricSums[k] = (s + v * m.Header.ExampleCount, w + m.Header.ExampleCount);
            }
        }
        var mean = unmasker.Finish(survivors, reveals);
        long examples = accepted.Sum(a => a.ExampleCount);

        var strategy = StrategyFactory.Create(StrategyFactory.ParseOptions(manifest.Strategy.Name, manifest.Strategy.Options));
        var notes = new List<string>
        {
            $"secure aggregation: the aggregator summed {survivors.Survivors.Count} masked (masked-ring32) updates and unmasked only their sum; " +
            $"{survivors.Dropped.Count} site(s) dropped after publishing keys; update_norm is unknown to the aggregator and written as 0",
        };
        if (extraNotes is not null) notes.AddRange(extraNotes);
        ModelFile? global = null;
        if (manifest.GlobalModel is not null)
        {
            GlobalModelPath.TryParse(manifest.GlobalModel, out var fromFederation, out int fromRound);
            global = await store.GetGlobalModelAsync(fromFederation, fromRound, ct).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"round {round} starts from {manifest.GlobalModel}, which does not exist");
            if (await store.GetServerStateAsync(fromFederation, fromRound, ct).ConfigureAwait(false) is { } state && state.Header.Strategy == strategy.Name)
                strategy.RestoreState(state);
        }
        var now = _time.GetUtcNow();
        bool quorumMet = accepted.Count >= manifest.Quorum;
        var result = new RoundResult
        {
            Federation = federation, Round = round, Strategy = strategy.Name,
            Status = quorumMet ? RoundStatuses.Aggregated : RoundStatuses.QuorumNotMet, Quorum = manifest.Quorum,
            Accepted = accepted, Rejected = survivors.Rejected ?? [], Missing = manifest.Sites.Where(s => !survivors.Survivors.Contains(s)).Order(StringComparer.Ordinal).ToArray(),
            ExampleCount = examples, Metrics = metricSums.ToDictionary(kv => kv.Key, kv => kv.Value.Sum / kv.Value.Weight, StringComparer.Ordinal),
            GlobalModel = quorumMet ? StoreLayout.GlobalModel(federation, round) : null, Notes = notes, CompletedAt = now,
        };
        if (!quorumMet)
        {
            await store.PutRoundResultAsync(result, ct).ConfigureAwait(false);
            return new(RoundOutcomeStatus.QuorumNotMet, result, $"{accepted.Count} survivors, fewer than the quorum of {manifest.Quorum}");
        }
        strategy.Begin(global, manifest with { Sites = [AggregateSite], Quorum = 1 });
        strategy.Accumulate(new UpdateHeader
        {
            Federation = federation, Round = round, Site = AggregateSite, ExampleCount = examples, ParameterKind = ParameterKinds.Full,
            Dimension = dimension, CreatedAt = now,
        }, mean);
        var parameters = strategy.Finish();
        var model = ModelFile.FromParameters(new ModelHeader
        {
            Federation = federation, Round = round, Site = null, Kind = manifest.Model.Kind, Dimension = dimension,
            FeatureSpecId = manifest.Model.FeatureSpecId, FeatureSpecVersion = manifest.Model.FeatureSpecVersion, Strategy = strategy.Name,
            Sites = accepted.Select(a => a.Site).ToArray(), ExampleCount = examples, Metrics = result.Metrics, CreatedAt = now,
        }, parameters);
        if (existing is null) await store.PutRoundResultAsync(result, ct).ConfigureAwait(false);
        else result = existing;
        if (strategy.CaptureState() is { } serverState)
        {
            try { await store.PutServerStateAsync(serverState, ct).ConfigureAwait(false); }
            catch (StoreObjectExistsException) { }
        }

        try
        {
            await store.PutGlobalModelAsync(model, ct).ConfigureAwait(false);
        }
        catch (StoreObjectExistsException)
        {
            return new(RoundOutcomeStatus.AlreadyCompleted, result, $"round {round} was aggregated concurrently");
        }
        return new(RoundOutcomeStatus.Aggregated, result, $"round {round} securely aggregated {accepted.Count} masked update(s) from {examples} examples with {strategy.Name}");
    }
}
