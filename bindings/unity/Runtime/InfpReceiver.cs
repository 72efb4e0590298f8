// Receives an infp-sdk agent's motion over ZeroMQ (NetMQ) and hands it to the main thread.
//
// The network thread decodes (InfpDecoder, no reflection: IL2CPP-safe) and queues frames through
// InfpStream's ConcurrentQueue; Update() takes the newest and Pose is interpolated to the render
// rate. Everything but the socket and the Inspector lives in the engine-free InfpStream
// (com.infp.protocol), which CI tests under Mono.
using System;
using System.Threading;
using Infp.Protocol;
using NetMQ;
using NetMQ.Sockets;
using UnityEngine;

namespace Infp.Unity
{
    [AddComponentMenu("infp/Infp Receiver")]
    [DefaultExecutionOrder(-100)] // before the face drivers that read Pose
    public sealed class InfpReceiver : MonoBehaviour
    {
        [Tooltip("The publisher: `infp-sdk live --zmq tcp://127.0.0.1:5555`.")]
        public string endpoint = "tcp://127.0.0.1:5555";
        [Tooltip("Agent name (the topic suffix); empty = the first agent heard.")]
        public string agent = "";
        [Tooltip("Blend the last two frames: smooth at any frame rate, one frame (40 ms) later.")]
        public bool interpolate = true;

        [Header("Status (read only)")]
        [SerializeField] private InfpStatus status;
        [SerializeField] private long received;
        [Tooltip("Frames lost between publisher and here (gaps in seq).")]
        [SerializeField] private long dropped;
        [Tooltip("Frames never shown because a newer one came in the same render frame.")]
        [SerializeField] private long superseded;
        [Tooltip("Messages that could not be decoded; see Last Error.")]
        [SerializeField] private long rejected;
        [SerializeField] private long restarts;
        [SerializeField] private string lastError = "";
        [SerializeField] private string publisherSdk = "";
        [SerializeField] private float publisherFps;

        private static int _open; // receivers with a socket: NetMQConfig.Cleanup after the last
        private Thread _thread;
        private volatile bool _stop;

        public InfpStream Stream { get; private set; }
        /// <summary>The pose to show this frame (valid when HasPose).</summary>
        public InfpPose Pose { get; private set; }
        public bool HasPose { get; private set; }
        public InfpStatus Status { get { return status; } }

        private void OnEnable()
        {
            Stream = new InfpStream { Agent = agent.Trim() };
            Pose = new InfpPose();
            HasPose = false;
            AsyncIO.ForceDotNet.Force(); // before any socket, or the Editor hangs on exit
            Interlocked.Increment(ref _open);
            _stop = false;
            string ep = endpoint.Trim(), topicAgent = Stream.Agent;
            _thread = new Thread(() => Run(ep, topicAgent)) { IsBackground = true, Name = "infp receiver" };
            _thread.Start();
        }

        private void OnDisable()
        {
            _stop = true;
            if (_thread != null && !_thread.Join(1000)) Debug.LogWarning("infp: receiver thread did not stop");
            _thread = null;
            if (Interlocked.Decrement(ref _open) == 0) NetMQConfig.Cleanup(false);
        }

        private void Run(string ep, string topicAgent)
        {
            try
            {
                using (var socket = new SubscriberSocket())
                {
                    socket.Options.Linger = TimeSpan.Zero;
                    socket.Options.ReceiveHighWatermark = 256;
                    socket.Connect(ep);
                    string suffix = topicAgent.Length > 0 ? "." + topicAgent : "";
                    socket.Subscribe("hello" + suffix);
                    socket.Subscribe("motion" + suffix);
                    var message = new NetMQMessage();
                    while (!_stop)
                    {
                        if (!socket.TryReceiveMultipartMessage(TimeSpan.FromMilliseconds(100), ref message, 2)) continue;
                        if (message.FrameCount == 2) Stream.Receive(message[0].ToByteArray(), message[1].ToByteArray());
                    }
                }
            }
            catch (Exception e) // a bad endpoint, a closed context: show it, do not kill the game
            {
                lastError = "socket: " + e.Message;
                Debug.LogError("infp: " + e);
            }
        }

        private void Update()
        {
            Stream.Interpolate = interpolate;
            Stream.Update();
            HasPose = Stream.Sample(Pose);
            status = Stream.Status;
            received = Stream.Received;
            dropped = Stream.Dropped;
            superseded = Stream.Superseded;
            rejected = Stream.Rejected;
            restarts = Stream.Restarts;
            if (Stream.LastError != null) lastError = Stream.LastError;
            HelloMessage hello = Stream.Hello;
            if (hello != null)
            {
                publisherSdk = hello.Sdk;
                publisherFps = (float)hello.Fps;
            }
        }
    }
}
