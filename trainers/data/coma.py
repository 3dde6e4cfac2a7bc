"""The CoMA folder layout: ``DIR/<subject>/<label>/<label>.<frame:06d>.ply``.

A subject may perform a label more than once (synthetic v2 data makes 3
takes): the first take is the CoMA folder ``<subject>/<label>/``, take N
(N >= 2) lives in ``<subject>/<label>.N/`` with the same file names. The
reader takes the label from the folder name before a ``.N`` suffix (N an
integer of 2 or more, no leading zero) and reads each take as its own
sequence; any other folder name (``foo.x``, ``foo.1``) is just a label, so
a real CoMA tree reads as before.

``write_frame`` writes one mesh of a sequence (binary PLY, float32, through
trimesh). ``import_coma`` reads such a tree, the real CoMA data set or
what ``facecast data synth`` wrote, into a data folder's cache. Every file
is checked: a mesh with the wrong vertex count, a PLY that does not parse
and an empty folder are reported with their path and skipped; the import
goes on with the rest. A tree that an interrupted ``facecast data synth``
left (its ``incomplete.json``) is not a complete CoMA tree: the import
refuses it, as it refuses to write into such a folder; the output folder
is itself marked incomplete while the import writes it.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from models.face import FaceTemplate
from trainers.data.cache import (
    CACHE_DIR, IMPORT_COMMAND, CacheWriter, DataError, incomplete_error, incomplete_run, mark_complete,
    mark_incomplete,
)
from trainers.progress import progress, summary

FRAME_NAME = re.compile(r"\.(\d+)\.ply$", re.IGNORECASE)
#: a take's folder: ``<label>.<take>`` with take >= 2
TAKE_FOLDER = re.compile(r"^(?P<label>.+)\.(?P<take>[2-9]|[1-9]\d+)$")


def take_folder(label: str, take: int = 1) -> str:
    """The folder name of ``label``'s take ``take`` (1: the label itself)."""
    if take < 1:
        raise ValueError(f"take must be 1 or more, got {take}")
    return label if take == 1 else f"{label}.{take}"


def parse_take_folder(name: str) -> tuple[str, int]:
    """``(label, take)`` of a label folder's name: ``"mouth_open.2"`` -> ``("mouth_open", 2)``,
    ``"mouth_open"`` (or ``"foo.x"``) -> itself, take 1."""
    m = TAKE_FOLDER.match(name)
    return (m.group("label"), int(m.group("take"))) if m else (name, 1)


def frame_path(root: Path, subject: str, label: str, frame: int, take: int = 1) -> Path:
    return root / subject / take_folder(label, take) / f"{label}.{frame:06d}.ply"


def write_frame(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """One mesh as a binary PLY (float32 vertices, int32 faces)."""
    mesh = trimesh.Trimesh(vertices=np.asarray(vertices, dtype=np.float32), faces=faces, process=False)
    path.write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding="binary"))


def read_frame(path: Path, n_vertices: int) -> np.ndarray:
    """Vertices ``float32 [N, 3]`` of one PLY; ``DataError`` naming the file if it
    does not parse or has another vertex count."""
    try:
        mesh = trimesh.load(path, file_type="ply", process=False, force="mesh")
        vertices = np.asarray(mesh.vertices, dtype=np.float32)
    except Exception as exc:  # trimesh raises many types on a corrupt file
        raise DataError(f"{path}: cannot read PLY ({type(exc).__name__}: {exc})") from exc
    if vertices.shape != (n_vertices, 3):
        raise DataError(f"{path}: {len(vertices)} vertices, expected {n_vertices}")
    if not np.all(np.isfinite(vertices)):
        raise DataError(f"{path}: vertex coordinates are not all finite")
    return vertices


