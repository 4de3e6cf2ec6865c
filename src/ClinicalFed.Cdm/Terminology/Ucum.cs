namespace ClinicalFed.Cdm.Terminology;

/// <summary>
/// The subset of UCUM that clinical vitals and labs use, with conversions between commensurable units
/// (mass concentration, counts per volume, pressure, temperature, fractions, time, mass, length). Conversions that
/// need an analyte's molar mass (mg/dL ↔ mmol/L) are deliberately not offered: such a value is a unit problem.
/// </summary>
public static class Ucum
{
    private readonly record struct Unit(string Dimension, double Factor);

    private static readonly Dictionary<string, Unit> Units = new(StringComparer.Ordinal)
    {
        ["/min"] = new("rate", 1), ["{beats}/min"] = new("rate", 1), ["{breaths}/min"] = new("rate", 1), ["/h"] = new("rate", 1.0 / 60),
        ["%"] = new("fraction", 0.01), ["1"] = new("fraction", 1),
        ["mm[Hg]"] = new("pressure", 1), ["kPa"] = new("pressure", 7.500615758456563), ["cm[H2O]"] = new("pressure", 0.735559),
        ["g/L"] = new("mass-conc", 1), ["g/dL"] = new("mass-conc", 10), ["mg/dL"] = new("mass-conc", 0.01), ["mg/L"] = new("mass-conc", 0.001),
        ["ug/dL"] = new("mass-conc", 1e-5), ["ug/L"] = new("mass-conc", 1e-6), ["ug/mL"] = new("mass-conc", 1e-3), ["ng/mL"] = new("mass-conc", 1e-6),
        ["ng/L"] = new("mass-conc", 1e-9), ["pg/mL"] = new("mass-conc", 1e-9),
        ["mmol/L"] = new("molar-conc", 1), ["umol/L"] = new("molar-conc", 1e-3), ["mol/L"] = new("molar-conc", 1000),
        ["meq/L"] = new("eq-conc", 1), ["mmol/dL"] = new("molar-conc", 10),
        ["U/L"] = new("enzyme-U", 1), ["[IU]/L"] = new("enzyme-IU", 1),
        ["10*3/uL"] = new("count-conc", 1e9), ["10*9/L"] = new("count-conc", 1e9), ["10*6/uL"] = new("count-conc", 1e12),
        ["10*12/L"] = new("count-conc", 1e12), ["/uL"] = new("count-conc", 1e6), ["/mm3"] = new("count-conc", 1e6), ["/L"] = new("count-conc", 1),
        ["[pH]"] = new("pH", 1),
        ["s"] = new("time", 1), ["min"] = new("time", 60), ["h"] = new("time", 3600), ["d"] = new("time", 86400), ["wk"] = new("time", 604800),
        ["mo"] = new("time", 2629800), ["a"] = new("time", 31557600),
        ["g"] = new("mass", 1), ["kg"] = new("mass", 1000), ["mg"] = new("mass", 1e-3), ["[lb_av]"] = new("mass", 453.59237), ["[oz_av]"] = new("mass", 28.349523125),
        ["m"] = new("length", 1), ["cm"] = new("length", 0.01), ["mm"] = new("length", 0.001), ["[in_i]"] = new("length", 0.0254), ["[ft_i]"] = new("length", 0.3048),
        ["kg/m2"] = new("bmi", 1),
        ["L"] = new("volume", 1), ["mL"] = new("volume", 1e-3), ["mL/min"] = new("flow", 1), ["L/min"] = new("flow", 1000),
        ["Cel"] = new("temperature", 1), ["[degF]"] = new("temperature", 1), ["K"] = new("temperature", 1),
    };

    /// <summary>True for units in the table and for pure UCUM annotations such as <c>{count}</c>.</summary>
    public static bool IsKnown(string unit) => Units.ContainsKey(unit) || IsAnnotation(unit);

    private static bool IsAnnotation(string unit) => unit.Length > 2 && unit[0] == '{' && unit[^1] == '}' && unit.IndexOf('}') == unit.Length - 1;

    /// <summary>Converts <paramref name="value"/> from one UCUM unit to another; false when they are not commensurable
    /// or not known.</summary>
    public static bool TryConvert(double value, string from, string to, out double result)
    {
        if (string.Equals(from, to, StringComparison.Ordinal)) { result = value; return true; }
        result = double.NaN;
        if (IsAnnotation(from) && to == "1" || from == "1" && IsAnnotation(to)) { result = value; return true; }
        if (!Units.TryGetValue(from, out var f) || !Units.TryGetValue(to, out var t) || f.Dimension != t.Dimension) return false;
        if (f.Dimension == "temperature")
        {
            double kelvin = from switch { "Cel" => value + 273.15, "[degF]" => (value - 32) * 5 / 9 + 273.15, _ => value };
            result = to switch { "Cel" => kelvin - 273.15, "[degF]" => (kelvin - 273.15) * 9 / 5 + 32, _ => kelvin };
            return true;
        }
        result = value * f.Factor / t.Factor;
        return true;
    }

    /// <summary>A converter from one unit to another, or null when none exists (resolve once, apply per value).</summary>
    public static Func<double, double>? Converter(string from, string to)
    {
        if (!TryConvert(1, from, to, out _)) return null;
        if (from == to) return static v => v;
        return v => TryConvert(v, from, to, out var r) ? r : double.NaN;
    }
}
