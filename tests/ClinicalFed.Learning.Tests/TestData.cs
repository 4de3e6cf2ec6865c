using ClinicalFed.Data;

namespace ClinicalFed.Learning.Tests;

/// <summary>Seeded synthetic classification problems.</summary>
internal static class TestData
{
    /// <summary>
    /// Rows x ~ N(0, 1)^d (with a little correlation), labels ~ Bernoulli(sigmoid(w·x + b)) for fixed true weights;
    /// rows belong to patients with 1..2·meanRows rows each.
    /// </summary>
    public static FeatureMatrix Logistic(int rows, int columns, int seed, float scale = 1.5f, float bias = -1f, int meanRowsPerPatient = 1)
    {
        var rng = new Random(seed);
        var trueWeights = TrueWeights(columns, scale);
        var values = new float[rows * columns];
        var labels = new float[rows];
        var groups = new int[rows];
        int patient = 0, left = 0;
        for (int i = 0; i < rows; i++)
        {
            if (left == 0)
            {
                left = meanRowsPerPatient <= 1 ? 1 : rng.Next(1, 2 * meanRowsPerPatient);
                patient = i == 0 ? 0 : patient + 1;
            }

            left--;
            groups[i] = patient;
            double shared = Gaussian(rng);
            double z = bias;
            for (int c = 0; c < columns; c++)
            {
                float x = (float)(0.8 * Gaussian(rng) + 0.6 * shared * (c % 2 == 0 ? 1 : -1) * 0.5);
                values[i * columns + c] = x;
                z += trueWeights[c] * x;
            }

            labels[i] = rng.NextDouble() < LinearWeights.Sigmoid(z) ? 1f : 0f;
        }

        return new FeatureMatrix(values, columns, labels, groupIds: groups, groupCount: patient + 1);
    }

    public static float[] TrueWeights(int columns, float scale)
    {
        var w = new float[columns];
        for (int c = 0; c < columns; c++)
        {
            // A mix of strong, weak and null effects with both signs.
            w[c] = scale * (c % 3) switch { 0 => 1f, 1 => -0.5f, _ => 0f } / MathF.Sqrt(1 + c / 4f);
        }

        return w;
    }

    public static double Gaussian(Random rng)
    {
        double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>A small feature table: patients P0.., encounters, hours.</summary>
    public static FeatureTable Table(float[] values, float[] labels, int columns, params string[] patients)
    {
        var header = new FeatureTableHeader
        {
            Task = "test",
            FeatureSpecId = "test-spec",
            FeatureSpecVersion = "1.0.0",
            Site = "T",
            Columns = Enumerable.Range(0, columns).Select(c => "col" + c).ToArray(),
            Label = "y",
        };
        var keys = new RowKey[labels.Length];
        for (int i = 0; i < keys.Length; i++)
        {
            string p = patients.Length == 0 ? "P" + i : patients[i];
            keys[i] = new RowKey(p, p + "-E", i);
        }

        return new FeatureTable(header, keys, labels, values);
    }

    public static float[] Probabilities(Microsoft.ML.IDataView scored) =>
        Microsoft.ML.Data.ColumnCursorExtensions.GetColumn<float>(scored, FeatureData.ProbabilityColumn).ToArray();
}
