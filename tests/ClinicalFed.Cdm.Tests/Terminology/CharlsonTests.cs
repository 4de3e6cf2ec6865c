using ClinicalFed.Cdm.Terminology;
using C = ClinicalFed.Cdm.Terminology.CharlsonCondition;

namespace ClinicalFed.Cdm.Tests.Terminology;

public class CharlsonTests
{
    // ------------------------------------------------------------------ systems and normalisation

    [Theory]
    [InlineData("http://hl7.org/fhir/sid/icd-9-cm", IcdVersion.Icd9Cm)]
    [InlineData("http://hl7.org/fhir/sid/icd-10", IcdVersion.Icd10)]
    [InlineData("http://hl7.org/fhir/sid/icd-10-cm", IcdVersion.Icd10)]
    public void IcdVersionFromSystem_maps_icd_systems(string system, IcdVersion expected) =>
        Assert.Equal(expected, Charlson.IcdVersionFromSystem(system));

    [Theory]
    [InlineData("http://snomed.info/sct")]
    [InlineData("http://hl7.org/fhir/sid/icd-10-pcs")]
    [InlineData("http://hl7.org/fhir/sid/icd-9-cm/")]
    [InlineData("")]
    public void IcdVersionFromSystem_returns_null_for_other_systems(string system) =>
        Assert.Null(Charlson.IcdVersionFromSystem(system));

    [Theory]
    [InlineData("250.83", "25083")]
    [InlineData("V43.4", "V434")]
    [InlineData("v43.4", "V434")]
    [InlineData("I21.4", "I214")]
    [InlineData(" e11.22 ", "E1122")]
    [InlineData("", "")]
    public void Normalize_uppercases_and_strips_dots_and_whitespace(string code, string expected) =>
        Assert.Equal(expected, Charlson.Normalize(code));

    // ------------------------------------------------------------------ weights

    [Fact]
    public void There_are_seventeen_conditions() =>
        Assert.Equal(17, Enum.GetValues<CharlsonCondition>().Length);

    [Theory]
    [InlineData(C.MyocardialInfarction, 1)]
    [InlineData(C.CongestiveHeartFailure, 1)]
    [InlineData(C.PeripheralVascularDisease, 1)]
    [InlineData(C.CerebrovascularDisease, 1)]
    [InlineData(C.Dementia, 1)]
    [InlineData(C.ChronicPulmonaryDisease, 1)]
    [InlineData(C.RheumaticDisease, 1)]
    [InlineData(C.PepticUlcerDisease, 1)]
    [InlineData(C.MildLiverDisease, 1)]
    [InlineData(C.DiabetesWithoutChronicComplications, 1)]
    [InlineData(C.DiabetesWithChronicComplications, 2)]
    [InlineData(C.HemiplegiaOrParaplegia, 2)]
    [InlineData(C.RenalDisease, 2)]
    [InlineData(C.AnyMalignancy, 2)]
    [InlineData(C.ModerateOrSevereLiverDisease, 3)]
    [InlineData(C.MetastaticSolidTumour, 6)]
    [InlineData(C.AidsHiv, 6)]
    public void Weight_is_the_original_charlson_weight(C condition, int weight) =>
        Assert.Equal(weight, Charlson.Weight(condition));

    [Fact]
    public void Index_of_all_conditions_applies_the_three_hierarchy_rules()
    {
        // 33 in total, minus mild liver (1), diabetes without complications (1) and any malignancy (2).
        Assert.Equal(29, Charlson.IndexOf(Enum.GetValues<CharlsonCondition>()));
    }

    // ------------------------------------------------------------------ ICD-9-CM

