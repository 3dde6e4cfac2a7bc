"""The engine: sessions, control commands and the tick, sans I/O.

Nothing here touches a socket or sleeps. The transports (``runtime.server``)
feed it control messages (``handle``), call ``tick(now)`` at
``next_deadline()``, and send the messages it returns; tests drive it the
same way with a fake clock.

One tick steps every stream whose deadline has come (``runtime.clock``),
turns each stream's pose into a mesh (a baked clip, or a row of the tick's
ONE batched S2D-Dec forward, see ``runtime.animation``), spends what is left
of the bake budget on baking clips, then derives the frames of the streams
that follow others (``neutral``, ``transfer``) from this tick's meshes, one
batched call per method, and encodes each frame once for every transport.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from models.checkpoint import code_version
from models.face import SynthFace, synthface, synthface_template
from models.neutral.s2d import S2DNeutralizer
from runtime import protocol as P
from runtime.animation import AnimationError, Animator, ClipSpec, Identity, interpolate, make_identity
from runtime.clock import Cadence
from runtime.registry import ModelUnavailable, Registry
from runtime.sources import (
    DEFAULT_BLEND,
    DEFAULT_DURATION,
    DEFAULT_ITEM,
    FollowSource,
    GenerateSource,
    NeutralSource,
    PlaylistSource,
    Pose,
    Source,
    TransferSource,
)

MODES = ("baked", "live")
KINDS = ("generate", "playlist", "neutral", "transfer")
#: neutralization methods -> the registry family holding each ("s2d": S2D-Dec plus its landmark estimator)
NEUTRAL_METHODS = {"s2d": "neutral_landmarks", "classical": "neutral_classical",
                   "latent_gan": "neutral_latent_gan", "pointnet_vae": "neutral_pointnet_vae"}
#: transfer methods -> the neutralization method whose ``transfer`` they use
TRANSFER_METHODS = {"s2d": "s2d", "vae": "pointnet_vae"}
DEFAULT_NEUTRAL_METHOD = "s2d"
DEFAULT_TRANSFER_METHOD = "s2d"
FPS_RANGE = (1.0, 240.0)
MAX_SEED = 2 ** 31 - 1
MAX_PLAYLIST = 256
#: ticks kept for the figures of ``stats``
HISTORY = 600
#: the share of a frame period a tick may fill (the rest is for sending and slack)
TICK_SHARE = 0.7


@dataclass(frozen=True)
class EngineConfig:
    fps: float = 60.0                        #: default stream rate
    encoding: str = P.DEFAULT_ENCODING       #: default payload encoding
    max_streams: int = 256
    bake_budget_ms: float = 8.0              #: most decoder time per tick spent on baking (at least one row)
    cache_clips: int = 256                   #: baked clips kept (LRU)
    token: str | None = None                 #: when set, every control command must carry it


@dataclass
class Session:
    id: str
    source: Source
    cadence: Cadence
    enc: str
    mode: str
    opened: float
    origin: float | None = None              #: the deadline at media time 0; None while preparing
    frames: int = 0
    seq: int = -1                            #: the last frame's sequence number (+1 per period, gaps = skipped)
    seen_dropped: int = 0
    pose: Pose | None = None
    mesh: np.ndarray | None = None           #: the last frame's mesh (what following streams read)

    def fps_achieved(self, now: float) -> float:
        """Frames sent per second since the stream opened."""
        return round(self.frames / max(now - self.opened, 1e-9), 2)

    def describe(self, now: float) -> dict:
        return {"stream": self.id, "kind": self.source.kind, "fps": self.cadence.fps, "enc": self.enc,
                "mode": self.mode, "state": "preparing" if self.origin is None else "playing",
                "frames": self.frames, "dropped": self.cadence.dropped,
                "fps_achieved": self.fps_achieved(now),
                "label": self.pose.label if self.pose else None, **self.source.describe()}


@dataclass
class _Job:
    """One stream's frame within a tick."""

    session: Session
    k: int
    t: float
    pose: Pose | None                        #: None until a following stream's frame is derived
    mesh: np.ndarray | None
    landmarks: np.ndarray | None
    row: int = -1                            #: its row of the batched forward, when decoded

    @property
    def derived(self) -> bool:
        return isinstance(self.session.source, FollowSource)


