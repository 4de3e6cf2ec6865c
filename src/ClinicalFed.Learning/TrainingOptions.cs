namespace ClinicalFed.Learning;

/// <summary>
/// How the two classes are weighted in the loss. In a federation prefer <see cref="PositiveWeight"/> with a weight agreed
/// from federated counts: <see cref="Balanced"/> uses the site's own class balance, which differs between sites.
/// </summary>
public abstract record ClassWeighting
{
    private ClassWeighting()
    {
    }

    /// <summary>Every example weighs 1.</summary>
    public static ClassWeighting None { get; } = new NoWeighting();

    /// <summary>As scikit-learn's "balanced": class c weighs n / (2·n_c), so both classes contribute equally and the mean weight is 1.</summary>
    public static ClassWeighting Balanced { get; } = new BalancedWeighting();

    /// <summary>Positives weigh <paramref name="weight"/>, negatives 1.</summary>
    public static ClassWeighting PositiveWeight(float weight)
    {
        if (!(weight > 0) || !float.IsFinite(weight))
        {
            throw new ArgumentOutOfRangeException(nameof(weight), weight, "The positive class weight must be a finite number > 0.");
        }

        return new ExplicitWeighting(weight);
    }

    /// <summary>The (negative, positive) class weights for the given class counts.</summary>
    public abstract (float Negative, float Positive) Resolve(int positives, int negatives);

    private sealed record NoWeighting : ClassWeighting
    {
        public override (float Negative, float Positive) Resolve(int positives, int negatives) => (1f, 1f);

        public override string ToString() => "none";
    }

    private sealed record BalancedWeighting : ClassWeighting
    {
        public override (float Negative, float Positive) Resolve(int positives, int negatives)
        {
            if (positives == 0 || negatives == 0)
            {
                return (1f, 1f); // one class only: nothing to balance
            }

            double n = (double)positives + negatives;
            return ((float)(n / (2.0 * negatives)), (float)(n / (2.0 * positives)));
        }

        public override string ToString() => "balanced";
    }

    private sealed record ExplicitWeighting(float Weight) : ClassWeighting
    {
        public override (float Negative, float Positive) Resolve(int positives, int negatives) => (1f, Weight);

        public override string ToString() => $"positive weight {Weight}";
    }
}

/// <summary>A learning rate per optimisation step.</summary>
public abstract record LearningRateSchedule
{
    private LearningRateSchedule()
    {
    }

    /// <summary>The rate for step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>.</summary>
    public abstract double Rate(long step, long totalSteps);

    /// <summary>The same rate at every step.</summary>
    public static LearningRateSchedule Constant(double rate) => new ConstantSchedule(Positive(rate, nameof(rate)));

    /// <summary>initial / (1 + decay·step).</summary>
    public static LearningRateSchedule InverseTime(double initial, double decay)
    {
        if (!(decay >= 0) || !double.IsFinite(decay))
        {
            throw new ArgumentOutOfRangeException(nameof(decay), decay, "Decay must be finite and ≥ 0.");
        }

        return new InverseTimeSchedule(Positive(initial, nameof(initial)), decay);
    }

    /// <summary>
    /// Linear warm-up from 0 over <paramref name="warmupSteps"/> steps, then a half cosine from <paramref name="initial"/>
    /// down to <paramref name="final"/> at the last step.
    /// </summary>
    public static LearningRateSchedule Cosine(double initial, double final = 0, int warmupSteps = 0)
    {
        if (!(final >= 0) || final > initial)
        {
            throw new ArgumentOutOfRangeException(nameof(final), final, "The final rate must be in [0, initial].");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        return new CosineSchedule(Positive(initial, nameof(initial)), final, warmupSteps);
    }

    private static double Positive(double rate, string name)
    {
        if (!(rate > 0) || !double.IsFinite(rate))
        {
            throw new ArgumentOutOfRangeException(name, rate, "A learning rate must be a finite number > 0.");
        }

        return rate;
    }

    private sealed record ConstantSchedule(double Value) : LearningRateSchedule
    {
        public override double Rate(long step, long totalSteps) => Value;
    }

    private sealed record InverseTimeSchedule(double Initial, double Decay) : LearningRateSchedule
    {
        public override double Rate(long step, long totalSteps) => Initial / (1 + Decay * step);
    }

    private sealed record CosineSchedule(double Initial, double Final, int WarmupSteps) : LearningRateSchedule
    {
        public override double Rate(long step, long totalSteps)
        {
            if (step < WarmupSteps)
            {
                return Initial * (step + 1) / WarmupSteps;
            }

            long span = Math.Max(1, totalSteps - 1 - WarmupSteps);
            double t = Math.Clamp((double)(step - WarmupSteps) / span, 0, 1);
            return Final + (Initial - Final) * (1 + Math.Cos(Math.PI * t)) / 2;
        }
    }
}

/// <summary>What one mini-batch draws.</summary>
public enum SamplingUnit
{
    /// <summary>Individual rows (examples).</summary>
    Row,

    /// <summary>
    /// Whole groups (patients, <see cref="FeatureMatrix.GroupIds"/>): a batch holds all rows of each sampled patient, and
    /// each patient's gradient reaches the <see cref="IGradientProcessor"/> as one unit — the privacy unit for patient-level DP.
    /// </summary>
    Group,
}

/// <summary>How units are drawn into mini-batches.</summary>
public enum BatchSampling
{
    /// <summary>Each epoch shuffles the units and cuts them into consecutive batches: every unit once per epoch.</summary>
    Shuffle,

    /// <summary>
    /// Each step includes every unit independently with probability q = batch size / units (Poisson subsampling, what
    /// DP-SGD privacy accounting assumes); an epoch is round(units / batch size) steps.
    /// </summary>
    Poisson,
}

/// <summary>How a group's rows make up its unit gradient when sampling by <see cref="SamplingUnit.Group"/>.</summary>
public enum GroupGradient
{
    /// <summary>
    /// The mean of the patient's row gradients: every patient counts equally (the objective is the mean over patients of
    /// each patient's mean loss).
    /// </summary>
    MeanOfRows,

    /// <summary>
    /// The sum of the patient's row gradients; the batch sum is divided by (units × mean rows per unit), so every row counts
    /// equally and the objective is the mean row loss, as with row sampling.
    /// </summary>
    SumOfRows,
}
