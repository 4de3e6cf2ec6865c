using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClinicalFed.Federation;
using ClinicalFed.Storage;
using ClinicalFed.Storage.Coordination;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ClinicalFed.Functions.Tests;

/// <summary>Paths of the repository the tests run in.</summary>
internal static class Repo
{
    public static string Root { get; } = Find();

    public static string Functions => Path.Combine(Root, "functions");

    public static string Schemas => Path.Combine(Root, "schemas");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ClinicalFed.sln")) && Directory.Exists(Path.Combine(dir.FullName, "functions")))
                return dir.FullName;
        }

        throw new DirectoryNotFoundException("the repository (ClinicalFed.sln) was not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock(DateTimeOffset now) : TimeProvider
{
    private long _ticks = now.UtcTicks;

    public DateTimeOffset Now
    {
        get => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);
        set => Interlocked.Exchange(ref _ticks, value.UtcTicks);
    }

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// A local folder store that also issues upload tickets (a stand-in for Azure Blob Storage's SAS URLs, with a secret
/// signature the tests look for in logs), counts writes per object name, can hold an aggregator lease until a second
/// invocation has tried to take it (two timer invocations at once), and can fail listings.
/// </summary>
public sealed class TicketingStore(LocalFolderStore inner) : DelegatingFederationStore(inner), IUploadTicketIssuer
{
    public const string Signature = "S3cr3tSignatureValue0123456789abcdefXYZ";

    private readonly ConcurrentDictionary<string, int> _writes = new(StringComparer.Ordinal);
    private int _leaseAttempts;
    private volatile LeaseHold? _hold;

    public LocalFolderStore Inner => inner;

    public int LeaseAttempts => Volatile.Read(ref _leaseAttempts);

    /// <summary>Listing fails (a storage outage), with a message that holds a SAS-like URL.</summary>
    public bool FailListing { get; set; }

    /// <summary>The next lease holder keeps the lease (up to 10 s) until another invocation has tried to take one.</summary>
    public void HoldNextLease() => _hold = new LeaseHold(LeaseAttempts);

    public ConcurrentBag<string> IssuedUrls { get; } = [];

    /// <summary>Write attempts (successful or not) of store paths ending with <paramref name="suffix"/>.</summary>
    public int WritesEndingWith(string suffix) => _writes.Where(kv => kv.Key.EndsWith(suffix, StringComparison.Ordinal)).Sum(kv => kv.Value);

    public Task<Uri> CreateUploadUrlAsync(string path, DateTimeOffset expiresAt, CancellationToken cancellationToken = default)
    {
        var url = new Uri($"https://teststore.blob.core.windows.net/federation/{path}?sv=2025-11-05&se={Uri.EscapeDataString(expiresAt.UtcDateTime.ToString("O"))}&sr=b&sp=c&sig={Signature}");
        IssuedUrls.Add(url.ToString());
        return Task.FromResult(url);
    }

    public override Task<T> PutObjectAsync<T>(string path, Func<Stream, CancellationToken, Task<T>> write, CancellationToken cancellationToken = default)
    {
        _writes.AddOrUpdate(path, 1, (_, n) => n + 1);
        return inner.PutObjectAsync(path, write, cancellationToken);
    }

    public override Task<IReadOnlyList<string>> ListAsync(string folder, CancellationToken cancellationToken = default) =>
        FailListing ? throw new IOException($"listing {folder} failed (simulated) at https://teststore.blob.core.windows.net/federation?restype=container&sig={Signature}")
            : inner.ListAsync(folder, cancellationToken);

    public override Task<string> PutVersionedAsync(string path, ReadOnlyMemory<byte> content, string? expectedVersion, CancellationToken cancellationToken = default)
    {
        _writes.AddOrUpdate(path, 1, (_, n) => n + 1);
        return inner.PutVersionedAsync(path, content, expectedVersion, cancellationToken);
    }

    public override async Task<IStoreLease?> TryAcquireLeaseAsync(string path, TimeSpan duration, CancellationToken cancellationToken = default)
    {
        var lease = await inner.TryAcquireLeaseAsync(path, duration, cancellationToken);
        int attempt = Interlocked.Increment(ref _leaseAttempts);
        var hold = _hold;
        if (hold is null) return lease;
        if (attempt >= hold.Baseline + 2)
        {
            hold.Second.TrySetResult();
        }
        else if (lease is not null)
        {
            try
            {
                await hold.Second.Task.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            }
            catch (TimeoutException)
            {
                // The other invocation came after this one finished; the test accepts that too.
            }
        }

        return lease;
    }

    private sealed class LeaseHold(int baseline)
    {
        public int Baseline { get; } = baseline;

        public TaskCompletionSource Second { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>Everything the handler logged, through any logger.</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => _lines.ToArray();

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
        }
    }
}

/// <summary>
/// The handler in process (WebApplicationFactory) over a fresh temporary store, with a manual clock and a log capture.
/// By default the store issues tickets (<see cref="TicketingStore"/>); <c>ticketing: false</c> gives a plain
/// <see cref="LocalFolderStore"/>, which cannot.
/// </summary>
public sealed class HandlerHost : IDisposable
{
    public static readonly DateTimeOffset T0 = new(2025, 3, 1, 8, 0, 0, TimeSpan.Zero);

    private readonly WebApplicationFactory<Program> _factory;

    public HandlerHost(bool ticketing = true)
    {
        Folder = Directory.CreateTempSubdirectory("clinicalfed-functions-").FullName;
        Local = new LocalFolderStore(Folder);
        Store = ticketing ? new TicketingStore(Local) : null;
        _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(web =>
        {
            web.UseSetting(HandlerSettings.FolderSetting, Folder);
            web.UseSetting(HandlerSettings.ConnectionStringSetting, "");
            web.UseSetting(HandlerSettings.ServiceUriSetting, "");
            web.UseSetting(HandlerSettings.ContainerSetting, "");
            web.UseSetting(HandlerSettings.PrefixSetting, "");
            web.ConfigureLogging(logging => logging.AddProvider(Logs).SetMinimumLevel(LogLevel.Trace));
            web.ConfigureTestServices(services =>
            {
                services.AddSingleton<TimeProvider>(Clock);
                services.AddSingleton<FederationStore>(Store is null ? Local : Store);
            });
        });
        Client = _factory.CreateClient();
    }

    public string Folder { get; }

    public LocalFolderStore Local { get; }

    public TicketingStore? Store { get; }

    public ManualClock Clock { get; } = new(T0);

    public LogCapture Logs { get; } = new();

    public HttpClient Client { get; }

    public IServiceProvider Services => _factory.Services;

    public void Dispose()
    {
        Client.Dispose();
        _factory.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    // ---- forwarded requests (enableForwardingHttpRequest) -------------------------------------------------------

    public Task<Answer> CreateFederationAsync(string settingsJson) => SendAsync(HttpMethod.Post, "/api/federations", settingsJson);

    public async Task<string> RegisterAsync(string federation, string site)
    {
        var answer = await SendAsync(HttpMethod.Post, $"/api/federations/{federation}/sites/{site}");
        Assert.Equal(HttpStatusCode.Created, answer.Status);
        return answer.Json!["key"]!.GetValue<string>();
    }

    public Task<Answer> TicketAsync(string federation, string site, string? key, string? kind = TicketKinds.Update, string? body = null)
    {
        string query = kind is null ? "" : "?kind=" + Uri.EscapeDataString(kind);
        var headers = key is null ? null : new Dictionary<string, string> { [FunctionCatalog.SiteKeyHeader] = key };
        return SendAsync(HttpMethod.Post, $"/api/federations/{federation}/sites/{site}/tickets{query}", body, headers);
    }

    public Task<Answer> StatusAsync(string federation) => SendAsync(HttpMethod.Get, $"/api/federations/{federation}/status");

    public Task<Answer> WithdrawAsync(string federation, string site) => SendAsync(HttpMethod.Delete, $"/api/federations/{federation}/sites/{site}");

    public async Task<Answer> SendAsync(HttpMethod method, string path, string? body = null, IReadOnlyDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        foreach (var (name, value) in headers ?? new Dictionary<string, string>()) request.Headers.TryAddWithoutValidation(name, value);
        using var response = await Client.SendAsync(request);
        return await Answer.ReadAsync(response);
    }

    // ---- invocation requests (the custom handler payload) ----------------------------------------------------------

    /// <summary>The timer's invocation request, as the Functions host sends it.</summary>
    public async Task<Answer> TickAsync(bool pastDue = false)
    {
        using var response = await Client.PostAsync("/" + FunctionCatalog.AggregateRound, Payload.Json(Payload.Timer(pastDue)));
        return await Answer.ReadAsync(response);
    }

    /// <summary>An HTTP function's invocation request (forwarding off): <c>POST /&lt;name&gt;</c> with <c>Data.req</c>.</summary>
    public async Task<Answer> InvokeAsync(string function, JsonObject payload)
    {
        using var response = await Client.PostAsync("/" + function, Payload.Json(payload));
        return await Answer.ReadAsync(response);
    }

    /// <summary>Ticks, asserting the invocation succeeded; returns the outcomes.</summary>
    public async Task<JsonArray> TickOutcomesAsync()
    {
        var answer = await TickAsync();
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        return answer.Json!["ReturnValue"]!.AsArray();
    }

    // ---- the store directly -------------------------------------------------------------------------------------

    /// <summary>Stores a site's update for a round, as its upload through a ticket would.</summary>
    public async Task UploadUpdateAsync(string federation, int round, string site, float[] values, long examples = 10)
    {
        var header = new UpdateHeader
        {
            Federation = federation, Round = round, Site = site, ExampleCount = examples, ParameterKind = ParameterKinds.Full,
            Dimension = values.Length, LocalMetrics = new Dictionary<string, double> { ["loss"] = 0.5 }, CreatedAt = Clock.Now,
        };
        using var ms = new MemoryStream();
        UpdateFile.Write(ms, header, values);
        ms.Position = 0;
        await Local.PutUpdateAsync(federation, round, site, ms);
    }

    /// <summary>Every log line: the handler's loggers and every <c>Logs</c> array it answered.</summary>
    public List<string> AllLogs(IEnumerable<Answer> answers) =>
        [.. Logs.Lines, .. answers.SelectMany(a => a.Json?["Logs"] is JsonArray logs ? logs.Select(l => l!.GetValue<string>()) : [])];
}

/// <summary>A response: status, headers and the body parsed as JSON (null when empty).</summary>
public sealed record Answer(HttpStatusCode Status, JsonNode? Json, string Text, IReadOnlyDictionary<string, string> Headers)
{
    public static async Task<Answer> ReadAsync(HttpResponseMessage response)
    {
        string text = await response.Content.ReadAsStringAsync();
        var headers = response.Headers.Concat(response.Content.Headers)
            .ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase);
        return new Answer(response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text), text, headers);
    }

    /// <summary>For an invocation answer: <c>Outputs.res</c>.</summary>
    public JsonObject Res => Json!["Outputs"]!["res"]!.AsObject();

    public int ResStatus => Res["statusCode"]!.GetValue<int>();

    /// <summary>For an invocation answer: <c>Outputs.res.body</c>, parsed.</summary>
    public JsonNode ResBody => JsonNode.Parse(Res["body"]!.GetValue<string>())!;
}

