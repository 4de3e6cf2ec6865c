using ClinicalFed.Core.Tests.Federation;
using ClinicalFed.Federation;
using ClinicalFed.Trees;

namespace ClinicalFed.Core.Tests.Trees;

/// <summary>Tree ensembles as update payloads (<c>payload_encoding</c> tree-ensemble) and as model payloads.</summary>
public sealed class TreeWireFormatTests
{
    private static readonly TreeEnsembleModel Ensemble = TreeBagging.Merge([new SiteEnsemble(TreeTestModels.A, 1), new SiteEnsemble(TreeTestModels.B, 3)]);

    private static byte[] WriteTreeUpdate(UpdateHeader header, TreeEnsembleModel ensemble)
    {
        using var ms = new MemoryStream();
        UpdateFile.Write(ms, header, ensemble);
        return ms.ToArray();
    }

    /// <summary>The file with its payload replaced and the header's length and hash made to match it.</summary>
    private static byte[] WithPayload(byte[] file, byte[] payload)
    {
        var (json, _) = WireFormatTests.SplitHeader(file);
        json["payload_bytes"] = payload.Length;
        json["payload_sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(payload));
        return WireFormatTests.Frame("CFUP\n", json, payload);
    }

    private static FederationDataException ReadFails(byte[] file) =>
        Assert.Throws<FederationDataException>(() => UpdateFile.ReadTreeEnsemble(new MemoryStream(file), "federations/sepsis/rounds/00000/updates/A.cfu"));

    [Fact]
    public void Tree_update_round_trips_with_its_encoding_and_length_in_the_header()
    {
        var written = UpdateFile.Write(new MemoryStream(), TestData.Header("A", 40, dimension: 2), Ensemble);
        var file = WriteTreeUpdate(TestData.Header("A", 40, dimension: 2), Ensemble);
        var (json, offset) = WireFormatTests.SplitHeader(file);
        Assert.Equal("tree-ensemble", (string)json["payload_encoding"]!);
        var cfte = Ensemble.ToBytes();
        Assert.Equal(cfte.Length, (long)json["payload_bytes"]!);
        Assert.Equal(cfte, file[offset..]);
        Assert.Equal("CFTE"u8.ToArray(), file[offset..(offset + 4)]);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(cfte)), written.PayloadSha256);

        var (header, ensemble) = UpdateFile.ReadTreeEnsemble(new WireFormatTests.NonSeekableStream(file), "A.cfu");
        Assert.True(header.IsTreeEnsemble);
        Assert.Equal(written, header with { LocalMetrics = written.LocalMetrics });
        Assert.True(Ensemble.StructurallyEquals(ensemble));

