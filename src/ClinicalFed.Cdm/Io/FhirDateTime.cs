using System.Buffers.Text;
using System.Globalization;

namespace ClinicalFed.Cdm.Io;

/// <summary>Fast formatting and parsing of FHIR dateTime / date strings (ISO 8601 subsets) on UTF-8 spans.</summary>
public static class FhirDateTime
{
    /// <summary>Writes "yyyy-MM-ddTHH:mm:ss[.fffffff](Z|±hh:mm)"; returns bytes written (at most 33).</summary>
    public static int Format(DateTimeOffset value, Span<byte> dest)
    {
        var dt = value.DateTime;
        int p = 0;
        Write4(dest, ref p, dt.Year); dest[p++] = (byte)'-';
        Write2(dest, ref p, dt.Month); dest[p++] = (byte)'-';
        Write2(dest, ref p, dt.Day); dest[p++] = (byte)'T';
        Write2(dest, ref p, dt.Hour); dest[p++] = (byte)':';
        Write2(dest, ref p, dt.Minute); dest[p++] = (byte)':';
        Write2(dest, ref p, dt.Second);
        long frac = dt.Ticks % TimeSpan.TicksPerSecond;
        if (frac != 0)
        {
            dest[p++] = (byte)'.';
            int digits = 7;
            while (frac % 10 == 0) { frac /= 10; digits--; }
            for (int i = digits - 1; i >= 0; i--) { dest[p + i] = (byte)('0' + (int)(frac % 10)); frac /= 10; }
            p += digits;
        }
        var off = value.Offset;
        if (off == TimeSpan.Zero) { dest[p++] = (byte)'Z'; return p; }
        dest[p++] = off < TimeSpan.Zero ? (byte)'-' : (byte)'+';
        var a = off.Duration();
        Write2(dest, ref p, a.Hours); dest[p++] = (byte)':'; Write2(dest, ref p, a.Minutes);
        return p;
    }

    public static int FormatDate(DateOnly d, Span<byte> dest)
    {
        int p = 0;
        Write4(dest, ref p, d.Year); dest[p++] = (byte)'-';
        Write2(dest, ref p, d.Month); dest[p++] = (byte)'-';
        Write2(dest, ref p, d.Day);
        return p;
    }

    public static string ToFhirString(DateTimeOffset value)
    {
        Span<byte> b = stackalloc byte[40];
        return System.Text.Encoding.ASCII.GetString(b[..Format(value, b)]);
    }

    /// <summary>Parses a FHIR dateTime, instant or date (a date alone means its midnight UTC; year-month means the
    /// first of the month). Returns false for anything else.</summary>
    public static bool TryParse(ReadOnlySpan<byte> s, out DateTimeOffset value)
    {
        value = default;
        // Fast path: yyyy-MM-ddTHH:mm:ss[.f+](Z|±hh:mm)
        if (s.Length >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':')
        {
            if (!D4(s, 0, out int y) || !D2(s, 5, out int mo) || !D2(s, 8, out int d) || !D2(s, 11, out int h) || !D2(s, 14, out int mi) || !D2(s, 17, out int sec))
                return false;
            int p = 19;
            long ticks = 0;
            if (p < s.Length && s[p] == '.')
            {
                p++;
                long scale = TimeSpan.TicksPerSecond;
                int start = p;
                while (p < s.Length && (uint)(s[p] - '0') <= 9)
                {
                    scale /= 10;
                    ticks += (s[p] - '0') * scale;
                    p++;
                }
                if (p == start) return false;
            }
            TimeSpan offset;
            if (p < s.Length && s[p] == 'Z' && p + 1 == s.Length) offset = TimeSpan.Zero;
            else if (p + 6 == s.Length && (s[p] == '+' || s[p] == '-') && s[p + 3] == ':' && D2(s, p + 1, out int oh) && D2(s, p + 4, out int om) && om <= 59)
                offset = new TimeSpan(s[p] == '-' ? -oh : oh, s[p] == '-' ? -om : om, 0);
            else return false;
            if (y < 1 || mo is < 1 or > 12 || d < 1 || d > DateTime.DaysInMonth(y, mo) || h > 23 || mi > 59 || sec > 59 || Math.Abs(offset.TotalHours) > 14)
                return false;
            var local = new DateTime(y, mo, d, h, mi, sec).AddTicks(ticks);
            long utcTicks = local.Ticks - offset.Ticks; // year 1 with a positive offset, or 9999 with a negative one, is outside DateTimeOffset's range
            if (utcTicks < DateTime.MinValue.Ticks || utcTicks > DateTime.MaxValue.Ticks) return false;
            value = new DateTimeOffset(local, offset);
            return true;
        }
        if (s.Length == 10 && s[4] == '-' && s[7] == '-' && D4(s, 0, out int yy) && yy >= 1 && D2(s, 5, out int mm) && D2(s, 8, out int dd) && mm is >= 1 and <= 12 && dd >= 1 && dd <= DateTime.DaysInMonth(yy, mm))
        {
            value = new DateTimeOffset(yy, mm, dd, 0, 0, 0, TimeSpan.Zero);
            return true;
        }
        if (s.Length == 7 && s[4] == '-' && D4(s, 0, out int y7) && y7 >= 1 && D2(s, 5, out int m7) && m7 is >= 1 and <= 12)
        {
            value = new DateTimeOffset(y7, m7, 1, 0, 0, 0, TimeSpan.Zero);
            return true;
        }
        if (s.Length == 4 && D4(s, 0, out int y4) && y4 >= 1)
        {
            value = new DateTimeOffset(y4, 1, 1, 0, 0, 0, TimeSpan.Zero);
            return true;
        }
        return false;
    }

    public static bool TryParse(string s, out DateTimeOffset value)
    {
        Span<byte> b = stackalloc byte[64];
        if (s.Length > 64) { value = default; return false; }
        int n = System.Text.Encoding.ASCII.GetBytes(s, b);
        return TryParse(b[..n], out value);
    }

    public static bool TryParseDate(ReadOnlySpan<byte> s, out DateOnly value)
    {
        value = default;
        if (!TryParse(s, out var dto) || s.Length > 10) return false;
        value = DateOnly.FromDateTime(dto.DateTime);
        return true;
    }

    private static bool D2(ReadOnlySpan<byte> s, int i, out int v)
    {
        uint a = (uint)(s[i] - '0'), b = (uint)(s[i + 1] - '0');
        v = (int)(a * 10 + b);
        return a <= 9 && b <= 9;
    }

    private static bool D4(ReadOnlySpan<byte> s, int i, out int v)
    {
        v = 0;
        for (int k = 0; k < 4; k++)
        {
            uint c = (uint)(s[i + k] - '0');
            if (c > 9) return false;
            v = v * 10 + (int)c;
        }
        return true;
    }

    private static void Write2(Span<byte> d, ref int p, int v) { d[p++] = (byte)('0' + v / 10); d[p++] = (byte)('0' + v % 10); }
    private static void Write4(Span<byte> d, ref int p, int v)
    {
        d[p++] = (byte)('0' + v / 1000); d[p++] = (byte)('0' + v / 100 % 10); d[p++] = (byte)('0' + v / 10 % 10); d[p++] = (byte)('0' + v % 10);
    }

    internal static string Invariant(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    internal static bool TryParseDouble(ReadOnlySpan<byte> s, out double v) => Utf8Parser.TryParse(s, out v, out int used) && used == s.Length;
}
