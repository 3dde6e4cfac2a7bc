"""trainers/bench/face.py: the realism figures of ``facecast bench face``
(v1, v2 and ICT-FaceKit side by side), in its JSON and its table."""

from __future__ import annotations

import json
import re

import pytest

from runtime.cli import main
from trainers.bench.face import DEFAULT_REFERENCE, realism_figures, realism_table
from trainers.face.realism import RealismConfig

#: the keys of every model's entry: exactly those of ``trainers.face.realism.realism``
REALISM_KEYS = {"shape_amplitude_ratio", "shape_cosine", "blink_lid_gap_mm", "jaw_chin_travel_mm",
                "apex_static_share", "identity_transfer_error", "linear_map_residual", "components_99",
                "label_separability", "apex_self_intersections", "sequence_static_share"}
ICT = DEFAULT_REFERENCE / "ict"
HAS_ICT = (ICT / "ict_expressions.npz").is_file()
#: the fewest subjects the figures run on: keeps this test well under a minute
SUBJECTS = "4"


def _check_figures(entry: dict, shapes_measured: bool) -> None:
    assert set(entry) == REALISM_KEYS
    for key in ("shape_amplitude_ratio", "shape_cosine"):
        if shapes_measured:
            assert len(entry[key]) == 51                       # the 52 ARKit shapes less tongueOut (none in ICT)
            assert all(v is None or isinstance(v, float) for v in entry[key].values())
        else:
            assert entry[key].startswith("not measured")
    for key in ("blink_lid_gap_mm", "jaw_chin_travel_mm", "identity_transfer_error", "label_separability"):
        assert isinstance(entry[key], float) and entry[key] >= 0.0
    assert 0.0 <= entry["label_separability"] <= 1.0
    assert len(entry["apex_static_share"]) == 12 and all(0.0 <= v <= 1.0 for v in entry["apex_static_share"].values())
    assert set(entry["linear_map_residual"]) == {"mm", "share", "ridge"}
    assert isinstance(entry["components_99"], int) and entry["components_99"] >= 1
    crossing = entry["apex_self_intersections"]
    assert 0.0 <= crossing["share"] <= 1.0 and crossing["mean_pairs"] >= 0 and crossing["faces"] > 0
    assert 0.0 <= entry["sequence_static_share"] <= 1.0