/// <summary>Invocation payloads shaped like the Functions host's (PascalCase, headers as arrays, query as an object).</summary>
public static class Payload
{
    public static StringContent Json(JsonNode node) => new(node.ToJsonString(), Encoding.UTF8, "application/json");

    public static JsonObject Timer(bool pastDue = false) => new()
    {
        ["Data"] = new JsonObject
        {
            ["timer"] = new JsonObject
            {
                ["Schedule"] = new JsonObject { ["AdjustForDST"] = true },
                ["ScheduleStatus"] = new JsonObject
                {
                    ["Last"] = "2025-03-01T07:55:00+00:00", ["Next"] = "2025-03-01T08:00:00+00:00", ["LastUpdated"] = "2025-03-01T07:55:00+00:00",
                },
                ["IsPastDue"] = pastDue,
            },
        },
        ["Metadata"] = new JsonObject
        {
            ["sys"] = new JsonObject { ["MethodName"] = FunctionCatalog.AggregateRound, ["UtcNow"] = "2025-03-01T08:00:00.0123456Z", ["RandGuid"] = Guid.NewGuid().ToString() },
        },
    };

    /// <summary><c>{"Data": {"req": {Url, Method, Query, Headers, Params, Body}}, "Metadata": {...}}</c> for an HTTP function.</summary>
    public static JsonObject Http(HttpFunction function, IReadOnlyDictionary<string, string>? routeValues = null, string? body = null,
        IReadOnlyDictionary<string, string>? query = null, IReadOnlyDictionary<string, string>? headers = null, string? method = null,
        bool sendParams = true, bool queryAsString = false)
    {
        string path = function.Route;
        foreach (var (k, v) in routeValues ?? new Dictionary<string, string>()) path = path.Replace("{" + k + "}", Uri.EscapeDataString(v), StringComparison.Ordinal);
        string queryString = query is { Count: > 0 } ? "?" + string.Join("&", query.Select(kv => $"{kv.Key}={Uri.EscapeDataString(kv.Value)}")) : "";
        var headerObject = new JsonObject { ["Content-Type"] = new JsonArray("application/json"), ["User-Agent"] = new JsonArray("test") };
        foreach (var (k, v) in headers ?? new Dictionary<string, string>()) headerObject[k] = new JsonArray(v);
        var queryObject = new JsonObject();
        foreach (var (k, v) in query ?? new Dictionary<string, string>()) queryObject[k] = v;
        var req = new JsonObject
        {
            ["Url"] = $"https://clinicalfed-test.azurewebsites.net/{FunctionCatalog.RoutePrefix}/{path}{queryString}",
            ["Method"] = method ?? function.Method,
            ["Query"] = queryAsString ? JsonValue.Create(queryObject.ToJsonString()) : queryObject,
            ["Headers"] = headerObject,
            ["Identities"] = new JsonArray(),
        };
        if (sendParams)
        {
            var p = new JsonObject();
            foreach (var (k, v) in routeValues ?? new Dictionary<string, string>()) p[k] = v;
            req["Params"] = p;
        }

        if (body is not null) req["Body"] = body;
        var metadata = new JsonObject
        {
            ["sys"] = new JsonObject { ["MethodName"] = function.Name, ["UtcNow"] = "2025-03-01T08:00:00Z", ["RandGuid"] = Guid.NewGuid().ToString() },
        };
        foreach (var (k, v) in routeValues ?? new Dictionary<string, string>()) metadata[k] = v;
        return new JsonObject { ["Data"] = new JsonObject { [FunctionCatalog.RequestBinding] = req }, ["Metadata"] = metadata };
    }
}