@dataclass
class ScanResult:
    """What a CoMA tree holds: ``sequences[(subject, label, take)] = [(frame, path), ...]``,
    in the order (subject, label, take)."""

    sequences: dict[tuple[str, str, int], list[tuple[int, Path]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        return sum(len(v) for v in self.sequences.values())


def scan(root: str | Path) -> ScanResult:
    """List the sequences of a CoMA tree (nothing is read yet); a ``<label>.N``
    folder is take N of ``label``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    out = ScanResult()
    subjects = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and p.name != CACHE_DIR)
    if not subjects:
        raise DataError(f"{root}: no subject folders (expected <subject>/<label>/<label>.<frame>.ply)")
    for subj in subjects:
        label_dirs = sorted(p for p in subj.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not label_dirs:
            out.problems.append(f"{subj}: empty subject folder, skipped")
            continue
        for lab in label_dirs:
            files = [p for p in lab.iterdir() if p.suffix.lower() == ".ply" and p.is_file()]
            if not files:
                out.problems.append(f"{lab}: no PLY files, skipped")
                continue
            numbered = []
            for i, p in enumerate(sorted(files)):
                m = FRAME_NAME.search(p.name)
                numbered.append((int(m.group(1)) if m else i, p))
            numbered.sort()
            label, take = parse_take_folder(lab.name)
            out.sequences[(subj.name, label, take)] = numbered
    out.sequences = dict(sorted(out.sequences.items(), key=lambda item: item[0]))
    return out


def import_coma(root: str | Path, out: str | Path, template: FaceTemplate, fps: float = 60.0,
                show_progress: bool = True) -> tuple[Path, list[str]]:
    """Read a CoMA tree into a data folder's cache.

    Args:
        root: the tree (``<subject>/<label>/<label>.<frame>.ply``, further takes in
            ``<subject>/<label>.N/``).
        out: the data folder to write (``out/cache``, ``out/meta.json``).
        template: the topology every mesh must have (vertex count checked).
        fps: the capture frame rate (CoMA: 60).

    Returns:
        The ``meta.json`` path and the list of problems (each names its file).
    """
    root, out = Path(root), Path(out)
    start = time.perf_counter()
    for folder, note in ((root, " (its PLY tree is not a complete CoMA tree)"), (out, "")):
        run = incomplete_run(folder)
        if run is not None and run.get("command") != IMPORT_COMMAND:   # an import's own: import again
            raise incomplete_error(folder, run, note)
    found = scan(root)
    problems = list(found.problems)
    for line in problems:
        _warn(line)
    if not found.sequences:
        raise DataError(f"{root}: no readable sequences")
    subjects = sorted({s for s, _, _ in found.sequences})
    labels = sorted({lab for _, lab, _ in found.sequences})
    out.mkdir(parents=True, exist_ok=True)
    mark_incomplete(out, IMPORT_COMMAND, source=str(root.resolve()))
    writer = CacheWriter(out, template, found.n_files, subjects, labels, fps,
                         source={"kind": "coma", "path": str(root.resolve())})
    bar = progress(found.sequences.items(), total=len(found.sequences), desc="import", unit="seq",
                   enabled=show_progress)
    for (subj, lab, take), frames in bar:
        folder = f"{subj}/{take_folder(lab, take)}"
        good = []
        for _, path in frames:
            try:
                good.append(read_frame(path, template.n_vertices))
            except DataError as exc:
                problems.append(str(exc))
                _warn(str(exc))
        if not good:
            problems.append(f"{root / folder}: no readable frames, sequence skipped")
            _warn(problems[-1])
            continue
        writer.add_sequence(subjects.index(subj), labels.index(lab), np.stack(good),
                            source=folder, take=take)
    meta = writer.close({"skipped": problems})
    mark_complete(out)
    summary(f"imported {writer.count} frames ({len(subjects)} subjects, {len(labels)} labels, "
            f"{len(writer.sequences)} sequences) from {root} into {out} in "
            f"{time.perf_counter() - start:.1f} s; {len(problems)} problem(s)")
    return meta, problems


def _warn(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"warning: {line}", file=sys.stderr)
