using System.Collections;
using System.Globalization;
using System.Numerics;
using System.Text;

using ClinicalFed.Cdm.Model;

namespace ClinicalFed.Cdm.Terminology;

/// <summary>The 17 comorbidities of the Charlson comorbidity index (Charlson et al. 1987), in the order of
/// Quan et al. 2005, Med Care 43:1130, Table 1.</summary>
public enum CharlsonCondition
{
    MyocardialInfarction,
    CongestiveHeartFailure,
    PeripheralVascularDisease,
    CerebrovascularDisease,
    Dementia,
    ChronicPulmonaryDisease,
    RheumaticDisease,
    PepticUlcerDisease,
    MildLiverDisease,
    DiabetesWithoutChronicComplications,
    DiabetesWithChronicComplications,
    HemiplegiaOrParaplegia,
    RenalDisease,
    AnyMalignancy,
    ModerateOrSevereLiverDisease,
    MetastaticSolidTumour,
    AidsHiv,
}

/// <summary>The ICD revision a diagnosis code belongs to. <see cref="Icd10"/> covers both WHO ICD-10 and ICD-10-CM
/// (the Quan 2005 ICD-10 algorithm is written against 3- and 4-character codes, which ICD-10-CM codes extend).</summary>
public enum IcdVersion
{
    Icd9Cm,
    Icd10,
}

/// <summary>One row of a Charlson coding table: a normalised code prefix (no dot, upper case) and the
/// condition(s) a code starting with it belongs to. <paramref name="ExactOnly"/> rows match only the code equal to
/// <paramref name="Prefix"/> (used for a bare 3-digit category whose 4-digit subcodes are split between
/// rows).</summary>
public sealed record CharlsonCodeRule(string Prefix, bool ExactOnly, IReadOnlyList<CharlsonCondition> Conditions);

/// <summary>
/// Charlson comorbidity index with the Quan et al. 2005 (Med Care 43:1130-9) ICD-9-CM ("enhanced ICD-9-CM") and
/// ICD-10 coding algorithms and the original Charlson 1987 weights.
/// </summary>
/// <remarks>
/// <para>Each code is matched against a table of non-overlapping prefixes (no rule's prefix is a prefix of another
/// rule's), so at most one rule matches. Quan's ICD-9-CM lists themselves place four codes in two conditions:
/// 437.3 (peripheral vascular and cerebrovascular disease) and 404.03, 404.13, 404.93 (congestive heart failure and
/// renal disease); those rules carry both conditions. <see cref="Classify"/> returns a single condition per code
/// (for those four the higher-weighted one, ties broken by enum order); <see cref="ClassifyAll"/> and
/// <see cref="CharlsonAccumulator"/> use every condition of the rule.</para>
/// <para>ICD-9-CM numeric categories always have three digits, so an ICD-9-CM code whose leading zeros were lost
/// (e.g. "42" or "70.22", as in some flat extracts) is read as "042" / "070.22".</para>
/// <para>A bare category is classified only if the whole category belongs to one condition (e.g. "428" is heart
/// failure, but "250" is not classified, because Quan splits 250.x between diabetes with and without chronic
/// complications).</para>
/// </remarks>
public static class Charlson
{
    /// <summary>The number of Charlson conditions (17).</summary>
    public const int ConditionCount = 17;

    /// <summary>Longest normalised code considered; longer inputs are not ICD codes and classify as null.</summary>
    private const int MaxCodeLength = 32;

    private static readonly int[] Weights =
    [
        1, // MyocardialInfarction
        1, // CongestiveHeartFailure
        1, // PeripheralVascularDisease
        1, // CerebrovascularDisease
        1, // Dementia
        1, // ChronicPulmonaryDisease
        1, // RheumaticDisease
        1, // PepticUlcerDisease
        1, // MildLiverDisease
        1, // DiabetesWithoutChronicComplications
        2, // DiabetesWithChronicComplications
        2, // HemiplegiaOrParaplegia
        2, // RenalDisease
        2, // AnyMalignancy
        3, // ModerateOrSevereLiverDisease
        6, // MetastaticSolidTumour
        6, // AidsHiv
    ];

