using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace ClinicalFed.Functions.Tests;

/// <summary>
/// The zip-deployable folder: <c>dotnet publish functions/ClinicalFed.Functions.csproj -c Release -r linux-x64
/// --self-contained</c> into a temporary folder (its own artifacts folder, so it never touches the repository's bin/obj),
/// then the published handler started the way the Functions host starts it (FUNCTIONS_CUSTOMHANDLER_PORT) over a
/// temporary local store, and sent the documented request of every function.
/// </summary>
public sealed class PublishTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("clinicalfed-publish-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_temp, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    [Trait("Category", "Publish")]
    public async Task The_published_folder_is_a_function_app_whose_handler_answers_every_function()
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.OSArchitecture != System.Runtime.InteropServices.Architecture.X64)
            return; // the linux-x64 handler runs only here; the publish itself is the same elsewhere

        string output = Path.Combine(_temp, "out");
        var (exit, log) = await RunAsync("dotnet",
            ["publish", Path.Combine(Repo.Functions, "ClinicalFed.Functions.csproj"), "-c", "Release", "-r", "linux-x64", "--self-contained",
             "-o", output, "--artifacts-path", Path.Combine(_temp, "artifacts"), "-nologo", "-p:DebugType=none"],
            Repo.Root, TimeSpan.FromSeconds(240));
        Assert.True(exit == 0, "dotnet publish failed:" + Environment.NewLine + log);

        // The function app's layout: host.json, one folder per function with its function.json, the executable host.json names.
        Assert.True(File.Exists(Path.Combine(output, "host.json")));
        var host = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "host.json")))!;
        string executable = Path.Combine(output, host["customHandler"]!["description"]!["defaultExecutablePath"]!.GetValue<string>());
        Assert.True(File.Exists(executable), executable);
        Assert.True(File.GetUnixFileMode(executable).HasFlag(UnixFileMode.UserExecute));
        foreach (var name in FunctionCatalog.Names)
        {
            Assert.Equal(File.ReadAllText(Path.Combine(Repo.Functions, name, "function.json")), File.ReadAllText(Path.Combine(output, name, "function.json")));
        }

        Assert.True(File.Exists(Path.Combine(output, "libcoreclr.so")), "self-contained: the runtime is in the folder");
        Assert.False(File.Exists(Path.Combine(output, "local.settings.json")));
        Assert.False(File.Exists(Path.Combine(output, "web.config")));
        Assert.Empty(Directory.GetDirectories(output).Select(Path.GetFileName).Except(FunctionCatalog.Names));

        // Started as the Functions host starts it.
        string store = Path.Combine(_temp, "store");
        int port = FreePort();
        string key = "";
        using var handler = Start(executable, output, new()
        {
            ["FUNCTIONS_CUSTOMHANDLER_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [HandlerSettings.FolderSetting] = store,
        });
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            await WaitReadyAsync(http, handler.Process);

            var created = await SendAsync(http, HttpMethod.Post, "/api/federations", Fixtures.Settings(rounds: 1, quorum: 1));
            Assert.Equal(HttpStatusCode.Created, created.Status);

            // RegisterSite as an invocation request (forwarding off).
            var registered = await PostAsync(http, "/RegisterSite", Payload.Http(FunctionCatalog.RegisterSite, new Dictionary<string, string> { ["federation"] = "sepsis", ["site"] = "A" }));
            Assert.Equal(HttpStatusCode.OK, registered.Status);
            Assert.Equal(201, registered.ResStatus);
            key = registered.ResBody["key"]!.GetValue<string>();

            var tick = await PostAsync(http, "/AggregateRound", Payload.Timer());
            Assert.Equal(HttpStatusCode.OK, tick.Status);
            Assert.Equal("round_opened", tick.Json!["ReturnValue"]![0]!["action"]!.GetValue<string>());

            // A local folder store issues no tickets: authenticated, then 501; a wrong key is 401.
            var ticket = await SendAsync(http, HttpMethod.Post, "/api/federations/sepsis/sites/A/tickets?kind=update", null,
                new() { [FunctionCatalog.SiteKeyHeader] = key });
            Assert.Equal((HttpStatusCode)501, ticket.Status);
            var wrongKey = await PostAsync(http, "/UploadTicket", Payload.Http(FunctionCatalog.UploadTicket,
                new Dictionary<string, string> { ["federation"] = "sepsis", ["site"] = "A" }, query: new Dictionary<string, string> { ["kind"] = "update" },
                headers: new Dictionary<string, string> { [FunctionCatalog.SiteKeyHeader] = "wrong" }));
            Assert.Equal(401, wrongKey.ResStatus);

            var status = await SendAsync(http, HttpMethod.Get, "/api/federations/sepsis/status?code=FunctionKeyValue"); // the host forwards ?code=<function key>
            Assert.Equal(HttpStatusCode.OK, status.Status);
            Assert.Equal(0, status.Json!["round"]!.GetValue<int>());
            var statusInvoked = await PostAsync(http, "/RoundStatus", Payload.Http(FunctionCatalog.RoundStatus, new Dictionary<string, string> { ["federation"] = "sepsis" }));
            Assert.Equal(200, statusInvoked.ResStatus);

            var createdAgain = await PostAsync(http, "/CreateFederation", Payload.Http(FunctionCatalog.CreateFederation, body: Fixtures.Settings("other")));
            Assert.Equal(201, createdAgain.ResStatus);

            var withdrawn = await SendAsync(http, HttpMethod.Delete, "/api/federations/sepsis/sites/A");
            Assert.Equal(HttpStatusCode.OK, withdrawn.Status);
            var withdrawnInvoked = await PostAsync(http, "/WithdrawSite", Payload.Http(FunctionCatalog.WithdrawSite, new Dictionary<string, string> { ["federation"] = "sepsis", ["site"] = "A" }));
            Assert.Equal(200, withdrawnInvoked.ResStatus);

            Assert.True(File.Exists(Path.Combine(store, "federations", "sepsis", "rounds", "00000", "manifest.json")));
        }
        finally
        {
            handler.Stop();
        }

        Assert.DoesNotContain(handler.Output, l => l.Contains("FunctionKeyValue", StringComparison.Ordinal) || (key.Length > 0 && l.Contains(key, StringComparison.Ordinal)));
        Assert.Contains(handler.Output, l => l.Contains($"listening on 127.0.0.1:{port}", StringComparison.Ordinal));

        // Bad settings: the handler refuses to start and lists every problem.
        var (badExit, badLog) = await RunAsync(executable, [], output, TimeSpan.FromSeconds(30), new()
        {
            ["FUNCTIONS_CUSTOMHANDLER_PORT"] = "not-a-port",
            [HandlerSettings.ConnectionStringSetting] = "AccountName=x;AccountKey=TopSecretKeyValue",
        });
        Assert.Equal(2, badExit);
        Assert.Contains("2 problems with its app settings", badLog);
        Assert.Contains("CLINICALFED_STORE_CONTAINER is not set", badLog);
        Assert.Contains("FUNCTIONS_CUSTOMHANDLER_PORT 'not-a-port'", badLog);
        Assert.DoesNotContain("TopSecretKeyValue", badLog);
    }

    private static async Task<Answer> SendAsync(HttpClient http, HttpMethod method, string path, string? body = null, Dictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        foreach (var (k, v) in headers ?? []) request.Headers.TryAddWithoutValidation(k, v);
        using var response = await http.SendAsync(request);
        return await Answer.ReadAsync(response);
    }

    private static async Task<Answer> PostAsync(HttpClient http, string path, JsonObject payload)
    {
        using var response = await http.PostAsync(path, Payload.Json(payload));
        return await Answer.ReadAsync(response);
    }

    private static async Task WaitReadyAsync(HttpClient http, Process process)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            Assert.False(process.HasExited, "the handler exited at startup");
            try
            {
                using var response = await http.GetAsync("/");
                if (response.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException) when (DateTime.UtcNow < until)
            {
            }

            Assert.True(DateTime.UtcNow < until, "the handler did not answer within 30 s");
            await Task.Delay(100);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A started process whose output lines are collected; <see cref="Stop"/> ends it (this process only).</summary>
    private sealed class Started(Process process) : IDisposable
    {
        public Process Process { get; } = process;

        public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();

        public IReadOnlyList<string> Output => Lines.ToArray();

        public void Stop()
        {
            if (!Process.HasExited)
            {
                Process.Kill();
                Process.WaitForExit(10_000);
            }
        }

        public void Dispose()
        {
            Stop();
            Process.Dispose();
        }
    }

    private static Started Start(string file, string workingDirectory, Dictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        Isolate(info, environment);
        var process = new Process { StartInfo = info };
        var started = new Started(process);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) started.Lines.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) started.Lines.Enqueue(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return started;
    }

    /// <summary>The handler sees only the settings the test gives (not a developer's CLINICALFED_* variables).</summary>
    private static void Isolate(ProcessStartInfo info, Dictionary<string, string>? environment)
    {
        // Also the MSBuild variables of the test run's own build, which would steer a nested dotnet publish.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("CLINICALFED_", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)
            || k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k == "FUNCTIONS_CUSTOMHANDLER_PORT").ToList())
            info.Environment.Remove(name);
        foreach (var (k, v) in environment ?? []) info.Environment[k] = v;
    }

    private static async Task<(int Exit, string Log)> RunAsync(string file, string[] args, string workingDirectory, TimeSpan timeout, Dictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        Isolate(info, environment);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(file)} {string.Join(' ', args)} did not finish within {timeout}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
