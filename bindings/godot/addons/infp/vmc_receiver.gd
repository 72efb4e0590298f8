## Drives blend shapes and a head bone from infp-sdk's VMC output (OSC over UDP), in GDScript:
## for Godot projects without .NET. Start the agent with `infp-sdk live --vmc 127.0.0.1:39539`.
##
## Reads /VMC/Ext/Blend/Val (name, value) until /VMC/Ext/Blend/Apply, then sets every blend shape
## whose name matches (case-insensitive, "_L"/"_R" and prefixes handled as in the C# driver);
## /VMC/Ext/Bone/Pos "Head" carries a Unity-frame quaternion, turned into Godot's frame with
## (x, y, z, w) -> (x, -y, -z, w) for a character facing +Z. No interpolation: VMC arrives at the
## publisher's --fps (use --fps 60 for smooth motion).
class_name InfpVmcReceiver
extends Node

@export var port := 39539
@export var faces: Array[MeshInstance3D] = []
@export var skeleton: Skeleton3D
@export var head_bone := "Head"
@export_range(0.0, 1.0) var head_weight := 1.0
@export var faces_negative_z := false

var packets := 0
var errors := 0
var _udp := PacketPeerUDP.new()
var _pending := {}  # canonical name -> value, until Apply
var _targets := []  # [MeshInstance3D, shape index, canonical name]


func _ready() -> void:
	var err := _udp.bind(port, "127.0.0.1")
	if err != OK:
		push_error("infp: cannot listen on UDP %d (%s): another receiver running?" % [port, err])
	for mi in faces:
		if mi == null or mi.mesh == null or not (mi.mesh is ArrayMesh):
			continue
		var mesh: ArrayMesh = mi.mesh
		for i in mesh.get_blend_shape_count():
			_targets.append([mi, i, canonical(String(mesh.get_blend_shape_name(i)))])


func _exit_tree() -> void:
	_udp.close()


func _process(_delta: float) -> void:
	while _udp.get_available_packet_count() > 0:
		var data := _udp.get_packet()
		packets += 1
		if not _read(data, 0, data.size()):
			errors += 1


## The key two spellings of a blend shape share (as InfpRig.CanonicalKey).
static func canonical(name: String) -> String:
	var key := name.strip_edges()
	var re := RegEx.create_from_string("(?i)^(blendshape\\d*\\.|arkit[._]?)")
	key = re.sub(key, "")
	if key.ends_with("_L"):
		key = key.left(key.length() - 2) + "Left"
	elif key.ends_with("_R"):
		key = key.left(key.length() - 2) + "Right"
	return key.replace("_", "").to_lower()


# One OSC packet (a bundle or a message) in data[start, end). False if malformed.
func _read(data: PackedByteArray, start: int, end: int) -> bool:
	if end - start >= 16 and data.slice(start, start + 8).get_string_from_ascii() == "#bundle":
		var p := start + 16  # "#bundle\0" + 8-byte time tag
		while p + 4 <= end:
			var size := _u32(data, p)
			p += 4
			if size < 0 or p + size > end or not _read(data, p, p + size):
				return false
			p += size
		return p == end
	return _message(data, start, end)


func _message(data: PackedByteArray, start: int, end: int) -> bool:
	var r := _string(data, start, end)
	if r.is_empty():
		return false
	var address: String = r[0]
	var t := _string(data, r[1], end)
	if t.is_empty() or not String(t[0]).begins_with(","):
		return false
	var tags: String = String(t[0]).substr(1)
	var p: int = t[1]
	var args := []
	for tag in tags:
		if tag == "s":
			var s := _string(data, p, end)
			if s.is_empty():
				return false
			args.append(s[0])
			p = s[1]
		elif tag == "f" or tag == "i":
			if p + 4 > end:
				return false
			args.append(_f32(data, p) if tag == "f" else float(_u32(data, p)))
			p += 4
		else:
			return false  # a type the VMC sink never sends
	_apply(address, args)
	return true


func _apply(address: String, args: Array) -> void:
	if address == "/VMC/Ext/Blend/Val" and args.size() == 2:
		_pending[canonical(args[0])] = args[1]
	elif address == "/VMC/Ext/Blend/Apply":
		for target in _targets:
			if _pending.has(target[2]):
				target[0].set_blend_shape_value(target[1], clampf(_pending[target[2]], 0.0, 1.0))
		_pending.clear()
	elif address == "/VMC/Ext/Bone/Pos" and args.size() == 8 and args[0] == "Head":
		_head(Quaternion(args[4], -args[5], -args[6], args[7]))


func _head(turn: Quaternion) -> void:
	if skeleton == null:
		return
	var bone := skeleton.find_bone(head_bone)
	if bone < 0:
		return
	if faces_negative_z:
		turn = Quaternion(-turn.x, turn.y, -turn.z, turn.w)
	turn = Quaternion.IDENTITY.slerp(turn, head_weight)
	var global_rest := skeleton.get_bone_global_rest(bone).basis.get_rotation_quaternion()
	var parent := skeleton.get_bone_parent(bone)
	var parent_rest := Quaternion.IDENTITY
	if parent >= 0:
		parent_rest = skeleton.get_bone_global_rest(parent).basis.get_rotation_quaternion()
	skeleton.set_bone_pose_rotation(bone, parent_rest.inverse() * turn * global_rest)


# An OSC string (NUL-terminated, padded to 4): [text, next offset], or [] if malformed.
func _string(data: PackedByteArray, p: int, end: int) -> Array:
	var q := p
	while q < end and data[q] != 0:
		q += 1
	if q >= end:
		return []
	var text := data.slice(p, q).get_string_from_utf8()
	var next := (q + 4) & ~3
	return [] if next > end else [text, next]


func _u32(data: PackedByteArray, p: int) -> int:
	var v := (data[p] << 24) | (data[p + 1] << 16) | (data[p + 2] << 8) | data[p + 3]
	return v - 0x100000000 if v >= 0x80000000 else v


func _f32(data: PackedByteArray, p: int) -> float:
	var b := data.slice(p, p + 4)
	b.reverse()  # OSC is big-endian; decode_float reads little-endian
	return b.decode_float(0)
