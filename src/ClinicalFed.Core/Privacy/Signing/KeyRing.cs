using System.Security.Cryptography;

namespace ClinicalFed.Privacy.Signing;

/// <summary>Disposes a set of in-memory signing keys together (one per simulated site).</summary>
public sealed class KeyRing(IReadOnlyList<ECDsa> keys) : IDisposable
{
    public IReadOnlyList<ECDsa> Keys { get; } = keys;

    public void Dispose()
    {
        foreach (var key in Keys) key.Dispose();
    }
}
