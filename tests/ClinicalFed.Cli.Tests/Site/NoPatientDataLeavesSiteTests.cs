using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClinicalFed.Cli.Simulation;
using ClinicalFed.Cli.Site;
using ClinicalFed.Storage;
using Xunit.Abstractions;

namespace ClinicalFed.Cli.Tests.Site;

/// <summary>
/// Issue 5 item 5: no patient data leaves a site. Runs small federations of site agents and scans every byte each site
/// sends (its statistics and update files as they go on the wire, captured by an <see cref="ISiteUploader"/>
/// wrapper, and every line the agent logs) for the identifiers and dates of its input. The identifiers come from
/// parsing the input file itself (its patient and encounter id columns) and from the site's CDM (the resource ids the
/// conversion derives from them); the dates are those of the site's CDM, in ISO 8601 and other common forms. The
/// inputs carry no calendar dates of their own: PhysioNet-layout extracts count hours since ICU admission and
/// Diabetes 130 has no dates at all, so their conversion places stays at the mapping's anchor; those are the dates
/// the site holds, and the ones scanned for.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class NoPatientDataLeavesSiteTests(ThreeSitesFixture data, ITestOutputHelper output) : IClassFixture<ThreeSitesFixture>
{
    [Fact]
    public async Task Generated_ICU_sites_send_no_patient_identifier_or_date()
    {
        using var tmp = new TempDir();
        var sources = data.Sources.Take(2).ToList();
        var sent = await RunAsync(new AgentFederation(new LocalFolderStore(tmp["store"]), "icu-scan", "sepsis", sources, tmp.Path) { Rounds = 2 });

        var secrets = new PatientSecrets();
        foreach (var s in sources)
        {
            secrets.AddIdentifiersFromCsv(s.Path, "patient_id");
            secrets.AddFromCdm(Path.Combine(tmp.Path, "sites", s.Name, "cdm"));
        }

        AssertNothingLeaks(sent, secrets, sources.Count, rounds: 2);
    }

    [Fact]
    public async Task The_Diabetes_130_ER_site_sends_no_patient_identifier_or_date()
    {
        string? path = FindSharedFile(Path.Combine("diabetes130", "diabetic_data.csv.gz"));
        if (path is null)
        {
            output.WriteLine("SKIPPED: ../shared/data/diabetes130/diabetic_data.csv.gz is not on this machine; this real-data test did not run.");
            return;
        }

        using var tmp = new TempDir();
        var sources = new List<SiteSource> { new("ER", path, "ER") };
        var sent = await RunAsync(new AgentFederation(new LocalFolderStore(tmp["store"]), "readmission-scan", "readmission", sources, tmp.Path) { Rounds = 2 });

        var secrets = new PatientSecrets();
        secrets.AddIdentifiersFromCsv(path, "encounter_id", "patient_nbr");
        secrets.AddFromCdm(Path.Combine(tmp.Path, "sites", "ER", "cdm"));
        AssertNothingLeaks(sent, secrets, sites: 1, rounds: 2);
    }

    [Fact]
    public void The_scan_finds_identifiers_and_dates_where_they_are()
    {
        var secrets = new PatientSecrets();
        secrets.AddIdentifier("p100042");
        secrets.AddIdentifier("8222157");
        secrets.AddDate("2000-01-03T05:00:00Z");
        Assert.Equal(["p100042"], secrets.Find("{\"site\":\"x\",\"note\":\"p100042\"}"));
        Assert.Equal(["8222157"], secrets.Find("encounter 8222157."));
        Assert.Empty(secrets.Find("loss 0.8222157, count 18222157, p1000421"));
        Assert.Equal(["2000-01-03"], secrets.Find("admitted 2000-01-03"));
        Assert.Equal(["01/03/2000"], secrets.Find("admitted 01/03/2000"));
        Assert.Equal(["20000103"], secrets.Find("admitted 20000103 05:00"));
    }

    private static async Task<Sent> RunAsync(AgentFederation federation)
    {
        var uploads = new ConcurrentQueue<(string Site, string What, byte[] Bytes)>();
        var logs = new ConcurrentQueue<(string Site, string Line)>();
        var reports = await federation.RunAsync(
            uploader: site => new RecordingUploader(site, new DirectStoreUploader(federation.Store), uploads),
            log: (site, line) => logs.Enqueue((site, line)));
        Assert.All(reports, r => Assert.Equal(Enumerable.Range(0, federation.Rounds), r.RoundsTrained));
        return new Sent(uploads.ToList(), logs.ToList());
    }

    private sealed record Sent(List<(string Site, string What, byte[] Bytes)> Uploads, List<(string Site, string Line)> Logs);

    private void AssertNothingLeaks(Sent sent, PatientSecrets secrets, int sites, int rounds)
    {
        // The scan covered what it should: statistics and every round's update from every site, and the logs.
        Assert.Equal(sites, sent.Uploads.Count(u => u.What == "statistics"));
        Assert.Equal(sites * rounds, sent.Uploads.Count(u => u.What.StartsWith("update", StringComparison.Ordinal)));
        Assert.NotEmpty(sent.Logs);
        Assert.True(secrets.IdentifierCount > 100, $"only {secrets.IdentifierCount} identifiers were derived from the input");
        Assert.True(secrets.DateCount > 0, "no dates were derived from the site's CDM");

        var leaks = new List<string>();
        foreach (var (site, what, bytes) in sent.Uploads)
            leaks.AddRange(secrets.Find(Encoding.Latin1.GetString(bytes)).Select(hit => $"{site} {what}: '{hit}'"));
        foreach (var (site, line) in sent.Logs)
            leaks.AddRange(secrets.Find(line).Select(hit => $"{site} log '{line}': '{hit}'"));
        output.WriteLine($"scanned {sent.Uploads.Sum(u => u.Bytes.Length):N0} uploaded bytes and {sent.Logs.Count} log lines for " +
                         $"{secrets.IdentifierCount:N0} identifiers and {secrets.DateCount:N0} date forms");
        Assert.True(leaks.Count == 0, "patient data left the site:\n" + string.Join("\n", leaks.Take(20)));
    }

    private static string? FindSharedFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "data", relative);
            if (File.Exists(candidate)) return candidate;
        }

        return null;
    }
}

