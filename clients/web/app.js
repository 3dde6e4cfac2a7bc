// The facecast page: connects to the runtime that served it, draws the
// newest frame of one stream, lists and drives the runtime's streams, and
// keeps live figures on window.facecast (shown in the overlay, read by tests
// and benchmarks).

import { OrbitCamera } from "./camera.js";
import { Connection } from "./connection.js";
import { FaceRenderer } from "./gl.js";
import { VERSION, VersionError, VertexDecoder, decodeTopology, parseMessage } from "./protocol.js";

const FIT_MARGIN = 1.25;          // room around the template for expressions (the desktop viewer's)
const ORBIT_DEG_PER_PX = 0.4;     // as the desktop viewer
const ZOOM_STEP = 0.9;            // distance factor per wheel notch
const WINDOW_MS = 1000;           // rates and latency are over the last second
const LIST_EVERY_MS = 1000;
const FIGURES_EVERY_MS = 250;
// Dynamic resolution, as games do: when drawing falls behind the frames that
// arrive (a software rasteriser, a weak GPU, a large window), draw fewer
// pixels and let the browser stretch them, so the face keeps its frame rate.
const SCALES = [1, 0.85, 0.7, 0.6, 0.5, 0.42, 0.35];   // render resolution ladder
const BEHIND_FPS = 3;             // drawing this far below the arrival rate is falling behind
const STEP_UP_AFTER_S = 5;        // seconds of keeping up before trying a finer step
const CEILING_S = 30;             // a step that fell behind is not retried for this long
const FIXED_SCALE = parseFloat(new URLSearchParams(location.search).get("scale"));   // ?scale=0.5 fixes it

// Live figures, updated in place.
const live = (window.facecast = {
  state: "connecting",            // "connecting" | "open" | "closed" | "error"
  error: null,
  frames: 0,                      // frames received, all streams
  shown: null,                    // the stream drawn
  shownFrames: 0,                 // frames of the shown stream received
  drawn: 0,                       // frames drawn
  fps: 0,                         // frames/s of the shown stream received
  drawFps: 0,                     // frames/s drawn
  latencyMs: null,                // median of now - header wall
  frameMs: null,                  // median JavaScript time per drawn frame: decode, normals, upload, draw call
  dropped: 0,                     // seq gaps, summed over streams
  renderScale: 1,                 // drawing resolution relative to the canvas (dynamic resolution)
  streams: [],
  perStream: {},                  // id -> {frames, dropped, fps}
});

// Events of the last WINDOW_MS: their count per second and the median of their values.
class Recent {
  constructor() {
    this.times = [];
    this.values = [];
  }

  add(value = 0) {
    this.times.push(performance.now());
    this.values.push(value);
  }

  prune(now) {
    let old = 0;
    while (old < this.times.length && now - this.times[old] > WINDOW_MS) old++;
    this.times.splice(0, old);
    this.values.splice(0, old);
  }

  clear() {
    this.times.length = 0;
    this.values.length = 0;
  }

  rate(now) {
    this.prune(now);
    return (this.times.length * 1000) / WINDOW_MS;
  }

