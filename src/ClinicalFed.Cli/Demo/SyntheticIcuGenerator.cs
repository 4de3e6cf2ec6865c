using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace ClinicalFed.Cli.Demo;

/// <summary>
/// One synthetic hospital site for the demo. Sites differ (non-IID) in size, sepsis prevalence, how much is measured,
/// case mix (age, sex, medical/surgical unit mix, acuity) and a systematic measurement bias (thermometer offset).
/// </summary>
public sealed record SyntheticSiteProfile
{
    /// <summary>0–9. Patient numbers are <c>SiteIndex × 100000 + n</c>, so ids are unique across sites.</summary>
    public required int SiteIndex { get; init; }

    /// <summary>Written verbatim into the <c>hospital</c> column; no commas, quotes or line breaks.</summary>
    public required string Name { get; init; }

    /// <summary>Number of ICU stays (one per patient), 1–99,999.</summary>
    public required int Patients { get; init; }

    /// <summary>Share of patients who develop sepsis during the stay (0–1).</summary>
    public required double SepsisPrevalence { get; init; }

    /// <summary>Multiplies the odds that a measurement is missing in a given hour (1 = reference site, &gt; 1 = sparser).</summary>
    public double MissingnessMultiplier { get; init; } = 1.0;

    /// <summary>Extra multiplier on the missing odds of laboratory values only (on top of <see cref="MissingnessMultiplier"/>).</summary>
    public double LabMissingnessMultiplier { get; init; } = 1.0;

    /// <summary>False for a site whose monitors do not export end-tidal CO2: the EtCO2 column is then entirely empty.</summary>
    public bool RecordsEtCO2 { get; init; } = true;

    /// <summary>Mean patient age in years (individual ages are clipped to 18–100).</summary>
    public double AgeMean { get; init; } = 62.0;

    /// <summary>Share of male patients (Gender = 1).</summary>
    public double MaleShare { get; init; } = 0.56;

    /// <summary>Share of stays in a medical ICU (Unit1 = 1).</summary>
    public double MicuShare { get; init; } = 0.5;

    /// <summary>Share of stays in a surgical ICU (Unit2 = 1). The remainder has an unknown unit (Unit1 and Unit2 empty).</summary>
    public double SicuShare { get; init; } = 0.4;

    /// <summary>Systematic offset added to every temperature the site records (°C), e.g. tympanic instead of core thermometers.</summary>
    public double TempOffsetCelsius { get; init; }

    /// <summary>Shift of the patients' latent acuity in standard deviations (sicker or healthier case mix).</summary>
    public double AcuityShift { get; init; }
}

/// <summary>What <see cref="SyntheticIcuGenerator.Generate"/> wrote.</summary>
/// <param name="NonEmptyMeasurementCells">Non-empty cells among the 34 time-varying columns HR..Platelets.</param>
/// <param name="NonEmptyCellsByColumn">The same count per column, in <see cref="SyntheticIcuGenerator.MeasurementColumns"/> order.</param>
public sealed record GeneratedSite(
    string Path,
    string Hospital,
    int Patients,
    long Rows,
    int SepticPatients,
    long PositiveRows,
    long NonEmptyMeasurementCells,
    IReadOnlyList<long> NonEmptyCellsByColumn);

/// <summary>ICU unit of a synthetic stay, written as Unit1/Unit2.</summary>
internal enum SyntheticUnit { Unknown, Micu, Sicu }

/// <summary>The per-stay facts drawn before the hourly physiology; exposed to tests to check labels against the onset.</summary>
internal sealed record SyntheticPatientPlan(
    int Number,
    string Id,
    int StayHours,
    int FirstIcuLos,
    int? OnsetHour,
    double Age,
    int Gender,
    SyntheticUnit Unit,
    double HospAdmTime)
{
    public bool IsSeptic => OnsetHour.HasValue;

    /// <summary>PhysioNet 2019 convention: label 1 from six hours before onset onwards.</summary>
    public bool Label(int hour) => OnsetHour is int onset && hour >= onset - SyntheticIcuGenerator.LabelLeadHours;
}

/// <summary>
/// Seeded generator of synthetic ICU stays in the layout of the PhysioNet/CinC 2019 sepsis challenge "long CSV" export
/// (one gzip-compressed CSV per hospital, one row per ICU hour). Contains no real patient data.
/// </summary>
public static class SyntheticIcuGenerator
{
    public const string Header =
        "patient_id,hospital,hour,HR,O2Sat,Temp,SBP,MAP,DBP,Resp,EtCO2,BaseExcess,HCO3,FiO2,pH,PaCO2,SaO2,AST,BUN," +
        "Alkalinephos,Calcium,Chloride,Creatinine,Bilirubin_direct,Glucose,Lactate,Magnesium,Phosphate,Potassium," +
        "Bilirubin_total,TroponinI,Hct,Hgb,PTT,WBC,Fibrinogen,Platelets,Age,Gender,Unit1,Unit2,HospAdmTime,ICULOS,SepsisLabel";

