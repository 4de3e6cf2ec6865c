using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ClinicalFed.Testing;

/// <summary>
/// An Azurite blob endpoint for tests (xunit collection fixture <see cref="AzuriteCollection"/>). When
/// <see cref="EnvironmentVariable"/> is set (as .ci/run does) its connection string is used as is. Otherwise the
/// fixture starts <c>azurite-blob</c> itself on a free loopback port with a temporary data folder: from
/// <c>.ci/.tools</c> (installing the pinned version there with npm if it is missing), or from PATH when npm is not
/// available. It stops that process, by its id, and deletes the folder when the tests are done. Uses nothing but
/// the base library, so that any test project can link this file.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    /// <summary>The environment variable with the connection string of a running Azurite (set by .ci/run).</summary>
    public const string EnvironmentVariable = "CLINICALFED_AZURITE_CONNECTION_STRING";

    /// <summary>The Azurite release .ci/run installs (the newest one that runs on Node.js 20).</summary>
    public const string PinnedVersion = "3.35.0";

    /// <summary>Azurite's well-known development account (public, documented by Microsoft; not a secret).</summary>
    public const string AccountName = "devstoreaccount1";

    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);

    private readonly ConcurrentQueue<string> _output = new();
    private Process? _process;
    private string? _location;

    /// <summary>The connection string (account key) of the blob endpoint.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>The blob endpoint, <c>http://127.0.0.1:PORT/devstoreaccount1</c>.</summary>
    public Uri BlobEndpoint { get; private set; } = new("http://127.0.0.1/");

    /// <summary>The id of the Azurite process this fixture started, or null when it uses an external one.</summary>
    public int? ProcessId => _process?.Id;

    /// <summary>A new container name, unique per call (3 to 63 lower-case letters, digits and dashes).</summary>
    public static string NewContainerName(string hint = "t")
    {
        var clean = new string(hint.ToLowerInvariant().Where(c => char.IsAsciiLetterOrDigit(c)).Take(20).ToArray());
        return $"{(clean.Length == 0 ? "t" : clean)}-{Guid.NewGuid():N}";
    }

    public async Task InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            ConnectionString = external;
            BlobEndpoint = new Uri(ParseConnectionString(external).GetValueOrDefault("BlobEndpoint")
                ?? throw new InvalidOperationException($"{EnvironmentVariable} has no BlobEndpoint"));
            return;
        }

        var (command, argsPrefix, pinned) = await FindAzuriteAsync().ConfigureAwait(false);
        int port = FreePort();
        _location = Directory.CreateTempSubdirectory("clinicalfed-azurite-").FullName;
        var start = new ProcessStartInfo(command)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in argsPrefix) start.ArgumentList.Add(a);
        foreach (var a in new[] { "--silent", "--loose", "--disableTelemetry", "--location", _location, "--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(a);
        // An Azurite from PATH may predate the service version the store pins.
        if (!pinned) start.ArgumentList.Add("--skipApiVersionCheck");

        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Remember(e.Data);
        process.ErrorDataReceived += (_, e) => Remember(e.Data);
        process.Start();
        _process = process;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var until = DateTime.UtcNow + StartTimeout;
        while (!await AcceptsConnectionsAsync(port).ConfigureAwait(false))
        {
            if (process.HasExited)
                throw new InvalidOperationException($"Azurite ({command}) exited with code {process.ExitCode} before accepting connections:\n{string.Join('\n', _output)}");
            if (DateTime.UtcNow > until)
                throw new TimeoutException($"Azurite ({command}) did not accept connections on port {port} within {StartTimeout.TotalSeconds} s:\n{string.Join('\n', _output)}");
            await Task.Delay(100).ConfigureAwait(false);
        }

        BlobEndpoint = new Uri($"http://127.0.0.1:{port}/{AccountName}");
        ConnectionString = $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};BlobEndpoint={BlobEndpoint};";
    }

    public Task DisposeAsync()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        Stop();
        return Task.CompletedTask;
    }

    private void OnProcessExit(object? sender, EventArgs e) => Stop();

    private void Stop()
    {
        var process = Interlocked.Exchange(ref _process, null);
        if (process is not null)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            process.Dispose();
        }

        var location = Interlocked.Exchange(ref _location, null);
        if (location is not null)
        {
            try
            {
                Directory.Delete(location, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private void Remember(string? line)
    {
        if (line is null) return;
        _output.Enqueue(line);
        while (_output.Count > 50) _output.TryDequeue(out _);
    }

    /// <summary>The command (and leading arguments) that runs azurite-blob, and whether it is the pinned install.</summary>
    private static async Task<(string Command, string[] Args, bool Pinned)> FindAzuriteAsync()
    {
        var tools = ToolsFolder();
        if (tools is not null && InstalledMain(tools) is { } main) return ("node", [main], true);
        if (OnPath("azurite-blob") is { } onPath && OnPath("npm") is null) return (onPath, [], false);
        if (tools is null)
        {
            if (OnPath("azurite-blob") is { } fallback) return (fallback, [], false);
            throw new InvalidOperationException($"Azurite is not installed and the repository root (with .ci/) was not found from {AppContext.BaseDirectory}; set {EnvironmentVariable} or put azurite-blob on PATH");
        }

        await InstallAsync(tools).ConfigureAwait(false);
        return InstalledMain(tools) is { } installed
            ? ("node", [installed], true)
            : throw new InvalidOperationException($"npm installed azurite@{PinnedVersion} into {tools}, but its blob server script is missing");
    }

    /// <summary>The repository's <c>.ci/.tools</c> folder (found by walking up to ClinicalFed.sln), or null.</summary>
    private static string? ToolsFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ClinicalFed.sln")) && Directory.Exists(Path.Combine(dir.FullName, ".ci")))
                return Path.Combine(dir.FullName, ".ci", ".tools");
        }

        return null;
    }

    private static string? InstalledMain(string tools)
    {
        var package = Path.Combine(tools, "node_modules", "azurite");
        var main = Path.Combine(package, "dist", "src", "blob", "main.js");
        if (!File.Exists(main)) return null;
        var json = File.ReadAllText(Path.Combine(package, "package.json"));
        return json.Contains($"\"version\": \"{PinnedVersion}\"", StringComparison.Ordinal) ? main : null;
    }

    private static async Task InstallAsync(string tools)
    {
        Directory.CreateDirectory(tools);
        // One installer at a time (test assemblies run in parallel); the others wait and then find it installed.
        var lockPath = Path.Combine(tools, ".install.lock");
        var until = DateTime.UtcNow + InstallTimeout;
        FileStream? gate = null;
        while (gate is null)
        {
            try
            {
                gate = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < until)
            {
                await Task.Delay(500).ConfigureAwait(false);
            }
        }

        await using (gate.ConfigureAwait(false))
        {
            if (InstalledMain(tools) is not null) return;
            var npm = OnPath("npm") ?? throw new InvalidOperationException(
                $"Azurite is not installed in {tools} and npm is not on PATH; install Node.js and npm, or set {EnvironmentVariable}");
            var start = new ProcessStartInfo(npm)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { "install", "--prefix", tools, "--no-audit", "--no-fund", "--loglevel=error", $"azurite@{PinnedVersion}" })
                start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(InstallTimeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"npm install azurite@{PinnedVersion} took longer than {InstallTimeout.TotalMinutes} minutes");
            }

            if (process.ExitCode != 0)
                throw new InvalidOperationException($"npm install azurite@{PinnedVersion} failed (exit {process.ExitCode}):\n{await stdout.ConfigureAwait(false)}\n{await stderr.ConfigureAwait(false)}");
        }
    }

    private static string? OnPath(string name)
    {
        var extensions = OperatingSystem.IsWindows() ? new[] { ".cmd", ".exe", "" } : new[] { "" };
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var ext in extensions)
            {
                var candidate = Path.Combine(dir, name + ext);
                if (File.Exists(candidate)) return candidate;
            }
        }

        return null;
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static async Task<bool> AcceptsConnectionsAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private static Dictionary<string, string> ParseConnectionString(string connectionString) =>
        connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(part => part.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0], StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Last()[1], StringComparer.OrdinalIgnoreCase);
}

/// <summary>The tests that share one <see cref="AzuriteFixture"/> (started once per test assembly).</summary>
[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "Azurite";
}
