using System.CommandLine;
using System.IO.Compression;

namespace ClinicalFed.Cli.Tests;

[Collection(CliCollection.Name)]
public sealed class CommandLineTests
{
    public static IEnumerable<object[]> AllVerbs()
    {
        static IEnumerable<string[]> Walk(Command c, string[] path)
        {
            foreach (var sub in c.Subcommands)
            {
                var p = path.Append(sub.Name).ToArray();
                yield return p;
                foreach (var deeper in Walk(sub, p)) yield return deeper;
            }
        }
        return Walk(Program.BuildRoot(), []).Select(p => new object[] { string.Join(' ', p) });
    }

    [Theory]
    [MemberData(nameof(AllVerbs))]
    public void EveryVerbHasHelp(string verb)
    {
        var (exit, output, _) = Cli.Run([.. verb.Split(' '), "--help"]);
        Assert.Equal(0, exit);
        Assert.Contains("Usage:", output);
        Assert.Contains(verb.Split(' ')[^1], output);
    }

    [Fact]
    public void TheToolHasTheVerbsTheIssuesName()
    {
        var names = Program.BuildRoot().Subcommands.Select(c => c.Name).ToHashSet();
        foreach (var v in new[] { "convert", "quality", "features", "stats", "impute", "bench", "demo" }) Assert.Contains(v, names);
    }

    [Fact]
    public void ConvertOfAFileLackingAMappedColumnFailsNamingFileAndColumnAndWritesNothing()
    {
        using var tmp = new TempDir();
        var input = tmp["extract.csv.gz"];
        using (var gz = new StreamWriter(new GZipStream(File.Create(input), CompressionLevel.Fastest)))
            gz.Write("patient_id,hospital,hour,HR\np000001,A,0,80\n");
        var (exit, _, err) = Cli.Run("convert", "--input", input, "--mapping", "physionet2019", "--site", "A", "--out", tmp["cdm"]);
        Assert.Equal(2, exit);
        Assert.Contains("extract.csv.gz", err);
        Assert.Contains("'O2Sat'", err);
        Assert.Contains("'SepsisLabel'", err);
        Assert.False(Directory.Exists(tmp["cdm"]));
        Assert.Empty(Directory.GetDirectories(tmp.Path));
    }

    [Fact]
    public void UnknownMappingNameListsTheShippedOnes()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["x.csv"], "a\n1\n");
        var (exit, _, err) = Cli.Run("convert", "--input", tmp["x.csv"], "--mapping", "nosuch", "--site", "A", "--out", tmp["cdm"]);
        Assert.Equal(2, exit);
        Assert.Contains("physionet2019", err);
        Assert.Contains("diabetes130", err);
    }

    [Fact]
    public void FeaturesOnAFolderThatIsNotACdmFailsClearly()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["notcdm"]);
        var (exit, _, err) = Cli.Run("features", "--task", "sepsis", "--cdm", tmp["notcdm"], "--out", tmp["f"]);
        Assert.Equal(2, exit);
        Assert.Contains("convert-report.json", err);
    }

    [Fact]
    public void BadTaskIsReportedWithTheOption()
    {
        using var tmp = new TempDir();
        var (exit, _, err) = Cli.Run("features", "--task", "mortality", "--cdm", tmp.Path, "--out", tmp["f"]);
        Assert.Equal(2, exit);
        Assert.Contains("--task", err);
    }
}
