"""The browser page (``clients/web``) in a real headless Chromium (Debian's,
driven by Playwright; WebGL2 through SwiftShader) against a live runtime:
it receives and draws a stream, opens and closes sessions from its panel,
reconnects to a restarted runtime, refuses another protocol version, and its
decoder agrees with ``runtime.protocol``."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import msgpack
import numpy as np
import pytest

from clients import web_folder
from runtime import protocol as P
from runtime.server import ServeConfig, Server
from trainers.bench.runtime import free_port

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (Debian's chromium package "
                                                              "runs these tests; nothing is installed at run time)")

#: WebGL2 on the CPU: headless Chromium has no GPU here
LAUNCH_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
VIEWPORT = {"width": 800, "height": 600}
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = chromium.new_page()
        webgl2 = page.evaluate("!!document.createElement('canvas').getContext('webgl2')")
        page.close()
        if not webgl2:
            chromium.close()
            pytest.fail(f"{CHROMIUM} offers no WebGL2 with {' '.join(LAUNCH_ARGS)}: the page cannot draw")
        yield chromium
        chromium.close()


class Tab:
    """A fresh page in its own browser context, with its uncaught errors."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self, port: int) -> None:
        self.page.goto(f"http://127.0.0.1:{port}/")

    def figures(self) -> dict:
        return self.page.evaluate("window.facecast")

    def wait(self, condition: str, arg=None, timeout: int = TIMEOUT_MS) -> None:
        """Wait until ``(arg) => condition`` holds for ``f = window.facecast``."""
        try:
            self.page.wait_for_function(f"(arg) => {{ const f = window.facecast; return !!f && ({condition}); }}",
                                        arg=arg, polling=100, timeout=timeout)
        except Exception as exc:
            raise AssertionError(f"the page never reached {condition} (arg {arg!r}): {self.figures()}, "
                                 f"errors {self.errors}") from exc


@pytest.fixture
def tab(browser):
    t = Tab(browser)
    yield t
    t.context.close()


def test_the_page_receives_and_draws_a_stream(tab, serve_runtime, tmp_path):
    from PIL import Image

    from runtime.render.scene import BACKGROUND

    rt = serve_runtime(web=web_folder())
    # eyebrow keeps the mouth closed at every frame, so the holes the upright check counts are
    # the eyes whatever frame the screenshot catches (a smile's open mouth made it flaky)
    sid = rt.open(label="eyebrow")
    tab.open(rt.ws_port)
    tab.wait("f.state === 'open' && f.shown === arg && f.shownFrames >= 120 && f.drawn >= 10", sid)
    f = tab.figures()
    assert f["error"] is None and f["streams"] == [sid]
    assert f["perStream"][sid]["frames"] >= 120 and f["frames"] >= f["shownFrames"]
    assert f["fps"] > 0 and f["latencyMs"] is not None and f["latencyMs"] < 1000

    page = tab.page
    shot = page.screenshot()                       # what a person sees: the face, the overlay, the panel
    for folder in (ARTIFACTS, tmp_path):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "web_page.png").write_bytes(shot)
    page.add_style_tag(content="#overlay { visibility: hidden; }")
    canvas = page.locator("#view").screenshot()
    (tmp_path / "web_canvas.png").write_bytes(canvas)
    img = np.asarray(Image.open(io.BytesIO(canvas)).convert("RGB")).astype(np.int32)

    background = np.round(255 * np.asarray(BACKGROUND[:3])).astype(np.int32)
    face = np.abs(img - background).max(axis=2) > 12
    assert 0.05 < face.mean() < 0.70, f"{face.mean():.1%} of the canvas differs from the background"
    rgb = img[face]
    r, g, b = np.median(rgb, axis=0)
    assert r > g > b and r - b > 30, f"face pixels are not skin-coloured: median RGB {r, g, b}"
    assert rgb.sum(axis=1).std() > 15 and len(np.unique(rgb, axis=0)) > 200, "the face is one flat colour"
    rows, cols = np.nonzero(face)
    h, w = face.shape
    assert abs(cols.mean() / w - 0.5) < 0.1 and abs(rows.mean() / h - 0.5) < 0.15, "the face is not framed"
    # upright: the eye holes (background inside the face's outline) are in its upper half
    top, bottom = rows.min(), rows.max()
    holes = np.zeros(h)
    for y in range(top, bottom + 1):
        xs = np.nonzero(face[y])[0]
        holes[y] = (xs[-1] - xs[0] + 1) - len(xs)
    middle = (top + bottom) // 2
    assert holes[top:middle].sum() > 2 * holes[middle:bottom + 1].sum(), "the face is not upright"
    # the key light is on the viewer's left
    luma = img.sum(axis=2)
    centre = int(np.median(cols))
    assert luma[:, :centre][face[:, :centre]].mean() > luma[:, centre:][face[:, centre:]].mean()
    assert not tab.errors


