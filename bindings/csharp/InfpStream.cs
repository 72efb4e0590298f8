// The engine-free core of the Unity and Godot receivers: decoding on the network thread, the
// hand-over to the main thread, drop counts, latest-frame-wins and interpolation to the render
// rate. Plain C#, no engine or NetMQ dependency (CI runs it under Mono).
//
// Threads: one network thread calls Receive() for every [topic, payload] it gets; the main thread
// calls Update() once per rendered frame, then Sample(). Counters may be read from any thread.
using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading;

namespace Infp.Protocol
{
    public enum InfpStatus
    {
        /// <summary>No publisher has been heard from yet.</summary>
        Connecting,
        /// <summary>Motion arrives but no hello yet: blendshapes are read in ARKit order.</summary>
        WaitingForHello,
        Receiving,
        /// <summary>Nothing received for StallSeconds (publisher stopped, network, firewall).</summary>
        Stalled,
    }

    /// <summary>One pose to show: the interpolated values of two frames.</summary>
    public sealed class InfpPose
    {
        public float[] Blendshapes = new float[0];
        public readonly float[] Head = new float[6];
        public readonly float[] Gaze = new float[4];
        public float Speaking;
        public double T;
        public long Index;
    }

    public sealed class InfpStream
    {
        /// <summary>Only this agent's messages are used ("" = the first agent heard).</summary>
        public string Agent = "";
        /// <summary>Blend between the last two frames (one frame of delay, smooth at any frame
        /// rate); off shows the newest frame as it is.</summary>
        public bool Interpolate = true;
        /// <summary>Frames waiting for the main thread beyond this are dropped, oldest first.</summary>
        public int MaxQueue = 16;
        public double StallSeconds = 1.0;
        /// <summary>Seconds on a monotonic clock; replaceable for tests.</summary>
        public Func<double> Clock;

        private readonly ConcurrentQueue<MotionMessage> _queue = new ConcurrentQueue<MotionMessage>();
        private readonly Stopwatch _watch = Stopwatch.StartNew();
        private volatile HelloMessage _hello;
        private string _agent = "";
        private long _lastSeq = -1;
        private long _received, _dropped, _rejected, _superseded, _restarts;
        private long _lastMessageTicks = long.MinValue;
        private volatile string _lastError;

        // main thread only
        private MotionMessage _prev, _last;
        private double _lastArrival;

        public InfpStream()
        {
            Clock = () => _watch.Elapsed.TotalSeconds;
        }

        /// <summary>The publisher's last hello (null before the first).</summary>
        public HelloMessage Hello { get { return _hello; } }
        /// <summary>Motion messages decoded.</summary>
        public long Received { get { return Interlocked.Read(ref _received); } }
        /// <summary>Motion messages lost between publisher and here (gaps in seq).</summary>
        public long Dropped { get { return Interlocked.Read(ref _dropped); } }
        /// <summary>Messages that could not be decoded (see LastError).</summary>
        public long Rejected { get { return Interlocked.Read(ref _rejected); } }
        /// <summary>Frames never shown because a newer one arrived in the same render frame.</summary>
        public long Superseded { get { return Interlocked.Read(ref _superseded); } }
        /// <summary>Times seq went backwards: the publisher restarted.</summary>
        public long Restarts { get { return Interlocked.Read(ref _restarts); } }
        public string LastError { get { return _lastError; } }
        /// <summary>The newest frame handed to the main thread (main thread only).</summary>
        public MotionMessage Latest { get { return _last; } }

        public InfpStatus Status
        {
            get
            {
                long ticks = Interlocked.Read(ref _lastMessageTicks);
                if (ticks == long.MinValue) return InfpStatus.Connecting;
                if (Clock() - BitConverter.Int64BitsToDouble(ticks) > StallSeconds) return InfpStatus.Stalled;
                return _hello == null ? InfpStatus.WaitingForHello : InfpStatus.Receiving;
            }
        }

