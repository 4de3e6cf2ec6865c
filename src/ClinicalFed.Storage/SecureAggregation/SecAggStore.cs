using ClinicalFed.Federation;
using ClinicalFed.Privacy.SecureAggregation;

namespace ClinicalFed.Storage.SecureAggregation;

/// <summary>
/// The secure-aggregation objects of a round, all write-once under <c>rounds/&lt;round&gt;/secagg/</c>
/// (schemas/store-layout.md, "Secure aggregation"): <c>setup.json</c>, <c>keys/&lt;site&gt;.json</c>,
/// <c>shares/&lt;from&gt;/&lt;to&gt;.bin</c>, <c>masked/&lt;site&gt;.cfm32</c>, <c>survivors.json</c> and
/// <c>unmask/&lt;site&gt;.json</c>. Names are checked with <see cref="FederationNames"/> before they become paths.
/// </summary>
public sealed class SecAggStore(FederationStore store, string federation, int round)
{
    public string Folder { get; } = $"{StoreLayout.Round(federation, round)}/secagg";
    public string SetupPath => $"{Folder}/setup.json";
    public string SurvivorsPath => $"{Folder}/survivors.json";
    public string KeyPath(string site) => $"{Folder}/keys/{Name(site)}.json";
    public string SharePath(string from, string to) => $"{Folder}/shares/{Name(from)}/{Name(to)}.bin";
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

    /// <summary>The published keys whose identity matches their path, federation and round, in site order.</summary>
    public async Task<IReadOnlyList<SecAggPublicKey>> GetKeysAsync(SecAggSetup setup, CancellationToken ct = default) =>
        (await ListJsonAsync<SecAggPublicKey>("keys", k => k.Site, ct).ConfigureAwait(false))
        .Where(k => k.Federation == federation && k.Round == round && setup.Sites.Contains(k.Site) && k.ExampleCount > 0)
        .OrderBy(k => k.Site, StringComparer.Ordinal).ToList();

    public async Task PutSharesAsync(string from, IReadOnlyDictionary<string, byte[]> sealedShares, CancellationToken ct = default)
    {
        foreach (var (to, bytes) in sealedShares) await PutAsync(SharePath(from, to), bytes, ct).ConfigureAwait(false);
    }

    public Task<byte[]?> GetShareAsync(string from, string to, CancellationToken ct = default) => store.ReadAllBytesAsync(SharePath(from, to), ct);

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
