using ClinicalFed.Storage;
using ClinicalFed.Storage.Azure;

namespace ClinicalFed.Functions.Tests;

/// <summary>The app settings: every problem at once, no secret in a problem, and the store each valid combination gives.</summary>
public sealed class SettingsTests
{
    private const string Key = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs=";
    private const string ConnectionString = "DefaultEndpointsProtocol=https;AccountName=clinicalfed;AccountKey=" + Key + ";EndpointSuffix=core.windows.net";

    private static HandlerSettings Read(params (string Name, string Value)[] settings)
    {
        var map = settings.ToDictionary(s => s.Name, s => s.Value);
        return HandlerSettings.Read(name => map.GetValueOrDefault(name));
    }

    [Fact]
    public void No_store_setting_is_one_problem_that_lists_the_three_ways()
    {
        var s = Read();
        var problem = Assert.Single(s.Problems);
        Assert.Contains(HandlerSettings.ConnectionStringSetting, problem);
        Assert.Contains(HandlerSettings.ServiceUriSetting, problem);
        Assert.Contains(HandlerSettings.FolderSetting, problem);
        Assert.Equal(StoreKind.None, s.Kind);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_and_no_secret_is_quoted()
    {
        var s = Read(
            (HandlerSettings.ConnectionStringSetting, "AccountKey=" + Key),
            (HandlerSettings.ServiceUriSetting, "https://clinicalfed.blob.core.windows.net/?sv=2025&sig=abc"),
            (HandlerSettings.ContainerSetting, "Federation_Store"),
            (HandlerSettings.PrefixSetting, "a/../b"),
            (HandlerSettings.PortSetting, "http"));

        Assert.Equal(6, s.Problems.Count);
        Assert.Contains(s.Problems, p => p.Contains("set only one of", StringComparison.Ordinal));
        Assert.Contains(s.Problems, p => p.Contains("names neither AccountName nor BlobEndpoint", StringComparison.Ordinal));
        Assert.Contains(s.Problems, p => p.Contains("carries a query", StringComparison.Ordinal));
        Assert.Contains(s.Problems, p => p.Contains("'Federation_Store' is not a valid container name", StringComparison.Ordinal));
        Assert.Contains(s.Problems, p => p.Contains("'.' or '..' segment", StringComparison.Ordinal));
        Assert.Contains(s.Problems, p => p.Contains("FUNCTIONS_CUSTOMHANDLER_PORT 'http' is not a TCP port", StringComparison.Ordinal));
        Assert.DoesNotContain(s.Problems, p => p.Contains(Key, StringComparison.Ordinal) || p.Contains("sig=abc", StringComparison.Ordinal));

        var e = new HandlerConfigurationException(s.Problems);
        Assert.StartsWith("ClinicalFed.Functions cannot start: 6 problems with its app settings:", e.Message);
        Assert.Equal(6, e.Message.Split(Environment.NewLine).Count(l => l.StartsWith(" - ", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("ab", "3 to 63")]
    [InlineData("-store", "starting and ending")]
    [InlineData("my--store", "two hyphens")]
    [InlineData("UPPER", "lower-case")]
    public void Container_names_follow_the_azure_rules(string container, string fragment)
    {
        var s = Read((HandlerSettings.ConnectionStringSetting, ConnectionString), (HandlerSettings.ContainerSetting, container));
        Assert.Contains(fragment, Assert.Single(s.Problems));
    }

    [Fact]
    public void A_connection_string_without_a_container_and_a_folder_with_a_container_are_problems()
    {
        Assert.Contains("CLINICALFED_STORE_CONTAINER is not set", Assert.Single(Read((HandlerSettings.ConnectionStringSetting, ConnectionString)).Problems));
        var folder = Read((HandlerSettings.FolderSetting, "/tmp/store"), (HandlerSettings.ContainerSetting, "federation"), (HandlerSettings.PrefixSetting, "x"));
        Assert.Equal(2, folder.Problems.Count);
        Assert.Contains("has no container", folder.Problems[0]);
        Assert.Contains("has no prefix", folder.Problems[1]);
    }

    [Theory]
    [InlineData("blob.core.windows.net", "not an absolute https URL")]
    [InlineData("http://clinicalfed.blob.core.windows.net", "uses http")]
    [InlineData("https://clinicalfed.blob.core.windows.net/federation", "has a path")]
    public void The_service_uri_is_an_https_account_endpoint(string uri, string fragment)
    {
        var s = Read((HandlerSettings.ServiceUriSetting, uri), (HandlerSettings.ContainerSetting, "federation"));
        Assert.Contains(fragment, Assert.Single(s.Problems));
    }

    [Fact]
    public void A_connection_string_gives_a_blob_store_with_the_prefix()
    {
        var s = Read((HandlerSettings.ConnectionStringSetting, ConnectionString), (HandlerSettings.ContainerSetting, "federation"),
            (HandlerSettings.PrefixSetting, "/studies/sepsis/"), (HandlerSettings.PortSetting, "7071"));
        Assert.Empty(s.Problems);
        Assert.Equal(StoreKind.ConnectionString, s.Kind);
        Assert.Equal(7071, s.Port);
        Assert.DoesNotContain(Key, s.StoreDescription);
        var store = Assert.IsType<BlobFederationStore>(StoreFactory.Create(s));
        Assert.Equal("studies/sepsis", store.Prefix);
        Assert.Equal("federation", store.Container.Name);
        Assert.Equal("clinicalfed", store.Container.AccountName);
    }

    [Fact]
    public void A_service_uri_gives_a_blob_store_with_the_managed_identity()
    {
        var s = Read((HandlerSettings.ServiceUriSetting, "https://clinicalfed.blob.core.windows.net/"), (HandlerSettings.ContainerSetting, "federation"));
        Assert.Empty(s.Problems);
        Assert.Equal(StoreKind.ServiceUri, s.Kind);
        Assert.Equal(HandlerSettings.DefaultPort, s.Port);
        Assert.Equal("Azure Blob Storage container 'federation' at https://clinicalfed.blob.core.windows.net (managed identity)", s.StoreDescription);
        var store = Assert.IsType<BlobFederationStore>(StoreFactory.Create(s));
        Assert.Equal("", store.Prefix);
        Assert.Equal(new Uri("https://clinicalfed.blob.core.windows.net/federation"), store.Container.Uri);
    }

    [Fact]
    public void A_folder_gives_a_local_folder_store_and_a_file_is_refused()
    {
        var folder = Directory.CreateTempSubdirectory("clinicalfed-settings-").FullName;
        try
        {
            var s = Read((HandlerSettings.FolderSetting, folder));
            Assert.Empty(s.Problems);
            Assert.Equal(folder, Assert.IsType<LocalFolderStore>(StoreFactory.Create(s)).Root);

            var file = Path.Combine(folder, "file");
            File.WriteAllText(file, "");
            Assert.Contains("is a file, not a folder", Assert.Single(Read((HandlerSettings.FolderSetting, file)).Problems));
            Assert.Throws<HandlerConfigurationException>(() => StoreFactory.Create(Read((HandlerSettings.FolderSetting, file))));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Log_lines_lose_url_queries_signatures_and_named_secrets()
    {
        Assert.Equal("upload to https://a.blob.core.windows.net/c/x.cfu?[redacted] failed",
            LogRedactor.Redact("upload to https://a.blob.core.windows.net/c/x.cfu?sv=1&sig=abc%2B failed"));
        Assert.Equal("signature sig=[redacted]&se=1", LogRedactor.Redact("signature sig=abc&se=1"));
        Assert.Equal("key [redacted] refused", LogRedactor.Redact("key k3y refused", "k3y"));
        Assert.Equal("nothing to hide in federations/sepsis/rounds/00000/updates/A.cfu", LogRedactor.Redact("nothing to hide in federations/sepsis/rounds/00000/updates/A.cfu"));
    }
}
