using System.IO.Compression;
using ClinicalFed.Cdm.Features;
using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Io;
using ClinicalFed.Cdm.Model;
using ClinicalFed.Data;

namespace ClinicalFed.Cdm.Tests.Features;

/// <summary>The in-memory CDM (one request's data, as <c>clinicalfed serve</c> converts it) equals the folder CDM of the same input.</summary>
public sealed class InMemoryCdmTests
{
    private static string RepositoryFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, relative))) return Path.Combine(d.FullName, relative);
        throw new FileNotFoundException(relative);
    }

    [Fact]
    public void Converting_a_Bundle_in_memory_writes_the_same_resources_and_features_as_a_CDM_folder()
    {
        var bundle = RepositoryFile("examples/scoring/sepsis-bundle.json");
        var folder = Directory.CreateTempSubdirectory("cf-inmem-").FullName;
        try
        {
            var cdm = Path.Combine(folder, "cdm");
            CdmConverter.Convert(new ConvertOptions(bundle, "bedside", cdm));
            using var writer = CdmWriter.InMemory();
            new FhirIngestor(writer, new ConversionReport { Site = "bedside", Input = "request", StartedAt = DateTimeOffset.UnixEpoch }).IngestJson(File.ReadAllBytes(bundle), "request");
            writer.Commit(_ => { });
            Assert.Throws<InvalidOperationException>(() => CdmWriter.InMemory().Ndjson(CdmResourceType.Patient)); // not committed

            foreach (var type in CdmResourceTypes.All)
            {
                var path = Path.Combine(cdm, CdmResourceTypes.FileName(type));
                string onDisk = File.Exists(path) ? new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress)).ReadToEnd() : "";
                Assert.Equal(onDisk, System.Text.Encoding.UTF8.GetString(writer.Ndjson(type).Span));
            }

            List<(RowKey Key, float[] Values)> Rows(CdmStore store)
            {
                var rows = new List<(RowKey, float[])>();
                FeatureExtraction.Extract(FeatureSpec.Load("sepsis"), store, (in RowKey k, float _, ReadOnlySpan<float> v) => rows.Add((k, v.ToArray())));
                return rows;
            }

            // The scoring endpoint's path: the converter's records go to the extractor without any JSON in between.
            using var records = CdmWriter.ToRecords();
            new FhirIngestor(records, new ConversionReport { Site = "bedside", Input = "request", StartedAt = DateTimeOffset.UnixEpoch }).IngestJson(File.ReadAllBytes(bundle), "request");
            records.Commit(_ => { });
            foreach (var type in CdmResourceTypes.All) Assert.Equal(writer.Count(type), records.Count(type));

            var fromFolder = Rows(new CdmStore(cdm));
            Assert.NotEmpty(fromFolder);
            foreach (var fromMemory in new[] { Rows(new CdmStore(writer.Ndjson, "request")), Rows(new CdmStore(records.Records, "request")) })
            {
                Assert.Equal(fromFolder.Select(r => r.Key), fromMemory.Select(r => r.Key));
                for (int i = 0; i < fromFolder.Count; i++) Assert.Equal(fromFolder[i].Values, fromMemory[i].Values);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
