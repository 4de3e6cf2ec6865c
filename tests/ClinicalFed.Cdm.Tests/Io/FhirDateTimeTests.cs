using System.Text;
using ClinicalFed.Cdm.Io;

namespace ClinicalFed.Cdm.Tests.Io;

public class FhirDateTimeTests
{
    private static bool Parse(string s, out DateTimeOffset v) => FhirDateTime.TryParse(Encoding.ASCII.GetBytes(s), out v);

    [Fact]
    public void Utc_with_Z()
    {
        Assert.True(Parse("2019-03-04T05:06:07Z", out var v));
        Assert.Equal(new DateTimeOffset(2019, 3, 4, 5, 6, 7, TimeSpan.Zero), v);
        Assert.Equal(TimeSpan.Zero, v.Offset);
    }

    [Theory]
    [InlineData("2019-03-04T05:06:07+02:00", 2, 0)]
    [InlineData("2019-03-04T05:06:07-05:30", -5, -30)]
    [InlineData("2019-03-04T05:06:07+00:00", 0, 0)]
    [InlineData("2019-03-04T05:06:07+14:00", 14, 0)]
    [InlineData("2019-03-04T05:06:07-12:00", -12, 0)]
    public void Offsets_are_kept(string s, int h, int m)
    {
        Assert.True(Parse(s, out var v));
        var offset = new TimeSpan(h, m, 0);
        Assert.Equal(offset, v.Offset);
        Assert.Equal(new DateTimeOffset(2019, 3, 4, 5, 6, 7, offset), v);
        Assert.Equal(new DateTime(2019, 3, 4, 5, 6, 7) - offset, v.UtcDateTime);
    }

    [Theory]
    [InlineData("2019-03-04T05:06:07.5Z", 5_000_000)]
    [InlineData("2019-03-04T05:06:07.530Z", 5_300_000)]
    [InlineData("2019-03-04T05:06:07.1234567Z", 1_234_567)]
    [InlineData("2019-03-04T05:06:07.123456789Z", 1_234_567)] // beyond tick precision: truncated
    [InlineData("2019-03-04T05:06:07.000Z", 0)]
    public void Fractions(string s, long ticks)
    {
        Assert.True(Parse(s, out var v));
        Assert.Equal(new DateTimeOffset(2019, 3, 4, 5, 6, 7, TimeSpan.Zero).AddTicks(ticks), v);
    }

    [Fact]
    public void Fraction_with_offset()
    {
        Assert.True(Parse("2011-10-14T23:37:54.530+00:00", out var v));
        Assert.Equal(new DateTimeOffset(2011, 10, 14, 23, 37, 54, 530, TimeSpan.Zero), v);
        Assert.True(Parse("2011-10-14T23:37:54.25-04:00", out v));
        Assert.Equal(new DateTimeOffset(2011, 10, 14, 23, 37, 54, 250, TimeSpan.FromHours(-4)), v);
    }

