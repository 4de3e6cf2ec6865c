using System.Diagnostics;
using System.Text.Json.Serialization;
using ClinicalFed.Federation;
using ClinicalFed.Learning;

namespace ClinicalFed.Cli.Simulation;

/// <summary>One point of a timeline: simulated seconds and the sites' mean test AUROC then.</summary>
public sealed record TimelinePoint(
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("mean_auroc")] double MeanAuroc);

/// <summary>One schedule (synchronous rounds or buffered asynchronous aggregation) in the <c>async</c> section.</summary>
public sealed record ScheduleResult
{
    [JsonPropertyName("seconds_to_target")] public double? SecondsToTarget { get; init; }
    [JsonPropertyName("updates_to_target")] public int? UpdatesToTarget { get; init; }
    [JsonPropertyName("final_mean_auroc")] public double FinalMeanAuroc { get; init; }
    [JsonPropertyName("timeline")] public IReadOnlyList<TimelinePoint> Timeline { get; init; } = [];
}

/// <summary>The <c>async</c> section of <c>report.json</c>: time to a target AUROC, synchronous versus FedBuff.</summary>
public sealed record AsyncReport
{
    [JsonPropertyName("target_mean_auroc")] public double TargetMeanAuroc { get; init; }
    [JsonPropertyName("buffer_size")] public int BufferSize { get; init; }
    [JsonPropertyName("staleness_exponent")] public double StalenessExponent { get; init; }
    /// <summary>Seconds one local round takes at each site on the simulated clock (measured training time × slowdown).</summary>
    [JsonPropertyName("site_round_seconds")] public required IReadOnlyDictionary<string, double> SiteRoundSeconds { get; init; }
    [JsonPropertyName("synchronous")] public required ScheduleResult Synchronous { get; init; }
    [JsonPropertyName("asynchronous")] public required ScheduleResult Asynchronous { get; init; }
    [JsonPropertyName("speedup")] public double? Speedup { get; init; }
    [JsonPropertyName("clock")] public string Clock { get; init; } = "";
}

