using System.Security.Cryptography;
using System.Text;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.Signing;

namespace ClinicalFed.Core.Tests.Privacy;

public sealed class UpdateSignatureTests
{
    private static readonly float[] Payload = [0.5f, -1.25f, 3f];

    private static UpdateHeader Header() => new()
    {
        Federation = "sepsis", Round = 3, Site = "A", ExampleCount = 120, ParameterKind = ParameterKinds.Full, Dimension = 3,
        LocalMetrics = new Dictionary<string, double> { ["train_loss"] = 0.4321, ["auroc"] = 0.81 },
        CreatedAt = new DateTimeOffset(2026, 1, 2, 3, 4, 5, 678, TimeSpan.FromHours(1)),
    };

    [Fact]
    public void A_signed_update_round_trips_through_the_file_and_verifies()
    {
        using var key = SigningKeys.Create();
        var signed = UpdateSignature.Sign(Header(), Payload, key);
        Assert.True(UpdateSignature.IsWellFormed(signed.Signature));
        Assert.Equal(UpdateSignature.SignatureBytes, Convert.FromBase64String(signed.Signature!).Length);

        using var file = new MemoryStream();
        var written = UpdateFile.Write(file, signed, Payload);
        Assert.Equal(signed, written);
        file.Position = 0;
        var (read, payload) = UpdateFile.Read(file);
        Assert.Equal(Payload, payload);
        Assert.Equal(signed.Signature, read.Signature);

        using var publicKey = SigningKeys.ImportPublicKey(SigningKeys.PublicKeyBase64(key));
        Assert.True(UpdateSignature.Verify(read, publicKey));
        Assert.Null(UpdateSignature.Rejection(read, "sepsis", 3, "A", SigningKeys.PublicKeyBase64(key), requireSignatures: true));
    }

    [Fact]
    public void The_canonical_bytes_are_the_prefix_and_the_header_without_its_signature_with_metrics_in_key_order()
    {
        using var key = SigningKeys.Create();
        var signed = UpdateSignature.Sign(Header(), Payload, key);
        var bytes = UpdateSignature.CanonicalBytes(signed);
        var text = Encoding.UTF8.GetString(bytes);
        Assert.StartsWith("ClinicalFed update signature v1\n{\"format_version\":1,\"federation\":\"sepsis\",\"round\":3,\"site\":\"A\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("signature\":", text[UpdateSignature.DomainPrefix.Length..], StringComparison.Ordinal);
        Assert.Contains("\"local_metrics\":{\"auroc\":0.81,\"train_loss\":0.4321}", text, StringComparison.Ordinal);
        Assert.Equal(bytes, UpdateSignature.CanonicalBytes(signed with { Signature = null }));
        // The order in which a writer lists the metrics does not matter.
        var reordered = signed with { LocalMetrics = new Dictionary<string, double> { ["auroc"] = 0.81, ["train_loss"] = 0.4321 } };
        Assert.Equal(bytes, UpdateSignature.CanonicalBytes(reordered));
    }

    public static TheoryData<string> Tampering() => new()
    {
        "federation", "round", "site", "example_count", "parameter_kind", "dimension", "payload_sha256", "created_at", "local_metrics", "payload_encoding", "payload_bytes",
    };

