namespace ClinicalFed.Federation;

/// <summary>
/// What every server-side strategy does around a round, whatever its updates carry: resume from the server state a
/// previous round left, open the round, count what it accepted, and hand back the state to persist. The updates
/// themselves go through <see cref="IAggregationStrategy"/> (float32 parameters) or
/// <see cref="ClinicalFed.Trees.ITreeAggregationStrategy"/> (tree ensembles).
/// </summary>
public interface IRoundStrategy
{
    /// <summary>The strategy's name (a <see cref="StrategyNames"/> value).</summary>
    string Name { get; }

    /// <summary>The validated options the strategy was built with.</summary>
    StrategyOptions Options { get; }

    /// <summary>Loads the server state a previous round captured (same strategy). Not allowed while a round is open.</summary>
    void RestoreState(ServerState state);

    /// <summary>
    /// Opens a round. <paramref name="global"/> is the model named by the manifest's <c>global_model</c> (null in a
    /// round that starts from zeros); its payload must be what the strategy aggregates (float32 parameters of the
    /// manifest's dimension, or a tree ensemble of the manifest's features).
    /// </summary>
    void Begin(ModelFile? global, RoundManifest manifest);

    /// <summary>The server state to persist after the round is finished; null for stateless strategies.</summary>
    ServerState? CaptureState();

    /// <summary>Updates accepted in the current (or last) round.</summary>
    int AcceptedCount { get; }
}

/// <summary>
/// A server-side aggregation strategy of float32 parameters, driven one round at a time and one update at a time so
/// that memory stays O(parameters) whatever the number of sites:
/// <code>
/// strategy.RestoreState(previousState);   // optional: resume a stateful strategy in a fresh process
/// strategy.Begin(globalModel, manifest);
/// foreach (update) strategy.Accumulate(header, payload);   // payload buffer may be reused right after the call
/// float[] newGlobal = strategy.Finish();
/// ServerState? state = strategy.CaptureState();            // persist for the next round
/// </code>
/// </summary>
public interface IAggregationStrategy : IRoundStrategy
{
    /// <summary>
    /// Adds one update to the round's running weighted sum. Throws <see cref="UpdateRejectedException"/>, leaving the
    /// round unchanged, when the update does not belong to this round or is unusable. The span is not kept.
    /// </summary>
    void Accumulate(UpdateHeader header, ReadOnlySpan<float> parameters);

    /// <summary>Closes the round and returns the new global parameters (a new array owned by the caller).</summary>
    float[] Finish();
}

/// <summary>
/// Fills <paramref name="destination"/> with the next values of an update's payload and returns how many it wrote
/// (fewer than asked only at the end of the payload, 0 after it).
/// </summary>
public delegate int PayloadChunkSource(Span<float> destination);

/// <summary>
/// A float32 strategy that can also take an update straight from its source, a chunk at a time, without holding the
/// whole payload: the aggregator's path for payloads the store has already verified (complete, hash-matching, finite),
/// where reading the update and accumulating it become one pass over cache-sized chunks.
/// </summary>
public interface IStreamingAggregationStrategy : IAggregationStrategy
{
    /// <summary>
    /// Adds the update of <paramref name="header"/>, reading its <c>dimension</c> values through
    /// <paramref name="source"/>, and returns its L2 size (the norm of a delta update, or a full update's distance from
    /// the round's global model). The header is checked first: an <see cref="UpdateRejectedException"/> then leaves the
    /// round unchanged. A payload that turns out not to be what the caller vouched for (it ends early, holds a NaN or
    /// infinite value, or <paramref name="source"/> throws) leaves part of it accumulated: the round is then faulted,
    /// <see cref="IAggregationStrategy.Finish"/> and further updates are refused (aggregate the round again with a new
    /// instance, restoring the server state, as the aggregator does on its next attempt), and the exception (an
    /// <see cref="InvalidOperationException"/>, or the source's own) propagates. Use <see cref="IAggregationStrategy.Accumulate"/>
    /// for payloads nobody has verified.
    /// </summary>
    double AccumulateVerified(UpdateHeader header, PayloadChunkSource source);
}

/// <summary>
/// A strategy (typically a decorator) with something to say in the round's <c>result.json</c> notes once the round is
/// finished, such as the privacy spent.
/// </summary>
public interface IReportsRoundNotes
{
    /// <summary>Notes about the last finished round.</summary>
    IReadOnlyList<string> RoundNotes { get; }
}
