"""End-to-end latency of `infp-sdk live` as an app on its ZeroMQ sockets sees it.

    python benchmarks/live_latency.py [--seconds 20] [--no-pace] [--hop N] [--backend B]
        [--threads N] [--model M] [--out DIR]

Starts the real command as a subprocess (``python -m infp_sdk live --own zmq --partner zmq``
with the motion, control and audio sockets on free loopback ports, ``--status-interval 1`` so
that a status line falls near the end of the audio, and otherwise its defaults: no ``--hop`` or
``--backend`` unless given), reads the endpoints it prints, and then acts as an
app would: a :class:`~infp_sdk.io.MotionSubscriber` on the motion topic, an
:class:`~infp_sdk.io.AudioSender` that streams the bundled conversation (``own.wav`` and
``partner.wav``, looped to ``--seconds``) in 20 ms chunks at real-time pace.

Latency of a frame (mouth-to-face, the definition of ``infp_sdk.bench`` extended over the
sockets) = the wall time its ``motion`` message was decoded by the subscriber - the wall time the
chunk holding the frame's centre sample, ``(index + 0.5) * SAMPLES_PER_MOTION_FRAME`` on the
agent's 16 kHz clock, was sent. It covers everything a user of the sockets waits for: the audio
socket, the mixer's jitter buffer (``--latency``), the rest of the frame and the encoder's
look-ahead, the hop, compute, the pacing of the sinks (unless ``--no-pace``), publishing and the
motion socket.

Alignment. The agent's frame 0 starts at the first sample the mixer pushed after the last start
or reset, and the mixer pushes silence until audio arrives; a stream that (re)starts is queued
so that its first chunk ends ``latency`` after it arrived. So the benchmark first waits for
motion (the process is warm), sends ``reset`` on the control socket (the mixer's clock and the
agent restart at sample 0 while the request is served), and sends its first chunk a set time
later: sent sample ``s`` is agent sample ``s + offset`` with ``offset`` = (first send - reset) *
16 kHz + (latency * 16 kHz - chunk). The set time is chosen so that every frame's centre sample
falls in the middle of a sent chunk, which keeps the mapping exact under up to 10 ms of timing
error (the reset's round trip, which is saved, and socket delays). In ``infp_sdk.bench`` the
centre sample starts its chunk instead, so the same system reads about 10 ms more here. The
mixer keeps a stream on the wall clock (audio that comes too late is replaced by silence and then
dropped), so the mapping holds through underruns too.

Also reported: frames received against the frames whose centre lies in the sent audio, the live
process's own status line (its p95 latency: pull from the agent - push into the agent of the
frame's centre sample, i.e. mouth-to-face inside the process; playout delay; underruns), the rest
of the p95 outside the agent, and the live process's CPU seconds per second of audio (its
/proc/PID/stat over the measured span, in which it takes audio at real-time pace) and peak RSS,
how late the sender's chunks went out, and the machine's load average before and after.

Each run is stored in ``live_latency.json`` under ``--out`` by its label (its settings: the paced
default, ``no-pace``, ``hop 2``, ...), replacing an earlier run with the same label, so runs with
and without ``--no-pace`` sit side by side; ``live_latency.png`` plots every run in the file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from infp_sdk.audio import SAMPLE_RATE, SAMPLES_PER_MOTION_FRAME, load_audio
from infp_sdk.bench import CHUNK, looped, machine
from infp_sdk.io import AudioSender, ControlClient, MotionSubscriber
from infp_sdk.io.protocol import Hello, Motion
from infp_sdk.live import DEFAULTS
from infp_sdk.motion import FPS

ROOT = Path(__file__).resolve().parent.parent
FRAME = SAMPLES_PER_MOTION_FRAME
STARTUP_TIMEOUT_S = 180.0  # model loading on a busy machine
MOTION_TIMEOUT_S = 60.0  # first motion after the sockets are up
TAIL_TIMEOUT_S = 20.0  # last frame after the last chunk was sent
LEAD_IN_S = 0.05  # from the reset to the first chunk (at least; then aligned)
STATUS_INTERVAL_S = 1.0


# ----------------------------------------------------------------------------------------------
# The live process
# ----------------------------------------------------------------------------------------------


class LiveProcess:
    """``infp-sdk live`` as a subprocess; stderr lines are kept with the time they were read."""

    ENDPOINT = re.compile(r"live: (motion|control|audio input) on (\S+)")

    def __init__(self, args: list[str]):
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "infp_sdk", "live", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.endpoints: dict[str, str] = {}
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                m = self.ENDPOINT.match(line)
                if m:
                    self.endpoints[m.group(1)] = m.group(2)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_endpoints(self, wanted: tuple[str, ...], timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all(w in self.endpoints for w in wanted):
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError("infp-sdk live exited early:\n" + self.log())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"infp-sdk live printed no endpoints in {timeout:.0f} s:\n"
                                       + self.log())  # fmt: skip
                self._changed.wait(min(left, 0.5))
        return dict(self.endpoints)

    def log(self) -> str:
        with self._changed:
            return "\n".join(line for _, line in self.lines)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (/proc/PID/stat)."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode


class Receiver(threading.Thread):
    """Subscribes to the motion topic; records (index, t, seq, decode time) of every message."""

    def __init__(self, endpoint: str, agent: str):
        super().__init__(daemon=True)
        self.endpoint, self.agent = endpoint, agent
        self.records: list[tuple[int, float, int, float]] = []
        self.hello: Hello | None = None
        self.dropped = self.errors = 0
        self.ready = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        sub = MotionSubscriber(self.endpoint, agent=self.agent)
        try:
            self.ready.set()
            while not self._halt.is_set():
                msg = sub.recv(timeout=0.05)
                now = time.monotonic()
                if isinstance(msg, Motion):
                    self.records.append((msg.index, msg.t, msg.seq, now))
                elif isinstance(msg, Hello):
                    self.hello = msg
            self.dropped, self.errors = sub.dropped, sub.errors
        finally:
            sub.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


# ----------------------------------------------------------------------------------------------
# Alignment and analysis
# ----------------------------------------------------------------------------------------------


def first_chunk_lead(latency_s: float) -> int:
    """Agent samples between the mixer's clock position when a stream's first chunk arrives and
    that chunk's first sample (the chunk ends ``latency`` after it arrived)."""
    return max(0, int(latency_s * SAMPLE_RATE) - CHUNK)