/// <summary>
/// The identifiers and dates of a site's patients, and a scan for them. Identifiers match as whole tokens (runs of
/// letters, digits and '_', a decimal fraction kept with its number), so an id is not "found" inside a longer number or
/// a metric's digits; numeric ids shorter than 5 digits are not scanned as bare numbers (they are indistinguishable
/// from the counts that aggregates consist of), only in their CDM forms (a letter prefix). Dates match anywhere, as
/// substrings, in every form listed in <see cref="AddDate"/> (the all-digit yyyyMMdd form as a whole token).
/// </summary>
internal sealed partial class PatientSecrets
{
    private const int MinBareNumberLength = 5;
    private readonly HashSet<string> _identifiers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dates = new(StringComparer.Ordinal);

    public int IdentifierCount => _identifiers.Count;
    public int DateCount => _dates.Count;

    public void AddIdentifier(string id)
    {
        id = id.Trim();
        if (id.Length == 0 || (id.All(char.IsAsciiDigit) && id.Length < MinBareNumberLength)) return;
        _identifiers.Add(id);
    }

    /// <summary>A FHIR date or dateTime, in the forms it could be written: as it is, without its zone, date and minute, and the date as yyyy-MM-dd, yyyyMMdd, MM/dd/yyyy, dd/MM/yyyy, dd.MM.yyyy.</summary>
    public void AddDate(string fhirDateTime)
    {
        _dates.Add(fhirDateTime);
        if (fhirDateTime.Length < 10) return;
        var match = DateParts().Match(fhirDateTime);
        if (!match.Success) return;
        string y = match.Groups["y"].Value, m = match.Groups["m"].Value, d = match.Groups["d"].Value;
        _dates.Add($"{y}-{m}-{d}");
        _identifiers.Add($"{y}{m}{d}"); // as a whole token, so that it is not "found" among a metric's digits
        _dates.Add($"{m}/{d}/{y}");
        _dates.Add($"{d}/{m}/{y}");
        _dates.Add($"{d}.{m}.{y}");
        if (match.Groups["t"].Success)
        {
            _dates.Add($"{y}-{m}-{d}T{match.Groups["t"].Value}");
            _dates.Add($"{y}-{m}-{d} {match.Groups["t"].Value}");
        }
    }

    /// <summary>Adds the values of the named columns of a (gzip) CSV file.</summary>
    public void AddIdentifiersFromCsv(string path, params string[] columns)
    {
        using var stream = File.OpenRead(path);
        using var text = new StreamReader(path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(stream, CompressionMode.Decompress) : stream);
        var header = text.ReadLine()!.Split(',');
        var indexes = columns.Select(c => Array.IndexOf(header, c)).ToArray();
        Assert.DoesNotContain(-1, indexes);
        while (text.ReadLine() is { } line)
        {
            var fields = line.Split(',');
            foreach (int i in indexes) AddIdentifier(fields[i]);
        }
    }

    /// <summary>
    /// Adds what the site's CDM holds about its patients: the ids and identifiers of Patient and Encounter resources,
    /// and every date or dateTime value of every resource.
    /// </summary>
    public void AddFromCdm(string cdmDirectory)
    {
        var files = Directory.GetFiles(cdmDirectory, "*.ndjson.gz");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            bool identifies = Path.GetFileName(file) is "Patient.ndjson.gz" or "Encounter.ndjson.gz";
            using var text = new StreamReader(new GZipStream(File.OpenRead(file), CompressionMode.Decompress));
            while (text.ReadLine() is { } line)
            {
                foreach (Match m in QuotedDate().Matches(line)) AddDate(m.Groups[1].Value);
                if (!identifies) continue;
                using var doc = JsonDocument.Parse(line);
                AddIdentifier(doc.RootElement.GetProperty("id").GetString()!);
                if (doc.RootElement.TryGetProperty("identifier", out var list))
                    foreach (var identifier in list.EnumerateArray())
                        if (identifier.TryGetProperty("value", out var value)) AddIdentifier(value.GetString()!);
            }
        }
    }

    /// <summary>Every identifier or date form found in <paramref name="text"/>.</summary>
    public IReadOnlyList<string> Find(string text)
    {
        var hits = new List<string>();
        foreach (Match token in Token().Matches(text))
            if (_identifiers.Contains(token.Value)) hits.Add(token.Value);
        foreach (var date in _dates)
            if (text.Contains(date, StringComparison.Ordinal)) hits.Add(date);
        return hits;
    }

    [GeneratedRegex(@"[A-Za-z0-9_]+(?:\.[0-9]+)*")]
    private static partial Regex Token();

    [GeneratedRegex("\"([0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9:.]+(?:Z|[+-][0-9]{2}:[0-9]{2})?)?)\"")]
    private static partial Regex QuotedDate();

    [GeneratedRegex(@"^(?<y>[0-9]{4})-(?<m>[0-9]{2})-(?<d>[0-9]{2})(?:T(?<t>[0-9]{2}:[0-9]{2}))?")]
    private static partial Regex DateParts();
}
