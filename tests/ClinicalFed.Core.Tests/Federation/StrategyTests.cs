using System.Text.Json;
using ClinicalFed.Federation;

namespace ClinicalFed.Core.Tests.Federation;

public sealed class StrategyTests
{
    private static float[] RunRound(IAggregationStrategy strategy, RoundManifest manifest, ModelFile? global,
        params (string Site, long Examples, string Kind, float[] Values)[] updates)
    {
        strategy.Begin(global, manifest);
        var buffer = new float[manifest.Model.Dimension]; // one buffer reused for every update, as the aggregator does
        foreach (var (site, examples, kind, values) in updates)
        {
            values.CopyTo(buffer, 0);
            strategy.Accumulate(TestData.Header(site, examples, values.Length, manifest.Round, kind), buffer);
            Array.Fill(buffer, float.NaN); // the strategy must not keep a reference to the span
        }

        return strategy.Finish();
    }

    [Fact]
    public void FedAvg_of_three_updates_weighted_1_2_3_is_the_hand_computed_mean()
    {
        // (1·[1,2,3] + 2·[4,5,6] + 3·[−2,0,8]) / 6 = [3, 12, 39] / 6 = [0.5, 2, 6.5]
        var result = RunRound(new FedAvgStrategy(), TestData.Manifest(), null,
            ("A", 1, ParameterKinds.Full, [1, 2, 3]),
            ("B", 2, ParameterKinds.Full, [4, 5, 6]),
            ("C", 3, ParameterKinds.Full, [-2, 0, 8]));
        TestData.AssertClose([0.5, 2, 6.5], result);
    }

    [Fact]
    public void Uniform_weighting_ignores_example_counts()
    {
        var strategy = StrategyFactory.Create("fedavg", new Dictionary<string, JsonElement> { ["weighting"] = JsonSerializer.SerializeToElement("uniform") });
        var result = RunRound(strategy, TestData.Manifest(), null,
            ("A", 1, ParameterKinds.Full, [1, 2, 3]),
            ("B", 2, ParameterKinds.Full, [4, 5, 6]),
            ("C", 3, ParameterKinds.Full, [-2, 0, 8]));
        TestData.AssertClose([1, 7 / 3.0, 17 / 3.0], result);
    }

    [Fact]
    public void Delta_and_full_updates_give_the_same_new_global()
    {
        float[] g = [1, -1, 2];
        var manifest = TestData.Manifest(round: 1);
        float[][] full = [[1.5f, -0.5f, 2], [0, -1, 3], [2, 2, 2]];
        long[] n = [10, 30, 60];
        string[] sites = ["A", "B", "C"];

        var fromFull = RunRound(new FedAvgStrategy(), manifest, TestData.Global(g),
            [.. Enumerable.Range(0, 3).Select(i => (sites[i], n[i], ParameterKinds.Full, full[i]))]);
        var fromDelta = RunRound(new FedAvgStrategy(), manifest, TestData.Global(g),
            [.. Enumerable.Range(0, 3).Select(i => (sites[i], n[i], ParameterKinds.Delta, full[i].Zip(g, (x, w) => x - w).ToArray()))]);
        var mixed = RunRound(new FedAvgStrategy(), manifest, TestData.Global(g),
            ("A", 10, ParameterKinds.Delta, [0.5f, 0.5f, 0]), ("B", 30, ParameterKinds.Full, full[1]), ("C", 60, ParameterKinds.Full, full[2]));

        // (10·[1.5,−0.5,2] + 30·[0,−1,3] + 60·[2,2,2]) / 100 = [1.35, 0.85, 2.3]
        TestData.AssertClose([1.35, 0.85, 2.3], fromFull);
        TestData.AssertClose(fromFull, fromDelta);
        TestData.AssertClose(fromFull, mixed);
    }

