using ClinicalFed.Federation;

namespace ClinicalFed.Trees;

/// <summary>
/// A server-side strategy over tree-ensemble updates, driven like <see cref="IAggregationStrategy"/> one round and one
/// update at a time:
/// <code>
/// strategy.Begin(globalModel, manifest);                  // globalModel: a tree-ensemble model file, or null
/// foreach (update) strategy.Accumulate(header, ensemble);
/// TreeEnsembleModel newGlobal = strategy.Finish();
/// </code>
/// Memory is O(the new global model): an update's ensemble is kept only as far as it becomes part of the result.
/// </summary>
public interface ITreeAggregationStrategy : IRoundStrategy
{
    /// <summary>
    /// Adds one site's ensemble. Throws <see cref="UpdateRejectedException"/>, leaving the round unchanged, when the
    /// update does not belong to this round or is unusable.
    /// </summary>
    void Accumulate(UpdateHeader header, TreeEnsembleModel ensemble);

    /// <summary>Closes the round and returns the new global ensemble.</summary>
    TreeEnsembleModel Finish();
}

/// <summary>
/// What the tree strategies share: the manifest must train model kind trees, a global model must be a tree ensemble
/// of the manifest's features, and an update must be a tree-ensemble update of the open round from an expected site
/// that has not contributed yet, from at least one example, whose ensemble reads the manifest's features. Tree
/// strategies keep no server state.
/// </summary>
public abstract class TreeAggregationStrategy : RoundStrategy, ITreeAggregationStrategy
{
    protected TreeAggregationStrategy(TreeStrategyOptions options) : base(options)
    {
    }

    /// <summary>The ensemble of the round's global model; null in a round that starts from nothing.</summary>
    protected TreeEnsembleModel? Global { get; private set; }

    protected sealed override bool AggregatesTrees => true;

    /// <summary>
    /// The <c>update_norm</c> a round result records for a tree update: the L2 norm of the weighted leaf values of the
    /// trees it adds to <paramref name="global"/> when it extends it, of all its trees otherwise.
    /// </summary>
    public static double UpdateNorm(TreeEnsembleModel update, TreeEnsembleModel? global)
    {
        ArgumentNullException.ThrowIfNull(update);
        return update.LeafNorm(global is not null && update.Extends(global) ? global.Trees.Count : 0);
    }

    public void Accumulate(UpdateHeader header, TreeEnsembleModel ensemble)
    {
        ArgumentNullException.ThrowIfNull(ensemble);
        var reasons = CheckUpdate(header);
        if (header.ExampleCount <= 0) reasons.Add($"example_count is {header.ExampleCount}; an update must come from at least one example");
        if (ensemble.FeatureCount != header.Dimension) reasons.Add($"the ensemble reads {ensemble.FeatureCount} features but the header says {header.Dimension}");
        else CheckEnsemble(ensemble, reasons);
        if (reasons.Count > 0) throw new UpdateRejectedException(header.Site ?? "(no site)", reasons);

        Add(header, ensemble);
        Accept(header.Site);
    }

    public TreeEnsembleModel Finish() => FinishRound(Result);

    protected sealed override void StartRound(ModelFile? global, RoundManifest manifest)
    {
        Global = global?.TreeEnsemble;
        OnBegin(manifest);
    }

    protected sealed override ServerState? State() => null;

    /// <summary>Tree strategies keep no server state, so there is none to load.</summary>
    protected sealed override void LoadState(ServerState state) =>
        throw new ArgumentException($"server state of round {state.Header.Round} cannot be restored: {Name} keeps no server state", nameof(state));

    /// <summary>Clears the round's running state for a round of <paramref name="manifest"/>.</summary>
    protected abstract void OnBegin(RoundManifest manifest);

    /// <summary>Adds reasons to reject an ensemble that reads the round's features.</summary>
    protected virtual void CheckEnsemble(TreeEnsembleModel ensemble, List<string> reasons)
    {
    }

    /// <summary>Takes in an accepted update.</summary>
    protected abstract void Add(UpdateHeader header, TreeEnsembleModel ensemble);

    /// <summary>The new global ensemble from the accepted updates.</summary>
    protected abstract TreeEnsembleModel Result();
}

/// <summary>
/// <c>tree-bagging</c>: the new global model is the sites' ensembles averaged in log-odds, weighted by
/// <c>example_count</c> (or uniformly): exactly <see cref="TreeBagging.Merge"/> of the accepted updates listed in the
/// order the manifest lists the sites, whatever order they were accumulated in. Streaming: a
/// <see cref="TreeBaggingMerger"/> keeps the accepted ensembles, which together are the merged model, and nothing
/// else.
/// </summary>
public sealed class TreeBaggingStrategy(TreeBaggingOptions? options = null) : TreeAggregationStrategy(options ?? new TreeBaggingOptions())
{
    private TreeBaggingMerger _merger = new();
    private Dictionary<string, int> _siteOrder = [];

    protected override void OnBegin(RoundManifest manifest)
    {
        _merger = new TreeBaggingMerger();
        _siteOrder = manifest.Sites.Select((site, i) => (site, i)).ToDictionary(x => x.site, x => x.i, StringComparer.Ordinal);
    }

    protected override void Add(UpdateHeader header, TreeEnsembleModel ensemble) =>
        _merger.Add(ensemble, Options.Weighting == UpdateWeighting.Examples ? header.ExampleCount : 1.0, _siteOrder[header.Site]);

    protected override TreeEnsembleModel Result() => _merger.Merge();
}

/// <summary>
/// <c>tree-cyclic</c>: one site's turn of cyclic boosting. The round expects exactly one site; its update is the whole
/// ensemble it grew on top of the round's global model (which it must extend: same features and base score, the
/// global trees and weights first), and that ensemble is the new global model.
/// </summary>
public sealed class TreeCyclicStrategy(TreeCyclicOptions? options = null) : TreeAggregationStrategy(options ?? new TreeCyclicOptions())
{
    private TreeEnsembleModel? _turn;

    protected override void CheckBegin(RoundManifest manifest, List<string> problems)
    {
        if (manifest.Sites.Count != 1)
            problems.Add($"a {Name} round is one site's turn, so the manifest must expect exactly one site, not {manifest.Sites.Count}");
    }

    protected override void OnBegin(RoundManifest manifest) => _turn = null;

    protected override void CheckEnsemble(TreeEnsembleModel ensemble, List<string> reasons)
    {
        if (Global is not null && !ensemble.Extends(Global))
            reasons.Add($"the ensemble does not extend the round's global model: its base score and first {Global.Trees.Count} trees and weights must be the global model's");
    }

    protected override void Add(UpdateHeader header, TreeEnsembleModel ensemble) => _turn = ensemble;

    protected override TreeEnsembleModel Result() => _turn!;
}
