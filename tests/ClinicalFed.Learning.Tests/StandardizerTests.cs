using ClinicalFed.Statistics;

namespace ClinicalFed.Learning.Tests;

public class StandardizerTests
{
    [Fact]
    public void Z_scores_in_place_and_leaves_constant_columns_and_missing_values_alone()
    {
        var s = new Standardizer([1, 2, 10], [2, 0, 4]);
        float[] rows = [3, 5, 14, 1, 7, float.NaN];
        s.Apply(rows);
        // col0: (3−1)/2, (1−1)/2; col1 sd 0 → unchanged; col2: (14−10)/4, NaN stays NaN.
        Assert.Equal([1f, 5f, 1f, 0f, 7f, float.NaN], rows);
        Assert.Equal([1.0, 0.0, 10.0], s.Means);
        Assert.Equal([2.0, 1.0, 4.0], s.Scales);
        Assert.Throws<ArgumentException>(() => s.Apply(new float[4]));
        Assert.Throws<ArgumentException>(() => new Standardizer([0], [-1]));
    }

    [Fact]
    public void From_federated_statistics_every_site_gets_the_same_scaling()
    {
        string[] columns = ["hr", "lactate", "flag"];
        var histograms = new[] { new HistogramSpec(0, 300, 30), new HistogramSpec(0, 30, 30), new HistogramSpec(0, 2, 2) };
        float[] siteA = [80, 1, 1, 100, float.NaN, 1];
        float[] siteB = [60, 3, 1, 120, 2, 1, 90, 4, 1];
        StatisticsSet a = StatisticsSet.Compute("A", "spec", "1", columns, histograms, siteA, 3);
        StatisticsSet b = StatisticsSet.Compute("B", "spec", "1", columns, histograms, siteB, 3);
        StatisticsSet federated = StatisticsSet.Merge([a, b]);

        var s = Standardizer.FromStatistics(federated, columns);
        // hr: 80, 100, 60, 120, 90 → mean 90, population sd √((100 + 100 + 900 + 900 + 0) / 5) = 20.
        Assert.Equal(90, s.Means[0], 9);
        Assert.Equal(20, s.Scales[0], 9);
        // lactate observed 1, 3, 2, 4 → mean 2.5, sd √1.25.
        Assert.Equal(2.5, s.Means[1], 9);
        Assert.Equal(Math.Sqrt(1.25), s.Scales[1], 9);
        // flag is constant → unchanged.
        Assert.Equal((0.0, 1.0), (s.Means[2], s.Scales[2]));

        var onlyHr = Standardizer.FromStatistics(federated, columns, include: c => c == "hr");
        Assert.Equal([90.0, 0.0, 0.0], onlyHr.Means);

        var e = Assert.Throws<ArgumentException>(() => Standardizer.FromStatistics(federated, ["hr", "temp", "map"]));
        Assert.Contains("'temp'", e.Message);
        Assert.Contains("'map'", e.Message);
    }

    [Fact]
    public void Raw_scale_weights_give_the_same_scores_on_raw_data()
    {
        var s = new Standardizer([5, -2, 0], [2, 0.5, 0]);
        var standardizedModel = new LinearWeights([1.5f, -0.7f, 0.3f], 0.2f);
        float[] raw = [7, -1.5f, 3, 1, -3, -2];
        float[] z = (float[])raw.Clone();
        s.Apply(z);
        LinearWeights rawModel = s.ToRawScale(standardizedModel);
        for (int r = 0; r < 2; r++)
        {
            Assert.Equal(standardizedModel.Score(z.AsSpan(r * 3, 3)), rawModel.Score(raw.AsSpan(r * 3, 3)), 5);
        }

        Assert.True(s.ToStandardizedScale(rawModel).MaxAbsDifference(standardizedModel) < 1e-6);
    }
}
