"""Checkpoints are validated at load: bad copies of the shipped checkpoints (a NaN or Inf
weight, metadata of the wrong type, a config that does not fit its dataclass, an index
table pointing past what it indexes, a tensor of the wrong dtype) are each refused with
a ``CheckpointError`` that names the file, the tensor or field, and the reason."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from models.checkpoint import (
    FORMAT_VERSION, META_KEY, CheckpointError, check_index, check_tensors, config_from_dict, load_checkpoint,
    read_meta,
)
from models.motion3dgan import load_motion3dgan
from models.neutral import load_neutralizer
from models.paths import CHECKPOINTS
from models.s2d import S2DConfig, load_s2d
from models.tracking.cascade import load_tracker

S2D = CHECKPOINTS / "s2d_synthface.safetensors"
GAN = CHECKPOINTS / "motion3dgan_synthface.safetensors"
LATENT_GAN = CHECKPOINTS / "neutral_latent_gan_synthface.safetensors"
CLASSICAL = CHECKPOINTS / "neutral_classical_synthface.safetensors"
POINTNET = CHECKPOINTS / "neutral_pointnet_vae_synthface.safetensors"
LANDMARKS = CHECKPOINTS / "neutral_landmarks_synthface.safetensors"
TRACKER = CHECKPOINTS / "tracker_synthface.safetensors"
#: S2D-Dec's vertex counts per level (its shipped config)
SIZES = read_meta(S2D).config["sizes"]


def bad_copy(source: Path, dest: Path, meta: Callable[[dict], None] | None = None,
             state: Callable[[dict], None] | None = None) -> Path:
    """``source`` rewritten to ``dest`` with safetensors directly (not ``save_checkpoint``, which
    would not write a malformed block), after ``meta`` edits its metadata JSON and ``state`` its
    tensors in place."""
    with safe_open(str(source), framework="pt") as fh:
        block = json.loads(fh.metadata()[META_KEY])
        tensors = {k: fh.get_tensor(k).clone() for k in fh.keys()}
    if meta is not None:
        meta(block)
    if state is not None:
        state(tensors)
    save_file(tensors, str(dest), metadata={META_KEY: json.dumps(block)})
    return dest


def refused(load: Callable[[Path], object], path: Path, *reasons: str) -> str:
    """``load(path)`` raises a ``CheckpointError`` naming ``path`` and matching every reason."""
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    for reason in reasons:
        assert re.search(reason, message), f"{reason!r} not in {message!r}"
    return message


def set_item(name: str, index: tuple, value: float) -> Callable[[dict], None]:
    def edit(tensors: dict) -> None:
        tensors[name][index] = value
    return edit


def set_meta(key: str, value) -> Callable[[dict], None]:
    def edit(block: dict) -> None:
        block[key] = value
    return edit


def set_config(key: str, value=None, delete: bool = False) -> Callable[[dict], None]:
    def edit(block: dict) -> None:
        if delete:
            del block["config"][key]
        else:
            block["config"][key] = value
    return edit


# ---- every shipped checkpoint passes ---------------------------------------------------------

@pytest.mark.parametrize("path", sorted(CHECKPOINTS.glob("*.safetensors")), ids=lambda p: p.stem)
def test_every_shipped_checkpoint_passes_the_generic_checks(path):
    meta, state = load_checkpoint(path)
    assert meta.format_version == FORMAT_VERSION
    check_tensors(path, state)


# ---- non-finite weights ----------------------------------------------------------------------

def test_a_nan_weight_is_refused_by_name(tmp_path):
    path = bad_copy(S2D, tmp_path / "nan.safetensors", state=set_item("fc.weight", (3, 7), float("nan")))
    refused(lambda p: load_s2d(p), path, r"'fc.weight'", r"non-finite", r"1 NaN, 0 Inf")


def test_an_inf_weight_is_refused_by_name(tmp_path):
    path = bad_copy(GAN, tmp_path / "inf.safetensors", state=set_item("generator.out.bias", (0,), float("-inf")))
    refused(load_motion3dgan, path, r"'generator.out.bias'", r"0 NaN, 1 Inf")


def test_non_finite_values_in_any_family_are_refused(tmp_path):
    path = bad_copy(LATENT_GAN, tmp_path / "lg.safetensors", state=set_item("pyramid.up_w0", (0, 0), float("inf")))
    refused(load_neutralizer, path, r"'pyramid.up_w0'", r"Inf")
    path = bad_copy(TRACKER, tmp_path / "tr.safetensors", state=set_item("stage1.mean", (5,), float("nan")))
    refused(load_tracker, path, r"'stage1.mean'", r"NaN")


def test_check_tensors_reads_half_precision_and_skips_integers():
    check_tensors("x", {"i": torch.arange(5), "h": torch.ones(3, dtype=torch.float16), "e": torch.zeros(0)})
    with pytest.raises(CheckpointError, match=r"x: tensor 'h'.*1 NaN"):
        check_tensors("x", {"h": torch.tensor([1.0, float("nan")], dtype=torch.float16)})


# ---- metadata of the wrong type --------------------------------------------------------------

@pytest.mark.parametrize("key, value, reason", [
    ("family", ["s2d"], r"'family' must be a non-empty string, got an array"),
    ("family", "", r"'family' must be a non-empty string"),
    ("config", "sizes=5229", r"'config' must be an object, got a string"),
    ("topology_id", 1234, r"'topology_id' must be a string or null, got an integer"),
    ("data", [1, 2], r"'data' must be an object"),
    ("metrics", None, r"'metrics' must be an object, got null"),
    ("code_version", 0.1, r"'code_version' must be a string, got a number"),
    ("format_version", "1", r"'format_version' must be an integer, got a string"),
    ("format_version", True, r"'format_version' must be an integer, got a boolean"),
    ("format_version", FORMAT_VERSION + 1, rf"format v{FORMAT_VERSION + 1}"),
    ("owner", "me", r"unknown 'owner'"),
])
def test_metadata_of_the_wrong_type_is_refused(tmp_path, key, value, reason):
    path = bad_copy(S2D, tmp_path / "meta.safetensors", meta=set_meta(key, value))
    refused(read_meta, path, reason)
    refused(lambda p: load_s2d(p), path, reason)


def test_metadata_without_a_required_field_or_not_an_object_is_refused(tmp_path):
    path = bad_copy(S2D, tmp_path / "nofamily.safetensors", meta=lambda block: block.pop("family"))
    refused(read_meta, path, r"missing family")
    path = tmp_path / "array.safetensors"
    save_file({"w": torch.ones(2)}, str(path), metadata={META_KEY: "[1, 2]"})
    refused(read_meta, path, r"an array, not an object")


# ---- configs that do not fit their dataclass -------------------------------------------------

def test_a_config_missing_a_key_is_refused(tmp_path):
    path = bad_copy(S2D, tmp_path / "nosizes.safetensors", meta=set_config("sizes", delete=True))
    refused(lambda p: load_s2d(p), path, r"S2DConfig config lacks 'sizes'")


@pytest.mark.parametrize("key, value, reason", [
    ("filters", "wide", r"'filters' must be tuple\[int, \.\.\.\], got a string"),
    ("sizes", [5229, 1308.5, 327, 82, 21], r"'sizes' must be tuple\[int, \.\.\.\]"),
    ("scale_output", 1, r"'scale_output' must be bool, got an integer"),
    ("topology_id", None, r"'topology_id' must be str, got null"),
    ("depth", 3, r"unknown keys 'depth'"),
])
def test_a_config_value_of_the_wrong_type_or_an_unknown_key_is_refused(tmp_path, key, value, reason):
    path = bad_copy(S2D, tmp_path / "cfg.safetensors", meta=set_config(key, value))
    refused(lambda p: load_s2d(p), path, reason)


def test_a_config_for_another_topology_than_its_metadata_is_refused(tmp_path):
    path = bad_copy(S2D, tmp_path / "topo.safetensors", meta=set_config("topology_id", "0123456789abcdef"))
    refused(lambda p: load_s2d(p), path, r"config is for topology 0123456789abcdef, its metadata says")


def test_config_from_dict_names_the_file_and_takes_defaults_for_absent_fields():
    cfg = config_from_dict(S2DConfig, {"sizes": [3, 2], "topology_id": "t"}, "f.safetensors")
    assert cfg.sizes == (3, 2) and cfg.scale_output is True
    with pytest.raises(CheckpointError, match=r"f.safetensors: the S2DConfig config is an array"):
        config_from_dict(S2DConfig, [1], "f.safetensors")


def test_configs_of_every_family_are_checked(tmp_path):
    path = bad_copy(GAN, tmp_path / "gan.safetensors", meta=set_config("labels", "smile"))
    refused(load_motion3dgan, path, r"'labels' must be tuple\[str, \.\.\.\]")
    path = bad_copy(GAN, tmp_path / "gan_lm.safetensors", meta=set_config("landmarks", 10))
    refused(load_motion3dgan, path, r"10 landmarks")
    path = bad_copy(LATENT_GAN, tmp_path / "lg.safetensors", meta=lambda b: b["config"].pop("shape"))
    refused(load_neutralizer, path, r"config lacks 'shape'")
    path = bad_copy(POINTNET, tmp_path / "pv.safetensors", meta=set_config("pooling", "median"))
    refused(load_neutralizer, path, r"PointNetVaeConfig config is refused .*pooling")
    path = bad_copy(CLASSICAL, tmp_path / "cl.safetensors", meta=set_config("rbf_dims", "20"))
    refused(load_neutralizer, path, r"'rbf_dims' must be int")
    path = bad_copy(LANDMARKS, tmp_path / "lm.safetensors", meta=set_config("ridge", [1e-10]))
    refused(load_neutralizer, path, r"'ridge' must be float")
    path = bad_copy(TRACKER, tmp_path / "tr.safetensors", meta=set_config("trained_stages", "4"))
    refused(load_tracker, path, r"trained_stages must be a count")
    path = bad_copy(TRACKER, tmp_path / "tr_fit.safetensors", meta=lambda b: b["config"]["fit"].update(steps=3))
    refused(load_tracker, path, r"FitConfig config has unknown keys 'steps'")


# ---- index tables out of range ---------------------------------------------------------------

def test_an_out_of_range_spiral_index_is_refused(tmp_path):
    path = bad_copy(S2D, tmp_path / "spiral.safetensors", state=set_item("decoder.out.spirals", (100, 4), SIZES[0] + 1))
    refused(lambda p: load_s2d(p), path, r"'decoder.out.spirals'", rf"values in \[0, {SIZES[0] + 1}\]",
            rf"valid \[0, {SIZES[0]}\]")
    path = bad_copy(S2D, tmp_path / "negative.safetensors", state=set_item("decoder.convs.1.spirals", (0, 0), -1))
    refused(lambda p: load_s2d(p), path, r"'decoder.convs.1.spirals'", r"values in \[-1, ")


def test_an_upsampling_index_past_the_coarse_vertex_count_is_refused(tmp_path):
    # the last up-sampling block maps level 1 (SIZES[1] vertices) onto level 0: index SIZES[1] is past it
    path = bad_copy(S2D, tmp_path / "up.safetensors", state=set_item("decoder.ups.3.idx", (10, 2), SIZES[1]))
    refused(lambda p: load_s2d(p), path, r"'decoder.ups.3.idx'", rf"\[0, {SIZES[1]}\]",
            rf"mesh level 1 \({SIZES[1]} vertices\)")


def test_sampling_tables_must_have_the_shapes_of_the_vertex_counts(tmp_path):
    path = bad_copy(S2D, tmp_path / "short.safetensors",
                    state=lambda t: t.update({"decoder.ups.3.idx": t["decoder.ups.3.idx"][:-1]}))
    refused(lambda p: load_s2d(p), path, r"'decoder.ups.3.idx' has shape \[5228, 3\], expected \[5229, 3\]")


def test_a_sparse_matrix_index_past_the_vertex_count_is_refused(tmp_path):
    n = read_meta(LATENT_GAN).config["shape"]["sizes"]
    path = bad_copy(LATENT_GAN, tmp_path / "lap.safetensors", state=set_item("pyramid.lap_index0", (1, 42), n[0]))
    refused(load_neutralizer, path, r"'pyramid.lap_index0'", rf"\[0, {n[0]}\]", rf"mesh level 0 \({n[0]} vertices\)")
    path = bad_copy(LATENT_GAN, tmp_path / "up.safetensors", state=set_item("pyramid.up_idx2", (0, 1), n[3] + 7))
    refused(load_neutralizer, path, r"'pyramid.up_idx2'", rf"mesh level 3 \({n[3]} vertices\)")
    path = bad_copy(LATENT_GAN, tmp_path / "keep.safetensors", state=set_item("pyramid.keep0", (3,), -2))
    refused(load_neutralizer, path, r"'pyramid.keep0'", r"\[-2, ")


def test_neutralizer_index_tables_are_checked(tmp_path):
    n = read_meta(POINTNET).config["n_vertices"]
    path = bad_copy(POINTNET, tmp_path / "points.safetensors", state=set_item("points", (0,), n))
    refused(load_neutralizer, path, r"'points'", rf"the face's {n} vertices")
    path = bad_copy(CLASSICAL, tmp_path / "faces.safetensors", state=set_item("faces", (0, 0), 10 ** 6))
    refused(load_neutralizer, path, r"'faces'", r"vertices of 'reference'")
    path = bad_copy(CLASSICAL, tmp_path / "residue.safetensors", state=set_item("residue_faces", (-1,), 10 ** 5))
    refused(load_neutralizer, path, r"'residue_faces'", r"triangles of 'faces'")


def test_check_index_names_the_tensor_and_both_ranges():
    check_index("f", "idx", torch.tensor([0, 4]), 5, "five rows")
    with pytest.raises(CheckpointError, match=r"f: index tensor 'idx' holds values in \[0, 5\]; it indexes "
                                              r"five rows: valid \[0, 4\]"):
        check_index("f", "idx", torch.tensor([0, 5]), 5, "five rows")
    with pytest.raises(CheckpointError, match="not an integer type"):
        check_index("f", "idx", torch.tensor([0.0]), 5, "five rows")


# ---- declared dtypes -------------------------------------------------------------------------

def test_a_tensor_of_another_dtype_than_its_family_declares_is_refused(tmp_path):
    path = bad_copy(S2D, tmp_path / "float_spirals.safetensors",
                    state=lambda t: t.update({"decoder.out.spirals": t["decoder.out.spirals"].float()}))
    refused(lambda p: load_s2d(p), path, r"'decoder.out.spirals' is float32, expected int64")
    path = bad_copy(GAN, tmp_path / "double.safetensors",
                    state=lambda t: t.update({"reference": t["reference"].double()}))
    refused(load_motion3dgan, path, r"'reference' is float64, expected float32")
    path = bad_copy(TRACKER, tmp_path / "tr.safetensors",
                    state=lambda t: t.update({"stage0.weights": t["stage0.weights"].int()}))
    refused(load_tracker, path, r"'stage0.weights' is int32, expected float16")


def test_a_tensor_the_model_does_not_have_is_refused_not_raised(tmp_path):
    path = bad_copy(S2D, tmp_path / "extra.safetensors", state=lambda t: t.update({"spare": torch.ones(2)}))
    refused(lambda p: load_s2d(p), path, r"does not match the S2D-Dec model", r"spare")
