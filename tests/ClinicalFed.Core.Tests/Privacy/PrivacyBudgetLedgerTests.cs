using ClinicalFed.Core.Tests.Federation;
using ClinicalFed.Federation;
using ClinicalFed.Privacy;

namespace ClinicalFed.Core.Tests.Privacy;

public sealed class PrivacyBudgetLedgerTests
{
    [Fact]
    public void Ledger_composes_rounds_and_refuses_the_round_that_would_exceed_the_budget()
    {
        double sigma = RdpAccountant.CalibrateNoiseMultiplier(3, 1e-5, 0.05, 3 * 20);
        var ledger = new PrivacyBudgetLedger(3, 1e-5);
        var first = ledger.Spend(0.05, sigma, 20, "A");
        var second = ledger.Spend(0.05, sigma, 20, "A");
        var third = ledger.Spend(0.05, sigma, 20, "A");
        Assert.Equal(first.EpsilonRound, second.EpsilonRound, 12);
        Assert.True(first.EpsilonTotal < second.EpsilonTotal && second.EpsilonTotal < third.EpsilonTotal);
        Assert.True(second.EpsilonTotal < 2 * first.EpsilonTotal); // RDP composition is tighter than adding ε
        Assert.Equal(RdpAccountant.Epsilon(0.05, sigma, 60, 1e-5), third.EpsilonTotal, 9);
        Assert.True(third.EpsilonTotal <= 3);

        var e = Assert.Throws<PrivacyBudgetExceededException>(() => ledger.Spend(0.05, sigma, 20, "A"));
        Assert.Contains("Site 'A'", e.Message);
        Assert.Contains("refuses", e.Message);
        Assert.Equal(3, ledger.Rounds); // the refused round spent nothing
        Assert.Equal(60, ledger.Steps);
    }

    [Fact]
    public void Ledger_persists_and_cannot_be_reset_by_changing_the_budget()
    {
        string dir = Path.Combine(Path.GetTempPath(), "cf-ledger-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path = Path.Combine(dir, PrivacyBudgetLedger.FileName);
            var ledger = PrivacyBudgetLedger.LoadOrCreate(path, 2, 1e-5);
            ledger.Spend(0.1, 1.5, 10, "A");
            ledger.Save(path);
            var again = PrivacyBudgetLedger.LoadOrCreate(path, 2, 1e-5);
            Assert.Equal(ledger.EpsilonSpent, again.EpsilonSpent, 12);
            Assert.Equal(10, again.Steps);
            Assert.Equal(1, again.Rounds);
            Assert.Throws<InvalidDataException>(() => PrivacyBudgetLedger.LoadOrCreate(path, 5, 1e-5));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Update_header_round_trips_its_privacy_object_and_old_headers_have_none()
    {
        var privacy = new UpdatePrivacy
        {
            Mechanism = PrivacyMechanisms.DpSgdPatient, EpsilonRound = 0.8, EpsilonTotal = 1.7, Delta = 1e-5, NoiseMultiplier = 1.3,
            ClipNorm = 1, SamplingRate = 0.07, Steps = 14,
        };
        var header = TestData.Header("A", 10) with { Privacy = privacy };
        using var ms = new MemoryStream();
        UpdateFile.Write(ms, header, [1, 2, 3]);
        ms.Position = 0;
        var read = UpdateFile.ReadHeader(ms);
        Assert.Equal(privacy, read.Privacy);

        using var plain = new MemoryStream();
        UpdateFile.Write(plain, TestData.Header("A", 10), [1, 2, 3]);
        Assert.False(System.Text.Encoding.UTF8.GetString(plain.ToArray()).Contains("\"privacy\"", StringComparison.Ordinal));
        plain.Position = 0;
        Assert.Null(UpdateFile.ReadHeader(plain).Privacy);
    }

    [Fact]
    public void Invalid_privacy_objects_are_rejected_with_every_problem()
    {
        var bad = new UpdatePrivacy
        {
            Mechanism = "", EpsilonRound = 2, EpsilonTotal = 1, Delta = 2, NoiseMultiplier = 0, ClipNorm = -1, SamplingRate = 0, Steps = -1,
        };
        var problems = (TestData.Header("A", 10) with { Privacy = bad, PayloadSha256 = new string('0', 64) }).Validate();
        foreach (var field in new[] { "mechanism", "delta", "noise_multiplier", "clip_norm", "sampling_rate", "steps", "epsilon_total" })
            Assert.Contains(problems, p => p.Contains("privacy." + field, StringComparison.Ordinal));
    }
}
