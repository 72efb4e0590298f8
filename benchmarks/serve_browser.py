"""``infp-sdk serve`` in a real browser: headless Chromium talks with the avatar.

    python benchmarks/serve_browser.py [--seconds 24] [--size 320] [--out benchmarks/results]
                                       [--screenshot docs/images/serve.png]

Starts ``infp-sdk serve`` as a subprocess on a free loopback port and Debian's Chromium, headless,
with a fake microphone playing a WAV (a second espeak-ng voice: quiet, a sentence, quiet, a
sentence, looped by Chromium). The page is opened with ``?autostart=1`` and driven over the
DevTools protocol. While the conversation runs, the page's ``<video>`` is sampled every 80 ms: the
frames it decoded and, drawn into a canvas, the mouth region (found by rendering the portrait
with the jaw open and closed). Each sample carries the bot's state as the page shows it.

Measures: the video's frame rate as decoded by the browser, how much the mouth region changes
between samples while the avatar speaks and while the person speaks (it should rest then), the
replies and interruptions (barge-ins), and the server's voice-to-face offset. Saves
``serve_browser.json`` and a screenshot of the page taken while the avatar speaks. Needs the
``serve`` extra, espeak-ng and chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
USER_LINES = (
    "Well, I went for a long walk by the river this morning, and the weather was lovely.",
    "Wait, sorry to interrupt, but I have a question about what you just said.",
)
SAMPLE_EVERY_MS = 80


def chromium_path() -> str | None:
    """Chromium's executable: $CHROMIUM, else the first of the usual names on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


# ------------------------------------------------------------------------------ the microphone
def microphone_wav(path: Path, rate: int = 48_000) -> list[tuple[float, float]]:
    """The fake microphone: 5 s quiet (the bot greets), a sentence, 1.5 s quiet (the bot
    answers), then a sentence that talks over that answer, 3 s quiet. Returns the spans (s)
    where the person talks, within one loop of the file."""
    from infp_sdk.audio import resample
    from infp_sdk.serve.bot import speak

    pieces, spans, t = [], [], 0.0

    def quiet(seconds: float) -> None:
        nonlocal t
        pieces.append(np.zeros(int(seconds * rate), np.float32))
        t += seconds

    quiet(5.0)
    for line, gap in zip(USER_LINES, (1.5, 3.0), strict=True):
        pcm, sr = speak(line, voice="en-gb+f3", rate=150)
        x = resample(pcm.astype(np.float32) / 32768.0, sr, rate)
        pieces.append(0.7 * x / max(1e-6, float(np.abs(x).max())))
        spans.append((t, t + len(x) / rate))
        t += len(x) / rate
        quiet(gap)
    audio = np.concatenate(pieces)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return spans


# ------------------------------------------------------------------------------ the mouth
def face_boxes(size: int) -> dict[str, tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) in video pixels: ``mouth``, around what changes when the portrait
    opens its jaw, and ``midface``, the same width just above it (nose and cheeks), which moves
    with the head but not with the jaw."""
    from infp_sdk.face import load_portrait
    from infp_sdk.motion import NUM_BLENDSHAPES, blendshape_index

    renderer = load_portrait("astronaut", size=size)
    shapes = np.zeros(NUM_BLENDSHAPES, np.float32)
    rest = renderer.render(blendshapes=shapes).astype(np.int16)
    shapes[blendshape_index("jawOpen")] = 0.3
    diff = np.abs(renderer.render(blendshapes=shapes).astype(np.int16) - rest).max(axis=2)
    ys, xs = np.nonzero(diff > 40)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    above = max(0, y0 - 4 - (y1 - y0))
    return {"mouth": (x0, y0, x1, y1), "midface": (x0, above, x1, y0 - 4)}


# ------------------------------------------------------------------------------ the browser
class DevTools:
    """The DevTools protocol over a page's websocket: just enough to evaluate and screenshot."""

    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            reply = await self.ws.receive_json()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    async def eval(self, expression: str):
        result = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")


