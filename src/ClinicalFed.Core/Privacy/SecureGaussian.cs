using System.Buffers.Binary;
using System.Security.Cryptography;

namespace ClinicalFed.Privacy;

/// <summary>Standard normal draws from a cryptographic generator (Box–Muller on 53-bit uniforms).</summary>
public sealed class SecureGaussian
{
    private readonly RandomNumberGenerator _rng;
    private readonly byte[] _buffer = new byte[16];
    private double? _spare;

    /// <param name="rng">The source of randomness; <see cref="RandomNumberGenerator.Create()"/> in production, injected in tests.</param>
    public SecureGaussian(RandomNumberGenerator rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        _rng = rng;
    }

    /// <summary>One N(0, 1) draw.</summary>
    public double Next()
    {
        if (_spare is { } s)
        {
            _spare = null;
            return s;
        }

        _rng.GetBytes(_buffer);
        // Uniforms in (0, 1]: 53 random bits, plus one.
        double u1 = ((BinaryPrimitives.ReadUInt64LittleEndian(_buffer) >> 11) + 1) * (1.0 / (1UL << 53));
        double u2 = (BinaryPrimitives.ReadUInt64LittleEndian(_buffer.AsSpan(8)) >> 11) * (1.0 / (1UL << 53));
        double r = Math.Sqrt(-2 * Math.Log(u1));
        _spare = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>A uniformly random non-negative int (for secret sampler seeds).</summary>
    public int NextSeed()
    {
        _rng.GetBytes(_buffer.AsSpan(0, 4));
        return (int)(BinaryPrimitives.ReadUInt32LittleEndian(_buffer) & int.MaxValue);
    }
}
