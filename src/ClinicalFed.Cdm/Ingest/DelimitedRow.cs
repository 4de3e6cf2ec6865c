using System.Buffers.Text;
using System.Text;

namespace ClinicalFed.Cdm.Ingest;

/// <summary>Splits one delimited line into field ranges without allocating (RFC 4180 quotes are honoured).</summary>
public sealed class DelimitedRow
{
    private Range[] _fields = new Range[64];
    private byte[] _line = new byte[1024];
    private int _length;

    public int Count { get; private set; }

    public void Load(ReadOnlySpan<byte> line, byte delimiter)
    {
        if (_line.Length < line.Length) _line = new byte[Math.Max(line.Length, _line.Length * 2)];
        line.CopyTo(_line);
        _length = line.Length;
        Count = 0;
        int i = 0;
        while (true)
        {
            if (Count == _fields.Length) Array.Resize(ref _fields, _fields.Length * 2);
            if (i < _length && _line[i] == '"')
            {
                int start = ++i;
                while (i < _length && !(_line[i] == '"' && (i + 1 >= _length || _line[i + 1] != '"'))) i += _line[i] == '"' ? 2 : 1;
                _fields[Count++] = new Range(start, Math.Min(i, _length));
                i++; // closing quote
                int next = _line.AsSpan(Math.Min(i, _length), _length - Math.Min(i, _length)).IndexOf(delimiter);
                if (next < 0) break;
                i += next + 1;
                continue;
            }
            int rel = _line.AsSpan(i, _length - i).IndexOf(delimiter);
            if (rel < 0) { _fields[Count++] = new Range(i, _length); break; }
            _fields[Count++] = new Range(i, i + rel);
            i += rel + 1;
        }
    }

    public ReadOnlySpan<byte> this[int index] => _line.AsSpan(0, _length)[_fields[index]];

    public string GetString(int index) => Encoding.UTF8.GetString(this[index]);

    public bool Equals(int index, string value)
    {
        var f = this[index];
        if (f.Length != value.Length) return false;
        for (int i = 0; i < f.Length; i++) if (f[i] != value[i]) return false;
        return true;
    }

    public static bool TryParseDecimal(ReadOnlySpan<byte> s, out decimal value)
    {
        s = s.Trim((byte)' ');
        if (Utf8Parser.TryParse(s, out value, out int used) && used == s.Length) return true;
        if (Utf8Parser.TryParse(s, out value, out used, 'E') && used == s.Length) return true;
        return false;
    }
}
