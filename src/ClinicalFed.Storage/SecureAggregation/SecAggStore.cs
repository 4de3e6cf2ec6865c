using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;

namespace ClinicalFed.Storage.SecureAggregation;

/// <summary>
/// The secure-aggregation objects of a round, all write-once under <c>rounds/&lt;round&gt;/secagg/</c>
/// (schemas/store-layout.md, "Secure aggregation"): <c>setup.json</c>, <c>keys/&lt;site&gt;.json</c>,
/// <c>shares/&lt;site&gt;.json</c>, <c>keyset.json</c> and <c>participants.json</c> (the serverless phase boundaries),
/// <c>masked/&lt;site&gt;.cfm32</c>, <c>survivors.json</c> and <c>unmask/&lt;site&gt;.json</c>. Names are checked with <see cref="FederationNames"/> before they become paths.
/// </summary>
public sealed class SecAggStore(FederationStore store, string federation, int round)
{
    public string Folder { get; } = $"{StoreLayout.Round(federation, round)}/secagg";
    public string SetupPath => $"{Folder}/setup.json";
    public string SurvivorsPath => $"{Folder}/survivors.json";
    public string KeyPath(string site) => $"{Folder}/keys/{Name(site)}.json";
    public string SharesPath(string from) => $"{Folder}/shares/{Name(from)}.json";
    public string KeySetPath => $"{Folder}/keyset.json";
    public string ParticipantsPath => $"{Folder}/participants.json";
    public string MaskedPath(string site) => $"{Folder}/masked/{Name(site)}{MaskedUpdateFile.Extension}";
    public string UnmaskPath(string site) => $"{Folder}/unmask/{Name(site)}.json";

    private static string Name(string site) => FederationNames.Problem(site, "site") is { } p ? throw new ArgumentException(p, nameof(site)) : site;

    private Task PutAsync(string path, byte[] bytes, CancellationToken ct) =>
        store.PutObjectAsync(path, async (s, c) => { await s.WriteAsync(bytes, c).ConfigureAwait(false); return true; }, ct);

    private async Task<T?> GetJsonAsync<T>(string path, CancellationToken ct) where T : class
    {
        var bytes = await store.ReadAllBytesAsync(path, ct).ConfigureAwait(false);
        return bytes is null ? null : SecAggJson.Deserialize<T>(bytes, path);
    }

    /// <summary>The JSON objects of a folder whose <c>site</c> matches their file name (others are ignored).</summary>
    private async Task<List<T>> ListJsonAsync<T>(string sub, Func<T, string> site, CancellationToken ct) where T : class
    {
        var list = new List<T>();
        foreach (var n in await store.ListAsync($"{Folder}/{sub}", ct).ConfigureAwait(false))
        {
            if (!n.EndsWith(".json", StringComparison.Ordinal)) continue;
            try
            {
                if (await GetJsonAsync<T>($"{Folder}/{sub}/{n}", ct).ConfigureAwait(false) is { } v && site(v) + ".json" == n) list.Add(v);
            }
            catch (FederationDataException)
            {
                // A malformed object is ignored: its site counts as not having sent it.
            }
        }
        return list;
    }

    public Task PutSetupAsync(SecAggSetup setup, CancellationToken ct = default)
    {
        var problems = setup.Validate();
        if (problems.Count > 0) throw new FederationDataException(SetupPath, problems);
        return PutAsync(SetupPath, SecAggJson.Serialize(setup), ct);
    }

    public Task<SecAggSetup?> GetSetupAsync(CancellationToken ct = default) => GetJsonAsync<SecAggSetup>(SetupPath, ct);

    public Task PutKeyAsync(SecAggPublicKey key, CancellationToken ct = default) => PutAsync(KeyPath(key.Site), SecAggJson.Serialize(key), ct);

    /// <summary>
    /// The keys that count, in site order: those published whose identity matches their path, federation and round,
    /// among the sites of <c>participants.json</c> once written (the serverless protocol's masking set), else of
    /// <c>keyset.json</c>, else of the setup.
    /// </summary>
    public async Task<IReadOnlyList<SecAggPublicKey>> GetKeysAsync(SecAggSetup setup, CancellationToken ct = default)
    {
        var allowed = (await GetParticipantsAsync(ct).ConfigureAwait(false) ?? await GetKeySetAsync(ct).ConfigureAwait(false))?.Sites ?? setup.Sites;
        return (await ListJsonAsync<SecAggPublicKey>("keys", k => k.Site, ct).ConfigureAwait(false))
            .Where(k => k.Federation == federation && k.Round == round && setup.Sites.Contains(k.Site) && allowed.Contains(k.Site) && k.ExampleCount > 0)
            .OrderBy(k => k.Site, StringComparer.Ordinal).ToList();
    }

    /// <summary>The sites that published a key object (whatever it holds).</summary>
    public async Task<IReadOnlyList<string>> ListKeySitesAsync(CancellationToken ct = default) => await ListSitesAsync("keys", ".json", ct).ConfigureAwait(false);