    [Theory]
    [InlineData("2019-03-04", 2019, 3, 4)]
    [InlineData("2020-02-29", 2020, 2, 29)]
    [InlineData("2019-03", 2019, 3, 1)]
    [InlineData("2019", 2019, 1, 1)]
    public void Partial_dates_mean_midnight_utc_of_their_first_day(string s, int y, int m, int d)
    {
        Assert.True(Parse(s, out var v));
        Assert.Equal(new DateTimeOffset(y, m, d, 0, 0, 0, TimeSpan.Zero), v);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abcd")]
    [InlineData("2019-02-29")]                 // not a leap year
    [InlineData("2019-13-01")]
    [InlineData("2019-00-10")]
    [InlineData("2019-04-31")]
    [InlineData("2019-1-01")]
    [InlineData("2019-01-1")]
    [InlineData("19-01-01")]
    [InlineData("2019-13")]
    [InlineData("0000")]
    [InlineData("0000-01-01")]                 // FHIR years start at 0001
    [InlineData("0000-01")]
    [InlineData("0000-01-01T00:00:00Z")]
    [InlineData("0001-01-01T00:00:00+01:00")]  // before DateTimeOffset.MinValue in UTC
    [InlineData("9999-12-31T23:00:00-05:00")]  // after DateTimeOffset.MaxValue in UTC
    [InlineData("2019-03-04T05:06:07")]        // a time needs a zone in FHIR
    [InlineData("2019-03-04T05:06Z")]
    [InlineData("2019-03-04 05:06:07Z")]
    [InlineData("2019-03-04T24:00:00Z")]
    [InlineData("2019-03-04T23:60:00Z")]
    [InlineData("2019-03-04T05:06:07.Z")]
    [InlineData("2019-03-04T05:06:07ZZ")]
    [InlineData("2019-03-04T05:06:07+0200")]
    [InlineData("2019-03-04T05:06:07+15:00")]
    [InlineData("2019-03-04T05:06:07+02:60")]
    [InlineData("2019-03-04T05:06:07+02:00x")]
    [InlineData("2019-03-04T05:06:07z")]
    [InlineData("2019-03-04Tab:06:07Z")]
    public void Invalid_strings_return_false(string s)
    {
        Assert.False(Parse(s, out _));
        Assert.False(FhirDateTime.TryParse(s, out _));
    }

    [Fact]
    public void String_overload_rejects_long_and_non_ascii_input()
    {
        Assert.False(FhirDateTime.TryParse(new string('1', 100), out _));
        Assert.False(FhirDateTime.TryParse("2019-03-04T05:06:07\u00e9", out _));
        Assert.True(FhirDateTime.TryParse("2019-03-04T05:06:07Z", out var v));
        Assert.Equal(new DateTimeOffset(2019, 3, 4, 5, 6, 7, TimeSpan.Zero), v);
    }

    [Theory]
    [InlineData("2019-03-04", true)]
    [InlineData("2019-03", true)]
    [InlineData("2019-03-04T00:00:00Z", false)]
    [InlineData("2019-02-30", false)]
    public void TryParseDate_accepts_dates_only(string s, bool ok)
    {
        Assert.Equal(ok, FhirDateTime.TryParseDate(Encoding.ASCII.GetBytes(s), out var d));
        if (ok) Assert.Equal(new DateOnly(2019, 3, s.Length == 10 ? 4 : 1), d);
    }

    [Theory]
    [InlineData(2000, 1, 1, 0, 0, 0, 0L, 0, "2000-01-01T00:00:00Z")]
    [InlineData(1999, 12, 31, 22, 5, 9, 0L, 0, "1999-12-31T22:05:09Z")]
    [InlineData(2019, 3, 4, 5, 6, 7, 5_000_000L, 0, "2019-03-04T05:06:07.5Z")]
    [InlineData(2019, 3, 4, 5, 6, 7, 1_234_567L, 0, "2019-03-04T05:06:07.1234567Z")]
    [InlineData(2019, 3, 4, 5, 6, 7, 100L, 0, "2019-03-04T05:06:07.00001Z")]
    [InlineData(2019, 3, 4, 5, 6, 7, 0L, 120, "2019-03-04T05:06:07+02:00")]
    [InlineData(2019, 3, 4, 5, 6, 7, 0L, -330, "2019-03-04T05:06:07-05:30")]
    [InlineData(12, 3, 4, 5, 6, 7, 0L, 0, "0012-03-04T05:06:07Z")]
    public void Format_writes_fhir_datetime_and_round_trips(int y, int mo, int d, int h, int mi, int s, long ticks, int offsetMinutes, string expected)
    {
        var value = new DateTimeOffset(y, mo, d, h, mi, s, TimeSpan.FromMinutes(offsetMinutes)).AddTicks(ticks);
        Assert.Equal(expected, FhirDateTime.ToFhirString(value));
        Span<byte> buf = stackalloc byte[40];
        int n = FhirDateTime.Format(value, buf);
        Assert.Equal(expected, Encoding.ASCII.GetString(buf[..n]));
        Assert.True(FhirDateTime.TryParse(buf[..n], out var back));
        Assert.Equal(value, back);
        Assert.Equal(value.Offset, back.Offset);
    }

    [Fact]
    public void FormatDate_writes_yyyy_MM_dd()
    {
        Span<byte> buf = stackalloc byte[10];
        Assert.Equal(10, FhirDateTime.FormatDate(new DateOnly(1959, 7, 3), buf));
        Assert.Equal("1959-07-03", Encoding.ASCII.GetString(buf));
    }
}
