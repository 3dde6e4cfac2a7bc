"""The model registry: shipped checkpoints by default, user folders first,
and every bad checkpoint reported by file with its reason while the rest
still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from models.checkpoint import META_KEY, load_checkpoint, read_meta, save_checkpoint
from models.face import synthface_template
from models.paths import CHECKPOINTS
from runtime.registry import LOADERS, Registry

TEMPLATE = synthface_template()
#: the families of the shipped checkpoints that the runtime uses (S2D-Dec, Motion3DGAN, the neutralizers)
SHIPPED = {read_meta(p).family for p in CHECKPOINTS.glob("*.safetensors")} & set(LOADERS)


def test_the_runtime_ships_its_models():
    assert {"s2d", "motion3dgan", "neutral_landmarks"} <= SHIPPED


def test_the_shipped_checkpoints_load_by_default():
    reg = Registry.discover(TEMPLATE)
    assert set(reg.loaded) == SHIPPED and not reg.failures
    report = reg.report()
    assert report["template"]["topology"] == TEMPLATE.topology_id
    assert report["loaded"]["s2d"]["topology"] == TEMPLATE.topology_id
    assert {u["family"] for u in report["not_used"]} >= {"motion-lstm"}


def test_a_users_folder_comes_first(tmp_path):
    mine = tmp_path / "mine.safetensors"
    shutil.copy(CHECKPOINTS / "s2d_synthface.safetensors", mine)
    reg = Registry.discover(TEMPLATE, [tmp_path])
    assert reg.loaded["s2d"].path == mine and reg.loaded["motion3dgan"].path.parent == CHECKPOINTS


def test_bad_checkpoints_are_named_and_the_rest_still_serves(tmp_path):
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00garbage" * 100)
    meta, state = load_checkpoint(CHECKPOINTS / "s2d_synthface.safetensors")
    meta.topology_id = "0123456789abcdef"
    save_checkpoint(tmp_path / "other_face.safetensors", state, meta)
    reg = Registry.discover(TEMPLATE, [tmp_path, tmp_path / "absent.safetensors"], shipped=False)
    errors = {f["path"]: f["error"] for f in reg.failures}
    assert "corrupt.safetensors" in errors[str(tmp_path / "corrupt.safetensors")]
    wrong = errors[str(tmp_path / "other_face.safetensors")]
    assert "0123456789abcdef" in wrong and TEMPLATE.topology_id in wrong
    assert "no such file" in errors[str(tmp_path / "absent.safetensors")]
    assert not reg.loaded
    # with the shipped ones as fallback, the runtime still has every model, and says what failed
    reg = Registry.discover(TEMPLATE, [tmp_path])
    assert set(reg.loaded) == SHIPPED and len(reg.failures) == 2
    assert "failed:" in reg.summary()


def _bad_copy(source: Path, dest: Path, meta=None, state=None) -> Path:
    """``source`` rewritten with safetensors after ``meta(block)`` / ``state(tensors)`` edit it in place."""
    with safe_open(str(source), framework="pt") as fh:
        block = json.loads(fh.metadata()[META_KEY])
        tensors = {k: fh.get_tensor(k).clone() for k in fh.keys()}
    if meta is not None:
        meta(block)
    if state is not None:
        state(tensors)
    save_file(tensors, str(dest), metadata={META_KEY: json.dumps(block)})
    return dest


def _set(name: str, index: tuple, value: float):
    def edit(tensors: dict) -> None:
        tensors[name][index] = value
    return edit


S2D = CHECKPOINTS / "s2d_synthface.safetensors"
#: bad copies of shipped checkpoints: file name -> (source, metadata edit, tensor edit, what the refusal says)
CORRUPT = {
    "nan_weight": (S2D, None, _set("fc.weight", (0, 0), float("nan")), ["'fc.weight'", "NaN"]),
    "inf_weight": (CHECKPOINTS / "motion3dgan_synthface.safetensors", None,
                   _set("generator.fc.weight", (1, 1), float("inf")), ["'generator.fc.weight'", "Inf"]),
    "family_list": (S2D, lambda b: b.update(family=["s2d"]), None, ["'family' must be a non-empty string"]),
    "config_string": (S2D, lambda b: b.update(config="s2d"), None, ["'config' must be an object"]),
    "missing_key": (S2D, lambda b: b["config"].pop("sizes"), None, ["lacks 'sizes'"]),
    "spiral_index": (S2D, None, _set("decoder.out.spirals", (7, 3), 6000), ["'decoder.out.spirals'", "[0, 6000]"]),
    "upsampling_index": (S2D, None, _set("decoder.ups.3.idx", (0, 0), 1308), ["'decoder.ups.3.idx'", "[0, 1308]"]),
    "laplacian_index": (CHECKPOINTS / "neutral_latent_gan_synthface.safetensors", None,
                        _set("pyramid.lap_index0", (0, 5), 5229), ["'pyramid.lap_index0'", "[0, 5229]"]),
}


def test_corrupt_checkpoints_are_refused_by_name_and_the_shipped_ones_still_serve(tmp_path):
    for name, (source, meta, state, _) in CORRUPT.items():
        _bad_copy(source, tmp_path / f"{name}.safetensors", meta, state)
    reg = Registry.discover(TEMPLATE, [tmp_path], shipped=False)
    assert not {"s2d", "motion3dgan", "neutral_latent_gan"} & set(reg.loaded)
    errors = {f["path"]: f["error"] for f in reg.report()["failures"]}
    assert len(errors) == len(CORRUPT)
    for name, (*_, reasons) in CORRUPT.items():
        path = str(tmp_path / f"{name}.safetensors")
        assert errors[path].startswith(path)
        for reason in reasons:
            assert reason in errors[path], (name, errors[path])
    families = {Path(f["path"]).stem: f["family"] for f in reg.failures}
    assert families["family_list"] is None and families["spiral_index"] == "s2d"
    # with the shipped ones behind them, the runtime has every model and reports each bad file
    reg = Registry.discover(TEMPLATE, [tmp_path])
    assert set(reg.loaded) == SHIPPED and len(reg.failures) == len(CORRUPT)
    assert all(m.path.parent == CHECKPOINTS for m in reg.loaded.values())
    assert reg.summary().count("failed:") == len(CORRUPT)
