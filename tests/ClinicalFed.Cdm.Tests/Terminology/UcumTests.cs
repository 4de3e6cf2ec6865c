using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Tests.Terminology;

public class UcumTests
{
    private static double Convert(double value, string from, string to)
    {
        Assert.True(Ucum.TryConvert(value, from, to, out var r), $"{from} → {to} should convert");
        return r;
    }

    [Theory]
    [InlineData(98.6, "[degF]", "Cel", 37)]
    [InlineData(37, "Cel", "[degF]", 98.6)]
    [InlineData(32, "[degF]", "Cel", 0)]
    [InlineData(-40, "[degF]", "Cel", -40)]
    [InlineData(310.15, "K", "Cel", 37)]
    [InlineData(0, "Cel", "K", 273.15)]
    [InlineData(212, "[degF]", "K", 373.15)]
    public void Temperature_offsets(double v, string from, string to, double expected) => Assert.Equal(expected, Convert(v, from, to), 9);

    [Theory]
    [InlineData(1, "g/dL", "g/L", 10)]
    [InlineData(1, "g/dL", "mg/dL", 1000)]
    [InlineData(10, "g/L", "mg/dL", 1000)]
    [InlineData(180, "mg/dL", "g/L", 1.8)]
    [InlineData(130, "g/L", "g/dL", 13)]
    [InlineData(1, "mg/L", "ug/mL", 1)]
    [InlineData(1, "ng/mL", "ug/L", 1)]
    [InlineData(5, "10*3/uL", "10*9/L", 5)]
    [InlineData(5, "10*9/L", "10*3/uL", 5)]
    [InlineData(4.5, "10*6/uL", "10*12/L", 4.5)]
    [InlineData(7000, "/uL", "10*3/uL", 7)]
    [InlineData(250, "10*3/uL", "/mm3", 250000)]
    [InlineData(50, "%", "1", 0.5)]
    [InlineData(0.21, "1", "%", 21)]
    [InlineData(1, "mmol/L", "umol/L", 1000)]
    [InlineData(2, "h", "min", 120)]
    [InlineData(1, "kg", "g", 1000)]
    [InlineData(12, "[in_i]", "cm", 30.48)]
    [InlineData(60, "/h", "/min", 1)]
    public void Commensurable_units(double v, string from, string to, double expected) => Assert.Equal(expected, Convert(v, from, to), 9);

    [Fact]
    public void Pressure_mmHg_and_kPa()
    {
        // 1 kPa = 1000 / 133.322387415 mm[Hg] = 7.50062 mm[Hg]
        Assert.Equal(1.0, Convert(7.5, "mm[Hg]", "kPa"), 3);
        Assert.Equal(7.50062, Convert(1, "kPa", "mm[Hg]"), 5);
        Assert.Equal(100, Convert(Convert(100, "mm[Hg]", "kPa"), "kPa", "mm[Hg]"), 9);
    }

    [Theory]
    [InlineData("mg/dL", "mmol/L")] // needs the analyte's molar mass
    [InlineData("mmol/L", "mg/dL")]
    [InlineData("Cel", "mm[Hg]")]
    [InlineData("%", "g/L")]
    [InlineData("U/L", "[IU]/L")]
    [InlineData("/min", "%")]
    [InlineData("mg/dL", "furlongs")]
    [InlineData("furlongs", "mg/dL")]
    public void Non_commensurable_or_unknown_units_do_not_convert(string from, string to)
    {
        Assert.False(Ucum.TryConvert(5, from, to, out var r));
        Assert.True(double.IsNaN(r));
        Assert.Null(Ucum.Converter(from, to));
    }

    [Fact]
    public void Same_unit_is_identity_and_converter_matches_TryConvert()
    {
        Assert.Equal(42.5, Convert(42.5, "mg/dL", "mg/dL"));
        var f = Ucum.Converter("[degF]", "Cel")!;
        Assert.Equal(37, f(98.6), 9);
        Assert.Equal(5, Ucum.Converter("g/L", "g/L")!(5));
        Assert.Equal(0.5, Ucum.Converter("%", "1")!(50), 12);
    }

    [Fact]
    public void Annotations_are_dimensionless()
    {
        Assert.True(Ucum.IsKnown("{count}"));
        Assert.True(Ucum.IsKnown("{beats}/min"));
        Assert.True(Ucum.IsKnown("mm[Hg]"));
        Assert.False(Ucum.IsKnown("{}"));
        Assert.False(Ucum.IsKnown("{a}{b}"));
        Assert.False(Ucum.IsKnown("mmHg"));
        Assert.Equal(3, Convert(3, "{count}", "1"));
        Assert.Equal(3, Convert(3, "1", "{count}"));
        Assert.Equal(72, Convert(72, "{beats}/min", "/min"));
    }
}
