namespace ClinicalFed.Storage;

/// <summary>
/// One update as the read-ahead delivers it: its header and its payload read and verified (in whatever form the
/// reader produced), or why it was rejected.
/// </summary>
internal sealed record ReadUpdate(string Site, UpdateHeaderAndPayload? Update, string? Rejection);

/// <summary>A verified header with its payload, read off the consumer's thread.</summary>
internal sealed record UpdateHeaderAndPayload(ClinicalFed.Federation.UpdateHeader Header, object Payload);

/// <summary>
/// Reads a round's updates ahead of the aggregator, in order: up to <c>window</c> updates at once are opened, read and
/// verified (framing, header, SHA-256, finite values) on the thread pool while the consumer accumulates the current
/// one, so hashing, I/O and accumulation overlap on several cores and against a remote store's latency. Results come
/// back in the order of the sites, so the aggregation (and its floating-point arithmetic) is exactly the sequential
/// one. Memory: at most <c>window + 1</c> payloads at once, whatever the number of sites (with window 0, each update
/// is read in turn on the consumer's thread).
/// </summary>
internal sealed class UpdateReadAhead : IAsyncDisposable
{
    private readonly IReadOnlyList<string> _sites;
    private readonly Func<string, CancellationToken, Task<ReadUpdate>> _read;
    private readonly int _window;
    private readonly CancellationTokenSource _cancel;
    private readonly Queue<Task<ReadUpdate>> _inFlight = new();
    private int _next;

    public UpdateReadAhead(IReadOnlyList<string> sites, Func<string, CancellationToken, Task<ReadUpdate>> read, int window, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(window);
        _sites = sites;
        _read = read;
        _window = window;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    /// <summary>The most updates read ahead at once.</summary>
    public const int MaxWindow = 4;

    /// <summary>The most payload bytes read ahead at once (256 MiB).</summary>
    public const long MaxBytesInFlight = 256L << 20;

    /// <summary>
    /// How many updates of <paramref name="payloadBytes"/> each to read ahead: up to <see cref="MaxWindow"/> (enough
    /// to overlap hashing with I/O and to hide a blob store's latency) within <see cref="MaxBytesInFlight"/>, and 0
    /// (each update read in turn, one buffer) for payloads larger than that.
    /// </summary>
    public static int WindowFor(long payloadBytes) => (int)Math.Clamp(MaxBytesInFlight / Math.Max(1, payloadBytes), 0, MaxWindow);

    /// <summary>The next site's update, in order, or null after the last.</summary>
    public async Task<ReadUpdate?> NextAsync()
    {
        if (_window == 0) return _next < _sites.Count ? await _read(_sites[_next++], _cancel.Token).ConfigureAwait(false) : null;
        Fill();
        if (_inFlight.Count == 0) return null;
        var next = await _inFlight.Dequeue().ConfigureAwait(false);
        Fill(); // keep the window full while the consumer works on this one
        return next;
    }

    private void Fill()
    {
        while (_inFlight.Count < _window && _next < _sites.Count)
        {
            string site = _sites[_next++];
            var token = _cancel.Token;
            _inFlight.Enqueue(Task.Run(() => _read(site, token), token));
        }
    }

    /// <summary>Stops reading ahead and waits for reads in flight (their results are dropped).</summary>
    public async ValueTask DisposeAsync()
    {
        await _cancel.CancelAsync().ConfigureAwait(false);
        while (_inFlight.Count > 0)
        {
            try
            {
                var dropped = await _inFlight.Dequeue().ConfigureAwait(false);
                if (dropped.Update?.Payload is IAsyncDisposable owned) await owned.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Dropped: the consumer stopped (or failed) before it needed this update.
            }
        }

        _cancel.Dispose();
    }
}
