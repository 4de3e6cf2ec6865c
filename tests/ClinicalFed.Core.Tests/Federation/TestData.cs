using ClinicalFed.Federation;

namespace ClinicalFed.Core.Tests.Federation;

internal static class TestData
{
    public static readonly DateTimeOffset T0 = new(2025, 3, 1, 8, 0, 0, TimeSpan.Zero);

    public static RoundManifest Manifest(string strategy = StrategyNames.FedAvg, int dimension = 3, int round = 0,
        string? globalModel = null, IReadOnlyList<string>? sites = null, int quorum = 1, StrategySpec? spec = null) => new()
        {
            Federation = "sepsis",
            Round = round,
            Strategy = spec ?? new StrategySpec { Name = strategy },
            Model = new ModelSpec { Kind = ModelKinds.Logistic, Dimension = dimension, FeatureSpecId = "sepsis-hourly", FeatureSpecVersion = "1.0.0" },
            GlobalModel = globalModel ?? (round > 0 ? GlobalModelPath.Format("sepsis", round - 1) : null),
            Quorum = quorum,
            Sites = sites ?? ["A", "B", "C"],
            OpenedAt = T0,
            Deadline = T0.AddHours(6),
        };

    public static UpdateHeader Header(string site, long examples, int dimension = 3, int round = 0, string kind = ParameterKinds.Full,
        IReadOnlyDictionary<string, double>? metrics = null) => new()
        {
            Federation = "sepsis",
            Round = round,
            Site = site,
            ExampleCount = examples,
            ParameterKind = kind,
            Dimension = dimension,
            LocalMetrics = metrics ?? new Dictionary<string, double>(),
            CreatedAt = T0.AddMinutes(30),
        };

    public static ModelFile Global(float[] parameters, int round = 0, string strategy = StrategyNames.FedAvg) =>
        ModelFile.FromParameters(new ModelHeader
        {
            Federation = "sepsis",
            Round = round,
            Site = null,
            Kind = ModelKinds.Logistic,
            Dimension = parameters.Length,
            FeatureSpecId = "sepsis-hourly",
            FeatureSpecVersion = "1.0.0",
            Strategy = strategy,
            Sites = ["A", "B"],
            ExampleCount = 10,
            CreatedAt = T0,
        }, parameters);

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance,
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tolerance})");
        }
    }

    public static void AssertClose(double[] expected, ReadOnlySpan<float> actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance,
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tolerance})");
        }
    }
}
