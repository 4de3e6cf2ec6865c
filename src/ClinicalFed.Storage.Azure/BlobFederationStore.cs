using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Sas;
using ClinicalFed.Storage.Coordination;

namespace ClinicalFed.Storage.Azure;

/// <summary>Settings of a <see cref="BlobFederationStore"/> beyond its container.</summary>
public sealed record BlobFederationStoreOptions
{
    /// <summary>
    /// A folder inside the container that holds the store (blob names are <c>&lt;prefix&gt;/&lt;store path&gt;</c>), so
    /// that several stores can share one container; null or empty for the container's root.
    /// </summary>
    public string? Prefix { get; init; }

    /// <summary>Create the container on first use when it does not exist (needs the right to create containers).</summary>
    public bool CreateContainerIfMissing { get; init; }

    /// <summary>Client options (retries, transport); default <see cref="BlobFederationStore.CreateClientOptions"/>.</summary>
    public BlobClientOptions? ClientOptions { get; init; }

    /// <summary>Content of a write up to this many bytes is buffered in memory, beyond it in a temporary file.</summary>
    public int SpillThresholdBytes { get; init; } = SpillBuffer.DefaultThreshold;
}

/// <summary>
/// The federation store in Azure Blob Storage (schemas/store-layout.md, "Azure Blob Storage"): one container, an
/// optional prefix inside it, and the store paths of <see cref="StoreLayout"/> as blob names. The primitives:
/// <list type="bullet">
/// <item>write-once: the write delegate's content is buffered completely (memory, then a temporary file above
/// <see cref="BlobFederationStoreOptions.SpillThresholdBytes"/>) and uploaded only if the delegate returns, with
/// <c>If-None-Match: *</c>, so a failed write uploads nothing and of racing writers exactly one wins;</item>
/// <item>the versioned document: the blob's ETag, replaced with <c>If-Match</c> (or created with <c>If-None-Match: *</c>);</item>
/// <item>leases: a blob lease (15 to 60 s) on the lease path's blob, created empty when absent;</item>
/// <item>listing: a hierarchical listing with delimiter <c>/</c>.</item>
/// </list>
/// It also issues upload tickets (<see cref="IUploadTicketIssuer"/>): a SAS URL that can create exactly one blob,
/// signed with the account key (connection string) or a user delegation key (Microsoft Entra ID credential).
/// </summary>
public sealed class BlobFederationStore : FederationStore, IUploadTicketIssuer
{
    /// <summary>
    /// The Blob service REST version every request uses: the newest one Azurite 3.35 (the emulator the tests run on)
    /// accepts, so that the tests exercise exactly what production sends.
    /// </summary>
    public const BlobClientOptions.ServiceVersion ServiceVersion = BlobClientOptions.ServiceVersion.V2025_11_05;

    /// <summary>Blob leases last 15 to 60 seconds (or forever, which a crashed holder must never leave behind).</summary>
    public static readonly TimeSpan MinLeaseDuration = TimeSpan.FromSeconds(15);

    public static readonly TimeSpan MaxLeaseDuration = TimeSpan.FromSeconds(60);

    // Metadata naming the upload that wrote a blob: a write whose response was lost and that the client retried finds
    // its own blob (409/412) and succeeds instead of reporting a conflict with itself.
    private const string WriterMetadata = "clinicalfedwriter";

    private static readonly TimeSpan MaxDelegationKeyLifetime = TimeSpan.FromDays(7);

    private readonly BlobContainerClient _container;
    private readonly string _prefix;
    private readonly bool _createContainer;
    private readonly int _spillThreshold;
    private readonly object _gate = new();
    private readonly SemaphoreSlim _keyGate = new(1, 1);
    private Task? _ready;
    private UserDelegationKey? _delegationKey;

    /// <summary>A store authorized by a connection string (account key, or SAS with the needed permissions).</summary>
    public BlobFederationStore(string connectionString, string containerName, BlobFederationStoreOptions? options = null)
        : this(new BlobContainerClient(RequireNonEmpty(connectionString, nameof(connectionString)), RequireNonEmpty(containerName, nameof(containerName)),
            options?.ClientOptions ?? CreateClientOptions()), options)
    {
    }

