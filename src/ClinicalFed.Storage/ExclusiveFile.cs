using System.Runtime.InteropServices;

namespace ClinicalFed.Storage;

/// <summary>
/// Publishes a finished temporary file under its final name only if that name is free, atomically.
/// <para>
/// <c>File.Move(overwrite: false)</c> is not enough on Unix: .NET checks that the destination is absent and then calls
/// rename(2), which replaces; two writers that both pass the check both "win", and the later one silently replaces the
/// earlier one's object (seen under strace and, rarely, in CI). link(2) fails with EEXIST instead, in one step. On
/// Windows, MoveFileEx without MOVEFILE_REPLACE_EXISTING (what <c>File.Move(overwrite: false)</c> calls) is atomic.
/// </para>
/// </summary>
internal static class ExclusiveFile
{
    // Linux and macOS share these errno values.
    private const int EPERM = 1, EEXIST = 17, EXDEV = 18, EMLINK = 31;

    private static volatile bool s_linkAvailable = true;

    /// <summary>
    /// Makes <paramref name="temp"/> visible as <paramref name="final"/> if nothing is there; false (and nothing changed)
    /// if <paramref name="final"/> exists. The caller deletes <paramref name="temp"/> afterwards either way.
    /// </summary>
    public static bool TryPublish(string temp, string final)
    {
        if (OperatingSystem.IsWindows() || !s_linkAvailable) return TryMove(temp, final);
        int result;
        try
        {
            result = Link(temp, final);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // A C library .NET cannot find by the name "libc": use .NET's move, as on file systems without links.
            s_linkAvailable = false;
            return TryMove(temp, final);
        }

        if (result == 0) return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == EEXIST) return false;
        // File systems without hard links (some network and FUSE mounts) refuse link(2): fall back to .NET's move,
        // which is exclusive only against writers that are not concurrent.
        if (errno is EPERM or EXDEV or EMLINK || IsUnsupported(errno)) return TryMove(temp, final);
        throw new IOException($"cannot publish '{final}': link(2) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
    }

    private static bool TryMove(string temp, string final)
    {
        try
        {
            File.Move(temp, final, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(final))
        {
            return false;
        }
    }

    // ENOSYS, ENOTSUP/EOPNOTSUPP: Linux 38 and 95, macOS 78 and 45/102.
    private static bool IsUnsupported(int errno) =>
        OperatingSystem.IsMacOS() ? errno is 45 or 78 or 102 : errno is 38 or 95;

    [DllImport("libc", EntryPoint = "link", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int Link(string existingPath, string newPath);
}
