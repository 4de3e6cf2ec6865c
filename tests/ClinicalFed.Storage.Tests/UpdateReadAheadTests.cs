namespace ClinicalFed.Storage.Tests;

public sealed class UpdateReadAheadTests
{
    private static readonly string[] Sites = Enumerable.Range(0, 12).Select(i => $"s{i:D2}").ToArray();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Updates_come_back_in_site_order_with_at_most_the_window_in_flight(int window)
    {
        int inFlight = 0, maxInFlight = 0;
        var random = new Random(window);
        var delays = Sites.Select(_ => random.Next(0, 15)).ToArray();
        async Task<ReadUpdate> Read(string site, CancellationToken ct)
        {
            int now = Interlocked.Increment(ref inFlight);
            lock (Sites) maxInFlight = Math.Max(maxInFlight, now);
            await Task.Delay(delays[Array.IndexOf(Sites, site)], ct); // later sites often finish first
            Interlocked.Decrement(ref inFlight);
            return new ReadUpdate(site, null, "read");
        }

        var order = new List<string>();
        await using (var reads = new UpdateReadAhead(Sites, Read, window, CancellationToken.None))
        {
            while (await reads.NextAsync() is { } read) order.Add(read.Site);
        }

        Assert.Equal(Sites, order);
        Assert.InRange(maxInFlight, 1, Math.Max(1, window));
    }

    [Fact]
    public async Task Stopping_early_waits_for_the_reads_in_flight()
    {
        int running = 0;
        async Task<ReadUpdate> Read(string site, CancellationToken ct)
        {
            Interlocked.Increment(ref running);
            try
            {
                await Task.Delay(50, CancellationToken.None);
                return new ReadUpdate(site, null, null);
            }
            finally
            {
                Interlocked.Decrement(ref running);
            }
        }

        await using (var reads = new UpdateReadAhead(Sites, Read, 3, CancellationToken.None))
        {
            Assert.Equal("s00", (await reads.NextAsync())!.Site);
        }

        Assert.Equal(0, Volatile.Read(ref running));
    }

    [Fact]
    public void The_window_keeps_the_payloads_in_flight_within_budget()
    {
        Assert.Equal(UpdateReadAhead.MaxWindow, UpdateReadAhead.WindowFor(4_000_000));
        Assert.Equal(2, UpdateReadAhead.WindowFor(100L << 20));
        Assert.Equal(0, UpdateReadAhead.WindowFor(1L << 30)); // a 1 GiB model is read one update at a time
    }
}
