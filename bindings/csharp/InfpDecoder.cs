// infp-sdk wire protocol decoder: the hello and motion messages, in plain C#.
//
// No reflection, no code generation, no dependency beyond System: it runs under Mono, .NET,
// Unity (Mono and IL2CPP) and Godot. The one copy of this file is shared by the Unity package
// (as the com.infp.protocol package) and the Godot addon; CI compiles it with Mono's mcs and
// runs it against the conformance vectors in tests/vectors/.
//
// Protocol (docs/protocol.md): a ZeroMQ message is [topic, payload]; the topic is
// "<kind>.<agent>", the payload a msgpack map. Unknown keys are ignored; a message whose "v" is
// newer than ProtocolVersion is dropped; any msgpack number may stand where a number is expected.
//
// Errors: every problem throws InfpProtocolException with a Code, the same codes the Python
// reference decoder uses:
//   "malformed"            not msgpack, truncated, trailing bytes, not a map, lengths past the
//                          end of the payload, nesting deeper than MaxDepth, a non-string map key
//   "unsupported_version"  v newer than ProtocolVersion
//   "invalid"              a required key missing or of the wrong type; or, given the
//                          publisher's hello, a latent of other than 4 * latent_size bytes or a
//                          blendshape count other than hello.blendshapes.Length
// The whole payload is checked before anything is allocated for it, so an absurd length costs
// nothing, and every read is bounds-checked.
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace Infp.Protocol
{
    /// <summary>A payload that cannot be decoded. Code: malformed | invalid | unsupported_version.</summary>
    public sealed class InfpProtocolException : Exception
    {
        public readonly string Code;

        public InfpProtocolException(string code, string message) : base(message)
        {
            Code = code;
        }
    }

    /// <summary>Topic hello.&lt;agent&gt;: what a subscriber needs to read motion.</summary>
    public sealed class HelloMessage
    {
        public int V;
        public string Agent;
        /// <summary>infp-sdk version of the publisher.</summary>
        public string Sdk;
        /// <summary>Rate of motion messages (frames per second).</summary>
        public double Fps;
        /// <summary>Names of the values in MotionMessage.Blendshapes, in order (ARKit names).</summary>
        public string[] Blendshapes;
        /// <summary>Number of float32 values in MotionMessage.Latent.</summary>
        public int LatentSize;
        public string MotionSpace = "rig";
        public string[] Head = { "yaw", "pitch", "roll", "x", "y", "z" };
        public string[] Gaze = { "left_yaw", "left_pitch", "right_yaw", "right_pitch" };
        /// <summary>Units and axes, as prose (empty if the publisher sent none).</summary>
        public Dictionary<string, string> Conventions = new Dictionary<string, string>();
        /// <summary>Control socket endpoint, or null.</summary>
        public string Control;
        /// <summary>Audio input socket endpoint, or null.</summary>
        public string Audio;
        /// <summary>"jpeg" or "rgb" when frame.&lt;agent&gt; messages are published, else null.</summary>
        public string FrameFormat;
    }

    /// <summary>Topic motion.&lt;agent&gt;: one frame of motion.</summary>
    public sealed class MotionMessage
    {
        public int V;
        public string Agent;
        /// <summary>Publisher's message counter, +1 per motion message: a gap means drops.</summary>
        public long Seq;
        /// <summary>Frame number on the agent's clock (0 after a reset).</summary>
        public long Index;
        /// <summary>Media time of the frame's centre (s).</summary>
        public double T;
        /// <summary>ARKit weights 0..1, in the order of HelloMessage.Blendshapes.</summary>
        public float[] Blendshapes;
        /// <summary>Yaw, pitch, roll (rad, right-handed: +yaw to the avatar's left, +pitch chin
        /// down, +roll towards its right shoulder), then x, y, z (m) from the rest pose.</summary>
        public float[] Head;
        /// <summary>Left yaw, left pitch, right yaw, right pitch (rad), signs as Head.</summary>
        public float[] Gaze;
        /// <summary>0..1: how much the frame is driven by the agent's own speech.</summary>
        public float Speaking;
        /// <summary>float32 little-endian, HelloMessage.LatentSize values.</summary>
        public byte[] Latent;

        /// <summary>Latent as floats (a trailing partial value is ignored).</summary>
        public float[] LatentValues()
        {
            var values = new float[Latent.Length / 4];
            for (int i = 0; i < values.Length; i++)
            {
                int p = 4 * i;
                int bits = Latent[p] | (Latent[p + 1] << 8) | (Latent[p + 2] << 16) | (Latent[p + 3] << 24);
                values[i] = Bits.Single(bits);
            }
            return values;
        }
    }

    // float32 from its bits, without unsafe code and without allocating.
    [StructLayout(LayoutKind.Explicit)]
    internal struct Bits
    {
        [FieldOffset(0)] public int I;
        [FieldOffset(0)] public float F;

        public static float Single(int bits)
        {
            var b = new Bits();
            b.I = bits;
            return b.F;
        }
    }

    public static class InfpDecoder
    {
        public const int ProtocolVersion = 1;
        /// <summary>Deepest nesting of arrays and maps accepted (the Python reference's limit).</summary>
        public const int MaxDepth = 1024;

        /// <summary>The kind of a topic ("hello", "motion", "frame", ...): the part before the first dot.</summary>
        public static string TopicKind(byte[] topic)
        {
            int dot = Array.IndexOf(topic, (byte)'.');
            return Encoding.UTF8.GetString(topic, 0, dot < 0 ? topic.Length : dot);
        }

        /// <summary>The agent of a topic: the part after the first dot ("" if none).</summary>
        public static string TopicAgent(byte[] topic)
        {
            int dot = Array.IndexOf(topic, (byte)'.');
            return dot < 0 ? "" : Encoding.UTF8.GetString(topic, dot + 1, topic.Length - dot - 1);
        }

        public static HelloMessage DecodeHello(byte[] payload)
        {
            var r = new Reader(payload);
            int n = r.CheckAndOpenMap();
            var h = new HelloMessage();
            var f = new Fields();
            for (int i = 0; i < n; i++)
            {
                string key = r.ReadKey();
                try
                {
                    switch (key)
                    {
                        case "v": f.V = r.ReadVersion(); break;
                        case "agent": h.Agent = r.ReadString(key); break;
                        case "sdk": h.Sdk = r.ReadString(key); break;
                        case "fps": h.Fps = r.ReadDouble(key); f.Seen |= 1; break;
                        case "blendshapes": h.Blendshapes = r.ReadStringArray(key); break;
                        case "latent_size": h.LatentSize = r.ReadInt(key); f.Seen |= 2; break;
                        case "motion_space": h.MotionSpace = r.ReadString(key); break;
                        case "head": h.Head = r.ReadStringArray(key); break;
                        case "gaze": h.Gaze = r.ReadStringArray(key); break;
                        case "conventions": h.Conventions = r.ReadStringMap(key); break;
                        case "control": h.Control = r.ReadOptionalString(key); break;
                        case "audio": h.Audio = r.ReadOptionalString(key); break;
                        case "frame_format": h.FrameFormat = r.ReadOptionalString(key); break;
                        default: r.Skip(); break;
                    }
                }
                catch (WrongType e)
                {
                    f.Note(e.Message);
                    r.SkipFrom(e.Start);
                }
            }
            h.V = f.CheckVersion();
            f.Require(h.Agent, "agent");
            f.Require(h.Sdk, "sdk");
            f.Require((f.Seen & 1) != 0 ? "" : null, "fps");
            f.Require(h.Blendshapes, "blendshapes");
            f.Require((f.Seen & 2) != 0 ? "" : null, "latent_size");
            f.Require(h.MotionSpace, "motion_space");
            f.Require(h.Head, "head");
            f.Require(h.Gaze, "gaze");
            f.Require(h.Conventions, "conventions");
            f.Throw();
            return h;
        }

        /// <summary>Decode a motion payload. Pass the publisher's hello when you have one: the
        /// latent length and the blendshape count are then checked against it.</summary>
        public static MotionMessage DecodeMotion(byte[] payload, HelloMessage context)
        {
            var r = new Reader(payload);
            int n = r.CheckAndOpenMap();
            var m = new MotionMessage();
            var f = new Fields();
            for (int i = 0; i < n; i++)
            {
                string key = r.ReadKey();
                try
                {
                    switch (key)
                    {
                        case "v": f.V = r.ReadVersion(); break;
                        case "agent": m.Agent = r.ReadString(key); break;
                        case "seq": m.Seq = r.ReadLong(key); f.Seen |= 1; break;
                        case "index": m.Index = r.ReadLong(key); f.Seen |= 2; break;
                        case "t": m.T = r.ReadDouble(key); f.Seen |= 4; break;
                        case "blendshapes": m.Blendshapes = r.ReadFloatArray(key, -1); break;
                        case "head": m.Head = r.ReadFloatArray(key, 6); break;
                        case "gaze": m.Gaze = r.ReadFloatArray(key, 4); break;
                        case "speaking": m.Speaking = (float)r.ReadDouble(key); f.Seen |= 8; break;
                        case "latent": m.Latent = r.ReadBin(key); break;
                        default: r.Skip(); break;
                    }
                }
                catch (WrongType e)
                {
                    f.Note(e.Message);
                    r.SkipFrom(e.Start);
                }
            }
            m.V = f.CheckVersion();
            f.Require(m.Agent, "agent");
            f.Require((f.Seen & 1) != 0 ? "" : null, "seq");
            f.Require((f.Seen & 2) != 0 ? "" : null, "index");
            f.Require((f.Seen & 4) != 0 ? "" : null, "t");
            f.Require(m.Blendshapes, "blendshapes");
            f.Require(m.Head, "head");
            f.Require(m.Gaze, "gaze");
            f.Require((f.Seen & 8) != 0 ? "" : null, "speaking");
            f.Require(m.Latent, "latent");
            f.Throw();
            if (context != null)
            {
                if (m.Latent.Length != 4L * context.LatentSize)
                    throw new InfpProtocolException("invalid", "latent has " + m.Latent.Length +
                        " bytes; hello.latent_size " + context.LatentSize + " needs " + 4L * context.LatentSize);
                if (context.Blendshapes != null && m.Blendshapes.Length != context.Blendshapes.Length)
                    throw new InfpProtocolException("invalid", m.Blendshapes.Length +
                        " blendshapes; hello names " + context.Blendshapes.Length);
            }
            return m;
        }

        /// <summary>DecodeHello that returns false with the error instead of throwing.</summary>
        public static bool TryDecodeHello(byte[] payload, out HelloMessage hello, out InfpProtocolException error)
        {
            try
            {
                hello = DecodeHello(payload);
                error = null;
                return true;
            }
            catch (InfpProtocolException e)
            {
                hello = null;
                error = e;
                return false;
            }
        }

        /// <summary>DecodeMotion that returns false with the error instead of throwing.</summary>
        public static bool TryDecodeMotion(byte[] payload, HelloMessage context, out MotionMessage motion,
                                           out InfpProtocolException error)
        {
            try
            {
                motion = DecodeMotion(payload, context);
                error = null;
                return true;
            }
            catch (InfpProtocolException e)
            {
                motion = null;
                error = e;
                return false;
            }
        }

        // ------------------------------------------------------------------------------------
        // What was seen of the known keys; errors reported in the reference decoder's order:
        // the version first, then wrong types and missing keys.
        private sealed class Fields
        {
            public long V = ProtocolVersion; // an absent v is the current version
            public int Seen;
            private string _error;

            public void Note(string error)
            {
                if (_error == null) _error = error;
            }

            public void Require(object value, string key)
            {
                if (value == null) Note(key + ": required key missing");
            }

            public int CheckVersion()
            {
                if (_error != null && _error.StartsWith("v:", StringComparison.Ordinal))
                    throw new InfpProtocolException("invalid", _error);
                if (V > ProtocolVersion)
                    throw new InfpProtocolException("unsupported_version", "protocol version " + V +
                        " is newer than this client's " + ProtocolVersion);
                return (int)Math.Max(int.MinValue, V);
            }

            public void Throw()
            {
                if (_error != null) throw new InfpProtocolException("invalid", _error);
            }
        }

        private sealed class WrongType : Exception
        {
            public readonly int Start;

            public WrongType(string key, string expected, int start) : base(key + ": expected " + expected)
            {
                Start = start;
            }
        }

        // ------------------------------------------------------------------------------------
        // A msgpack reader over one payload. Check() walks the whole payload once (structure,
        // lengths, depth, string keys); after it, reads cannot run past the end, and are
        // bounds-checked anyway.
        private struct Reader
        {
            private readonly byte[] _b;
            private int _p;

            public Reader(byte[] payload)
            {
                if (payload == null) throw Malformed("no payload");
                _b = payload;
                _p = 0;
            }

            private static InfpProtocolException Malformed(string why)
            {
                return new InfpProtocolException("malformed", "not a msgpack message: " + why);
            }

            private int Left { get { return _b.Length - _p; } }

            private byte Byte()
            {
                if (_p >= _b.Length) throw Malformed("truncated");
                return _b[_p++];
            }

            private uint BigEndian(int size)
            {
                if (Left < size) throw Malformed("truncated");
                uint v = 0;
                for (int i = 0; i < size; i++) v = (v << 8) | _b[_p++];
                return v;
            }

            private ulong BigEndian64()
            {
                ulong hi = BigEndian(4);
                return (hi << 32) | BigEndian(4);
            }

            /// <summary>Check the whole payload, then position after the top map's header.</summary>
            public int CheckAndOpenMap()
            {
                if (_b.Length == 0) throw Malformed("empty payload");
                CheckStructure();
                if (_p != _b.Length) throw Malformed("extra bytes after the message");
                _p = 0;
                byte t = _b[0];
                if (!((t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf))
                    throw Malformed("payload must be a msgpack map");
                return (int)ContainerLength(Byte());
            }

            // Walks one value (and everything inside it) without recursion: pending[d] counts the
            // items still to read in the container at depth d; keyAt[d] whether the next is a key.
            private void CheckStructure()
            {
                var pending = new List<long>();
                var isMap = new List<bool>();
                var parity = new List<int>();
                pending.Add(1);
                isMap.Add(false);
                parity.Add(0);
                while (pending.Count > 0)
                {
                    int d = pending.Count - 1;
                    if (pending[d] == 0)
                    {
                        pending.RemoveAt(d);
                        isMap.RemoveAt(d);
                        parity.RemoveAt(d);
                        continue;
                    }
                    pending[d] = pending[d] - 1;
                    bool isKey = isMap[d] && parity[d] == 0;
                    if (isMap[d]) parity[d] = 1 - parity[d];
                    byte t = Byte();
                    if (isKey && !IsStr(t) && !IsBin(t)) throw Malformed("map keys must be strings");
                    if (IsArray(t) || IsMap(t))
                    {
                        long n = ContainerLength(t);
                        long items = IsMap(t) ? 2 * n : n;
                        if (items > Left) throw Malformed("container of " + n + " items past the end");
                        if (pending.Count > MaxDepth) throw Malformed("nested deeper than " + MaxDepth);
                        pending.Add(items);
                        isMap.Add(IsMap(t));
                        parity.Add(0);
                    }
                    else
                    {
                        SkipScalar(t);
                    }
                }
            }

            private static bool IsStr(byte t) { return (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb); }
            private static bool IsBin(byte t) { return t >= 0xc4 && t <= 0xc6; }
            private static bool IsArray(byte t) { return (t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd; }
            private static bool IsMap(byte t) { return (t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf; }
            private static bool IsNumber(byte t)
            {
                return t <= 0x7f || t >= 0xe0 || (t >= 0xca && t <= 0xd3);
            }

            private long ContainerLength(byte t)
            {
                if (t >= 0x80 && t <= 0x8f) return t & 0x0f;
                if (t >= 0x90 && t <= 0x9f) return t & 0x0f;
                if (t == 0xdc || t == 0xde) return BigEndian(2);
                return BigEndian(4); // 0xdd, 0xdf
            }

            private long DataLength(byte t)
            {
                if (t >= 0xa0 && t <= 0xbf) return t & 0x1f;
                if (t == 0xc4 || t == 0xd9) return BigEndian(1);
                if (t == 0xc5 || t == 0xda) return BigEndian(2);
                return BigEndian(4); // 0xc6, 0xdb
            }

            private void SkipScalar(byte t)
            {
                if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return;
                int size;
                switch (t)
                {
                    case 0xcc: case 0xd0: size = 1; break;
                    case 0xcd: case 0xd1: size = 2; break;
                    case 0xca: case 0xce: case 0xd2: size = 4; break;
                    case 0xcb: case 0xcf: case 0xd3: size = 8; break;
                    default:
                        if (IsStr(t) || IsBin(t))
                        {
                            long n = DataLength(t);
                            if (n > Left) throw Malformed("string of " + n + " bytes past the end");
                            _p += (int)n;
                            return;
                        }
                        throw Malformed(t == 0xc1 ? "byte 0xc1" : "extension types are not used");
                }
                if (Left < size) throw Malformed("truncated");
                _p += size;
            }

            /// <summary>Skip one (already checked) value.</summary>
            public void Skip()
            {
                long pending = 1;
                while (pending > 0)
                {
                    pending--;
                    byte t = Byte();
                    if (IsArray(t)) pending += ContainerLength(t);
                    else if (IsMap(t)) pending += 2 * ContainerLength(t);
                    else SkipScalar(t);
                }
            }

            public void SkipFrom(int start)
            {
                _p = start;
                Skip();
            }

            public string ReadKey()
            {
                byte t = _b[_p];
                if (!IsBin(t)) return ReadString("(key)");
                ReadBinAt(); // a bin key is never one we know
                return null;
            }

            private byte[] ReadBinAt()
            {
                long n = DataLength(Byte());
                if (n > Left) throw Malformed("truncated");
                var data = new byte[n];
                Buffer.BlockCopy(_b, _p, data, 0, (int)n);
                _p += (int)n;
                return data;
            }

            public string ReadString(string key)
            {
                int start = _p;
                byte t = Byte();
                if (!IsStr(t)) throw new WrongType(key, "a string", start);
                int n = (int)DataLength(t);
                if (n > Left) throw Malformed("truncated");
                string s = Encoding.UTF8.GetString(_b, _p, n);
                _p += n;
                return s;
            }

            public string ReadOptionalString(string key)
            {
                if (_p < _b.Length && _b[_p] == 0xc0)
                {
                    _p++;
                    return null;
                }
                return ReadString(key);
            }

            public byte[] ReadBin(string key)
            {
                int start = _p;
                if (_p >= _b.Length || !IsBin(_b[_p])) throw new WrongType(key, "bin (bytes)", start);
                return ReadBinAt();
            }

            public long ReadLong(string key)
            {
                int start = _p;
                byte t = Byte();
                if (t <= 0x7f) return t;
                if (t >= 0xe0) return (sbyte)t;
                switch (t)
                {
                    case 0xcc: return BigEndian(1);
                    case 0xcd: return BigEndian(2);
                    case 0xce: return BigEndian(4);
                    case 0xcf:
                        ulong u = BigEndian64();
                        if (u > long.MaxValue) throw new WrongType(key, "an integer below 2^63", start);
                        return (long)u;
                    case 0xd0: return (sbyte)BigEndian(1);
                    case 0xd1: return (short)BigEndian(2);
                    case 0xd2: return (int)BigEndian(4);
                    case 0xd3: return (long)BigEndian64();
                    case 0xca:
                    case 0xcb:
                        _p = start;
                        double d = ReadDouble(key);
                        // An integral float is an integer (as in the reference decoder).
                        if (d == Math.Floor(d) && Math.Abs(d) < 9.2e18) return (long)d;
                        throw new WrongType(key, "an integer", start);
                    default:
                        throw new WrongType(key, "an integer", start);
                }
            }

            /// <summary>v: an integer, never a float (as in the reference decoder).</summary>
            public long ReadVersion()
            {
                int start = _p;
                if (_p < _b.Length && (_b[_p] == 0xca || _b[_p] == 0xcb)) throw new WrongType("v", "an integer", start);
                return ReadLong("v");
            }

            public int ReadInt(string key)
            {
                int start = _p;
                long v = ReadLong(key);
                if (v < int.MinValue || v > int.MaxValue) throw new WrongType(key, "a 32-bit integer", start);
                return (int)v;
            }

            public double ReadDouble(string key)
            {
                int start = _p;
                if (_p >= _b.Length) throw Malformed("truncated");
                byte t = _b[_p];
                if (t == 0xca)
                {
                    _p++;
                    return Bits.Single((int)BigEndian(4));
                }
                if (t == 0xcb)
                {
                    _p++;
                    return BitConverter.Int64BitsToDouble((long)BigEndian64());
                }
                if (t == 0xcf)
                {
                    _p++;
                    return BigEndian64();
                }
                if (IsNumber(t)) return ReadLong(key);
                _p++;
                throw new WrongType(key, "a number", start);
            }

            public float[] ReadFloatArray(string key, int size)
            {
                int start = _p;
                byte t = Byte();
                if (!IsArray(t)) throw new WrongType(key, "an array of numbers", start);
                long n = ContainerLength(t);
                if (size >= 0 && n != size)
                    throw new WrongType(key, size + " numbers, got " + n, start);
                if (n > Left) throw Malformed("truncated");
                var values = new float[n];
                for (int i = 0; i < n; i++)
                {
                    if (_p < _b.Length && !IsNumber(_b[_p])) throw new WrongType(key, "numbers only", start);
                    values[i] = (float)ReadDouble(key);
                }
                return values;
            }

            public string[] ReadStringArray(string key)
            {
                int start = _p;
                byte t = Byte();
                if (!IsArray(t)) throw new WrongType(key, "an array of strings", start);
                long n = ContainerLength(t);
                if (n > Left) throw Malformed("truncated");
                var values = new string[n];
                for (int i = 0; i < n; i++)
                {
                    if (_p < _b.Length && !IsStr(_b[_p])) throw new WrongType(key, "strings only", start);
                    values[i] = ReadString(key);
                }
                return values;
            }

            public Dictionary<string, string> ReadStringMap(string key)
            {
                int start = _p;
                byte t = Byte();
                if (!IsMap(t)) throw new WrongType(key, "a map of strings", start);
                long n = ContainerLength(t);
                var map = new Dictionary<string, string>();
                for (long i = 0; i < n; i++)
                {
                    if (_p < _b.Length && !IsStr(_b[_p])) throw new WrongType(key, "string keys", start);
                    string k = ReadString(key);
                    if (_p < _b.Length && !IsStr(_b[_p])) throw new WrongType(key, "string values", start);
                    map[k] = ReadString(key);
                }
                return map;
            }
        }
    }
}