    [Fact]
    public void Round_zero_without_global_model_starts_from_zeros_for_delta_updates()
    {
        var result = RunRound(new FedAvgStrategy(), TestData.Manifest(), null,
            ("A", 1, ParameterKinds.Delta, [1, 2, 3]), ("B", 1, ParameterKinds.Full, [3, 2, 1]));
        TestData.AssertClose([2, 2, 2], result);
    }

    private static FedAdamOptions AdamOptions => new() { ServerLearningRate = 0.1, Beta1 = 0.9, Beta2 = 0.99, Tau = 0.01 };

    private static readonly (string, long, string, float[])[] Round0 = [("A", 1, ParameterKinds.Full, [1, -1]), ("B", 3, ParameterKinds.Full, [1, -3])];
    private static readonly (string, long, string, float[])[] Round1 = [("A", 2, ParameterKinds.Full, [0.5f, 0]), ("B", 2, ParameterKinds.Full, [0.3f, -0.4f])];

    [Fact]
    public void FedAdam_after_two_rounds_equals_hand_computation()
    {
        // Round 0: mean = [1, −2.5], Δ = mean − 0; m = 0.1 Δ = [0.1, −0.25]; v = 0.99·τ² + 0.01 Δ² = [0.010099, 0.062599]
        //          w1 = 0.1 m / (√v + 0.01) = [0.0905028, −0.0960807]
        // Round 1: mean = [0.4, −0.2]; Δ = mean − w1; m = 0.9 m + 0.1 Δ; v = 0.99 v + 0.01 Δ²; w2 = w1 + 0.1 m / (√v + 0.01)
        var strategy = new AdaptiveStrategy(AdamOptions);
        var m0 = TestData.Manifest(StrategyNames.FedAdam, dimension: 2, sites: ["A", "B"]);
        var w1 = RunRound(strategy, m0, null, Round0);
        TestData.AssertClose([0.0905028, -0.0960807], w1);

        var m1 = TestData.Manifest(StrategyNames.FedAdam, dimension: 2, round: 1, sites: ["A", "B"]);
        var w2 = RunRound(strategy, m1, TestData.Global(w1, 0, StrategyNames.FedAdam), Round1);
        TestData.AssertClose([0.1959788, -0.1869093], w2);

        var state = strategy.CaptureState()!;
        TestData.AssertClose([0.1209497, -0.2353919], state.Vector("m"));
        TestData.AssertClose([0.0109559, 0.0620810], state.Vector("v"));
        Assert.Equal(2, state.Header.Steps);
    }

    [Fact]
    public void State_round_trip_lets_a_fresh_strategy_resume_exactly()
    {
        var m0 = TestData.Manifest(StrategyNames.FedAdam, dimension: 2, sites: ["A", "B"]);
        var m1 = TestData.Manifest(StrategyNames.FedAdam, dimension: 2, round: 1, sites: ["A", "B"]);

        var continuous = new AdaptiveStrategy(AdamOptions);
        var w1 = RunRound(continuous, m0, null, Round0);
        var stateBytes = continuous.CaptureState()!.ToBytes();
        var expected = RunRound(continuous, m1, TestData.Global(w1), Round1);

        var resumed = StrategyFactory.Create(StrategySpec.From(AdamOptions));
        resumed.RestoreState(ServerState.Read(new MemoryStream(stateBytes)));
        var actual = RunRound(resumed, m1, TestData.Global(w1), Round1);
        Assert.Equal(expected, actual); // bit for bit

        var withoutState = RunRound(new AdaptiveStrategy(AdamOptions), m1, TestData.Global(w1), Round1);
        Assert.NotEqual(expected, withoutState); // the state matters, so the round trip is what made them equal
    }

