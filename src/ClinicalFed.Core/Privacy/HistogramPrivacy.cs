namespace ClinicalFed.Privacy;

/// <summary>
/// Differential privacy of histogram-based boosting with the patient as the unit: the bound on what one patient adds
/// to a histogram, how many Gaussian queries a boosting run makes, and the noise. Pure static functions.
/// </summary>
/// <remarks>
/// <para>Every row of patient p weighs min(1, W / n_p), so a patient's rows weigh at most W together
/// (<see cref="PatientRowWeights"/>). A histogram holds, per feature and bin, the sums of g = w·(p − y) ∈ [−w, w],
/// h = w·p(1 − p) ∈ [0, w/4] and the weight w. Each part is divided by its bound (1, 1/4, 1) before the noise and
/// multiplied back after, so a patient moves each feature's g, h and weight parts by at most W in L1, hence in L2:
/// over F features (and the root's three sums, counted as one more feature) the L2 sensitivity is
/// W·√(3(F + 1)) (<see cref="Sensitivity"/>). Noise N(0, (σ·S·b)²) on a part with bound b is the Gaussian mechanism
/// with noise multiplier σ.</para>
/// <para>A tree asks for the root's histogram, then for the smaller child of every split. A patient's rows at one
/// depth are divided among that depth's nodes, so the histograms of one depth level together move by at most S:
/// by the adaptive composition of Gaussian mechanisms with individual sensitivities (Feldman and Zrnic 2021), one
/// level costs at most one query at full sensitivity, and a tree of depth D at most D + 1
/// (<see cref="Queries"/>). The shared bin cuts and the base score are one query each. Queries compose in
/// Rényi DP (<see cref="RdpAccountant"/> with sampling rate 1).</para>
/// </remarks>
public static class HistogramPrivacy
{
    /// <summary>The bound of each part of a histogram slot per unit of row weight: g, h, weight.</summary>
    public static ReadOnlySpan<double> PartBounds => [1.0, 0.25, 1.0];

    /// <summary>Row weights min(1, <paramref name="cap"/> / n_p) for the rows of patient p (<paramref name="groupIds"/>
    /// numbers the patients 0 .. <paramref name="groupCount"/> − 1).</summary>
    public static double[] PatientRowWeights(ReadOnlySpan<int> groupIds, int groupCount, double cap)
    {
        if (!(cap > 0) || !double.IsFinite(cap)) throw new ArgumentOutOfRangeException(nameof(cap), cap, "The patient weight cap must be a finite number > 0.");
        ArgumentOutOfRangeException.ThrowIfNegative(groupCount);
        var rows = new int[groupCount];
        foreach (int g in groupIds)
        {
            if ((uint)g >= (uint)groupCount) throw new ArgumentOutOfRangeException(nameof(groupIds), g, $"patient numbers must be in 0..{groupCount - 1}");
            rows[g]++;
        }
        var weights = new double[groupIds.Length];
        for (int i = 0; i < weights.Length; i++) weights[i] = Math.Min(1.0, cap / rows[groupIds[i]]);
        return weights;
    }

    /// <summary>The L2 sensitivity W·√(3(F + 1)) of one histogram query over <paramref name="features"/> features, in
    /// units of the part bounds (the root's three sums are the + 1).</summary>
    public static double Sensitivity(int features, double cap)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(features, 1);
        if (!(cap > 0) || !double.IsFinite(cap)) throw new ArgumentOutOfRangeException(nameof(cap), cap, "The patient weight cap must be a finite number > 0.");
        return cap * Math.Sqrt(3.0 * (features + 1));
    }

    /// <summary>The L2 sensitivity W·√parts of a query of weight sums in which a patient's rows fall into one place
    /// per part: the per-feature histograms of present values that set the cuts (a part per feature), or the base
    /// score's sums of w·y and w (two parts).</summary>
    public static double CountSensitivity(int parts, double cap)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parts, 1);
        if (!(cap > 0) || !double.IsFinite(cap)) throw new ArgumentOutOfRangeException(nameof(cap), cap, "The patient weight cap must be a finite number > 0.");
        return cap * Math.Sqrt(parts);
    }

    /// <summary>Gaussian queries at full sensitivity of a boosting run: the cuts, the base score, and
    /// <paramref name="maxDepth"/> + 1 per tree.</summary>
    public static long Queries(int trees, int maxDepth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trees);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDepth, 1);
        return 2 + (long)trees * (maxDepth + 1);
    }

    /// <summary>Adds N(0, (<paramref name="sd"/>·b)²) to every part of every slot of <paramref name="slots"/>
    /// (g, h, weight triples), b being the part's bound.</summary>
    public static void AddNoise(Span<double> slots, double sd, SecureGaussian gaussian)
    {
        ArgumentNullException.ThrowIfNull(gaussian);
        if (slots.Length % 3 != 0) throw new ArgumentException($"{slots.Length} numbers are not (g, h, weight) triples", nameof(slots));
        if (!(sd >= 0) || !double.IsFinite(sd)) throw new ArgumentOutOfRangeException(nameof(sd), sd, "The noise standard deviation must be a finite number ≥ 0.");
        if (sd == 0) return;
        var bounds = PartBounds;
        for (int i = 0; i < slots.Length; i++) slots[i] += sd * bounds[i % 3] * gaussian.Next();
    }

    /// <summary>The standard deviation each of <paramref name="sites"/> sites adds so that the noise of one query has
    /// standard deviation σ·S: the whole of it when the coordinator sees every site's histogram, a 1/sites share of
    /// the variance when it sees only the sum (secure aggregation; the guarantee then assumes every site adds its share).</summary>
    public static double SiteNoise(double noiseMultiplier, double sensitivity, int sites, bool secureAggregation)
    {
        if (!(noiseMultiplier >= 0) || !double.IsFinite(noiseMultiplier)) throw new ArgumentOutOfRangeException(nameof(noiseMultiplier));
        if (!(sensitivity > 0) || !double.IsFinite(sensitivity)) throw new ArgumentOutOfRangeException(nameof(sensitivity));
        ArgumentOutOfRangeException.ThrowIfLessThan(sites, 1);
        double sd = noiseMultiplier * sensitivity;
        return secureAggregation ? sd / Math.Sqrt(sites) : sd;
    }

    /// <summary>ε after <paramref name="queries"/> Gaussian queries with noise multiplier σ (no subsampling), for δ.</summary>
    public static PrivacyGuarantee Guarantee(double noiseMultiplier, long queries, double delta)
    {
        var orders = RdpAccountant.DefaultOrders;
        return RdpAccountant.ToEpsilon(orders, RdpAccountant.Rdp(1.0, noiseMultiplier, queries, orders), delta);
    }

    /// <summary>The smallest noise multiplier for which <paramref name="queries"/> queries stay within (ε, δ).</summary>
    public static double Calibrate(double epsilon, double delta, long queries) => RdpAccountant.CalibrateNoiseMultiplier(epsilon, delta, 1.0, queries);
}
