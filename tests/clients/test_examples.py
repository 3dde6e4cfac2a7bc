"""clients/examples: every example runs as a script against a live runtime,
exits 0 and prints what it is meant to show; a new example without a check
here fails ``test_every_example_is_checked``."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "clients" / "examples"
#: seconds one example may take (it runs for 1 s; the rest is start-up and baking)
TIMEOUT_S = 60

STREAM = r"s\d{6}"
#: example -> (extra arguments, patterns its stdout must match); OUT is replaced by the test's folder
CHECKS: dict[str, tuple[list[str], list[str]]] = {
    "print_frames.py": (["--label", "high_smile"], [
        r"connected to tcp://127\.0\.0\.1:\d+: runtime \S+, protocol v1",
        rf"{STREAM} high_smile: +[1-9][\d.]* fps, latency p50 [\d.]+ ms max [\d.]+ ms, dropped \d+ \(seq \d+",
        rf"closed {STREAM}: the engine built [1-9]\d* frames, skipped \d+; this client received [1-9]\d*",
    ]),
    "asyncio_two_streams.py": ([], [
        rf"({STREAM}): showed [1-9]\d* of the [1-9]\d* frames built(?:.|\n)*"
        rf"(?!\1){STREAM}: showed [1-9]\d* of the [1-9]\d* frames built",
        r"received [1-9]\d* frames in all",
    ]),
    "blendshapes_to_rig.py": (["--label", "mouth_open"], [
        rf"{STREAM} t +[\d.]+ s mouth_open: vertices: inner-lip gap +[\d.]+ mm -> ",
        r"[1-9]\d* frames; inner-lip gap: template [\d.]+ mm",
    ]),
    "save_take.py": (["--out", "OUT/take.npz", "OUT/take.glb"], [
        rf"took [1-9]\d* frames of {STREAM} over [\d.]+ s \(\d+ dropped",
        r"wrote \S+take\.npz \([\d.]+ MiB\)",
        r"wrote \S+take\.glb \([\d.]+ MiB: \d+ morph targets, max error [\d.]+ mm",
    ]),
}


def _run(example: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(EXAMPLES / example), *[a.replace("OUT", str(tmp_path)) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path)


def test_every_example_is_checked():
    found = sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != "__init__.py")
    assert found == sorted(CHECKS), f"clients/examples has {found}; CHECKS in {__file__} covers {sorted(CHECKS)}"


def test_examples_run_against_a_live_runtime(serve_runtime, tmp_path):
    live = serve_runtime()
    common = ["--url", live.zmq, "--control", live.control, "--seconds", "1"]
    failures, stdout = [], {}
    for example, (extra, patterns) in sorted(CHECKS.items()):
        t0 = time.monotonic()
        done = _run(example, common + extra, tmp_path)
        stdout[example] = done.stdout
        said = f"{example} (exit {done.returncode}, {time.monotonic() - t0:.1f} s)\n--- stdout\n{done.stdout}" \
               f"--- stderr\n{done.stderr[-3000:]}"
        if done.returncode != 0:
            failures.append(said)
            continue
        missing = [p for p in patterns if not re.search(p, done.stdout)]
        if missing:
            failures.append(f"{said}\n--- missing {missing}")
    assert not failures, "\n\n".join(failures)

    # save_take.py's files are what it says
    from clients.recording import load_recording

    took = int(re.search(r"took (\d+) frames", stdout["save_take.py"]).group(1))
    recording = load_recording(tmp_path / "take.npz")
    assert len(recording) == took >= 10 and recording.weights is None      # generate streams send no bs
    assert np.isfinite(recording.vertices).all() and recording.t[-1] > 0.5
    assert (tmp_path / "take.glb").read_bytes()[:4] == b"glTF"


def test_an_example_over_websocket(serve_runtime, tmp_path):
    live = serve_runtime()
    extra, patterns = CHECKS["print_frames.py"]
    done = _run("print_frames.py", ["--url", live.ws_url, "--seconds", "1", *extra], tmp_path)
    assert done.returncode == 0, done.stderr
    assert all(re.search(p, done.stdout) for p in patterns[1:]), done.stdout