def lead_in(latency_s: float, at_least: float) -> float:
    """Seconds from the reset to the first chunk, at least ``at_least``, such that every frame's
    centre sample lies in the middle of a sent chunk."""
    base = math.ceil(at_least * SAMPLE_RATE)
    phase = (base + first_chunk_lead(latency_s) - FRAME // 2) % CHUNK
    return (base + (CHUNK // 2 - phase) % CHUNK) / SAMPLE_RATE


def expected_frames(offset: int, n_samples: int) -> range:
    """Frame indices whose centre sample lies in the sent audio (agent samples offset..)."""
    first = -(-(offset - FRAME // 2) // FRAME)
    last = (offset + n_samples - 1 - FRAME // 2) // FRAME
    return range(max(first, 0), last + 1)


def epoch_after(records: list, since: float) -> list:
    """The records of the agent's clock restarted by a reset sent at ``since``: from the first
    record decoded after ``since`` whose index went back (to 0, below the frames of before the
    reset, which may still arrive for a moment); [] if none did."""
    for k in range(1, len(records)):
        if records[k][3] >= since and records[k][0] < records[k - 1][0]:
            return records[k:]
    return []


def analyse(records: list, sent_at: np.ndarray, offset: int) -> dict:
    """Per-frame latency of the frames whose centre lies in the sent audio.

    ``records``: (index, t, seq, decode time) after the reset; ``sent_at``: send time of each
    chunk; ``offset``: agent sample of sent sample 0.
    """
    n_samples = len(sent_at) * CHUNK
    expected = expected_frames(offset, n_samples)
    seen: dict[int, float] = {}
    duplicates = out_of_order = 0
    last = -1
    for index, _t, _seq, decoded in records:
        if index <= last:
            out_of_order += 1
        last = max(last, index)
        if index not in expected:
            continue
        if index in seen:
            duplicates += 1
            continue
        seen[index] = decoded
    indices = np.array(sorted(seen), dtype=np.int64)
    centre = indices * FRAME + FRAME // 2 - offset  # sent sample at each frame's centre
    decoded = np.array([seen[i] for i in indices.tolist()])
    heard = sent_at[centre // CHUNK] if len(indices) else np.zeros(0)
    lat = (decoded - heard) * 1000
    return {
        "expected": len(expected),
        "first_index": expected.start,
        "last_index": expected.stop - 1,
        "received": int(len(indices)),
        "missing": len(expected) - int(len(indices)),
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "indices": indices,
        "audio_s": centre / SAMPLE_RATE,
        "latency_ms": lat,
    }


STATUS = re.compile(
    r"live\s+(?P<elapsed>[\d.]+) s\s+(?P<fps>[\d.]+) fps\s+p95 latency (?P<p95>\d+|-)(?: ms)?"
    r"(?:\s+playout delay (?P<delay>\d+) ms)?\s+dropped (?P<dropped>\d+)\s+frames (?P<frames>\d+)"
    r"\s+audio underrun (?P<under>[\d.]+) s overrun (?P<over>[\d.]+) s"
)


def parse_status(line: str) -> dict | None:
    m = STATUS.search(line)
    if m is None:
        return None
    num = lambda k, f=float: None if m.group(k) in (None, "-") else f(m.group(k))  # noqa: E731
    return {
        "fps": num("fps"),
        "p95_latency_ms": num("p95"),
        "playout_delay_ms": num("delay"),
        "dropped": num("dropped", int),
        "frames": num("frames", int),
        "audio_underrun_s": num("under"),
        "audio_overrun_s": num("over"),
    }


def _percentiles(x: np.ndarray) -> dict[str, float]:
    if not len(x):
        return {}
    out = {f"p{q}": round(float(np.percentile(x, q)), 1) for q in (50, 95, 99)}
    out.update(mean=round(float(x.mean()), 1), min=round(float(x.min()), 1),
               max=round(float(x.max()), 1))  # fmt: skip
    return out


# ----------------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------------


def live_args(opts: argparse.Namespace, endpoint: str = "tcp://127.0.0.1:*") -> list[str]:
    """The arguments of ``infp-sdk live`` for these options (its defaults unless given)."""
    args = ["--own", "zmq", "--partner", "zmq", "--zmq", endpoint, "--control", endpoint,
            "--audio-in", endpoint, "--status-interval", f"{STATUS_INTERVAL_S:g}"]  # fmt: skip
    if opts.model:
        args += ["--model", str(opts.model)]
    if opts.hop:
        args += ["--hop", str(opts.hop)]
    if opts.backend:
        args += ["--backend", opts.backend]
    if opts.threads:
        args += ["--threads", str(opts.threads)]
    if opts.no_pace:
        args.append("--no-pace")
    return args


def label(opts: argparse.Namespace) -> str:
    parts = []
    if opts.hop:
        parts.append(f"hop {opts.hop}")
    if opts.backend:
        parts.append(opts.backend)
    if opts.threads:
        parts.append(f"{opts.threads} threads")
    if opts.model:
        parts.append(f"model {Path(str(opts.model)).name}")
    parts.append("no-pace" if opts.no_pace else "paced")
    return ", ".join(parts)


def model_settings(model: str | None, hop: int | None, backend: str | None) -> dict:
    """What the live process will run: the model's hop and look-ahead, and the backend that
    "auto" resolves to (as the Agent resolves it)."""
    import torch

    from infp_sdk.model.checkpoint import load_model

    name = model or DEFAULTS["model"]
    cfg = load_model(name).config
    backend = backend or DEFAULTS["backend"]
    if backend == "auto":
        try:
            from infp_sdk.runtime.engine import pick_backend

            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            backend = pick_backend(name, device)
        except ImportError:
            pass
    return {
        "backend": backend,
        "hop_frames": hop or getattr(cfg, "hop", None) or cfg.window,
        "lookahead_frames": cfg.encoder.lookahead,
        "steps": cfg.steps,
        "cfg_scale": cfg.cfg_scale,
    }


def run(opts: argparse.Namespace, log=print) -> dict:
    """Start ``infp-sdk live``, stream the conversation through its sockets, time the motion."""
    folder = ROOT / "examples" / "conversation"
    own, partner = looped(load_audio(folder / "own.wav"), load_audio(folder / "partner.wav"),
                          opts.seconds)  # fmt: skip
    chunks = len(own) // CHUNK
    latency_s = float(DEFAULTS["latency"])  # the mixer's jitter buffer (not changed here)
    settings = {
        "seconds": opts.seconds,
        "chunk_ms": 1000 * CHUNK / SAMPLE_RATE,
        "pace": not opts.no_pace,
        "hop": opts.hop,
        "backend_option": opts.backend,
        "threads": opts.threads,
        "model": Path(str(opts.model)).name if opts.model else DEFAULTS["model"],
        "mixer_latency_s": latency_s,
        **model_settings(opts.model, opts.hop, opts.backend),
    }
    args = live_args(opts)
    agent = DEFAULTS["agent"]
    log(f"{label(opts)}: starting infp-sdk live {' '.join(args)}")
    load_before = os.getloadavg()[0]
    t_spawn = time.monotonic()
    live = LiveProcess(args)
    receiver = control = sender = None
    try:
        endpoints = live.wait_endpoints(("motion", "control", "audio input"), STARTUP_TIMEOUT_S)
        t_up = time.monotonic()
        receiver = Receiver(endpoints["motion"], agent)
        receiver.start()
        receiver.ready.wait(5)
        control = ControlClient(endpoints["control"], timeout=10)
        sender = AudioSender(endpoints["audio input"])
        # warm: wait for two hops of motion (the agent made frames from the mixer's silence)
        warm = max(2 * settings["hop_frames"], int(FPS))
        deadline = time.monotonic() + MOTION_TIMEOUT_S
        while len(receiver.records) < warm:
            if live.proc.poll() is not None:
                raise RuntimeError("infp-sdk live exited:\n" + live.log())
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no motion from infp-sdk live within {MOTION_TIMEOUT_S:.0f} s "
                    f"({len(receiver.records)} messages, hello "
                    f"{'seen' if receiver.hello else 'not seen'}):\n" + live.log()
                )
            time.sleep(0.02)
        t_motion = time.monotonic()

        # t = 0: reset, then the first chunk at a time that puts frame centres mid-chunk
        t_req = time.monotonic()
        reply = control.reset()
        t_rep = time.monotonic()
        if not reply.ok:
            raise RuntimeError(f"reset failed: {reply}")
        t_reset = (t_req + t_rep) / 2
        t0 = t_reset + lead_in(latency_s, LEAD_IN_S + (t_rep - t_reset))
        sent_at = np.zeros(chunks)
        late_ms = np.zeros(chunks)
        cpu0 = None
        for k in range(chunks):
            due = t0 + k * CHUNK / SAMPLE_RATE
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if k == 0:
                cpu0 = live.cpu_seconds()
            piece = slice(k * CHUNK, (k + 1) * CHUNK)
            sent_at[k] = now = time.monotonic()
            late_ms[k] = (now - due) * 1000
            sender.send("own", own[piece], SAMPLE_RATE)
            sender.send("partner", partner[piece], SAMPLE_RATE)
        t_sent = time.monotonic()
        offset = round((sent_at[0] - t_reset) * SAMPLE_RATE) + first_chunk_lead(latency_s)
        last_needed = expected_frames(offset, chunks * CHUNK).stop - 1
        deadline = t_sent + TAIL_TIMEOUT_S
        while time.monotonic() < deadline and live.proc.poll() is None:
            done = epoch_after(list(receiver.records), t_req)
            if done and done[-1][0] >= last_needed:
                break
            time.sleep(0.02)
        t_end = time.monotonic()
        cpu1 = live.cpu_seconds()
        peak_rss = live.peak_rss_mb()
        sender.drain(timeout=1.0)
        stats = control.request("stats").stats
    finally:
        for part in (control, sender):
            if part is not None:
                part.close()
        if receiver is not None:
            receiver.stop()
        code = live.stop()
    log_text = live.log()
    if code != 0:
        raise RuntimeError(f"infp-sdk live exited with status {code}:\n{log_text}")

    records = epoch_after(receiver.records, t_req)
    result = analyse(records, sent_at, offset)
    lat = result.pop("latency_ms")
    indices = result.pop("indices")
    audio_s = result.pop("audio_s")
    # the live process's status lines during the measured span; the one printed last before
    # the last frame arrived covers the final 250 frames (10 s) of the sent audio
    status = []
    for at, line in live.lines:
        parsed = parse_status(line)
        if parsed is not None and t_reset <= at <= t_end:
            status.append({"at_s": round(at - t0, 2), **parsed, "line": line.strip()})
    last_frame_at = records[-1][3] if records else t_end
    final = [s for s in status if s["at_s"] <= last_frame_at - t0 + 1e-9 and s["at_s"] > 0]
    final = final[-1] if final else (status[-1] if status else None)
    # underruns while the audio was coming (once it stops, each channel counts up to the mixer's
    # idle time as underrun before it is idle: not a fault)
    sending = [s for s in status if s["at_s"] <= t_sent - t0]
    underrun = sending[-1]["audio_underrun_s"] if sending else None
    window = lat[-min(len(lat), 250) :]
    e2e = _percentiles(lat)
    e2e_window_p95 = round(float(np.percentile(window, 95)), 1) if len(window) else None
    in_process = final["p95_latency_ms"] if final else None
    split = None
    if in_process is not None and e2e_window_p95 is not None:
        rest = e2e_window_p95 - in_process - latency_s * 1000
        split = {
            "end_to_end_p95_ms": e2e_window_p95,
            "in_process_p95_ms": in_process,
            "mixer_jitter_buffer_ms": latency_s * 1000,
            "pacing_and_sockets_ms": round(rest, 1),
            "note": "p95 over the last 250 frames (the status line's window) split into the "
            "status line's p95 (mouth-to-face inside the process: the rest of the frame, the hop, "
            "the look-ahead and compute), the mixer's jitter buffer, and the rest: pacing, "
            "publishing and both sockets. A "
            "difference of percentiles, so approximate (about +-20 ms: chunk and tick sizes)",
        }
    audio_seconds = t_end - t0  # the mixer takes audio at real-time pace over the span
    bench_cmd = "python benchmarks/live_latency.py" + "".join(
        f" {shlex.quote(a)}" for a in opts.argv
    )
    return {
        "label": label(opts),
        "machine": machine(),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "command": "python -m infp_sdk live " + " ".join(shlex.quote(a) for a in args),
        "benchmark_command": bench_cmd,
        "settings": settings,
        "latency_ms": e2e,
        "latency_ms_last_250_frames_p95": e2e_window_p95,
        "frames": {
            **result,
            "seq_gaps": receiver.dropped,
            "decode_errors": receiver.errors,
        },
        "status_line": final,
        "audio_underrun_while_sending_s": underrun,
        "status_lines": status,
        "split_p95": split,
        "cpu_s_per_audio_s": round((cpu1 - cpu0) / audio_seconds, 3),
        "live_peak_rss_mb": None if peak_rss is None else round(peak_rss, 1),
        "startup_s": {
            "endpoints": round(t_up - t_spawn, 2),
            "first_motion_warm": round(t_motion - t_up, 2),
        },
        "alignment": {
            "offset_samples": int(offset),
            "centre_in_chunk_samples": int((FRAME // 2 - offset) % CHUNK),
            "reset_round_trip_ms": round((t_rep - t_req) * 1000, 2),
            "send_late_ms": _percentiles(late_ms),
            # sent so late that the mixer had to fill silence (the sender's fault, not live's)
            "chunks_later_than_jitter_buffer": int(
                np.sum(late_ms > 1000 * (latency_s - CHUNK / SAMPLE_RATE))
            ),
            "chunks_sent_over_20_ms_late": [
                [round(k * CHUNK / SAMPLE_RATE, 2), round(float(late_ms[k]), 1)]
                for k in np.flatnonzero(late_ms > 20)[:50]
            ],
        },
        "server_stats": stats,
        "series": {
            "index": indices.tolist(),
            "audio_s": np.round(audio_s, 4).tolist(),
            "latency_ms": np.round(lat, 2).tolist(),
        },
    }


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------


def summary(run_: dict) -> str:
    lat, fr, st = run_["latency_ms"], run_["frames"], run_["status_line"] or {}
    split = run_["split_p95"] or {}
    fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    return (
        f"{run_['label']}: latency p50 {fmt(lat.get('p50'))} / p95 {fmt(lat.get('p95'))} / "
        f"p99 {fmt(lat.get('p99'))} ms; frames {fr['received']}/{fr['expected']}; "
        f"status line p95 {fmt(st.get('p95_latency_ms'))} ms, playout delay "
        f"{fmt(st.get('playout_delay_ms'))} ms; pacing + sockets "
        f"{fmt(split.get('pacing_and_sockets_ms'))} ms; "
        f"CPU {run_['cpu_s_per_audio_s']:.2f} s per audio s"
    )


def save(run_: dict, out: Path) -> Path:
    """Add ``run_`` to ``out/live_latency.json`` (replacing a run of the same label), plot all."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "live_latency.json"
    runs = []
    if path.exists():
        try:
            runs = json.loads(path.read_text()).get("runs", [])
        except (json.JSONDecodeError, AttributeError):
            runs = []
    runs = [r for r in runs if r.get("label") != run_["label"]] + [run_]
    result = {
        "benchmark": "live_latency",
        "definition": "decode time of the motion message in a subscriber - send time of the "
        "20 ms audio chunk holding the frame's centre sample",
        "runs": runs,
    }
    from infp_sdk import _atomic

    _atomic.write_text(path, json.dumps(result, indent=1))
    plot(runs, out / "live_latency.png")
    return path


def plot(runs: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    for r in runs:
        s = r["series"]
        p95 = r["latency_ms"].get("p95", 0)
        (line,) = ax.plot(
            s["audio_s"], s["latency_ms"], lw=1, label=f"{r['label']} (p95 {p95:.0f} ms)"
        )
        status = (r.get("status_line") or {}).get("p95_latency_ms")
        if status is not None:
            ax.axhline(status, color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel("audio time (s): the frame's centre in the sent conversation")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title("infp-sdk live over ZeroMQ: motion decoded - its audio chunk sent\n"
                 "(dotted: the live process's status-line p95)", fontsize=10)  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio sent (looped)")
    parser.add_argument("--hop", type=int, help="passed to live (default: live's, the model's)")
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], help="passed to live")
    parser.add_argument("--no-pace", action="store_true", help="pass --no-pace to live")
    parser.add_argument("--threads", type=int, help="passed to live (the model's CPU threads)")
    parser.add_argument("--model", help="passed to live (default: the bundled model)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = parser.parse_args(argv)
    opts.argv = list(argv)
    result = run(opts)
    path = save(result, Path(opts.out))
    print(summary(result))
    print(f"saved {path} and {path.with_suffix('.png').name}")
    return result


if __name__ == "__main__":
    main()