    /// <summary>Rows are labelled positive from this many hours before sepsis onset.</summary>
    public const int LabelLeadHours = 6;

    public const int MinStayHours = 8;
    public const int MaxStayHours = 120;

    /// <summary>Index of the first time-varying column (HR) in <see cref="Columns"/>.</summary>
    public const int FirstMeasurementColumn = 3;

    public static IReadOnlyList<string> Columns { get; } = Header.Split(',');

    /// <summary>The 34 time-varying columns HR..Platelets.</summary>
    public static IReadOnlyList<string> MeasurementColumns { get; } = Header.Split(',')[FirstMeasurementColumn..(FirstMeasurementColumn + MeasureCount)];

    /// <summary>Four contrasting sites: a large academic MICU, a community hospital, a surgical centre and a small rural site.</summary>
    public static IReadOnlyList<SyntheticSiteProfile> DefaultSites(int patientsPerSite)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(patientsPerSite, 4);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(patientsPerSite, 99_999);
        return
        [
            new SyntheticSiteProfile
            {
                SiteIndex = 1, Name = "academic_micu", Patients = patientsPerSite, SepsisPrevalence = 0.09,
                MissingnessMultiplier = 0.8, LabMissingnessMultiplier = 0.75, AgeMean = 60, MaleShare = 0.58,
                MicuShare = 0.8, SicuShare = 0.2, TempOffsetCelsius = 0.0, AcuityShift = 0.3,
            },
            new SyntheticSiteProfile
            {
                SiteIndex = 2, Name = "community", Patients = patientsPerSite, SepsisPrevalence = 0.04,
                MissingnessMultiplier = 1.15, LabMissingnessMultiplier = 1.0, RecordsEtCO2 = false, AgeMean = 67,
                MaleShare = 0.52, MicuShare = 0.45, SicuShare = 0.25, TempOffsetCelsius = 0.25, AcuityShift = -0.1,
            },
            new SyntheticSiteProfile
            {
                SiteIndex = 3, Name = "surgical_centre", Patients = patientsPerSite, SepsisPrevalence = 0.06,
                MissingnessMultiplier = 1.0, LabMissingnessMultiplier = 2.2, AgeMean = 58, MaleShare = 0.63,
                MicuShare = 0.1, SicuShare = 0.9, TempOffsetCelsius = -0.15, AcuityShift = 0.1,
            },
            new SyntheticSiteProfile
            {
                SiteIndex = 4, Name = "rural", Patients = Math.Max(4, patientsPerSite / 4), SepsisPrevalence = 0.03,
                MissingnessMultiplier = 1.4, LabMissingnessMultiplier = 1.3, AgeMean = 71, MaleShare = 0.48,
                MicuShare = 0.3, SicuShare = 0.1, TempOffsetCelsius = 0.1, AcuityShift = -0.2,
            },
        ];
    }

    /// <summary>Patient id of stay <paramref name="patientNumber"/> (1-based) of a site: <c>p</c> + 6 digits.</summary>
    public static string PatientId(SyntheticSiteProfile profile, int patientNumber)
    {
        ArgumentNullException.ThrowIfNull(profile);
        return "p" + (profile.SiteIndex * 100_000 + patientNumber).ToString("D6", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Writes the site's stays to <paramref name="outputPath"/> (gzip CSV, streaming) and returns the counts.
    /// The same profile and seed always produce a byte-identical file; different sites draw different patients from the same seed.
    /// </summary>
    public static GeneratedSite Generate(SyntheticSiteProfile profile, int seed, string outputPath)
    {
        Validate(profile);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputPath);

        var fullPath = Path.GetFullPath(outputPath);
        var directory = Path.GetDirectoryName(fullPath);
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        var tempPath = fullPath + ".partial";

        var byColumn = new long[MeasureCount];
        long rows = 0, positiveRows = 0;
        var septic = 0;
        try
        {
            using (var file = new FileStream(tempPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var gzip = new GZipStream(file, CompressionLevel.Optimal))
            using (var writer = new StreamWriter(gzip, new UTF8Encoding(false), 1 << 16))
            {
                writer.NewLine = "\n";
                writer.Write(Header);
                writer.Write('\n');
                var stay = new StaySimulator(profile, byColumn);
                for (var n = 1; n <= profile.Patients; n++)
                {
                    var plan = PlanPatient(profile, seed, n, out var rng);
                    if (plan.IsSeptic) septic++;
                    stay.Write(plan, rng, writer, ref rows, ref positiveRows);
                }
            }
            File.Move(tempPath, fullPath, overwrite: true);
        }
        catch
        {
            try { File.Delete(tempPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }

        return new GeneratedSite(fullPath, profile.Name, profile.Patients, rows, septic, positiveRows, byColumn.Sum(), Array.AsReadOnly(byColumn));
    }

    /// <summary>The plan (stay length, onset, demographics) of stay <paramref name="patientNumber"/> as <see cref="Generate"/> draws it.</summary>
    internal static SyntheticPatientPlan PlanPatient(SyntheticSiteProfile profile, int seed, int patientNumber)
    {
        Validate(profile);
        ArgumentOutOfRangeException.ThrowIfLessThan(patientNumber, 1);
        return PlanPatient(profile, seed, patientNumber, out _);
    }

    private static SyntheticPatientPlan PlanPatient(SyntheticSiteProfile profile, int seed, int patientNumber, out PatientRandom rng)
    {
        rng = new PatientRandom(DeriveSeed(seed, profile.SiteIndex, patientNumber));
        var septic = rng.NextDouble() < profile.SepsisPrevalence;

        int stayHours;
        int? onset = null;
        if (septic)
        {
            // Onset hour: right-skewed, some patients already septic at ICU admission; the stay ends a few hours after onset.
            var t = (int)Math.Round(Math.Exp(Math.Log(20) + 0.8 * rng.Normal()));
            onset = Math.Clamp(t, 1, MaxStayHours - 10);
            stayHours = Math.Max(MinStayHours, onset.Value + 3 + rng.Next(0, 8));
        }
        else
        {
            var length = (int)Math.Round(Math.Exp(Math.Log(34) + 0.62 * rng.Normal()));
            stayHours = Math.Clamp(length, MinStayHours, MaxStayHours);
        }

        // ~3 % of stays enter the extract after their first ICU hour (ICULOS starts above 1, as in the real data).
        var firstIcuLos = rng.NextDouble() < 0.03 ? 2 + rng.Next(0, 23) : 1;

        var age = Math.Clamp(profile.AgeMean + (septic ? 2.0 : 0.0) + 15.5 * rng.Normal(), 18.0, 100.0);
        var gender = rng.NextDouble() < profile.MaleShare ? 1 : 0;
        var u = rng.NextDouble();
        var unit = u < profile.MicuShare ? SyntheticUnit.Micu
            : u < profile.MicuShare + profile.SicuShare ? SyntheticUnit.Sicu
            : SyntheticUnit.Unknown;
        var hospAdm = -Math.Clamp(Math.Exp(Math.Log(4.5) + 1.9 * rng.Normal()), 0.01, 3000.0);

        return new SyntheticPatientPlan(
            patientNumber, PatientId(profile, patientNumber), stayHours, firstIcuLos, onset,
            Math.Round(age, 2), gender, unit, Math.Round(hospAdm, 2));
    }

    private static void Validate(SyntheticSiteProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (profile.SiteIndex is < 0 or > 9)
            throw new ArgumentOutOfRangeException(nameof(profile), profile.SiteIndex, "SiteIndex must be 0–9 so that patient ids stay at 6 digits.");
        if (profile.Patients is < 1 or > 99_999)
            throw new ArgumentOutOfRangeException(nameof(profile), profile.Patients, "Patients must be 1–99,999.");
        if (string.IsNullOrWhiteSpace(profile.Name) || profile.Name.Length > 64 || profile.Name.AsSpan().IndexOfAny(",\"\r\n") >= 0)
            throw new ArgumentException("Site name must be 1–64 characters without comma, quote or line break.", nameof(profile));
        if (!(profile.SepsisPrevalence is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(profile), profile.SepsisPrevalence, "SepsisPrevalence must be in [0, 1].");
        if (!(profile.MissingnessMultiplier > 0) || !(profile.LabMissingnessMultiplier > 0)
            || double.IsInfinity(profile.MissingnessMultiplier) || double.IsInfinity(profile.LabMissingnessMultiplier))
            throw new ArgumentOutOfRangeException(nameof(profile), "Missingness multipliers must be positive and finite.");
        if (!(profile.MaleShare is >= 0 and <= 1) || !(profile.MicuShare is >= 0 and <= 1) || !(profile.SicuShare is >= 0 and <= 1)
            || profile.MicuShare + profile.SicuShare > 1 + 1e-9)
            throw new ArgumentOutOfRangeException(nameof(profile), "MaleShare, MicuShare and SicuShare must be shares, MicuShare + SicuShare ≤ 1.");
        if (!double.IsFinite(profile.AgeMean) || !double.IsFinite(profile.TempOffsetCelsius) || !double.IsFinite(profile.AcuityShift))
            throw new ArgumentOutOfRangeException(nameof(profile), "AgeMean, TempOffsetCelsius and AcuityShift must be finite.");
    }

    /// <summary>SplitMix64 finaliser over (seed, site, patient): stable across processes, unlike <see cref="HashCode"/>.</summary>
    private static int DeriveSeed(int seed, int site, int patient)
    {
        var z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)site * 0xD1B54A32D192ED03UL + (ulong)patient * 0x8CB92BA72F3D8DD7UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z >> 33);
    }

    /// <summary>One patient's random stream: <see cref="Random"/> with a fixed seed (deterministic), plus Box–Muller normals.</summary>
    private sealed class PatientRandom(int seed)
    {
        private readonly Random _random = new(seed);
        private double _spare;
        private bool _hasSpare;

        public double NextDouble() => _random.NextDouble();

        public int Next(int minValue, int maxValue) => _random.Next(minValue, maxValue);

        public double Normal()
        {
            if (_hasSpare)
            {
                _hasSpare = false;
                return _spare;
            }
            var radius = Math.Sqrt(-2.0 * Math.Log(1.0 - _random.NextDouble()));
            var (sin, cos) = Math.SinCos(2.0 * Math.PI * _random.NextDouble());
            _spare = radius * sin;
            _hasSpare = true;
            return radius * cos;
        }
    }

    // ---- physiology ---------------------------------------------------------------------------------------------

    private const int MeasureCount = 34;
    private const int HR = 0, O2Sat = 1, Temp = 2, SBP = 3, MAP = 4, DBP = 5, Resp = 6, EtCO2 = 7, BaseExcess = 8, HCO3 = 9,
        FiO2 = 10, PH = 11, PaCO2 = 12, SaO2 = 13, AST = 14, BUN = 15, Alkalinephos = 16, Calcium = 17, Chloride = 18,
        Creatinine = 19, BilirubinDirect = 20, Glucose = 21, Lactate = 22, Magnesium = 23, Phosphate = 24, Potassium = 25,
        BilirubinTotal = 26, TroponinI = 27, Hct = 28, Hgb = 29, PTT = 30, WBC = 31, Fibrinogen = 32, Platelets = 33;

    /// <param name="Center">Population mean (linear) or log of the median (log scale).</param>
    /// <param name="BetweenSd">SD of the patient's own baseline around <paramref name="Center"/>.</param>
    /// <param name="WithinSd">Stationary SD of the hour-to-hour AR(1) deviation, with lag-1 correlation <paramref name="Phi"/>.</param>
    /// <param name="Sepsis">Shift at sepsis onset (reached gradually over the preceding ~12 h).</param>
    /// <param name="Episode">Shift at the peak of a non-septic deterioration episode (fever, bleeding, pain...).</param>
    /// <param name="Acuity">Shift per SD of latent acuity.</param>
    /// <param name="Sicu">Shift for surgical-ICU stays.</param>
    private readonly record struct Measure(
        int Decimals, bool Log, double Center, double BetweenSd, double WithinSd, double Phi, double Min, double Max,
        double Sepsis, double Episode, double Acuity, double Sicu, double OutlierLow, double OutlierHigh);

    private static readonly Measure[] Measures =
    [
        /* HR */              new(0, false, 84, 11, 7, 0.85, 30, 220, 17, 14, 4, -3, 0, 400),
        /* O2Sat */           new(0, false, 97.4, 1.4, 1.6, 0.6, 60, 100, -1.6, -1.0, -0.6, 0.3, 0, 150),
        /* Temp */            new(2, false, 36.95, 0.35, 0.35, 0.85, 32, 42, 1.1, 0.9, 0.1, 0.1, 0, 98.6),
        /* SBP */             new(0, false, 122, 14, 10, 0.8, 50, 250, -17, -9, -5, 4, 0, 400),
        /* MAP (derived) */   new(2, false, 0, 0, 1.5, 0, 30, 180, 0, 0, 0, 0, 0, 350),
        /* DBP */             new(0, false, 63, 8, 6.5, 0.8, 20, 150, -9, -5, -3, 1, 0, 300),
        /* Resp */            new(0, false, 18.5, 3.2, 3.2, 0.7, 5, 60, 6, 4, 1.5, -1, 0, 150),
        /* EtCO2 */           new(0, false, 34, 4.5, 3, 0.8, 10, 80, -3, -1.5, -1, 0, 0, 200),
        /* BaseExcess */      new(0, false, -0.5, 3.3, 1.2, 0.93, -30, 30, -3.5, -1, -1, 0, -99, 99),
        /* HCO3 */            new(0, false, 24, 3.2, 1.1, 0.93, 5, 50, -3.5, -1, -1, 0, 0, 200),
        /* FiO2 */            new(2, false, 0.45, 0.13, 0.06, 0.9, 0.21, 1.0, 0.08, 0.03, 0.05, 0, 0, 50),
        /* pH */              new(2, false, 7.39, 0.045, 0.025, 0.9, 6.8, 7.7, -0.06, -0.01, -0.01, 0, 0, 74),
        /* PaCO2 */           new(0, false, 41, 7, 4, 0.9, 15, 100, -4, -1, 0, 0, 0, 500),
        /* SaO2 */            new(0, false, 95.5, 2.5, 1.8, 0.8, 60, 100, -2, -0.5, -0.6, 0, 0, 180),
        /* AST */             new(0, true, Math.Log(40), 0.8, 0.15, 0.95, 5, 10000, 0.4, 0, 0.15, 0.1, 0, 100000),
        /* BUN */             new(0, true, Math.Log(19), 0.55, 0.08, 0.95, 2, 250, 0.25, 0, 0.15, -0.1, 0, 2000),
        /* Alkalinephos */    new(0, true, Math.Log(85), 0.45, 0.08, 0.95, 10, 2000, 0.15, 0, 0.05, 0, 0, 20000),
        /* Calcium */         new(1, false, 8.4, 0.6, 0.25, 0.93, 4, 15, -0.4, 0, -0.1, -0.2, 0, 60),
        /* Chloride */        new(0, false, 105, 4, 1.8, 0.93, 70, 140, 1.5, 0, 0, 1, 0, 400),
        /* Creatinine */      new(2, true, Math.Log(1.0), 0.55, 0.08, 0.95, 0.1, 20, 0.35, 0.05, 0.15, -0.1, 0, 200),
        /* Bilirubin_direct */new(1, true, Math.Log(0.3), 0.9, 0.15, 0.95, 0.1, 40, 0.4, 0, 0.1, 0, 0, 300),
        /* Glucose */         new(0, true, Math.Log(128), 0.22, 0.16, 0.8, 20, 1000, 0.12, 0.05, 0.05, 0.05, 0, 5000),
        /* Lactate */         new(1, true, Math.Log(1.5), 0.38, 0.18, 0.9, 0.3, 25, 0.8, 0.25, 0.15, 0, 0, 300),
        /* Magnesium */       new(1, false, 2.0, 0.25, 0.15, 0.9, 0.5, 5, 0, 0, 0, 0, 0, 40),
        /* Phosphate */       new(1, false, 3.5, 0.9, 0.35, 0.92, 0.5, 15, 0.4, 0, 0.2, 0, 0, 90),
        /* Potassium */       new(1, false, 4.1, 0.38, 0.28, 0.85, 2, 8, 0.1, 0, 0.05, 0, 0, 40),
        /* Bilirubin_total */ new(1, true, Math.Log(0.8), 0.8, 0.12, 0.95, 0.1, 50, 0.4, 0, 0.1, 0, 0, 500),
        /* TroponinI */       new(2, true, Math.Log(0.06), 1.4, 0.25, 0.95, 0.01, 100, 0.5, 0.2, 0.3, 0, 5000, 5000),
        /* Hct */             new(1, false, 31, 4.3, 1.3, 0.93, 12, 60, -1.5, 0, -1, -3, 0, 100),
        /* Hgb (derived) */   new(1, false, 0, 0, 0.25, 0, 4, 20, 0, 0, 0, 0, 0, 100),
        /* PTT */             new(1, true, Math.Log(33), 0.3, 0.1, 0.9, 15, 150, 0.2, 0, 0.05, 0, 0, 1000),
        /* WBC */             new(1, true, Math.Log(10), 0.38, 0.1, 0.93, 0.3, 150, 0.5, 0.2, 0.08, 0.1, 0, 2000),
        /* Fibrinogen */      new(0, false, 300, 100, 25, 0.93, 50, 1000, 40, 0, 0, 0, 0, 9000),
        /* Platelets */       new(0, true, Math.Log(190), 0.45, 0.07, 0.95, 5, 1500, -0.3, 0, -0.05, -0.1, 0, 20000),
    ];

    /// <summary>Scales every septic shift; tuned so an hourly logistic model on forward-filled values reaches AUROC ≈ 0.8.</summary>
    private const double SepsisEffectScale = 0.6;

    /// <summary>Per-variable multipliers of the septic shift for three response phenotypes (a mixture, so not log-linear).</summary>
    private static readonly double[] Inflammatory = Phenotype(hr: 1.2, temp: 1.2, resp: 1.2, pressure: 0.4, lactate: 0.5, wbc: 1.3, organ: 0.7);
    private static readonly double[] Shock = Phenotype(hr: 1.0, temp: 0.3, resp: 1.0, pressure: 2.0, lactate: 2.0, wbc: 0.8, organ: 1.5);
    private static readonly double[] Cold = Phenotype(hr: 0.8, temp: -1.3, resp: 1.0, pressure: 1.0, lactate: 1.2, wbc: -1.2, organ: 1.0);

    private static double[] Phenotype(double hr, double temp, double resp, double pressure, double lactate, double wbc, double organ)
    {
        var f = new double[MeasureCount];
        Array.Fill(f, organ);
        f[HR] = hr;
        f[Temp] = temp;
        f[Resp] = resp;
        f[SBP] = f[DBP] = f[MAP] = pressure;
        f[Lactate] = lactate;
        f[BaseExcess] = f[HCO3] = f[PH] = lactate;
        f[WBC] = wbc;
        f[O2Sat] = f[SaO2] = f[FiO2] = f[PaCO2] = f[EtCO2] = resp;
        return f;
    }

    /// <summary>Rough share of recorded values replaced by an implausible one (data-quality checks should find them).</summary>
    private const double OutlierRate = 1e-4;

    /// <summary>
    /// A laboratory panel drawn in a given hour with probability <paramref name="BaseRate"/> (before site adjustment); the odds of a
    /// draw are multiplied at ICU admission, for ventilated patients and as sepsis (or a mimicking episode) develops — missingness is
    /// informative, as in real ICU data. Each member of a drawn panel is reported with its own probability.
    /// </summary>
    private sealed record Panel(
        double BaseRate, double AdmissionBoost, double VentilatedBoost, double SepsisBoost, (int Measure, double Inclusion)[] Members)
    {
        /// <summary>Charted only for mechanically ventilated patients (ventilator settings).</summary>
        public bool VentilatedOnly { get; init; }
    }

    private static readonly Panel[] Panels =
    [
        /* blood gas */      new(0.045, 2, 4, 1.5, [(PH, 0.97), (PaCO2, 0.97), (BaseExcess, 0.8), (HCO3, 0.45), (SaO2, 0.5), (FiO2, 0.7), (Hct, 0.15)]),
        /* chemistry */      new(0.07, 5, 1, 1.5, [(BUN, 1.0), (Creatinine, 0.92), (Chloride, 0.62), (Potassium, 0.93), (Glucose, 0.9),
                                                   (Calcium, 0.85), (HCO3, 0.55), (Magnesium, 0.88), (Phosphate, 0.55)]),
        /* blood count */    new(0.07, 5, 1, 3, [(Hct, 1.0), (Hgb, 0.95), (WBC, 0.9), (Platelets, 0.85)]),
        /* liver */          new(0.017, 5, 1, 1.5, [(AST, 1.0), (Alkalinephos, 0.97), (BilirubinTotal, 0.97), (BilirubinDirect, 0.35)]),
        /* coagulation */    new(0.03, 5, 1, 1.5, [(PTT, 0.96), (Fibrinogen, 0.25)]),
        /* lactate */        new(0.022, 5, 2, 3, [(Lactate, 1.0)]),
        /* troponin */       new(0.01, 5, 1, 1.5, [(TroponinI, 1.0)]),
        /* bedside glucose */new(0.09, 1, 1, 1.5, [(Glucose, 1.0)]),
        /* potassium check */new(0.025, 1, 1, 1.5, [(Potassium, 1.0)]),
        /* ventilator FiO2 */new(0.08, 1, 1, 0, [(FiO2, 1.0)]) { VentilatedOnly = true },
    ];

    /// <summary>Probability that <paramref name="pObserved"/> stays observed after multiplying the odds of missing by <paramref name="missingOdds"/>.</summary>
    private static double ScaleMissingOdds(double pObserved, double missingOdds) =>
        pObserved / (pObserved + (1.0 - pObserved) * missingOdds);

    /// <summary>SD of the AR(1) innovation that keeps each deviation's stationary SD at <see cref="Measure.WithinSd"/>.</summary>
    private static readonly double[] Innovations = Measures.Select(m => Math.Sqrt(1 - m.Phi * m.Phi) * m.WithinSd).ToArray();

    /// <summary>Simulates and writes one stay at a time; holds only per-stay state (bounded memory).</summary>
    private sealed class StaySimulator(SyntheticSiteProfile profile, long[] byColumn)
    {
        private readonly double[] _baseline = new double[MeasureCount];
        private readonly double[] _ar = new double[MeasureCount];
        private readonly double[] _value = new double[MeasureCount];
        private readonly bool[] _observed = new bool[MeasureCount];
        private readonly double[] _sepsisEffect = new double[MeasureCount];
        private readonly char[] _line = new char[1024];
        private readonly string _hospital = profile.Name;
        private readonly double _vitalMissingOdds = profile.MissingnessMultiplier;
        private readonly double _labMissingOdds = profile.MissingnessMultiplier * profile.LabMissingnessMultiplier;
        private int _length;

        public void Write(SyntheticPatientPlan plan, PatientRandom rng, StreamWriter writer, ref long rows, ref long positiveRows)
        {
            var acuity = profile.AcuityShift + (plan.IsSeptic ? 0.5 : 0.0) + rng.Normal();
            var sicu = plan.Unit == SyntheticUnit.Sicu ? 1.0 : 0.0;
            var ventilated = rng.NextDouble() < 1.0 / (1.0 + Math.Exp(-(-1.3 + 0.8 * acuity + 0.5 * sicu)));

            // Heterogeneous septic response: a phenotype (inflammatory, shock, cold) scales each variable's shift, the overall
            // strength varies between patients and the elderly mount a blunted heart-rate and fever response.
            var strength = 0.4 + 1.2 * rng.NextDouble();
            var rampHours = 9 + rng.Next(0, 7);
            var phenotypeDraw = rng.NextDouble();
            var phenotype = phenotypeDraw < 0.45 ? Inflammatory : phenotypeDraw < 0.75 ? Shock : Cold;
            var blunted = plan.Age >= 75 ? 0.5 : 1.0;
            for (var i = 0; i < MeasureCount; i++)
            {
                var m = Measures[i];
                _baseline[i] = m.Center + m.BetweenSd * rng.Normal() + m.Acuity * acuity + m.Sicu * sicu;
                _ar[i] = m.WithinSd * rng.Normal();
                _sepsisEffect[i] = SepsisEffectScale * strength * m.Sepsis * phenotype[i] * (i is HR or Temp ? blunted : 1.0);
            }

            // Non-septic deteriorations (fever from other causes, bleeding, pain, agitation) that mimic sepsis for a while.
            var hasEpisode = rng.NextDouble() < (plan.IsSeptic ? 0.15 : 0.4);
            var episodeStart = rng.Next(0, plan.StayHours);
            var episodeLength = 6 + rng.Next(0, 19);
            var episodeAmplitude = 0.4 + 0.6 * rng.NextDouble();

            for (var hour = 0; hour < plan.StayHours; hour++)
            {
                var g = SepsisProgress(plan.OnsetHour, rampHours, hour);
                var e = hasEpisode && hour >= episodeStart && hour < episodeStart + episodeLength
                    ? episodeAmplitude * Math.Sin(Math.PI * (hour - episodeStart + 0.5) / episodeLength)
                    : 0.0;
                Simulate(rng, g, e);
                Observe(rng, hour, g, e, ventilated);

                var label = plan.Label(hour);
                WriteRow(writer, plan, hour, label);
                rows++;
                if (label) positiveRows++;
            }
        }

        private static double SepsisProgress(int? onsetHour, int rampHours, int hour)
        {
            if (onsetHour is not int onset) return 0.0;
            var x = hour - (onset - rampHours);
            if (x <= 0) return 0.0;
            if (hour <= onset) return Math.Pow((double)x / rampHours, 1.5);
            return Math.Min(1.3, 1.0 + 0.04 * (hour - onset));
        }

        private void Simulate(PatientRandom rng, double g, double e)
        {
            for (var i = 0; i < MeasureCount; i++)
            {
                var m = Measures[i];
                if (i is MAP or Hgb) continue;
                _ar[i] = m.Phi * _ar[i] + Innovations[i] * rng.Normal();
                var latent = _baseline[i] + _sepsisEffect[i] * g + m.Episode * e + _ar[i];
                _value[i] = Math.Clamp(m.Log ? Math.Exp(latent) : latent, m.Min, m.Max);
            }
            _value[MAP] = Math.Clamp((_value[SBP] + 2 * _value[DBP]) / 3 + Measures[MAP].WithinSd * rng.Normal(), Measures[MAP].Min, Measures[MAP].Max);
            _value[Hgb] = Math.Clamp(_value[Hct] / 2.98 + Measures[Hgb].WithinSd * rng.Normal(), Measures[Hgb].Min, Measures[Hgb].Max);
            _value[Temp] += profile.TempOffsetCelsius;
        }

        private void Observe(PatientRandom rng, int hour, double g, double e, bool ventilated)
        {
            Array.Clear(_observed);
            var v = _vitalMissingOdds;
            _observed[HR] = rng.NextDouble() < ScaleMissingOdds(0.90, v);
            _observed[O2Sat] = rng.NextDouble() < ScaleMissingOdds(0.87, v);
            _observed[Temp] = rng.NextDouble() < ScaleMissingOdds(0.34, v);
            if (rng.NextDouble() < ScaleMissingOdds(0.875, v))
            {
                _observed[MAP] = true;
                _observed[SBP] = rng.NextDouble() < 0.976;
                _observed[DBP] = rng.NextDouble() < 0.79;
            }
            _observed[Resp] = rng.NextDouble() < ScaleMissingOdds(0.85, v);
            var etco2Draw = rng.NextDouble();
            _observed[EtCO2] = profile.RecordsEtCO2 && ventilated && etco2Draw < ScaleMissingOdds(0.2, v);

            foreach (var panel in Panels)
            {
                var draw = rng.NextDouble();
                if (panel.VentilatedOnly && !ventilated) continue;
                var p = ScaleMissingOdds(panel.BaseRate, _labMissingOdds);
                var boost = 1.0 + panel.SepsisBoost * Math.Min(g, 1.0) + 1.5 * e;
                if (hour == 0) boost *= panel.AdmissionBoost;
                if (ventilated) boost *= panel.VentilatedBoost;
                p = ScaleMissingOdds(p, 1.0 / boost);
                if (draw >= p) continue;
                foreach (var (measure, inclusion) in panel.Members)
                    if (rng.NextDouble() < inclusion) _observed[measure] = true;
            }

            // A few implausible recorded values (HR 0 or 400, Temp charted in °F, pH without its decimal point...).
            for (var i = 0; i < MeasureCount; i++)
            {
                if (_observed[i] && rng.NextDouble() < OutlierRate)
                    _value[i] = rng.NextDouble() < 0.5 ? Measures[i].OutlierLow : Measures[i].OutlierHigh;
            }
        }

        private void WriteRow(StreamWriter writer, SyntheticPatientPlan plan, int hour, bool label)
        {
            _length = 0;
            Append(plan.Id);
            Append(',');
            Append(_hospital);
            Append(',');
            AppendLong(hour);
            for (var i = 0; i < MeasureCount; i++)
            {
                Append(',');
                if (!_observed[i]) continue;
                byColumn[i]++;
                AppendFixed(_value[i], Measures[i].Decimals);
            }
            Append(',');
            AppendFixed(plan.Age, 2);
            Append(',');
            AppendLong(plan.Gender);
            Append(',');
            if (plan.Unit != SyntheticUnit.Unknown) Append(plan.Unit == SyntheticUnit.Micu ? '1' : '0');
            Append(',');
            if (plan.Unit != SyntheticUnit.Unknown) Append(plan.Unit == SyntheticUnit.Sicu ? '1' : '0');
            Append(',');
            AppendFixed(plan.HospAdmTime, 2);
            Append(',');
            AppendLong(plan.FirstIcuLos + hour);
            Append(',');
            Append(label ? '1' : '0');
            Append('\n');
            writer.Write(_line, 0, _length);
        }

        /// <summary>
        /// Writes <paramref name="value"/> rounded (half away from zero) to <paramref name="decimals"/> places, invariant culture,
        /// without trailing zeros and never as "-0".
        /// </summary>
        private void AppendFixed(double value, int decimals)
        {
            var scale = decimals switch { 0 => 1L, 1 => 10L, _ => 100L };
            var scaled = (long)Math.Round(value * scale, MidpointRounding.AwayFromZero);
            if (scaled < 0)
            {
                Append('-');
                scaled = -scaled;
            }
            AppendLong(scaled / scale);
            var fraction = scaled % scale;
            if (fraction == 0) return;
            var digits = decimals;
            while (fraction % 10 == 0)
            {
                fraction /= 10;
                digits--;
            }
            Append('.');
            for (var k = digits - 1; k >= 0; k--)
            {
                _line[_length + k] = (char)('0' + (int)(fraction % 10));
                fraction /= 10;
            }
            _length += digits;
        }

        private void AppendLong(long value)
        {
            if (!value.TryFormat(_line.AsSpan(_length), out var written, default, CultureInfo.InvariantCulture))
                throw new InvalidOperationException("Row buffer too small.");
            _length += written;
        }

        private void Append(char c) => _line[_length++] = c;

        private void Append(string s)
        {
            s.CopyTo(_line.AsSpan(_length));
            _length += s.Length;
        }
    }
}