internal static class Fixtures
{
    public const string Federation = "sepsis";

    /// <summary>CreateFederation's body: three-parameter logistic model, FedAvg, no statistics phase unless asked.</summary>
    public static string Settings(string federation = Federation, int rounds = 3, int quorum = 2, int roundSeconds = 3600, bool statistics = false) =>
        new JsonObject
        {
            ["federation"] = federation,
            ["description"] = "functions tests",
            ["model"] = new JsonObject { ["kind"] = ModelKinds.Logistic, ["dimension"] = 3, ["feature_spec_id"] = "sepsis-hourly", ["feature_spec_version"] = "1.0.0" },
            ["strategy"] = new JsonObject { ["name"] = StrategyNames.FedAvg, ["options"] = new JsonObject() },
            ["rounds"] = rounds,
            ["quorum"] = quorum,
            ["round_seconds"] = roundSeconds,
            ["statistics"] = statistics,
        }.ToJsonString();

    /// <summary>A federation with sites A and B registered and round 0 open; returns the sites' keys.</summary>
    public static async Task<(string KeyA, string KeyB)> OpenRoundZeroAsync(HandlerHost host, int rounds = 3, int quorum = 2)
    {
        var created = await host.CreateFederationAsync(Settings(rounds: rounds, quorum: quorum));
        Assert.Equal(HttpStatusCode.Created, created.Status);
        string a = await host.RegisterAsync(Federation, "A");
        string b = await host.RegisterAsync(Federation, "B");
        var outcomes = await host.TickOutcomesAsync();
        Assert.Equal("round_opened", outcomes.Single()!["action"]!.GetValue<string>());
        return (a, b);
    }

    public static JsonElement Element(JsonNode node) => JsonDocument.Parse(node.ToJsonString()).RootElement.Clone();
}

/// <summary>A test class with its own handler over a fresh store (<see cref="Host"/>), disposed after each test.</summary>
public abstract class HandlerTest : IDisposable
{
    /// <summary>The federation most tests use.</summary>
    protected const string F = Fixtures.Federation;

    protected HandlerHost Host { get; } = new();

    public void Dispose()
    {
        Host.Dispose();
        GC.SuppressFinalize(this);
    }
}
