"""``facecast bench runtime`` measures a real runtime process and writes the documented JSON."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_runtime_writes_the_documented_json(tmp_path):
    out = tmp_path / "runtime.json"
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "bench", "runtime", "--sessions", "1", "4",
                           "--seconds", "1", "--follow", "neutral:s2d", "transfer:s2d",
                           "--follow-sessions", "2", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert set(result["bytes_per_frame"]) == {"f32", "f16", "q16"}
    assert result["bytes_per_frame"]["q16"] < 0.55 * result["bytes_per_frame"]["f32"]
    rows = result["rows"]
    assert [(r["path"], r["sessions"]) for r in rows] == [("baked", 1), ("baked", 4), ("live", 1), ("live", 4),
                                                           ("neutral:s2d", 2), ("transfer:s2d", 2)]
    for r in rows:
        assert {"sessions", "fps", "tick_ms", "model_ms", "p50_zmq_ms", "p99_zmq_ms", "p50_ws_ms", "p99_ws_ms",
                "overhead_ratio"} <= set(r)
        assert r["fps"] > 20 and r["zmq_frames"] > 0 and r["ws_frames"] > 0
    live4 = rows[3]
    assert live4["model_ms"] > 0 and live4["overhead_ratio"] > 0.5   # every frame decoded: the model dominates
    assert rows[1]["model_ms"] < live4["model_ms"]                    # baked clips: no decode per frame
    for follow in rows[4:]:                                           # the followers' frames, made per tick
        assert follow["derive_ms"] > 0 and follow["zmq_frames"] > 0
        assert follow["holds_60fps"] == (follow["fps_min"] >= 59.0 and follow["dropped"] == 0)
    assert result["follow_unavailable"] == []
    assert "bench runtime:" in proc.stderr and "followers holding 60 fps" in proc.stderr
