using ClinicalFed.Cdm.Features;
using ClinicalFed.Data;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Federation;
using ClinicalFed.Learning;
using ClinicalFed.Statistics;

namespace ClinicalFed.Cli.Serving;

/// <summary>A bedside score: the probability, the row it came from and the features that moved it most.</summary>
public sealed record RiskScore(double Probability, string PatientId, string EncounterId, int Hour, IReadOnlyList<(string Feature, double Contribution)> TopFeatures)
{
    /// <summary>The Observations the row drew on: the encounter's latest of each code (ids, at most <see cref="ScoringModel.MaxBasis"/>).</summary>
    public IReadOnlyList<string> BasisObservations { get; init; } = [];
}

/// <summary>Bad input to a scoring request: becomes a 4xx OperationOutcome naming what is wrong.</summary>
public sealed class ScoringInputException(string message) : Exception(message);

/// <summary>
/// A round's model (logistic regression or gradient-boosted trees), ready to score a patient's FHIR data with the
/// sites' own code path: the request's Bundle goes through the CDM converter and the feature spec's extractor exactly
/// as a site's data does, the latest row of the requested (or latest) encounter is imputed with the federated medians
/// and standardized with the federated means and standard deviations (as <c>simulate</c> and the site agent prepare
/// rows), and the global or a site's personalized model scores it. So a bedside score equals the evaluation's score
/// for the same data.
/// </summary>
public sealed class ScoringModel
{
    private readonly LinearWeights? _weights;
    private readonly Trees.TreeEnsembleModel? _trees;
    private readonly Simulation.RowPreparation _preparation;

    private ScoringModel(FeatureSpec spec, ModelHeader header, LinearWeights? weights, Trees.TreeEnsembleModel? trees, StatisticsSet statistics, string source)
    {
        Spec = spec;
        Header = header;
        _weights = weights;
        _trees = trees;
        Source = source;
        _preparation = new Simulation.RowPreparation(statistics, spec.Columns.Where(c => FeatureSpec.IsImputable(c.Kind)).Select(c => c.Name).ToHashSet());
    }

    public FeatureSpec Spec { get; }
    public ModelHeader Header { get; }
    /// <summary>Which file the model came from (global.cfm, personalized/&lt;site&gt;.cfm, or the full path of a site's own file).</summary>
    public string Source { get; }
    /// <summary>sepsis or readmission.</summary>
    public string Task => Spec.Task;

    /// <summary>logistic or trees.</summary>
    public string Kind => _trees is null ? ModelKinds.Logistic : ModelKinds.Trees;

    /// <summary>What the model is, for people: "federated logistic regression" or "federated gradient-boosted trees".</summary>
    public string Description => _trees is null ? "federated logistic regression" : $"federated gradient-boosted trees ({_trees.Trees.Count} trees)";

    /// <summary>
    /// Loads the model of round folder <paramref name="roundDirectory"/> (a store's <c>rounds/NNNNN</c>, from
    /// <c>simulate</c> or the serverless aggregator): <c>personalized/&lt;site&gt;.cfm</c> when <paramref name="site"/> is
    /// given and it exists, else <c>global.cfm</c>; the statistics are the federation's <c>statistics/federated.json</c>.
    /// </summary>
    public static ScoringModel Load(string roundDirectory, string? site = null) => Load(roundDirectory, site, null);