    [Theory]
    [InlineData("410.01", C.MyocardialInfarction)]
    [InlineData("412", C.MyocardialInfarction)]
    [InlineData("428.0", C.CongestiveHeartFailure)]
    [InlineData("428", C.CongestiveHeartFailure)]
    [InlineData("398.91", C.CongestiveHeartFailure)]
    [InlineData("402.91", C.CongestiveHeartFailure)]
    [InlineData("425.4", C.CongestiveHeartFailure)]
    [InlineData("425.9", C.CongestiveHeartFailure)]
    [InlineData("440.21", C.PeripheralVascularDisease)]
    [InlineData("443.9", C.PeripheralVascularDisease)]
    [InlineData("V43.4", C.PeripheralVascularDisease)]
    [InlineData("093.0", C.PeripheralVascularDisease)]
    [InlineData("434.91", C.CerebrovascularDisease)]
    [InlineData("437", C.CerebrovascularDisease)]
    [InlineData("437.1", C.CerebrovascularDisease)]
    [InlineData("438.20", C.CerebrovascularDisease)]
    [InlineData("362.34", C.CerebrovascularDisease)]
    [InlineData("290.0", C.Dementia)]
    [InlineData("294.10", C.Dementia)]
    [InlineData("331.2", C.Dementia)]
    [InlineData("491.21", C.ChronicPulmonaryDisease)]
    [InlineData("505", C.ChronicPulmonaryDisease)]
    [InlineData("416.8", C.ChronicPulmonaryDisease)]
    [InlineData("714.0", C.RheumaticDisease)]
    [InlineData("710.4", C.RheumaticDisease)]
    [InlineData("531.00", C.PepticUlcerDisease)]
    [InlineData("534.91", C.PepticUlcerDisease)]
    [InlineData("571.2", C.MildLiverDisease)]
    [InlineData("070.54", C.MildLiverDisease)]
    [InlineData("V42.7", C.MildLiverDisease)]
    [InlineData("250.00", C.DiabetesWithoutChronicComplications)]
    [InlineData("250.30", C.DiabetesWithoutChronicComplications)]
    [InlineData("250.8", C.DiabetesWithoutChronicComplications)]
    [InlineData("250.40", C.DiabetesWithChronicComplications)]
    [InlineData("250.83", C.DiabetesWithoutChronicComplications)]
    [InlineData("250.71", C.DiabetesWithChronicComplications)]
    [InlineData("342.90", C.HemiplegiaOrParaplegia)]
    [InlineData("344.1", C.HemiplegiaOrParaplegia)]
    [InlineData("344.9", C.HemiplegiaOrParaplegia)]
    [InlineData("585.6", C.RenalDisease)]
    [InlineData("403.91", C.RenalDisease)]
    [InlineData("583.7", C.RenalDisease)]
    [InlineData("V56.0", C.RenalDisease)]
    [InlineData("V45.11", C.RenalDisease)]
    [InlineData("162.9", C.AnyMalignancy)]
    [InlineData("174.9", C.AnyMalignancy)]
    [InlineData("195.8", C.AnyMalignancy)]
    [InlineData("203.00", C.AnyMalignancy)]
    [InlineData("238.6", C.AnyMalignancy)]
    [InlineData("572.2", C.ModerateOrSevereLiverDisease)]
    [InlineData("572.8", C.ModerateOrSevereLiverDisease)]
    [InlineData("456.0", C.ModerateOrSevereLiverDisease)]
    [InlineData("196.0", C.MetastaticSolidTumour)]
    [InlineData("199.1", C.MetastaticSolidTumour)]
    [InlineData("042", C.AidsHiv)]
    [InlineData("044.9", C.AidsHiv)]
    [InlineData("42", C.AidsHiv)] // leading zero lost in a flat extract
    [InlineData("70.22", C.MildLiverDisease)]
    [InlineData(" 410.01 ", C.MyocardialInfarction)]
    [InlineData("v43.4", C.PeripheralVascularDisease)]
    public void Classify_icd9(string code, C expected) =>
        Assert.Equal(expected, Charlson.Classify(code, IcdVersion.Icd9Cm));

    [Theory]
    [InlineData("V58.67")] // long-term insulin use
    [InlineData("401.9")] // essential hypertension
    [InlineData("403.00")] // hypertensive CKD without ESRD is not in Quan's list
    [InlineData("425.3")]
    [InlineData("443.0")] // Raynaud's
    [InlineData("572.1")]
    [InlineData("173.3")] // non-melanoma skin cancer is excluded
    [InlineData("209.0")]
    [InlineData("331.0")] // Alzheimer's disease: not in Quan's ICD-9-CM dementia list
    [InlineData("344.8")]
    [InlineData("250")] // bare category: with or without complications is unknown
    [InlineData("E849.7")]
    [InlineData("I21.4")] // an ICD-10 code read as ICD-9-CM
    public void Classify_icd9_returns_null_for_codes_outside_the_index(string code) =>
        Assert.Null(Charlson.Classify(code, IcdVersion.Icd9Cm));

