namespace ClinicalFed.Privacy;

/// <summary>An (ε, δ) guarantee with the Rényi order that gave it.</summary>
/// <param name="Epsilon">ε (0 when nothing has been spent).</param>
/// <param name="Delta">δ.</param>
/// <param name="Order">The Rényi order α at which the conversion was tightest (NaN when nothing has been spent).</param>
public readonly record struct PrivacyGuarantee(double Epsilon, double Delta, double Order);

/// <summary>
/// Rényi differential privacy of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar and Zhang 2019,
/// "Rényi Differential Privacy of the Sampled Gaussian Mechanism"), composed over steps and converted to (ε, δ) with
/// the improved conversion of Balle et al. 2020 / Canonne, Kamath and Steinke 2020. Pure static functions.
/// </summary>
/// <remarks>
/// With sampling rate q and noise multiplier σ (noise standard deviation σ·C for sensitivity C), the order-α RDP of one
/// step is log(A_α)/(α − 1), where A_α = E_{z∼N(0,σ²)}[((1 − q) + q·exp((2z − 1)/(2σ²)))^α]. Integer orders use the
/// exact binomial expansion A_α = Σ_k C(α,k)(1 − q)^(α−k) q^k exp((k² − k)/(2σ²)); fractional orders integrate A_α
/// numerically (trapezoid rule in log space over a wide grid, which converges very fast on this smooth integrand).
/// RDP composes additively over steps. (ε, δ): ε = min_α rdp(α) − (log δ + log α)/(α − 1) + log((α − 1)/α).
/// </remarks>
public static class RdpAccountant
{
    /// <summary>
    /// The default Rényi orders: 1.25, 1.5, 1.75, then 2 to 10.9 in steps of 0.1, every integer 11 to 64, and 80, 96, 128,
    /// 192, 256.
    /// </summary>
    public static IReadOnlyList<double> DefaultOrders { get; } = BuildDefaultOrders();

    private static double[] BuildDefaultOrders()
    {
        var orders = new List<double> { 1.25, 1.5, 1.75 };
        for (int i = 20; i < 110; i++) orders.Add(i / 10.0);
        for (int a = 11; a <= 64; a++) orders.Add(a);
        orders.AddRange([80, 96, 128, 192, 256]);
        return [.. orders];
    }

    /// <summary>The RDP at order <paramref name="order"/> (&gt; 1) of one step of the Poisson-subsampled Gaussian mechanism.</summary>
    /// <param name="samplingRate">q in [0, 1].</param>
    /// <param name="noiseMultiplier">σ &gt; 0 (the noise standard deviation divided by the sensitivity).</param>
    /// <param name="order">α &gt; 1.</param>
    public static double StepRdp(double samplingRate, double noiseMultiplier, double order)
    {
        CheckStep(samplingRate, noiseMultiplier);
        if (!(order > 1) || !double.IsFinite(order)) throw new ArgumentOutOfRangeException(nameof(order), order, "Rényi orders must be finite and > 1.");
        double q = samplingRate, sigma = noiseMultiplier;
        if (q == 0) return 0;
        if (q == 1) return order / (2 * sigma * sigma);
        double logA = order == Math.Floor(order) && order <= 100_000 ? LogAInteger(q, sigma, (int)order) : LogAByQuadrature(q, sigma, order);
        return Math.Max(0, logA / (order - 1));
    }

    /// <summary>The RDP of <paramref name="steps"/> steps at every order (composition adds).</summary>
    public static double[] Rdp(double samplingRate, double noiseMultiplier, long steps, IReadOnlyList<double>? orders = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        orders ??= DefaultOrders;
        var rdp = new double[orders.Count];
        if (steps == 0) return rdp;
        for (int i = 0; i < rdp.Length; i++) rdp[i] = steps * StepRdp(samplingRate, noiseMultiplier, orders[i]);
        return rdp;
    }

    /// <summary>(ε, δ) from RDP values at the given orders, with the improved conversion; ε is never negative.</summary>
    public static PrivacyGuarantee ToEpsilon(IReadOnlyList<double> orders, IReadOnlyList<double> rdp, double delta)
    {
        ArgumentNullException.ThrowIfNull(orders);
        ArgumentNullException.ThrowIfNull(rdp);
        if (orders.Count != rdp.Count || orders.Count == 0) throw new ArgumentException("orders and rdp must have the same, non-zero length.");
        CheckDelta(delta);
        double best = double.PositiveInfinity, bestOrder = double.NaN;
        for (int i = 0; i < orders.Count; i++)
        {
            double a = orders[i], r = rdp[i];
            if (double.IsNaN(r)) continue;
            double eps = r - (Math.Log(delta) + Math.Log(a)) / (a - 1) + Math.Log((a - 1) / a);
            if (eps < best)
            {
                best = eps;
                bestOrder = a;
            }
        }

        if (rdp.All(r => r == 0)) return new PrivacyGuarantee(0, delta, double.NaN);
        return new PrivacyGuarantee(Math.Max(0, best), delta, bestOrder);
    }

