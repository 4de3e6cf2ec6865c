using System.Diagnostics;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;

namespace ClinicalFed.Storage.SecureAggregation;

/// <summary>One site's input to an in-process secure round.</summary>
public sealed record SecureSiteInput(string Site, float[] Parameters, long ExampleCount, IReadOnlyDictionary<string, double>? LocalMetrics = null,
    System.Security.Cryptography.ECDsa? SigningKey = null);

/// <summary>What an in-process secure round cost and decided.</summary>
public sealed record SecureRoundRun(RoundOutcome Outcome, double SiteSeconds, double AggregatorSeconds, IReadOnlyList<string> Dropped, long MaskedBytes);

/// <summary>
/// Runs every phase of a secure-aggregation round through the store with the sites in this process, as
/// <c>simulate --secure-aggregation</c> does: setup, keys, sealed shares, masked uploads, survivors, reveals, then
/// <see cref="SecureRoundAggregator"/>. The manifest must already be in the store. Sites listed in
/// <paramref name="dropAfterMasking"/> publish keys and shares but never upload their masked update nor reveal.
/// </summary>
public static class InProcessSecureRound
{
    public static async Task<SecureRoundRun> RunAsync(FederationStore store, RoundManifest manifest, IReadOnlyList<SecureSiteInput> inputs,
        IReadOnlySet<string>? dropAfterMasking = null, int? threshold = null, double clipBound = RingEncoding.DefaultClipBound,
        TimeProvider? time = null, CancellationToken ct = default)
    {
        time ??= TimeProvider.System;
        var sa = new SecAggStore(store, manifest.Federation, manifest.Round);
        var names = inputs.Select(i => i.Site).Order(StringComparer.Ordinal).ToArray();
        var setup = new SecAggSetup
        {
            Federation = manifest.Federation, Round = manifest.Round, Sites = names,
            Threshold = threshold ?? SecAggSetup.DefaultThreshold(names.Length), ClipBound = clipBound,
        };
        await sa.PutSetupAsync(setup, ct).ConfigureAwait(false);
        var siteWatch = new Stopwatch();
        var sites = inputs.ToDictionary(i => i.Site, i => new SecAggSite(setup, i.Site));
        try
        {
            siteWatch.Start();
            foreach (var i in inputs) await sa.PutKeyAsync(sites[i.Site].PublicKey(i.ExampleCount), ct).ConfigureAwait(false);
            var keys = await sa.GetKeysAsync(setup, ct).ConfigureAwait(false);
            foreach (var i in inputs) await sa.PutSharesAsync(i.Site, sites[i.Site].SealShares(keys), ct).ConfigureAwait(false);
            long maskedBytes = 0;
            foreach (var i in inputs)
            {
                if (dropAfterMasking?.Contains(i.Site) == true) continue;   // masked, but the upload never arrives
                var (header, payload) = sites[i.Site].Mask(keys, i.Parameters, i.ExampleCount, time.GetUtcNow(), i.LocalMetrics);
                if (i.SigningKey is not null) header = Privacy.Signing.MaskedUpdateSignature.Sign(header, payload, i.SigningKey);
                await sa.PutMaskedAsync(header, payload, ct).ConfigureAwait(false);
                maskedBytes += 4L * payload.Length;
            }
            siteWatch.Stop();
            var aggregatorWatch = Stopwatch.StartNew();
            var aggregator = new SecureRoundAggregator(store, time);
            var survivors = await aggregator.CloseMaskingAsync(manifest.Federation, manifest.Round, ct).ConfigureAwait(false);
            aggregatorWatch.Stop();
            siteWatch.Start();
            foreach (var s in survivors.Survivors)
            {
                var reveal = sites[s].Reveal(keys, survivors, owner => sa.GetShareAsync(owner, s, ct).GetAwaiter().GetResult());
                await sa.PutUnmaskAsync(reveal, ct).ConfigureAwait(false);
            }
            siteWatch.Stop();
            aggregatorWatch.Start();
            var outcome = await aggregator.AggregateAsync(manifest.Federation, manifest.Round, ct).ConfigureAwait(false);
            aggregatorWatch.Stop();
            return new SecureRoundRun(outcome, siteWatch.Elapsed.TotalSeconds, aggregatorWatch.Elapsed.TotalSeconds, survivors.Dropped, maskedBytes);
        }
        finally
        {
            foreach (var s in sites.Values) s.Dispose();
        }
    }
}
