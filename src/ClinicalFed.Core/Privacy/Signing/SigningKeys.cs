using System.Security.Cryptography;

namespace ClinicalFed.Privacy.Signing;

/// <summary>
/// A site's ECDSA P-256 signing key pair. The private key stays in the site's work folder as PKCS#8 PEM
/// (<see cref="PrivateKeyFileName"/>, mode 600); the public key is registered in the federation document
/// (<c>sites[].signing_public_key</c>) as the base64 of its DER SubjectPublicKeyInfo.
/// </summary>
public static class SigningKeys
{
    /// <summary>File name of a site's private key in its work folder.</summary>
    public const string PrivateKeyFileName = "signing-key.pem";

    /// <summary>A new P-256 key pair.</summary>
    public static ECDsa Create() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>
    /// Loads the private key at <paramref name="path"/>, or creates one there (PKCS#8 PEM, mode 600 where the file
    /// system has Unix modes) when there is none. <paramref name="created"/> says which.
    /// </summary>
    public static ECDsa LoadOrCreatePrivateKey(string path, out bool created)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        created = false;
        if (File.Exists(path)) return LoadPrivateKey(path);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var key = Create();
        string pem = key.ExportPkcs8PrivateKeyPem();
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var file = new FileStream(path, options);
            using var writer = new StreamWriter(file);
            writer.Write(pem);
            writer.Write('\n');
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first: use that one.
            key.Dispose();
            return LoadPrivateKey(path);
        }

        created = true;
        return key;
    }

    /// <summary>Loads a PKCS#8 (or SEC1) PEM private key and checks that it is a P-256 key.</summary>
    public static ECDsa LoadPrivateKey(string path)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(path));
            CheckCurve(key, path);
            return key;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new InvalidDataException($"{path} is not an ECDSA P-256 private key in PEM: {e.Message}", e);
        }
    }

    /// <summary>The public key as the base64 of its DER SubjectPublicKeyInfo (the form the federation document keeps).</summary>
    public static string PublicKeyBase64(ECDsa key) => Convert.ToBase64String(key.ExportSubjectPublicKeyInfo());

    /// <summary>The public key as a PEM <c>PUBLIC KEY</c> block.</summary>
    public static string PublicKeyPem(ECDsa key) => key.ExportSubjectPublicKeyInfoPem();

    /// <summary>
    /// Parses a public key given as PEM (<c>-----BEGIN PUBLIC KEY-----</c>) or as base64 DER SubjectPublicKeyInfo and
    /// returns it normalized to base64 DER. Throws <see cref="ArgumentException"/> saying why when it is not a P-256 key.
    /// </summary>
    public static string NormalizePublicKey(string text)
    {
        using var key = ImportPublicKey(text);
        return PublicKeyBase64(key);
    }

    /// <summary>Why <paramref name="text"/> is not a P-256 public key, or null when it is one.</summary>
    public static string? PublicKeyProblem(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return "empty";
        try
        {
            using var _ = ImportPublicKey(text);
            return null;
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
    }

    /// <summary>Imports a public key given as PEM or base64 DER SubjectPublicKeyInfo (P-256 only).</summary>
    public static ECDsa ImportPublicKey(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var key = ECDsa.Create();
        try
        {
            string trimmed = text.Trim();
            if (trimmed.StartsWith("-----", StringComparison.Ordinal))
            {
                key.ImportFromPem(trimmed);
            }
            else
            {
                var der = Convert.FromBase64String(trimmed);
                key.ImportSubjectPublicKeyInfo(der, out int read);
                if (read != der.Length) throw new CryptographicException($"{der.Length - read} byte(s) follow the SubjectPublicKeyInfo");
            }

            CheckCurve(key, "the public key");
            return key;
        }
        catch (Exception e) when (e is FormatException or CryptographicException or ArgumentException)
        {
            key.Dispose();
            throw new ArgumentException($"not an ECDSA P-256 public key (PEM or base64 DER SubjectPublicKeyInfo): {e.Message}", e);
        }
    }

    private static void CheckCurve(ECDsa key, string what)
    {
        var curve = key.ExportParameters(false).Curve;
        if (key.KeySize != 256 || !curve.IsNamed || curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
            throw new CryptographicException($"{what} is a {key.KeySize}-bit key on curve {curve.Oid.FriendlyName ?? curve.Oid.Value ?? "(explicit)"}, not P-256");
    }
}
