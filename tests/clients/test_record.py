"""clients/record.py: ``facecast record`` from a live runtime to .npz, .glb
and a folder of PLY files, its errors, stop signals and atomic writes."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import trimesh
import zmq

from clients.gltf import read_glb_frames, read_glb_weights
from clients.python import FacecastClient
from clients.record import StopSignals, Stopped, Take, take, write
from clients.recording import load_recording, replacing
from runtime import protocol as P
from runtime.cli import main

N_VERTICES = 5229


def test_a_take_in_three_forms(serve_runtime, tmp_path):
    live = serve_runtime()
    sid = live.open(label="mouth_open")
    live.wait_playing()
    with FacecastClient(live.zmq, control=live.control) as client:
        rec = take(client, sid, seconds=1.0, show=False)
    assert rec.stream == sid and rec.ended is None and 55 <= len(rec.frames) <= 65
    t = rec.t
    assert t[0] == 0.0 and np.all(np.diff(t) > 0) and t[-1] >= 1.0 - 1e-9
    v = rec.vertices()
    assert v.shape == (len(t), N_VERTICES, 3) and np.abs(v - v[0]).max() > 1e-4       # the face moves

    assert "MiB" in write(rec, tmp_path / "take.npz")
    npz = load_recording(tmp_path / "take.npz")
    np.testing.assert_array_equal(npz.vertices, v)
    np.testing.assert_allclose(npz.t, t)
    assert list(npz.seq) == [f.seq for f in rec.frames] and np.all(np.diff(npz.wall) > 0)
    assert npz.landmarks.shape == (len(t), 68, 3) and set(npz.subjects) == {sid}
    assert set(npz.labels) == {"mouth_open"} and npz.topology.id == rec.frames[0].topology.id

    glb = tmp_path / "take.glb"
    assert "morph targets" in write(rec, glb, tolerance_mm=0.01)
    picks = np.array([0, len(t) // 3, len(t) - 1])
    back = read_glb_frames(glb, t[picks])
    assert np.abs(back - v[picks]).max() * 1e3 <= 0.01 + 1e-3
    assert read_glb_weights(glb, t[picks]) is None                   # generate streams have no weights
    loaded = trimesh.load(glb, process=False, force="mesh")
    assert len(loaded.vertices) == N_VERTICES

    folder = tmp_path / "plys"
    assert "PLY" in write(rec, folder)
    rows = list(csv.DictReader(open(folder / "frames.csv")))
    assert len(rows) == len(t) and [int(r["seq"]) for r in rows] == [f.seq for f in rec.frames]
    mesh = trimesh.load(folder / rows[len(rows) // 2]["file"], process=False)
    np.testing.assert_allclose(mesh.vertices, v[len(rows) // 2], atol=1e-7)
    np.testing.assert_array_equal(mesh.faces, rec.frames[0].faces)

    # a shorter take replaces the folder whole: no stale frames of the longer one
    write(Take(rec.stream, rec.frames[:5], 0), folder)
    assert sorted(p.name for p in folder.iterdir()) == [f"frame_{i:06d}.ply" for i in range(5)] + ["frames.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plys", "take.glb", "take.npz"]   # no temporaries left
    # a folder of other files is never replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds notes.txt, not a facecast take"):
        write(rec, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_the_command_records_until_the_stream_ends(serve_runtime, tmp_path, capsys):
    live = serve_runtime()
    sid = live.open(label="high_smile", loop=False, duration=1.0)
    out = tmp_path / "take.npz"
    code = main(["record", "--url", live.ws_url, "--stream", sid, "--seconds", "30", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert printed.startswith("record: ") and f"of {sid}" in printed and "stream finished" in printed
    rec = load_recording(out)
    assert 30 <= len(rec) <= 200 and rec.t[-1] < 5


def _tiny_publisher(weights: bool):
    """A hand-driven publisher of a 4-vertex stream "x" with blendshape weights."""
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind("tcp://127.0.0.1:*")
    template = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float32) * 0.1
    faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
    topology = P.topology_message("x", "tiny", "tiny", faces, template, np.zeros(68, np.int32),
                                  np.full((68, 3), 1 / 3, np.float32))
    stop = threading.Event()
    sent: list[tuple[np.ndarray, np.ndarray]] = []

    def run():
        assert pub.poll(5000)
        pub.recv()
        pub.send_multipart(topology.zmq_parts())
        for seq in range(40):
            if stop.is_set():
                break
            bs = np.zeros(52, np.float32)
            bs[P.BLENDSHAPE_NAMES.index("jawOpen")] = seq / 39
            verts = template.copy()
            verts[2, 1] += 0.01 * seq / 39
            sent.append((verts, bs))
            pub.send_multipart(P.frame_message("x", seq, seq / 30, verts, "f32", "tiny", template, time.time_ns(),
                                               time.time_ns(), 30.0, weights=bs if weights else None).zmq_parts())
            time.sleep(1 / 30)
        pub.send_multipart(P.end_message("x", "finished", 40).zmq_parts())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return pub, thread, stop, sent


def test_blendshape_weights_become_an_animation_channel(tmp_path, capsys):
    pub, thread, stop, sent = _tiny_publisher(weights=True)
    out = tmp_path / "tiny.glb"
    try:
        code = main(["record", "--url", pub.getsockopt_string(zmq.LAST_ENDPOINT), "--seconds", "10", "--out",
                     str(out), "--quiet"])
    finally:
        stop.set()
        thread.join(5)
        pub.close(linger=0)
    assert code == 0, capsys.readouterr()
    assert "ARKit weights channel" in capsys.readouterr().out
    times = np.arange(40) / 30.0
    got = read_glb_weights(out, times)
    want = np.stack([bs for _, bs in sent])
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(read_glb_frames(out, times), np.stack([v for v, _ in sent]), atol=2e-5)


@pytest.mark.parametrize("args, message", [
    (["--out", "take.txt"], "write .npz, .glb or a folder"),
    (["--url", "tcp://127.0.0.1:1", "--out", "take.npz", "--timeout", "0.5"], "nothing is listening"),
    (["--url", "nonsense", "--out", "take.npz"], "not a facecast address"),
    (["--seconds", "0", "--out", "take.npz"], "--seconds must be positive"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["record", "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facecast record: ") and message in err
    assert not any(tmp_path.iterdir())                                   # nothing half-written


def test_a_stream_that_sends_nothing_is_named(serve_runtime, tmp_path, capsys):
    live = serve_runtime()
    assert main(["record", "--url", live.zmq, "--stream", "s999999", "--seconds", "1", "--timeout", "0.5",
                 "--out", str(tmp_path / "x.npz"), "--quiet"]) == 2
    assert "no frame of s999999 within 0.5 s" in capsys.readouterr().err


def test_a_folder_of_other_files_is_refused_before_recording(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["record", "--url", "tcp://127.0.0.1:1", "--out", f"{tmp_path / 'mine'}/", "--quiet"]) == 2
    assert "holds notes.txt, not a facecast take" in capsys.readouterr().err


# ------------------------------------------------------------------ stop signals
PROGRESS = re.compile(rb"(\d+\.\d)/60\.0 s")


def _record_in_a_process(url: str, sid: str, out: str, sig: signal.Signals, after_s: float = 0.5):
    """``facecast record`` of 60 s as a process, sent ``sig`` once its progress
    bar has passed ``after_s`` seconds of the take; returns (rc, stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "record", "--url", url, "--stream", sid,
                             "--seconds", "60", "--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = bytearray()
    reader = threading.Thread(target=lambda: [err.extend(c) for c in iter(lambda: os.read(proc.stderr.fileno(),
                                                                                          4096), b"")],
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any(float(m) >= after_s for m in PROGRESS.findall(bytes(err))):
            assert proc.poll() is None and time.monotonic() < deadline, bytes(err).decode(errors="replace")
            time.sleep(0.05)
        proc.send_signal(sig)
        out_text = proc.stdout.read().decode()
        rc = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    return rc, out_text, bytes(err).decode(errors="replace")


@pytest.mark.parametrize("sig, name", [(signal.SIGTERM, "take.npz"), (signal.SIGHUP, "take.npz"),
                                       (signal.SIGTERM, "plys/")], ids=["SIGTERM-npz", "SIGHUP-npz", "SIGTERM-ply"])
def test_a_stop_signal_keeps_the_take(sig, name, serve_runtime, tmp_path):
    live = serve_runtime()
    sid = live.open(label="mouth_open")
    live.wait_playing()
    out = tmp_path / name
    if name.endswith(".npz"):
        out.write_bytes(b"the previous take")                     # replaced whole, never cut
    rc, printed, err = _record_in_a_process(live.zmq, sid, f"{tmp_path}/{name}", sig)
    assert rc == 0, err
    assert f"stopped early by {sig.name}" in err and f"stopped early by {sig.name}" in printed
    if name.endswith(".npz"):
        rec = load_recording(out)
        n, seq = len(rec), rec.seq
    else:
        rows = list(csv.DictReader(open(out / "frames.csv")))
        n, seq = len(rows), [int(r["seq"]) for r in rows]
        assert len(list(out.glob("frame_*.ply"))) == n
    assert 25 <= n < 60 * 60 and list(seq) == sorted(seq)           # what came before the signal, in order
    assert f"{n} frames of {sid}" in printed
    assert [p.name for p in tmp_path.iterdir()] == [out.name]       # no temporaries left


def test_stop_signals_note_the_first_raise_on_the_second_and_restore(monkeypatch):
    before = signal.getsignal(signal.SIGTERM)

    def deliver(sig):
        os.kill(os.getpid(), sig)
        for _ in range(100):                                         # the handler runs between bytecodes
            time.sleep(0.001)

    with StopSignals() as stop:
        deliver(signal.SIGTERM)
        assert stop.received == "SIGTERM" and stop.signum == signal.SIGTERM
        with pytest.raises(Stopped, match="SIGHUP"):
            deliver(signal.SIGHUP)
    assert signal.getsignal(signal.SIGTERM) is before


def test_replacing_leaves_the_old_file_or_the_new_one(tmp_path):
    path = tmp_path / "take.npz"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with replacing(path) as fh:
            fh.write(b"half of the new")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["take.npz"]
    # killed outright mid-write: the old file stays whole
    code = ("import os, signal, sys; from clients.recording import replacing\n"
            "with replacing(sys.argv[1]) as fh:\n"
            "    fh.write(b'half of the new'); fh.flush(); os.kill(os.getpid(), signal.SIGKILL)")
    assert subprocess.run([sys.executable, "-c", code, str(path)]).returncode == -signal.SIGKILL
    assert path.read_bytes() == b"old"
    with replacing(path) as fh:
        fh.write(b"new")
    assert path.read_bytes() == b"new"