def test_the_panel_opens_switches_and_closes_sessions(tab, serve_runtime):
    rt = serve_runtime(web=web_folder())
    first = rt.open(label="eyebrow")
    tab.open(rt.ws_port)
    tab.wait("f.shown === arg && f.shownFrames >= 10", first)
    page = tab.page
    button = page.locator('button[data-label="mouth_open"]')
    button.wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#labels button").count() == len(rt.call(cmd="models")["labels"]) == 12
    page.fill("#identity", "7")
    button.click()                                 # leaving the identity field also sets the shown stream's

    end = time.monotonic() + 10
    while len(streams := rt.call(cmd="list")["streams"]) < 2:
        assert time.monotonic() < end, "clicking a label opened no session"
        time.sleep(0.1)
    opened = next(s for s in streams if s["stream"] != first)
    assert opened["label"] == "mouth_open" and opened["identity"] == "synth:7" and opened["loop"]
    assert next(s for s in streams if s["stream"] == first)["identity"] == "synth:7"
    tab.wait("f.shown === arg && f.shownFrames >= 30", opened["stream"])
    tab.wait("f.streams.length === 2 && f.perStream[arg].frames >= 30", first)

    page.check(f'input[name="stream"][value="{first}"]')      # show the first stream again
    tab.wait("f.shown === arg", first)
    page.click("#close")
    end = time.monotonic() + 10
    while first in [s["stream"] for s in rt.call(cmd="list")["streams"]]:
        assert time.monotonic() < end, "the close button closed nothing"
        time.sleep(0.1)
    tab.wait("!f.streams.includes(arg[0]) && f.shown === arg[1]", [first, opened["stream"]])
    assert tab.figures()["error"] is None and not tab.errors


def test_the_page_reconnects_to_a_restarted_runtime(tab, serve_runtime):
    old = serve_runtime(web=web_folder())
    sid = old.open(label="high_smile")
    tab.open(old.ws_port)
    tab.wait("f.state === 'open' && f.shown === arg && f.shownFrames >= 30", sid)
    old.close()
    tab.wait("f.state !== 'open'")
    frames = tab.figures()["frames"]

    new = serve_runtime(web=web_folder(), ports=old.ports)
    again = new.open(label="bareteeth")
    tab.wait("f.state === 'open' && f.shown === arg[0] && f.frames >= arg[1] + 30", [again, frames])
    f = tab.figures()
    assert f["streams"] == [again] and f["error"] is None and not tab.errors


# ---- a fake runtime: the page's files, and data messages of our choosing ---------

class FakeRuntime:
    """A WebSocket server on a free port that serves the page like the runtime
    (with the runtime's own static handler), answers ``ping`` with protocol
    version ``version``, ``models`` with no labels and ``list`` with one
    stream, ``s000001``, and after its first ``list`` reply sends ``messages``."""

    def __init__(self, messages: list[bytes], version: int = P.VERSION) -> None:
        self.port = free_port()
        self.messages = messages
        self.replies = {"ping": {"pong": True, "v": version}, "models": {"labels": []},
                        "list": {"streams": [{"stream": "s000001", "kind": "generate", "label": "neutral"}]}}
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.thread.start()
        assert self.started.wait(10), "the fake runtime did not start"

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        static = Server(SimpleNamespace(), ServeConfig(zmq=None, control=None, ws=f"127.0.0.1:{self.port}",
                                                       web=web_folder()))
        self.stop = asyncio.Event()
        async with serve(self._client, "127.0.0.1", self.port, process_request=static._http):
            self.started.set()
            await self.stop.wait()

    async def _client(self, conn) -> None:
        pending = list(self.messages)
        async for raw in conn:
            cmd = json.loads(raw)
            await conn.send(json.dumps({"ok": True, **self.replies.get(cmd["cmd"], {}), "id": cmd["id"]}))
            if cmd["cmd"] == "list":
                for m in pending:
                    await conn.send(m)
                pending = []

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


