using System.Text.Json;
using System.Text.Json.Serialization;
using ClinicalFed.Compression;
using ClinicalFed.Federation;
using ClinicalFed.Learning;

namespace ClinicalFed.Cli.Site;

/// <summary>
/// Compressed uploads (<c>client_compress</c>): the site sends its delta from the round's global model as int8, int4
/// or top-k (<see cref="CompressionSpec.ForRound"/> gives the round's encoding, so top-k runs warm up dense at 8 bits
/// and end dense at 4 bits, as in <c>simulate</c>). Top-k's error-feedback remainder is kept in the work folder
/// between rounds (<c>&lt;federation&gt;-compression-remainder.json</c>), written only after the update is in the store.
/// </summary>
public sealed partial class SiteAgent
{
    private sealed record CompressedUpload(UpdateHeader Header, byte[] Payload, ErrorFeedback Feedback);

    /// <summary>What the work folder keeps of top-k's error feedback: the remainder after the round's upload.</summary>
    private sealed record RemainderState
    {
        public const int CurrentFormatVersion = 1;
        [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = CurrentFormatVersion;
        [JsonPropertyName("federation")] public required string Federation { get; init; }
        [JsonPropertyName("site")] public required string Site { get; init; }
        [JsonPropertyName("round")] public required int Round { get; init; }
        [JsonPropertyName("remainder")] public required float[] Remainder { get; init; }
    }

    private string RemainderPath => Path.Combine(_o.WorkDirectory, $"{_o.Federation}-compression-remainder.json");

    /// <summary>
    /// The round's update compressed and signed, with the error feedback that produced it (saved once the upload
    /// succeeds). The refit of top-k's chosen coordinates runs as in <c>simulate</c>: not in the first round, not under
    /// DP-SGD (an extra pass outside the accountant) and not under site-level DP (it would bypass the clip).
    /// </summary>
    private CompressedUpload CompressedUpdate(FederationConfig config, RoundManifest manifest, LocalRound local, FeatureMatrix matrix, CompressionSpec configured)
    {
        var spec = configured.ForRound(manifest.Round, config.Rounds);
        var parameters = local.Parameters;
        var start = local.Global?.ToParameterVector() ?? new float[parameters.Length];
        var delta = new float[parameters.Length];
        System.Numerics.Tensors.TensorPrimitives.Subtract(parameters, start, delta);
        var feedback = LoadRemainder(parameters.Length, manifest.Round);
        var (global, settings) = (local.Global, local.Settings);
        Func<int[], float[]>? refit = spec.RefitEpochs > 0 && global is not null && !settings.DifferentiallyPrivate && _siteDp is null
            ? chosen => ClientTraining.RefitCoordinates(matrix, global, settings, manifest.Round, local.SiteIndex, chosen, spec.RefitEpochs)
            : null;
        var payload = feedback.Compress(spec, delta, UpdateCodec.RoundingRandom(settings.Seed, manifest.Round, local.SiteIndex), refit);
        var header = Privacy.Signing.UpdateSignature.Sign(UpdateFile.Compressed(local.Header, spec.Encoding, payload), _signingKey!);
        return new CompressedUpload(header, payload, feedback);
    }

    /// <summary>
    /// The saved remainder (none yet: empty); a file of another site or federation, of another dimension, or of this or
    /// a later round (another run of a federation of the same name), is refused.
    /// </summary>
    private ErrorFeedback LoadRemainder(int dimension, int round)
    {
        string path = RemainderPath;
        if (!File.Exists(path)) return new ErrorFeedback();
        RemainderState? state;
        try
        {
            state = JsonSerializer.Deserialize<RemainderState>(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"{path}: not a compression remainder ({e.Message}); delete it to start top-k's error feedback afresh");
        }

        if (state is null || state.FormatVersion != RemainderState.CurrentFormatVersion)
            throw new InvalidOperationException($"{path}: 'format_version' must be {RemainderState.CurrentFormatVersion}");
        if (state.Site != _o.Site || state.Federation != _o.Federation)
            throw new InvalidOperationException($"{path}: the remainder is site '{state.Site}''s in federation '{state.Federation}', not '{_o.Site}''s in '{_o.Federation}' (a work folder copied from another site?)");
        if (state.Remainder.Length != dimension)
            throw new InvalidOperationException($"{path}: 'remainder' holds {state.Remainder.Length} values, but the model has {dimension}");
        if (state.Round >= round)
            throw new InvalidOperationException($"{path}: the remainder was kept after round {state.Round}, but this is round {round} (a work folder of another run of federation '{_o.Federation}'?)");
        return new ErrorFeedback(state.Remainder);
    }

    private void SaveRemainder(int round, ErrorFeedback feedback) => Commands.StatsCommand.WriteAtomically(RemainderPath,
        JsonSerializer.SerializeToUtf8Bytes(new RemainderState { Federation = _o.Federation, Site = _o.Site, Round = round, Remainder = feedback.Residual }));
}
