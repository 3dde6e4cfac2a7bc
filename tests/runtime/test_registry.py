"""The model registry: shipped checkpoints by default, user folders first,
and every bad checkpoint reported by file with its reason while the rest
still load."""

from __future__ import annotations

import shutil

from models.checkpoint import load_checkpoint, read_meta, save_checkpoint
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
