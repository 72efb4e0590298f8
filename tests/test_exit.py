"""Exiting with work in flight: a script that forgets close(), or gets Ctrl-C, exits cleanly.

Each case runs a real script in a subprocess with the bundled model. Before infp_sdk is
imported the script registers an atexit hook, which therefore runs after the SDK's own exit
handler, and prints the SDK threads still alive then: there must be none, or a daemon thread
inside torch could be killed mid-call during finalisation (SIGABRT, "terminate called without an
active exception").
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

from conftest import ROOT

PORTRAIT = ROOT / "examples" / "portrait" / "astronaut.png"

# Registered before infp_sdk is imported, so it runs after the SDK's exit handler. A script
# that sets end_of_script as its last statement also learns how long the exit handlers took.
PROLOGUE = """
import atexit, threading, time
def report_at_exit():
    alive = sorted(t.name for t in threading.enumerate() if t.name.startswith("infp-"))
    print("alive at exit:", alive, flush=True)
    if "end_of_script" in globals():
        print(f"exit took {time.monotonic() - end_of_script:.2f} s", flush=True)
atexit.register(report_at_exit)
import numpy as np
import infp_sdk
speech = (np.random.default_rng(0).standard_normal(16000 * 20) * 0.1).astype(np.float32)
"""


def run_script(body: str, timeout: float = 180) -> subprocess.CompletedProcess:
    script = PROLOGUE + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_clean_exit(res: subprocess.CompletedProcess, returncode: int = 0) -> None:
    report = f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr[-4000:]}"
    assert "terminate called" not in res.stderr, report
    assert res.returncode == returncode, report
    assert "alive at exit: []" in res.stdout, report


def test_an_unclosed_agent_mid_generation_exits_cleanly():
    res = run_script("""
        agent = infp_sdk.Agent()
        agent.push(own=speech, sample_rate=16000)
        time.sleep(0.3)
        print("generated before exit:", agent.frames_generated, flush=True)
    """)
    assert_clean_exit(res)
    generated = int(res.stdout.split("generated before exit:")[1].split()[0])
    assert generated < 500, "the script should end while the agent is still generating"


def test_an_unclosed_engine_with_two_agents_exits_cleanly():
    res = run_script("""
        engine = infp_sdk.Engine()
        talker, listener = engine.agent(seed=1), engine.agent(seed=2)
        talker.push(own=speech)
        listener.push(partner=speech)
        time.sleep(0.3)
    """)
    assert_clean_exit(res)


def test_an_unclosed_portrait_agent_exits_cleanly_while_rendering():
    res = run_script(f"""
        agent = infp_sdk.Agent({str(PORTRAIT)!r})
        agent.push(own=speech)
        while not agent.pull():  # wait until frames are rendered: the renderer is busy
            time.sleep(0.05)
        print("rendering", flush=True)
    """)
    assert_clean_exit(res)
    assert "rendering" in res.stdout


def test_unclosed_live_pieces_are_stopped_at_exit(tmp_path):
    wav = tmp_path / "own.wav"
    res = run_script(f"""
        from infp_sdk.audio.sources import AudioMixer, WavFileSource
        from infp_sdk.audio.wav import write_wav
        from infp_sdk.io import ControlServer, MotionPublisher
        from infp_sdk.io.sinks import Output

        class Discard:
            def send(self, frame): pass
            def close(self): pass

        write_wav({str(wav)!r}, speech, 16000)
        agent = infp_sdk.Agent()
        mixer = AudioMixer(agent.push).start()
        WavFileSource({str(wav)!r}, mixer, "own").start()
        publisher = MotionPublisher("tcp://127.0.0.1:*")
        output = Output(Discard())
        server = ControlServer(None, "tcp://127.0.0.1:*")
        deadline = time.monotonic() + 60
        while agent.frames_generated == 0 and time.monotonic() < deadline:
            for frame in agent.pull():
                publisher.publish(frame)
                output.put(frame)
            time.sleep(0.02)
        print("streaming", agent.frames_generated, flush=True)
    """)
    assert_clean_exit(res)
    assert "streaming" in res.stdout


STREAM_UNTIL_INTERRUPTED = """
    agent = infp_sdk.Agent()
    chunk = 16000 // 50  # 20 ms, as an audio callback would deliver it
    for i in range(0, len(speech), chunk):
        agent.push(own=speech[i : i + chunk])
    for index, frame in enumerate(agent):  # blocks for frames: nothing closes the agent
        if index == 0:
            print("streaming", flush=True)
"""


def _sigint_as_at_a_terminal() -> None:
    # A test run started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler: give the child what a terminal
    # session has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_while_streaming(body: str, tmp_path) -> subprocess.CompletedProcess:
    """Run ``body``, and send it SIGINT (Ctrl-C) once it prints "streaming"."""
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", PROLOGUE + textwrap.dedent(body)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=_sigint_as_at_a_terminal,
        )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout])
    reader.start()
    stdout = []
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("streaming") for line in stdout):
            stdout.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        time.sleep(0.2)  # the worker is generating the rest of the queued audio now
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
    while not lines.empty():
        stdout.append(lines.get())
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, "".join(stdout), stderr_path.read_text()
    )


def test_ctrl_c_while_streaming_exits_cleanly(tmp_path):
    body = "try:" + textwrap.indent(textwrap.dedent(STREAM_UNTIL_INTERRUPTED), "    ")
    body += "\nexcept KeyboardInterrupt:\n    print('interrupted', flush=True)\n"
    res = interrupt_while_streaming(body, tmp_path)
    assert_clean_exit(res)
    assert "interrupted" in res.stdout


def test_an_uncaught_ctrl_c_ends_the_process_by_sigint_not_sigabrt(tmp_path):
    res = interrupt_while_streaming(STREAM_UNTIL_INTERRUPTED, tmp_path)
    # Python's own convention for an uncaught KeyboardInterrupt: the traceback, then SIGINT
    assert_clean_exit(res, returncode=-signal.SIGINT)
    assert "KeyboardInterrupt" in res.stderr


def test_exit_stops_after_the_running_batch_not_the_queued_work():
    # three minutes of queued audio are half a minute of generation on a CPU; exit must not
    # wait for it
    res = run_script("""
        agent = infp_sdk.Agent()
        agent.push(own=np.tile(speech, 9))
        time.sleep(0.3)
        end_of_script = time.monotonic()
    """)
    assert_clean_exit(res)
    took = float(res.stdout.split("exit took")[1].split()[0])
    assert took < 5.0, res.stdout


def test_ctrl_c_in_asyncio_while_waiting_for_frames_exits_cleanly(tmp_path):
    # asyncio.run waits for its executor threads on the way out: one still blocked in a wait
    # for frames that never come would hang the process instead
    res = interrupt_while_streaming(
        """
        import asyncio

        async def main():
            agent = infp_sdk.Agent()
            agent.push(own=speech[:16000])  # a second of audio: then the stream waits for more
            index = 0
            async for frame in agent:
                if index == 9:
                    print("streaming", flush=True)
                index += 1

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """,
        tmp_path,
    )
    assert_clean_exit(res)
    assert "interrupted" in res.stdout