    [Fact]
    public void Icd9_437_3_is_both_peripheral_vascular_and_cerebrovascular()
    {
        Assert.Equal([C.PeripheralVascularDisease, C.CerebrovascularDisease], Charlson.ClassifyAll("437.3", IcdVersion.Icd9Cm));
        Assert.Equal(C.PeripheralVascularDisease, Charlson.Classify("437.3", IcdVersion.Icd9Cm)); // tie: enum order

        var acc = new CharlsonAccumulator();
        acc.Add("437.3", IcdVersion.Icd9Cm);
        Assert.Equal(2, acc.Index);
    }

    [Theory]
    [InlineData("404.03")]
    [InlineData("404.13")]
    [InlineData("404.93")]
    public void Icd9_hypertensive_heart_and_kidney_disease_with_both_failures_is_chf_and_renal(string code)
    {
        Assert.Equal([C.CongestiveHeartFailure, C.RenalDisease], Charlson.ClassifyAll(code, IcdVersion.Icd9Cm));
        Assert.Equal(C.RenalDisease, Charlson.Classify(code, IcdVersion.Icd9Cm)); // the higher weight

        var acc = new CharlsonAccumulator();
        acc.Add(code, IcdVersion.Icd9Cm);
        Assert.Equal(3, acc.Index);
    }

    [Theory]
    [InlineData("404.01", C.CongestiveHeartFailure)]
    [InlineData("404.02", C.RenalDisease)]
    public void Icd9_hypertensive_heart_and_kidney_disease_with_one_failure_is_one_condition(string code, C expected) =>
        Assert.Equal([expected], Charlson.ClassifyAll(code, IcdVersion.Icd9Cm));

    // ------------------------------------------------------------------ ICD-10

    [Theory]
    [InlineData("I21.4", C.MyocardialInfarction)]
    [InlineData("I22.9", C.MyocardialInfarction)]
    [InlineData("I25.2", C.MyocardialInfarction)]
    [InlineData("I50.9", C.CongestiveHeartFailure)]
    [InlineData("I50.23", C.CongestiveHeartFailure)]
    [InlineData("I42.0", C.CongestiveHeartFailure)]
    [InlineData("I42.9", C.CongestiveHeartFailure)]
    [InlineData("I25.5", C.CongestiveHeartFailure)]
    [InlineData("I13.0", C.CongestiveHeartFailure)]
    [InlineData("I13.2", C.CongestiveHeartFailure)]
    [InlineData("I70.0", C.PeripheralVascularDisease)]
    [InlineData("K55.1", C.PeripheralVascularDisease)]
    [InlineData("Z95.9", C.PeripheralVascularDisease)]
    [InlineData("I63.9", C.CerebrovascularDisease)]
    [InlineData("G45.9", C.CerebrovascularDisease)]
    [InlineData("H34.0", C.CerebrovascularDisease)]
    [InlineData("F00", C.Dementia)]
    [InlineData("F00.9", C.Dementia)]
    [InlineData("F03.90", C.Dementia)]
    [InlineData("G30", C.Dementia)]
    [InlineData("G30.9", C.Dementia)]
    [InlineData("G31.1", C.Dementia)]
    [InlineData("J44.9", C.ChronicPulmonaryDisease)]
    [InlineData("J47", C.ChronicPulmonaryDisease)]
    [InlineData("I27.8", C.ChronicPulmonaryDisease)]
    [InlineData("M05.79", C.RheumaticDisease)]
    [InlineData("M32.9", C.RheumaticDisease)]
    [InlineData("K25.9", C.PepticUlcerDisease)]
    [InlineData("K28", C.PepticUlcerDisease)]
    [InlineData("K70.30", C.MildLiverDisease)]
    [InlineData("K74.60", C.MildLiverDisease)]
    [InlineData("B18.2", C.MildLiverDisease)]
    [InlineData("E11.9", C.DiabetesWithoutChronicComplications)]
    [InlineData("E11.65", C.DiabetesWithoutChronicComplications)]
    [InlineData("E10.10", C.DiabetesWithoutChronicComplications)]
    [InlineData("E14.9", C.DiabetesWithoutChronicComplications)]
    [InlineData("E11.2", C.DiabetesWithChronicComplications)]
    [InlineData("E11.21", C.DiabetesWithChronicComplications)]
    [InlineData("E11.22", C.DiabetesWithChronicComplications)]
    [InlineData("E11.29", C.DiabetesWithChronicComplications)]
    [InlineData("E11.40", C.DiabetesWithChronicComplications)]
    [InlineData("E10.7", C.DiabetesWithChronicComplications)]
    [InlineData("G81.90", C.HemiplegiaOrParaplegia)]
    [InlineData("G83.4", C.HemiplegiaOrParaplegia)]
    [InlineData("N18.5", C.RenalDisease)]
    [InlineData("N18.6", C.RenalDisease)]
    [InlineData("I13.1", C.RenalDisease)]
    [InlineData("Z99.2", C.RenalDisease)]
    [InlineData("Z49.01", C.RenalDisease)]
    [InlineData("C34.90", C.AnyMalignancy)]
    [InlineData("C76", C.AnyMalignancy)]
    [InlineData("C81.90", C.AnyMalignancy)]
    [InlineData("C97", C.AnyMalignancy)]
    [InlineData("K70.40", C.ModerateOrSevereLiverDisease)]
    [InlineData("K72.10", C.ModerateOrSevereLiverDisease)]
    [InlineData("K76.6", C.ModerateOrSevereLiverDisease)]
    [InlineData("I85.01", C.ModerateOrSevereLiverDisease)]
    [InlineData("C78.0", C.MetastaticSolidTumour)]
    [InlineData("C77.0", C.MetastaticSolidTumour)]
    [InlineData("C80.1", C.MetastaticSolidTumour)]
    [InlineData("B20", C.AidsHiv)]
    [InlineData("B22.7", C.AidsHiv)]
    [InlineData("B24", C.AidsHiv)]
    [InlineData("i21.4", C.MyocardialInfarction)]
    public void Classify_icd10(string code, C expected) =>
        Assert.Equal(expected, Charlson.Classify(code, IcdVersion.Icd10));