@dataclass
class TickStats:
    total_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    model_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    derive_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    send_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    lateness_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    rows: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    ticks: int = 0
    forwards: int = 0
    frames: int = 0


class Engine:
    """Sessions stepped together on one clock; every decode of a tick in one forward."""

    def __init__(self, registry: Registry, config: EngineConfig = EngineConfig(), epoch: float = 0.0,
                 wall: Callable[[], int] = time.time_ns) -> None:
        if config.encoding not in P.ENCODINGS:
            raise ValueError(f"unknown encoding {config.encoding!r}; use one of {', '.join(P.ENCODINGS)}")
        self.registry = registry
        self.config = config
        self.epoch = epoch
        self.wall = wall
        self.face = synthface() if registry.template is synthface_template() else SynthFace(registry.template)
        self.template = registry.template.vertices.astype(np.float32)
        self.sessions: dict[str, Session] = {}
        self._outbox: list[P.Message] = []
        self._next_id = 1
        self._row_ms = 4.0                   # decoder cost per mesh, measured as it runs
        self._overhead_ms = 0.0              # a tick's cost besides the forward, measured as it runs
        self.stats_ = TickStats()
        self.transport_stats: Callable[[], dict] | None = None
        self._animator: Animator | None = None
        self._methods: dict[str, object] = {}

    # ---- models -----------------------------------------------------------
    @property
    def animator(self) -> Animator:
        if self._animator is None:
            self._animator = Animator(self.registry.get("motion3dgan"), self.config.cache_clips)
        return self._animator

    @property
    def decoder(self):
        return self.registry.get("s2d")

    def neutralizer(self, method: str):
        """The loaded neutralization method ``method`` (``ModelUnavailable`` naming what failed).
        The first time, it also runs once on the template, so that what it sets up
        on first use (a factorization, torch's first forward) does not make a tick late."""
        if method not in self._methods:
            found = self.registry.get(NEUTRAL_METHODS[method])
            if method == "s2d":
                found = S2DNeutralizer(self.decoder, found, self.registry.template)
            with torch.no_grad():
                found.transfer(self.template[None], self.template[None])
            self._methods[method] = found
        return self._methods[method]

    def warm_up(self) -> None:
        """One decode and one motion sample before serving, so the first ticks are not late
        (torch's first forward allocates); a model that did not load is skipped."""
        if "s2d" in self.registry.loaded:
            n = self.face.template
            neutral = n.vertices[None].astype(np.float32)
            lm = n.landmark_points()[None].astype(np.float32)
            self.decoder.decode(neutral, lm, lm)
        if "motion3dgan" in self.registry.loaded:
            self.animator.motion(self.animator.labels[0], 0)

    # ---- control ----------------------------------------------------------
    def handle_raw(self, raw: bytes | str, codec: str, now: float) -> bytes | str:
        """Control bytes in, reply bytes out; never raises."""
        try:
            msg = P.parse_command(raw, codec)
        except P.ProtocolError as exc:
            return P.pack_reply(P.error(exc.code, exc.message), codec)
        return P.pack_reply(self.handle(msg, now), codec)

    def handle(self, msg: dict, now: float) -> dict:
        """One control command -> its reply map; never raises."""
        try:
            refused = self.refuse(msg)
            if refused is not None:
                return refused
            cmd = msg.get("cmd")
            handler = COMMANDS.get(cmd) if isinstance(cmd, str) else None
            if handler is None:
                return P.error(P.UNKNOWN_COMMAND, f"unknown command {str(cmd)[:64]!r}; commands: "
                                                   f"{', '.join(sorted(COMMANDS))}", msg)
            return P.ok(msg, **handler(self, msg, now))
        except P.ProtocolError as exc:
            return P.error(exc.code, exc.message, msg)
        except AnimationError as exc:
            return P.error(P.NOT_FOUND if "unknown expression label" in str(exc) else P.BAD_ARGUMENT,
                           str(exc), msg)
        except ModelUnavailable as exc:
            return P.error(P.UNAVAILABLE, str(exc), msg)
        except Exception as exc:             # a bug must not stop the engine: report it, keep ticking
            return P.error(P.INTERNAL, f"{type(exc).__name__}: {exc}", msg)

    def refuse(self, msg: dict) -> dict | None:
        """The ``unauthorized`` reply for a command without the runtime's token, else None
        (also what the transports check before their own commands)."""
        if self.config.token is None:
            return None
        given = msg.get("token")
        if isinstance(given, str) and hmac.compare_digest(given.encode(), self.config.token.encode()):
            return None
        return P.error(P.UNAUTHORIZED, "this runtime needs a valid 'token' with every command", msg)

    def open(self, kind: str, now: float, **args) -> str:
        """Open a stream from Python (what the ``open`` command does); returns its id."""
        reply = self.handle({"cmd": "open", "kind": kind, **args}, now)
        if not reply["ok"]:
            raise ValueError(reply["error"]["message"])
        return reply["stream"]

    def _cmd_ping(self, msg: dict, now: float) -> dict:
        return {"pong": True, "v": P.VERSION, "version": code_version(), "wall": self.wall(),
                "streams": len(self.sessions)}

    def _cmd_open(self, msg: dict, now: float) -> dict:
        if len(self.sessions) >= self.config.max_streams:
            raise P.ProtocolError(P.LIMIT, f"{self.config.max_streams} streams are open; close one first")
        kind = _arg(msg, "kind", str, choices=KINDS)
        if kind in ("neutral", "transfer"):
            return self._open_follower(kind, msg, now)
        fps = _arg(msg, "fps", float, self.config.fps, *FPS_RANGE)
        enc = _arg(msg, "enc", str, self.config.encoding, choices=P.ENCODINGS)
        mode = _arg(msg, "mode", str, "baked", choices=MODES)
        loop = _arg(msg, "loop", bool, False)
        blend = _arg(msg, "blend", float, DEFAULT_BLEND, 0.0, 60.0)
        seed = _arg(msg, "seed", int, self._next_id, 0, MAX_SEED)
        identity = self._identity(msg)
        self.registry.get("s2d")          # both sources need S2D-Dec (and Motion3DGAN): fail early if absent
        if kind == "generate":
            label = _arg(msg, "label", str)
            duration = _arg(msg, "duration", float, DEFAULT_DURATION)
            source: Source = GenerateSource(self.animator, identity, label, seed, duration, loop, blend)
        else:
            items = _playlist(msg)
            source = PlaylistSource(self.animator, identity, items, seed, loop, blend)
        return self._add(source, fps, enc, mode, now)

    def _add(self, source: Source, fps: float, enc: str, mode: str, now: float) -> dict:
        sid = f"s{self._next_id:06d}"
        self._next_id += 1
        s = Session(sid, source, Cadence.starting_at(fps, self.epoch, now), enc, mode, now)
        self.sessions[sid] = s
        self._request(s)
        self._outbox.append(self.topology(sid))
        return {"stream": sid, "fps": fps, "enc": enc, "mode": mode, "topology": self.registry.template.topology_id,
                "n": self.registry.template.n_vertices}

    def _open_follower(self, kind: str, msg: dict, now: float) -> dict:
        """``neutral`` (``of``, ``method``) or ``transfer`` (``of``, ``identity``, ``method``)."""
        followed = self._session({"stream": _arg(msg, "of", str)})
        fps = _arg(msg, "fps", float, followed.cadence.fps, *FPS_RANGE)
        enc = _arg(msg, "enc", str, self.config.encoding, choices=P.ENCODINGS)
        if kind == "neutral":
            method = _arg(msg, "method", str, DEFAULT_NEUTRAL_METHOD, choices=tuple(NEUTRAL_METHODS))
            self.neutralizer(method)                      # fail now if it is not loaded
            source: Source = NeutralSource(followed.id, method)
        else:
            method = _arg(msg, "method", str, DEFAULT_TRANSFER_METHOD, choices=tuple(TRANSFER_METHODS))
            self.neutralizer(TRANSFER_METHODS[method])
            source = TransferSource(followed.id, method, self._identity(msg))
        return self._add(source, fps, enc, "live", now)

    def attach(self, source: Source, now: float, fps: float | None = None, enc: str | None = None) -> str:
        """Stream a source built in Python (a ``track`` source: its camera or file is the caller's
        choice, not a control client's); returns its stream id."""
        if len(self.sessions) >= self.config.max_streams:
            raise ValueError(f"{self.config.max_streams} streams are open; close one first")
        return self._add(source, fps or self.config.fps, enc or self.config.encoding, "live", now)["stream"]

    def _remove(self, s: Session) -> None:
        del self.sessions[s.id]
        s.source.close()

    def _cmd_close(self, msg: dict, now: float) -> dict:
        s = self._session(msg)
        self._remove(s)
        self._outbox.append(P.end_message(s.id, "closed", s.frames))
        return {"stream": s.id, "frames": s.frames, "dropped": s.cadence.dropped}

    def _cmd_list(self, msg: dict, now: float) -> dict:
        return {"streams": [s.describe(now) for s in self.sessions.values()]}

    def _cmd_models(self, msg: dict, now: float) -> dict:
        return {**self.registry.report(), "labels": list(self.animator.labels)
                if "motion3dgan" in self.registry.loaded else []}

    def _cmd_set(self, msg: dict, now: float) -> dict:
        s = self._session(msg)
        changes: dict = {}
        if "label" in msg:
            label = _arg(msg, "label", str)
            changes["label"] = label if isinstance(s.source, FollowSource) else self.animator.check_label(label)
        if "identity" in msg:
            changes["identity"] = self._identity(msg)
        fps = _arg(msg, "fps", float, None, *FPS_RANGE) if "fps" in msg else None
        enc = _arg(msg, "enc", str, None, choices=P.ENCODINGS) if "enc" in msg else None
        if not changes and fps is None and enc is None:
            raise P.ProtocolError(P.BAD_ARGUMENT, "set needs one of 'label', 'identity', 'fps', 'enc'")
        if "label" in changes and isinstance(s.source, FollowSource):
            raise P.ProtocolError(P.BAD_ARGUMENT, f"a {s.source.kind} stream follows {s.source.follow}; "
                                                  f"set the label there")
        if changes:
            t = 0.0 if s.origin is None else max(0.0, s.cadence.deadline() - s.origin)
            s.source.set(t, changes)
            self._request(s)
        if fps is not None:
            dropped = s.cadence.dropped
            s.cadence = Cadence.starting_at(fps, self.epoch, now)
            s.cadence.dropped = dropped
        if enc is not None:
            s.enc = enc
        return {"stream": s.id, **s.describe(now)}

    def _cmd_stats(self, msg: dict, now: float) -> dict:
        out = self.stats(now)
        if _arg(msg, "reset", bool, False):          # start a fresh measuring window
            self.stats_ = TickStats()
        return out

    def _session(self, msg: dict) -> Session:
        sid = _arg(msg, "stream", str)
        if sid not in self.sessions:
            raise P.ProtocolError(P.NOT_FOUND, f"no stream {sid[:64]!r}; open streams: "
                                               f"{', '.join(self.sessions) or 'none'}")
        return self.sessions[sid]

    def _identity(self, msg: dict) -> Identity:
        return make_identity(msg.get("identity"), self.face)

    def _request(self, s: Session) -> None:
        if s.mode == "baked":
            for spec in s.source.wanted():
                self.animator.request(spec)

    # ---- data plane -------------------------------------------------------
    def topology(self, stream: str) -> P.Message:
        """The topology message a subscriber of ``stream`` needs before its frames."""
        t = self.registry.template
        return P.topology_message(stream, t.topology_id, t.name, t.faces, t.vertices, t.landmarks.face_idx,
                                  t.landmarks.bary)

    def next_deadline(self) -> float | None:
        """When the next tick is due (None with nothing to do; at once when
        messages wait, e.g. the end of a stream just closed)."""
        if self._outbox:
            return -math.inf
        if not self.sessions:
            return None
        return min(s.cadence.deadline() for s in self.sessions.values())

    def tick(self, now: float) -> list[P.Message]:
        """Step every stream due at ``now``; returns the messages to send, in order."""
        t0 = time.perf_counter()
        tick_ns = self.wall()
        out, self._outbox = self._outbox, []
        jobs: list[_Job] = []
        for s in list(self.sessions.values()):
            if not s.cadence.due(now):
                continue
            k, late = s.cadence.advance(now)
            s.seq += 1 + s.cadence.dropped - s.seen_dropped        # skipped periods leave a gap
            s.seen_dropped = s.cadence.dropped
            self.stats_.lateness_ms.append(late * 1e3)
            job = self._step(s, k)
            if job is None:                                  # the clip ended
                self._remove(s)
                out.append(P.end_message(s.id, "finished", s.frames))
            else:
                jobs.append(job)
        period = min((j.session.cadence.period for j in jobs), default=1.0)
        model_ms = self._decode([j for j in jobs if not j.derived], period * 1e3)
        for job in jobs:
            if not job.derived:
                job.session.mesh = job.mesh
        derive_ms, jobs, ended = self._derive(jobs)
        out += ended
        for job in jobs:
            s = job.session
            out.append(P.frame_message(
                s.id, s.seq, job.t, job.mesh, s.enc, self.registry.template.topology_id,
                self.template, self.wall(), tick_ns, s.cadence.fps, landmarks=job.landmarks,
                weights=job.pose.weights, label=job.pose.label, identity=job.pose.identity.key,
                meta=job.pose.meta))
            s.frames += 1
        if jobs:
            st = self.stats_
            st.ticks += 1
            st.frames += len(jobs)
            total = (time.perf_counter() - t0) * 1e3
            st.total_ms.append(total)
            st.model_ms.append(model_ms)
            st.derive_ms.append(derive_ms)
            self._overhead_ms = 0.8 * self._overhead_ms + 0.2 * (total - model_ms)
        return out

    def _step(self, s: Session, k: int) -> _Job | None:
        deadline = s.cadence.deadline(k)
        if isinstance(s.source, FollowSource):               # derived after the tick's other meshes
            if s.origin is None:
                s.origin = deadline
            return _Job(s, k, deadline - s.origin, None, None, None)
        if s.origin is None:
            if s.mode == "live" or all(self.animator.clip(c) is not None for c in s.source.first()):
                s.origin = deadline
            else:                                             # still baking: show the neutral
                pose = s.source.step(0.0)
                ident = pose.identity if pose is not None else s.source.first()[0].identity
                s.pose = Pose(ident, label=pose.label if pose else None)
                return _Job(s, k, 0.0, s.pose, ident.neutral, ident.landmarks)
        t = deadline - s.origin
        pose = s.source.step(t)
        if pose is None:
            return None
        s.pose = pose
        mesh, landmarks = self._resolve(pose, s.mode)
        return _Job(s, k, t, pose, mesh, landmarks)

    def _resolve(self, pose: Pose, mode: str) -> tuple[np.ndarray | None, np.ndarray]:
        """A pose -> (mesh, or None when it must be decoded; its landmarks)."""
        ident = pose.identity
        if pose.mesh is not None:
            return pose.mesh, self.face.landmarks(pose.mesh[None])[0]
        if pose.target is not None:
            return None, pose.target
        if pose.motion is None or (pose.progress <= 0.0 and (pose.to is None or pose.tau <= 0.0)):
            return ident.neutral, ident.landmarks
        blending = pose.to is not None and 0.0 < pose.tau < 1.0
        if blending and pose.progress < 1.0:                 # a blend while the clip moves: always live
            return None, interpolate(self.animator.blended(ident, pose.motion, pose.to, pose.tau), pose.progress)
        if blending:
            spec, param = ClipSpec(ident, pose.motion, pose.to), pose.tau
        else:
            spec = ClipSpec(ident, pose.to if (pose.to is not None and pose.tau >= 1.0) else pose.motion)
            param = pose.progress
        landmarks = interpolate(self.animator.landmarks(spec), param)
        if mode == "baked":
            clip = self.animator.clip(spec)
            if clip is not None:
                return interpolate(clip, param), landmarks
            self.animator.request(spec)
        return None, landmarks

    def _decode(self, jobs: list[_Job], period_ms: float) -> float:
        """Every decode of the tick, and some bake rows, in one forward; returns its ms.

        Bake rows get what is left of ``bake_budget_ms`` and of the tick's
        slack (``TICK_SHARE`` of the period, less the measured cost of the
        rest of the tick and of the live rows), and at least one row.
        """
        live = [j for j in jobs if j.mesh is None]
        bake_rows: list = []
        if self._animator is not None and self._animator.pending_rows:
            slack = TICK_SHARE * period_ms - self._overhead_ms
            budget = min(self.config.bake_budget_ms, slack) - len(live) * self._row_ms
            bake_rows = self._animator.take_rows(max(1, int(budget // self._row_ms)))
        if not live and not bake_rows:
            return 0.0
        neutral = np.stack([j.pose.identity.neutral for j in live] + [r.identity.neutral for r in bake_rows])
        nl = np.stack([j.pose.identity.landmarks for j in live] + [r.identity.landmarks for r in bake_rows])
        target = np.stack([j.landmarks for j in live] + [r.target for r in bake_rows])
        t0 = time.perf_counter()
        meshes = self.decoder.decode(neutral, nl, target)
        ms = (time.perf_counter() - t0) * 1e3
        self._row_ms = 0.8 * self._row_ms + 0.2 * ms / len(target)
        for i, j in enumerate(live):
            j.mesh = meshes[i]
        if bake_rows:
            self._animator.store(bake_rows, meshes[len(live):])
        self.stats_.forwards += 1
        self.stats_.rows.append(len(target))
        return ms

    def _derive(self, jobs: list[_Job]) -> tuple[float, list[_Job], list[P.Message]]:
        """The frames of the following streams among ``jobs``, from the meshes
        the followed streams sent last (this tick's when they were due), one
        batched call per method. Returns (ms spent, the jobs that have a
        frame, end messages of streams whose followed stream is gone).

        A stream that follows another following stream reads that stream's
        previous frame when it comes first in the tick (one frame behind)."""
        t0 = time.perf_counter()
        keep: list[_Job] = []
        ended: list[P.Message] = []
        groups: dict[tuple[str, str], list[tuple[_Job, Session]]] = {}
        for job in jobs:
            if not job.derived:
                keep.append(job)
                continue
            s = job.session
            src = s.source
            followed = self.sessions.get(src.follow)
            if followed is None:
                self._remove(s)
                ended.append(P.end_message(s.id, "source_ended", s.frames))
                continue
            if followed.mesh is None or followed.pose is None:   # it has not sent a frame yet
                continue
            groups.setdefault((src.kind, src.method), []).append((job, followed))
            keep.append(job)
        for (kind, method), members in groups.items():
            faces = np.stack([f.mesh for _, f in members])
            with torch.no_grad():
                if kind == "neutral":
                    meshes = self.neutralizer(method).neutralize(faces)
                else:
                    targets = np.stack([j.session.source.identity.neutral for j, _ in members])
                    meshes = self.neutralizer(TRANSFER_METHODS[method]).transfer(faces, targets)
            landmarks = self.face.landmarks(meshes)
            for i, (job, followed) in enumerate(members):
                fp = followed.pose
                ident = job.session.source.identity if kind == "transfer" else fp.identity
                job.pose = Pose(ident, label="neutral" if kind == "neutral" else fp.label,
                                weights=None if kind == "neutral" else fp.weights)
                job.session.pose = job.pose
                job.mesh, job.landmarks = meshes[i], landmarks[i]
                job.session.mesh = job.mesh
        return ((time.perf_counter() - t0) * 1e3 if groups else 0.0), [j for j in keep if j.mesh is not None], ended

    def record_send(self, ms: float) -> None:
        """The transports report how long sending one tick's messages took."""
        self.stats_.send_ms.append(ms)

    def stats(self, now: float) -> dict:
        st = self.stats_
        out = {
            "uptime_s": round(now - self.epoch, 3), "streams": len(self.sessions), "ticks": st.ticks,
            "frames": st.frames, "forwards": st.forwards,
            "dropped": sum(s.cadence.dropped for s in self.sessions.values()),
            "tick_ms": _figures(st.total_ms), "model_ms": _figures(st.model_ms),
            "derive_ms": _figures(st.derive_ms), "send_ms": _figures(st.send_ms),
            "lateness_ms": _figures(st.lateness_ms), "rows_per_forward": _figures(st.rows),
            "decode_ms_per_mesh": round(self._row_ms, 3),
            "cache": self._animator.cache_info() if self._animator else {},
            "per_stream": {s.id: {"frames": s.frames, "dropped": s.cadence.dropped,
                                  "fps_achieved": s.fps_achieved(now)} for s in self.sessions.values()},
        }
        if self.transport_stats is not None:
            out["transports"] = self.transport_stats()
        return out


def _figures(values) -> dict:
    if not values:
        return {"mean": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    a = np.asarray(values, dtype=np.float64)
    return {"mean": round(float(a.mean()), 3), "p50": round(float(np.percentile(a, 50)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3)}


_MISSING = object()


def _arg(msg: dict, name: str, kind: type, default=_MISSING, lo: float | None = None, hi: float | None = None,
         choices: tuple | None = None):
    """A checked argument of a control message (``ProtocolError`` naming the field)."""
    if name not in msg:
        if default is _MISSING:
            raise P.ProtocolError(P.BAD_ARGUMENT, f"missing argument {name!r}")
        return default
    value = msg[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise P.ProtocolError(P.BAD_ARGUMENT, f"{name!r} must be {'a number' if kind is float else kind.__name__}, "
                                              f"got {type(value).__name__}")
    if kind is float and not math.isfinite(value):
        raise P.ProtocolError(P.BAD_ARGUMENT, f"{name!r} must be finite")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise P.ProtocolError(P.BAD_ARGUMENT, f"{name!r} must lie in {lo:g}..{hi:g}, got {value!r}")
    if choices is not None and value not in choices:
        raise P.ProtocolError(P.BAD_ARGUMENT, f"{name!r} must be one of {', '.join(choices)}, got {str(value)[:64]!r}")
    return value


def _playlist(msg: dict) -> list[tuple[str, float]]:
    items = msg.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_PLAYLIST:
        raise P.ProtocolError(P.BAD_ARGUMENT, f"'items' must be a list of 1..{MAX_PLAYLIST} labels or "
                                              f"{{\"label\", \"duration\"}} maps")
    default = _arg(msg, "duration", float, DEFAULT_ITEM)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append((item, default))
        elif isinstance(item, dict) and isinstance(item.get("label"), str):
            out.append((item["label"], _arg(item, "duration", float, default)))
        else:
            raise P.ProtocolError(P.BAD_ARGUMENT, f"items[{i}] must be a label or a {{\"label\", \"duration\"}} map")
    return out


COMMANDS: dict[str, Callable[[Engine, dict, float], dict]] = {
    "ping": Engine._cmd_ping, "open": Engine._cmd_open, "close": Engine._cmd_close, "list": Engine._cmd_list,
    "models": Engine._cmd_models, "set": Engine._cmd_set, "stats": Engine._cmd_stats,
}