        var copy = new MemoryStream();
        Assert.True(UpdateFile.CopyVerified(new WireFormatTests.NonSeekableStream(file), copy, "A.cfu").IsTreeEnsemble);
        Assert.Equal(file, copy.ToArray());
    }

    [Fact]
    public void Float32_updates_leave_the_new_fields_out_and_explicit_float32_is_read()
    {
        var file = new MemoryStream();
        UpdateFile.Write(file, TestData.Header("A", 5) with { PayloadEncoding = UpdatePayloadEncodings.Float32 }, [1, 2, 3]);
        var bytes = file.ToArray();
        var (json, offset) = WireFormatTests.SplitHeader(bytes);
        Assert.False(json.ContainsKey("payload_encoding"));
        Assert.False(json.ContainsKey("payload_bytes"));

        // A header that spells the default out is read like one that leaves it out.
        json["payload_encoding"] = "float32";
        json["payload_bytes"] = 12;
        var spelled = WireFormatTests.Frame("CFUP\n", json, bytes[offset..]);
        var (header, payload) = UpdateFile.Read(new MemoryStream(spelled), "A.cfu");
        Assert.False(header.IsTreeEnsemble);
        Assert.Equal([1f, 2f, 3f], payload);
    }

    [Fact]
    public void Corrupt_tree_payloads_are_rejected_naming_the_file_and_the_field()
    {
        var file = WriteTreeUpdate(TestData.Header("A", 40, dimension: 2), Ensemble);
        var (_, offset) = WireFormatTests.SplitHeader(file);
        var payload = file[offset..];

        var flipped = (byte[])file.Clone();
        flipped[offset + 20] ^= 0x10;
        var e = ReadFails(flipped);
        Assert.StartsWith("federations/sepsis/rounds/00000/updates/A.cfu: ", e.Message);
        Assert.Contains("payload_sha256", e.Message);

        // The same damage with a matching hash: only parsing the ensemble finds it.
        var damaged = (byte[])payload.Clone();
        damaged[20] ^= 0x10;
        e = ReadFails(WithPayload(file, damaged));
        Assert.Contains("not a valid tree ensemble (header field 'payload_encoding' is tree-ensemble)", Assert.Single(e.Problems));
        Assert.Contains("checksum", e.Message);
        Assert.Throws<FederationDataException>(() => UpdateFile.CopyVerified(new MemoryStream(WithPayload(file, damaged)), new MemoryStream(), "A.cfu"));

        // A valid ensemble of the wrong width.
        e = ReadFails(WithPayload(file, TreeEnsembleModel.Constant(5, 0).ToBytes()));
        Assert.Contains("header field 'dimension' is 2 but the tree ensemble in the payload reads 5 features", e.Message);

        Assert.Contains("truncated", ReadFails(file[..^3]).Message);
        Assert.Contains("bytes after the payload", ReadFails([.. file, 0]).Message);
    }

    [Fact]
    public void Header_checks_tie_the_encoding_to_its_fields()
    {
        var file = WriteTreeUpdate(TestData.Header("A", 40, dimension: 2), Ensemble);
        var (json, offset) = WireFormatTests.SplitHeader(file);

        var noLength = json.DeepClone().AsObject();
        noLength.Remove("payload_bytes");
        var delta = json.DeepClone().AsObject();
        delta["parameter_kind"] = "delta";
        var unknown = json.DeepClone().AsObject();
        unknown["payload_encoding"] = "onnx";
        foreach (var (header, fragment) in new[] { (noLength, "'payload_bytes' is missing"), (delta, "must be 'full'"), (unknown, "'payload_encoding' is 'onnx'") })
        {
            var e = Assert.Throws<FederationDataException>(() => UpdateFile.ReadHeader(new MemoryStream(WireFormatTests.Frame("CFUP\n", header, file[offset..])), "A.cfu"));
            Assert.Contains(e.Problems, p => p.StartsWith("header field ") && p.Contains(fragment));
        }

        var floatReader = Assert.Throws<FederationDataException>(() => UpdateFile.ReadPayload(new MemoryStream(file), new float[2], "A.cfu"));
        Assert.Contains("header field 'payload_encoding' is tree-ensemble", floatReader.Message);
        var floatFile = new MemoryStream();
        UpdateFile.Write(floatFile, TestData.Header("A", 5), [1, 2, 3]);
        Assert.Contains("header field 'payload_encoding' is float32", ReadFails(floatFile.ToArray()).Message);

        var write = Assert.Throws<FederationDataException>(() => UpdateFile.Write(new MemoryStream(), TestData.Header("A", 40, dimension: 3), Ensemble));
        Assert.Contains(write.Problems, p => p.Contains("'dimension' is 3 but the tree ensemble reads 2 features"));
    }

    [Fact]
    public void Tree_model_file_round_trips_and_is_parsed_when_read()
    {
        var model = TreeTestModels.Global(Ensemble);
        Assert.Equal(PayloadEncodings.TreeEnsemble, model.Header.PayloadEncoding);
        Assert.True(model.HasTreeEnsemble);
        Assert.False(model.HasParameters);
        var bytes = model.ToBytes();
        var read = ModelFile.Read(bytes, "global.cfm");
        Assert.True(Ensemble.StructurallyEquals(read.TreeEnsemble));
        Assert.Equal(Ensemble.ToBytes(), read.OpaquePayload.ToArray());
        Assert.Throws<InvalidOperationException>(() => TestData.Global([1f]).TreeEnsemble);

        var e = Assert.Throws<FederationDataException>(() => ModelFile.FromOpaque(model.Header, "not a model"u8.ToArray(), PayloadEncodings.TreeEnsemble));
        Assert.Contains("not a valid tree ensemble", e.Message);
        e = Assert.Throws<FederationDataException>(() => ModelFile.FromTreeEnsemble(model.Header with { Kind = ModelKinds.Logistic }, Ensemble));
        Assert.Contains("'payload_encoding' tree-ensemble is only allowed for 'kind' trees", e.Message);
        e = Assert.Throws<FederationDataException>(() => ModelFile.FromTreeEnsemble(model.Header with { Dimension = 7 }, Ensemble));
        Assert.Contains("'dimension' is 7 but the tree ensemble in the payload reads 2 features", e.Message);
        bytes[^12] ^= 1;
        Assert.Contains("payload_sha256", Assert.Throws<FederationDataException>(() => ModelFile.Read(bytes, "global.cfm")).Message);
    }
}