    /// <summary>The sites that published their sealed shares.</summary>
    public async Task<IReadOnlyList<string>> ListShareSitesAsync(CancellationToken ct = default) => await ListSitesAsync("shares", ".json", ct).ConfigureAwait(false);

    /// <summary>The sites that revealed.</summary>
    public async Task<IReadOnlyList<string>> ListUnmaskSitesAsync(CancellationToken ct = default) => await ListSitesAsync("unmask", ".json", ct).ConfigureAwait(false);

    private async Task<IReadOnlyList<string>> ListSitesAsync(string sub, string extension, CancellationToken ct) =>
        (await store.ListAsync($"{Folder}/{sub}", ct).ConfigureAwait(false))
        .Where(n => n.EndsWith(extension, StringComparison.Ordinal)).Select(n => n[..^extension.Length]).Where(FederationNames.IsValid).Order(StringComparer.Ordinal).ToList();

    /// <summary>Writes the shares <paramref name="from"/> sealed for each recipient, as one object.</summary>
    public Task PutSharesAsync(string from, IReadOnlyDictionary<string, byte[]> sealedShares, CancellationToken ct = default) =>
        PutAsync(SharesPath(from), SharesBytes(federation, round, from, sealedShares), ct);

    /// <summary>The bytes of <c>shares/&lt;from&gt;.json</c> (what a site uploads with its ticket).</summary>
    public static byte[] SharesBytes(string federation, int round, string from, IReadOnlyDictionary<string, byte[]> sealedShares) =>
        SecAggJson.Serialize(new SecAggShares
        {
            Federation = federation, Round = round, Site = from,
            Shares = new SortedDictionary<string, string>(sealedShares.ToDictionary(kv => kv.Key, kv => Convert.ToBase64String(kv.Value)), StringComparer.Ordinal),
        });

    /// <summary>The share <paramref name="from"/> sealed for <paramref name="to"/>, or null (not sent, or a malformed object).</summary>
    public async Task<byte[]?> GetShareAsync(string from, string to, CancellationToken ct = default)
    {
        SecAggShares? shares;
        try
        {
            shares = await GetJsonAsync<SecAggShares>(SharesPath(from), ct).ConfigureAwait(false);
        }
        catch (FederationDataException)
        {
            return null;
        }

        if (shares is null || shares.Site != from || shares.Federation != federation || shares.Round != round || !shares.Shares.TryGetValue(to, out var b64)) return null;
        try
        {
            return Convert.FromBase64String(b64);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    public Task PutKeySetAsync(SecAggSiteList keySet, CancellationToken ct = default) => PutAsync(KeySetPath, SecAggJson.Serialize(keySet), ct);

    public Task<SecAggSiteList?> GetKeySetAsync(CancellationToken ct = default) => GetJsonAsync<SecAggSiteList>(KeySetPath, ct);

    public Task PutParticipantsAsync(SecAggSiteList participants, CancellationToken ct = default) => PutAsync(ParticipantsPath, SecAggJson.Serialize(participants), ct);

    public Task<SecAggSiteList?> GetParticipantsAsync(CancellationToken ct = default) => GetJsonAsync<SecAggSiteList>(ParticipantsPath, ct);

    public Task PutMaskedAsync(MaskedUpdateHeader header, uint[] payload, CancellationToken ct = default) =>
        store.PutObjectAsync(MaskedPath(header.Site), (s, _) => Task.FromResult(MaskedUpdateFile.Write(s, header, payload)), ct);

    public async Task<IReadOnlyList<string>> ListMaskedAsync(CancellationToken ct = default) =>
        (await store.ListAsync($"{Folder}/masked", ct).ConfigureAwait(false))
        .Where(n => n.EndsWith(MaskedUpdateFile.Extension, StringComparison.Ordinal)).Select(n => n[..^MaskedUpdateFile.Extension.Length]).ToList();

    public async Task<(MaskedUpdateHeader Header, uint[] Payload)?> ReadMaskedAsync(string site, CancellationToken ct = default)
    {
        var stream = await store.OpenObjectAsync(MaskedPath(site), ct).ConfigureAwait(false);
        if (stream is null) return null;
        await using (stream.ConfigureAwait(false)) return MaskedUpdateFile.Read(stream, MaskedPath(site));
    }

    public Task PutSurvivorsAsync(SecAggSurvivors survivors, CancellationToken ct = default) => PutAsync(SurvivorsPath, SecAggJson.Serialize(survivors), ct);

    public Task<SecAggSurvivors?> GetSurvivorsAsync(CancellationToken ct = default) => GetJsonAsync<SecAggSurvivors>(SurvivorsPath, ct);

    public Task PutUnmaskAsync(SecAggUnmask unmask, CancellationToken ct = default) => PutAsync(UnmaskPath(unmask.Site), SecAggJson.Serialize(unmask), ct);

    public async Task<IReadOnlyList<SecAggUnmask>> GetUnmasksAsync(CancellationToken ct = default) =>
        (await ListJsonAsync<SecAggUnmask>("unmask", u => u.Site, ct).ConfigureAwait(false)).Where(u => u.Federation == federation && u.Round == round).ToList();
}
