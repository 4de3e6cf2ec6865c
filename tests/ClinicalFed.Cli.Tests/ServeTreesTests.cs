using System.Net;
using System.Text;
using ClinicalFed.Cli.Serving;
using ClinicalFed.Federation;
using ClinicalFed.Storage;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace ClinicalFed.Cli.Tests;

/// <summary>
/// <c>clinicalfed serve</c> on a tree federation's round (simulate --model trees on the demo's generated hospitals):
/// the global ensemble scores a Bundle exactly as the ensemble scores the evaluation's row, a site's personalized
/// LightGBM-text model is served with <c>--site</c>, and the strongest features are the ones whose move to the
/// federation's mean changes the score most.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class ServeTreesTests
{
    private static readonly FhirJsonDeserializer Strict = new(new DeserializerSettings().UsingMode(DeserializationMode.Strict));

    [Fact]
    public async System.Threading.Tasks.Task Serves_a_tree_federations_global_and_personalized_ensembles()
    {
        using var tmp = new TempDir();
        var demo = Cli.Run("demo", "--out", tmp["demo"], "--patients", "150", "--rounds", "1");
        Assert.True(demo.Exit == 0, demo.Err);
        var cdm = tmp["demo/cdm/academic_micu"];
        var sim = Cli.Run("simulate", "--task", "sepsis", "--site", $"academic_micu={cdm}", "--site", $"community={tmp["demo/cdm/community"]}",
            "--model", "trees", "--tree-mode", "cyclic", "--rounds", "1", "--trees", "8", "--leaves", "7", "--out", tmp["sim"]);
        Assert.True(sim.Exit == 0, sim.Err);
        var store = new LocalFolderStore(tmp["sim/store"]);
        int last = (await store.ListRoundsAsync("simulation")).Max();
        var roundDir = Path.Combine(tmp["sim/store"], "federations", "simulation", "rounds", last.ToString("D5", System.Globalization.CultureInfo.InvariantCulture));

        var (bundle, patientId, _) = ServeTests.BusiestPatient(cdm);
        var (key, row) = await ServeTests.PreparedLatestRowAsync(cdm, patientId, store);
        var ensemble = (await store.GetGlobalModelAsync("simulation", last))!.TreeEnsemble;
        double expected = 1 / (1 + Math.Exp(-ensemble.Score(row)));

        // The scoring model directly: the probability, and the contributions as defined (score minus score at the mean).
        var model = ScoringModel.Load(roundDir);
        Assert.Equal(ModelKinds.Trees, model.Kind);
        var score = model.Score(bundle);
        Assert.Equal(expected, score.Probability, 6);
        var (feature, contribution) = score.TopFeatures[0];
        int j = model.Spec.Columns.Select(c => c.Name).ToList().IndexOf(feature);
        var moved = row.ToArray();
        moved[j] = 0;
        Assert.Equal(ensemble.Score(row) - ensemble.Score(moved), contribution, 3);
        Assert.All(score.TopFeatures.Skip(1), t => Assert.True(Math.Abs(t.Contribution) <= Math.Abs(contribution)));

        // Over HTTP: the RiskAssessment carries the same probability and names the trees.
        await using (var app = ServeApp.Build(new ServeOptions { ModelDirectory = roundDir, Urls = "http://127.0.0.1:0", DevNoAuth = true }))
        {
            await app.StartAsync();
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
            var response = await http.PostAsync("/fhir/Patient/$sepsis-risk", new StringContent(bundle, Encoding.UTF8, "application/fhir+json"));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            var assessment = Strict.Deserialize<RiskAssessment>(body)!;
            Assert.Equal(expected, (double)Assert.IsType<FhirDecimal>(assessment.Prediction[0].Probability).Value!.Value, 4);
            Assert.Contains("gradient-boosted trees", assessment.Method!.Text ?? assessment.Method.Coding[0].Display);
            Assert.Equal($"Encounter/{key.EncounterId}", assessment.Encounter!.Reference);
        }

        // A site's personalized ensemble (LightGBM text in the store) is what --site serves.
        var personalized = ScoringModel.Load(roundDir, "academic_micu");
        Assert.Equal(Path.Combine("personalized", "academic_micu.cfm"), personalized.Source);
        var file = (await store.GetPersonalizedModelAsync("simulation", last, "academic_micu"))!;
        Assert.Equal(PayloadEncodings.LightGbmText, file.Header.PayloadEncoding);
        var parsed = Learning.Trees.TreeEnsembleMlNet.ToTreeEnsemble(file, new Microsoft.ML.MLContext(seed: 0));
        Assert.Equal(1 / (1 + Math.Exp(-parsed.Score(row))), personalized.Score(bundle).Probability, 6);
    }

    [Fact]
    public void Personalized_file_options_are_checked_together()
    {
        using var tmp = new TempDir();
        var problems = new ServeOptions { ModelDirectory = tmp.Path, DevNoAuth = true, Site = "A", PersonalizedModelFile = Path.Combine(tmp.Path, "none.cfm") }.Validate();
        Assert.Contains(problems, p => p.StartsWith("--personalized ", StringComparison.Ordinal) && p.EndsWith(": no such file", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("--personalized and --site: give one", StringComparison.Ordinal));
    }
}
