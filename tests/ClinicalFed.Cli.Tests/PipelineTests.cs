using System.IO.Compression;
using System.Text.Json;

namespace ClinicalFed.Cli.Tests;

/// <summary>The whole site pipeline through the command line, on a small generated demo.</summary>
[Collection(CliCollection.Name)]
public sealed class PipelineTests
{
    [Fact]
    public void DemoRunsEveryStepAndReportsEveryBaselineForEverySite()
    {
        using var tmp = new TempDir();
        var (exit, output, err) = Cli.Run("demo", "--out", tmp["demo"], "--patients", "400", "--seed", "7", "--rounds", "3");
        Assert.True(exit == 0, err);
        Assert.Contains("report.json", output);
        using var summary = JsonDocument.Parse(File.ReadAllText(tmp["demo/demo-summary.json"]));
        var sites = summary.RootElement.GetProperty("sites").EnumerateArray().Select(s => s.GetProperty("name").GetString()!).ToList();
        Assert.Equal(4, sites.Count);
        using var report = JsonDocument.Parse(File.ReadAllText(tmp["demo/report.json"]));
        var reported = report.RootElement.GetProperty("sites").EnumerateArray().ToList();
        Assert.Equal(sites, reported.Select(s => s.GetProperty("name").GetString()!));
        Assert.Equal(3, report.RootElement.GetProperty("rounds").GetArrayLength());
        foreach (var s in reported.Take(3)) // the three larger sites always have positives in their test split
            foreach (var baseline in new[] { "local", "centralized", "federated", "personalized" })
            {
                var v = s.GetProperty("auroc").GetProperty(baseline).GetDouble();
                Assert.InRange(v, 0.6, 1.0);
            }
        Assert.True(report.RootElement.GetProperty("bytes_uploaded").GetProperty("total").GetInt64() > 0);
        Assert.Contains("<svg", File.ReadAllText(tmp["demo/report.html"]));
        // The report verb renders the same HTML from report.json alone.
        var (rexit, _, rerr) = Cli.Run("report", "--in", tmp["demo/report.json"], "--out", tmp["again.html"]);
        Assert.True(rexit == 0, rerr);
        Assert.Equal(File.ReadAllText(tmp["demo/report.html"]), File.ReadAllText(tmp["again.html"]));
        // The federated statistics are the merge of exactly the sites' training-row statistics.
        var federated = ClinicalFed.Statistics.StatisticsSet.FromJson(File.ReadAllText(tmp["demo/work/stats-federated.json"]), "federated");
        long rows = sites.Sum(n => ClinicalFed.Statistics.StatisticsSet.FromJson(File.ReadAllText(tmp[$"demo/work/stats-{n}.json"]), n).Rows);
        Assert.Equal(rows, federated.Rows);
        Assert.Equal(sites.Order(), federated.Sites.Order());
        // Every site's CDM and quality report exist; each round's global model is in the store.
        foreach (var n in sites)
        {
            Assert.True(File.Exists(Path.Combine(tmp["demo/cdm"], n, "convert-report.json")));
            Assert.True(File.Exists(Path.Combine(tmp["demo/quality"], n + ".json")));
        }
        for (int r = 0; r < 3; r++) Assert.True(File.Exists(tmp[$"demo/store/federations/simulation/rounds/{r:D5}/global.cfm"]));
    }

