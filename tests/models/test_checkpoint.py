"""Checkpoints: round trip, metadata, refusal of bad files and other topologies."""

from __future__ import annotations

import pytest
import torch

from models.checkpoint import (
    CheckpointError, CheckpointMeta, TopologyMismatch, check_topology, load_checkpoint, read_meta,
    save_checkpoint,
)


def test_round_trip(tmp_path):
    net = torch.nn.Linear(4, 3)
    meta = CheckpointMeta(family="toy", config={"in": 4, "out": 3}, topology_id="abc",
                          data={"frames": 10}, metrics={"val_mm": 0.5})
    path = save_checkpoint(tmp_path / "toy.safetensors", net.state_dict(), meta)
    back, state = load_checkpoint(path, family="toy")
    assert back.config == {"in": 4, "out": 3} and back.metrics["val_mm"] == 0.5
    assert back.code_version
    rebuilt = torch.nn.Linear(back.config["in"], back.config["out"])
    rebuilt.load_state_dict(state)
    assert torch.equal(rebuilt.weight, net.weight)
    with pytest.raises(CheckpointError, match="expected 'other'"):
        load_checkpoint(path, family="other")


def test_bad_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_meta(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_checkpoint(bad)
    good = save_checkpoint(tmp_path / "g.safetensors", {"w": torch.ones(100)},
                           CheckpointMeta("toy", {}, None))
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match="t.safetensors"):
        load_checkpoint(truncated)


def test_topology_refusal_names_both_ids():
    meta = CheckpointMeta(family="s2d", config={}, topology_id="aaaa1111")
    check_topology(meta, "aaaa1111")
    with pytest.raises(TopologyMismatch, match="aaaa1111.*bbbb2222"):
        check_topology(meta, "bbbb2222", path="x.safetensors")
