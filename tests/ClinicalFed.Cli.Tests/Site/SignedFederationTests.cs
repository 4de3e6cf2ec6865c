using ClinicalFed.Cli.Site;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.Signing;
using ClinicalFed.Storage;

namespace ClinicalFed.Cli.Tests.Site;

/// <summary>Signed updates end to end: site agents sign, the coordinator's aggregator verifies against the registered keys.</summary>
[Collection(CliCollection.Name)]
public sealed class SignedFederationTests(ThreeSitesFixture data) : IClassFixture<ThreeSitesFixture>
{
    private const string Fed = "signed-study";

    [Fact]
    public async Task An_upload_tampered_in_the_store_is_rejected_and_the_round_completes_with_the_others()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var federation = new AgentFederation(store, Fed, "sepsis", data.Sources, tmp.Path) { Rounds = 2, Quorum = 2 };
        string victim = data.Sources[1].Name;
        bool tampered = false;

        var reports = await federation.RunAsync(tick: async (coordinator, token) =>
        {
            // Before the aggregator looks at round 0: inflate the victim's example count in the stored file, keeping its signature.
            if (!tampered && (await store.ListUpdatesAsync(Fed, 0, token)).Contains(victim))
            {
                string path = store.FullPath(StoreLayout.Update(Fed, 0, victim));
                (UpdateHeader header, float[] payload) = UpdateFile.Read(new MemoryStream(await File.ReadAllBytesAsync(path, token)));
                Assert.NotNull(header.Signature);
                using var forged = new MemoryStream();
                UpdateFile.Write(forged, header with { ExampleCount = header.ExampleCount * 100 }, payload);
                await File.WriteAllBytesAsync(path, forged.ToArray(), token);
                tampered = true;
            }

            await coordinator.TickAsync(Fed, token);
        });

        Assert.True(tampered);
        var round0 = (await store.GetRoundResultAsync(Fed, 0))!;
        Assert.Equal(RoundStatuses.Aggregated, round0.Status);
        Assert.Equal(data.Sources.Select(s => s.Name).Where(s => s != victim).Order(StringComparer.Ordinal), round0.Accepted.Select(a => a.Site));
        var rejected = Assert.Single(round0.Rejected);
        Assert.Equal(victim, rejected.Site);
        Assert.Contains($"signature does not verify with site '{victim}''s registered public key", rejected.Reason, StringComparison.Ordinal);

        // Round 1 is untouched: every site's signed update is accepted, and every stored update carries a valid signature.
        var round1 = (await store.GetRoundResultAsync(Fed, 1))!;
        Assert.Equal(3, round1.Accepted.Count);
        Assert.Empty(round1.Rejected);
        var config = (await store.GetFederationAsync(Fed))!.Value.Config;
        foreach (var site in data.Sources.Select(s => s.Name))
        {
            await using var stream = (await store.OpenUpdateAsync(Fed, 1, site))!;
            var header = UpdateFile.ReadHeader(stream);
            using var key = SigningKeys.ImportPublicKey(config.FindSite(site)!.SigningPublicKey!);
            Assert.True(UpdateSignature.Verify(header, key), site);
        }

        Assert.All(reports, r => Assert.Equal([0, 1], r.RoundsTrained));
        // The private keys stayed in the sites' work folders, readable by their owner only.
        foreach (var site in data.Sources.Select(s => s.Name))
        {
            string keyPath = Path.Combine(federation.WorkDirectory(site), SigningKeys.PrivateKeyFileName);
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));
        }
    }

    [Fact]
    public async Task An_agent_whose_key_is_not_the_registered_one_refuses_to_start()
    {
        using var tmp = new TempDir();
        var store = new LocalFolderStore(tmp["store"]);
        var federation = new AgentFederation(store, Fed, "sepsis", data.Sources.Take(1).ToList(), tmp.Path) { Rounds = 1, Quorum = 1 };
        var coordinator = new Storage.Coordination.FederationCoordinator(store);
        await coordinator.CreateFederationAsync(new FederationSetup { Federation = Fed, Task = "sepsis", Rounds = 1, Quorum = 1 }.ToConfig(DateTimeOffset.UtcNow));
        using var other = SigningKeys.Create();
        await coordinator.RegisterSiteAsync(Fed, data.Sources[0].Name, SigningKeys.PublicKeyBase64(other));
        var agent = new SiteAgent(new SiteAgentOptions
        {
            Federation = Fed, Site = data.Sources[0].Name, Task = "sepsis", Source = data.Sources[0], WorkDirectory = federation.WorkDirectory(data.Sources[0].Name),
        }, store, new DirectStoreUploader(store));

        var e = await Assert.ThrowsAsync<ArgumentException>(() => agent.RunAsync());
        Assert.Contains("is not the one registered", e.Message, StringComparison.Ordinal);
    }

    // clinicalfed site keygen, federation register --public-key and federation create --require-signatures.
    [Fact]
    public async Task Keygen_prints_the_public_key_that_register_stores_with_the_site()
    {
        using var tmp = new TempDir();
        var keygen = Cli.Run("site", "keygen", "--work", tmp["work"]);
        Assert.True(keygen.Exit == 0, keygen.Err);
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", keygen.Out, StringComparison.Ordinal);
        Assert.Contains("created a signing key", keygen.Err, StringComparison.Ordinal);
        string keyPath = Path.Combine(tmp["work"], SigningKeys.PrivateKeyFileName);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));
        var again = Cli.Run("site", "keygen", "--work", tmp["work"]);
        Assert.Equal(keygen.Out, again.Out); // the existing key is kept
        Assert.Contains("using the existing signing key", again.Err, StringComparison.Ordinal);

        File.WriteAllText(tmp["ER.pub"], keygen.Out);
        var store = tmp["store"];
        Assert.Equal(0, Cli.Run("federation", "create", "--store", store, "--federation", "study", "--task", "readmission", "--require-signatures").Exit);
        var reg = Cli.Run("federation", "register", "--store", store, "--federation", "study", "--site", "ER", "--public-key", tmp["ER.pub"]);
        Assert.True(reg.Exit == 0, reg.Err);

        var config = (await new LocalFolderStore(store).GetFederationAsync("study"))!.Value.Config;
        Assert.True(config.RequireSignatures);
        using var key = SigningKeys.LoadPrivateKey(keyPath);
        Assert.Equal(SigningKeys.PublicKeyBase64(key), config.FindSite("ER")!.SigningPublicKey);

        File.WriteAllText(tmp["bad.pub"], "not a key");
        var bad = Cli.Run("federation", "register", "--store", store, "--federation", "study", "--site", "REF", "--public-key", tmp["bad.pub"]);
        Assert.Equal(2, bad.Exit);
        Assert.Contains("not an ECDSA P-256 public key", bad.Err, StringComparison.Ordinal);
    }
}