    /// <summary>
    /// As <see cref="Load(string, string?)"/>, or with <paramref name="personalizedFile"/> a site's own personalized model
    /// file (<c>site run</c>'s <c>personalized-model.cfm</c>), which must belong to the round's federation and model kind.
    /// </summary>
    public static ScoringModel Load(string roundDirectory, string? site, string? personalizedFile)
    {
        var dir = Path.GetFullPath(roundDirectory);
        var manifestPath = Path.Combine(dir, "manifest.json");
        if (!File.Exists(manifestPath)) throw new FileNotFoundException($"{manifestPath} not found: --model must be a round folder of a federation store (…/federations/<federation>/rounds/<NNNNN>)");
        var manifest = RoundManifest.Parse(File.ReadAllBytes(manifestPath), manifestPath);
        if (manifest.Model.Kind is not (ModelKinds.Logistic or ModelKinds.Trees))
            throw new NotSupportedException($"{manifestPath}: model kind '{manifest.Model.Kind}'; scoring serves {ModelKinds.Logistic} and {ModelKinds.Trees} models");
        bool trees = manifest.Model.Kind == ModelKinds.Trees;
        string modelPath = personalizedFile is not null ? Path.GetFullPath(personalizedFile)
            : site is not null && File.Exists(Path.Combine(dir, "personalized", site + ".cfm")) ? Path.Combine(dir, "personalized", site + ".cfm")
            : Path.Combine(dir, "global.cfm");
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"{modelPath} not found: the round has no model yet");
        ModelFile model;
        using (var s = File.OpenRead(modelPath)) model = ModelFile.Read(s, modelPath);
        if (personalizedFile is not null && (model.Header.Federation != manifest.Federation || model.Header.Kind != manifest.Model.Kind))
            throw new InvalidOperationException($"{modelPath}: a {model.Header.Kind} model of federation '{model.Header.Federation}', but {manifestPath} is a round of '{manifest.Federation}' training {manifest.Model.Kind} models");
        string source = personalizedFile is not null ? modelPath : Path.GetRelativePath(dir, modelPath);
        var statsPath = Path.GetFullPath(Path.Combine(dir, "..", "..", "statistics", "federated.json"));
        if (!File.Exists(statsPath)) throw new FileNotFoundException($"{statsPath} not found: the federation's merged statistics impute and standardize every scored row");
        var statistics = StatisticsSet.FromJson(File.ReadAllText(statsPath), statsPath);
        string task = manifest.Model.FeatureSpecId.StartsWith("sepsis", StringComparison.Ordinal) ? "sepsis" : "readmission";
        var spec = FeatureSpec.Load(task);
        if (spec.Id != manifest.Model.FeatureSpecId || spec.Version != manifest.Model.FeatureSpecVersion)
            throw new InvalidOperationException($"{manifestPath}: feature spec {manifest.Model.FeatureSpecId} {manifest.Model.FeatureSpecVersion}, but this build has {spec.Id} {spec.Version}");
        if (statistics.Features.Count != spec.Columns.Count)
            throw new InvalidOperationException($"{statsPath}: statistics of {statistics.Features.Count} columns for {spec.Columns.Count} feature columns");
        if (trees)
        {
            // A round's global.cfm holds the aggregator's tree ensemble; a personalized model, LightGBM text.
            if (model.Header.Dimension != spec.Columns.Count)
                throw new InvalidOperationException($"{modelPath}: trees reading {model.Header.Dimension} features, but the feature spec has {spec.Columns.Count} columns");
            var ensemble = Learning.Trees.TreeEnsembleMlNet.ToTreeEnsemble(model, new Microsoft.ML.MLContext(seed: 0), spec.Columns.Select(c => c.Name).ToArray());
            if (ensemble.FeatureCount != spec.Columns.Count)
                throw new InvalidOperationException($"{modelPath}: the ensemble reads {ensemble.FeatureCount} features, but the feature spec has {spec.Columns.Count} columns");
            return new ScoringModel(spec, model.Header, null, ensemble, statistics, source);
        }

