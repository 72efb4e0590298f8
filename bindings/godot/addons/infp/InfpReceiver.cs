// Godot 4 (.NET): receives an infp-sdk agent's motion over ZeroMQ (NetMQ), like the Unity
// InfpReceiver. Decoding, the hand-over to the main thread, drop counts and interpolation are
// the shared, engine-free InfpStream (bindings/csharp, tested under Mono); this node owns only
// the socket thread and shows the counters in the Inspector (Remote tree while running).
using System;
using System.Threading;
using Godot;
using Infp.Protocol;
using NetMQ;
using NetMQ.Sockets;

[GlobalClass]
public partial class InfpReceiver : Node
{
    [Export] public string Endpoint = "tcp://127.0.0.1:5555";
    /// <summary>Agent name (topic suffix); empty = the first agent heard.</summary>
    [Export] public string Agent = "";
    /// <summary>Blend the last two frames: smooth at any frame rate, one frame (40 ms) later.</summary>
    [Export] public bool Interpolate = true;

    [ExportGroup("Status (read only)")]
    [Export] public string Status = "";
    [Export] public long Received;
    [Export] public long Dropped;
    [Export] public long Superseded;
    [Export] public long Rejected;
    [Export] public string LastError = "";

    private static int _open;
    private Thread _thread;
    private volatile bool _stop;

    public InfpStream Stream { get; private set; }
    public InfpPose Pose { get; private set; }
    public bool HasPose { get; private set; }

    public override void _EnterTree()
    {
        Stream = new InfpStream { Agent = Agent.Trim() };
        Pose = new InfpPose();
        AsyncIO.ForceDotNet.Force();
        Interlocked.Increment(ref _open);
        _stop = false;
        string ep = Endpoint.Trim(), agent = Stream.Agent;
        _thread = new Thread(() => Run(ep, agent)) { IsBackground = true, Name = "infp receiver" };
        _thread.Start();
        ProcessPriority = -100; // before the face drivers that read Pose
    }

    public override void _ExitTree()
    {
        _stop = true;
        _thread?.Join(1000);
        _thread = null;
        if (Interlocked.Decrement(ref _open) == 0) NetMQConfig.Cleanup(false);
    }

    private void Run(string ep, string agent)
    {
        try
        {
            using var socket = new SubscriberSocket();
            socket.Options.Linger = TimeSpan.Zero;
            socket.Options.ReceiveHighWatermark = 256;
            socket.Connect(ep);
            string suffix = agent.Length > 0 ? "." + agent : "";
            socket.Subscribe("hello" + suffix);
            socket.Subscribe("motion" + suffix);
            var message = new NetMQMessage();
            while (!_stop)
            {
                if (!socket.TryReceiveMultipartMessage(TimeSpan.FromMilliseconds(100), ref message, 2)) continue;
                if (message.FrameCount == 2) Stream.Receive(message[0].ToByteArray(), message[1].ToByteArray());
            }
        }
        catch (Exception e)
        {
            LastError = "socket: " + e.Message;
            GD.PushError("infp: " + e);
        }
    }

    public override void _Process(double delta)
    {
        Stream.Interpolate = Interpolate;
        Stream.Update();
        HasPose = Stream.Sample(Pose);
        Status = Stream.Status.ToString();
        Received = Stream.Received;
        Dropped = Stream.Dropped;
        Superseded = Stream.Superseded;
        Rejected = Stream.Rejected;
        if (Stream.LastError != null) LastError = Stream.LastError;
    }
}
