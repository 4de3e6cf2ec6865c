using System.Text.Json;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Privacy.SecureAggregation;
using ClinicalFed.Storage;
using ClinicalFed.Storage.Coordination;
using ClinicalFed.Storage.SecureAggregation;

namespace ClinicalFed.Cli.Site;

/// <summary>
/// The site's side of a secure round in the serverless path: each poll does what the round's current phase asks of
/// this site, once — publish its round key, seal shares for the key set, train and upload its signed masked update,
/// reveal shares for the survivors. Its round secrets (ECDH private key, self-mask seed) stay in the work folder
/// (<c>secagg/</c>, owner-only), written before the key is published, so a restarted agent continues with the key the
/// others already use. The aggregator never receives the site's parameters, only the masked vector.
/// </summary>
public sealed partial class SiteAgent
{
    private bool _secure;

    /// <summary>The last thing a secure-round poll did or waits for.</summary>
    internal enum SecureStep { NotInRound, KeyPublished, WaitingForKeySet, SharesSent, WaitingForParticipants, Masked, WaitingForSurvivors, Revealed, Excluded }

    private async Task<SecureStep> SecureStepAsync(RoundManifest manifest, FeatureMatrix matrix, PreparedSite prepared, CancellationToken ct)
    {
        var store = _store as FederationStore ?? throw new NotSupportedException("secure aggregation needs a FederationStore (the folder or blob store) to read the round's objects");
        string f = manifest.Federation, site = _o.Site;
        int round = manifest.Round;
        var sa = new SecAggStore(store, f, round);
        var setup = await sa.GetSetupAsync(ct).ConfigureAwait(false);
        if (setup is null || !setup.Sites.Contains(site)) return SecureStep.NotInRound;
        bool published = (await sa.ListKeySitesAsync(ct).ConfigureAwait(false)).Contains(site);
        var keySet = await sa.GetKeySetAsync(ct).ConfigureAwait(false);
        if (keySet is null && !published)
        {
            using var fresh = LoadOrCreateSecAggSite(setup, create: true)!;
            await UploadAsync(TicketKinds.SecAggKey, sa.KeyPath(site), SecAggJson.Serialize(fresh.PublicKey(MaskWeight(prepared)))).ConfigureAwait(false);
            _log($"round {round}: published this round's secure-aggregation key");
            return SecureStep.KeyPublished;
        }

        if (keySet is null) return SecureStep.WaitingForKeySet;
        if (!keySet.Sites.Contains(site)) return SecureStep.Excluded;
        if ((await sa.ListUnmaskSitesAsync(ct).ConfigureAwait(false)).Contains(site)) return SecureStep.Revealed;
        // From here on the site acts with the key it published: its saved secrets, or nothing.
        using var me = LoadOrCreateSecAggSite(setup, create: false);
        if (me is null)
        {
            _log($"round {round}: the secrets behind this site's published key are not in its work folder any more; it sits this round out");
            return SecureStep.Excluded;
        }

        var participants = await sa.GetParticipantsAsync(ct).ConfigureAwait(false);
        if (participants is null)
        {
            if ((await sa.ListShareSitesAsync(ct).ConfigureAwait(false)).Contains(site)) return SecureStep.WaitingForParticipants;
            var keys = await sa.GetKeysAsync(setup, ct).ConfigureAwait(false);
            await UploadAsync(TicketKinds.SecAggShares, sa.SharesPath(site), SecAggStore.SharesBytes(f, round, site, me.SealShares(keys))).ConfigureAwait(false);
            _log($"round {round}: sent shares sealed for {keys.Count} site(s)");
            return SecureStep.SharesSent;
        }

        if (!participants.Sites.Contains(site)) return SecureStep.Excluded;
        var survivors = await sa.GetSurvivorsAsync(ct).ConfigureAwait(false);
        var participantKeys = await sa.GetKeysAsync(setup, ct).ConfigureAwait(false);
        if (survivors is null)
        {
            if ((await sa.ListMaskedAsync(ct).ConfigureAwait(false)).Contains(site)) return SecureStep.WaitingForSurvivors;
            var (header, parameters, weight, settings, _, _) = await TrainAsync(manifest, matrix, prepared, ct).ConfigureAwait(false);
            int epochs = settings.LocalEpochs;
            SaveOwnModel(round, parameters, weight);
            if (_siteDp is { } dp)
            {
                // Site-level DP with secure aggregation: the update is clipped (TrainAsync, client mode); this site adds
                // its share of the noise, N(0, (z·C/√n)²), so that the n shares in the sum make the central N(0, (z·C)²).
                double std = Privacy.SiteLevelDpMath.SiteNoiseStd(dp.ToOptions(), manifest.Sites.Count);
                Privacy.SiteLevelDpMath.AddGaussianNoise(parameters, std, _dpNoise ??= new Privacy.SecureGaussian(System.Security.Cryptography.RandomNumberGenerator.Create()));
                _log($"round {round}: added distributed site-level DP noise (σ = {std:G4}) before masking");
            }

            var (masked, payload) = me.Mask(participantKeys, parameters, MaskWeight(prepared), _time.GetUtcNow(), header.LocalMetrics);
            masked = Privacy.Signing.MaskedUpdateSignature.Sign(masked, payload, _signingKey!);
            using var file = new MemoryStream();
            MaskedUpdateFile.Write(file, masked, payload);
            await UploadAsync(TicketKinds.SecAggMasked, sa.MaskedPath(site), file.ToArray()).ConfigureAwait(false);
            _log($"round {round}: trained {epochs} epoch(s) on {prepared.TrainRows:N0} rows, personalization weight {weight:0.##}; uploaded the masked update ({payload.Length} ring elements, signed)");
            return SecureStep.Masked;
        }

        if (!survivors.Survivors.Contains(site)) return SecureStep.Excluded;
        var reveal = me.Reveal(participantKeys, survivors, owner => sa.GetShareAsync(owner, site, ct).GetAwaiter().GetResult());
        await UploadAsync(TicketKinds.SecAggUnmask, sa.UnmaskPath(site), SecAggJson.Serialize(reveal)).ConfigureAwait(false);
        _log($"round {round}: revealed shares for {survivors.Survivors.Count} survivor(s) and {survivors.Dropped.Count} dropped site(s)");
        DeleteSecAggState(round); // the round's secrets are no longer needed
        return SecureStep.Revealed;

        async Task UploadAsync(string kind, string path, byte[] content)
        {
            try
            {
                await _uploader.UploadSecAggAsync(f, site, round, kind, path, content, ct).ConfigureAwait(false);
            }
            catch (StoreObjectExistsException)
            {
                _log($"round {round}: {kind} was already uploaded or its phase closed; continuing");
            }
        }
    }

