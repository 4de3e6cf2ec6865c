using Xunit.Abstractions;
using ClinicalFed.Cli.Simulation;

namespace ClinicalFed.EndToEnd.Tests;

/// <summary>
/// Issue 6 on the real data: PhysioNet A split into three sites and B into two, one of them malicious or careless.
/// A site whose labels are shuffled must rank last by Shapley value (federated evaluation), with the report comparing
/// the run against the clean federation. (With a sign-flipping site in the same run, the shuffled site's update dilutes
/// the attacker's and earns a positive value: measured, so the two attacks are tested apart; signflip in the CLI tests.)
/// </summary>
[Trait("Category", "RealData")]
public sealed class RobustFederationTests(ITestOutputHelper output)
{
    [Fact]
    public void A_site_with_shuffled_labels_ranks_last_by_Shapley_value_and_is_left_out()
    {
        var a = SharedData.Find("physionet2019_sepsis/hospital_A.csv.gz", output.WriteLine);
        var b = SharedData.Find("physionet2019_sepsis/hospital_B.csv.gz", output.WriteLine);
        if (a is null || b is null) return;
        var root = Directory.CreateTempSubdirectory("cf-robust-").FullName;
        try
        {
            var options = new SimulationOptions
            {
                Task = "sepsis", OutputDirectory = Path.Combine(root, "shuffle"), Rounds = 5, BaselineEpochs = 1,
                Sites = [new SiteSource("A", a, null), new SiteSource("B", b, null)],
                Splits = new Dictionary<string, int> { ["A"] = 3, ["B"] = 2 },
                Attacks = ["labelshuffle:A2"], CompareAttacks = true, DownweightContributors = true,
            };
            var report = SimulationRunner.Run(options);

            var contribution = report.Contribution!.Sites.ToDictionary(s => s.Name);
            output.WriteLine(string.Join(", ", contribution.Values.Select(s => $"{s.Name} {s.Shapley:F3} (rank {s.Rank})")));
            Assert.True(contribution["A2"].Shapley < 0, $"A2's Shapley value is {contribution["A2"].Shapley}");
            Assert.Equal(5, contribution["A2"].Rank);
            // Down-weighting: once its summed Shapley value is negative (after two rounds), the careless site is left out.
            var excluded = report.Contribution.Excluded.ToDictionary(x => x.Site);
            Assert.True(excluded.ContainsKey("A2"), string.Join(", ", excluded.Keys));
            Assert.Equal(3, excluded["A2"].FromRound);

            var runs = report.Robustness!.Runs.ToDictionary(r => r.Name);
            output.WriteLine(string.Join("; ", runs.Values.Select(r => $"{r.Name}: {string.Join(", ", r.HonestAuroc.Select(kv => $"{kv.Key} {kv.Value:F3}"))}")));
            Assert.Equal(["A1", "A3", "B1", "B2"], runs["clean"].HonestAuroc.Keys.Order());
            Assert.NotNull(runs["attacked"].MaxHonestDropVsClean);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
