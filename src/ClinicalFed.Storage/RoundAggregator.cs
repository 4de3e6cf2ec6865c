using ClinicalFed.Federation;

namespace ClinicalFed.Storage;

/// <summary>What <see cref="RoundAggregator.AggregateAsync"/> did.</summary>
public enum RoundOutcomeStatus
{
    /// <summary>Not every expected site has uploaded and the deadline has not passed; nothing was written.</summary>
    Waiting,

    /// <summary>The round was aggregated now: result, server state (if any) and global model were written.</summary>
    Aggregated,

    /// <summary>The round closed with fewer accepted updates than its quorum; only the result was written.</summary>
    QuorumNotMet,

    /// <summary>The round had already been closed (by an earlier call or a concurrent aggregator); nothing was written.</summary>
    AlreadyCompleted,
}

/// <summary>The outcome of one aggregation attempt.</summary>
public sealed record RoundOutcome(RoundOutcomeStatus Status, RoundResult? Result, string Message);

/// <summary>
/// Closes a round from the store alone, so that a stateless (serverless) function can run it: reads the manifest,
/// the global model the round starts from and the server state that model's round left, then streams the round's
/// updates one at a time through the manifest's strategy (memory O(parameters): one payload buffer plus the
/// strategy's vectors, whatever the number of sites) and writes <c>result.json</c>, <c>server-state.bin</c> and
/// <c>global.cfm</c>.
/// <para>
/// The round closes when every expected site has uploaded, when the deadline has passed (clock from the injected
/// <see cref="TimeProvider"/>), or when the caller forces it. Rejected updates (corrupt file, wrong round or
/// dimension, unexpected site, ...) are listed with their reasons. Idempotent and crash-safe: the result is written
/// first and names the accepted updates; a call that finds a result without a global model (a crash in between)
/// recomputes from exactly those updates, which gives the same model; a call on a closed round writes nothing.
/// </para>
/// </summary>
public sealed class RoundAggregator
{
    private readonly IFederationStore _store;
    private readonly TimeProvider _time;

