// Tests of InfpStream.cs and InfpRig.cs under Mono (run by tests/test_bindings_csharp.py).
//
//   mono core.exe VECTOR_DIR < queries
//
// Runs the self-checking stream and mapping tests (exit code 1 on a failure), then answers one
// query per stdin line for the Python side to compare with the SDK:
//   key <TAB> NAME                 -> CanonicalKey(NAME)
//   unity|godot <TAB> yaw pitch roll -> rotation quaternion x y z w
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Infp.Protocol;

public static class CoreTests
{
    private static string _dir;
    private static double _now;

    public static int Main(string[] args)
    {
        _dir = args[0];
        try
        {
            StreamCountsAndStatus();
            StreamInterpolates();
            StreamLatestFrameWins();
            MappingByName();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("FAILED: " + e);
            return 1;
        }
        string line;
        var q = new float[4];
        while ((line = Console.In.ReadLine()) != null)
        {
            string[] parts = line.Split('\t');
            if (parts[0] == "key")
            {
                Console.Out.WriteLine(InfpRig.CanonicalKey(parts[1], null));
                continue;
            }
            float yaw = F(parts[1]), pitch = F(parts[2]), roll = F(parts[3]);
            if (parts[0] == "unity") InfpRig.UnityRotation(yaw, pitch, roll, q);
            else InfpRig.GodotRotation(yaw, pitch, roll, q);
            Console.Out.WriteLine(string.Join(" ", Array.ConvertAll(q, v => v.ToString("R", CultureInfo.InvariantCulture))));
        }
        return 0;
    }

    private static float F(string s)
    {
        return float.Parse(s, CultureInfo.InvariantCulture);
    }

    private static void Check(bool ok, string what)
    {
        if (!ok) throw new Exception(what);
        Console.Error.WriteLine("ok " + what);
    }

    private static byte[][] Vector(string name)
    {
        byte[] data = File.ReadAllBytes(Path.Combine(_dir, name + ".zmsg"));
        int n0 = BitConverter.ToInt32(data, 0);
        var topic = new byte[n0];
        Buffer.BlockCopy(data, 4, topic, 0, n0);
        int n1 = BitConverter.ToInt32(data, 4 + n0);
        var payload = new byte[n1];
        Buffer.BlockCopy(data, 8 + n0, payload, 0, n1);
        return new[] { topic, payload };
    }

    private static InfpStream NewStream()
    {
        _now = 100.0;
        var s = new InfpStream();
        s.Clock = () => _now;
        return s;
    }

    private static void Feed(InfpStream s, string vector)
    {
        byte[][] v = Vector(vector);
        s.Receive(v[0], v[1]);
    }

    private static void StreamCountsAndStatus()
    {
        InfpStream s = NewStream();
        Check(s.Status == InfpStatus.Connecting, "status Connecting before any message");
        Feed(s, "motion_first_frame");
        Check(s.Status == InfpStatus.WaitingForHello, "status WaitingForHello after motion alone");
        Feed(s, "hello_basic");
        Check(s.Status == InfpStatus.Receiving && s.Hello.LatentSize == 62, "hello kept, Receiving");
        Feed(s, "motion_basic"); // seq 0 -> 41
        Check(s.Dropped == 40 && s.Received == 2, "40 drops from a seq gap of 41");
        Feed(s, "motion_latent_short");
        Feed(s, "motion_truncated_latent");
        Check(s.Rejected == 2 && s.LastError.StartsWith("malformed"), "bad messages counted, not thrown");
        Feed(s, "motion_first_frame"); // seq back to 0
        Check(s.Restarts == 1 && s.Dropped == 40, "a publisher restart is not a drop");
        Feed(s, "motion_utf8_agent");
        Check(s.Received == 3, "another agent's messages are ignored");
        _now += 1.5;
        Check(s.Status == InfpStatus.Stalled, "Stalled after 1.5 s of silence");
        var other = NewStream();
        other.Agent = "tiny";
        Feed(other, "hello_basic");
        Feed(other, "hello_small");
        Feed(other, "motion_small");
        Check(other.Hello.Agent == "tiny" && other.Received == 1 && other.Rejected == 0,
              "Agent filter; motion checked against its own agent's hello");
    }

    private static void StreamInterpolates()
    {
        InfpStream s = NewStream();
        var pose = new InfpPose();
        Check(!s.Sample(pose), "no pose before the first frame");
        Feed(s, "hello_basic");
        Feed(s, "motion_first_frame");
        Check(s.Update() && s.Sample(pose), "first frame shown");
        Feed(s, "motion_basic");
        Check(s.Update(), "second frame taken");
        MotionMessage a = InfpDecoder.DecodeMotion(Vector("motion_first_frame")[1], null);
        MotionMessage b = InfpDecoder.DecodeMotion(Vector("motion_basic")[1], null);
        s.Sample(pose);
        Check(pose.Head[0] == a.Head[0] && pose.Index == a.Index, "alpha 0 at arrival: previous frame");
        _now += 0.02; // half of 1/fps (the frames' t are far apart, so 1/25 s is the interval)
        s.Sample(pose);
        float mid = a.Blendshapes[5] + (b.Blendshapes[5] - a.Blendshapes[5]) * 0.5f;
        Check(Math.Abs(pose.Blendshapes[5] - mid) < 1e-5 && Math.Abs(pose.Head[0] - (a.Head[0] + b.Head[0]) / 2) < 1e-6,
              "halfway between frames after half a frame");
        _now += 1.0;
        s.Sample(pose);
        Check(pose.Head[0] == b.Head[0] && pose.Blendshapes[5] == b.Blendshapes[5] && pose.Index == b.Index,
              "holds the newest frame when nothing more arrives");
        s.Interpolate = false;
        _now -= 1.01;
        s.Sample(pose);
        Check(pose.Head[0] == b.Head[0], "Interpolate off: the newest frame as it is");
        Feed(s, "motion_first_frame"); // a reset: index goes back
        s.Interpolate = true;
        s.Update();
        s.Sample(pose);
        Check(pose.Index == 0 && pose.Head[0] == a.Head[0], "no blending across a reset");
    }

    private static void StreamLatestFrameWins()
    {
        InfpStream s = NewStream();
        s.MaxQueue = 4;
        for (int i = 0; i < 10; i++) Feed(s, "motion_basic");
        Check(s.Superseded == 6, "queue bounded at MaxQueue, oldest dropped");
        s.Update();
        Check(s.Superseded == 8 && s.Latest.Seq == 41, "one render frame: newest shown, one kept to blend from");
    }

    private static void MappingByName()
    {
        var mesh = new List<string>
        {
            "blendShape1.EyeBlink_L", "Face_jawOpen", "MouthOpen", "EYEBLINKRIGHT", "Foo", "ARKit_tongueOut",
        };
        var mapping = InfpRig.ParseMapping("# custom rig\nMouthOpen = mouthFunnel\n\n");
        int[] m = InfpRig.MapShapes(mesh, null, new[] { "Face_" }, mapping);
        Check(m[0] == 0 && m[1] == 17 && m[2] == 19 && m[3] == 7 && m[4] == -1 && m[5] == 51,
              "names matched case-insensitively, prefixes dropped, mapping table first");
        int[] small = InfpRig.MapShapes(mesh, new[] { "jawOpen", "eyeBlinkLeft" }, new[] { "Face_" }, null);
        Check(small[0] == 1 && small[1] == 0 && small[3] == -1, "indices follow hello.blendshapes");
    }
}