  median(now) {
    this.prune(now);
    if (!this.values.length) return null;
    const sorted = [...this.values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }
}

const $ = (id) => document.getElementById(id);
const ui = {
  canvas: $("view"), figures: $("figures"), error: $("error"), streams: $("streams"), noStreams: $("no-streams"),
  close: $("close"), identity: $("identity"), labels: $("labels"), noLabels: $("no-labels"),
};

// Per connection: stream id -> {topology, lastSeq, received, figures (= live.perStream[id]), info (from list)}
const streams = new Map();
const topologies = new Map();     // topology id -> decoded topology (streams share them)
let listed = false;               // a list reply arrived on this connection
let chosen = null;                // the stream to show again after a reconnect
let newest = null;                // the shown stream's newest frame not drawn yet
const latency = new Recent();
const draws = new Recent();                 // values: the page's own milliseconds per drawn frame
const decoder = new VertexDecoder();
const camera = new OrbitCamera();
let renderer = null;
let redraw = false;               // the camera moved

const token = new URLSearchParams(location.search).get("token");
const connection = new Connection(`ws://${location.host}/`, token, { onState, onData, onStrayReply });

// ---- messages ---------------------------------------------------------------

function onState(state) {
  live.state = state;
  if (state === "open") {
    hello();
  } else if (state === "closed") {
    for (const id of [...streams.keys()]) forget(id);
    listed = false;
  }
  renderPanel();
  renderFigures();
}

// Checks the runtime's protocol version, then asks for its labels and streams.
async function hello() {
  const pong = await request("ping");
  if (pong && pong.v !== VERSION) {
    fatal(new VersionError(pong.v).message);
    return;
  }
  const models = await request("models");
  if (models) renderLabels(models.labels);
  await refreshList();
}

function onData(buffer) {
  try {
    const msg = parseMessage(buffer);
    const { type } = msg.header;
    if (type === "frame") onFrame(msg);
    else if (type === "topology") onTopology(msg);
    else if (type === "end") onEnd(msg.header);
  } catch (e) {
    if (e instanceof VersionError) fatal(e.message);
    else report(`bad data message: ${e.message}`);
  }
}

function onTopology({ header, payload }) {
  if (!topologies.has(header.topology)) topologies.set(header.topology, decodeTopology(header, payload));
  stream(header.stream).topology = header.topology;
  renderPanel();
}

// Counts every stream's frames from its header; keeps only the shown stream's newest for drawing.
function onFrame(msg) {
  const { header } = msg;
  const s = streams.get(header.stream);
  if (!s || s.topology !== header.topology) return;      // no topology for it (yet): ignore
  live.frames++;
  s.figures.frames++;
  if (s.lastSeq !== null && header.seq > s.lastSeq + 1) {
    const gap = header.seq - s.lastSeq - 1;
    s.figures.dropped += gap;
    live.dropped += gap;
  }
  s.lastSeq = header.seq;
  s.received.add();
  if (live.shown === null && listed) show(header.stream);   // nothing chosen: the first stream that sends
  if (header.stream === live.shown) {
    live.shownFrames = s.figures.frames;
    latency.add(Date.now() - header.wall / 1e6);            // wall: Unix ns (a Number: ms precision is plenty)
    newest = msg;
  }
}

// A reply without an id: the runtime could not parse a request.
function onStrayReply(reply) {
  if (!reply.ok) report(`${reply.error.code}: ${reply.error.message}`);
}

function onEnd(header) {
  if (header.stream === chosen) chosen = null;
  forget(header.stream);
  renderPanel();
}

// ---- streams ----------------------------------------------------------------

function stream(id) {
  let s = streams.get(id);
  if (!s) {
    s = { topology: null, lastSeq: null, received: new Recent(), figures: { frames: 0, dropped: 0, fps: 0 }, info: null };
    streams.set(id, s);
    live.perStream[id] = s.figures;
    live.streams = [...streams.keys()];
  }
  return s;
}

function forget(id) {
  if (!streams.delete(id)) return;
  delete live.perStream[id];
  live.streams = [...streams.keys()];
  if (live.shown === id) show(null);
}

function show(id) {
  live.shown = id;
  live.shownFrames = id === null ? 0 : streams.get(id).figures.frames;
  if (id !== null) chosen = id;
  newest = null;
  latency.clear();
  renderPanel();
}

// Frames are shown once the first list reply says whether the chosen stream is still there.
async function refreshList() {
  const reply = await request("list");
  if (!connection.open) return;                   // it went down meanwhile
  listed = true;
  if (!reply) return;
  const ids = new Set(reply.streams.map((d) => d.stream));
  for (const id of [...streams.keys()]) if (!ids.has(id)) forget(id);
  for (const d of reply.streams) stream(d.stream).info = d;
  if (live.shown === null && streams.has(chosen)) show(chosen);
  renderPanel();
}

// ---- commands ---------------------------------------------------------------

// Sends a command; a refusal is reported. The reply, or null (refused, or the connection went down).
async function request(cmd, args = {}) {
  let reply;
  try {
    reply = await connection.command(cmd, args);
  } catch {
    return null;                                  // the connection state says why
  }
  if (!reply.ok) report(`${cmd}: ${reply.error.message} (${reply.error.code})`);
  return reply.ok ? reply : null;
}

function identity() {
  const value = ui.identity.valueAsNumber;
  if (Number.isInteger(value) && value >= 0 && value <= 1000000) return value;
  report("identity: a SynthFace population index, an integer in 0..1000000");
  return null;
}

async function openSession(label) {
  const who = identity();
  if (who === null) return;
  const reply = await request("open", { kind: "generate", label, loop: true, identity: who });
  if (!reply) return;
  report(null);
  stream(reply.stream);
  show(reply.stream);
  await refreshList();
}

async function closeShown() {
  if (live.shown === null) return;
  if (await request("close", { stream: live.shown })) report(null);
  await refreshList();
}

async function setIdentity() {
  const who = identity();
  if (who === null || live.shown === null) return;
  if (await request("set", { stream: live.shown, identity: who })) report(null);
}

function report(message) {
  if (live.state === "error") return;             // a fatal error stays on screen
  live.error = message;
  ui.error.textContent = message ?? "";
  ui.error.hidden = message === null;
}

// An error the page cannot go on from (another protocol version): stop for good.
function fatal(message) {
  report(message);
  live.state = "error";
  connection.stop();
  renderPanel();
  renderFigures();
}

// ---- panel and overlay ------------------------------------------------------

function renderLabels(labels) {
  ui.labels.replaceChildren(...labels.map((label) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label.replaceAll("_", " ");
    button.dataset.label = label;
    button.title = `open a looping "${label}" session and show it`;
    button.addEventListener("click", () => openSession(label));
    return button;
  }));
  ui.noLabels.hidden = labels.length > 0;
}

