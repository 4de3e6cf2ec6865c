using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Tests.Terminology;

public class LoincTests
{
    /// <summary>The LOINC mod-10 check, written independently of <see cref="Loinc"/>: from the right, every digit in
    /// an odd position is doubled (a two-digit product counts as the sum of its digits), all are added, and the check
    /// digit brings the sum up to the next multiple of 10.</summary>
    public static bool IndependentCheck(string code)
    {
        var parts = code.Split('-');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length != 1 || !parts[0].All(char.IsAsciiDigit) || !char.IsAsciiDigit(parts[1][0])) return false;
        int sum = 0;
        for (int i = 0; i < parts[0].Length; i++)
        {
            int d = parts[0][parts[0].Length - 1 - i] - '0';
            if (i % 2 == 0) { d *= 2; if (d > 9) d -= 9; }
            sum += d;
        }
        return (10 - sum % 10) % 10 == parts[1][0] - '0';
    }

    [Theory]
    [InlineData("8867-4")]   // heart rate
    [InlineData("2160-0")]   // creatinine
    [InlineData("59408-5")]  // SpO2
    [InlineData("718-7")]    // haemoglobin
    [InlineData("2345-7")]   // glucose
    [InlineData("4548-4")]   // HbA1c
    [InlineData("6690-2")]   // WBC
    [InlineData("100987-7")] // six digits
    public void Valid_codes(string code)
    {
        Assert.True(IndependentCheck(code), "test data: " + code);
        Assert.True(Loinc.IsValidCode(code));
    }

    [Theory]
    [InlineData("8867-3")]
    [InlineData("8867-5")]
    [InlineData("2160-1")]
    [InlineData("8876-4")]   // transposed digits
    [InlineData("718-8")]
    public void Wrong_check_digit_is_invalid(string code)
    {
        Assert.False(IndependentCheck(code), "test data: " + code);
        Assert.False(Loinc.IsValidCode(code));
    }

    [Theory]
    [InlineData("")]
    [InlineData("8867")]
    [InlineData("8867-")]
    [InlineData("-4")]
    [InlineData("8867-44")]
    [InlineData("88a7-4")]
    [InlineData("8867-x")]
    [InlineData(" 8867-4")]
    [InlineData("8867-4 ")]
    [InlineData("8867_4")]
    [InlineData("88-67-4")]
    [InlineData("12345678-2")] // more than 7 digits (the check digit itself would fit)
    [InlineData("８８６７-４")] // full-width digits are not ASCII digits
    public void Malformed_strings_are_invalid(string code) => Assert.False(Loinc.IsValidCode(code));

    [Theory]
    [InlineData("12345", 5)] // the worked example of the LOINC manual
    [InlineData("8867", 4)]
    [InlineData("2160", 0)]
    [InlineData("59408", 5)]
    [InlineData("0", 0)]
    public void Check_digit_by_hand(string digits, int expected) => Assert.Equal(expected, Loinc.CheckDigit(digits));
}
