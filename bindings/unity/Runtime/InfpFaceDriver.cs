// Applies an InfpReceiver's pose to a character: the ARKit weights to blendshapes (by name), head
// and eye angles to bones. Name matching and axis conversion are InfpRig's (engine-free, tested
// under Mono against the Python SDK); this file only reads and writes Unity objects.
//
// Axes: the stream is right-handed (X avatar's left, Y up, Z avatar's forward); Unity is
// left-handed (X right). A rotation becomes Quaternion.Euler(pitch, -yaw, -roll) in degrees and a
// head offset (-x, y, z). Rotations are applied about the axes of `avatarRoot` (its +Z must be
// the way the face looks), so a bone's own axis convention does not matter.
using System.Collections.Generic;
using Infp.Protocol;
using UnityEngine;

namespace Infp.Unity
{
    [AddComponentMenu("infp/Infp Face Driver")]
    public sealed class InfpFaceDriver : MonoBehaviour
    {
        public InfpReceiver receiver;

        [Header("Blendshapes")]
        [Tooltip("Meshes whose blendshapes are driven, matched by name (case-insensitive; " +
                 "eyeBlink_L and EyeBlinkLeft spellings, blendShape1. prefixes understood).")]
        public SkinnedMeshRenderer[] faces = new SkinnedMeshRenderer[0];
        [Tooltip("More prefixes to drop from mesh shape names before matching, e.g. Face_")]
        public string[] shapePrefixes = new string[0];
        [Tooltip("One 'meshShapeName = arkitName' per line, for rigs that name shapes differently.")]
        [TextArea(3, 10)]
        public string mapping = "";
        [Tooltip("ARKit weights are 0..1; Unity blendshape weights are usually 0..100.")]
        public float weightScale = 100f;
        [Range(0f, 2f)] public float blendshapeGain = 1f;

        [Header("Head and eyes")]
        [Tooltip("Its +Z is the way the face looks, +Y up (the character's root).")]
        public Transform avatarRoot;
        public Transform head;
        [Range(0f, 1f)] public float headWeight = 1f;
        [Tooltip("Also move the head bone by the stream's x, y, z (metres).")]
        public bool headTranslation;
        public Transform leftEye;
        public Transform rightEye;
        [Range(0f, 1f)] public float eyeWeight = 1f;
        [Tooltip("On: add to the pose an Animator wrote this frame. Off: replace the rest pose.")]
        public bool additive;

        [Header("Matching (read only)")]
        [SerializeField] private int matchedShapes;
        [SerializeField] private List<string> unmatchedShapes = new List<string>();

        private int[][] _maps;
        private HelloMessage _mappedFor;
        private string _mappedWith;
        private Quaternion _headRest, _leftRest, _rightRest; // in avatarRoot's frame
        private Vector3 _headRestPosition;
        private readonly float[] _q = new float[4];
        private readonly float[] _p = new float[3];

        private Quaternion Root { get { return (avatarRoot != null ? avatarRoot : transform).rotation; } }

        private void Start()
        {
            Quaternion inv = Quaternion.Inverse(Root);
            if (head != null)
            {
                _headRest = inv * head.rotation;
                _headRestPosition = head.localPosition;
            }
            if (leftEye != null) _leftRest = inv * leftEye.rotation;
            if (rightEye != null) _rightRest = inv * rightEye.rotation;
        }

        private void LateUpdate() // after Animators, so `additive` builds on this frame's pose
        {
            if (receiver == null || !receiver.HasPose) return;
            InfpPose pose = receiver.Pose;
            HelloMessage hello = receiver.Stream.Hello;
            if (_maps == null || hello != _mappedFor || mapping != _mappedWith) Remap(hello);
            float[] w = pose.Blendshapes;
            for (int f = 0; f < faces.Length; f++)
            {
                if (faces[f] == null) continue;
                int[] map = _maps[f];
                for (int s = 0; s < map.Length; s++)
                    if (map[s] >= 0 && map[s] < w.Length)
                        faces[f].SetBlendShapeWeight(s, Mathf.Clamp01(w[map[s]] * blendshapeGain) * weightScale);
            }
            Rotate(head, _headRest, pose.Head[0], pose.Head[1], pose.Head[2], headWeight);
            Rotate(leftEye, _leftRest, pose.Gaze[0], pose.Gaze[1], 0f, eyeWeight);
            Rotate(rightEye, _rightRest, pose.Gaze[2], pose.Gaze[3], 0f, eyeWeight);
            if (head != null && headTranslation)
            {
                InfpRig.UnityPosition(pose.Head[3], pose.Head[4], pose.Head[5], _p);
                Vector3 offset = Root * new Vector3(_p[0], _p[1], _p[2]) * headWeight;
                Vector3 local = head.parent != null ? head.parent.InverseTransformVector(offset) : offset;
                head.localPosition = (additive ? head.localPosition : _headRestPosition) + local;
            }
        }

        private void Rotate(Transform bone, Quaternion rest, float yaw, float pitch, float roll, float weight)
        {
            if (bone == null || weight <= 0f) return;
            InfpRig.UnityRotation(yaw * weight, pitch * weight, roll * weight, _q);
            var delta = new Quaternion(_q[0], _q[1], _q[2], _q[3]);
            Quaternion root = Root;
            Quaternion baseRotation = additive ? Quaternion.Inverse(root) * bone.rotation : rest;
            bone.rotation = root * delta * baseRotation;
        }

        private void Remap(HelloMessage hello)
        {
            Dictionary<string, string> table = InfpRig.ParseMapping(mapping);
            _maps = new int[faces.Length][];
            matchedShapes = 0;
            unmatchedShapes.Clear();
            for (int f = 0; f < faces.Length; f++)
            {
                Mesh mesh = faces[f] != null ? faces[f].sharedMesh : null;
                var names = new List<string>();
                if (mesh != null)
                    for (int s = 0; s < mesh.blendShapeCount; s++) names.Add(mesh.GetBlendShapeName(s));
                _maps[f] = InfpRig.MapShapes(names, hello != null ? hello.Blendshapes : null, shapePrefixes, table);
                for (int s = 0; s < names.Count; s++)
                {
                    if (_maps[f][s] >= 0) matchedShapes++;
                    else unmatchedShapes.Add(faces[f].name + "/" + names[s]);
                }
            }
            _mappedFor = hello;
            _mappedWith = mapping;
        }
    }
}