    private Privacy.SecureGaussian? _dpNoise;

    /// <summary>The weight a site masks with: its training rows, or 1 each under site-level DP (uniform weighting).</summary>
    private long MaskWeight(PreparedSite prepared) => _siteDp is null ? prepared.TrainRows : 1;

    private string SecAggFolder => Path.Combine(Path.GetFullPath(_o.WorkDirectory), "secagg");

    private string SecAggStatePath(int round) => Path.Combine(SecAggFolder, $"{_o.Federation}-round-{round:D5}.json");

    /// <summary>
    /// The round's secrets from the work folder; when there are none, new ones saved there (owner-only) before anything
    /// is published if <paramref name="create"/>, else null.
    /// </summary>
    private SecAggSite? LoadOrCreateSecAggSite(SecAggSetup setup, bool create)
    {
        var path = SecAggStatePath(setup.Round);
        if (File.Exists(path))
        {
            var state = SecAggJson.Deserialize<SecAggSiteState>(File.ReadAllBytes(path), path);
            if (state.Site != _o.Site) throw new InvalidOperationException($"{path}: the saved round secrets are site '{state.Site}''s, not '{_o.Site}''s (a work folder copied from another site?)");
            return new SecAggSite(setup, state);
        }

        if (!create) return null;

        var site = new SecAggSite(setup, _o.Site);
        Directory.CreateDirectory(SecAggFolder);
        var tmp = path + ".tmp";
        using (var s = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            s.Write(SecAggJson.Serialize(site.ExportState()));
            s.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
        return site;
    }

    private void DeleteSecAggState(int round)
    {
        try { File.Delete(SecAggStatePath(round)); } catch (IOException) { }
    }

    private sealed record OwnModel(float[] Parameters, double Weight);

    private string OwnModelPath(int round) => Path.Combine(SecAggFolder, $"{_o.Federation}-own-{round:D5}.json");

    /// <summary>The site's own model of a secure round and its personalization weight, kept locally for its personalized model.</summary>
    private void SaveOwnModel(int round, float[] parameters, double weight)
    {
        Directory.CreateDirectory(SecAggFolder);
        Commands.StatsCommand.WriteAtomically(OwnModelPath(round), JsonSerializer.Serialize(new OwnModel(parameters, weight)));
    }

    private OwnModel? LoadOwnModel(int round)
    {
        var path = OwnModelPath(round);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<OwnModel>(File.ReadAllText(path)) is { Parameters: not null } own
                ? own : throw new InvalidDataException($"{path}: the site's own model of round {round} has no parameters");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: the site's own model of round {round} is not readable ({e.Message}); delete it to skip the personalized evaluation", e);
        }
    }
}