    /// <summary>
    /// A store authorized by Microsoft Entra ID: <paramref name="credential"/>, or <see cref="DefaultAzureCredential"/>
    /// (managed identity in Azure, developer sign-in locally) when null. The identity needs the role
    /// <em>Storage Blob Data Contributor</em> on the container (or account); issuing upload tickets also needs
    /// <c>generateUserDelegationKey</c>, which that role includes at account scope.
    /// </summary>
    public BlobFederationStore(Uri serviceUri, string containerName, TokenCredential? credential = null, BlobFederationStoreOptions? options = null)
        : this(new BlobServiceClient(serviceUri ?? throw new ArgumentNullException(nameof(serviceUri)), credential ?? new DefaultAzureCredential(),
            options?.ClientOptions ?? CreateClientOptions()).GetBlobContainerClient(RequireNonEmpty(containerName, nameof(containerName))), options)
    {
    }

    /// <summary>A store over a container client that the caller configured (credentials, pipeline).</summary>
    public BlobFederationStore(BlobContainerClient container, BlobFederationStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        options ??= new BlobFederationStoreOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.SpillThresholdBytes);
        _container = container;
        _prefix = NormalizePrefix(options.Prefix);
        _createContainer = options.CreateContainerIfMissing;
        _spillThreshold = options.SpillThresholdBytes;
    }

    /// <summary>
    /// A store from one configuration string: an <c>https://</c> (or <c>http://</c>) service URL is authorized with
    /// <see cref="DefaultAzureCredential"/>, anything else is taken as a connection string.
    /// </summary>
    public static BlobFederationStore Connect(string connectionStringOrServiceUri, string containerName, BlobFederationStoreOptions? options = null)
    {
        RequireNonEmpty(connectionStringOrServiceUri, nameof(connectionStringOrServiceUri));
        return Uri.TryCreate(connectionStringOrServiceUri, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp)
            ? new BlobFederationStore(uri, containerName, null, options)
            : new BlobFederationStore(connectionStringOrServiceUri, containerName, options);
    }

    /// <summary>Client options pinned to <see cref="ServiceVersion"/>.</summary>
    public static BlobClientOptions CreateClientOptions() => new(ServiceVersion);

    /// <summary>The container client.</summary>
    public BlobContainerClient Container => _container;

    /// <summary>The folder inside the container ("" for its root), without slashes at either end.</summary>
    public string Prefix => _prefix;

    /// <summary>The blob name of a store path: <c>&lt;prefix&gt;/&lt;path&gt;</c>.</summary>
    public string BlobName(string storePath)
    {
        ValidatePath(storePath, nameof(storePath));
        return _prefix.Length == 0 ? storePath : $"{_prefix}/{storePath}";
    }

    /// <summary>Creates the container when it does not exist.</summary>
    public async Task EnsureContainerAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            // Created concurrently (or still being deleted, which the next request reports).
        }
    }

    // ---- primitives -------------------------------------------------------------------------------------------

    public override async Task<T> PutObjectAsync<T>(string path, Func<Stream, CancellationToken, Task<T>> write, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        var blob = Blob(path);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        // Refuse before producing (and buffering) content that could never be stored.
        if (await blob.ExistsAsync(cancellationToken).ConfigureAwait(false)) throw new StoreObjectExistsException(path);

        var buffer = new SpillBuffer(_spillThreshold);
        await using (buffer.ConfigureAwait(false))
        {
            var value = await write(buffer, cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            buffer.Position = 0;
            string writer = Guid.NewGuid().ToString("N");
            try
            {
                await blob.UploadAsync(buffer, new BlobUploadOptions
                {
                    Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                    Metadata = new Dictionary<string, string> { [WriterMetadata] = writer },
                }, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (IsConflict(e))
            {
                if (await WrittenByAsync(blob, writer, cancellationToken).ConfigureAwait(false) is null)
                    throw new StoreObjectExistsException(path, e);
            }

            return value;
        }
    }

    public override async Task<Stream?> OpenObjectAsync(string path, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        try
        {
            var response = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    public override async Task<bool> ExistsAsync(string path, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        try
        {
            return (await blob.ExistsAsync(cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }

    public override async Task<IReadOnlyList<string>> ListAsync(string folder, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(folder);
        string prefix = folder.Length == 0 ? (_prefix.Length == 0 ? "" : _prefix + "/") : BlobName(folder) + "/";
        var names = new SortedSet<string>(StringComparer.Ordinal);
        try
        {
            var pages = _container.GetBlobsByHierarchyAsync(new GetBlobsByHierarchyOptions { Delimiter = "/", Prefix = prefix }, cancellationToken);
            await foreach (var item in pages.ConfigureAwait(false))
            {
                string full = item.IsPrefix ? item.Prefix : item.Blob.Name;
                if (!full.StartsWith(prefix, StringComparison.Ordinal)) continue;
                string name = full[prefix.Length..].TrimEnd('/');
                if (name.Length == 0 || name.StartsWith('.') || name.Contains('/')) continue;
                names.Add(name);
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return [];
        }

        return names.ToArray();
    }

    public override async Task<VersionedObject?> GetVersionedAsync(string path, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        try
        {
            var result = (await blob.DownloadContentAsync(cancellationToken).ConfigureAwait(false)).Value;
            return new VersionedObject(result.Content.ToArray(), result.Details.ETag.ToString());
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    public override async Task<string> PutVersionedAsync(string path, ReadOnlyMemory<byte> content, string? expectedVersion, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        string writer = Guid.NewGuid().ToString("N");
        var conditions = expectedVersion is null
            ? new BlobRequestConditions { IfNoneMatch = ETag.All }
            : new BlobRequestConditions { IfMatch = new ETag(expectedVersion) };
        try
        {
            var response = await blob.UploadAsync(new BinaryData(content), new BlobUploadOptions
            {
                Conditions = conditions,
                Metadata = new Dictionary<string, string> { [WriterMetadata] = writer },
            }, cancellationToken).ConfigureAwait(false);
            return response.Value.ETag.ToString();
        }
        catch (RequestFailedException e) when (IsConflict(e) || (e.Status == 404 && expectedVersion is not null))
        {
            if (await WrittenByAsync(blob, writer, cancellationToken).ConfigureAwait(false) is { } etag) return etag.ToString();
            string why = expectedVersion is null ? "it already exists"
                : e.Status == 404 || !await ExistsAsync(path, cancellationToken).ConfigureAwait(false) ? "it no longer exists"
                : "another writer changed it";
            throw new StoreVersionConflictException(path, why, e);
        }
    }

    /// <summary>
    /// A blob lease on <paramref name="path"/>'s blob (created empty when absent). Blob leases last 15 to 60 s:
    /// <paramref name="duration"/> is clamped to that range, and the holder renews with
    /// <see cref="IStoreLease.RenewAsync"/>. A holder that dies loses the lease when it expires.
    /// </summary>
    public override async Task<IStoreLease?> TryAcquireLeaseAsync(string path, TimeSpan duration, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var leaseDuration = duration < MinLeaseDuration ? MinLeaseDuration : duration > MaxLeaseDuration ? MaxLeaseDuration : duration;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await blob.UploadAsync(BinaryData.Empty, new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (IsConflict(e))
            {
                // It exists (and may be leased): fine.
            }

            var leaseClient = blob.GetBlobLeaseClient();
            try
            {
                await leaseClient.AcquireAsync(leaseDuration, cancellationToken: cancellationToken).ConfigureAwait(false);
                return new BlobLease(path, leaseClient);
            }
            catch (RequestFailedException e) when (e.Status == 409)
            {
                return null; // LeaseAlreadyPresent: someone else holds it
            }
            catch (RequestFailedException e) when (e.Status == 404 && attempt == 0)
            {
                // Deleted between creating and leasing it: create it again.
            }
        }
    }

    // ---- upload tickets ----------------------------------------------------------------------------------------

    /// <summary>
    /// A SAS URL for exactly <paramref name="path"/>'s blob with <em>create</em> permission only (it can write the
    /// blob while it does not exist; it cannot read, overwrite or delete it, nor touch any other blob), valid until
    /// <paramref name="expiresAt"/>. Signed with the account key when the store has one, otherwise with a user
    /// delegation key of the store's Entra ID identity (cached and reused while it covers the expiry).
    /// </summary>
    public async Task<Uri> CreateUploadUrlAsync(string path, DateTimeOffset expiresAt, CancellationToken cancellationToken = default)
    {
        var blob = Blob(path);
        var now = DateTimeOffset.UtcNow;
        if (expiresAt <= now) throw new ArgumentOutOfRangeException(nameof(expiresAt), expiresAt, "an upload URL must expire in the future");
        if (expiresAt > now + MaxDelegationKeyLifetime)
            throw new ArgumentOutOfRangeException(nameof(expiresAt), expiresAt, "an upload URL may be valid for at most 7 days");
        var builder = new BlobSasBuilder(BlobSasPermissions.Create, expiresAt)
        {
            BlobContainerName = _container.Name,
            BlobName = blob.Name,
            Resource = "b",
            Protocol = blob.Uri.Scheme == Uri.UriSchemeHttps ? SasProtocol.Https : SasProtocol.HttpsAndHttp,
        };
        if (blob.CanGenerateSasUri) return blob.GenerateSasUri(builder);

        var key = await DelegationKeyAsync(expiresAt, cancellationToken).ConfigureAwait(false);
        return new BlobUriBuilder(blob.Uri) { Sas = builder.ToSasQueryParameters(key, _container.AccountName) }.ToUri();
    }

    private async Task<UserDelegationKey> DelegationKeyAsync(DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        await _keyGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = DateTimeOffset.UtcNow;
            if (_delegationKey is { } cached && cached.SignedStartsOn <= now && cached.SignedExpiresOn >= expiresAt) return cached;
            var service = _container.GetParentBlobServiceClient();
            // Valid from a little before now (clock skew) for a day, or up to the ticket's expiry if later (7 days at most).
            var until = expiresAt > now.AddDays(1) ? expiresAt : now.AddDays(1);
            if (until > now + MaxDelegationKeyLifetime) until = now + MaxDelegationKeyLifetime;
            var key = (await service.GetUserDelegationKeyAsync(new BlobGetUserDelegationKeyOptions(until) { StartsOn = now.AddMinutes(-5) }, cancellationToken)
                .ConfigureAwait(false)).Value;
            _delegationKey = key;
            return key;
        }
        catch (RequestFailedException e) when (e.Status == 403)
        {
            throw new InvalidOperationException(
                $"the store's identity may not create user delegation keys for account '{_container.AccountName}' ({e.ErrorCode}); upload tickets need the " +
                "'Storage Blob Data Contributor' role (or Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action) at account scope", e);
        }
        finally
        {
            _keyGate.Release();
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------------------

    private BlobClient Blob(string storePath) => _container.GetBlobClient(BlobName(storePath));

    private Task ReadyAsync(CancellationToken cancellationToken)
    {
        if (!_createContainer) return Task.CompletedTask;
        Task ready;
        lock (_gate)
        {
            if (_ready is null || _ready.IsFaulted || _ready.IsCanceled) _ready = EnsureContainerAsync(CancellationToken.None);
            ready = _ready;
        }

        return ready.IsCompletedSuccessfully ? Task.CompletedTask : ready.WaitAsync(cancellationToken);
    }

    /// <summary>409 (exists, lease present) or 412 (a condition failed): the conditional write lost.</summary>
    private static bool IsConflict(RequestFailedException e) => e.Status is 409 or 412;

    /// <summary>The blob's ETag when the upload <paramref name="writer"/> wrote it (its response was lost), else null.</summary>
    private static async Task<ETag?> WrittenByAsync(BlobClient blob, string writer, CancellationToken cancellationToken)
    {
        try
        {
            var properties = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
            return properties.Metadata.TryGetValue(WriterMetadata, out var stored) && stored == writer ? properties.ETag : null;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    private static string NormalizePrefix(string? prefix)
    {
        if (string.IsNullOrEmpty(prefix)) return "";
        var trimmed = prefix.Trim('/');
        if (trimmed.Length == 0) return "";
        ValidatePath(trimmed, nameof(prefix));
        return trimmed;
    }

    private static void ValidatePath(string path, string paramName)
    {
        ArgumentException.ThrowIfNullOrEmpty(path, paramName);
        string? problem = path.Length > 900 ? "it is longer than 900 characters"
            : path.Contains('\\') ? "it contains a backslash"
            : path.Split('/').Any(s => s.Length == 0 || s == "." || s == "..") ? "it has an empty, '.' or '..' segment"
            : path.Any(char.IsControl) ? "it contains a control character"
            : null;
        if (problem is not null) throw new ArgumentException($"'{path}' is not a valid store path: {problem}", paramName);
    }

    private static string RequireNonEmpty(string value, string paramName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value, paramName);
        return value;
    }

    private sealed class BlobLease(string path, BlobLeaseClient client) : IStoreLease
    {
        private int _released;

        public string Path { get; } = path;

        public async Task RenewAsync(CancellationToken cancellationToken = default)
        {
            if (Volatile.Read(ref _released) != 0) throw new InvalidOperationException($"the lease on {Path} was released");
            try
            {
                await client.RenewAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
            {
                throw new InvalidOperationException($"the lease on {Path} was lost ({e.ErrorCode}): it expired and another holder took it, or the blob was deleted", e);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            try
            {
                await client.ReleaseAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is RequestFailedException or AggregateException or IOException or HttpRequestException)
            {
                // Lost already, or unreachable: the lease expires by itself within its duration.
            }
        }
    }
}
