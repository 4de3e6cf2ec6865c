using ClinicalFed.Federation;
using ClinicalFed.Storage;

namespace ClinicalFed.Storage.Tests;

/// <summary>A store in a fresh temporary folder, deleted afterwards.</summary>
public sealed class TempStore : IDisposable
{
    public TempStore()
    {
        Folder = Directory.CreateTempSubdirectory("clinicalfed-store-").FullName;
        Store = new LocalFolderStore(Folder);
    }

    public string Folder { get; }

    public LocalFolderStore Store { get; }

    /// <summary>Every file under the store, relative, '/'-separated, sorted (temporary files included).</summary>
    public string[] AllFiles() => Directory.EnumerateFiles(Folder, "*", SearchOption.AllDirectories)
        .Select(f => Path.GetRelativePath(Folder, f).Replace(Path.DirectorySeparatorChar, '/'))
        .Order(StringComparer.Ordinal).ToArray();

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>Gives out <paramref name="failAfter"/> bytes of <paramref name="data"/>, then throws: a connection dropping mid-upload.</summary>
public sealed class FailingStream(byte[] data, int failAfter) : Stream
{
    private int _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_position >= failAfter) throw new IOException("connection reset by peer (simulated)");
        int n = Math.Min(count, Math.Min(failAfter, data.Length) - _position);
        Array.Copy(data, _position, buffer, offset, n);
        _position += n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

internal static class Fixtures
{
    public const string Federation = "sepsis";
    public static readonly DateTimeOffset T0 = new(2025, 3, 1, 8, 0, 0, TimeSpan.Zero);

    public static RoundManifest Manifest(int round = 0, StrategySpec? strategy = null, int dimension = 3, IReadOnlyList<string>? sites = null, int quorum = 2) => new()
    {
        Federation = Federation,
        Round = round,
        Strategy = strategy ?? new StrategySpec { Name = StrategyNames.FedAvg },
        Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = dimension, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
        GlobalModel = round == 0 ? null : GlobalModelPath.Format(Federation, round - 1),
        Quorum = quorum,
        Sites = sites ?? ["A", "B", "C"],
        OpenedAt = T0.AddDays(round),
        Deadline = T0.AddDays(round).AddHours(6),
    };

    public static UpdateHeader Header(string site, long examples, int round = 0, int dimension = 3, string kind = ParameterKinds.Full,
        IReadOnlyDictionary<string, double>? metrics = null) => new()
        {
            Federation = Federation,
            Round = round,
            Site = site,
            ExampleCount = examples,
            ParameterKind = kind,
            Dimension = dimension,
            LocalMetrics = metrics ?? new Dictionary<string, double>(),
            CreatedAt = T0.AddMinutes(30),
        };

    public static byte[] UpdateBytes(UpdateHeader header, float[] payload)
    {
        using var ms = new MemoryStream();
        UpdateFile.Write(ms, header, payload);
        return ms.ToArray();
    }

    public static ModelFile Model(float[] parameters, int round = 0, string? site = null) =>
        ModelFile.FromParameters(new ModelHeader
        {
            Federation = Federation,
            Round = round,
            Site = site,
            Kind = ModelKinds.Logistic,
            Dimension = parameters.Length,
            FeatureSpecId = "sepsis-hourly",
            FeatureSpecVersion = "1.0.0",
            Strategy = site is null ? StrategyNames.FedAvg : "fine-tune",
            Sites = site is null ? ["A", "B"] : [site],
            ExampleCount = 42,
            CreatedAt = T0,
        }, parameters);

    public static RoundResult Result(int round = 0) => new()
    {
        Federation = Federation,
        Round = round,
        Strategy = StrategyNames.FedAvg,
        Status = RoundStatuses.Aggregated,
        Quorum = 1,
        Accepted = [new AcceptedUpdate { Site = "A", ExampleCount = 3, ParameterKind = ParameterKinds.Full, UpdateNorm = 1.5, PayloadSha256 = new string('a', 64) }],
        Rejected = [new RejectedUpdate { Site = "B", Reason = "late" }],
        Missing = ["C"],
        ExampleCount = 3,
        GlobalModel = GlobalModelPath.Format(Federation, round),
        CompletedAt = T0.AddHours(7),
    };
}

/// <summary>
/// Wraps a store at the level of its primitives: counts update streams open at once, and can fail writes of chosen
/// objects the way a process killed at that moment would (nothing written).
/// </summary>
internal sealed class CountingStore(FederationStore inner) : DelegatingFederationStore(inner)
{
    private int _open, _opened, _maxOpen;

    // Thread-safe: the aggregator opens updates from several read-ahead threads.
    public int Opened => Volatile.Read(ref _opened);

    public int MaxOpenAtOnce => Volatile.Read(ref _maxOpen);

    public int OpenNow => _open;

    /// <summary>Writes of objects whose store path ends with one of these fail with an IOException.</summary>
    public HashSet<string> FailWritesEndingWith { get; } = new(StringComparer.Ordinal);

    public bool FailGlobalModelWrites
    {
        get => FailWritesEndingWith.Contains("/" + StoreLayout.GlobalModelFileName);
        init
        {
            if (value) FailWritesEndingWith.Add("/" + StoreLayout.GlobalModelFileName);
        }
    }

    public override Task<T> PutObjectAsync<T>(string path, Func<Stream, CancellationToken, Task<T>> write, CancellationToken cancellationToken = default) =>
        FailWritesEndingWith.Any(path.EndsWith) ? throw new IOException($"process killed while writing {path} (simulated)") : base.PutObjectAsync(path, write, cancellationToken);

    public override Task<string> PutVersionedAsync(string path, ReadOnlyMemory<byte> content, string? expectedVersion, CancellationToken cancellationToken = default) =>
        FailWritesEndingWith.Any(path.EndsWith) ? throw new IOException($"process killed while writing {path} (simulated)") : base.PutVersionedAsync(path, content, expectedVersion, cancellationToken);

    /// <summary>Updates are opened here (with their version); the tracked stream hides the version, so readers hash in full.</summary>
    public override async Task<(Stream Stream, string? Version)?> OpenObjectWithVersionAsync(string path, CancellationToken cancellationToken = default)
    {
        var opened = await base.OpenObjectWithVersionAsync(path, cancellationToken);
        if (opened is not { } o || !path.EndsWith(UpdateFile.Extension, StringComparison.Ordinal)) return opened;
        Interlocked.Increment(ref _opened);
        int now = Interlocked.Increment(ref _open);
        for (int max = Volatile.Read(ref _maxOpen); now > max && Interlocked.CompareExchange(ref _maxOpen, now, max) != max; max = Volatile.Read(ref _maxOpen))
        {
        }
        return (new Tracked(o.Stream, () => Interlocked.Decrement(ref _open)), null);
    }

    private sealed class Tracked(Stream inner, Action onDispose) : ReadOnlyStreamWrapper(inner)
    {
        private bool _disposed;

        protected override void Dispose(bool disposing)
        {
            if (disposing && !_disposed)
            {
                _disposed = true;
                onDispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>A local store that hands out fake upload URLs (the real SAS comes from the blob store).</summary>
public sealed class TicketingStore(FederationStore inner) : DelegatingFederationStore(inner), ClinicalFed.Storage.Coordination.IUploadTicketIssuer
{
    public Task<Uri> CreateUploadUrlAsync(string path, DateTimeOffset expiresAt, CancellationToken cancellationToken = default) =>
        Task.FromResult(new Uri($"https://example.invalid/{path}?se={expiresAt.ToUnixTimeSeconds()}"));
}
