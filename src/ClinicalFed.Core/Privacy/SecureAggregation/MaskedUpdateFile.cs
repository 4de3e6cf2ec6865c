using System.Runtime.InteropServices;
using ClinicalFed.Federation;

namespace ClinicalFed.Privacy.SecureAggregation;

/// <summary>
/// A masked upload (<c>.cfm32</c>): magic <c>"CFMU\n"</c>, the header length as int32 little-endian, the UTF-8 JSON
/// <see cref="MaskedUpdateHeader"/> (<c>payload_encoding</c> <c>masked-ring32</c>), then <c>dimension</c> uint32
/// little-endian ring elements whose SHA-256 the header carries. A changed payload, header or trailing byte is
/// rejected with a <see cref="FederationDataException"/> naming the problem.
/// </summary>
public static class MaskedUpdateFile
{
    public const string Extension = ".cfm32";
    public static ReadOnlySpan<byte> Magic => "CFMU\n"u8;

    public static MaskedUpdateHeader Write(Stream destination, MaskedUpdateHeader header, ReadOnlySpan<uint> payload)
    {
        if (payload.Length != header.Dimension) throw new ArgumentException($"dimension {header.Dimension} but {payload.Length} values", nameof(payload));
        var bytes = MemoryMarshal.AsBytes(payload);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian");
        string sha = FramedFile.Sha256Hex(bytes);
        if (header.Signature is not null && header.PayloadSha256 != sha)
            throw new ArgumentException("the header is signed for another payload (payload_sha256 differs)", nameof(header));
        var written = header with { PayloadSha256 = sha };
        FramedFile.WriteFrame(destination, Magic, FederationJson.Serialize(written, indented: false));
        destination.Write(bytes);
        return written;
    }

    public static (MaskedUpdateHeader Header, uint[] Payload) Read(Stream source, string origin)
    {
        var json = FramedFile.ReadFrame(source, Magic, WireLimits.MaxHeaderBytes, "masked update", origin);
        var header = FederationJson.Deserialize<MaskedUpdateHeader>(json, origin);
        var problems = new List<string>();
        if (header.FormatVersion != 1) problems.Add($"header field 'format_version' is {header.FormatVersion}; expected 1");
        if (header.PayloadEncoding != SecAggJson.MaskedRing32) problems.Add($"header field 'payload_encoding' is '{header.PayloadEncoding}'; expected {SecAggJson.MaskedRing32}");
        if (header.Dimension is < 1 or > WireLimits.MaxDimension) problems.Add($"header field 'dimension' is {header.Dimension}");
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        var payload = new uint[header.Dimension];
        var bytes = MemoryMarshal.AsBytes(payload.AsSpan());
        try
        {
            source.ReadExactly(bytes);
        }
        catch (EndOfStreamException e)
        {
            throw new FederationDataException(origin, "the payload is shorter than 'dimension' uint32 values", e);
        }
        if (source.ReadByte() != -1) problems.Add("bytes follow the payload");
        if (FramedFile.Sha256Hex(bytes) != header.PayloadSha256) problems.Add("the payload does not match header field 'payload_sha256' (tampered or corrupt)");
        if (problems.Count > 0) throw new FederationDataException(origin, problems);
        return (header, payload);
    }
}
