using System.IO.Compression;
using System.Text.Json;
using ClinicalFed.Data;

namespace ClinicalFed.Cli.Tests;

/// <summary>The whole site pipeline through the command line, on a small generated demo.</summary>
[Collection(CliCollection.Name)]
public sealed class PipelineTests
{
    [Fact]
    public void DemoRunsEveryStepAndTheFederatedStatisticsCoverEverySite()
    {
        using var tmp = new TempDir();
        var (exit, output, err) = Cli.Run("demo", "--out", tmp["demo"], "--patients", "120", "--seed", "7");
        Assert.True(exit == 0, err);
        Assert.Contains("demo-summary.json", output);
        using var summary = JsonDocument.Parse(File.ReadAllText(tmp["demo/demo-summary.json"]));
        var sites = summary.RootElement.GetProperty("sites").EnumerateArray().ToList();
        Assert.Equal(4, sites.Count);
        long rows = sites.Sum(s => s.GetProperty("rows").GetInt64());
        Assert.Equal(rows, summary.RootElement.GetProperty("federated_rows").GetInt64());
        foreach (var s in sites)
        {
            var name = s.GetProperty("name").GetString()!;
            Assert.True(File.Exists(Path.Combine(tmp["demo/cdm"], name, "convert-report.json")));
            var imputed = FeatureTableFile.Load(Path.Combine(tmp["demo/imputed"], name, FeatureTableFile.FileName));
            Assert.Equal(s.GetProperty("rows").GetInt64(), imputed.Rows);
            Assert.NotNull(imputed.Header.Imputation);
            // After imputation the value columns hold no NaN; indicators were never NaN.
            var imputable = imputed.Header.ImputableColumns.Select(c => imputed.Header.Columns.ToList().IndexOf(c)).ToArray();
            for (int r = 0; r < imputed.Rows; r++)
                foreach (var c in imputable) Assert.False(float.IsNaN(imputed.Row(r)[c]), $"{name} row {r} column {imputed.Header.Columns[c]}");
        }
    }

    [Fact]
    public void SameSeedSameData()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["a"], "--patients", "60", "--seed", "3").Exit);
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["b"], "--patients", "60", "--seed", "3").Exit);
        foreach (var f in Directory.GetFiles(tmp["a/ehr"]))
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(Path.Combine(tmp["b/ehr"], Path.GetFileName(f))));
        Assert.Equal(File.ReadAllText(tmp["a/stats/federated.json"]), File.ReadAllText(tmp["b/stats/federated.json"]));
    }

    [Fact]
    public void ValidateFailsOnAResourceFirelyRejectsAndNamesTheLine()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["d"], "--patients", "60").Exit);
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
        Assert.Equal(0, Cli.Run("demo", "--out", tmp["d"], "--patients", "60").Exit);
        var a = Path.Combine(tmp["d/stats"], "rural.json");
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