def test_bench_face_json_has_the_realism_of_every_model(tmp_path, capsys):
    path = tmp_path / "face.json"
    assert main(["bench", "face", "--json", str(path), "--subjects", SUBJECTS, "--quiet"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(path.read_text())
    assert json.loads(out) == result                           # stdout stays one JSON object
    assert result["batch"] == 1000                             # the figures it had before are still there
    assert result["meshes_per_s"]["distinct"] > 0 and result["synth_meshes_per_s"]["with_ply"] > 0
    assert 4000 <= result["template"]["vertices"] <= 6000
    assert isinstance(result["calibration"]["astronaut_dlib"], dict)
    assert result["realism_config"]["subjects"] == int(SUBJECTS)
    realism = result["realism"]
    for key in ("v1", "v2"):
        _check_figures(realism[key], shapes_measured=HAS_ICT)
        assert result["realism_s"][key] > 0
    v2 = realism["v2"]
    assert v2["blink_lid_gap_mm"] < 0.5 < realism["v1"]["blink_lid_gap_mm"]          # v2's eyes close
    assert 35.0 <= v2["jaw_chin_travel_mm"] <= 40.0
    assert 0.2 <= v2["identity_transfer_error"] <= 0.4
    assert v2["sequence_static_share"] == 0.0 and max(v2["apex_static_share"].values()) <= 0.3
    if HAS_ICT:
        assert all(0.8 <= r <= 1.25 for r in v2["shape_amplitude_ratio"].values())
        assert all(c >= 0.85 for c in v2["shape_cosine"].values())
    if HAS_ICT:
        _check_figures(realism["ict"], shapes_measured=True)
        assert set(realism["ict"]["shape_cosine"].values()) == {1.0}              # the reference itself
        assert realism["ict"]["identity_transfer_error"] == 0.0                  # ICT is linear in its weights
        assert "correspondence" in result["realism_s"]
    else:
        assert realism["ict"].startswith("not measured")
    for row in ("SynthFace v1", "SynthFace v2", "ICT-FaceKit", "shapes with cosine >= 0.85", "label separability"):
        assert row in err
    assert "bench face: realism of v1, v2" in err


def test_without_ict_the_shape_figures_say_why(tmp_path, monkeypatch):
    import trainers.face.realism as realism_module

    calls = []

    def fake(model, face_version, reference=None, cfg=RealismConfig()):
        calls.append((face_version, reference))
        return {"blink_lid_gap_mm": 1.0, "jaw_chin_travel_mm": 2.0, "apex_static_share": {"mouth_open": 0.5},
                "identity_transfer_error": 0.1, "linear_map_residual": {"mm": 0.1, "share": 0.1, "ridge": 1e-4},
                "components_99": 3, "label_separability": float("nan"),
                "apex_self_intersections": {"share": 0.0, "mean_pairs": 0.0, "faces": 3},
                "sequence_static_share": 0.0}

    monkeypatch.setattr(realism_module, "realism", fake)
    figures, seconds = realism_figures(tmp_path / "no_ict", RealismConfig(), show_progress=False)
    assert calls == [(1, None), (2, None)]    # v1 with its generator, v2 with its own
    assert figures["ict"].startswith("not measured") and str(tmp_path / "no_ict") in figures["ict"]
    for key in ("v1", "v2"):
        assert set(figures[key]) == REALISM_KEYS
        assert figures[key]["shape_cosine"] == figures["ict"]
        assert figures[key]["label_separability"] is None     # NaN is JSON's null
    assert set(seconds) == {"load_ict", "v1", "v2"}
    table = realism_table(figures)
    assert "ICT-FaceKit: not measured" in table


def test_realism_table_counts_the_shapes_within_the_bounds():
    entry = {"shape_amplitude_ratio": {"a": 0.8, "b": 1.3, "c": 1.0, "d": 0.0},
             "shape_cosine": {"a": 0.85, "b": 0.9, "c": 0.2, "d": None},
             "blink_lid_gap_mm": 0.4, "jaw_chin_travel_mm": 38.6,
             "apex_static_share": {"eyebrow": 0.1, "mouth_open": 0.3},
             "identity_transfer_error": 0.29, "linear_map_residual": {"mm": 0.2, "share": 0.15, "ridge": 1e-4},
             "components_99": 12, "label_separability": 0.95,
             "apex_self_intersections": {"share": 0.25, "mean_pairs": 1.5, "faces": 36},
             "sequence_static_share": 0.0}
    cells = [re.split(r"\s{2,}", line.strip()) for line in realism_table({"v1": entry, "v2": entry}).splitlines()]
    rows = {r[0]: r[1:] for r in cells}
    assert rows["realism"] == ["SynthFace v1", "SynthFace v2", "ICT-FaceKit"]
    assert rows["shapes with ratio in [0.8, 1.25]"] == ["2 of 4", "2 of 4", "-"]      # 0.8 and 1.0
    assert rows["shapes with cosine >= 0.85"] == ["2 of 4", "2 of 4", "-"]            # 0.85 and 0.9
    assert rows["shape cosine, min / median / max"][0] == "0.20 / 0.85 / 0.90 (1 undefined)"
    assert rows["apex static share, max over labels"][0] == "30.0% (mouth_open)"
    assert rows["components for 99 % variance"] == ["12", "12", "-"]                  # no ICT measured


@pytest.mark.parametrize("subjects", ["3", "x"])
def test_too_few_subjects_is_refused(subjects, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "face", "--subjects", subjects])
    assert "--subjects" in capsys.readouterr().err