function renderPanel() {
  const items = [...streams.entries()].map(([id, s]) => {
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "stream";
    input.value = id;
    input.checked = id === live.shown;
    input.addEventListener("change", () => show(id));
    const label = document.createElement("label");
    const what = s.info ? ` ${s.info.label ?? s.info.kind} ${s.info.identity}` : "";
    label.append(input, ` ${id}${what} · ${s.figures.fps.toFixed(0)} fps`);
    const item = document.createElement("li");
    item.append(label);
    return item;
  });
  ui.streams.replaceChildren(...items);
  ui.noStreams.hidden = items.length > 0;
  const open = live.state === "open";
  ui.close.disabled = !open || live.shown === null;
  for (const button of ui.labels.children) button.disabled = !open;
}

function renderFigures() {
  const now = performance.now();
  for (const s of streams.values()) s.figures.fps = s.received.rate(now);
  live.fps = live.shown === null ? 0 : streams.get(live.shown).figures.fps;
  live.drawFps = draws.rate(now);
  live.latencyMs = latency.median(now);
  live.frameMs = draws.median(now);
  const s = live.shown === null ? null : streams.get(live.shown);
  ui.figures.textContent = [
    `connection  ${live.state}`,
    `stream      ${live.shown ?? "-"}${s?.info?.label ? ` (${s.info.label})` : ""}`,
    `received    ${live.fps.toFixed(1)} fps`,
    `drawn       ${live.drawFps.toFixed(1)} fps`,
    `latency     ${live.latencyMs === null ? "-" : `${live.latencyMs.toFixed(1)} ms`}`,
    `resolution  ${Math.round(live.renderScale * 100)} %${renderer ? ` (${renderer.canvas.width}x${renderer.canvas.height})` : ""}`,
    `dropped     ${live.dropped}`,
    `frames      ${live.frames} (${live.streams.length} streams)`,
  ].join("\n");
}

// ---- drawing ----------------------------------------------------------------