def launch_chromium(exe: str, url: str, wav: Path, profile: Path) -> tuple[subprocess.Popen, int]:
    """Headless Chromium on ``url`` with a fake microphone playing ``wav``; returns the process
    and its DevTools port."""
    args = [
        exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--mute-audio", f"--user-data-dir={profile}",
        "--remote-debugging-port=0", "--window-size=720,1000",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required", url,
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise RuntimeError(f"chromium did not start (exit {proc.poll()})")


SAMPLER = """
(() => {
  const boxes = %s;
  const video = document.getElementById("video");
  const canvases = Object.fromEntries(Object.entries(boxes).map(([name, [x0, y0, x1, y1]]) => {
    const c = document.createElement("canvas");
    c.width = x1 - x0; c.height = y1 - y0;
    return [name, c.getContext("2d", { willReadFrequently: true })];
  }));
  window.samples = [];
  setInterval(() => {
    const q = video.getVideoPlaybackQuality();
    const s = window.infp.status || {};
    const crops = {};
    for (const [name, [x0, y0, x1, y1]] of Object.entries(boxes)) {
      if (!video.videoWidth) break;
      const g = canvases[name];
      g.drawImage(video, x0, y0, x1 - x0, y1 - y0, 0, 0, x1 - x0, y1 - y0);
      const px = g.getImageData(0, 0, x1 - x0, y1 - y0).data;
      const grey = [];
      for (let i = 0; i < px.length; i += 4) grey.push((px[i] + px[i + 1] + px[i + 2]) / 3 | 0);
      crops[name] = grey;
    }
    window.samples.push({ t: performance.now() / 1000, frames: q.totalVideoFrames,
                          state: s.state || null, user: !!s.user_speaking,
                          width: video.videoWidth, crops });
  }, %d);
})()
"""


async def drive(url: str, port: int, seconds: float, boxes, screenshot: Path | None) -> dict:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                pages = [p for p in await r.json() if p.get("type") == "page"]
            if pages:
                break
            await asyncio.sleep(0.1)
        async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = DevTools(ws)
            t0 = time.monotonic()
            while await page.eval("window.infp && window.infp.connection") != "connected":
                error = await page.eval("window.infp && window.infp.error")
                if error or time.monotonic() - t0 > 30:
                    raise RuntimeError(f"the page did not connect: {error or 'timed out'}")
                await asyncio.sleep(0.1)
            connect_s = time.monotonic() - t0
            await page.eval(SAMPLER % (json.dumps(boxes), SAMPLE_EVERY_MS))
            shot, end = None, time.monotonic() + seconds
            while time.monotonic() < end:
                await asyncio.sleep(0.5)
                state = await page.eval("window.infp.status && window.infp.status.state")
                if shot is None and state == "speaking" and time.monotonic() > end - seconds / 2:
                    await asyncio.sleep(0.6)  # mid-sentence
                    shot = (await page.call("Page.captureScreenshot", format="png"))["data"]
            samples = await page.eval("window.samples")
            info = await page.eval("window.infp")
    if screenshot is not None and shot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        tmp = screenshot.with_suffix(".tmp")
        tmp.write_bytes(base64.b64decode(shot))
        tmp.replace(screenshot)
    return {"connect_s": connect_s, "samples": samples, "page": info}


# ------------------------------------------------------------------------------ analysis
def analyse(samples: list[dict]) -> dict:
    """Frame rate as decoded, and mouth movement by who is talking.

    Movement is the mean absolute change of a box's pixels from one sample to the next. The
    head moves the whole face, so the mouth's movement is taken relative to the midface's:
    ``articulation`` = mouth change / midface change, about 1 for a face that only moves as a
    whole and above it when the jaw and lips move on their own.
    """
    t = np.array([s["t"] for s in samples])
    frames = np.array([s["frames"] for s in samples], float)
    per_second = [
        (frames[j] - frames[i]) / (t[j] - t[i])
        for i in range(len(t))
        for j in [np.searchsorted(t, t[i] + 1.0)]
        if j < len(t)
    ]
    change: dict[str, dict[str, list[float]]] = {
        who: {"mouth": [], "midface": []} for who in ("avatar_speaking", "user_speaking")
    }
    for before, now in zip(samples, samples[1:], strict=False):
        if not before["crops"] or not now["crops"] or before["state"] != now["state"]:
            continue
        if now["state"] == "speaking" and not now["user"]:
            who = "avatar_speaking"
        elif now["state"] == "listening" and now["user"]:
            who = "user_speaking"
        else:
            continue
        for box in ("mouth", "midface"):
            a, b = (np.array(s["crops"][box], float) for s in (before, now))
            change[who][box].append(float(np.abs(b - a).mean()))
    moved = {}
    for who, boxes in change.items():
        mouth, midface = (float(np.mean(v)) if v else None for v in boxes.values())
        moved[who] = {
            "samples": len(boxes["mouth"]),
            "mouth_change": mouth,
            "midface_change": midface,
            "articulation": mouth / midface if mouth and midface else None,
        }
    return {
        "fps_mean": float((frames[-1] - frames[0]) / (t[-1] - t[0])),
        "fps_min_1s": float(min(per_second)) if per_second else None,
        "video_width": max(s["width"] for s in samples),
        **moved,
    }


def run(seconds: float, size: int, screenshot: Path | None, samples: Path | None = None) -> dict:
    exe = chromium_path()
    if exe is None:
        raise SystemExit("chromium not found: apt-get install chromium (or set $CHROMIUM)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = tmp / "microphone.wav"
        user_spans = microphone_wav(wav)
        boxes = face_boxes(size)
        server = subprocess.Popen(
            [sys.executable, "-m", "infp_sdk", "serve", "--port", "0", "--size", str(size)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        browser = None
        try:
            line = server.stdout.readline()
            m = re.search(r"open (http://\S+)", line)
            if not m:
                raise RuntimeError(f"infp-sdk serve did not start: {line}{server.stderr.read()}")
            url = m.group(1)
            browser, port = launch_chromium(exe, url + "?autostart=1", wav, tmp / "profile")
            result = asyncio.run(drive(url, port, seconds, boxes, screenshot))
            with urllib.request.urlopen(url + "status") as r:
                status = json.load(r)
        finally:
            if browser is not None:
                browser.terminate()
                browser.wait(10)
            server.send_signal(signal.SIGINT)
            try:
                server_exit = server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server_exit = "killed"
        conversation = status["conversation"] or {}
    if samples is not None:  # for a closer look: every sample, mouth crops included
        samples.write_text(json.dumps(result["samples"]))
    return {
        "size": size,
        "seconds": seconds,
        "connect_s": result["connect_s"],
        **analyse(result["samples"]),
        "boxes": boxes,
        "user_spans_s": user_spans,
        "server": conversation,
        "server_exit": server_exit,
        "page_error": result["page"].get("error"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=24.0)
    ap.add_argument("--size", type=int, help="video side (default: infp-sdk serve's)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--screenshot", type=Path, help="save a screenshot of the page here")
    ap.add_argument("--samples", type=Path, help="save the page's samples (JSON) here")
    args = ap.parse_args()
    if args.size is None:
        from infp_sdk.serve.server import ServeOptions

        args.size = ServeOptions().size
    from infp_sdk.bench import machine

    result = {"machine": machine(), **run(args.seconds, args.size, args.screenshot, args.samples)}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "serve_browser.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("connect_s", "fps_mean", "fps_min_1s", "avatar_speaking", "user_speaking",
            "server_exit")  # fmt: skip
    for k in keys:
        print(f"{k:28s} {result[k]}")
    s = result["server"]
    print(f"{'server':28s} replies {s.get('replies')}, barge-ins {s.get('barge_ins')}, "
          f"voice held back {s.get('delay_ms')} ms, av offset {s.get('av_offset_ms')} ms, "
          f"late {s.get('late_frames')}/"
          f"{s.get('frames_out')}, dropped {s.get('video_dropped')}")  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
