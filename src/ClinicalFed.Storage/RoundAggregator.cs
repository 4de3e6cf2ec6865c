using ClinicalFed.Federation;
using ClinicalFed.Trees;

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
/// updates one at a time through the manifest's strategy and writes <c>result.json</c>, <c>server-state.bin</c> and
/// <c>global.cfm</c>. Updates are opened, read and verified a few at a time ahead of the strategy, on the thread pool,
/// and accumulated in site order (so the arithmetic is the sequential one). Parameter-averaging strategies take a
/// float32 update the store verified on upload (<see cref="VerifiedUpdateStream"/>) straight from its stream in
/// cache-sized chunks (<see cref="IStreamingAggregationStrategy"/>: reading, checking and accumulating in one pass),
/// and read any other float32 update into one of a few reused payload buffers, one per update in flight (memory
/// O(parameters) plus the strategy's vectors, whatever the number of sites); they write float32 global models; tree
/// strategies read tree-ensemble updates (a few in memory at once; memory O(the merged ensemble)) and write the new global
/// ensemble as a tree-ensemble model file.
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

    private readonly Func<IRoundStrategy, IRoundStrategy>? _decorate;

    /// <param name="store">The federation store.</param>
    /// <param name="timeProvider">The clock of deadlines and results.</param>
    /// <param name="decorate">
    /// Wraps the manifest's strategy before the round is aggregated (a cross-cutting concern such as site-level
    /// differential privacy, <see cref="Privacy.SiteLevelDpStrategy"/>); null aggregates with the strategy as built.
    /// </param>
    public RoundAggregator(IFederationStore store, TimeProvider? timeProvider = null, Func<IRoundStrategy, IRoundStrategy>? decorate = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = timeProvider ?? TimeProvider.System;
        _decorate = decorate;
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

        var strategy = StrategyFactory.CreateAny(manifest.Strategy);
        if (_decorate is not null) strategy = _decorate(strategy);
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
        var payloads = RoundPayloads.For(strategy, global, dimension);
        var accepted = new List<AcceptedUpdate>();
        var rejected = new List<RejectedUpdate>();
        var metricSums = new SortedDictionary<string, (double Sum, double Weight)>(StringComparer.Ordinal);
        IReadOnlyList<string> candidates = existing is null ? uploaded : existing.Accepted.Select(a => a.Site).ToArray();
        // Signed updates: the federation document (if any) holds the sites' signing public keys and require_signatures.
        var signing = (await _store.GetFederationAsync(federation, ct).ConfigureAwait(false))?.Config;

        // Updates are opened, read and verified ahead on the thread pool (UpdateReadAhead) and accumulated here in order.
        async Task<ReadUpdate> ReadAsync(string site, CancellationToken token)
        {
            string origin = StoreLayout.Update(federation, round, site);
            var stream = await _store.OpenUpdateAsync(federation, round, site, token).ConfigureAwait(false);
            if (stream is null) return new ReadUpdate(site, null, "the update is no longer in the store");
            bool handedOver = false; // a payload read later, straight from the stream, owns it
            try
            {
                try
                {
                    var header = UpdateFile.ReadHeader(stream, origin);
                    if (header.Dimension != dimension)
                        throw new UpdateRejectedException(site, [$"dimension {header.Dimension} does not match the model's {dimension}"]);
                    if (signing is not null && Privacy.Signing.UpdateSignature.Rejection(header, federation, round, site,
                            signing.FindSite(site)?.SigningPublicKey, signing.RequireSignatures) is { } unsigned)
                        throw new UpdateRejectedException(site, [unsigned]);
                    var payload = payloads.Read(header, stream, origin);
                    handedOver = payload is IAsyncDisposable;
                    return new ReadUpdate(site, new UpdateHeaderAndPayload(header, payload), null);
                }
                catch (FederationDataException e)
                {
                    return new ReadUpdate(site, null, string.Join("; ", e.Problems));
                }
                catch (UpdateRejectedException e)
                {
                    return new ReadUpdate(site, null, e.Reason);
                }
            }
            finally
            {
                if (!handedOver) await stream.DisposeAsync().ConfigureAwait(false);
            }
        }

        await using var reads = new UpdateReadAhead(candidates, ReadAsync, UpdateReadAhead.WindowFor(4L * dimension), ct);
        while (await reads.NextAsync().ConfigureAwait(false) is { } read)
        {
            string site = read.Site;
            if (read.Update is not { } update)
            {
                rejected.Add(new RejectedUpdate { Site = site, Reason = read.Rejection! });
                continue;
            }

            var header = update.Header;
            double norm;
            try
            {
                norm = payloads.Accumulate(header, update.Payload);
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

            accepted.Add(new AcceptedUpdate
            {
                Site = site,
                ExampleCount = header.ExampleCount,
                ParameterKind = header.ParameterKind,
                UpdateNorm = norm,
                PayloadSha256 = header.PayloadSha256,
                PayloadEncoding = header.PayloadEncoding ?? UpdatePayloadEncodings.Float32,
                PayloadBytes = header.PayloadBytes ?? (header.IsPlainFloat32 ? 4L * header.Dimension : null),
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

        var model = payloads.Finish(new ModelHeader
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
        });
        if (existing is null)
        {
            if (strategy is IReportsRoundNotes reporting) notes.AddRange(reporting.RoundNotes);
            await _store.PutRoundResultAsync(result, ct).ConfigureAwait(false);
        }

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

    /// <summary>
    /// Reads each update's payload in the form the round's strategy aggregates, hands it over, and turns the result
    /// into the global model file: float32 parameters through a few reused buffers (one per update read ahead), or
    /// tree ensembles.
    /// </summary>
    private abstract class RoundPayloads
    {
        public static RoundPayloads For(IRoundStrategy strategy, ModelFile? global, int dimension) => strategy switch
        {
            IAggregationStrategy parameters => new FloatPayloads(parameters, global, dimension),
            ITreeAggregationStrategy trees => new TreePayloads(trees, global),
            _ => throw new NotSupportedException($"strategy '{strategy.Name}' aggregates neither float32 parameters nor tree ensembles"),
        };

        /// <summary>
        /// Reads and verifies the payload after <paramref name="header"/> (on a read-ahead thread; must not touch the
        /// strategy).
        /// </summary>
        public abstract object Read(UpdateHeader header, Stream payload, string origin);

        /// <summary>Accumulates a payload <see cref="Read"/> produced (in site order) and returns its update norm.</summary>
        public abstract double Accumulate(UpdateHeader header, object payload);

        /// <summary>Finishes the strategy's round: the global model with <paramref name="header"/>.</summary>
        public abstract ModelFile Finish(ModelHeader header);
    }

    private sealed class FloatPayloads(IAggregationStrategy strategy, ModelFile? global, int dimension) : RoundPayloads
    {
        // Payload buffers reused across updates: one per update being read ahead or accumulated.
        private readonly System.Collections.Concurrent.ConcurrentBag<float[]> _buffers = [];

        private sealed record Payload(float[] Values, double Norm);

        /// <summary>
        /// A payload the store verified on upload (complete, hash-matching, finite) and that has not changed since: it
        /// is not read ahead but streamed into the strategy when its turn comes, reading and accumulating in one pass
        /// over cache-sized chunks (<see cref="IStreamingAggregationStrategy"/>).
        /// </summary>
        private sealed class StreamedPayload(Stream stream) : IAsyncDisposable
        {
            public Stream Stream { get; } = stream;

            public ValueTask DisposeAsync() => Stream.DisposeAsync();
        }

        public override object Read(UpdateHeader header, Stream payload, string origin)
        {
            if (strategy is IStreamingAggregationStrategy && BitConverter.IsLittleEndian && header.IsPlainFloat32
                && payload is VerifiedUpdateStream stored && stored.PayloadSha256 == header.PayloadSha256)
                return new StreamedPayload(payload);

            var buffer = _buffers.TryTake(out var free) ? free : new float[dimension];
            try
            {
                // Hashed again only when the store cannot vouch that the payload is the one it verified on upload.
                bool verified = payload is VerifiedUpdateStream v && v.PayloadSha256 == header.PayloadSha256;
                UpdateFile.ReadPayload(payload, header, buffer, origin, verifyHash: !verified);
            }
            catch
            {
                _buffers.Add(buffer);
                throw;
            }

            double norm = header.ParameterKind == ParameterKinds.Delta || global is null
                ? AggregationMath.L2Norm(buffer)
                : AggregationMath.L2Distance(buffer, global.Parameters);
            return new Payload(buffer, norm);
        }

        public override double Accumulate(UpdateHeader header, object payload)
        {
            if (payload is StreamedPayload streamed)
            {
                using (streamed.Stream)
                {
                    return ((IStreamingAggregationStrategy)strategy).AccumulateVerified(header, destination =>
                        streamed.Stream.ReadAtLeast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(destination), destination.Length * sizeof(float), throwOnEndOfStream: false) / sizeof(float));
                }
            }

            var (values, norm) = (Payload)payload;
            try
            {
                strategy.Accumulate(header, values);
            }
            finally
            {
                _buffers.Add(values);
            }

            return norm;
        }

        public override ModelFile Finish(ModelHeader header) => ModelFile.FromParameters(header, strategy.Finish());
    }

    private sealed class TreePayloads(ITreeAggregationStrategy strategy, ModelFile? global) : RoundPayloads
    {
        public override object Read(UpdateHeader header, Stream payload, string origin) => UpdateFile.ReadTreeEnsemble(payload, header, origin);

        public override double Accumulate(UpdateHeader header, object payload)
        {
            var ensemble = (TreeEnsembleModel)payload;
            double norm = TreeAggregationStrategy.UpdateNorm(ensemble, global?.TreeEnsemble);
            strategy.Accumulate(header, ensemble);
            return norm;
        }

        public override ModelFile Finish(ModelHeader header) => ModelFile.FromTreeEnsemble(header, strategy.Finish());
    }
}
