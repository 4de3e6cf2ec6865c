using ClinicalFed.Cdm.Ingest;
using ClinicalFed.Cdm.Tests.TestSupport;

namespace ClinicalFed.Cdm.Tests.Ingest;

public class ConversionReportTests
{
    [Fact]
    public void Report_survives_a_write_and_read()
    {
        var r = new ConversionReport { Site = "B", Input = "hospital_B.csv.gz", InputKind = "flat-delimited", Mapping = "physionet2019", RecordsRead = 10, RowsOutsideSite = 2, Seconds = 1.5 };
        r.FilesRead.Add("hospital_B.csv.gz");
        r.FilesSkipped["notes.txt"] = "not data";
        r.ResourcesWritten = new Dictionary<string, long> { ["Patient"] = 3, ["Observation"] = 40 };
        r.Skip("Claim");
        r.Skip("Claim");
        r.Reject("a.csv", 7, RejectionKinds.InvalidValue, "'x' is not a number", "HR");
        r.Reject("a.csv", 9, RejectionKinds.MalformedRow, "3 fields where the header has 4");
        r.Warnings.Add("w1");

        using var tmp = new TempFolder();
        var path = tmp.Combine("convert-report.json");
        using (var s = File.Create(path)) r.WriteTo(s);
        var back = ConversionReport.Read(path);

        Assert.Equal(("B", "hospital_B.csv.gz", "flat-delimited", "physionet2019"), (back.Site, back.Input, back.InputKind, back.Mapping));
        Assert.Equal((10L, 2L, 1.5, 1), (back.RecordsRead, back.RowsOutsideSite, back.Seconds, back.FormatVersion));
        Assert.Equal(["hospital_B.csv.gz"], back.FilesRead);
        Assert.Equal("not data", back.FilesSkipped["notes.txt"]);
        Assert.Equal(40, back.ResourcesWritten["Observation"]);
        Assert.Equal(2, back.SkippedResourceTypes["Claim"]);
        Assert.Equal(2, back.RejectedTotal);
        Assert.Equal(1, back.RejectedByKind[RejectionKinds.InvalidValue]);
        Assert.Equal(r.RejectedExamples, back.RejectedExamples);
        Assert.Equal(["w1"], back.Warnings);
        Assert.DoesNotContain("\"column\": null", File.ReadAllText(path));
    }

    [Fact]
    public void Examples_are_capped_but_counts_are_not()
    {
        var r = new ConversionReport();
        for (int i = 0; i < ConversionReport.MaxExamples + 50; i++) r.Reject("f", i + 2, RejectionKinds.InvalidValue, "m", "c");
        Assert.Equal(ConversionReport.MaxExamples + 50, r.RejectedTotal);
        Assert.Equal(ConversionReport.MaxExamples + 50, r.RejectedByKind[RejectionKinds.InvalidValue]);
        Assert.Equal(ConversionReport.MaxExamples, r.RejectedExamples.Count);
    }
}