// Once a second: step the render resolution down while drawing falls behind
// the shown stream's arrivals, and back up after a while of keeping up.
const resolution = { step: 0, keptUp: 0, ceiling: 0, ceilingUntil: 0 };
function adaptResolution() {
  if (!renderer || Number.isFinite(FIXED_SCALE)) return;
  const now = performance.now();
  if (now > resolution.ceilingUntil) resolution.ceiling = 0;
  const behind = live.fps > 0 && live.drawFps < live.fps - BEHIND_FPS;
  if (behind && resolution.step < SCALES.length - 1) {
    resolution.ceiling = resolution.step + 1;            // this step was too fine for now
    resolution.ceilingUntil = now + CEILING_S * 1000;
    resolution.step++;
    resolution.keptUp = 0;
  } else if (!behind && live.fps > 0 && resolution.step > resolution.ceiling) {
    if (++resolution.keptUp >= STEP_UP_AFTER_S) {
      resolution.step--;
      resolution.keptUp = 0;
    }
  }
  renderer.scale = live.renderScale = SCALES[resolution.step];
}

function frameCamera() {
  const t = renderer.topology.template;
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < t.length; i++) {
    lo[i % 3] = Math.min(lo[i % 3], t[i]);
    hi[i % 3] = Math.max(hi[i % 3], t[i]);
  }
  camera.frame(lo, hi, renderer.aspect, FIT_MARGIN);
  redraw = true;
}

// Each animation frame: decode and draw the shown stream's newest frame, if a new one came.
function animate() {
  requestAnimationFrame(animate);
  let dirty = renderer.resize() || redraw;
  if (newest) {
    const { header, payload } = newest;
    newest = null;
    const topology = topologies.get(header.topology);
    if (renderer.topology?.id !== topology.id) {
      renderer.setTopology(topology);
      frameCamera();
    }
    const start = performance.now();
    try {
      decoder.decode(header, payload, topology, renderer.vertices);
    } catch (e) {
      report(`bad frame: ${e.message}`);
      return;
    }
    renderer.update();
    renderer.draw(camera);
    live.drawn++;
    draws.add(performance.now() - start);
    redraw = false;
    return;
  }
  if (dirty) renderer.draw(camera);
  redraw = false;
}

function bindCamera() {
  let last = null;
  ui.canvas.addEventListener("pointerdown", (e) => {
    last = [e.clientX, e.clientY];
    ui.canvas.setPointerCapture(e.pointerId);
  });
  ui.canvas.addEventListener("pointermove", (e) => {
    if (!last || !(e.buttons & 1)) return;
    camera.orbit(-(e.clientX - last[0]) * ORBIT_DEG_PER_PX, (e.clientY - last[1]) * ORBIT_DEG_PER_PX);
    last = [e.clientX, e.clientY];
    redraw = true;
  });
  ui.canvas.addEventListener("pointerup", () => { last = null; });
  ui.canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const notches = e.deltaMode === WheelEvent.DOM_DELTA_PIXEL ? e.deltaY / 100 : e.deltaY;
    camera.zoom(ZOOM_STEP ** -notches);                  // away from the user: closer
    redraw = true;
  }, { passive: false });
  ui.canvas.addEventListener("dblclick", () => renderer?.topology && frameCamera());
}

async function startRenderer() {
  const get = async (path) => {
    const response = await fetch(path);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response;
  };
  try {
    const [source, lighting] = await Promise.all([
      get("/shaders/mesh_es.glsl").then((r) => r.text()),
      get("/shaders/lighting.json").then((r) => r.json()),
    ]);
    renderer = new FaceRenderer(ui.canvas, source, lighting);
    if (Number.isFinite(FIXED_SCALE)) renderer.scale = live.renderScale = Math.min(Math.max(FIXED_SCALE, 0.1), 1);
  } catch (e) {
    report(`cannot draw: ${e.message}`);
    return;
  }
  bindCamera();
  requestAnimationFrame(animate);
}

ui.close.addEventListener("click", closeShown);
ui.identity.addEventListener("change", setIdentity);
setInterval(() => connection.open && refreshList(), LIST_EVERY_MS);
setInterval(renderFigures, FIGURES_EVERY_MS);
setInterval(adaptResolution, WINDOW_MS);
startRenderer();
connection.connect();
