namespace ClinicalFed.Storage;

/// <summary>
/// One update as the read-ahead delivers it: its header and its payload read and verified (in whatever form the
/// reader produced), or why it was rejected.
/// </summary>
internal sealed record ReadUpdate(string Site, UpdateHeaderAndPayload? Update, string? Rejection);

/// <summary>A verified header with its payload, read off the consumer's thread.</summary>
internal sealed record UpdateHeaderAndPayload(ClinicalFed.Federation.UpdateHeader Header, object Payload);

/// <summary>
/// Reads a round's updates ahead of the aggregator, in order: up to <c>window</c> updates are opened, read and
/// verified (framing, header, SHA-256, finite values) on the thread pool while the consumer accumulates the current
/// one, so hashing, I/O and accumulation overlap on several cores and against a remote store's latency. Results come
/// back in the order of the sites, so the aggregation (and its floating-point arithmetic) is exactly the sequential
/// one. Memory: at most <c>window + 1</c> payloads at once, whatever the number of sites.
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
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        _sites = sites;
        _read = read;
        _window = window;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    /// <summary>Reads ahead by the number of cores (2 to 4): enough to keep them busy, a constant number of payloads in memory.</summary>
    public static int DefaultWindow => int.TryParse(Environment.GetEnvironmentVariable("CF_RA"), out var w) ? w : Math.Clamp(Environment.ProcessorCount, 2, 4);

    /// <summary>The next site's update, in order, or null after the last.</summary>
    public async Task<ReadUpdate?> NextAsync()
    {
        Fill();
        if (_inFlight.Count == 0) return null;
        var next = _inFlight.Dequeue();
        Fill(); // keep the window full while the consumer works on this one
        return await next.ConfigureAwait(false);
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
                await _inFlight.Dequeue().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Dropped: the consumer stopped (or failed) before it needed this update.
            }
        }

        _cancel.Dispose();
    }
}
