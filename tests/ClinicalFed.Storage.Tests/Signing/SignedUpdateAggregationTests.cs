using System.Security.Cryptography;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.Signing;
using ClinicalFed.Storage;
using ClinicalFed.Testing;

namespace ClinicalFed.Storage.Tests.Signing;

/// <summary>
/// The aggregator verifies update signatures against the sites' keys in federation.json and rejects, with the reason
/// in result.json, what does not verify; the round completes with the others.
/// </summary>
public sealed class SignedUpdateAggregationTests : IDisposable
{
    private readonly TempStore _temp = new();
    private readonly ManualClock _clock = new(Fixtures.T0.AddHours(1));
    private readonly Dictionary<string, ECDsa> _keys = new(StringComparer.Ordinal);

    private LocalFolderStore Store => _temp.Store;

    public void Dispose()
    {
        foreach (var key in _keys.Values) key.Dispose();
        _temp.Dispose();
    }

    private ECDsa Key(string site) => _keys.TryGetValue(site, out var k) ? k : _keys[site] = SigningKeys.Create();

    /// <summary>federation.json with signing keys for <paramref name="withKeys"/>, and the round-0 manifest expecting <paramref name="sites"/>.</summary>
    private async Task SetUpAsync(string[] sites, string[] withKeys, bool requireSignatures = false)
    {
        await Store.PutFederationAsync(new FederationConfig
        {
            Federation = Fixtures.Federation,
            Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = 3, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
            Strategy = new StrategySpec { Name = StrategyNames.FedAvg }, Rounds = 3, Quorum = 1, RoundSeconds = 3600, CreatedAt = Fixtures.T0,
            RequireSignatures = requireSignatures,
            Sites = sites.Select(s => new RegisteredSite
            {
                Name = s, KeySha256 = new string('a', 64), Status = SiteStatuses.Active, RegisteredAt = Fixtures.T0,
                SigningPublicKey = withKeys.Contains(s) ? SigningKeys.PublicKeyBase64(Key(s)) : null,
            }).ToArray(),
        }, null);
        await Store.PutManifestAsync(Fixtures.Manifest(sites: sites, quorum: 1));
    }

    private static float[] Values(string site) => [site[0] - 'A' + 1, 2, 3];

    private UpdateHeader Signed(string site, int round = 0, string? signer = null) =>
        UpdateSignature.Sign(Fixtures.Header(site, 10, round), Values(site), Key(signer ?? site));

    /// <summary>Writes an update file at a round's path directly, as a tampering party with write access to the store would.</summary>
    private void Plant(int round, string site, byte[] bytes)
    {
        var path = Store.FullPath(StoreLayout.Update(Fixtures.Federation, round, site));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
    }

    private async Task<RoundResult> CloseAsync(int round = 0)
    {
        var outcome = await new RoundAggregator(Store, _clock).AggregateAsync(Fixtures.Federation, round, closeNow: true);
        return outcome.Result!;
    }

    private static string Reason(RoundResult result, string site) => Assert.Single(result.Rejected, r => r.Site == site).Reason;

