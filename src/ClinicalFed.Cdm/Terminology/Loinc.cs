namespace ClinicalFed.Cdm.Terminology;

public static class Loinc
{
    /// <summary>True when <paramref name="code"/> has the LOINC form "digits-checkdigit" and its mod-10 check digit
    /// is right (catches most typos in mapping files and feature specs).</summary>
    public static bool IsValidCode(string code)
    {
        int dash = code.IndexOf('-');
        if (dash < 1 || dash != code.Length - 2 || dash > 7) return false;
        var digits = code.AsSpan(0, dash);
        foreach (var c in digits) if (!char.IsAsciiDigit(c)) return false;
        if (!char.IsAsciiDigit(code[^1])) return false;
        return CheckDigit(digits) == code[^1] - '0';
    }

    /// <summary>LOINC's mod-10 algorithm: double the number formed by the digits in odd positions counted from the
    /// right, append it to the digits in even positions, and sum all digits.</summary>
    public static int CheckDigit(ReadOnlySpan<char> digits)
    {
        var odd = new System.Text.StringBuilder();
        var even = new System.Text.StringBuilder();
        for (int i = 0; i < digits.Length; i++)
        {
            int posFromRight = digits.Length - i;
            (posFromRight % 2 == 1 ? odd : even).Append(digits[i]);
        }
        var doubled = (System.Numerics.BigInteger.Parse(odd.ToString(), System.Globalization.CultureInfo.InvariantCulture) * 2).ToString(System.Globalization.CultureInfo.InvariantCulture);
        int sum = 0;
        foreach (var c in even.ToString() + doubled) sum += c - '0';
        return (10 - sum % 10) % 10;
    }
}
