using ClinicalFed.Cdm.Model;
using ClinicalFed.Cdm.Terminology;

namespace ClinicalFed.Cdm.Features;

/// <summary>Maps an Observation's codes to a spec measurement and its value to the measurement's canonical unit,
/// counting what it sets aside (implausible values, unconvertible or missing units).</summary>
internal sealed class MeasurementResolver
{
    private readonly Dictionary<string, Dictionary<string, int>> _bySystem;
    private readonly FeatureSpec.Measurement[] _m;
    private readonly Dictionary<string, Func<double, double>?>?[] _converters;
    public MeasurementQuality[] Quality { get; }

    // The code lookup depends only on the spec: built once per spec and shared (read-only) by every extraction.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<FeatureSpec, Dictionary<string, Dictionary<string, int>>> CodeIndex = new();

    public MeasurementResolver(FeatureSpec spec)
    {
        _m = spec.Measurements.ToArray();
        _converters = new Dictionary<string, Func<double, double>?>?[_m.Length];
        Quality = _m.Select(m => new MeasurementQuality { Name = m.Name, Unit = m.Unit }).ToArray();
        _bySystem = CodeIndex.GetValue(spec, BuildIndex);
    }

    private static Dictionary<string, Dictionary<string, int>> BuildIndex(FeatureSpec spec)
    {
        var bySystem = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        var measurements = spec.Measurements.ToArray();
        for (int i = 0; i < measurements.Length; i++)
            foreach (var c in measurements[i].Codes)
            {
                var bar = c.IndexOf('|');
                var system = c[..bar];
                if (!bySystem.TryGetValue(system, out var codes)) bySystem[system] = codes = new Dictionary<string, int>(StringComparer.Ordinal);
                codes.TryAdd(c[(bar + 1)..], i);
            }

        return bySystem;
    }

    public int Count => _m.Length;

    public int Find(CdmObservation o)
    {
        int i = Find(o.Code);
        if (i >= 0) return i;
        foreach (var c in o.AdditionalCodes) if ((i = Find(c)) >= 0) return i;
        return -1;
    }

    private int Find(CdmCoding c) => _bySystem.TryGetValue(c.System, out var codes) && codes.TryGetValue(c.Code, out var i) ? i : -1;

    /// <summary>The value in the canonical unit, or NaN when it must be set aside (counted).</summary>
    public double Value(int m, CdmObservation o)
    {
        if (o.Value is not { } dv) return double.NaN;
        double v = (double)dv;
        var spec = _m[m];
        var q = Quality[m];
        if (spec.Unit is { } target)
        {
            if (o.Unit is null) q.UnitMissing++;
            else if (!string.Equals(o.Unit, target, StringComparison.Ordinal))
            {
                var conv = _converters[m] ??= new Dictionary<string, Func<double, double>?>(StringComparer.Ordinal);
                if (!conv.TryGetValue(o.Unit, out var f)) conv[o.Unit] = f = Ucum.Converter(o.Unit, target);
                if (f is null)
                {
                    q.UnitProblems[o.Unit] = q.UnitProblems.GetValueOrDefault(o.Unit) + 1;
                    return double.NaN;
                }
                v = f(v);
                q.UnitConverted++;
            }
        }
        if (v < spec.PlausibleMin || v > spec.PlausibleMax || !double.IsFinite(v)) { q.Implausible++; return double.NaN; }
        q.Used++;
        if (q.Minimum is null || v < q.Minimum) q.Minimum = v;
        if (q.Maximum is null || v > q.Maximum) q.Maximum = v;
        return v;
    }
}
