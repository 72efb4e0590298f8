// Sample: one line of text with a receiver's status, drop counts and the frame shown.
using Infp.Protocol;
using Infp.Unity;
using UnityEngine;

public sealed class InfpStatusOverlay : MonoBehaviour
{
    public InfpReceiver receiver;

    private void OnGUI()
    {
        if (receiver == null || receiver.Stream == null) return;
        InfpStream s = receiver.Stream;
        string frame = receiver.HasPose ? " frame " + receiver.Pose.Index + " t " + receiver.Pose.T.ToString("F2") + " s" : "";
        GUI.Label(new Rect(10, 10, 900, 24),
            "infp " + s.Status + frame + "  received " + s.Received + "  dropped " + s.Dropped +
            "  superseded " + s.Superseded + "  rejected " + s.Rejected +
            (s.LastError != null ? "  last error: " + s.LastError : ""));
    }
}
