using System.Buffers.Binary;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClinicalFed.Privacy.SecureAggregation;
using ClinicalFed.Storage.SecureAggregation;
using ClinicalFed.Testing;

namespace ClinicalFed.Storage.Tests.SecureAggregation;

/// <summary>The secure-aggregation objects a real round writes validate against their schemas, which name exactly the records' properties.</summary>
public sealed class SecAggSchemaTests
{
    private static string Schemas()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "schemas", "secagg-setup.schema.json"))) return Path.Combine(d.FullName, "schemas");
        throw new DirectoryNotFoundException("schemas/");
    }

    [Theory]
    [InlineData("secagg-setup.schema.json", typeof(SecAggSetup))]
    [InlineData("secagg-key.schema.json", typeof(SecAggPublicKey))]
    [InlineData("secagg-survivors.schema.json", typeof(SecAggSurvivors))]
    [InlineData("secagg-unmask.schema.json", typeof(SecAggUnmask))]
    [InlineData("masked-update.schema.json", typeof(MaskedUpdateHeader))]
    [InlineData("secagg-shares.schema.json", typeof(SecAggShares))]
    [InlineData("secagg-site-list.schema.json", typeof(SecAggSiteList))]
    public void Schema_names_the_records_properties(string schema, Type record)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Schemas(), schema)));
        var names = doc.RootElement.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal);
        var props = record.GetProperties().Select(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name).OfType<string>().Order(StringComparer.Ordinal);
        Assert.Equal(props, names);
    }

    [Fact]
    public async Task Every_secagg_object_of_a_round_with_a_dropout_validates()
    {
        using var store = new TempStore();
        string[] sites = ["A", "B", "C"];
        var manifest = Fixtures.Manifest(dimension: 4, sites: sites, quorum: 2);
        await store.Store.PutManifestAsync(manifest);
        var run = await InProcessSecureRound.RunAsync(store.Store, manifest,
            sites.Select((s, i) => new SecureSiteInput(s, [1, 2, 3, i], 10 + i)).ToList(), dropAfterMasking: new HashSet<string> { "C" });
        Assert.Equal(RoundOutcomeStatus.Aggregated, run.Outcome.Status);
        var checkedFiles = 0;
        foreach (var f in store.AllFiles().Where(f => f.Contains("/secagg/", StringComparison.Ordinal)))
        {
            string? schema = f.EndsWith("setup.json", StringComparison.Ordinal) ? "secagg-setup" : f.EndsWith("survivors.json", StringComparison.Ordinal) ? "secagg-survivors"
                : f.Contains("/keys/", StringComparison.Ordinal) ? "secagg-key" : f.Contains("/unmask/", StringComparison.Ordinal) ? "secagg-unmask"
                : f.EndsWith(".cfm32", StringComparison.Ordinal) ? "masked-update" : f.Contains("/shares/", StringComparison.Ordinal) ? "secagg-shares"
                : f.EndsWith("keyset.json", StringComparison.Ordinal) || f.EndsWith("participants.json", StringComparison.Ordinal) ? "secagg-site-list" : null;
            if (schema is null) continue;
            var bytes = File.ReadAllBytes(Path.Combine(store.Folder, f));
            string json = schema == "masked-update" ? Encoding.UTF8.GetString(bytes, 9, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(5))) : Encoding.UTF8.GetString(bytes);
            var errors = MiniJsonSchema.Load(Path.Combine(Schemas(), schema + ".schema.json")).Validate(json);
            Assert.True(errors.Count == 0, f + ": " + string.Join("; ", errors));
            checkedFiles++;
        }
        Assert.Equal(1 + 3 + 3 + 1 + 2 + 2, checkedFiles);   // setup, 3 keys, 3 share objects, survivors, 2 reveals, 2 masked
    }
}
