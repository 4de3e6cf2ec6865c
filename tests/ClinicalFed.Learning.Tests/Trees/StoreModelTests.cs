using ClinicalFed.Federation;
using ClinicalFed.Learning.Trees;
using ClinicalFed.Storage;
using ClinicalFed.Testing;
using ClinicalFed.Trees;
using Microsoft.ML;

namespace ClinicalFed.Learning.Tests.Trees;

/// <summary>Tree ensembles through the federation store, as a site would use the round's global model.</summary>
public sealed class StoreModelTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly string _folder = Directory.CreateTempSubdirectory("clinicalfed-trees-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Global_model_read_back_from_the_store_scores_in_a_plain_MlNet_PredictionEngine_like_the_merged_ensemble()
    {
        var sites = new[] { TreeTestData.Site("A", 900, seed: 701, missingRate: 0.2), TreeTestData.Site("B", 600, seed: 702, shift: 0.4, missingRate: 0.1) };
        var ensembles = sites.Select((s, k) => GradientTreeBooster.Train(s, new TreeBoostingOptions { NumberOfTrees = 8, NumberOfLeaves = 8, Seed = k })).ToArray();
        var inMemory = TreeBagging.Merge(ensembles.Select((m, k) => new SiteEnsemble(m, sites[k].Rows)).ToArray());

        var store = new LocalFolderStore(_folder);
        await store.PutManifestAsync(new RoundManifest
        {
            Federation = "sepsis", Round = 0, Strategy = new StrategySpec { Name = StrategyNames.TreeBagging },
            Model = new ModelSpec { Kind = ModelKinds.Trees, Dimension = TreeTestData.Features, FeatureSpecId = "synthetic", FeatureSpecVersion = "1.0.0" },
            GlobalModel = null, Quorum = 2, Sites = ["A", "B"], OpenedAt = T0, Deadline = T0.AddHours(1),
        });
        for (int k = 0; k < sites.Length; k++)
        {
            using var file = new MemoryStream();
            var header = new UpdateHeader
            {
                Federation = "sepsis", Round = 0, Site = sites[k].Header.Site, ExampleCount = sites[k].Rows, ParameterKind = ParameterKinds.Full,
                Dimension = TreeTestData.Features, CreatedAt = T0.AddMinutes(5),
            };
            UpdateFile.Write(file, header, ensembles[k]);
            file.Position = 0;
            await store.PutUpdateAsync("sepsis", 0, header.Site, file);
        }
        var outcome = await new RoundAggregator(store).AggregateAsync("sepsis", 0);
        Assert.Equal(RoundOutcomeStatus.Aggregated, outcome.Status);

        var global = (await store.GetGlobalModelAsync("sepsis", 0))!;
        Assert.Equal(PayloadEncodings.TreeEnsemble, global.Header.PayloadEncoding);
        Assert.True(inMemory.StructurallyEquals(global.TreeEnsemble));

        // Plain ML.NET from here on: the model from the file, saved and loaded as a zip, scored by a PredictionEngine.
        var ml = new MLContext(0);
        var path = Path.Combine(_folder, "global.zip");
        ml.Model.Save(global.ToMlNetModel(ml), new FeatureMatrix([], TreeTestData.Features, []).ToDataView().Schema, path);
        var engine = MlNetInteropTests.Engine(ml, ml.Model.Load(path, out _), TreeTestData.Features);
        foreach (var row in TreeTestRows.Random(300, 703, inMemory, nanRate: 0.2))
        {
            var p = engine.Predict(new MlNetInteropTests.Row { Features = row });
            Assert.Equal(inMemory.Score(row), p.Score, 1e-5);
            Assert.Equal(inMemory.Probability(row), p.Probability, 1e-5);
        }
    }
}