    [Fact]
    public void SameSeedSameData()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["a"], "--patients", "100", "--seed", "3", "--rounds", "2").Exit);
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["b"], "--patients", "100", "--seed", "3", "--rounds", "2").Exit);
        foreach (var f in Directory.GetFiles(tmp["a/ehr"]))
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(tmp["b/ehr"], Path.GetFileName(f))));
        Assert.Equal(File.ReadAllText(tmp["a/work/stats-federated.json"]), File.ReadAllText(tmp["b/work/stats-federated.json"]));
        using var ra = JsonDocument.Parse(File.ReadAllText(tmp["a/report.json"]));
        using var rb = JsonDocument.Parse(File.ReadAllText(tmp["b/report.json"]));
        Assert.Equal(ra.RootElement.GetProperty("sites").GetRawText(), rb.RootElement.GetProperty("sites").GetRawText());
    }

    [Fact]
    public void ReportOfAFileThatIsNotAReportFailsClearly()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["x.json"], "{\"hello\": 1}");
        var (exit, _, err) = Cli.Run("report", "--in", tmp["x.json"]);
        Assert.Equal(2, exit);
        Assert.Contains("x.json", err);
        Assert.False(File.Exists(tmp["report.html"]));
    }

    [Fact]
    public void SimulateRejectsBadOptionsAllAtOnce()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["x.csv"], "a\n");
        var (exit, _, err) = Cli.Run("simulate", "--task", "mortality", "--site", $"A={tmp["x.csv"]}", "--site", $"A={tmp["x.csv"]}", "--strategy", "fedmagic", "--rounds", "0", "--out", tmp["o"]);
        Assert.Equal(2, exit);
        Assert.Contains("--task", err);
        Assert.Contains("given twice", err);
        Assert.Contains("fedmagic", err);
        Assert.Contains("--rounds", err);
    }

    [Fact]
    public void SimulateSplitsASiteIntoShardsByPatient()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["d"], "--patients", "300", "--rounds", "1").Exit);
        var cdm = Path.Combine(tmp["d/cdm"], "academic_micu");
        var (exit, _, err) = Cli.Run("simulate", "--task", "sepsis", "--site", $"M={cdm}", "--split", "M:3", "--rounds", "2", "--out", tmp["s"]);
        Assert.True(exit == 0, err);
        using var report = JsonDocument.Parse(File.ReadAllText(tmp["s/report.json"]));
        var names = report.RootElement.GetProperty("sites").EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList();
        Assert.Equal(["M1", "M2", "M3"], names);
        long rows = report.RootElement.GetProperty("sites").EnumerateArray().Sum(s => s.GetProperty("train_rows").GetInt64() + s.GetProperty("validation_rows").GetInt64() + s.GetProperty("test_rows").GetInt64());
        using var summary = JsonDocument.Parse(File.ReadAllText(tmp["s/work/M/features/features-summary.json"]));
        Assert.Equal(summary.RootElement.GetProperty("rows").GetInt64(), rows);
    }

    [Fact]
    public void ValidateFailsOnAResourceFirelyRejectsAndNamesTheLine()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["d"], "--patients", "100", "--rounds", "1").Exit);
        var cdm = Path.Combine(tmp["d/cdm"], "rural");
        Assert.Equal(0, Cli.Run("validate", "--cdm", cdm, "--max", "2000").Exit);
        var patients = Path.Combine(cdm, "Patient.ndjson.gz");
        var lines = ReadGz(patients);
        lines[1] = lines[1].Replace("\"gender\":", "\"gendre\":");
        WriteGz(patients, lines);
        var (exit, _, err) = Cli.Run("validate", "--cdm", cdm, "--max", "2000");
        Assert.Equal(1, exit);
        Assert.Contains("Patient.ndjson.gz: line 2", err);
    }

    [Fact]
    public void StatsMergeRefusesTheSameSiteTwice()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["d"], "--patients", "100", "--rounds", "1").Exit);
        var a = tmp["d/work/stats-rural.json"];
        var (exit, _, err) = Cli.Run("stats", "merge", "--in", a, a, "--out", tmp["m.json"]);
        Assert.Equal(2, exit);
        Assert.Contains("rural", err);
        Assert.False(File.Exists(tmp["m.json"]));
    }

    private static List<string> ReadGz(string path)
    {
        using var r = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        var list = new List<string>();
        while (r.ReadLine() is { } l) list.Add(l);
        return list;
    }

    private static void WriteGz(string path, List<string> lines)
    {
        using var w = new StreamWriter(new GZipStream(File.Create(path), CompressionLevel.Fastest));
        foreach (var l in lines) w.Write(l + "\n");
    }
}