    public RoundAggregator(IFederationStore store, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>
    /// Aggregates round <paramref name="round"/> of <paramref name="federation"/> if it is due (all expected sites
    /// uploaded, or the deadline passed, or <paramref name="closeNow"/>).
    /// </summary>
    public async Task<RoundOutcome> AggregateAsync(string federation, int round, bool closeNow = false, CancellationToken cancellationToken = default)
    {
        try
        {
            return await AggregateOnceAsync(federation, round, closeNow, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreObjectExistsException)
        {
            // Another aggregator wrote the result first: finish (or confirm) from what it decided.
            return await AggregateOnceAsync(federation, round, closeNow, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<RoundOutcome> AggregateOnceAsync(string federation, int round, bool closeNow, CancellationToken ct)
    {
        string manifestPath = StoreLayout.Manifest(federation, round);
        var manifest = await _store.GetManifestAsync(federation, round, ct).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"{manifestPath} does not exist: round {round} of federation '{federation}' was never opened");

        var existing = await _store.GetRoundResultAsync(federation, round, ct).ConfigureAwait(false);
        if (existing is not null)
        {
            if (existing.Status == RoundStatuses.QuorumNotMet)
                return new(RoundOutcomeStatus.AlreadyCompleted, existing, $"round {round} closed earlier without reaching its quorum");
            if (await _store.GetGlobalModelAsync(federation, round, ct).ConfigureAwait(false) is not null)
                return new(RoundOutcomeStatus.AlreadyCompleted, existing, $"round {round} was aggregated earlier");
        }

        var uploaded = await _store.ListUpdatesAsync(federation, round, ct).ConfigureAwait(false);
        var missing = manifest.Sites.Where(s => !uploaded.Contains(s, StringComparer.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        var now = _time.GetUtcNow();
        if (existing is null && !closeNow && now < manifest.Deadline && missing.Length > 0)
        {
            return new(RoundOutcomeStatus.Waiting, null,
                $"{manifest.Sites.Count - missing.Length} of {manifest.Sites.Count} expected sites have uploaded; round {round} closes at {manifest.Deadline:O}");
        }

        var strategy = StrategyFactory.Create(manifest.Strategy);
        var notes = new List<string>();
        ModelFile? global = null;
        if (manifest.GlobalModel is not null)
        {
            GlobalModelPath.TryParse(manifest.GlobalModel, out var fromFederation, out int fromRound);
            global = await _store.GetGlobalModelAsync(fromFederation, fromRound, ct).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"{manifestPath} starts from {manifest.GlobalModel}, which does not exist");
            var state = await _store.GetServerStateAsync(fromFederation, fromRound, ct).ConfigureAwait(false);
            if (state is not null)
            {
                if (state.Header.Strategy == strategy.Name) strategy.RestoreState(state);
                else notes.Add($"the server state of round {fromRound} belongs to strategy '{state.Header.Strategy}'; {strategy.Name} starts from fresh state");
            }
        }

        strategy.Begin(global, manifest);
        int dimension = manifest.Model.Dimension;
        var buffer = new float[dimension];
        var accepted = new List<AcceptedUpdate>();
        var rejected = new List<RejectedUpdate>();
        var metricSums = new SortedDictionary<string, (double Sum, double Weight)>(StringComparer.Ordinal);
        IReadOnlyList<string> candidates = existing is null ? uploaded : existing.Accepted.Select(a => a.Site).ToArray();

        foreach (var site in candidates)
        {
            string origin = StoreLayout.Update(federation, round, site);
            var stream = await _store.OpenUpdateAsync(federation, round, site, ct).ConfigureAwait(false);
            if (stream is null)
            {
                rejected.Add(new RejectedUpdate { Site = site, Reason = "the update is no longer in the store" });
                continue;
            }

            UpdateHeader header;
            double norm;
            await using (stream.ConfigureAwait(false))
            {
                try
                {
                    header = UpdateFile.ReadHeader(stream, origin);
                    if (header.Dimension != dimension)
                        throw new UpdateRejectedException(site, [$"dimension {header.Dimension} does not match the model's {dimension}"]);
                    UpdateFile.ReadPayload(stream, header, buffer, origin);
                    norm = header.ParameterKind == ParameterKinds.Delta || global is null
                        ? AggregationMath.L2Norm(buffer)
                        : AggregationMath.L2Distance(buffer, global.Parameters);
                    strategy.Accumulate(header, buffer);
                }
                catch (FederationDataException e)
                {
                    rejected.Add(new RejectedUpdate { Site = site, Reason = string.Join("; ", e.Problems) });
                    continue;
                }
                catch (UpdateRejectedException e)
                {
                    rejected.Add(new RejectedUpdate { Site = site, Reason = e.Reason });
                    continue;
                }
            }

            accepted.Add(new AcceptedUpdate
            {
                Site = site,
                ExampleCount = header.ExampleCount,
                ParameterKind = header.ParameterKind,
                UpdateNorm = norm,
                PayloadSha256 = header.PayloadSha256,
            });
            foreach (var (name, value) in header.LocalMetrics)
            {
                metricSums.TryGetValue(name, out var s);
                metricSums[name] = (s.Sum + value * header.ExampleCount, s.Weight + header.ExampleCount);
            }
        }

        if (existing is not null && (rejected.Count > 0 || accepted.Count != existing.Accepted.Count))
        {
            throw new InvalidOperationException(
                $"round {round} cannot be resumed: its result accepted {existing.Accepted.Count} update(s) but only {accepted.Count} can be read again ({string.Join("; ", rejected.Select(r => $"{r.Site}: {r.Reason}"))})");
        }

        long examples = accepted.Sum(a => a.ExampleCount);
        var metrics = metricSums.ToDictionary(kv => kv.Key, kv => kv.Value.Sum / kv.Value.Weight, StringComparer.Ordinal);
        string globalPath = StoreLayout.GlobalModel(federation, round);
        bool quorumMet = accepted.Count >= manifest.Quorum;
        var result = existing ?? new RoundResult
        {
            Federation = federation,
            Round = round,
            Strategy = strategy.Name,
            Status = quorumMet ? RoundStatuses.Aggregated : RoundStatuses.QuorumNotMet,
            Quorum = manifest.Quorum,
            Accepted = accepted,
            Rejected = rejected,
            Missing = missing,
            ExampleCount = examples,
            Metrics = metrics,
            GlobalModel = quorumMet ? globalPath : null,
            Notes = notes,
            CompletedAt = now,
        };

        if (!quorumMet)
        {
            await _store.PutRoundResultAsync(result, ct).ConfigureAwait(false);
            return new(RoundOutcomeStatus.QuorumNotMet, result,
                $"round {round} closed with {accepted.Count} accepted update(s), fewer than its quorum of {manifest.Quorum}");
        }

        var parameters = strategy.Finish();
        if (existing is null) await _store.PutRoundResultAsync(result, ct).ConfigureAwait(false);

        var serverState = strategy.CaptureState();
        if (serverState is not null)
        {
            try
            {
                await _store.PutServerStateAsync(serverState, ct).ConfigureAwait(false);
            }
            catch (StoreObjectExistsException)
            {
                // Written by the interrupted attempt this call resumes; the computation is deterministic.
            }
        }

        var model = ModelFile.FromParameters(new ModelHeader
        {
            Federation = federation,
            Round = round,
            Site = null,
            Kind = manifest.Model.Kind,
            Dimension = dimension,
            FeatureSpecId = manifest.Model.FeatureSpecId,
            FeatureSpecVersion = manifest.Model.FeatureSpecVersion,
            Strategy = strategy.Name,
            Sites = result.Accepted.Select(a => a.Site).ToArray(),
            ExampleCount = result.ExampleCount,
            Metrics = result.Metrics,
            CreatedAt = result.CompletedAt,
        }, parameters);
        try
        {
            await _store.PutGlobalModelAsync(model, ct).ConfigureAwait(false);
        }
        catch (StoreObjectExistsException)
        {
            return new(RoundOutcomeStatus.AlreadyCompleted, result, $"round {round} was aggregated concurrently");
        }

        return new(RoundOutcomeStatus.Aggregated, result,
            $"round {round} aggregated {accepted.Count} update(s) from {examples} examples with {strategy.Name}");
    }
}