        if (model.Header.Dimension != spec.Columns.Count + 1)
            throw new InvalidOperationException($"{modelPath}: {model.Header.Dimension} parameters for {spec.Columns.Count} feature columns + bias");
        return new ScoringModel(spec, model.Header, LinearWeights.FromParameterVector(model.Parameters), null, statistics, source);
    }

    /// <summary>Scores the patient in a FHIR Bundle (JSON): its latest row of <paramref name="encounterId"/>, or of its latest encounter.</summary>
    public RiskScore Score(string bundleJson, string? encounterId = null) => Score(System.Text.Encoding.UTF8.GetBytes(bundleJson), encounterId);

    /// <summary>Scores the patient in a FHIR Bundle given as UTF-8 JSON bytes.</summary>
    public RiskScore Score(ReadOnlyMemory<byte> bundleJson, string? encounterId = null)
    {
        // The request's resources go through the sites' converter and extractor, in memory.
        var report = new ConversionReport { Site = "bedside", Input = "request", StartedAt = DateTimeOffset.UnixEpoch };
        using var writer = ClinicalFed.Cdm.Io.CdmWriter.ToRecords();
        try
        {
            // A small string pool: one request's resources, not a site's millions.
            new FhirIngestor(writer, report, new ClinicalFed.Cdm.Io.FhirResourceReader(new ClinicalFed.Cdm.Io.Utf8StringPool(1 << 12, 1 << 8))).IngestJson(bundleJson.Span, "request");
            writer.Commit(_ => { });
        }
        catch (Exception e) when (e is ClinicalFed.Cdm.CdmException or System.Text.Json.JsonException or InvalidDataException or FormatException)
        {
            throw new ScoringInputException($"the request is not a FHIR R4 Bundle the CDM accepts: {e.Message}");
        }

        RowKey? best = null;
        float[]? row = null;
        try
        {
            FeatureExtraction.Extract(Spec, new CdmStore(writer.Records, "request"), (in RowKey key, float _, ReadOnlySpan<float> values) =>
            {
                if (encounterId is not null && key.EncounterId != encounterId) return;
                if (best is { } b && string.CompareOrdinal(key.EncounterId, b.EncounterId) < 0) return;
                if (best is { } c && key.EncounterId == c.EncounterId && key.Hour < c.Hour) return;
                best = key;
                row ??= new float[values.Length];
                values.CopyTo(row);
            });
        }
        catch (ClinicalFed.Cdm.CdmException e)
        {
            throw new ScoringInputException($"the request's resources cannot be featurized: {e.Message}");
        }

        if (best is not { } k || row is null)
            throw new ScoringInputException(encounterId is null
                ? $"the Bundle yields no {Spec.Task} row: it needs a Patient, an Encounter{(Spec.Task == "sepsis" ? " with an ICU stay and Observations" : "")} referencing it"
                : $"the Bundle yields no row for Encounter/{encounterId}");
        // The inputs behind the score, for RiskAssessment.basis: the encounter's latest Observation of each code.
        var basis = writer.Records.Observations
            .Where(o => o.EncounterId == k.EncounterId && o.Effective is not null)
            .GroupBy(o => o.Code)
            .Select(g => g.MaxBy(o => o.Effective)!.Id)
            .Order(StringComparer.Ordinal).Take(MaxBasis).ToArray();
        return ScoreRow(row, k) with { BasisObservations = basis };
    }

    /// <summary>Observations listed in a RiskAssessment's basis at most.</summary>
    public const int MaxBasis = 64;

    /// <summary>Scores one raw feature row (NaN = missing) exactly as the federation prepared its rows.</summary>
    public RiskScore ScoreRow(float[] raw, RowKey key)
    {
        if (raw.Length != _preparation.Columns) throw new ArgumentException($"{raw.Length} values for {_preparation.Columns} columns", nameof(raw));
        var x = (float[])raw.Clone();
        _preparation.Prepare(x);
        double probability;
        double[] contribution = new double[x.Length];
        if (_trees is { } ensemble)
        {
            // A feature's contribution (log-odds): the score minus the score with that feature at the federation's mean
            // (0 once standardized). For a linear model this is exactly w_j·x_j, the logistic path below.
            double z = ensemble.Score(x);
            for (int j = 0; j < x.Length; j++)
            {
                float kept = x[j];
                x[j] = 0;
                contribution[j] = z - ensemble.Score(x);
                x[j] = kept;
            }

            probability = 1 / (1 + Math.Exp(-z));
        }
        else
        {
            var w = _weights!.ToArray();
            for (int j = 0; j < x.Length; j++) contribution[j] = (double)w[j] * x[j];
            probability = _weights.Probability(x);
        }

        var top = Enumerable.Range(0, x.Length).Select(j => (Feature: Spec.Columns[j].Name, Contribution: contribution[j]))
            .OrderByDescending(t => Math.Abs(t.Contribution)).Take(5).Select(t => (t.Feature, Math.Round(t.Contribution, 4))).ToList();
        return new RiskScore(probability, key.PatientId, key.EncounterId, key.Hour, top);
    }
}
