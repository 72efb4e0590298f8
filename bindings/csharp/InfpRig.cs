// Rig conventions shared by the Unity and Godot face drivers: matching blendshape names and
// converting head and eye angles to each engine's axes. Plain C#, tested under Mono against the
// Python SDK (infp_sdk.motion.blendshape_index, infp_sdk.io.vmc.unity_head_rotation).
//
// The protocol's frame (docs/protocol.md, hello.conventions) is right-handed: X to the avatar's
// left, Y up, Z the avatar's forward. +yaw turns the head to the avatar's left, +pitch tilts the
// chin down, +roll tilts it towards the avatar's right shoulder; head x, y, z are metres from the
// rest pose on those axes.
//
// Unity is left-handed: X to the avatar's right, Y up, Z forward. Mirroring X keeps rotations
// about X and flips those about Y and Z, so Unity's Euler angles are (pitch, -yaw, -roll) in
// degrees, composed as Quaternion.Euler does (Z, then X, then Y), and a position is (-x, y, z).
//
// Godot is right-handed with Y up; a character imported from glTF faces +Z, so its X is the
// avatar's left: the protocol's frame as it is. Basis.FromEuler(new Vector3(pitch, yaw, roll))
// (Godot's default YXZ order, radians) is the rotation, and (x, y, z) the position. Between the
// two engines a quaternion maps as (x, y, z, w) -> (x, -y, -z, w).
using System;
using System.Collections.Generic;
using System.Text;

namespace Infp.Protocol
{
    public static class InfpRig
    {
        /// <summary>The 52 ARKit names in the protocol's default order (Unreal / Live Link Face).</summary>
        public static readonly string[] ArkitBlendshapes =
        {
            "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
            "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
            "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
            "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
            "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
            "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
            "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
            "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
            "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
            "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
            "noseSneerRight", "tongueOut",
        };

        /// <summary>The key two spellings of a blendshape share: the given prefixes, a
        /// "blendShape1." or "ARKit_" prefix and underscores dropped, "_L"/"_R" read as Left/Right,
        /// lower case. "blendShape1.EyeBlink_L", "eyeBlinkLeft" and "EYEBLINKLEFT" meet.</summary>
        public static string CanonicalKey(string name, IList<string> prefixes)
        {
            string key = name.Trim();
            if (prefixes != null)
            {
                foreach (string prefix in prefixes)
                {
                    if (!string.IsNullOrEmpty(prefix) && key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    {
                        key = key.Substring(prefix.Length);
                        break;
                    }
                }
            }
            key = StripBuiltinPrefix(key);
            if (key.EndsWith("_L", StringComparison.Ordinal)) key = key.Substring(0, key.Length - 2) + "Left";
            else if (key.EndsWith("_R", StringComparison.Ordinal)) key = key.Substring(0, key.Length - 2) + "Right";
            return key.Replace("_", "").ToLowerInvariant();
        }

        private static string StripBuiltinPrefix(string key)
        {
            // ^blendshape\d*\.  or  ^arkit[._]?  (case-insensitive)
            if (key.StartsWith("blendshape", StringComparison.OrdinalIgnoreCase))
            {
                int i = "blendshape".Length;
                while (i < key.Length && char.IsDigit(key[i])) i++;
                if (i < key.Length && key[i] == '.') return key.Substring(i + 1);
            }
            if (key.StartsWith("arkit", StringComparison.OrdinalIgnoreCase))
            {
                int i = "arkit".Length;
                if (i < key.Length && (key[i] == '.' || key[i] == '_')) i++;
                return key.Substring(i);
            }
            return key;
        }

        /// <summary>For each of a mesh's blendshapes, the index of the stream value that drives it,
        /// or -1. streamNames: hello.blendshapes (null = ARKit order). mapping: mesh shape name ->
        /// stream name, for rigs that name shapes differently (checked first, case-insensitive).
        /// prefixes: extra prefixes to drop from mesh shape names ("Face_", "head.").</summary>
        public static int[] MapShapes(IList<string> meshShapes, IList<string> streamNames,
                                      IList<string> prefixes, IDictionary<string, string> mapping)
        {
            IList<string> names = streamNames ?? ArkitBlendshapes;
            var byKey = new Dictionary<string, int>();
            for (int i = 0; i < names.Count; i++)
            {
                string k = CanonicalKey(names[i], null);
                if (!byKey.ContainsKey(k)) byKey[k] = i;
            }
            var overrides = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (mapping != null)
                foreach (KeyValuePair<string, string> kv in mapping) overrides[kv.Key.Trim()] = kv.Value;
            var result = new int[meshShapes.Count];
            for (int s = 0; s < meshShapes.Count; s++)
            {
                string target;
                string key = overrides.TryGetValue(meshShapes[s].Trim(), out target)
                    ? CanonicalKey(target, null)
                    : CanonicalKey(meshShapes[s], prefixes);
                int index;
                result[s] = byKey.TryGetValue(key, out index) ? index : -1;
            }
            return result;
        }

        /// <summary>Parse "meshShape = arkitName" lines (# comments, blank lines allowed).</summary>
        public static Dictionary<string, string> ParseMapping(string text)
        {
            var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (string.IsNullOrEmpty(text)) return map;
            foreach (string raw in text.Split('\n'))
            {
                string line = raw;
                int hash = line.IndexOf('#');
                if (hash >= 0) line = line.Substring(0, hash);
                int eq = line.IndexOf('=');
                if (eq <= 0) continue;
                map[line.Substring(0, eq).Trim()] = line.Substring(eq + 1).Trim();
            }
            return map;
        }

        /// <summary>Head or eye angles (rad) as a Unity rotation (x, y, z, w): Quaternion.Euler
        /// of (pitch, -yaw, -roll) in degrees.</summary>
        public static void UnityRotation(float yaw, float pitch, float roll, float[] xyzw)
        {
            Yxz(pitch, -yaw, -roll, xyzw);
        }

        /// <summary>A head translation (m) as a Unity position offset: (-x, y, z).</summary>
        public static void UnityPosition(float x, float y, float z, float[] xyz)
        {
            xyz[0] = -x;
            xyz[1] = y;
            xyz[2] = z;
        }

        /// <summary>Head or eye angles (rad) as a Godot rotation (x, y, z, w): Basis.FromEuler of
        /// (pitch, yaw, roll), order YXZ.</summary>
        public static void GodotRotation(float yaw, float pitch, float roll, float[] xyzw)
        {
            Yxz(pitch, yaw, roll, xyzw);
        }

        /// <summary>The rotation Ry(ay) * Rx(ax) * Rz(az) (Z applied first) as (x, y, z, w).</summary>
        public static void Yxz(double ax, double ay, double az, float[] q)
        {
            double sx = Math.Sin(ax / 2), cx = Math.Cos(ax / 2);
            double sy = Math.Sin(ay / 2), cy = Math.Cos(ay / 2);
            double sz = Math.Sin(az / 2), cz = Math.Cos(az / 2);
            // (qy * qx) * qz
            double x = cy * sx, y = sy * cx, z = -sy * sx, w = cy * cx;
            q[0] = (float)(x * cz + y * sz);
            q[1] = (float)(y * cz - x * sz);
            q[2] = (float)(w * sz + z * cz);
            q[3] = (float)(w * cz - z * sz);
        }
    }
}
