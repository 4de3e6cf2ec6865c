using System.Collections.Concurrent;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Cli.Site;
using ClinicalFed.Federation;
using ClinicalFed.Privacy.Signing;
using ClinicalFed.Statistics;
using ClinicalFed.Storage;
using ClinicalFed.Storage.Coordination;

namespace ClinicalFed.Cli.Tests.Site;

/// <summary>
/// A whole federation in-process for the signing and no-patient-data tests: a coordinator ticking like the timer
/// function and one site agent per source, with any task, quorum and uploader, and (optionally) each site's signing
/// key created in its work folder beforehand and registered with the site.
/// </summary>
internal sealed record AgentFederation(IFederationStore Store, string Federation, string Task, IReadOnlyList<SiteSource> Sources, string Root)
{
    public int Rounds { get; init; } = 2;
    public int? Quorum { get; init; }
    public bool RegisterSigningKeys { get; init; } = true;
    /// <summary>Run every round with secure aggregation (federation.json <c>secure_aggregation</c>).</summary>
    public bool SecureAggregation { get; init; }
    /// <summary>Site-level DP-FedAvg (federation.json <c>site_level_dp</c>; null: off).</summary>
    public SiteLevelDpConfig? SiteLevelDp { get; init; }
    /// <summary>Changes to the federation's setup (model kind, strategy, tree settings) before it is created.</summary>
    public Func<FederationSetup, FederationSetup>? Configure { get; init; }

    public string WorkDirectory(string site) => Path.Combine(Root, "sites", site);

    public async Task<IReadOnlyList<SiteAgentReport>> RunAsync(Func<string, ISiteUploader>? uploader = null, Action<string, string>? log = null,
        Func<FederationCoordinator, CancellationToken, Task>? tick = null)
    {
        var coordinator = new FederationCoordinator(Store);
        var setup = new FederationSetup { Federation = Federation, Task = Task, Rounds = Rounds, Quorum = Quorum ?? Sources.Count, SiteLevelDp = SiteLevelDp };
        await coordinator.CreateFederationAsync((Configure?.Invoke(setup) ?? setup).ToConfig(DateTimeOffset.UtcNow) with { SecureAggregation = SecureAggregation ? new SecureAggregationConfig() : null });
        foreach (var s in Sources)
        {
            string? publicKey = null;
            if (RegisterSigningKeys)
            {
                using var key = SigningKeys.LoadOrCreatePrivateKey(Path.Combine(WorkDirectory(s.Name), SigningKeys.PrivateKeyFileName), out _);
                publicKey = SigningKeys.PublicKeyPem(key);
            }

            await coordinator.RegisterSiteAsync(Federation, s.Name, publicKey);
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        var agents = Sources.Select(s => System.Threading.Tasks.Task.Run(() => new SiteAgent(new SiteAgentOptions
        {
            Federation = Federation, Site = s.Name, Task = Task, Source = s, WorkDirectory = WorkDirectory(s.Name),
            PollInterval = TimeSpan.FromMilliseconds(20), IdleTimeout = TimeSpan.FromMinutes(4),
        }, Store, uploader?.Invoke(s.Name) ?? new DirectStoreUploader(Store), line => log?.Invoke(s.Name, line)).RunAsync(cts.Token))).ToList();
        tick ??= (c, token) => c.TickAsync(Federation, token);
        while (!agents.All(a => a.IsCompleted))
        {
            await tick(coordinator, cts.Token);
            await System.Threading.Tasks.Task.WhenAny(System.Threading.Tasks.Task.WhenAll(agents), System.Threading.Tasks.Task.Delay(50));
        }

        return await System.Threading.Tasks.Task.WhenAll(agents);
    }
}

/// <summary>Records every byte a site sends (its statistics and update files, exactly as they go on the wire) and passes them on.</summary>
internal sealed class RecordingUploader(string site, ISiteUploader inner, ConcurrentQueue<(string Site, string What, byte[] Bytes)> sent) : ISiteUploader
{
    public async Task UploadStatisticsAsync(string federation, string site1, StatisticsSet statistics, CancellationToken cancellationToken)
    {
        sent.Enqueue((site, "statistics", System.Text.Encoding.UTF8.GetBytes(statistics.ToJson())));
        await inner.UploadStatisticsAsync(federation, site1, statistics, cancellationToken);
    }

    public async Task UploadUpdateAsync(UpdateHeader header, float[] payload, CancellationToken cancellationToken)
    {
        using var file = new MemoryStream();
        UpdateFile.Write(file, header, payload);
        sent.Enqueue((site, $"update of round {header.Round}", file.ToArray()));
        await inner.UploadUpdateAsync(header, payload, cancellationToken);
    }

    public async Task UploadTreeUpdateAsync(UpdateHeader header, Trees.TreeEnsembleModel ensemble, CancellationToken cancellationToken)
    {
        using var file = new MemoryStream();
        UpdateFile.Write(file, header, ensemble);
        sent.Enqueue((site, $"update of round {header.Round}", file.ToArray()));
        await inner.UploadTreeUpdateAsync(header, ensemble, cancellationToken);
    }

    public async Task UploadCompressedUpdateAsync(UpdateHeader header, byte[] payload, CancellationToken cancellationToken)
    {
        using var file = new MemoryStream();
        UpdateFile.WriteCompressed(file, header, header.PayloadEncoding!, payload);
        sent.Enqueue((site, $"update of round {header.Round}", file.ToArray()));
        await inner.UploadCompressedUpdateAsync(header, payload, cancellationToken);
    }

    public async Task UploadSecAggAsync(string federation, string site1, int round, string kind, string path, byte[] content, CancellationToken cancellationToken)
    {
        sent.Enqueue((site, $"{kind} of round {round}", content));
        await inner.UploadSecAggAsync(federation, site1, round, kind, path, content, cancellationToken);
    }
}
