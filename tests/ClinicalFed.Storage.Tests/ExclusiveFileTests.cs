using ClinicalFed.Storage;

namespace ClinicalFed.Storage.Tests;

public sealed class ExclusiveFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("clinicalfed-exclusive-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Publishes_under_a_free_name()
    {
        var temp = Write(".a.tmp", "new");
        var final = Path.Combine(_folder, "a");
        Assert.True(ExclusiveFile.TryPublish(temp, final));
        Assert.Equal("new", File.ReadAllText(final));
    }

    [Fact]
    public void Refuses_a_taken_name_and_leaves_its_content()
    {
        var final = Write("a", "first");
        var temp = Write(".a.tmp", "second");
        Assert.False(ExclusiveFile.TryPublish(temp, final));
        Assert.Equal("first", File.ReadAllText(final));
        Assert.Equal("second", File.ReadAllText(temp)); // the caller's to delete
    }

    [Fact]
    public void Of_many_concurrent_publishers_exactly_one_wins()
    {
        var final = Path.Combine(_folder, "race");
        for (int round = 0; round < 200; round++)
        {
            var temps = Enumerable.Range(0, 8).Select(i => Write($".race.{i}.tmp", $"{round}:{i}")).ToArray();
            using var start = new Barrier(temps.Length);
            var won = new bool[temps.Length];
            Parallel.For(0, temps.Length, new ParallelOptions { MaxDegreeOfParallelism = temps.Length }, i =>
            {
                start.SignalAndWait();
                won[i] = ExclusiveFile.TryPublish(temps[i], final);
            });
            int winner = Assert.Single(Enumerable.Range(0, won.Length), i => won[i]);
            Assert.Equal($"{round}:{winner}", File.ReadAllText(final));
            File.Delete(final);
            foreach (var t in temps) File.Delete(t);
        }
    }
}
