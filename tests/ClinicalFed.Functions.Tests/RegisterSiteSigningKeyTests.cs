using System.Net;
using System.Text.Json.Nodes;
using ClinicalFed.Privacy.Signing;

namespace ClinicalFed.Functions.Tests;

/// <summary>RegisterSite's optional body <c>{"signing_public_key": ...}</c>, and <c>require_signatures</c> in CreateFederation's body.</summary>
public sealed class RegisterSiteSigningKeyTests : IDisposable
{
    private readonly HandlerHost _host = new();

    public void Dispose() => _host.Dispose();

    private async Task CreateAsync(bool requireSignatures = false)
    {
        var settings = JsonNode.Parse(Fixtures.Settings())!.AsObject();
        if (requireSignatures) settings["require_signatures"] = true;
        Assert.Equal(HttpStatusCode.Created, (await _host.CreateFederationAsync(settings.ToJsonString())).Status);
    }

    private Task<Answer> RegisterAsync(string site, string body) =>
        _host.SendAsync(HttpMethod.Post, $"/api/federations/{Fixtures.Federation}/sites/{site}", body);

    [Fact]
    public async Task A_PEM_public_key_in_the_body_is_registered_as_base64_DER_with_the_site()
    {
        await CreateAsync(requireSignatures: true);
        using var key = SigningKeys.Create();
        var answer = await RegisterAsync("A", new JsonObject { ["signing_public_key"] = SigningKeys.PublicKeyPem(key) }.ToJsonString());
        Assert.Equal(HttpStatusCode.Created, answer.Status);
        Assert.False(string.IsNullOrEmpty(answer.Json!["key"]!.GetValue<string>()));
        await _host.RegisterAsync(Fixtures.Federation, "B"); // no body: no signing key

        var config = (await _host.Local.GetFederationAsync(Fixtures.Federation))!.Value.Config;
        Assert.True(config.RequireSignatures);
        Assert.Equal(SigningKeys.PublicKeyBase64(key), config.FindSite("A")!.SigningPublicKey);
        Assert.Null(config.FindSite("B")!.SigningPublicKey);
    }

    [Theory]
    [InlineData("""{"signing_public_key": "not a key"}""", "signing_public_key")]
    [InlineData("""{"signing_public_key": 42}""", "signing_public_key")]
    [InlineData("""{"public_key": "x"}""", "public_key")]
    public async Task A_bad_body_is_a_400_naming_the_field_and_registers_nothing(string body, string field)
    {
        await CreateAsync();
        var answer = await RegisterAsync("A", body);
        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        Assert.Equal(field, answer.Json!["field"]!.GetValue<string>());
        Assert.Empty((await _host.Local.GetFederationAsync(Fixtures.Federation))!.Value.Config.Sites);
    }
}