    [Fact]
    public void FedAvgM_two_rounds_match_hand_computation_and_state_round_trips()
    {
        // β 0.9, η 1. Round 0: mean [1, −2.5]; v = 0 − mean... Δ = w − mean = [−1, 2.5]; v = Δ; w = 0 − v = [1, −2.5]
        // Round 1: mean [0.4, −0.2]; Δ = [0.6, −2.3]; v = 0.9 [−1, 2.5] + Δ = [−0.3, −0.05]; w = [1.3, −2.45]
        var options = new FedAvgMOptions { ServerMomentum = 0.9, ServerLearningRate = 1 };
        var m0 = TestData.Manifest(StrategyNames.FedAvgM, dimension: 2, sites: ["A", "B"]);
        var m1 = TestData.Manifest(StrategyNames.FedAvgM, dimension: 2, round: 1, sites: ["A", "B"]);
        var first = new FedAvgMStrategy(options);
        var w1 = RunRound(first, m0, null, Round0);
        TestData.AssertClose([1, -2.5], w1);

        var resumed = new FedAvgMStrategy(options);
        resumed.RestoreState(ServerState.Read(new MemoryStream(first.CaptureState()!.ToBytes())));
        var w2 = RunRound(resumed, m1, TestData.Global(w1), Round1);
        TestData.AssertClose([1.3, -2.45], w2, 1e-5);
        TestData.AssertClose([-0.3, -0.05], resumed.CaptureState()!.Vector("velocity"), 1e-5);
    }

    [Fact]
    public void FedYogi_first_round_matches_hand_computation()
    {
        // mean [1, −2.5]; m = 0.1 Δ; v = τ² + 0.01 Δ² (sign(τ² − Δ²) = −1); w = 0.01 m / (√v + 0.01) with η = 0.01
        var strategy = new AdaptiveStrategy(new FedYogiOptions { ServerLearningRate = 0.01, Tau = 0.01 });
        var w1 = RunRound(strategy, TestData.Manifest(StrategyNames.FedYogi, dimension: 2, sites: ["A", "B"]), null, Round0);
        double v0 = 1e-4 + 0.01 * 1, v1 = 1e-4 + 0.01 * 6.25;
        TestData.AssertClose([0.01 * 0.1 / (Math.Sqrt(v0) + 0.01), 0.01 * -0.25 / (Math.Sqrt(v1) + 0.01)], w1);
    }

    [Fact]
    public void FedProx_aggregates_like_FedAvg_and_exposes_mu()
    {
        var spec = StrategySpec.From(new FedProxOptions { ProximalMu = 0.1 });
        var prox = (FedProxStrategy)StrategyFactory.Create(spec);
        Assert.Equal(0.1, prox.ProximalMu);
        var manifest = TestData.Manifest(StrategyNames.FedProx, spec: spec);
        var a = RunRound(prox, manifest, null, ("A", 1, ParameterKinds.Full, [1, 2, 3]), ("B", 3, ParameterKinds.Full, [5, 6, 7]));
        TestData.AssertClose([4, 5, 6], a);
    }

    [Fact]
    public void Rejected_updates_leave_the_round_unchanged()
    {
        var strategy = new FedAvgStrategy();
        var manifest = TestData.Manifest(sites: ["A", "B"]);
        strategy.Begin(null, manifest);
        strategy.Accumulate(TestData.Header("A", 2), [1, 1, 1]);

        UpdateRejectedException Reject(UpdateHeader h, float[] values) => Assert.Throws<UpdateRejectedException>(() => strategy.Accumulate(h, values));
        Assert.Contains("not among the round's expected sites", Reject(TestData.Header("Z", 1), [9, 9, 9]).Reason);
        Assert.Contains("already contributed", Reject(TestData.Header("A", 1), [9, 9, 9]).Reason);
        Assert.Contains("round 4 is not the open round 0", Reject(TestData.Header("B", 1, round: 4), [9, 9, 9]).Reason);
        Assert.Contains("dimension 2 does not match", Reject(TestData.Header("B", 1, dimension: 2), [9, 9]).Reason);
        Assert.Contains("example_count is 0", Reject(TestData.Header("B", 0), [9, 9, 9]).Reason);
        Assert.Contains("non-finite", Reject(TestData.Header("B", 1), [9, float.NaN, 9]).Reason);
        Assert.Contains("federation 'other'", Reject(TestData.Header("B", 1) with { Federation = "other" }, [9, 9, 9]).Reason);
        var many = Reject(TestData.Header("Z", 0, round: 4), [9, 9, 9]);
        Assert.Equal(3, many.Reasons.Count);

        strategy.Accumulate(TestData.Header("B", 2), [3, 3, 3]);
        Assert.Equal(2, strategy.AcceptedCount);
        TestData.AssertClose([2, 2, 2], strategy.Finish());
    }

