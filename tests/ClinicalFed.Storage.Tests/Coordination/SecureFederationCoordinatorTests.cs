using System.Security.Cryptography;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;
using ClinicalFed.Privacy.Signing;
using ClinicalFed.Storage.Coordination;
using ClinicalFed.Storage.SecureAggregation;

namespace ClinicalFed.Storage.Tests.Coordination;

/// <summary>
/// Secure aggregation driven by the serverless tick: five sites go through keys, shares, masked uploads and reveals,
/// each step through its ticket; one site drops after sending its shares and one uploads a masked vector whose
/// signature does not verify. The round completes with the three survivors, and the global model is their
/// example-weighted mean within the fixed-point error.
/// </summary>
public sealed class SecureFederationCoordinatorTests : IDisposable
{
    private const string F = "secure-study";
    private readonly TempStore _temp = new();
    private readonly ManualClock _clock = new(Fixtures.T0);

    public void Dispose() => _temp.Dispose();

    private LocalFolderStore Store => _temp.Store;

    /// <summary>Two rounds of 1,000 s, quorum 2, FedAvg, with secure aggregation (default threshold).</summary>
    private static FederationConfig Settings(int dimension) => new()
    {
        Federation = F,
        Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = dimension, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
        Strategy = new StrategySpec { Name = StrategyNames.FedAvg },
        Rounds = 2, Quorum = 2, RoundSeconds = 1000, Statistics = false, CreatedAt = Fixtures.T0,
        SecureAggregation = new SecureAggregationConfig(),
    };

