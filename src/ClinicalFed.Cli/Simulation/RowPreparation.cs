using ClinicalFed.Statistics;

namespace ClinicalFed.Cli.Simulation;

/// <summary>
/// How every row a model sees is prepared from the federation's merged statistics: missing imputable values get the
/// federated median, then each column is standardized with the federated mean and standard deviation (a column still
/// missing becomes 0, the mean). One class for the sites' training and evaluation rows (<see cref="SitePreparation"/>)
/// and the bedside rows of <c>clinicalfed serve</c>, so both score the same numbers.
/// </summary>
public sealed class RowPreparation
{
    private readonly float[] _fill, _mean, _std;

    public RowPreparation(StatisticsSet federated, IReadOnlySet<string> imputableColumns)
    {
        ArgumentNullException.ThrowIfNull(federated);
        _fill = ImputationPlan.From(federated, ImputationMethod.Median, imputableColumns).FillValues.ToArray();
        _mean = federated.Features.Select(f => f.Count > 0 ? (float)f.Mean : 0f).ToArray();
        _std = federated.Features.Select(f => f.Count > 1 && f.StandardDeviation > 1e-6 ? (float)f.StandardDeviation : 1f).ToArray();
    }

    public int Columns => _mean.Length;

    /// <summary>Prepares row-major rows in place (length a multiple of <see cref="Columns"/>).</summary>
    public void Prepare(Span<float> rowMajor)
    {
        int c = _mean.Length;
        if (rowMajor.Length % c != 0) throw new ArgumentException($"{rowMajor.Length} values are not rows of {c} columns", nameof(rowMajor));
        ImputationPlan.FillMissing(rowMajor, _fill);
        for (int start = 0; start < rowMajor.Length; start += c)
        {
            var row = rowMajor.Slice(start, c);
            for (int j = 0; j < c; j++) row[j] = float.IsNaN(row[j]) ? 0 : (row[j] - _mean[j]) / _std[j];
        }
    }
}
