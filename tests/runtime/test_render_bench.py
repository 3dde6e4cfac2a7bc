"""``facecast bench render``: the JSON it prints (a short run; the figures
themselves come from the full command, not from a test)."""

from __future__ import annotations

import argparse
import json

from trainers.bench.render import run


def test_bench_render_json(tmp_path, capsys):
    path = tmp_path / "render.json"
    assert run(argparse.Namespace(json=str(path), frames=2)) == 0
    result = json.loads(path.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert set(result["ms_per_frame"]) == {"512", "1024"}
    assert all(v > 0 for v in result["ms_per_frame"].values())
    assert result["renderer"] and result["normals"] in ("compute", "numpy")
    assert result["mesh"] == {"vertices": 5229, "faces": 10080}
    for size in ("512", "1024"):
        assert set(result["stages_ms"][size]) == {"upload", "normals", "draw", "resolve", "readback"}
    assert result["machine"]["cores"] >= 1