    [Fact]
    public async Task A_secure_round_runs_phase_by_phase_survives_a_dropout_and_rejects_a_bad_signature()
    {
        string[] names = ["A", "B", "C", "D", "E"];
        var settings = Settings(dimension: 4);
        var store = new TicketingStore(Store);
        var c = new FederationCoordinator(store, _clock);
        await c.CreateFederationAsync(settings);
        var signing = names.ToDictionary(n => n, _ => SigningKeys.Create());
        var keys = new Dictionary<string, string>();
        foreach (var n in names) keys[n] = (await c.RegisterSiteAsync(F, n, SigningKeys.PublicKeyPem(signing[n]))).Key;
        async Task<TicketRefusal> Refused(string site, string kind) =>
            (await Assert.ThrowsAsync<TicketRefusedException>(() => c.IssueTicketAsync(F, site, keys[site], kind))).Reason;

        Assert.Equal("round_opened", (await c.TickAsync(F)).Action);
        var sa = new SecAggStore(Store, F, 0);
        var setup = (await sa.GetSetupAsync())!;
        Assert.Equal(names, setup.Sites);
        Assert.Equal(3, setup.Threshold);
        Assert.Equal(TicketRefusal.NotOpen, await Refused("A", TicketKinds.Update)); // never a plain update
        Assert.Equal(TicketRefusal.NotOpen, await Refused("A", TicketKinds.SecAggShares)); // the key phase is open

        float[][] updates = [[1, 2, 3, 4], [2, 2, 2, 2], [-1, 0, 1, 2], [9, 9, 9, 9], [5, 5, 5, 5]];
        long[] examples = [10, 30, 60, 20, 40];
        var sites = names.ToDictionary(n => n, n => new SecAggSite(setup, n));
        try
        {
            // Phase 1: keys (each through its ticket).
            foreach (var n in names)
            {
                Assert.Equal(sa.KeyPath(n), (await c.IssueTicketAsync(F, n, keys[n], TicketKinds.SecAggKey)).Path);
                await sa.PutKeyAsync(sites[n].PublicKey(examples[Array.IndexOf(names, n)]));
                if (n == "D") Assert.Contains("keys from 4 of 5", (await c.TickAsync(F)).Message);
            }
            Assert.Equal(TicketRefusal.NotOpen, await Refused("A", TicketKinds.SecAggKey)); // already published
            Assert.Equal("waiting", (await c.TickAsync(F)).Action);
            Assert.Equal(names, (await sa.GetKeySetAsync())!.Sites.ToArray());
            Assert.Equal(TicketRefusal.NotOpen, await Refused("B", TicketKinds.SecAggKey)); // the key phase closed

            // Phase 2: shares, sealed for the key set.
            var keySet = await sa.GetKeysAsync(setup);
            foreach (var n in names)
            {
                Assert.Equal(sa.SharesPath(n), (await c.IssueTicketAsync(F, n, keys[n], TicketKinds.SecAggShares)).Path);
                await sa.PutSharesAsync(n, sites[n].SealShares(keySet));
            }
            Assert.Contains("masked updates from 0 of 5", (await c.TickAsync(F)).Message);
            var participants = await sa.GetKeysAsync(setup);

            // Phase 3: masked uploads. D drops; E's header is re-addressed to round 1 after signing (a replay).
            foreach (var n in new[] { "A", "B", "C", "E" })
            {
                int i = Array.IndexOf(names, n);
                Assert.Equal(sa.MaskedPath(n), (await c.IssueTicketAsync(F, n, keys[n], TicketKinds.SecAggMasked)).Path);
                var (header, payload) = sites[n].Mask(participants, updates[i], examples[i], _clock.Now);
                header = MaskedUpdateSignature.Sign(header, payload, signing[n]);
                if (n == "E") header = header with { Round = 1 };
                await sa.PutMaskedAsync(header, payload);
            }
            Assert.Contains("masked updates from 4 of 5", (await c.TickAsync(F)).Message);
            var status = (await c.GetStatusAsync(F))!;
            Assert.Equal(["A", "B", "C", "E"], status.Uploaded.Order(StringComparer.Ordinal));
            Assert.Equal(["D"], status.Missing);
            _clock.Now = FederationCoordinator.SecAggPhaseEnd((await Store.GetManifestAsync(F, 0))!, FederationCoordinator.SecAggPhaseEnds.Masked);
            Assert.Contains("0 of the 3 reveals", (await c.TickAsync(F)).Message);
            var survivors = (await sa.GetSurvivorsAsync())!;
            Assert.Equal(["A", "B", "C"], survivors.Survivors);
            Assert.Equal(["D", "E"], survivors.Dropped);
            Assert.Contains("round 1", Assert.Single(survivors.Rejected!).Reason);
            Assert.Equal(TicketRefusal.NotOpen, await Refused("D", TicketKinds.SecAggUnmask)); // not a survivor

            // Phase 4: reveals; the round closes with the survivors' mean (D's and E's masks removed from their key shares).
            foreach (var n in survivors.Survivors)
            {
                await c.IssueTicketAsync(F, n, keys[n], TicketKinds.SecAggUnmask);
                await sa.PutUnmaskAsync(sites[n].Reveal(participants, survivors, owner => sa.GetShareAsync(owner, n).GetAwaiter().GetResult()));
            }
            var closed = await c.TickAsync(F);
            Assert.Equal(("round_opened", 1), (closed.Action, closed.Round));
            var result = (await Store.GetRoundResultAsync(F, 0))!;
            Assert.Equal(RoundStatuses.Aggregated, result.Status);
            Assert.Equal(["A", "B", "C"], result.Accepted.Select(a => a.Site));
            Assert.Equal("E", Assert.Single(result.Rejected).Site);
            var global = (await Store.GetGlobalModelAsync(F, 0))!.Parameters.ToArray();
            for (int j = 0; j < 4; j++)
            {
                double expected = (10.0 * updates[0][j] + 30.0 * updates[1][j] + 60.0 * updates[2][j]) / 100.0;
                Assert.True(Math.Abs(global[j] - expected) <= 1e-4 * Math.Max(1, Math.Abs(expected)), $"coordinate {j}: {global[j]} vs {expected}");
            }
            Assert.Empty(await Store.ListUpdatesAsync(F, 0)); // no plain update was ever stored

            // An aggregation that died after result.json and before global.cfm is finished from the same objects.
            File.Delete(Store.FullPath(StoreLayout.GlobalModel(F, 0)));
            var again = await new SecureRoundAggregator(Store, _clock).AggregateAsync(F, 0);
            Assert.Equal(RoundOutcomeStatus.Aggregated, again.Status);
            Assert.Equal(global, (await Store.GetGlobalModelAsync(F, 0))!.Parameters.ToArray());
            Assert.Equal(RoundOutcomeStatus.AlreadyCompleted, (await new SecureRoundAggregator(Store, _clock).AggregateAsync(F, 0)).Status);
            Assert.NotNull(await new SecAggStore(Store, F, 1).GetSetupAsync()); // the next round is secure too
        }
        finally
        {
            foreach (var s in sites.Values) s.Dispose();
            foreach (var k in signing.Values) k.Dispose();
        }
    }