/// <summary>
/// Synchronous rounds against buffered asynchronous aggregation (<see cref="BufferedAsyncAggregator"/>, FedBuff) on a
/// simulated clock, with the same sites, data and local training. A site's local round takes its measured training
/// time (its first local round here, in seconds) times its <c>--slow</c> factor. Synchronous: every round waits for the
/// slowest participant. Asynchronous: each site trains from the newest global version it can fetch, uploads its delta
/// and starts again at once; the server applies every K deltas, discounting stale ones. Both timelines record the
/// sites' mean test AUROC after every global update; the report compares the simulated seconds to the target.
/// </summary>
internal static class AsyncComparison
{
    public static AsyncReport Run(IReadOnlyList<PreparedSite> sites, FeatureMatrix[] fit, ClientTrainingSettings client, int rounds,
        IReadOnlyDictionary<string, double> slow, int bufferSize, double? target, Action<string, double>? progress)
    {
        int d = sites[0].Width;
        double MeanAuroc(LinearWeights w) => sites.Select(s => Metrics.Auroc(SimulationRunner.Predict(w, s.TestX, d), s.TestY))
            .Where(double.IsFinite).DefaultIfEmpty(0.5).Average(); // sites whose test split lacks a class have no AUROC
        double Slow(int i) => slow.TryGetValue(sites[i].Name, out double f) ? f : 1.0;

        // Synchronous schedule; the first round also measures each site's training time.
        var cost = new double[sites.Count];
        var global = LinearWeights.Zeros(d);
        var syncTimeline = new List<TimelinePoint>();
        double clock = 0;
        for (int r = 0; r < rounds; r++)
        {
            var sum = new double[d + 1];
            long examples = 0;
            for (int i = 0; i < sites.Count; i++)
            {
                var sw = Stopwatch.StartNew();
                var model = ClientTraining.TrainRound(fit[i], r == 0 ? null : global, client, r, i).Weights.ToParameterVector();
                if (r == 0) cost[i] = sw.Elapsed.TotalSeconds * Slow(i);
                for (int j = 0; j < model.Length; j++) sum[j] += (double)model[j] * sites[i].TrainRows;
                examples += sites[i].TrainRows;
            }

            global = LinearWeights.FromParameterVector(sum.Select(v => (float)(v / examples)).ToArray());
            clock += cost.Max();
            syncTimeline.Add(new TimelinePoint(Math.Round(clock, 3), Math.Round(MeanAuroc(global), 6)));
            progress?.Invoke("asynchronous comparison: synchronous", (r + 1.0) / rounds);
        }

        double goal = target ?? Math.Round(syncTimeline[^1].MeanAuroc - 0.005, 6);

        // Asynchronous schedule on the same clock: an event queue of (finish time, site).
        var options = new BufferedAsyncOptions { BufferSize = Math.Min(bufferSize, sites.Count) };
        var server = new BufferedAsyncAggregator(LinearWeights.Zeros(d).ToParameterVector(), options);
        var queue = new PriorityQueue<(int Site, int BaseVersion, float[] Base, int LocalRound), (double Time, int Site)>();
        var zeros = LinearWeights.Zeros(d).ToParameterVector();
        for (int i = 0; i < sites.Count; i++) queue.Enqueue((i, 0, zeros, 0), (cost[i], i));
        var asyncTimeline = new List<TimelinePoint>();
        double horizon = Math.Max(syncTimeline[^1].Seconds, cost.Max()) * 1.5;
        int updates = 0, maxUpdates = rounds * sites.Count * 2;
        int? updatesToTarget = null;
        while (queue.TryDequeue(out var job, out var at) && at.Time <= horizon && updates < maxUpdates)
        {
            var start = job.BaseVersion == 0 && job.LocalRound == 0 ? null : LinearWeights.FromParameterVector(job.Base);
            var model = ClientTraining.TrainRound(fit[job.Site], start, client, job.LocalRound, job.Site).Weights.ToParameterVector();
            var delta = new float[model.Length];
            for (int j = 0; j < delta.Length; j++) delta[j] = model[j] - job.Base[j];
            updates++;
            if (server.Add(sites[job.Site].Name, delta, job.BaseVersion, sites[job.Site].TrainRows))
            {
                double auroc = MeanAuroc(LinearWeights.FromParameterVector(server.Global));
                asyncTimeline.Add(new TimelinePoint(Math.Round(at.Time, 3), Math.Round(auroc, 6)));
                if (auroc >= goal && updatesToTarget is null) updatesToTarget = updates;
            }

            // The site fetches the newest global model and trains again.
            queue.Enqueue((job.Site, server.Version, server.Global.ToArray(), job.LocalRound + 1), (at.Time + cost[job.Site], job.Site));
            progress?.Invoke("asynchronous comparison: buffered asynchronous", Math.Min(1, at.Time / horizon));
        }

        double? syncToTarget = syncTimeline.FirstOrDefault(p => p.MeanAuroc >= goal)?.Seconds;
        double? asyncToTarget = asyncTimeline.FirstOrDefault(p => p.MeanAuroc >= goal)?.Seconds;
        int? syncRounds = syncTimeline.FindIndex(p => p.MeanAuroc >= goal) is int k and >= 0 ? (k + 1) * sites.Count : null;
        return new AsyncReport
        {
            TargetMeanAuroc = goal, BufferSize = options.BufferSize, StalenessExponent = options.StalenessExponent,
            SiteRoundSeconds = sites.Select((s, i) => (s.Name, Math.Round(cost[i], 3))).ToDictionary(),
            Synchronous = new ScheduleResult { SecondsToTarget = syncToTarget, UpdatesToTarget = syncRounds, FinalMeanAuroc = syncTimeline[^1].MeanAuroc, Timeline = syncTimeline },
            Asynchronous = new ScheduleResult { SecondsToTarget = asyncToTarget, UpdatesToTarget = updatesToTarget, FinalMeanAuroc = asyncTimeline.Count > 0 ? asyncTimeline[^1].MeanAuroc : 0.5, Timeline = asyncTimeline },
            Speedup = syncToTarget is { } a && asyncToTarget is { } b && b > 0 ? Math.Round(a / b, 2) : null,
            Clock = "simulated: a site's local round takes its measured training time in the first synchronous round times its --slow factor; FedAvg (example-weighted) for the synchronous schedule, FedBuff (buffer K, staleness discount (1+τ)^-0.5) for the asynchronous one; target: --target-auroc, or 0.005 below the synchronous run's final mean test AUROC",
        };
    }
}