    /// <summary>The original Charlson 1987 weight of <paramref name="condition"/>.</summary>
    public static int Weight(CharlsonCondition condition)
    {
        var i = (int)condition;
        if ((uint)i >= ConditionCount)
        {
            throw new ArgumentOutOfRangeException(nameof(condition), condition, "Not a Charlson condition.");
        }

        return Weights[i];
    }

    /// <summary>Maps a FHIR code system URI to the ICD revision it carries, or null for any other system.</summary>
    public static IcdVersion? IcdVersionFromSystem(string system) => system switch
    {
        Systems.Icd9Cm => IcdVersion.Icd9Cm,
        Systems.Icd10 or Systems.Icd10Cm => IcdVersion.Icd10,
        _ => null,
    };

    /// <summary>Upper-cases <paramref name="code"/> and removes dots and whitespace: "250.83" → "25083",
    /// "v43.4" → "V434", "I21.4" → "I214". Null becomes the empty string.</summary>
    public static string Normalize(string code)
    {
        if (string.IsNullOrEmpty(code))
        {
            return string.Empty;
        }

        var sb = new StringBuilder(code.Length);
        foreach (var ch in code)
        {
            if (ch == '.' || char.IsWhiteSpace(ch))
            {
                continue;
            }

            sb.Append(char.ToUpperInvariant(ch));
        }

        return sb.ToString();
    }

    /// <summary>The Charlson condition <paramref name="code"/> belongs to, or null if none (also for empty or
    /// malformed input). For the few codes Quan assigns to two conditions, returns the higher-weighted one.</summary>
    public static CharlsonCondition? Classify(string code, IcdVersion version)
    {
        var mask = code is null ? 0u : LookupMask(code.AsSpan(), version);
        return mask == 0 ? null : Primary(mask);
    }

    /// <summary>Every Charlson condition <paramref name="code"/> belongs to (empty if none), in enum order.</summary>
    public static IReadOnlyList<CharlsonCondition> ClassifyAll(string code, IcdVersion version)
    {
        var mask = code is null ? 0u : LookupMask(code.AsSpan(), version);
        return ToList(mask);
    }

    /// <summary>The coding table of <paramref name="version"/>, sorted by prefix.</summary>
    public static IReadOnlyList<CharlsonCodeRule> Rules(IcdVersion version) =>
        TableFor(version)?.Rules ?? throw new ArgumentOutOfRangeException(nameof(version), version, "Unknown ICD version.");

    /// <summary>The index of a set of conditions after the hierarchy rules (moderate/severe liver disease supersedes
    /// mild, diabetes with chronic complications supersedes without, metastatic solid tumour supersedes any
    /// malignancy).</summary>
    public static int IndexOf(IEnumerable<CharlsonCondition> conditions)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        var mask = 0u;
        foreach (var c in conditions)
        {
            _ = Weight(c); // validates
            mask |= Bit(c);
        }