@pytest.fixture
def fake_runtime():
    started: list[FakeRuntime] = []

    def start(messages: list[bytes] = (), version: int = P.VERSION) -> FakeRuntime:
        started.append(FakeRuntime(list(messages), version))
        return started[-1]

    yield start
    for fake in started:
        fake.close()


def data_message(header: dict, payload: bytes = b"") -> bytes:
    head = msgpack.packb(header)
    return struct.pack("<I", len(head)) + head + payload


@pytest.mark.parametrize("where", ["data", "ping"])
def test_a_runtime_of_another_protocol_version_is_refused(tab, fake_runtime, where):
    if where == "data":        # a v1 ping reply, then a data message of version 2
        fake = fake_runtime([data_message({"v": 2, "type": "frame", "stream": "s000001", "seq": 0}, b"\0" * 12)])
    else:
        fake = fake_runtime(version=2)
    tab.open(fake.port)
    tab.wait("f.state === 'error'")
    f = tab.figures()
    assert "version 2" in f["error"] and "v1" in f["error"], f["error"]
    assert f["frames"] == 0 and f["drawn"] == 0
    assert f["error"] in tab.page.inner_text("#error")
    assert "error" in tab.page.inner_text("#figures")
    time.sleep(1.0)                                # it stays stopped: no reconnecting
    assert tab.figures()["state"] == "error" and not tab.errors


@pytest.fixture
def still_face(tab, fake_runtime):
    """The page showing one frame, the SynthFace template, from a fake runtime;
    ``(tab, template, shoot)`` where ``shoot()`` is the canvas as RGB."""
    from PIL import Image

    from models.face import synthface_template

    t = synthface_template()
    template = t.vertices.astype(np.float32)
    topology = P.topology_message("s000001", t.topology_id, t.name, t.faces, t.vertices, t.landmarks.face_idx,
                                  t.landmarks.bary)
    frame = P.frame_message("s000001", 0, 0.0, template, "f32", t.topology_id, template, time.time_ns(),
                            time.time_ns(), 60.0)
    fake = fake_runtime([topology.ws_bytes(), frame.ws_bytes()])
    tab.open(fake.port)
    tab.wait("f.drawn === 1")
    tab.page.add_style_tag(content="#overlay { visibility: hidden; }")

    def shoot() -> np.ndarray:
        tab.page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        return np.asarray(Image.open(io.BytesIO(tab.page.locator("#view").screenshot())).convert("RGB"))

    return tab, t, shoot


def desktop_render(t, size: tuple[int, int], turn=lambda camera: camera) -> np.ndarray:
    """The desktop's ``FaceView`` of the template, framed as the page frames it, then ``turn``ed."""
    from runtime.frames import Frame, Topology
    from runtime.render import Camera, FaceView, Renderer, Style

    w, h = size
    template = t.vertices.astype(np.float32)
    with Renderer.headless(size=(w, h)) as renderer:
        camera = turn(Camera.named("front").fit(template, aspect=w / h, margin=1.25))
        return FaceView(renderer).render(Frame(template, Topology.from_template(t)), camera,
                                         Style(landmarks=False, accessories=False))[..., :3]


def assert_looks_alike(desktop: np.ndarray, web: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.concatenate([desktop, web], axis=1)).save(path)
    diff = np.abs(desktop.astype(np.int32) - web.astype(np.int32)).max(axis=2)
    assert diff.mean() < 1.5 and (diff > 24).mean() < 0.01, \
        f"mean {diff.mean():.2f}, {(diff > 24).mean():.2%} of the pixels off (see {path})"


