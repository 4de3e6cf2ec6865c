using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClinicalFed.Privacy;

/// <summary>Thrown when training or uploading would take a site past its (ε, δ) budget.</summary>
public sealed class PrivacyBudgetExceededException(string message) : InvalidOperationException(message);

/// <summary>What one round of DP-SGD cost.</summary>
/// <param name="EpsilonRound">ε of this round's steps alone.</param>
/// <param name="EpsilonTotal">ε of every step spent so far, this round included (RDP composed, then converted).</param>
public readonly record struct PrivacySpend(double EpsilonRound, double EpsilonTotal);

/// <summary>
/// A site's privacy budget (ε, δ) and what it has spent: the accumulated Rényi DP per order (so rounds with different
/// sampling rates or noise compose exactly), steps and rounds. It refuses — <see cref="PrivacyBudgetExceededException"/> —
/// any round that would take ε past the budget. The site agent keeps it in its work folder
/// (<see cref="FileName"/>); <c>simulate</c> keeps one per site in memory.
/// </summary>
public sealed class PrivacyBudgetLedger
{
    public const string FileName = "privacy-ledger.json";

    private readonly double[] _rdp;

    public PrivacyBudgetLedger(double epsilonBudget, double delta, IReadOnlyList<double>? orders = null)
    {
        if (!(epsilonBudget > 0) || !double.IsFinite(epsilonBudget)) throw new ArgumentOutOfRangeException(nameof(epsilonBudget), epsilonBudget, "The ε budget must be a finite number > 0.");
        if (!(delta > 0 && delta < 1)) throw new ArgumentOutOfRangeException(nameof(delta), delta, "δ must be in (0, 1).");
        EpsilonBudget = epsilonBudget;
        Delta = delta;
        Orders = [.. orders ?? RdpAccountant.DefaultOrders];
        _rdp = new double[Orders.Count];
    }

    public double EpsilonBudget { get; }
    public double Delta { get; }
    public IReadOnlyList<double> Orders { get; }
    public long Steps { get; private set; }
    public int Rounds { get; private set; }

    /// <summary>ε spent so far (0 before any round).</summary>
    public double EpsilonSpent => RdpAccountant.ToEpsilon(Orders, _rdp, Delta).Epsilon;

    /// <summary>ε the ledger would show after <paramref name="steps"/> more steps at (q, σ).</summary>
    public double ProjectedEpsilon(double samplingRate, double noiseMultiplier, long steps)
    {
        var next = RdpAccountant.Rdp(samplingRate, noiseMultiplier, steps, Orders);
        for (int i = 0; i < next.Length; i++) next[i] += _rdp[i];
        return RdpAccountant.ToEpsilon(Orders, next, Delta).Epsilon;
    }

    /// <summary>Throws <see cref="PrivacyBudgetExceededException"/> when the next <paramref name="steps"/> steps would exceed the budget.</summary>
    public void EnsureCanSpend(double samplingRate, double noiseMultiplier, long steps, string site)
    {
        double projected = ProjectedEpsilon(samplingRate, noiseMultiplier, steps);
        if (projected > EpsilonBudget * (1 + 1e-9))
        {
            throw new PrivacyBudgetExceededException(
                $"Site '{site}': its privacy budget ε = {EpsilonBudget:0.###} (δ = {Delta:G3}) would be exceeded: {Rounds} round(s) and {Steps} step(s) " +
                $"have spent ε = {EpsilonSpent:0.###}, and the next round ({steps} steps at q = {samplingRate:G4}, σ = {noiseMultiplier:G4}) would bring it to " +
                $"{projected:0.###}. The site refuses to train or upload.");
        }
    }

    /// <summary>Records one round of <paramref name="steps"/> steps at (q, σ) after checking the budget; returns its cost.</summary>
    public PrivacySpend Spend(double samplingRate, double noiseMultiplier, long steps, string site)
    {
        EnsureCanSpend(samplingRate, noiseMultiplier, steps, site);
        var round = RdpAccountant.Rdp(samplingRate, noiseMultiplier, steps, Orders);
        double epsilonRound = RdpAccountant.ToEpsilon(Orders, round, Delta).Epsilon;
        for (int i = 0; i < round.Length; i++) _rdp[i] += round[i];
        Steps += steps;
        Rounds++;
        return new PrivacySpend(epsilonRound, EpsilonSpent);
    }

    /// <summary>Loads the ledger at <paramref name="path"/>, or a new empty one when there is none; a stored ledger must
    /// have the same budget (a site cannot reset its spending by changing its budget).</summary>
    public static PrivacyBudgetLedger LoadOrCreate(string path, double epsilonBudget, double delta)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Load(path) is not { } ledger) return new PrivacyBudgetLedger(epsilonBudget, delta);
        if (Math.Abs(ledger.EpsilonBudget - epsilonBudget) > 1e-12 || Math.Abs(ledger.Delta - delta) > 1e-15)
        {
            throw new InvalidDataException(
                $"{path}: the ledger was opened with ε = {ledger.EpsilonBudget}, δ = {ledger.Delta}, not ε = {epsilonBudget}, δ = {delta}; a site's budget cannot change once spending has started.");
        }

        return ledger;
    }

    /// <summary>The ledger stored at <paramref name="path"/> as it is (null when there is none): what a site has spent.</summary>
    public static PrivacyBudgetLedger? Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) return null;
        var state = JsonSerializer.Deserialize<LedgerState>(File.ReadAllText(path))
                    ?? throw new InvalidDataException($"{path}: not a privacy ledger");
        if (state.Orders.Length != state.Rdp.Length || state.Orders.Length == 0) throw new InvalidDataException($"{path}: orders and rdp differ in length");
        var ledger = new PrivacyBudgetLedger(state.EpsilonBudget, state.Delta, state.Orders) { Steps = state.Steps, Rounds = state.Rounds };
        state.Rdp.CopyTo(ledger._rdp, 0);
        return ledger;
    }

    /// <summary>Writes the ledger to <paramref name="path"/> (via a temporary file and a rename).</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var state = new LedgerState
        {
            EpsilonBudget = EpsilonBudget, Delta = Delta, Orders = [.. Orders], Rdp = [.. _rdp], Steps = Steps, Rounds = Rounds,
            EpsilonSpent = EpsilonSpent,
        };
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, path, overwrite: true);
    }

    private sealed class LedgerState
    {
        [JsonPropertyName("epsilon_budget")] public double EpsilonBudget { get; set; }
        [JsonPropertyName("delta")] public double Delta { get; set; }
        [JsonPropertyName("epsilon_spent")] public double EpsilonSpent { get; set; }
        [JsonPropertyName("steps")] public long Steps { get; set; }
        [JsonPropertyName("rounds")] public int Rounds { get; set; }
        [JsonPropertyName("orders")] public double[] Orders { get; set; } = [];
        [JsonPropertyName("rdp")] public double[] Rdp { get; set; } = [];
    }
}
