namespace ClinicalFed.Storage;

/// <summary>
/// A write to a store path that already holds an object. Everything in the store is write-once: the stored bytes are
/// unchanged by the failed write.
/// </summary>
public sealed class StoreObjectExistsException : IOException
{
    public StoreObjectExistsException(string storePath, Exception? inner = null)
        : base($"{storePath} already exists; federation store objects are write-once and are never overwritten", inner)
    {
        StorePath = storePath;
    }

    /// <summary>The relative store path (blob name) that already exists.</summary>
    public string StorePath { get; }
}