    /// <summary>ε after <paramref name="steps"/> steps at sampling rate q and noise multiplier σ, for δ.</summary>
    public static double Epsilon(double samplingRate, double noiseMultiplier, long steps, double delta, IReadOnlyList<double>? orders = null)
    {
        orders ??= DefaultOrders;
        return ToEpsilon(orders, Rdp(samplingRate, noiseMultiplier, steps, orders), delta).Epsilon;
    }

    /// <summary>
    /// The smallest noise multiplier σ (to a relative precision of 1e-4) for which <paramref name="steps"/> steps at
    /// sampling rate q stay within (ε, δ). Monotone: a larger ε, a smaller q or fewer steps never need more noise.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Invalid ε, δ, q or steps.</exception>
    /// <exception cref="InvalidOperationException">No σ up to 10,000 reaches the target.</exception>
    public static double CalibrateNoiseMultiplier(double targetEpsilon, double delta, double samplingRate, long steps, IReadOnlyList<double>? orders = null)
    {
        if (!(targetEpsilon > 0) || !double.IsFinite(targetEpsilon)) throw new ArgumentOutOfRangeException(nameof(targetEpsilon), targetEpsilon, "ε must be a finite number > 0.");
        CheckDelta(delta);
        if (!(samplingRate > 0 && samplingRate <= 1)) throw new ArgumentOutOfRangeException(nameof(samplingRate), samplingRate, "The sampling rate must be in (0, 1].");
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        orders ??= DefaultOrders;
        double lo = 0.05, hi = 1;
        while (Epsilon(samplingRate, hi, steps, delta, orders) > targetEpsilon)
        {
            lo = hi;
            hi *= 2;
            if (hi > 10_000) throw new InvalidOperationException($"No noise multiplier up to 10,000 gives ε ≤ {targetEpsilon} at δ = {delta} over {steps} steps at q = {samplingRate}.");
        }

        while (hi - lo > 1e-4 * hi)
        {
            double mid = 0.5 * (lo + hi);
            if (Epsilon(samplingRate, mid, steps, delta, orders) > targetEpsilon) lo = mid;
            else hi = mid;
        }

        return hi;
    }

    /// <summary>log A_α for integer α by the binomial expansion, summed in log space.</summary>
    public static double LogAInteger(double q, double sigma, int alpha)
    {
        double logQ = Math.Log(q), log1mQ = Log1P(-q), twoSigma2 = 2 * sigma * sigma;
        double logBinom = 0, max = double.NegativeInfinity;
        var terms = new double[alpha + 1];
        for (int k = 0; k <= alpha; k++)
        {
            if (k > 0) logBinom += Math.Log(alpha - k + 1) - Math.Log(k);
            double t = logBinom + k * logQ + (alpha - k) * log1mQ + ((double)k * k - k) / twoSigma2;
            terms[k] = t;
            if (t > max) max = t;
        }

        double sum = 0;
        foreach (double t in terms) sum += Math.Exp(t - max);
        return max + Math.Log(sum);
    }

    /// <summary>
    /// log A_α for any α &gt; 1 by the trapezoid rule in log space over z ∈ [−14σ − 1, α + 14σ + 1]: the integrand is
    /// the N(0, σ²) density times ((1 − q) + q·exp((2z − 1)/(2σ²)))^α, whose mass lies near 0 and near α.
    /// </summary>
    public static double LogAByQuadrature(double q, double sigma, double alpha)
    {
        double twoSigma2 = 2 * sigma * sigma;
        double lo = -14 * sigma - 1, hi = alpha + 14 * sigma + 1;
        double h = Math.Min(sigma, 1) / 64;
        int n = (int)Math.Ceiling((hi - lo) / h);
        h = (hi - lo) / n;
        double logNorm = -0.5 * Math.Log(Math.PI * twoSigma2), logQ = Math.Log(q), log1mQ = Log1P(-q);
        double max = double.NegativeInfinity;
        var values = new double[n + 1];
        for (int i = 0; i <= n; i++)
        {
            double z = lo + i * h;
            double a = log1mQ, b = logQ + (2 * z - 1) / twoSigma2;
            double logMix = Math.Max(a, b) + Log1P(Math.Exp(-Math.Abs(a - b)));
            double v = logNorm - z * z / twoSigma2 + alpha * logMix;
            if (i == 0 || i == n) v += Math.Log(0.5);
            values[i] = v;
            if (v > max) max = v;
        }

        double sum = 0;
        foreach (double v in values) sum += Math.Exp(v - max);
        return max + Math.Log(sum * h);
    }

    /// <summary>log(1 + x), accurate for small |x|.</summary>
    private static double Log1P(double x) => Math.Abs(x) < 1e-4 ? x * (1 - x * (0.5 - x / 3)) : Math.Log(1 + x);

    private static void CheckStep(double q, double sigma)
    {
        if (!(q >= 0 && q <= 1)) throw new ArgumentOutOfRangeException(nameof(q), q, "The sampling rate must be in [0, 1].");
        if (!(sigma > 0) || !double.IsFinite(sigma)) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "The noise multiplier must be a finite number > 0.");
    }

    private static void CheckDelta(double delta)
    {
        if (!(delta > 0 && delta < 1)) throw new ArgumentOutOfRangeException(nameof(delta), delta, "δ must be in (0, 1).");
    }
}
