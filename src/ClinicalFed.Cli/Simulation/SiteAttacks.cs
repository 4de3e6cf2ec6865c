using System.Globalization;
using System.Numerics.Tensors;

namespace ClinicalFed.Cli.Simulation;

/// <summary>The attacks <c>simulate --attack KIND:SITE[:FACTOR]</c> can make a site mount.</summary>
public static class AttackKinds
{
    /// <summary>Sends −FACTOR·Δ (default 4): pushes the global model away from where the honest sites take it.</summary>
    public const string SignFlip = "signflip";

    /// <summary>Sends FACTOR·Δ (default 10): a boosted update.</summary>
    public const string Scale = "scale";

    /// <summary>Trains honestly on its labels flipped (y → 1 − y).</summary>
    public const string LabelFlip = "labelflip";

    /// <summary>Trains honestly on its labels randomly permuted among its rows (a careless site: labels unrelated to features).</summary>
    public const string LabelShuffle = "labelshuffle";

    /// <summary>Sends Gaussian noise of standard deviation FACTOR (default 1) per parameter as its Δ.</summary>
    public const string Noise = "noise";

    /// <summary>Sends the global model back unchanged (Δ = 0) and claims its examples.</summary>
    public const string FreeRider = "freerider";

    public static IReadOnlyList<string> All { get; } = [SignFlip, Scale, LabelFlip, Noise, FreeRider, LabelShuffle];

    public static double DefaultFactor(string kind) => kind switch { SignFlip => 4, Scale => 10, Noise => 1, _ => 1 };
}

/// <summary>One malicious site: what it does to its update (Δ = its model − the global model it started from).</summary>
public sealed record SiteAttack(string Kind, string Site, double Factor)
{
    /// <summary>Parses <c>KIND:SITE[:FACTOR]</c>; problems are added to <paramref name="errors"/>.</summary>
    public static SiteAttack? Parse(string text, List<string> errors)
    {
        var parts = text.Split(':');
        if (parts.Length is < 2 or > 3 || parts[1].Length == 0)
        {
            errors.Add($"--attack {text}: expected KIND:SITE or KIND:SITE:FACTOR (KIND one of {string.Join(", ", AttackKinds.All)})");
            return null;
        }

        bool ok = true;
        if (!AttackKinds.All.Contains(parts[0]))
        {
            errors.Add($"--attack {text}: unknown kind '{parts[0]}' (expected one of {string.Join(", ", AttackKinds.All)})");
            ok = false;
        }

        double factor = AttackKinds.DefaultFactor(parts[0]);
        if (parts.Length == 3 && (!double.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out factor) || !(factor > 0) || !double.IsFinite(factor)))
        {
            errors.Add($"--attack {text}: FACTOR '{parts[2]}' must be a positive number");
            ok = false;
        }

        return ok ? new SiteAttack(parts[0], parts[1], factor) : null;
    }

    /// <summary>True when the attack changes the site's training labels rather than its update.</summary>
    public bool ChangesLabels => Kind is AttackKinds.LabelFlip or AttackKinds.LabelShuffle;

    /// <summary>The training labels the site uses: flipped, or shuffled with a generator seeded by <paramref name="seed"/>.</summary>
    public float[] TrainingLabels(float[] labels, int seed)
    {
        if (Kind == AttackKinds.LabelFlip) return labels.Select(y => 1f - y).ToArray();
        if (Kind != AttackKinds.LabelShuffle) return labels;
        var shuffled = (float[])labels.Clone();
        new Random(seed).Shuffle(shuffled);
        return shuffled;
    }

    /// <summary>
    /// Turns the honest full model <paramref name="honest"/> (trained from <paramref name="global"/>) into what the
    /// attacker uploads, in place.
    /// </summary>
    public void Apply(Span<float> honest, ReadOnlySpan<float> global, Random random)
    {
        if (honest.Length != global.Length) throw new ArgumentException("the update and the global model differ in length");
        Span<float> delta = new float[honest.Length];
        TensorPrimitives.Subtract(honest, global, delta);
        switch (Kind)
        {
            case AttackKinds.SignFlip:
                TensorPrimitives.Multiply(delta, (float)-Factor, delta);
                break;
            case AttackKinds.Scale:
                TensorPrimitives.Multiply(delta, (float)Factor, delta);
                break;
            case AttackKinds.Noise:
                for (int i = 0; i < delta.Length; i++) delta[i] = (float)(Factor * Gaussian(random));
                break;
            case AttackKinds.FreeRider:
                delta.Clear();
                break;
            default:
                return; // label flipping happened in training
        }

        TensorPrimitives.Add(global, delta, honest);
    }

    /// <summary>
    /// What the attacker does to a histogram it sends in histogram-mode boosting (slot triples of sums of g, h and rows,
    /// then possibly the node's three sums), in place: signflip sends −FACTOR·g, scale FACTOR·g and FACTOR·h, noise
    /// N(0, FACTOR²) on every number, freerider zeros; the label attacks changed its training instead.
    /// </summary>
    public void ApplyToHistogram(Span<double> histogram, Random random)
    {
        switch (Kind)
        {
            case AttackKinds.SignFlip:
                for (int i = 0; i < histogram.Length; i += 3) histogram[i] *= -Factor;
                break;
            case AttackKinds.Scale:
                for (int i = 0; i + 1 < histogram.Length; i += 3) { histogram[i] *= Factor; histogram[i + 1] *= Factor; }
                break;
            case AttackKinds.Noise:
                for (int i = 0; i < histogram.Length; i++) histogram[i] += Factor * Gaussian(random);
                break;
            case AttackKinds.FreeRider:
                histogram.Clear();
                break;
        }
    }

    private static double Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * random.NextDouble());
    }
}