    [Fact]
    public async Task A_signed_header_and_a_federation_document_with_signing_keys_are_valid_against_the_schemas()
    {
        await SetUpAsync(["A", "B"], ["A"], requireSignatures: true);
        await Store.PutUpdateAsync(Signed("A"), Values("A"));
        var repo = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(repo.FullName, "ClinicalFed.sln"))) repo = repo.Parent!;
        MiniJsonSchema Schema(string name) => MiniJsonSchema.Load(Path.Combine(repo.FullName, "schemas", name));

        var file = await File.ReadAllBytesAsync(Store.FullPath(StoreLayout.Update(Fixtures.Federation, 0, "A")));
        int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(5));
        var header = System.Text.Encoding.UTF8.GetString(file, 9, length);
        Assert.Contains("\"signature\":", header, StringComparison.Ordinal);
        Assert.Empty(Schema("update.schema.json").Validate(header));
        var document = await File.ReadAllTextAsync(Store.FullPath(StoreLayout.FederationDocument(Fixtures.Federation)));
        Assert.Contains("\"signing_public_key\":", document, StringComparison.Ordinal);
        Assert.Empty(Schema("federation.schema.json").Validate(document));
    }

    [Fact]
    public async Task Signed_updates_of_sites_with_registered_keys_are_accepted()
    {
        await SetUpAsync(["A", "B", "C"], ["A", "B"]);
        await Store.PutUpdateAsync(Signed("A"), Values("A"));
        await Store.PutUpdateAsync(Signed("B"), Values("B"));
        await Store.PutUpdateAsync(Fixtures.Header("C", 10), Values("C")); // no key registered, not required: accepted unsigned

        var result = await CloseAsync();

        Assert.Equal(["A", "B", "C"], result.Accepted.Select(a => a.Site));
        Assert.Empty(result.Rejected);
    }

    /// <summary>
    /// Sites A and B (both with registered keys unless <paramref name="keys"/> says otherwise): A uploads a good signed
    /// update, <paramref name="uploadB"/> puts B's; the round closes with A alone and B rejected for <paramref name="reason"/>.
    /// </summary>
    private async Task<RoundResult> AssertBRejectedAsync(Func<Task> uploadB, string reason, string[]? keys = null, bool requireSignatures = false)
    {
        await SetUpAsync(["A", "B"], keys ?? ["A", "B"], requireSignatures);
        await Store.PutUpdateAsync(Signed("A"), Values("A"));
        await uploadB();
        var result = await CloseAsync();
        Assert.Equal(RoundStatuses.Aggregated, result.Status);
        Assert.Equal(["A"], result.Accepted.Select(a => a.Site));
        Assert.Contains(reason, Reason(result, "B"), StringComparison.Ordinal);
        return result;
    }

    [Fact]
    public Task A_tampered_payload_is_rejected() => AssertBRejectedAsync(() =>
    {
        var bytes = Fixtures.UpdateBytes(Signed("B"), Values("B"));
        bytes[^1] ^= 0x40; // a payload byte changed after signing
        Plant(0, "B", bytes);
        return Task.CompletedTask;
    }, "does not match header field 'payload_sha256'");

    // The forger recomputes payload_sha256 for a payload of its own (UpdateFile.Write does) but cannot re-sign.
    [Fact]
    public Task A_tampered_payload_with_a_recomputed_hash_is_rejected_by_the_signature() => AssertBRejectedAsync(() =>
    {
        Plant(0, "B", Fixtures.UpdateBytes(Signed("B") with { PayloadSha256 = "" }, [100, 100, 100]));
        return Task.CompletedTask;
    }, "signature does not verify with site 'B''s registered public key");

    [Fact]
    public async Task A_tampered_header_field_is_rejected()
    {
        // B's weight inflated after signing.
        var result = await AssertBRejectedAsync(() => Store.PutUpdateAsync(Signed("B") with { ExampleCount = 1_000_000 }, Values("B")), "signature does not verify");
        Assert.Equal(10, result.ExampleCount);
    }

    [Fact]
    public Task An_update_signed_with_another_sites_key_is_rejected() =>
        AssertBRejectedAsync(() => Store.PutUpdateAsync(Signed("B", signer: "A"), Values("B")), "signature does not verify with site 'B''s registered public key");

    [Fact]
    public Task An_unsigned_update_of_a_site_with_a_registered_key_is_rejected() =>
        AssertBRejectedAsync(() => Store.PutUpdateAsync(Fixtures.Header("B", 10), Values("B")), "the update is not signed");

    // B registered no key: neither unsigned nor self-signed updates can be verified.
    [Fact]
    public Task When_signatures_are_required_an_update_of_a_site_without_a_key_is_rejected() =>
        AssertBRejectedAsync(() => Store.PutUpdateAsync(Signed("B"), Values("B")), "requires signed updates, but site 'B' has registered no signing public key",
            keys: ["A"], requireSignatures: true);

    [Fact]
    public async Task A_signed_update_replayed_from_an_earlier_round_is_rejected_copied_or_re_headed()
    {
        await SetUpAsync(["A", "B", "C"], ["A", "B", "C"]);
        var aRound0 = Signed("A");
        var bRound0 = Signed("B");
        await Store.PutUpdateAsync(aRound0, Values("A"));
        await Store.PutUpdateAsync(bRound0, Values("B"));
        await Store.PutUpdateAsync(Signed("C"), Values("C"));
        Assert.Equal(3, (await CloseAsync()).Accepted.Count);

        _clock.Now = Fixtures.T0.AddDays(1).AddHours(1);
        await Store.PutManifestAsync(Fixtures.Manifest(round: 1, sites: ["A", "B", "C"], quorum: 1));
        // A's round-0 file copied as it is into round 1.
        Plant(1, "A", await File.ReadAllBytesAsync(Store.FullPath(StoreLayout.Update(Fixtures.Federation, 0, "A"))));
        // B's round-0 update re-headed for round 1, keeping its signature.
        Plant(1, "B", Fixtures.UpdateBytes(bRound0 with { Round = 1 }, Values("B")));
        await Store.PutUpdateAsync(Signed("C", round: 1), Values("C"));

        var result = await CloseAsync(1);

        Assert.Equal(["C"], result.Accepted.Select(a => a.Site));
        Assert.Contains("round 0", Reason(result, "A"), StringComparison.Ordinal);
        Assert.Contains("signature does not verify", Reason(result, "B"), StringComparison.Ordinal);
    }
}
