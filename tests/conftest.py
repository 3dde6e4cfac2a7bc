"""Shared fixtures: the reference head beside the project, and small data folders."""

from __future__ import annotations

from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference (the CoMA/FLAME head); tests that need it skip without it."""
    if not (REFERENCE / "coma_template.obj").is_file():
        pytest.skip(f"reference head not available: {REFERENCE} has no coma_template.obj "
                    "(it lives beside the project for developers and CI, never in it)")
    return REFERENCE


@pytest.fixture(scope="session")
def flame_template(reference_dir):
    from models.face import load_template

    return load_template(reference_dir / "coma_template.obj",
                         reference_dir / "flame68_landmark_embedding.json")


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """A small SynthFace data folder with its PLY tree: 3 subjects x 4 labels."""
    from trainers.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth") / "data"
    cfg = SynthConfig(identities=3, labels=("mouth_open", "eyebrow", "high_smile", "bareteeth"), seed=7)
    generate(cfg, out, show_progress=False, report=False)
    return out


@pytest.fixture
def broken_plugin(monkeypatch):
    """``broken_plugin(module, group, name, value)``: ``module.entry_points``
    also lists an entry point ``name`` of ``group`` that cannot load."""
    from importlib.metadata import EntryPoint

    def add(module, broken_group: str, name: str, value: str) -> None:
        real = module.entry_points

        def with_broken(group: str):  # called as entry_points(group=...)
            found = list(real(group=group))
            if group == broken_group:
                found.append(EntryPoint(name, value, group))
            return found

        monkeypatch.setattr(module, "entry_points", with_broken)

    return add
