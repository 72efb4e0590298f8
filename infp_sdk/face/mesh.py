"""Named landmark groups of the 478-point face mesh (MediaPipe's topology).

Indices are those of MediaPipe's face mesh with refined landmarks (468 face points + 10 iris
points). "A" and "B" name the two eyes and brows by index range; which of them is the avatar's
left is decided from the picture (the renderer measures it), so mirrored photos work too.
"""

from __future__ import annotations

NUM_LANDMARKS = 478
NUM_FACE_POINTS = 468

# Eye contours from the outer corner to the inner corner, upper lid and lower lid.
EYE_A_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_A_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
EYE_B_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
EYE_B_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
# Iris centres (refined landmarks); which belongs to which eye is checked by distance.
IRIS_CENTRES = (468, 473)
IRIS_A = (468, 469, 470, 471, 472)
IRIS_B = (473, 474, 475, 476, 477)

BROW_A = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
BROW_B = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)

# Lip contours from corner to corner.
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)

NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10

# The face outline as a closed loop, starting at the top of the forehead.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip

EYE_RING_POINTS = 8
"""Points that prepare adds around each iris so the iris moves as a disc with the gaze."""
OUTER_RING_SCALES = (1.25, 1.6, 2.2)
"""Rings of points around the face outline (scale from the face centre): forehead, hair, neck."""