    [Theory]
    [MemberData(nameof(Tampering))]
    public void Changing_any_header_field_breaks_the_signature(string field)
    {
        using var key = SigningKeys.Create();
        var signed = UpdateSignature.Sign(Header(), Payload, key);
        var tampered = field switch
        {
            "federation" => signed with { Federation = "other" },
            "round" => signed with { Round = 4 },
            "site" => signed with { Site = "B" },
            "example_count" => signed with { ExampleCount = 12000 },
            "parameter_kind" => signed with { ParameterKind = ParameterKinds.Delta },
            "dimension" => signed with { Dimension = 4 },
            "payload_sha256" => signed with { PayloadSha256 = new string('0', 64) },
            "created_at" => signed with { CreatedAt = signed.CreatedAt.AddSeconds(1) },
            "local_metrics" => signed with { LocalMetrics = new Dictionary<string, double> { ["train_loss"] = 0.4321, ["auroc"] = 0.99 } },
            "payload_encoding" => signed with { PayloadEncoding = UpdatePayloadEncodings.Float32 },
            "payload_bytes" => signed with { PayloadBytes = 12 },
            _ => throw new ArgumentOutOfRangeException(nameof(field)),
        };
        Assert.False(UpdateSignature.Verify(tampered, key), field);
        string reason = UpdateSignature.Rejection(tampered, tampered.Federation, tampered.Round, tampered.Site, SigningKeys.PublicKeyBase64(key), false)!;
        Assert.Contains("signature does not verify", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Another_sites_key_a_missing_signature_and_a_misaddressed_header_are_each_rejected_with_the_reason()
    {
        using var a = SigningKeys.Create();
        using var b = SigningKeys.Create();
        string aPublic = SigningKeys.PublicKeyBase64(a);
        var byB = UpdateSignature.Sign(Header(), Payload, b);
        Assert.Contains("signature does not verify with site 'A''s registered public key", UpdateSignature.Rejection(byB, "sepsis", 3, "A", aPublic, false), StringComparison.Ordinal);

        var unsigned = Header();
        Assert.Contains("not signed", UpdateSignature.Rejection(unsigned, "sepsis", 3, "A", aPublic, false), StringComparison.Ordinal);
        Assert.Null(UpdateSignature.Rejection(unsigned, "sepsis", 3, "A", null, requireSignatures: false));
        Assert.Contains("requires signed updates", UpdateSignature.Rejection(unsigned, "sepsis", 3, "A", null, requireSignatures: true), StringComparison.Ordinal);

        var signed = UpdateSignature.Sign(Header(), Payload, a);
        Assert.Contains("replayed", UpdateSignature.Rejection(signed, "sepsis", 4, "A", aPublic, false), StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_signature_is_a_header_problem()
    {
        var header = Header() with { PayloadSha256 = new string('a', 64), Signature = "not base64!" };
        Assert.Contains(header.Validate(), p => p.Contains("'signature'", StringComparison.Ordinal));
        Assert.Empty((header with { Signature = Convert.ToBase64String(new byte[64]) }).Validate());
        Assert.NotEmpty((header with { Signature = Convert.ToBase64String(new byte[63]) }).Validate());
    }

    [Fact]
    public void Public_keys_are_accepted_as_PEM_or_base64_and_normalized_and_other_curves_are_refused()
    {
        using var key = SigningKeys.Create();
        string b64 = SigningKeys.PublicKeyBase64(key);
        Assert.Equal(b64, SigningKeys.NormalizePublicKey(SigningKeys.PublicKeyPem(key)));
        Assert.Equal(b64, SigningKeys.NormalizePublicKey(" " + b64 + "\n"));
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        Assert.Contains("not P-256", SigningKeys.PublicKeyProblem(SigningKeys.PublicKeyBase64(p384)), StringComparison.Ordinal);
        Assert.NotNull(SigningKeys.PublicKeyProblem("AAAA"));
        Assert.NotNull(SigningKeys.PublicKeyProblem("not a key"));
        Assert.Throws<ArgumentException>(() => SigningKeys.NormalizePublicKey("AAAA"));
    }

    [Fact]
    public void The_private_key_is_created_once_as_PKCS8_PEM_readable_by_its_owner_only()
    {
        var dir = Directory.CreateTempSubdirectory("cf-signing-").FullName;
        try
        {
            string path = Path.Combine(dir, "work", SigningKeys.PrivateKeyFileName);
            using var first = SigningKeys.LoadOrCreatePrivateKey(path, out bool created);
            Assert.True(created);
            Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(path), StringComparison.Ordinal);
            if (!OperatingSystem.IsWindows())
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            using var second = SigningKeys.LoadOrCreatePrivateKey(path, out bool createdAgain);
            Assert.False(createdAgain);
            Assert.Equal(SigningKeys.PublicKeyBase64(first), SigningKeys.PublicKeyBase64(second));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_federation_document_keeps_signing_keys_and_require_signatures_and_validates_the_keys()
    {
        using var key = SigningKeys.Create();
        var config = new FederationConfig
        {
            Federation = "sepsis", Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = 3, FeatureSpecId = "x", FeatureSpecVersion = "1" },
            Strategy = new StrategySpec { Name = StrategyNames.FedAvg }, Rounds = 2, Quorum = 1, RoundSeconds = 60, CreatedAt = DateTimeOffset.UnixEpoch,
            RequireSignatures = true,
            Sites =
            [
                new RegisteredSite { Name = "A", KeySha256 = new string('a', 64), Status = SiteStatuses.Active, RegisteredAt = DateTimeOffset.UnixEpoch, SigningPublicKey = SigningKeys.PublicKeyBase64(key) },
                new RegisteredSite { Name = "B", KeySha256 = new string('b', 64), Status = SiteStatuses.Active, RegisteredAt = DateTimeOffset.UnixEpoch },
            ],
        };
        var parsed = FederationConfig.Parse(config.ToJsonBytes());
        Assert.True(parsed.RequireSignatures);
        Assert.Equal(SigningKeys.PublicKeyBase64(key), parsed.FindSite("A")!.SigningPublicKey);
        Assert.Null(parsed.FindSite("B")!.SigningPublicKey);
        // Documents without signing stay what they were: neither field is written.
        var plain = Encoding.UTF8.GetString((config with { RequireSignatures = false, Sites = [config.Sites[1]] }).ToJsonBytes());
        Assert.DoesNotContain("require_signatures", plain, StringComparison.Ordinal);
        Assert.DoesNotContain("signing_public_key", plain, StringComparison.Ordinal);

        var bad = config with { Sites = [config.Sites[0] with { SigningPublicKey = "AAAA" }] };
        Assert.Contains(bad.Validate(), p => p.StartsWith("'sites[0].signing_public_key' is not an ECDSA P-256 public key", StringComparison.Ordinal));
    }
}
