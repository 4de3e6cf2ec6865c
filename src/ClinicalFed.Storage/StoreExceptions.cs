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

/// <summary>
/// A conditional write of a mutable store object (the federation document) lost to another writer: the object was
/// created, changed or removed since it was read. Nothing was written; read it again and retry.
/// </summary>
public sealed class StoreVersionConflictException : IOException
{
    public StoreVersionConflictException(string storePath, string why, Exception? inner = null)
        : base($"{storePath} was not written: {why}; read it again and retry", inner)
    {
        StorePath = storePath;
    }

    public string StorePath { get; }
}
