// Godot 4 (.NET): applies an InfpReceiver's pose to blend shapes (by name, 0..1) and to the head
// and eye bones of a Skeleton3D. Name matching and axes are the shared InfpRig's.
//
// Axes: the stream's frame (X the avatar's left, Y up, Z its forward, right-handed) is Godot's
// for a character facing +Z (the glTF import default), so angles apply as they are:
// Basis.FromEuler(new Vector3(pitch, yaw, roll)) in skeleton space. Tick FacesNegativeZ for a
// character that faces -Z.
using System.Collections.Generic;
using Godot;
using Infp.Protocol;

[GlobalClass]
public partial class InfpFaceDriver : Node
{
    [Export] public InfpReceiver Receiver;
    [Export] public Godot.Collections.Array<MeshInstance3D> Faces = new();
    /// <summary>More prefixes to drop from mesh shape names before matching.</summary>
    [Export] public string[] ShapePrefixes = System.Array.Empty<string>();
    /// <summary>One "meshShapeName = arkitName" per line.</summary>
    [Export(PropertyHint.MultilineText)] public string Mapping = "";
    [Export(PropertyHint.Range, "0,2")] public float BlendshapeGain = 1f;

    [ExportGroup("Head and eyes")]
    [Export] public Skeleton3D Skeleton;
    [Export] public string HeadBone = "Head";
    [Export] public string LeftEyeBone = "LeftEye";
    [Export] public string RightEyeBone = "RightEye";
    [Export(PropertyHint.Range, "0,1")] public float HeadWeight = 1f;
    [Export(PropertyHint.Range, "0,1")] public float EyeWeight = 1f;
    [Export] public bool FacesNegativeZ;

    [ExportGroup("Matching (read only)")]
    [Export] public int MatchedShapes;

    private int[][] _maps;
    private HelloMessage _mappedFor;
    private readonly float[] _q = new float[4];

    public override void _Process(double delta)
    {
        if (Receiver == null || !Receiver.HasPose) return;
        InfpPose pose = Receiver.Pose;
        HelloMessage hello = Receiver.Stream.Hello;
        if (_maps == null || hello != _mappedFor) Remap(hello);
        float[] w = pose.Blendshapes;
        for (int f = 0; f < Faces.Count; f++)
        {
            int[] map = _maps[f];
            for (int s = 0; s < map.Length; s++)
                if (map[s] >= 0 && map[s] < w.Length)
                    Faces[f].SetBlendShapeValue(s, Mathf.Clamp(w[map[s]] * BlendshapeGain, 0f, 1f));
        }
        Rotate(HeadBone, pose.Head[0], pose.Head[1], pose.Head[2], HeadWeight);
        Rotate(LeftEyeBone, pose.Gaze[0], pose.Gaze[1], 0f, EyeWeight);
        Rotate(RightEyeBone, pose.Gaze[2], pose.Gaze[3], 0f, EyeWeight);
    }

    // The bone's pose = its rest turned by the stream's rotation about the skeleton's axes.
    private void Rotate(string boneName, float yaw, float pitch, float roll, float weight)
    {
        if (Skeleton == null || string.IsNullOrEmpty(boneName) || weight <= 0f) return;
        int bone = Skeleton.FindBone(boneName);
        if (bone < 0) return;
        float sign = FacesNegativeZ ? -1f : 1f;
        InfpRig.GodotRotation(yaw * weight, sign * pitch * weight, sign * roll * weight, _q);
        var turn = new Quaternion(_q[0], _q[1], _q[2], _q[3]);
        Quaternion global = Skeleton.GetBoneGlobalRest(bone).Basis.GetRotationQuaternion();
        int parent = Skeleton.GetBoneParent(bone);
        Quaternion parentGlobal = parent >= 0
            ? Skeleton.GetBoneGlobalRest(parent).Basis.GetRotationQuaternion()
            : Quaternion.Identity;
        Skeleton.SetBonePoseRotation(bone, parentGlobal.Inverse() * turn * global);
    }

    private void Remap(HelloMessage hello)
    {
        Dictionary<string, string> table = InfpRig.ParseMapping(Mapping);
        _maps = new int[Faces.Count][];
        MatchedShapes = 0;
        for (int f = 0; f < Faces.Count; f++)
        {
            var names = new List<string>();
            if (Faces[f]?.Mesh is ArrayMesh mesh)
                for (int s = 0; s < mesh.GetBlendShapeCount(); s++) names.Add(mesh.GetBlendShapeName(s));
            _maps[f] = InfpRig.MapShapes(names, hello?.Blendshapes, ShapePrefixes, table);
            foreach (int i in _maps[f]) if (i >= 0) MatchedShapes++;
        }
        _mappedFor = hello;
    }
}