    [Fact]
    public async Task A_secure_round_without_enough_keys_closes_without_a_model_and_the_next_starts_from_the_same_model()
    {
        var settings = Settings(dimension: 2);
        var c = new FederationCoordinator(Store, _clock);
        await c.CreateFederationAsync(settings);
        foreach (var n in new[] { "A", "B", "C" }) await c.RegisterSiteAsync(F, n);
        await c.TickAsync(F);
        var sa = new SecAggStore(Store, F, 0);
        using var a = new SecAggSite((await sa.GetSetupAsync())!, "A");
        await sa.PutKeyAsync(a.PublicKey(5));
        _clock.Now = Fixtures.T0.AddSeconds(201); // past the key phase (20 % of 1000 s)
        var outcome = await c.TickAsync(F);
        Assert.Equal(("round_opened", 1), (outcome.Action, outcome.Round));
        var result = (await Store.GetRoundResultAsync(F, 0))!;
        Assert.Equal(RoundStatuses.QuorumNotMet, result.Status);
        Assert.Contains(result.Notes, n => n.Contains("fewer than the threshold 2", StringComparison.Ordinal));
        Assert.Null((await Store.GetManifestAsync(F, 1))!.GlobalModel);
    }

    [Fact]
    public async Task Site_level_dp_with_secure_aggregation_is_distributed_and_accounted_by_the_survivors_noise()
    {
        var dp = new SiteLevelDpConfig { ClipNorm = 1, NoiseMultiplier = 1, Mode = ClinicalFed.Privacy.SiteDpModes.Client };
        var server = Settings(dimension: 2) with { SiteLevelDp = dp with { Mode = ClinicalFed.Privacy.SiteDpModes.Server }, Strategy = StrategySpec.From(new FedAvgOptions { Weighting = UpdateWeighting.Uniform }) };
        Assert.Contains(Assert.Throws<FederationDataException>(() => server.EnsureValid()).Problems, p => p.Contains("needs 'site_level_dp.mode' client", StringComparison.Ordinal));

        var settings = Settings(dimension: 2) with { SiteLevelDp = dp, Strategy = StrategySpec.From(new FedAvgOptions { Weighting = UpdateWeighting.Uniform }) };
        var c = new FederationCoordinator(Store, _clock);
        await c.CreateFederationAsync(settings);
        string[] names = ["A", "B", "C"];
        foreach (var n in names) await c.RegisterSiteAsync(F, n);
        await c.TickAsync(F);
        var sa = new SecAggStore(Store, F, 0);
        var setup = (await sa.GetSetupAsync())!;
        var sites = names.ToDictionary(n => n, n => new SecAggSite(setup, n));
        try
        {
            foreach (var n in names) await sa.PutKeyAsync(sites[n].PublicKey(1)); // uniform weighting: weight 1 each
            await c.TickAsync(F);
            var keys = await sa.GetKeysAsync(setup);
            foreach (var n in names) await sa.PutSharesAsync(n, sites[n].SealShares(keys));
            await c.TickAsync(F);
            keys = await sa.GetKeysAsync(setup);
            // C drops after its shares: only two of the three noise shares reach the sum.
            foreach (var n in new[] { "A", "B" }) { var (h, y) = sites[n].Mask(keys, [0.3f, -0.4f], 1, _clock.Now); await sa.PutMaskedAsync(h, y); }
            _clock.Now = FederationCoordinator.SecAggPhaseEnd((await Store.GetManifestAsync(F, 0))!, FederationCoordinator.SecAggPhaseEnds.Masked);
            await c.TickAsync(F);
            var survivors = (await sa.GetSurvivorsAsync())!;
            foreach (var n in survivors.Survivors)
                await sa.PutUnmaskAsync(sites[n].Reveal(keys, survivors, owner => sa.GetShareAsync(owner, n).GetAwaiter().GetResult()));
            Assert.Equal("round_opened", (await c.TickAsync(F)).Action);
        }
        finally
        {
            foreach (var site in sites.Values) site.Dispose();
        }

        var expected = new ClinicalFed.Privacy.SiteDpAccountant(dp.ToOptions(), 3).Spend(3, Math.Sqrt(2.0 / 3));
        var note = Assert.Single((await Store.GetRoundResultAsync(F, 0))!.Notes, n => n.Contains("distributed noise", StringComparison.Ordinal));
        Assert.Contains("2 of 3 noise shares", note);
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"ε = {expected:F4}"), note);
        AssertClose([0.3f, -0.4f], (await Store.GetGlobalModelAsync(F, 0))!.Parameters.ToArray());
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4, $"{i}: {actual[i]} vs {expected[i]}");
    }
}
