using System.Net;
using System.Net.Http.Json;
using ClinicalFed.Federation;
using ClinicalFed.Statistics;
using ClinicalFed.Storage.Azure;
using ClinicalFed.Storage.Coordination;

namespace ClinicalFed.Cli.Site;

/// <summary>
/// Uploads through the serverless aggregator: asks the <c>UploadTicket</c> function (authenticated by the site's key)
/// for a short-lived URL that can create exactly this site's object, then PUTs the bytes to it. The site holds no
/// credential that could read or overwrite anything in the store.
/// </summary>
public sealed class TicketUploader : ISiteUploader
{
    public const string KeyHeader = "X-ClinicalFed-Site-Key";

    private readonly HttpClient _http;
    private readonly string _key;

    /// <param name="http">Client whose BaseAddress is the function app's API root (e.g. https://app.azurewebsites.net/api/).</param>
    /// <param name="key">The site's key from registration.</param>
    public TicketUploader(HttpClient http, string key)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (http.BaseAddress is null) throw new ArgumentException("the HTTP client needs the function app's base address", nameof(http));
        _http = http;
        _key = key;
    }

    public async Task UploadStatisticsAsync(string federation, string site, StatisticsSet statistics, CancellationToken cancellationToken)
    {
        var ticket = await GetTicketAsync(federation, site, TicketKinds.Statistics, cancellationToken).ConfigureAwait(false);
        using var content = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(statistics.ToJson()));
        await UploadTicketClient.UploadAsync(ticket.UploadUrl, content, cancellationToken).ConfigureAwait(false);
    }

    public async Task UploadUpdateAsync(UpdateHeader header, float[] payload, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(header);
        using var content = new MemoryStream();
        UpdateFile.Write(content, header, payload);
        await UploadUpdateFileAsync(header, content, cancellationToken).ConfigureAwait(false);
    }

    public async Task UploadTreeUpdateAsync(UpdateHeader header, Trees.TreeEnsembleModel ensemble, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(header);
        using var content = new MemoryStream();
        UpdateFile.Write(content, header, ensemble);
        await UploadUpdateFileAsync(header, content, cancellationToken).ConfigureAwait(false);
    }

    public async Task UploadCompressedUpdateAsync(UpdateHeader header, byte[] payload, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(header);
        using var content = new MemoryStream();
        UpdateFile.WriteCompressed(content, header, header.PayloadEncoding!, payload);
        await UploadUpdateFileAsync(header, content, cancellationToken).ConfigureAwait(false);
    }

    private async Task UploadUpdateFileAsync(UpdateHeader header, MemoryStream content, CancellationToken cancellationToken)
    {
        var ticket = await GetTicketAsync(header.Federation, header.Site, TicketKinds.Update, cancellationToken).ConfigureAwait(false);
        if (ticket.Round != header.Round)
            throw new InvalidOperationException($"the aggregator's open round is {ticket.Round}, not {header.Round}; the update is not uploaded");
        content.Position = 0;
        await UploadTicketClient.UploadAsync(ticket.UploadUrl, content, cancellationToken).ConfigureAwait(false);
    }

    public async Task UploadSecAggAsync(string federation, string site, int round, string kind, string path, byte[] content, CancellationToken cancellationToken)
    {
        var ticket = await GetTicketAsync(federation, site, kind, cancellationToken).ConfigureAwait(false);
        if (ticket.Round != round || ticket.Path != path)
            throw new InvalidOperationException($"the aggregator's ticket is for {ticket.Path} (round {ticket.Round}), not {path}; nothing is uploaded");
        using var stream = new MemoryStream(content, writable: false);
        await UploadTicketClient.UploadAsync(ticket.UploadUrl, stream, cancellationToken).ConfigureAwait(false);
    }

    private async Task<UploadTicket> GetTicketAsync(string federation, string site, string kind, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post,
            $"federations/{Uri.EscapeDataString(federation)}/sites/{Uri.EscapeDataString(site)}/tickets?kind={kind}");
        request.Headers.Add(KeyHeader, _key);
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            // Nothing to upload now (already uploaded, round closed): the same as finding the object in the store.
            string why = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw new Storage.StoreObjectExistsException($"{kind} of site '{site}' in '{federation}' ({why})");
        }

        if (!response.IsSuccessStatusCode)
        {
            string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw new InvalidOperationException($"UploadTicket answered {(int)response.StatusCode} {response.ReasonPhrase}: {body}");
        }

        return await response.Content.ReadFromJsonAsync<UploadTicket>(cancellationToken).ConfigureAwait(false)
               ?? throw new InvalidOperationException("UploadTicket answered an empty body");
    }
}
