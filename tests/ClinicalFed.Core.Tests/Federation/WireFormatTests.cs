using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClinicalFed.Federation;

namespace ClinicalFed.Core.Tests.Federation;

public sealed class WireFormatTests
{
    private static byte[] WriteUpdate(UpdateHeader header, float[] payload)
    {
        using var ms = new MemoryStream();
        UpdateFile.Write(ms, header, payload);
        return ms.ToArray();
    }

    internal static (JsonObject Header, int PayloadOffset) SplitHeader(byte[] file)
    {
        int length = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(5));
        return (JsonNode.Parse(file.AsSpan(9, length))!.AsObject(), 9 + length);
    }

    /// <summary>Rebuilds a file with an edited header and the given payload bytes (no re-hashing).</summary>
    internal static byte[] Frame(string magic, JsonObject header, ReadOnlySpan<byte> payload)
    {
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var file = new byte[9 + json.Length + payload.Length];
        Encoding.ASCII.GetBytes(magic).CopyTo(file, 0);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(5), json.Length);
        json.CopyTo(file, 9);
        payload.CopyTo(file.AsSpan(9 + json.Length));
        return file;
    }

    private static FederationDataException ReadFails(byte[] file, int dimension = 3)
    {
        var buffer = new float[dimension];
        return Assert.Throws<FederationDataException>(() => UpdateFile.ReadPayload(new MemoryStream(file), buffer, "site-A.cfu"));
    }

    [Fact]
    public void Update_round_trips_with_documented_framing()
    {
        var header = TestData.Header("A", 120, metrics: new Dictionary<string, double> { ["loss"] = 0.25, ["auroc"] = 0.81 });
        float[] payload = [1.5f, -2.25f, 1e-7f];
        var file = WriteUpdate(header, payload);

        Assert.Equal("CFUP\n"u8.ToArray(), file[..5]);
        var (json, offset) = SplitHeader(file);
        Assert.Equal(
            ["format_version", "federation", "round", "site", "example_count", "parameter_kind", "dimension", "local_metrics", "created_at", "payload_sha256"],
            json.Select(p => p.Key));
        Assert.Equal(offset + 12, file.Length);
        Assert.Equal(-2.25f, BinaryPrimitives.ReadSingleLittleEndian(file.AsSpan(offset + 4)));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(file.AsSpan(offset))), (string)json["payload_sha256"]!);

        var buffer = new float[3];
        var read = UpdateFile.ReadPayload(new NonSeekableStream(file), buffer, "A.cfu");
        Assert.Equal(payload, buffer);
        Assert.Equal(120, read.ExampleCount);
        Assert.Equal(0.81, read.LocalMetrics["auroc"]);
        Assert.Equal(TestData.T0.AddMinutes(30), read.CreatedAt);
    }

    [Fact]
    public void Write_refuses_non_finite_values_and_a_wrong_dimension_before_writing()
    {
        var ms = new MemoryStream();
        var e = Assert.Throws<FederationDataException>(() => UpdateFile.Write(ms, TestData.Header("A", 1), [1, float.NaN]));
        Assert.Equal(0, ms.Length);
        Assert.Contains(e.Problems, p => p.Contains("'dimension' is 3 but the payload holds 2"));
        Assert.Contains(e.Problems, p => p.Contains("non-finite") && p.Contains("index 1"));
    }

    [Fact]
    public void Corrupt_payload_is_reported_with_the_file_and_field()
    {
        var file = WriteUpdate(TestData.Header("A", 5), [1, 2, 3]);
        file[^1] ^= 0x01;
        var e = ReadFails(file);
        Assert.StartsWith("site-A.cfu: ", e.Message);
        Assert.Contains("payload_sha256", e.Message);
    }

    [Fact]
    public void Truncated_payload_and_trailing_bytes_are_reported()
    {
        var file = WriteUpdate(TestData.Header("A", 5), [1, 2, 3]);
        Assert.Contains("truncated", ReadFails(file[..^2]).Message);
        Assert.Contains("bytes after the payload", ReadFails([.. file, 0]).Message);
    }

    [Fact]
    public void Non_finite_payload_with_a_matching_hash_is_still_rejected()
    {
        var file = WriteUpdate(TestData.Header("A", 5), [1, 2, 3]);
        var (json, offset) = SplitHeader(file);
        var payload = file[offset..];
        BinaryPrimitives.WriteSingleLittleEndian(payload.AsSpan(4), float.PositiveInfinity);
        json["payload_sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(payload));
        var e = ReadFails(Frame("CFUP\n", json, payload));
        Assert.Single(e.Problems);
        Assert.Contains("non-finite value(s) (NaN or infinity), the first at index 1", e.Message);
    }

    [Fact]
    public void Header_problems_are_all_reported_at_once()
    {
        var (json, offset) = SplitHeader(WriteUpdate(TestData.Header("A", 5), [1, 2, 3]));
        json["format_version"] = 2;
        json["site"] = "../etc";
        json["parameter_kind"] = "partial";
        json["example_count"] = -1;
        var e = ReadFails(Frame("CFUP\n", json, new byte[12]));
        Assert.Equal(4, e.Problems.Count);
        Assert.All(e.Problems, p => Assert.StartsWith("header field '", p));
        Assert.Contains(e.Problems, p => p.Contains("'format_version' is 2"));
        Assert.Contains(e.Problems, p => p.Contains("'site' '../etc' is not valid"));
    }

    [Fact]
    public void Unknown_or_missing_header_fields_and_wrong_types_are_errors()
    {
        var (json, _) = SplitHeader(WriteUpdate(TestData.Header("A", 5), [1, 2, 3]));
        var extra = json.DeepClone().AsObject();
        extra["weights"] = 1;
        Assert.Contains("weights", ReadFails(Frame("CFUP\n", extra, new byte[12])).Message);

        var missing = json.DeepClone().AsObject();
        missing.Remove("example_count");
        Assert.Contains("example_count", ReadFails(Frame("CFUP\n", missing, new byte[12])).Message);

        var wrongType = json.DeepClone().AsObject();
        wrongType["round"] = "one";
        Assert.Contains("$.round", ReadFails(Frame("CFUP\n", wrongType, new byte[12])).Message);
    }

    [Fact]
    public void Wrong_magic_and_bad_header_length_are_reported()
    {
        var model = TestData.Global([1, 2, 3]).ToBytes();
        Assert.Contains("it is a ClinicalFed model (CFMD)", ReadFails(model).Message);
        Assert.Contains("only 3 bytes", ReadFails("CFU"u8.ToArray()).Message);
        var file = WriteUpdate(TestData.Header("A", 5), [1, 2, 3]);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(5), -4);
        Assert.Contains("header length -4", ReadFails(file).Message);
    }

    [Fact]
    public void Destination_must_match_the_header_dimension()
    {
        var file = WriteUpdate(TestData.Header("A", 5), [1, 2, 3]);
        Assert.Contains("'dimension' is 3 but 4 values were expected", ReadFails(file, dimension: 4).Message);
    }

    [Fact]
    public void Copy_verified_copies_valid_files_byte_for_byte_and_rejects_corrupt_ones()
    {
        var payload = Enumerable.Range(0, 40_000).Select(i => i * 0.001f).ToArray(); // > one 64 KiB chunk
        var file = WriteUpdate(TestData.Header("A", 5, dimension: payload.Length), payload);
        var copy = new MemoryStream();
        var header = UpdateFile.CopyVerified(new NonSeekableStream(file), copy, "A.cfu");
        Assert.Equal(file, copy.ToArray());
        Assert.Equal(40_000, header.Dimension);

        file[^5] ^= 0x10;
        var e = Assert.Throws<FederationDataException>(() => UpdateFile.CopyVerified(new MemoryStream(file), new MemoryStream(), "A.cfu"));
        Assert.Contains("payload_sha256", e.Message);
    }

    [Fact]
    public void Float_model_round_trips_and_is_verified()
    {
        var model = TestData.Global([0.5f, -1, 2]);
        Assert.Equal(12, model.Header.PayloadBytes);
        Assert.Equal(PayloadEncodings.Float32LittleEndian, model.Header.PayloadEncoding);
        var bytes = model.ToBytes();
        Assert.Equal("CFMD\n"u8.ToArray(), bytes[..5]);
        var read = ModelFile.Read(bytes, "global.cfm");
        Assert.Equal([0.5f, -1f, 2f], read.Parameters.ToArray());
        Assert.Null(read.Header.Site);
        Assert.Equal(["A", "B"], read.Header.Sites);

        bytes[^1] ^= 1;
        Assert.Contains("payload_sha256", Assert.Throws<FederationDataException>(() => ModelFile.Read(bytes, "global.cfm")).Message);
    }

    [Fact]
    public void Tree_model_may_carry_an_opaque_lightgbm_payload()
    {
        var text = Encoding.UTF8.GetBytes("tree\nversion=v4\nnum_class=1\n");
        var header = TestData.Global([0f]).Header with { Kind = ModelKinds.Trees, Dimension = 108, Site = "A" };
        var model = ModelFile.FromOpaque(header, text);
        var read = ModelFile.Read(model.ToBytes(), "A.cfm");
        Assert.False(read.HasParameters);
        Assert.Equal(text, read.OpaquePayload.ToArray());
        Assert.Equal(PayloadEncodings.LightGbmText, read.Header.PayloadEncoding);
        Assert.Equal("A", read.Header.Site);

        var e = Assert.Throws<FederationDataException>(() => ModelFile.FromOpaque(header with { Kind = ModelKinds.Logistic }, text));
        Assert.Contains(e.Problems, p => p.Contains("only allowed for 'kind' trees"));
        Assert.Contains("truncated", Assert.Throws<FederationDataException>(() => ModelFile.Read(model.ToBytes()[..^3], "A.cfm")).Message);
    }

    [Fact]
    public void Server_state_round_trips_with_named_vectors()
    {
        var state = ServerState.Create("sepsis", 4, StrategyNames.FedAdam, 5, [("m", [1, 2]), ("v", [3, 4])]);
        var read = ServerState.Read(new MemoryStream(state.ToBytes()), "server-state.bin");
        Assert.Equal(["m", "v"], read.VectorNames);
        Assert.Equal([3f, 4f], read.Vector("v").ToArray());
        Assert.Equal(5, read.Header.Steps);
        Assert.Throws<KeyNotFoundException>(() => read.Vector("velocity"));

        var bytes = state.ToBytes();
        bytes[^8] ^= 0x40;
        Assert.Contains("payload_sha256", Assert.Throws<FederationDataException>(() => ServerState.Read(new MemoryStream(bytes), "s")).Message);
    }

    [Fact]
    public void Manifest_round_trips_as_snake_case_json()
    {
        var spec = StrategySpec.From(new FedProxOptions { ProximalMu = 0.01 },
            new Dictionary<string, JsonElement> { ["client_local_epochs"] = JsonSerializer.SerializeToElement(2) });
        var manifest = TestData.Manifest(StrategyNames.FedProx, round: 3, spec: spec);
        var json = manifest.ToJsonBytes();
        var doc = JsonNode.Parse(json)!.AsObject();
        Assert.Equal(["format_version", "federation", "round", "strategy", "model", "global_model", "quorum", "sites", "opened_at", "deadline"], doc.Select(p => p.Key));
        Assert.Equal("federations/sepsis/rounds/00002/global.cfm", (string)doc["global_model"]!);
        Assert.Equal(0.01, (double)doc["strategy"]!["options"]!["proximal_mu"]!);
        Assert.Equal(2, (int)doc["strategy"]!["options"]!["client_local_epochs"]!);
        Assert.Equal(["dimension", "feature_spec_id", "feature_spec_version", "kind"], doc["model"]!.AsObject().Select(p => p.Key).Order());

        var back = RoundManifest.Parse(json);
        Assert.Equal(json, back.ToJsonBytes());
        Assert.Equal(3, back.Round);
        Assert.Equal(0.01, ((FedProxOptions)StrategyFactory.ParseOptions(back.Strategy.Name, back.Strategy.Options)).ProximalMu);
    }

    [Fact]
    public void Manifest_validation_reports_every_problem()
    {
        var bad = TestData.Manifest(round: 2) with
        {
            Federation = "a/b",
            GlobalModel = "federations/x/rounds/1/global.cfm",
            Sites = ["A", "a", "CON"],
            Quorum = 4,
            Deadline = TestData.T0.AddHours(-1),
            Model = new ModelSpec { Kind = "forest", Dimension = 0, FeatureSpecId = "", FeatureSpecVersion = "1" },
        };
        var problems = bad.Validate();
        Assert.Contains(problems, p => p.StartsWith("'federation' 'a/b' is not valid"));
        Assert.Contains(problems, p => p.StartsWith("'global_model' 'federations/x/rounds/1/global.cfm' is not a global model path"));
        Assert.Contains(problems, p => p.Contains("'sites[1]' 'a' repeats another site"));
        Assert.Contains(problems, p => p.Contains("'sites[2]' 'CON'") && p.Contains("reserved device name"));
        Assert.Contains(problems, p => p.StartsWith("'quorum' is 4"));
        Assert.Contains(problems, p => p.StartsWith("'deadline'"));
        Assert.Contains(problems, p => p.StartsWith("'model.kind' is 'forest'"));
        Assert.Contains(problems, p => p.StartsWith("'model.dimension' is 0"));
        Assert.Contains(problems, p => p.StartsWith("'model.feature_spec_id'"));
        Assert.Equal(9, problems.Count);
        Assert.Throws<FederationDataException>(() => bad.ToJsonBytes());
    }

    [Fact]
    public void Manifest_requires_global_model_property_and_scalar_options()
    {
        var doc = JsonNode.Parse(TestData.Manifest().ToJsonBytes())!.AsObject();
        doc.Remove("global_model");
        var e = Assert.Throws<FederationDataException>(() => RoundManifest.Parse(Encoding.UTF8.GetBytes(doc.ToJsonString()), "m.json"));
        Assert.Contains("global_model", e.Message);

        doc["global_model"] = null;
        doc["strategy"]!["options"] = new JsonObject { ["nested"] = new JsonObject() };
        e = Assert.Throws<FederationDataException>(() => RoundManifest.Parse(Encoding.UTF8.GetBytes(doc.ToJsonString()), "m.json"));
        Assert.Contains("'strategy.options.nested' is a JSON object", e.Message);
    }

    [Theory]
    [InlineData("A", true)]
    [InlineData("hospital_A-2.icu", true)]
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData(".hidden", false)]
    [InlineData("trailing.", false)]
    [InlineData("a/b", false)]
    [InlineData("a b", false)]
    [InlineData("Hôpital", false)]
    [InlineData("nul", false)]
    [InlineData("COM1.site", false)]
    [InlineData("CONSOLE", true)]
    public void Federation_and_site_names(string name, bool valid)
    {
        Assert.Equal(valid, FederationNames.IsValid(name));
        if (!valid) Assert.Throws<ArgumentException>(() => FederationNames.Validate(name, "site"));
    }

    [Fact]
    public void Names_longer_than_64_characters_are_refused()
    {
        Assert.True(FederationNames.IsValid(new string('a', 64)));
        Assert.Contains("1 to 64 characters", FederationNames.Problem(new string('a', 65), "site"));
    }

    [Fact]
    public void Global_model_paths_parse_and_format()
    {
        Assert.Equal("federations/f/rounds/00012/global.cfm", GlobalModelPath.Format("f", 12));
        Assert.True(GlobalModelPath.TryParse("federations/f/rounds/00012/global.cfm", out var f, out int r));
        Assert.Equal(("f", 12), (f, r));
        Assert.False(GlobalModelPath.TryParse("federations/../rounds/00012/global.cfm", out _, out _));
        Assert.False(GlobalModelPath.TryParse("federations/f/rounds/12/global.cfm", out _, out _));
        Assert.False(GlobalModelPath.TryParse("federations/f/rounds/00012/personalized/A.cfm", out _, out _));
    }

    /// <summary>A read-only stream that cannot seek, like a network or blob download stream.</summary>
    internal sealed class NonSeekableStream(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data, writable: false);

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 1000)); // short reads
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
