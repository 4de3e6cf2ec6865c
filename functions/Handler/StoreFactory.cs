using ClinicalFed.Storage;
using ClinicalFed.Storage.Azure;

namespace ClinicalFed.Functions;

/// <summary>Builds the federation store that <see cref="HandlerSettings"/> describe.</summary>
public static class StoreFactory
{
    public static FederationStore Create(HandlerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Problems.Count > 0) throw new HandlerConfigurationException(settings.Problems);
        var options = new BlobFederationStoreOptions { Prefix = settings.Prefix };
        return settings.Kind switch
        {
            StoreKind.ConnectionString => new BlobFederationStore(settings.ConnectionString!, settings.Container!, options),
            StoreKind.ServiceUri => new BlobFederationStore(settings.ServiceUri!, settings.Container!, credential: null, options),
            StoreKind.Folder => new LocalFolderStore(settings.Folder!),
            _ => throw new HandlerConfigurationException(["no federation store is configured"]),
        };
    }
}
