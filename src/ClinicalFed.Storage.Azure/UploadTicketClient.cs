using System.Globalization;
using System.Web;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace ClinicalFed.Storage.Azure;

/// <summary>
/// The upload URL of a ticket was refused: it expired, or it does not allow this request (for example another blob,
/// or a URL that was altered). Ask for a new ticket.
/// </summary>
public sealed class UploadTicketRejectedException : IOException
{
    public UploadTicketRejectedException(string message, int status, string? errorCode, DateTimeOffset? expiresAt, Exception? inner = null)
        : base(message, inner)
    {
        Status = status;
        ErrorCode = errorCode;
        ExpiresAt = expiresAt;
    }

    /// <summary>The HTTP status of the refusal (403 for an expired or insufficient SAS).</summary>
    public int Status { get; }

    /// <summary>The storage error code, e.g. <c>AuthenticationFailed</c> or <c>AuthorizationPermissionMismatch</c>.</summary>
    public string? ErrorCode { get; }

    /// <summary>The expiry the URL states (its <c>se</c> parameter), if any.</summary>
    public DateTimeOffset? ExpiresAt { get; }
}

/// <summary>
/// What a site runs to upload with a ticket (<see cref="ClinicalFed.Storage.Coordination.UploadTicket.UploadUrl"/>):
/// one HTTP PUT of the whole file as a block blob with <c>If-None-Match: *</c>, so an existing object is never
/// replaced. Needs no credentials beyond the URL.
/// </summary>
public static class UploadTicketClient
{
    // One Put Blob request whatever the size (up to 4000 MiB; an update is at most 1 GiB): a create-only SAS is not
    // meant for block staging, and one request is what makes the upload all or nothing.
    private const long SingleRequestLimit = 4000L << 20;

    /// <summary>
    /// Uploads <paramref name="content"/> (read from its current position to the end) to the ticket's URL.
    /// Throws <see cref="StoreObjectExistsException"/> when the object already exists, and
    /// <see cref="UploadTicketRejectedException"/> when the URL expired or does not allow the upload.
    /// </summary>
    public static async Task UploadAsync(Uri uploadUrl, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uploadUrl);
        ArgumentNullException.ThrowIfNull(content);
        var blob = new BlobClient(uploadUrl, BlobFederationStore.CreateClientOptions());
        try
        {
            await blob.UploadAsync(content, new BlobUploadOptions
            {
                Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                TransferOptions = new StorageTransferOptions { InitialTransferSize = SingleRequestLimit, MaximumTransferSize = SingleRequestLimit },
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            throw new StoreObjectExistsException(blob.Name, e);
        }
        catch (RequestFailedException e) when (e.Status == 403 && e.ErrorCode == "AuthorizationPermissionMismatch" && IsCreateOnly(uploadUrl) && !HasExpired(uploadUrl))
        {
            // A valid create-only signature refused for lack of permission: the blob exists, and the ticket may not
            // overwrite it (the service checks permissions before the If-None-Match condition).
            throw new StoreObjectExistsException(blob.Name, e);
        }
        catch (RequestFailedException e) when (e.Status is 401 or 403)
        {
            var expires = ExpiryOf(uploadUrl);
            string why = HasExpired(uploadUrl)
                ? $"the ticket expired at {expires:O}"
                : "the ticket does not allow this upload (wrong object, altered URL, or a ticket of another store)";
            throw new UploadTicketRejectedException(
                $"the upload of {blob.Name} was refused (HTTP {e.Status} {e.ErrorCode}): {why}; ask the aggregator for a new ticket",
                e.Status, e.ErrorCode, expires, e);
        }
    }

    private static bool HasExpired(Uri uploadUrl) => ExpiryOf(uploadUrl) is { } at && at <= DateTimeOffset.UtcNow;

    private static bool IsCreateOnly(Uri uploadUrl) => HttpUtility.ParseQueryString(uploadUrl.Query)["sp"] == "c";

    /// <summary>The <c>se</c> (signed expiry) of a SAS URL, or null.</summary>
    public static DateTimeOffset? ExpiryOf(Uri uploadUrl)
    {
        ArgumentNullException.ThrowIfNull(uploadUrl);
        var se = HttpUtility.ParseQueryString(uploadUrl.Query)["se"];
        return se is not null && DateTimeOffset.TryParse(se, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)
            ? at
            : null;
    }
}