        return IndexFromMask(mask);
    }

    // ---------------------------------------------------------------------------------------------------------
    // ICD-9-CM chapter grouping (Strack et al. 2014, BioMed Res Int 781670, Diabetes 130-US hospitals data set)
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>Inclusive ranges of 3-digit ICD-9-CM categories and their group; everything else is "other".
    /// Diabetes (250.xx) is its own group although it lies in the endocrine chapter.</summary>
    private static readonly (int From, int To, string Group)[] Icd9ChapterTable =
    [
        (140, 239, "neoplasms"),
        (250, 250, "diabetes"),
        (390, 459, "circulatory"),
        (460, 519, "respiratory"),
        (520, 579, "digestive"),
        (580, 629, "genitourinary"),
        (710, 739, "musculoskeletal"),
        (785, 785, "circulatory"),
        (786, 786, "respiratory"),
        (787, 787, "digestive"),
        (788, 788, "genitourinary"),
        (800, 999, "injury"),
    ];

    /// <summary>
    /// The same groups for ICD-10 / ICD-10-CM, by chapter block: neoplasms C00–D49, diabetes E08–E13, circulatory
    /// I00–I99, respiratory J00–J99, digestive K00–K95, genitourinary N00–N99, musculoskeletal M00–M99, injury S00–T88;
    /// the symptom codes ICD-9-CM files with an organ system (785–788) map to their ICD-10 symptom blocks: R00–R03
    /// circulatory, R04–R09 respiratory, R10–R19 digestive, R30–R39 genitourinary.
    /// </summary>
    private static readonly (char Letter, int From, int To, string Group)[] Icd10ChapterTable =
    [
        ('C', 0, 99, "neoplasms"),
        ('D', 0, 49, "neoplasms"),
        ('E', 8, 13, "diabetes"),
        ('I', 0, 99, "circulatory"),
        ('J', 0, 99, "respiratory"),
        ('K', 0, 95, "digestive"),
        ('N', 0, 99, "genitourinary"),
        ('M', 0, 99, "musculoskeletal"),
        ('S', 0, 99, "injury"),
        ('T', 0, 88, "injury"),
        ('R', 0, 3, "circulatory"),
        ('R', 4, 9, "respiratory"),
        ('R', 10, 19, "digestive"),
        ('R', 30, 39, "genitourinary"),
    ];

    /// <summary>The diagnosis group of an ICD-10 / ICD-10-CM code (as <see cref="Icd9Chapter"/>; "other" when none applies).</summary>
    public static string Icd10Chapter(string code)
    {
        var s = Normalize(code);
        if (s.Length < 3 || !char.IsAsciiLetter(s[0]) || !char.IsAsciiDigit(s[1]) || !char.IsAsciiDigit(s[2])) return "other";
        int value = (s[1] - '0') * 10 + (s[2] - '0');
        foreach (var (letter, from, to, group) in Icd10ChapterTable)
            if (s[0] == letter && value >= from && value <= to) return group;
        return "other";
    }

    /// <summary>The diagnosis group of a code in an ICD system (<see cref="IcdVersionFromSystem"/>), or null for any other system.</summary>
    public static string? DiagnosisGroup(CdmCoding code) => IcdVersionFromSystem(code.System) switch
    {
        IcdVersion.Icd9Cm => Icd9Chapter(code.Code),
        IcdVersion.Icd10 => Icd10Chapter(code.Code),
        _ => null,
    };

    /// <summary>The Strack et al. 2014 diagnosis group of an ICD-9-CM code: "circulatory", "respiratory",
    /// "digestive", "diabetes", "injury", "musculoskeletal", "genitourinary", "neoplasms" or "other" (also for
    /// V and E codes and malformed input).</summary>
    public static string Icd9Chapter(string code)
    {
        const string other = "other";
        if (code is null)
        {
            return other;
        }

        var s = code.AsSpan().Trim();
        var dot = s.IndexOf('.');
        ReadOnlySpan<char> category;
        if (dot >= 0)
        {
            category = s[..dot];
        }
        else
        {
            category = s.Length > 3 ? s[..3] : s;
        }

        category = category.Trim();
        if (category.Length is 0 or > 3)
        {
            return other;
        }

        var value = 0;
        foreach (var ch in category)
        {
            if (!char.IsAsciiDigit(ch))
            {
                return other;
            }

            value = (value * 10) + (ch - '0');
        }

        foreach (var (from, to, group) in Icd9ChapterTable)
        {
            if (value >= from && value <= to)
            {
                return group;
            }
        }

        return other;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Lookup
    // ---------------------------------------------------------------------------------------------------------

    internal static uint Bit(CharlsonCondition c) => 1u << (int)c;

    /// <summary>The condition mask of a raw (un-normalised) code; 0 if none. Does not allocate.</summary>
    internal static uint LookupMask(ReadOnlySpan<char> code, IcdVersion version)
    {
        var table = TableFor(version);
        if (table is null)
        {
            return 0;
        }

        Span<char> buf = stackalloc char[MaxCodeLength];
        var n = NormalizeForLookup(code, version, buf);
        if (n < 3)
        {
            return 0;
        }

        var key = CategoryKey(buf[0], buf[1], buf[2]);
        if (key < 0)
        {
            return 0;
        }

        var bucket = table.Buckets[key];
        if (bucket is null)
        {
            return 0;
        }

        ReadOnlySpan<char> tail = buf[3..n];
        foreach (var rule in bucket)
        {
            var matches = rule.ExactOnly
                ? tail.SequenceEqual(rule.Tail)
                : tail.StartsWith(rule.Tail, StringComparison.Ordinal);
            if (matches)
            {
                return rule.Mask; // rules never overlap, so the first match is the only one
            }
        }

        return 0;
    }

    internal static int IndexFromMask(uint mask)
    {
        if ((mask & Bit(CharlsonCondition.ModerateOrSevereLiverDisease)) != 0)
        {
            mask &= ~Bit(CharlsonCondition.MildLiverDisease);
        }

        if ((mask & Bit(CharlsonCondition.DiabetesWithChronicComplications)) != 0)
        {
            mask &= ~Bit(CharlsonCondition.DiabetesWithoutChronicComplications);
        }

        if ((mask & Bit(CharlsonCondition.MetastaticSolidTumour)) != 0)
        {
            mask &= ~Bit(CharlsonCondition.AnyMalignancy);
        }

        var sum = 0;
        while (mask != 0)
        {
            sum += Weights[BitOperations.TrailingZeroCount(mask)];
            mask &= mask - 1;
        }

        return sum;
    }

    internal static CharlsonCondition[] ToList(uint mask)
    {
        if (mask == 0)
        {
            return [];
        }

        var result = new CharlsonCondition[BitOperations.PopCount(mask)];
        var k = 0;
        while (mask != 0)
        {
            result[k++] = (CharlsonCondition)BitOperations.TrailingZeroCount(mask);
            mask &= mask - 1;
        }

        return result;
    }

    private static CharlsonCondition Primary(uint mask)
    {
        var best = BitOperations.TrailingZeroCount(mask);
        for (var m = mask & (mask - 1); m != 0; m &= m - 1)
        {
            var i = BitOperations.TrailingZeroCount(m);
            if (Weights[i] > Weights[best])
            {
                best = i;
            }
        }

        return (CharlsonCondition)best;
    }

    /// <summary>Copies <paramref name="raw"/> into <paramref name="dst"/> upper-cased without dots and whitespace,
    /// restoring lost leading zeros of ICD-9-CM numeric categories. Returns the length, or -1 if too long.</summary>
    private static int NormalizeForLookup(ReadOnlySpan<char> raw, IcdVersion version, Span<char> dst)
    {
        var n = 0;
        var beforeDot = -1;
        foreach (var ch in raw)
        {
            if (ch == '.')
            {
                if (beforeDot < 0)
                {
                    beforeDot = n;
                }

                continue;
            }

            if (char.IsWhiteSpace(ch))
            {
                continue;
            }

            if (n == dst.Length)
            {
                return -1;
            }

            dst[n++] = char.ToUpperInvariant(ch);
        }

        if (version == IcdVersion.Icd9Cm && n > 0)
        {
            var lead = beforeDot >= 0 ? beforeDot : n;
            if (lead is 1 or 2 && char.IsAsciiDigit(dst[0]) && (lead == 1 || char.IsAsciiDigit(dst[1])))
            {
                var pad = 3 - lead;
                if (n + pad > dst.Length)
                {
                    return -1;
                }

                dst[..n].CopyTo(dst[pad..]);
                dst[..pad].Fill('0');
                n += pad;
            }
        }

        return n;
    }

    /// <summary>Index of a 3-character category over [0-9A-Z]^3, or -1.</summary>
    private static int CategoryKey(char a, char b, char c)
    {
        var x = CharKey(a);
        var y = CharKey(b);
        var z = CharKey(c);
        return (x | y | z) < 0 ? -1 : (((x * 36) + y) * 36) + z;
    }

    private static int CharKey(char ch) => ch switch
    {
        >= '0' and <= '9' => ch - '0',
        >= 'A' and <= 'Z' => ch - 'A' + 10,
        _ => -1,
    };

    private static Table? TableFor(IcdVersion version) => version switch
    {
        IcdVersion.Icd9Cm => Tables.Icd9,
        IcdVersion.Icd10 => Tables.Icd10,
        _ => null,
    };

    private readonly record struct Rule(string Tail, bool ExactOnly, uint Mask);

    private sealed class Table(Rule[]?[] buckets, CharlsonCodeRule[] rules)
    {
        public Rule[]?[] Buckets { get; } = buckets;
        public CharlsonCodeRule[] Rules { get; } = rules;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Quan 2005 coding tables. Codes are written without dots; "a-b" is an inclusive range over the trailing
    // digits ("4254-4259" = 425.4 … 425.9, "C00-C26"); a trailing '$' matches that exact code only. A code listed
    // for two conditions becomes one rule carrying both.
    // ---------------------------------------------------------------------------------------------------------

    private static class Tables
    {
        private static readonly (CharlsonCondition Condition, string Codes)[] Icd9Spec =
        [
            (CharlsonCondition.MyocardialInfarction, "410, 412"),
            (CharlsonCondition.CongestiveHeartFailure,
                "39891, 40201, 40211, 40291, 40401, 40403, 40411, 40413, 40491, 40493, 4254-4259, 428"),
            (CharlsonCondition.PeripheralVascularDisease,
                "0930, 4373, 440, 441, 4431-4439, 4471, 5571, 5579, V434"),
            // 430.x-438.x; 437 is split so that 437.3 can also carry peripheral vascular disease.
            (CharlsonCondition.CerebrovascularDisease, "36234, 430-436, 437$, 4370-4379, 438"),
            (CharlsonCondition.Dementia, "290, 2941, 3312"),
            (CharlsonCondition.ChronicPulmonaryDisease, "4168, 4169, 490-505, 5064, 5081, 5088"),
            (CharlsonCondition.RheumaticDisease, "4465, 7100-7104, 7140-7142, 7148, 725"),
            (CharlsonCondition.PepticUlcerDisease, "531-534"),
            (CharlsonCondition.MildLiverDisease,
                "07022, 07023, 07032, 07033, 07044, 07054, 0706, 0709, 570, 571, 5733, 5734, 5738, 5739, V427"),
            (CharlsonCondition.DiabetesWithoutChronicComplications, "2500-2503, 2508, 2509"),
            (CharlsonCondition.DiabetesWithChronicComplications, "2504-2507"),
            (CharlsonCondition.HemiplegiaOrParaplegia, "3341, 342, 343, 3440-3446, 3449"),
            (CharlsonCondition.RenalDisease,
                "40301, 40311, 40391, 40402, 40403, 40412, 40413, 40492, 40493, 582, 5830-5837, 585, 586, 5880, "
                + "V420, V451, V56"),
            (CharlsonCondition.AnyMalignancy, "140-172, 174-194, 1950-1958, 200-208, 2386"),
            (CharlsonCondition.ModerateOrSevereLiverDisease, "4560-4562, 5722-5728"),
            (CharlsonCondition.MetastaticSolidTumour, "196-199"),
            (CharlsonCondition.AidsHiv, "042-044"),
        ];

        private static readonly (CharlsonCondition Condition, string Codes)[] Icd10Spec =
        [
            (CharlsonCondition.MyocardialInfarction, "I21, I22, I252"),
            (CharlsonCondition.CongestiveHeartFailure,
                "I099, I110, I130, I132, I255, I420, I425-I429, I43, I50, P290"),
            (CharlsonCondition.PeripheralVascularDisease,
                "I70, I71, I731, I738, I739, I771, I790, I792, K551, K558, K559, Z958, Z959"),
            (CharlsonCondition.CerebrovascularDisease, "G45, G46, H340, I60-I69"),
            (CharlsonCondition.Dementia, "F00-F03, F051, G30, G311"),
            (CharlsonCondition.ChronicPulmonaryDisease, "I278, I279, J40-J47, J60-J67, J684, J701, J703"),
            (CharlsonCondition.RheumaticDisease, "M05, M06, M315, M32-M34, M351, M353, M360"),
            (CharlsonCondition.PepticUlcerDisease, "K25-K28"),
            (CharlsonCondition.MildLiverDisease,
                "B18, K700-K703, K709, K713-K715, K717, K73, K74, K760, K762-K764, K768, K769, Z944"),
            (CharlsonCondition.DiabetesWithoutChronicComplications,
                "E100, E101, E106, E108, E109, E110, E111, E116, E118, E119, E120, E121, E126, E128, E129, "
                + "E130, E131, E136, E138, E139, E140, E141, E146, E148, E149"),
            (CharlsonCondition.DiabetesWithChronicComplications,
                "E102-E105, E107, E112-E115, E117, E122-E125, E127, E132-E135, E137, E142-E145, E147"),
            (CharlsonCondition.HemiplegiaOrParaplegia, "G041, G114, G801, G802, G81, G82, G830-G834, G839"),
            (CharlsonCondition.RenalDisease,
                "I120, I131, N032-N037, N052-N057, N18, N19, N250, Z490-Z492, Z940, Z992"),
            (CharlsonCondition.AnyMalignancy,
                "C00-C26, C30-C34, C37-C41, C43, C45-C58, C60-C76, C81-C85, C88, C90-C97"),
            (CharlsonCondition.ModerateOrSevereLiverDisease,
                "I850, I859, I864, I982, K704, K711, K721, K729, K765, K766, K767"),
            (CharlsonCondition.MetastaticSolidTumour, "C77-C80"),
            (CharlsonCondition.AidsHiv, "B20-B22, B24"),
        ];

        public static readonly Table Icd9 = Build(Icd9Spec);
        public static readonly Table Icd10 = Build(Icd10Spec);

        private static Table Build((CharlsonCondition Condition, string Codes)[] spec)
        {
            var merged = new Dictionary<(string Prefix, bool Exact), uint>();
            foreach (var (condition, codes) in spec)
            {
                foreach (var token in codes.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    foreach (var key in Expand(token))
                    {
                        merged[key] = merged.GetValueOrDefault(key) | Bit(condition);
                    }
                }
            }

            var ordered = merged
                .OrderBy(kv => kv.Key.Prefix, StringComparer.Ordinal)
                .ThenBy(kv => kv.Key.Exact)
                .ToArray();

            var lists = new Dictionary<int, List<Rule>>();
            var rules = new CharlsonCodeRule[ordered.Length];
            for (var i = 0; i < ordered.Length; i++)
            {
                var ((prefix, exact), mask) = ordered[i];
                var key = CategoryKey(prefix[0], prefix[1], prefix[2]);
                if (!lists.TryGetValue(key, out var list))
                {
                    lists[key] = list = [];
                }

                list.Add(new Rule(prefix[3..], exact, mask));
                rules[i] = new CharlsonCodeRule(prefix, exact, ToList(mask));
            }

            var buckets = new Rule[]?[36 * 36 * 36];
            foreach (var (key, list) in lists)
            {
                buckets[key] = [.. list];
            }

            return new Table(buckets, rules);
        }

        private static IEnumerable<(string Prefix, bool Exact)> Expand(string token)
        {
            var exact = token.EndsWith('$');
            if (exact)
            {
                token = token[..^1];
            }

            var dash = token.IndexOf('-');
            if (dash < 0)
            {
                yield return (Validated(token), exact);
                yield break;
            }

            var lo = token[..dash];
            var hi = token[(dash + 1)..];
            if (lo.Length != hi.Length)
            {
                throw new InvalidOperationException($"Charlson table: range '{token}' has ends of different length.");
            }

            var common = 0;
            while (common < lo.Length && lo[common] == hi[common])
            {
                common++;
            }

            // The varying part must be digits: widen it leftwards over any shared digits ("4254-4259" varies in
            // the last digit, "490-505" in all three).
            while (common > 0 && char.IsAsciiDigit(lo[common - 1]))
            {
                common--;
            }

            var width = lo.Length - common;
            if (width == 0
                || !int.TryParse(lo.AsSpan(common), NumberStyles.None, CultureInfo.InvariantCulture, out var from)
                || !int.TryParse(hi.AsSpan(common), NumberStyles.None, CultureInfo.InvariantCulture, out var to)
                || from > to)
            {
                throw new InvalidOperationException($"Charlson table: malformed range '{token}'.");
            }

            var head = lo[..common];
            var format = "D" + width.ToString(CultureInfo.InvariantCulture);
            for (var v = from; v <= to; v++)
            {
                yield return (Validated(head + v.ToString(format, CultureInfo.InvariantCulture)), exact);
            }
        }

        private static string Validated(string prefix)
        {
            if (prefix.Length < 3 || prefix.Any(ch => CharKey(ch) < 0))
            {
                throw new InvalidOperationException($"Charlson table: malformed code prefix '{prefix}'.");
            }

            return prefix;
        }
    }
}

/// <summary>
/// Collects the Charlson conditions of one patient (or encounter) from its diagnosis codes. Adding a code does not
/// allocate; reuse one instance across patients with <see cref="Reset"/>. Not thread-safe.
/// </summary>
public sealed class CharlsonAccumulator
{
    private uint _mask;
    private CharlsonConditionSet _conditions = CharlsonConditionSet.Empty;

    /// <summary>Adds a diagnosis code (any formatting <see cref="Charlson.Normalize"/> accepts). Returns whether it
    /// belongs to a Charlson condition; malformed or unrelated codes are ignored.</summary>
    public bool Add(string code, IcdVersion version) =>
        code is not null && Add(code.AsSpan(), version);

    /// <summary>Adds a diagnosis code given as characters, e.g. a slice of a parsed record.</summary>
    public bool Add(ReadOnlySpan<char> code, IcdVersion version)
    {
        var mask = Charlson.LookupMask(code, version);
        _mask |= mask;
        return mask != 0;
    }

    /// <summary>Adds a condition directly.</summary>
    public void Add(CharlsonCondition condition)
    {
        _ = Charlson.Weight(condition); // validates
        _mask |= Charlson.Bit(condition);
    }

    /// <summary>Every condition found so far, before the hierarchy rules (so mild and moderate/severe liver disease
    /// can both be present). A snapshot: later calls to <see cref="Add(string, IcdVersion)"/> do not change it.</summary>
    public IReadOnlySet<CharlsonCondition> Conditions
    {
        get
        {
            if (_conditions.Mask != _mask)
            {
                _conditions = new CharlsonConditionSet(_mask);
            }

            return _conditions;
        }
    }

    /// <summary>The Charlson comorbidity index: the weighted sum of <see cref="Conditions"/> after the hierarchy
    /// rules (moderate/severe liver supersedes mild, diabetes with chronic complications supersedes without,
    /// metastatic solid tumour supersedes any malignancy).</summary>
    public int Index => Charlson.IndexFromMask(_mask);

    /// <summary>Forgets every code added.</summary>
    public void Reset() => _mask = 0;
}

/// <summary>An immutable set of Charlson conditions stored as a bit mask.</summary>
internal sealed class CharlsonConditionSet(uint mask) : IReadOnlySet<CharlsonCondition>
{
    public static readonly CharlsonConditionSet Empty = new(0);

    public uint Mask { get; } = mask;

    public int Count => BitOperations.PopCount(Mask);

    public bool Contains(CharlsonCondition item) =>
        (uint)item < Charlson.ConditionCount && (Mask & Charlson.Bit(item)) != 0;

    public IEnumerator<CharlsonCondition> GetEnumerator()
    {
        for (var m = Mask; m != 0; m &= m - 1)
        {
            yield return (CharlsonCondition)BitOperations.TrailingZeroCount(m);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public bool IsSubsetOf(IEnumerable<CharlsonCondition> other)
    {
        var (o, _) = MaskOf(other);
        return (Mask & ~o) == 0;
    }

    public bool IsProperSubsetOf(IEnumerable<CharlsonCondition> other)
    {
        var (o, extra) = MaskOf(other);
        return (Mask & ~o) == 0 && (o != Mask || extra);
    }

    public bool IsSupersetOf(IEnumerable<CharlsonCondition> other)
    {
        var (o, extra) = MaskOf(other);
        return !extra && (o & ~Mask) == 0;
    }

    public bool IsProperSupersetOf(IEnumerable<CharlsonCondition> other)
    {
        var (o, extra) = MaskOf(other);
        return !extra && (o & ~Mask) == 0 && o != Mask;
    }

    public bool Overlaps(IEnumerable<CharlsonCondition> other) => (MaskOf(other).Mask & Mask) != 0;

    public bool SetEquals(IEnumerable<CharlsonCondition> other)
    {
        var (o, extra) = MaskOf(other);
        return !extra && o == Mask;
    }

    public override string ToString() => "{" + string.Join(", ", this) + "}";

    /// <summary>The mask of <paramref name="other"/>, and whether it holds values that are not conditions.</summary>
    private static (uint Mask, bool Extra) MaskOf(IEnumerable<CharlsonCondition> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other is CharlsonConditionSet set)
        {
            return (set.Mask, false);
        }

        var mask = 0u;
        var extra = false;
        foreach (var c in other)
        {
            if ((uint)c < Charlson.ConditionCount)
            {
                mask |= Charlson.Bit(c);
            }
            else
            {
                extra = true;
            }
        }

        return (mask, extra);
    }
}