    [Theory]
    [InlineData("Z00.00")]
    [InlineData("I10")]
    [InlineData("I25.10")]
    [InlineData("I42.1")]
    [InlineData("C44.91")] // non-melanoma skin cancer is excluded
    [InlineData("B23.8")]
    [InlineData("K76.1")]
    [InlineData("E78.5")]
    [InlineData("N17.9")] // acute kidney failure
    [InlineData("410.01")] // an ICD-9-CM code read as ICD-10
    public void Classify_icd10_returns_null_for_codes_outside_the_index(string code) =>
        Assert.Null(Charlson.Classify(code, IcdVersion.Icd10));

    [Fact]
    public void Icd10_prefixes_are_not_padded_like_icd9() =>
        Assert.Null(Charlson.Classify("42", IcdVersion.Icd10));

    // ------------------------------------------------------------------ malformed input

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("   \t ")]
    [InlineData(".")]
    [InlineData("...")]
    [InlineData("4")]
    [InlineData("I2")]
    [InlineData("??")]
    [InlineData("???.?")]
    [InlineData("-410")]
    [InlineData("\u00e9\u00e9\u00e9")]
    [InlineData("410.01410.01410.01410.01410.01410.01410.01410.01")]
    public void Malformed_input_is_null_and_never_throws(string code)
    {
        foreach (var version in Enum.GetValues<IcdVersion>())
        {
            Assert.Null(Charlson.Classify(code, version));
            Assert.Empty(Charlson.ClassifyAll(code, version));
            var acc = new CharlsonAccumulator();
            Assert.False(acc.Add(code, version));
            Assert.Equal(0, acc.Index);
        }
    }

    [Fact]
    public void Null_code_and_unknown_version_are_null_and_never_throw()
    {
        Assert.Null(Charlson.Classify(null!, IcdVersion.Icd9Cm));
        Assert.Null(Charlson.Classify("410.01", (IcdVersion)42));
        Assert.False(new CharlsonAccumulator().Add((string)null!, IcdVersion.Icd10));
        Assert.Equal("other", Charlson.Icd9Chapter(null!));
        Assert.Equal(string.Empty, Charlson.Normalize(null!));
        Assert.Null(Charlson.IcdVersionFromSystem(null!));
    }

    // ------------------------------------------------------------------ tables

    [Theory]
    [InlineData(IcdVersion.Icd9Cm)]
    [InlineData(IcdVersion.Icd10)]
    public void Prefix_table_has_no_overlapping_rules(IcdVersion version)
    {
        var rules = Charlson.Rules(version);
        Assert.NotEmpty(rules);
        var overlaps = new List<string>();
        foreach (var a in rules)
        {
            foreach (var b in rules)
            {
                if (ReferenceEquals(a, b))
                {
                    continue;
                }

                // A code matching b's prefix (b exact) or extending it would also match a.
                var clash = a.ExactOnly
                    ? b.ExactOnly && a.Prefix == b.Prefix
                    : b.Prefix.StartsWith(a.Prefix, StringComparison.Ordinal);
                if (clash)
                {
                    overlaps.Add($"{a.Prefix}{(a.ExactOnly ? "$" : "")} / {b.Prefix}{(b.ExactOnly ? "$" : "")}");
                }
            }
        }

        Assert.Empty(overlaps);
    }

    [Theory]
    [InlineData(IcdVersion.Icd9Cm, "4373,40403,40413,40493")]
    [InlineData(IcdVersion.Icd10, "")]
    public void Only_the_published_double_assignments_carry_two_conditions(IcdVersion version, string expected)
    {
        var multi = Charlson.Rules(version).Where(r => r.Conditions.Count != 1).Select(r => r.Prefix).Order(StringComparer.Ordinal);
        Assert.Equal(expected.Split(',', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal), multi);
    }

    [Theory]
    [InlineData(IcdVersion.Icd9Cm)]
    [InlineData(IcdVersion.Icd10)]
    public void Every_rule_prefix_classifies_to_its_own_conditions(IcdVersion version)
    {
        foreach (var rule in Charlson.Rules(version))
        {
            Assert.Equal(rule.Conditions, Charlson.ClassifyAll(rule.Prefix, version));
            if (!rule.ExactOnly)
            {
                Assert.Equal(rule.Conditions, Charlson.ClassifyAll(rule.Prefix + "9", version));
            }
        }
    }

    [Theory]
    [InlineData(IcdVersion.Icd9Cm)]
    [InlineData(IcdVersion.Icd10)]
    public void Every_condition_has_rules(IcdVersion version)
    {
        var covered = Charlson.Rules(version).SelectMany(r => r.Conditions).ToHashSet();
        Assert.Equal(Enum.GetValues<CharlsonCondition>().ToHashSet(), covered);
    }

    [Theory]
    // Per condition, in enum order; ICD-9-CM minus the 4 prefixes listed under two conditions.
    [InlineData(IcdVersion.Icd9Cm, 2 + 17 + 17 + 20 + 3 + 21 + 11 + 4 + 15 + 6 + 4 + 11 + 24 + 73 + 10 + 4 + 3 - 4)]
    [InlineData(IcdVersion.Icd10, 3 + 14 + 13 + 13 + 7 + 21 + 9 + 4 + 19 + 25 + 25 + 12 + 22 + 83 + 11 + 4 + 4)]
    public void Rule_counts_match_the_hand_expanded_tables(IcdVersion version, int count) =>
        Assert.Equal(count, Charlson.Rules(version).Count);

    // ------------------------------------------------------------------ accumulator

    [Fact]
    public void Mild_and_severe_liver_disease_count_only_severe()
    {
        var acc = new CharlsonAccumulator();
        Assert.True(acc.Add("571.2", IcdVersion.Icd9Cm));
        Assert.Equal(1, acc.Index);
        Assert.True(acc.Add("572.2", IcdVersion.Icd9Cm));
        Assert.Equal(3, acc.Index);
        Assert.True(acc.Conditions.SetEquals([C.MildLiverDisease, C.ModerateOrSevereLiverDisease]));
    }

    [Fact]
    public void Diabetes_with_complications_supersedes_without()
    {
        var acc = new CharlsonAccumulator();
        acc.Add("25000", IcdVersion.Icd9Cm);
        Assert.Equal(1, acc.Index);
        acc.Add("25040", IcdVersion.Icd9Cm);
        Assert.Equal(2, acc.Index);
    }

    [Fact]
    public void Metastatic_tumour_supersedes_any_malignancy()
    {
        var acc = new CharlsonAccumulator();
        acc.Add("162.9", IcdVersion.Icd9Cm);
        Assert.Equal(2, acc.Index);
        acc.Add("196.0", IcdVersion.Icd9Cm);
        Assert.Equal(6, acc.Index);
    }

    [Fact]
    public void Hiv_weighs_six()
    {
        var acc = new CharlsonAccumulator();
        acc.Add("042", IcdVersion.Icd9Cm);
        Assert.Equal(6, acc.Index);
        Assert.Equal([C.AidsHiv], acc.Conditions);
    }

    [Fact]
    public void Index_is_a_weighted_sum_counting_each_condition_once_across_versions()
    {
        var acc = new CharlsonAccumulator();
        acc.Add("410.01", IcdVersion.Icd9Cm); // MI 1
        acc.Add("I21.4", IcdVersion.Icd10); // MI again
        acc.Add("I50.9", IcdVersion.Icd10); // CHF 1
        acc.Add("N18.5", IcdVersion.Icd10); // renal 2
        acc.Add("E11.22", IcdVersion.Icd10); // diabetes with complications 2
        acc.Add("E11.9", IcdVersion.Icd10); // superseded
        acc.Add("Z00.00", IcdVersion.Icd10); // nothing
        acc.Add("C78.0", IcdVersion.Icd10); // metastatic 6
        acc.Add("C34.90", IcdVersion.Icd10); // superseded
        Assert.Equal(1 + 1 + 2 + 2 + 6, acc.Index);
        Assert.Equal(7, acc.Conditions.Count);
        Assert.Contains(C.DiabetesWithoutChronicComplications, acc.Conditions);
        Assert.DoesNotContain(C.AidsHiv, acc.Conditions);
    }

    [Fact]
    public void Reset_clears_and_conditions_is_a_snapshot()
    {
        var acc = new CharlsonAccumulator();
        acc.Add("B20", IcdVersion.Icd10);
        var before = acc.Conditions;
        acc.Add("G30.9", IcdVersion.Icd10);
        Assert.Equal([C.AidsHiv], before);
        Assert.Equal([C.Dementia, C.AidsHiv], acc.Conditions);
        Assert.Equal(7, acc.Index);

        acc.Reset();
        Assert.Equal(0, acc.Index);
        Assert.Empty(acc.Conditions);
        acc.Add("I50.9", IcdVersion.Icd10);
        Assert.Equal(1, acc.Index);
        Assert.Equal([C.CongestiveHeartFailure], acc.Conditions);
    }

    [Fact]
    public void Conditions_set_operations()
    {
        var acc = new CharlsonAccumulator();
        acc.Add(C.RenalDisease);
        acc.Add(C.Dementia);
        var set = acc.Conditions;
        Assert.True(set.IsSubsetOf([C.Dementia, C.RenalDisease, C.AidsHiv]));
        Assert.True(set.IsProperSubsetOf([C.Dementia, C.RenalDisease, C.AidsHiv]));
        Assert.False(set.IsProperSubsetOf([C.Dementia, C.RenalDisease]));
        Assert.True(set.IsSupersetOf([C.Dementia]));
        Assert.True(set.IsProperSupersetOf([C.Dementia]));
        Assert.False(set.IsSupersetOf([C.Dementia, (C)99]));
        Assert.True(set.Overlaps([C.RenalDisease, C.AidsHiv]));
        Assert.False(set.Overlaps([C.AidsHiv]));
        Assert.True(set.SetEquals([C.RenalDisease, C.Dementia, C.RenalDisease]));
        Assert.False(set.Contains((C)99));
    }

    [Fact]
    public void Add_does_not_allocate()
    {
        var acc = new CharlsonAccumulator();
        string[] codes = ["410.01", "25040", "V58.67", "E11.22", "42", "437.3", "", "  ", "C78.0"];
        for (var i = 0; i < 1000; i++)
        {
            foreach (var code in codes)
            {
                acc.Add(code, IcdVersion.Icd9Cm);
                acc.Add(code, IcdVersion.Icd10);
            }

            _ = acc.Index;
            acc.Reset();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            foreach (var code in codes)
            {
                acc.Add(code, IcdVersion.Icd9Cm);
                acc.Add(code, IcdVersion.Icd10);
            }

            _ = acc.Index;
            acc.Reset();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // ------------------------------------------------------------------ ICD-9-CM chapters (Strack et al. 2014)

    [Theory]
    [InlineData("139", "other")]
    [InlineData("140", "neoplasms")]
    [InlineData("162.9", "neoplasms")]
    [InlineData("239.9", "neoplasms")]
    [InlineData("240", "other")]
    [InlineData("249.00", "other")]
    [InlineData("250", "diabetes")]
    [InlineData("250.83", "diabetes")]
    [InlineData("25083", "diabetes")]
    [InlineData("251", "other")]
    [InlineData("389.9", "other")]
    [InlineData("390", "circulatory")]
    [InlineData("428", "circulatory")]
    [InlineData("459.9", "circulatory")]
    [InlineData("460", "respiratory")]
    [InlineData("519.9", "respiratory")]
    [InlineData("520", "digestive")]
    [InlineData("579.9", "digestive")]
    [InlineData("580", "genitourinary")]
    [InlineData("629.9", "genitourinary")]
    [InlineData("630", "other")]
    [InlineData("709.9", "other")]
    [InlineData("710", "musculoskeletal")]
    [InlineData("739.9", "musculoskeletal")]
    [InlineData("740", "other")]
    [InlineData("784.0", "other")]
    [InlineData("785", "circulatory")]
    [InlineData("785.51", "circulatory")]
    [InlineData("786", "respiratory")]
    [InlineData("786.50", "respiratory")]
    [InlineData("787", "digestive")]
    [InlineData("787.01", "digestive")]
    [InlineData("788", "genitourinary")]
    [InlineData("788.20", "genitourinary")]
    [InlineData("789.00", "other")]
    [InlineData("799.9", "other")]
    [InlineData("800", "injury")]
    [InlineData("996.81", "injury")]
    [InlineData("999", "injury")]
    [InlineData("V57", "other")]
    [InlineData("V58.67", "other")]
    [InlineData("E909", "other")]
    [InlineData("e849.7", "other")]
    [InlineData("8", "other")]
    [InlineData("038.9", "other")]
    [InlineData(" 428.0 ", "circulatory")]
    [InlineData("", "other")]
    [InlineData("?", "other")]
    [InlineData("1234.5", "other")]
    public void Icd9Chapter_groups_by_category(string code, string expected) =>
        Assert.Equal(expected, Charlson.Icd9Chapter(code));

    [Theory]
    [InlineData("I50.9", "circulatory")]
    [InlineData("i21.4", "circulatory")]
    [InlineData("J44.9", "respiratory")]
    [InlineData("K57.30", "digestive")]
    [InlineData("K96", "other")]
    [InlineData("E11.22", "diabetes")]
    [InlineData("E08.9", "diabetes")]
    [InlineData("E14", "other")]
    [InlineData("E78.5", "other")]
    [InlineData("C34.90", "neoplasms")]
    [InlineData("D49.9", "neoplasms")]
    [InlineData("D50.9", "other")]
    [InlineData("N18.3", "genitourinary")]
    [InlineData("M17.11", "musculoskeletal")]
    [InlineData("S72.001A", "injury")]
    [InlineData("T88.7", "injury")]
    [InlineData("T89", "other")]
    [InlineData("R00.0", "circulatory")]
    [InlineData("R06.02", "respiratory")]
    [InlineData("R10.9", "digestive")]
    [InlineData("R33.9", "genitourinary")]
    [InlineData("R50.9", "other")]
    [InlineData("Z79.4", "other")]
    [InlineData("I5", "other")]
    [InlineData("", "other")]
    public void Icd10Chapter_groups_by_block(string code, string expected) =>
        Assert.Equal(expected, Charlson.Icd10Chapter(code));

    [Fact]
    public void DiagnosisGroup_dispatches_on_the_code_system()
    {
        Assert.Equal("circulatory", Charlson.DiagnosisGroup(new ClinicalFed.Cdm.Model.CdmCoding(ClinicalFed.Cdm.Terminology.Systems.Icd9Cm, "428.0")));
        Assert.Equal("circulatory", Charlson.DiagnosisGroup(new ClinicalFed.Cdm.Model.CdmCoding(ClinicalFed.Cdm.Terminology.Systems.Icd10Cm, "I50.9")));
        Assert.Equal("diabetes", Charlson.DiagnosisGroup(new ClinicalFed.Cdm.Model.CdmCoding(ClinicalFed.Cdm.Terminology.Systems.Icd10, "E11.9")));
        Assert.Null(Charlson.DiagnosisGroup(new ClinicalFed.Cdm.Model.CdmCoding(ClinicalFed.Cdm.Terminology.Systems.Snomed, "84114007")));
    }
}