def test_the_page_draws_like_the_desktop_renderer(still_face, tmp_path):
    tab, t, shoot = still_face
    web = shoot()
    assert_looks_alike(desktop_render(t, web.shape[1::-1]), web, tmp_path / "desktop_vs_web.png")
    assert not tab.errors


def test_the_orbit_camera_turns_zooms_and_resets_like_the_desktop(still_face, tmp_path):
    tab, t, shoot = still_face
    mouse = tab.page.mouse
    front = shoot()
    h, w = front.shape[:2]
    mouse.move(w / 2, h / 2)
    mouse.down()
    mouse.move(w / 2 + 100, h / 2 + 50, steps=5)     # 0.4 degrees per pixel, as the desktop viewer
    mouse.up()
    turned = shoot()
    assert_looks_alike(desktop_render(t, (w, h), lambda c: c.orbit(-40.0, 20.0)), turned, tmp_path / "turned.png")
    mouse.wheel(0, -200)                             # two notches toward the face
    zoomed = shoot()
    assert_looks_alike(desktop_render(t, (w, h), lambda c: c.orbit(-40.0, 20.0).zoom(0.81)), zoomed,
                       tmp_path / "zoomed.png")
    mouse.dblclick(w / 2, h / 2)
    np.testing.assert_array_equal(shoot(), front)
    assert not tab.errors


def test_the_page_decodes_every_encoding_like_the_runtime(tab, fake_runtime):
    from models.face import synthface_template

    t = synthface_template()
    template = t.vertices.astype(np.float32)
    vertices = template + np.random.default_rng(0).normal(0, 0.004, template.shape).astype(np.float32)
    topology = P.topology_message("s000001", t.topology_id, t.name, t.faces, t.vertices, t.landmarks.face_idx,
                                  t.landmarks.bary)
    wall = time.time_ns()
    frames = {enc: P.frame_message("s000001", 1000, 10.0, vertices, enc, t.topology_id, template, wall, wall, 60.0,
                                   landmarks=t.landmark_points(), label="high_smile", identity="synth:0")
              for enc in P.ENCODINGS}
    fake = fake_runtime()
    tab.open(fake.port)
    tab.wait("f.state === 'open'")
    b64 = {enc: base64.b64encode(m.ws_bytes()).decode() for enc, m in frames.items()}
    out = tab.page.evaluate("""async ([topologyB64, frames]) => {
        const P = await import("/protocol.js");
        const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
        const t = P.parseMessage(bytes(topologyB64));
        const topology = P.decodeTopology(t.header, t.payload);
        const decoder = new P.VertexDecoder();
        const out = {faces: Array.from(topology.faces), template: Array.from(topology.template)};
        for (const [enc, b64] of Object.entries(frames)) {
            const {header, payload} = P.parseMessage(bytes(b64));
            const v = new Float32Array(3 * header.n);
            decoder.decode(header, payload, topology, v);
            out[enc] = {v: Array.from(v), wall: header.wall, seq: header.seq, label: header.label,
                        lm: header.lm.length, scale: header.scale ?? null};
        }
        return out;
    }""", [base64.b64encode(topology.ws_bytes()).decode(), b64])
    np.testing.assert_array_equal(np.asarray(out["faces"]).reshape(-1, 3), t.faces)
    np.testing.assert_array_equal(np.asarray(out["template"], np.float32).reshape(-1, 3), template)
    for enc, m in frames.items():
        got = np.asarray(out[enc]["v"], dtype=np.float32).reshape(-1, 3)
        reference = P.decode_vertices(m.payload, m.header, template)
        if enc == "q16":     # float64 arithmetic vs the reference's float32: a rounding step apart at most
            assert np.all(np.abs(got - reference) <= np.spacing(np.abs(template) + np.abs(reference))), enc
        else:
            np.testing.assert_array_equal(got, reference, err_msg=enc)
        assert np.all(np.abs(got - vertices) <= P.error_bound(vertices, enc, template)), enc
        assert abs(out[enc]["wall"] - wall) < 1_000 and out[enc]["seq"] == 1000
        assert out[enc]["label"] == "high_smile" and out[enc]["lm"] == 68 * 3 * 4
        assert out[enc]["scale"] == m.header.get("scale")
    assert not tab.errors
