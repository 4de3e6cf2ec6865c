namespace ClinicalFed.Federation;

/// <summary>
/// A server-side aggregation strategy, driven one round at a time and one update at a time so that memory stays
/// O(parameters) whatever the number of sites:
/// <code>
/// strategy.RestoreState(previousState);   // optional: resume a stateful strategy in a fresh process
/// strategy.Begin(globalModel, manifest);
/// foreach (update) strategy.Accumulate(header, payload);   // payload buffer may be reused right after the call
/// float[] newGlobal = strategy.Finish();
/// ServerState? state = strategy.CaptureState();            // persist for the next round
/// </code>
/// </summary>
public interface IAggregationStrategy
{
    /// <summary>The strategy's name (a <see cref="StrategyNames"/> value).</summary>
    string Name { get; }

    /// <summary>The validated options the strategy was built with.</summary>
    StrategyOptions Options { get; }

    /// <summary>Loads the server state a previous round captured (same strategy). Not allowed while a round is open.</summary>
    void RestoreState(ServerState state);

    /// <summary>
    /// Opens a round. <paramref name="global"/> is the model named by the manifest's <c>global_model</c> (null in a
    /// round that starts from zeros); it must carry float32 parameters of the manifest's dimension.
    /// </summary>
    void Begin(ModelFile? global, RoundManifest manifest);

    /// <summary>
    /// Adds one update to the round's running weighted sum. Throws <see cref="UpdateRejectedException"/>, leaving the
    /// round unchanged, when the update does not belong to this round or is unusable. The span is not kept.
    /// </summary>
    void Accumulate(UpdateHeader header, ReadOnlySpan<float> parameters);

    /// <summary>Closes the round and returns the new global parameters (a new array owned by the caller).</summary>
    float[] Finish();

    /// <summary>The server state to persist after <see cref="Finish"/>; null for stateless strategies.</summary>
    ServerState? CaptureState();

    /// <summary>Updates accepted in the current (or last) round.</summary>
    int AcceptedCount { get; }
}
