"""A contact sheet of a rendered video: evenly spaced frames with their times, in one PNG.

    infp-sdk render --portrait examples/portrait/astronaut.png \
        --own examples/conversation/own.wav --partner examples/conversation/partner.wav \
        -o conversation.mp4
    python examples/contact_sheet.py conversation.mp4 -o docs/images/render_contact_sheet.png

Needs ffmpeg (to decode) and Pillow.
"""

from __future__ import annotations

import argparse
import json
import subprocess

import numpy as np
from PIL import Image, ImageDraw

from infp_sdk.motion import FPS


def video_size(path: str) -> tuple[int, int, int]:
    """(width, height, frames) of the first video stream."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=width,height,nb_read_frames", "-of", "json", path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    return int(stream["width"]), int(stream["height"]), int(stream["nb_read_frames"])


def read_frames(path: str, width: int, height: int, wanted: set[int]) -> dict[int, np.ndarray]:
    """The frames whose indices are in ``wanted``, as uint8 RGB arrays."""
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # it complains when we stop reading early
    )
    size = width * height * 3
    out, index = {}, 0
    while len(out) < len(wanted):
        data = proc.stdout.read(size)
        if len(data) < size:
            break
        if index in wanted:
            out[index] = np.frombuffer(data, np.uint8).reshape(height, width, 3)
        index += 1
    proc.kill()
    proc.wait()
    proc.stdout.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--columns", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--tile", type=int, default=240, help="tile width in pixels")
    args = parser.parse_args()
    width, height, count = video_size(args.video)
    n = args.columns * args.rows
    picks = [int((k + 0.5) * count / n) for k in range(n)]
    frames = read_frames(args.video, width, height, set(picks))
    tile_w, tile_h = args.tile, int(args.tile * height / width)
    label_h = 18
    sheet = Image.new("RGB", (tile_w * args.columns, (tile_h + label_h) * args.rows), "white")
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(picks):
        x, y = (k % args.columns) * tile_w, (k // args.columns) * (tile_h + label_h)
        sheet.paste(Image.fromarray(frames[i]).resize((tile_w, tile_h)), (x, y))
        draw.text((x + 4, y + tile_h + 3), f"frame {i}  t={(i + 0.5) / FPS:.2f} s", fill="black")
    sheet.save(args.output)
    print(f"wrote {args.output}: {n} of {count} frames")


if __name__ == "__main__":
    main()
