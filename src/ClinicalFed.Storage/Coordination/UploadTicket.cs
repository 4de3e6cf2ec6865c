using System.Text.Json.Serialization;

namespace ClinicalFed.Storage.Coordination;

/// <summary>What a site may upload with a ticket.</summary>
public static class TicketKinds
{
    /// <summary>The site's update file of the open round (<c>rounds/&lt;r&gt;/updates/&lt;site&gt;.cfu</c>).</summary>
    public const string Update = "update";

    /// <summary>The site's aggregate statistics before round 0 (<c>statistics/sites/&lt;site&gt;.json</c>).</summary>
    public const string Statistics = "statistics";

    /// <summary>Secure aggregation, phase 1: the site's round key (<c>secagg/keys/&lt;site&gt;.json</c>).</summary>
    public const string SecAggKey = "secagg-key";

    /// <summary>Phase 2: the shares the site sealed for the key set (<c>secagg/shares/&lt;site&gt;.json</c>).</summary>
    public const string SecAggShares = "secagg-shares";

    /// <summary>Phase 3: the site's masked update (<c>secagg/masked/&lt;site&gt;.cfm32</c>).</summary>
    public const string SecAggMasked = "secagg-masked";

    /// <summary>Phase 4: the shares a survivor reveals (<c>secagg/unmask/&lt;site&gt;.json</c>).</summary>
    public const string SecAggUnmask = "secagg-unmask";

    public static IReadOnlyList<string> All { get; } = [Update, Statistics, SecAggKey, SecAggShares, SecAggMasked, SecAggUnmask];
}

/// <summary>
/// A short-lived permission to create exactly one object (schemas/upload-ticket.schema.json): for Azure Blob Storage
/// a SAS URL with create permission on that one blob, which can neither read nor overwrite anything.
/// </summary>
public sealed record UploadTicket
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;

    [JsonPropertyName("federation")] public required string Federation { get; init; }

    [JsonPropertyName("site")] public required string Site { get; init; }

    /// <summary><see cref="TicketKinds.Update"/> or <see cref="TicketKinds.Statistics"/>.</summary>
    [JsonPropertyName("kind")] public required string Kind { get; init; }

    /// <summary>The round the update is for; null for statistics.</summary>
    [JsonPropertyName("round")] public int? Round { get; init; }

    /// <summary>The store path (blob name) the ticket lets the site create.</summary>
    [JsonPropertyName("path")] public required string Path { get; init; }

    /// <summary>Where to PUT the bytes (a SAS URL); secret until it expires.</summary>
    [JsonPropertyName("upload_url")] public required Uri UploadUrl { get; init; }

    [JsonPropertyName("expires_at")] public required DateTimeOffset ExpiresAt { get; init; }
}

/// <summary>A store that can let a site create one object directly, without credentials to anything else.</summary>
public interface IUploadTicketIssuer
{
    /// <summary>A URL that allows creating (not reading, not overwriting) exactly <paramref name="path"/> until <paramref name="expiresAt"/>.</summary>
    Task<Uri> CreateUploadUrlAsync(string path, DateTimeOffset expiresAt, CancellationToken cancellationToken = default);
}

/// <summary>Why a ticket was refused; <see cref="Reason"/> maps to an HTTP status.</summary>
public sealed class TicketRefusedException(TicketRefusal reason, string message) : Exception(message)
{
    public TicketRefusal Reason { get; } = reason;
}

public enum TicketRefusal
{
    /// <summary>Unknown federation or site, wrong or withdrawn key (HTTP 401/403).</summary>
    NotAuthorized,

    /// <summary>Nothing to upload now: no open round, the round is closed, the site is not expected, or it already uploaded (HTTP 409).</summary>
    NotOpen,

    /// <summary>The store cannot issue tickets (a local folder store).</summary>
    NotSupported,
}
