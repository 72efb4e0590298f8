// Conformance check of InfpDecoder.cs: decodes vector files and prints what it made of each as
// one JSON line, for tests/test_bindings_csharp.py to compare with tests/vectors/manifest.json.
//
//   mcs -out:dump.exe ../InfpDecoder.cs DumpVectors.cs && mono dump.exe < list
//
// Each stdin line: VECTOR.zmsg, optionally a tab and the context hello's .zmsg. A vector file holds
// the message's frames (topic, payload), each a uint32 little-endian length then the bytes.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using Infp.Protocol;

public static class DumpVectors
{
    public static int Main()
    {
        string line;
        while ((line = Console.In.ReadLine()) != null)
        {
            if (line.Length == 0) continue;
            string[] parts = line.Split('\t');
            Console.Out.WriteLine(Dump(parts[0], parts.Length > 1 ? parts[1] : null));
        }
        return 0;
    }

    private static string Dump(string path, string contextPath)
    {
        var o = new StringBuilder("{\"file\": ");
        Str(o, Path.GetFileName(path));
        try
        {
            byte[][] frames = ReadFrames(path);
            HelloMessage context = null;
            if (contextPath != null) context = InfpDecoder.DecodeHello(ReadFrames(contextPath)[1]);
            string kind = InfpDecoder.TopicKind(frames[0]);
            if (kind == "hello")
            {
                HelloMessage h = InfpDecoder.DecodeHello(frames[1]);
                o.Append(", \"ok\": true, \"kind\": \"hello\", \"fields\": {\"v\": ").Append(h.V);
                o.Append(", \"agent\": "); Str(o, h.Agent);
                o.Append(", \"sdk\": "); Str(o, h.Sdk);
                o.Append(", \"fps\": "); Num(o, h.Fps);
                o.Append(", \"blendshapes\": "); Strs(o, h.Blendshapes);
                o.Append(", \"latent_size\": ").Append(h.LatentSize);
                o.Append(", \"motion_space\": "); Str(o, h.MotionSpace);
                o.Append(", \"head\": "); Strs(o, h.Head);
                o.Append(", \"gaze\": "); Strs(o, h.Gaze);
                o.Append(", \"conventions\": {");
                bool first = true;
                foreach (KeyValuePair<string, string> kv in h.Conventions)
                {
                    if (!first) o.Append(", ");
                    first = false;
                    Str(o, kv.Key);
                    o.Append(": ");
                    Str(o, kv.Value);
                }
                o.Append("}, \"control\": "); Str(o, h.Control);
                o.Append(", \"audio\": "); Str(o, h.Audio);
                o.Append(", \"frame_format\": "); Str(o, h.FrameFormat);
                o.Append("}}");
            }
            else if (kind == "motion")
            {
                MotionMessage m = InfpDecoder.DecodeMotion(frames[1], context);
                o.Append(", \"ok\": true, \"kind\": \"motion\", \"fields\": {\"v\": ").Append(m.V);
                o.Append(", \"agent\": "); Str(o, m.Agent);
                o.Append(", \"seq\": ").Append(m.Seq);
                o.Append(", \"index\": ").Append(m.Index);
                o.Append(", \"t\": "); Num(o, m.T);
                o.Append(", \"blendshapes\": "); Nums(o, m.Blendshapes);
                o.Append(", \"head\": "); Nums(o, m.Head);
                o.Append(", \"gaze\": "); Nums(o, m.Gaze);
                o.Append(", \"speaking\": "); Num(o, m.Speaking);
                o.Append(", \"latent_bytes\": ").Append(m.Latent.Length);
                o.Append(", \"latent\": "); Nums(o, m.LatentValues());
                o.Append("}}");
            }
            else
            {
                o.Append(", \"ok\": false, \"error\": \"unknown_topic\"}");
            }
        }
        catch (InfpProtocolException e)
        {
            o.Append(", \"ok\": false, \"error\": ");
            Str(o, e.Code);
            o.Append(", \"message\": ");
            Str(o, e.Message);
            o.Append("}");
        }
        return o.ToString();
    }

    private static byte[][] ReadFrames(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        var frames = new List<byte[]>();
        int p = 0;
        while (p < data.Length)
        {
            int n = BitConverter.ToInt32(data, p);
            var frame = new byte[n];
            Buffer.BlockCopy(data, p + 4, frame, 0, n);
            frames.Add(frame);
            p += 4 + n;
        }
        return frames.ToArray();
    }

    private static void Num(StringBuilder o, double v)
    {
        o.Append(v.ToString("R", CultureInfo.InvariantCulture));
    }

    private static void Nums(StringBuilder o, float[] values)
    {
        o.Append('[');
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) o.Append(", ");
            Num(o, values[i]);
        }
        o.Append(']');
    }

    private static void Strs(StringBuilder o, string[] values)
    {
        o.Append('[');
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0) o.Append(", ");
            Str(o, values[i]);
        }
        o.Append(']');
    }

    private static void Str(StringBuilder o, string s)
    {
        if (s == null)
        {
            o.Append("null");
            return;
        }
        o.Append('"');
        foreach (char c in s)
        {
            if (c == '"' || c == '\\') o.Append('\\').Append(c);
            else if (c < 0x20 || c > 0x7e) o.Append("\\u").Append(((int)c).ToString("x4"));
            else o.Append(c);
        }
        o.Append('"');
    }
}