    [Fact]
    public void Lifecycle_and_begin_arguments_are_checked()
    {
        var strategy = new FedAvgStrategy();
        Assert.Throws<InvalidOperationException>(() => strategy.Accumulate(TestData.Header("A", 1), [1, 2, 3]));
        Assert.Throws<InvalidOperationException>(() => strategy.Finish());
        Assert.Throws<InvalidOperationException>(() => strategy.CaptureState());

        Assert.Contains("none was given", Assert.Throws<ArgumentException>(() => strategy.Begin(null, TestData.Manifest(round: 1))).Message);
        Assert.Contains("'global_model' is null", Assert.Throws<ArgumentException>(() => strategy.Begin(TestData.Global([1, 2, 3]), TestData.Manifest())).Message);
        Assert.Contains("dimension 2, the manifest 3", Assert.Throws<ArgumentException>(() => strategy.Begin(TestData.Global([1, 2]), TestData.Manifest(round: 1))).Message);
        Assert.Contains("names strategy 'fedadam'", Assert.Throws<ArgumentException>(() => strategy.Begin(null, TestData.Manifest(StrategyNames.FedAdam))).Message);

        strategy.Begin(null, TestData.Manifest());
        Assert.Throws<InvalidOperationException>(() => strategy.Begin(null, TestData.Manifest()));
        Assert.Contains("no update was accepted", Assert.Throws<InvalidOperationException>(() => strategy.Finish()).Message);
        Assert.Null(new Func<ServerState?>(() => { strategy.Accumulate(TestData.Header("A", 1), [1, 2, 3]); strategy.Finish(); return strategy.CaptureState(); })());
    }

    [Fact]
    public void State_of_another_strategy_or_dimension_is_refused()
    {
        var adamState = ServerState.Create("sepsis", 0, StrategyNames.FedAdam, 1, [("m", [0, 0]), ("v", [1, 1])]);
        Assert.Contains("belongs to strategy 'fedadam'", Assert.Throws<ArgumentException>(() => new FedAvgMStrategy().RestoreState(adamState)).Message);

        var yogi = new AdaptiveStrategy(new FedYogiOptions());
        Assert.Throws<ArgumentException>(() => yogi.RestoreState(adamState));

        var adam = new AdaptiveStrategy(new FedAdamOptions());
        adam.RestoreState(adamState);
        var e = Assert.Throws<ArgumentException>(() => adam.Begin(null, TestData.Manifest(StrategyNames.FedAdam, dimension: 3)));
        Assert.Contains("server state has dimension 2", e.Message);
    }

    [Fact]
    public void Factory_knows_every_strategy_by_name()
    {
        Assert.Equal(["fedavg", "fedavgm", "fedprox", "fedadam", "fedyogi", "fedadagrad", "median", "trimmed-mean", "krum", "multi-krum", "geomedian"], StrategyFactory.KnownNames);
        foreach (var robust in StrategyNames.Robust) Assert.IsType<RobustStrategy>(StrategyFactory.Create(robust));
        Assert.IsType<FedAvgStrategy>(StrategyFactory.Create("fedavg"));
        Assert.IsType<FedAvgMStrategy>(StrategyFactory.Create("fedavgm"));
        Assert.IsType<FedProxStrategy>(StrategyFactory.Create("fedprox", new Dictionary<string, JsonElement> { ["proximal_mu"] = JsonSerializer.SerializeToElement(0.01) }));
        Assert.IsType<FedYogiOptions>(StrategyFactory.Create("fedyogi").Options);
        Assert.IsType<FedAdamOptions>(StrategyFactory.Create("fedadam").Options);
        Assert.IsType<FedAdagradOptions>(StrategyFactory.Create("fedadagrad").Options);
        foreach (var name in StrategyFactory.KnownNames.Where(n => n != "fedprox")) Assert.Equal(name, StrategyFactory.Create(name).Name);
    }