        /// <summary>Network thread: decode one message and queue it for the main thread. Never
        /// throws on bad input; it is counted in Rejected.</summary>
        public void Receive(byte[] topic, byte[] payload)
        {
            string kind = InfpDecoder.TopicKind(topic);
            if (kind != "hello" && kind != "motion") return;
            string agent = InfpDecoder.TopicAgent(topic);
            if (Agent.Length > 0 ? agent != Agent : (_agent.Length > 0 && agent != _agent)) return;
            _agent = agent;
            Interlocked.Exchange(ref _lastMessageTicks, BitConverter.DoubleToInt64Bits(Clock()));
            InfpProtocolException error;
            if (kind == "hello")
            {
                HelloMessage hello;
                if (InfpDecoder.TryDecodeHello(payload, out hello, out error)) _hello = hello;
                else Reject(error);
                return;
            }
            MotionMessage m;
            if (!InfpDecoder.TryDecodeMotion(payload, _hello, out m, out error))
            {
                Reject(error);
                return;
            }
            if (_lastSeq >= 0 && m.Seq > _lastSeq + 1) Interlocked.Add(ref _dropped, m.Seq - _lastSeq - 1);
            if (_lastSeq >= 0 && m.Seq <= _lastSeq) Interlocked.Increment(ref _restarts);
            _lastSeq = m.Seq;
            Interlocked.Increment(ref _received);
            _queue.Enqueue(m);
            MotionMessage old;
            while (_queue.Count > MaxQueue && _queue.TryDequeue(out old)) Interlocked.Increment(ref _superseded);
        }

        private void Reject(InfpProtocolException error)
        {
            Interlocked.Increment(ref _rejected);
            _lastError = error.Code + ": " + error.Message;
        }

        /// <summary>Main thread, once per rendered frame: take what arrived (latest frame wins).
        /// True when a new frame came.</summary>
        public bool Update()
        {
            MotionMessage m, newest = null, before = null;
            while (_queue.TryDequeue(out m))
            {
                if (before != null) Interlocked.Increment(ref _superseded);
                before = newest;
                newest = m;
            }
            if (newest == null) return false;
            _prev = before ?? _last;
            _last = newest;
            _lastArrival = Clock();
            return true;
        }

        /// <summary>Main thread: the pose to show now. False before the first frame.</summary>
        public bool Sample(InfpPose pose)
        {
            MotionMessage a = _prev, b = _last;
            if (b == null) return false;
            float alpha = 1f;
            if (Interpolate && a != null && a.Index < b.Index && a.Blendshapes.Length == b.Blendshapes.Length)
            {
                double interval = b.T - a.T;
                if (!(interval > 0 && interval < 0.5))
                {
                    HelloMessage h = _hello;
                    interval = h != null && h.Fps > 0 ? 1.0 / h.Fps : 0.04;
                }
                alpha = (float)Math.Max(0.0, Math.Min(1.0, (Clock() - _lastArrival) / interval));
            }
            else
            {
                a = b;
            }
            if (pose.Blendshapes.Length != b.Blendshapes.Length) pose.Blendshapes = new float[b.Blendshapes.Length];
            Lerp(a.Blendshapes, b.Blendshapes, alpha, pose.Blendshapes);
            Lerp(a.Head, b.Head, alpha, pose.Head);
            Lerp(a.Gaze, b.Gaze, alpha, pose.Gaze);
            pose.Speaking = a.Speaking + (b.Speaking - a.Speaking) * alpha;
            pose.T = a.T + (b.T - a.T) * alpha;
            pose.Index = alpha < 1f ? a.Index : b.Index;
            return true;
        }

        private static void Lerp(float[] a, float[] b, float alpha, float[] into)
        {
            for (int i = 0; i < into.Length; i++) into[i] = a[i] + (b[i] - a[i]) * alpha;
        }
    }
}