    [Fact]
    public void Unknown_strategy_name_lists_the_known_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => StrategyFactory.Create("FedAvg"));
        Assert.Contains("Unknown aggregation strategy 'FedAvg'", e.Message);
        Assert.Contains("fedavg, fedavgm, fedprox, fedadam, fedyogi, fedadagrad", e.Message);
    }

    [Fact]
    public void Options_errors_are_reported_all_at_once()
    {
        var options = new Dictionary<string, JsonElement>
        {
            ["beta1"] = JsonSerializer.SerializeToElement(1.5),
            ["tau"] = JsonSerializer.SerializeToElement(-1),
            ["eta"] = JsonSerializer.SerializeToElement(0.1),
            ["beta2"] = JsonSerializer.SerializeToElement("high"),
            ["weighting"] = JsonSerializer.SerializeToElement("by_size"),
            ["client_local_epochs"] = JsonSerializer.SerializeToElement(3),
        };
        var e = Assert.Throws<StrategyOptionsException>(() => StrategyFactory.Create("fedadam", options));
        Assert.Equal(5, e.Problems.Count);
        Assert.Contains(e.Problems, p => p.StartsWith("'beta1' is 1.5; it must be in [0, 1)"));
        Assert.Contains(e.Problems, p => p.StartsWith("'tau' is -1"));
        Assert.Contains(e.Problems, p => p.StartsWith("unknown option 'eta'"));
        Assert.Contains(e.Problems, p => p.StartsWith("'beta2' must be a finite JSON number, not the string \"high\""));
        Assert.Contains(e.Problems, p => p.StartsWith("'weighting' must be"));
        Assert.DoesNotContain(e.Problems, p => p.Contains("client_local_epochs"));

        var prox = Assert.Throws<StrategyOptionsException>(() => StrategyFactory.Create("fedprox"));
        Assert.Equal(["'proximal_mu' is required"], prox.Problems);
        Assert.Contains("beta2", Assert.Throws<StrategyOptionsException>(() => StrategyFactory.Create("fedadagrad",
            new Dictionary<string, JsonElement> { ["beta2"] = JsonSerializer.SerializeToElement(0.9) })).Message);
    }

    [Fact]
    public void Typed_options_are_validated_when_the_strategy_is_built()
    {
        var e = Assert.Throws<StrategyOptionsException>(() => new FedAvgMStrategy(new FedAvgMOptions { ServerMomentum = 1, ServerLearningRate = 0 }));
        Assert.Equal(2, e.Problems.Count);
        Assert.Throws<StrategyOptionsException>(() => new FedProxStrategy(new FedProxOptions { ProximalMu = double.NaN }));
    }

    [Fact]
    public void Options_round_trip_through_manifest_json()
    {
        StrategyOptions[] all =
        [
            new FedAvgOptions { Weighting = UpdateWeighting.Uniform },
            new FedProxOptions { ProximalMu = 0.003 },
            new FedAvgMOptions { ServerMomentum = 0.7, ServerLearningRate = 0.3 },
            new FedAdamOptions { Beta1 = 0.8, Tau = 1e-9 },
            new FedYogiOptions { Beta2 = 0.999 },
            new FedAdagradOptions { Beta1 = 0.5, ServerLearningRate = 0.02 },
        ];
        foreach (var options in all)
        {
            var manifest = TestData.Manifest(options.StrategyName, spec: StrategySpec.From(options));
            var parsed = RoundManifest.Parse(manifest.ToJsonBytes());
            Assert.Equal(options, StrategyFactory.ParseOptions(parsed.Strategy.Name, parsed.Strategy.Options));
        }
    }
}
