"""runtime/render: real pixels from the headless renderer (EGL, llvmpipe here).

The golden image ``golden/template_front.png`` was made by this renderer
(``python tests/runtime/test_render.py --update-golden``); the comparison
tolerates the differences between llvmpipe and a GPU (rasterisation rules,
MSAA patterns, float precision) but not a change of shape or shading.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.face import synthface_template
from models.geometry.normals import vertex_normals
from runtime.frames import Frame, Topology
from runtime.render import Camera, Heatmap, LightRig, Material, Renderer, headless_context, skin_tone
from runtime.render.scene import FaceView, Style

GOLDEN = Path(__file__).parent / "golden" / "template_front.png"
GOLDEN_SIZE = (128, 128)
#: golden comparison: mean |RGB difference| over covered pixels (of 255) and coverage IoU
GOLDEN_MEAN_DIFF = 8.0
GOLDEN_IOU = 0.97
MAGENTA = (1.0, 0.0, 1.0, 1.0)
FLAT = Material(albedo=(0.8, 0.8, 0.8), specular=0.0, wrap=0.0, scatter=(0.0, 0.0, 0.0), rim=0.0)


@pytest.fixture(scope="module")
def ctx():
    context = headless_context()
    yield context
    context.release()


@pytest.fixture(scope="module")
def renderer(ctx):
    return Renderer(ctx, size=(160, 160), samples=4)


@pytest.fixture(scope="module")
def template():
    return synthface_template()


def _draw(renderer, mesh, camera, **kwargs):
    renderer.begin(camera)
    renderer.draw_mesh(mesh, **kwargs)
    renderer.end()
    return renderer.read_rgba()


def _template_from_front(renderer, template, size):
    """The template uploaded and a front camera fitted to it, at ``size`` pixels."""
    renderer.resize(size)
    mesh = renderer.mesh(template.faces, template.n_vertices)
    mesh.update(template.vertices)
    return mesh, Camera.named("front").fit(template.vertices)


def _quad(renderer, **kwargs):
    """A square of side 2 m in the z = 0 plane, facing +z."""
    v = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
    mesh = renderer.mesh(f, 4, **kwargs)
    return mesh, v


def _ortho_front(half: float = 1.2) -> Camera:
    return Camera.named("front", projection="orthographic", half_height=half, distance=3.0, radius=1.5)


# ------------------------------------------------------------------- template
def test_template_coverage_background_and_depth(renderer, template):
    mesh, camera = _template_from_front(renderer, template, (200, 200))
    rgba = _draw(renderer, mesh, camera)
    depth = renderer.read_depth()
    covered = rgba[..., 3] > 0
    # a face mask from the front fills about half of its tight frame; the slits are holes
    assert 0.35 < covered.mean() < 0.75
    assert np.all(rgba[~covered] == 0)                          # background: cleared, untouched
    assert np.all(np.isinf(depth[~covered]))
    lo, hi = camera.distance - 0.12, camera.distance + 0.05
    assert np.all((depth[covered & (rgba[..., 3] == 255)] > lo) & (depth[covered & (rgba[..., 3] == 255)] < hi))
    # the nose tip's depth is the camera's distance to it
    tip = template.landmark_points()[30]
    x, y = np.floor(camera.project(tip, renderer.size)).astype(int)
    assert depth[y, x] == pytest.approx(camera.view_depth(tip), abs=1.5e-3)
    # the lit face is skin coloured: red > green > blue on average
    mean = rgba[covered & (rgba[..., 3] == 255), :3].mean(axis=0)
    assert mean[0] > mean[1] > mean[2]
    mesh.release()


def test_moving_the_mesh_left_moves_its_pixels_left(renderer, template):
    renderer.resize((160, 160))
    mesh = renderer.mesh(template.faces, template.n_vertices)
    camera = _ortho_front(0.15)
    cols = np.arange(160)

    def centroid(vertices):
        mesh.update(vertices)
        a = _draw(renderer, mesh, camera)[..., 3].astype(np.float64)
        return (a.sum(axis=0) * cols).sum() / a.sum(), (a.sum(axis=1) * cols).sum() / a.sum()

    x0, y0 = centroid(template.vertices)
    shift = 0.02                                               # metres to the image's left (-x)
    x1, y1 = centroid(template.vertices - np.array([shift, 0, 0], dtype=np.float32))
    expected = shift * camera.pixels_per_metre(160)
    assert x0 - x1 == pytest.approx(expected, abs=0.5)
    assert y1 == pytest.approx(y0, abs=0.2)
    mesh.release()


def test_landmarks_land_where_the_camera_projects_them(renderer, template):
    """A landmark in front of the surface shows at its projection; one the face
    hides (SynthFace's jaw ends sit behind the cheeks seen from the front) does not."""
    renderer.resize((256, 256))
    mesh = renderer.mesh(template.faces, template.n_vertices)
    mesh.update(template.vertices)
    lm = template.landmark_points()
    bias = 0.002
    front = Camera.named("front").fit(template.vertices)
    turned = Camera.named("three_quarter").fit(template.vertices).with_projection("orthographic")
    for camera in (front, turned):
        _draw(renderer, mesh, camera)
        surface = renderer.read_depth()
        renderer.begin(camera)
        renderer.draw_mesh(mesh)
        renderer.draw_points(lm, color=MAGENTA, size=7.0, outline=0.2, depth_bias=bias)
        renderer.end()
        rgba = renderer.read_rgba()
        px = np.floor(camera.project(lm, renderer.size)).astype(int)
        magenta = np.array([(rgba[y, x, 0] > 200) & (rgba[y, x, 1] < 90) & (rgba[y, x, 2] > 200) for x, y in px])
        # the surface around each projection (3 x 3 pixels): a point is surely seen when
        # the whole patch lies behind it, surely hidden when all of it lies in front
        patch = np.stack([surface[y - 1:y + 2, x - 1:x + 2].reshape(-1) for x, y in px])
        front = camera.view_depth(lm) - bias
        visible, hidden = front < patch.min(axis=1) - 5e-4, front > patch.max(axis=1) + 1e-3
        assert visible.sum() >= 30 and hidden.sum() >= 2, camera.projection
        assert magenta[visible].all(), (camera.projection, np.flatnonzero(visible & ~magenta))
        assert not magenta[hidden].any(), (camera.projection, np.flatnonzero(hidden & magenta))
    mesh.release()


def test_msaa_smooths_edges(ctx, template):
    alphas = {}
    for samples in (0, 4):
        r = Renderer(ctx, size=(96, 96), samples=samples)
        mesh = r.mesh(template.faces, template.n_vertices)
        mesh.update(template.vertices)
        alphas[samples] = np.unique(_draw(r, mesh, Camera.named("front").fit(template.vertices))[..., 3])
        mesh.release()
    assert set(alphas[0]) == {0, 255}
    assert len(alphas[4]) > 2                                  # partial coverage on the silhouette


def test_golden_image(ctx):
    rgba = render_golden(ctx)
    from PIL import Image

    golden = np.asarray(Image.open(GOLDEN).convert("RGBA"))
    assert golden.shape == rgba.shape
    a, b = rgba[..., 3] > 127, golden[..., 3] > 127
    iou = (a & b).sum() / (a | b).sum()
    both = a & b
    diff = np.abs(rgba[both, :3].astype(np.int16) - golden[both, :3].astype(np.int16)).mean()
    assert iou > GOLDEN_IOU and diff < GOLDEN_MEAN_DIFF, (iou, diff)


def render_golden(ctx) -> np.ndarray:
    """The golden picture: the SynthFace template from the front, with eyes,
    mouth and landmarks, 128 x 128, transparent background."""
    template = synthface_template()
    r = Renderer(ctx, size=GOLDEN_SIZE, samples=4)
    view = FaceView(r)
    frame = Frame(template.vertices, Topology.from_template(template))
    view.set_frame(frame)
    view.draw(view.fit(Camera.named("front")), Style(background=(0.0, 0.0, 0.0, 0.0)))
    return r.read_rgba()


# -------------------------------------------------------------------- normals
@pytest.fixture(scope="module")
def both_paths(ctx):
    return Renderer(ctx, size=(32, 32), normals="compute"), Renderer(ctx, size=(32, 32), normals="numpy")


def test_normals_of_a_unit_sphere_are_its_positions(both_paths):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=4)
    v = np.asarray(sphere.vertices, dtype=np.float32)
    f = np.asarray(sphere.faces, dtype=np.int32)
    for r in both_paths:
        mesh = r.mesh(f, len(v))
        mesh.update(v)
        n = mesh.read_normals()
        angle = np.degrees(np.arccos(np.clip(np.sum(n * v, axis=1) / np.linalg.norm(v, axis=1), -1, 1)))
        assert angle.max() < 0.5, r.normals_mode
        np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
        mesh.release()


def test_compute_and_numpy_normals_agree_every_frame(both_paths, template):
    from models.face import synthface
    from models.face.labels import apex_weights

    compute, fallback = both_paths
    assert compute.normals_mode == "compute" and fallback.normals_mode == "numpy"
    model = synthface()
    w = np.stack([apex_weights(label, np.random.default_rng(i))[0]
                  for i, label in enumerate(("mouth_extreme", "high_smile", "eyebrow"))])
    frames = model.vertices(np.zeros((3, 35), dtype=np.float32), w)
    meshes = [r.mesh(template.faces, template.n_vertices) for r in both_paths]
    for v in frames:                                           # the same buffers, updated per frame
        expected = vertex_normals(v.astype(np.float64), template.faces)
        for mesh in meshes:
            mesh.update(v)
            np.testing.assert_allclose(mesh.read_normals(), expected, atol=2e-5)
    for mesh in meshes:
        mesh.release()


def test_updates_reuse_the_same_buffers(renderer, template):
    mesh = renderer.mesh(template.faces, template.n_vertices)
    mesh.update(template.vertices, scalar=np.zeros(template.n_vertices))
    ids = [(b.glo, b.size) for b in (mesh.positions, mesh.normals, mesh.scalar, mesh.index)]
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = template.vertices + rng.normal(scale=1e-3, size=template.vertices.shape).astype(np.float32)
        mesh.update(v, scalar=rng.random(template.n_vertices))
        np.testing.assert_array_equal(np.frombuffer(mesh.positions.read(), np.float32).reshape(-1, 3), v)
    assert [(b.glo, b.size) for b in (mesh.positions, mesh.normals, mesh.scalar, mesh.index)] == ids
    with pytest.raises(ValueError, match=r"vertices must have shape \[5229, 3\], got \[10, 3\]"):
        mesh.update(np.zeros((10, 3)))
    mesh.release()


# -------------------------------------------------------------- colour inputs
def test_heatmap_maps_scalar_through_the_colormap(renderer):
    renderer.resize((120, 120))
    mesh, v = _quad(renderer)
    mesh.update(v, scalar=v[:, 0])                            # -1 on the left, +1 on the right
    rgba = _draw(renderer, mesh, _ortho_front(), material=FLAT, heatmap=Heatmap((-1.0, 1.0), "viridis"))
    left, right = rgba[40:80, 10:25, :3].mean(axis=(0, 1)), rgba[40:80, 95:110, :3].mean(axis=(0, 1))
    assert left[2] > left[1] and left[2] > left[0]             # viridis starts dark purple
    assert right[1] > right[2] + 60 and right[0] > right[2]    # ... and ends yellow
    with pytest.raises(ValueError, match="unknown colormap 'nope'"):
        _draw(renderer, mesh, _ortho_front(), heatmap=Heatmap((0.0, 1.0), "nope"))
    bare, _ = _quad(renderer)
    bare.update(v)
    with pytest.raises(ValueError, match="needs a per-vertex scalar"):
        _draw(renderer, bare, _ortho_front(), heatmap=Heatmap((0.0, 1.0)))


def test_per_vertex_albedo_and_texture(renderer):
    renderer.resize((120, 120))
    red, blue = [0.9, 0.1, 0.1], [0.1, 0.1, 0.9]
    mesh, v = _quad(renderer, albedo=np.array([red, blue, blue, red]))
    mesh.update(v)
    rgba = _draw(renderer, mesh, _ortho_front(), material=FLAT)
    left, right = rgba[50:70, 10:20, :3].mean(axis=(0, 1)), rgba[50:70, 100:110, :3].mean(axis=(0, 1))
    assert left[0] > left[2] + 100 and right[2] > right[0] + 100

    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[:, :4] = (20, 230, 20)                               # left half green
    image[:, 4:] = (230, 20, 230)                              # right half magenta
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
    textured, _ = _quad(renderer, uv=uv)
    textured.update(v)
    rgba = _draw(renderer, textured, _ortho_front(), material=FLAT, texture=renderer.texture(image))
    left, right = rgba[50:70, 10:20, :3].mean(axis=(0, 1)), rgba[50:70, 100:110, :3].mean(axis=(0, 1))
    assert left[1] > left[0] + 100 and right[0] > right[1] + 100 and right[2] > right[1] + 100


def test_skin_tones_and_light_rigs_vary_the_image(ctx, template):
    """What the tracker's training images vary: the skin albedo and the lighting."""
    r = Renderer(ctx, size=(128, 128))
    view = FaceView(r)
    view.set_frame(Frame(template.vertices, Topology.from_template(template)))
    camera = view.fit(Camera.named("front"))

    def mean_rgb(style, rig=None):
        r.rig = rig or LightRig()
        view.draw(camera, style)
        rgba = r.read_rgba()
        return rgba[rgba[..., 3] == 255, :3].astype(float).mean(axis=0)

    plain = Style(background=(0, 0, 0, 0), landmarks=False, accessories=False)
    deep, light = mean_rgb(replace(plain, albedo=skin_tone(0.05))), mean_rgb(replace(plain, albedo=skin_tone(0.95)))
    assert light.sum() > 1.6 * deep.sum()
    assert deep[0] > deep[2] and light[0] > light[2]                    # both read as skin
    dim = LightRig(key_color=(0.3, 0.3, 0.3), fill_color=(0.05, 0.05, 0.05))
    assert mean_rgb(plain, dim).sum() < 0.8 * mean_rgb(plain).sum()
    left = LightRig(key_direction=(-1.0, 0.0, 0.3))
    right = LightRig(key_direction=(1.0, 0.0, 0.3))
    for rig, brighter in ((left, "left"), (right, "right")):
        r.rig = rig
        view.draw(camera, plain)
        rgba = r.read_rgba().astype(float)
        halves = rgba[:, :64, :3].sum(), rgba[:, 64:, :3].sum()
        assert (halves[0] > 1.2 * halves[1]) if brighter == "left" else (halves[1] > 1.2 * halves[0])
    r.rig = LightRig()


def test_wireframe_draws_the_edges(renderer, template):
    mesh, camera = _template_from_front(renderer, template, (200, 200))
    plain = _draw(renderer, mesh, camera)
    wired = _draw(renderer, mesh, camera, wireframe=True, wire_color=(0.0, 0.0, 0.0, 1.0), wire_width=0.5)
    covered = plain[..., 3] == 255
    assert np.array_equal(covered, wired[..., 3] == 255)        # same silhouette
    darker = wired[covered, :3].astype(int).sum(axis=1) < plain[covered, :3].astype(int).sum(axis=1) - 30
    assert darker.mean() > 0.3                                  # a dense mesh: edges everywhere
    mesh.release()


def test_overlay_images_go_where_asked(renderer):
    renderer.resize((100, 80))
    renderer.begin(_ortho_front(), background=(0.0, 0.0, 0.0, 1.0))
    patch = np.zeros((10, 20, 4), dtype=np.uint8)
    patch[...] = (255, 128, 0, 255)
    renderer.draw_image(patch, 30, 5, key="test")
    renderer.end()
    rgba = renderer.read_rgba()
    assert np.all(rgba[5:15, 30:50, :3] == (255, 128, 0))
    assert np.all(rgba[16:, :, :3] == 0) and np.all(rgba[:, 51:, :3] == 0) and np.all(rgba[:5, :, :3] == 0)


def test_drawing_needs_a_frame(ctx):
    r = Renderer(ctx, size=(16, 16))
    with pytest.raises(RuntimeError, match="begin"):
        r.draw_points(np.zeros((1, 3)))
    with pytest.raises(RuntimeError, match="before any frame"):
        r.read_depth()


def test_flame_topology_renders(ctx, flame_template):
    """The reference FLAME head (barycentric landmarks, three components)."""
    r = Renderer(ctx, size=(160, 160))
    view = FaceView(r)
    frame = Frame(flame_template.vertices, Topology.from_template(flame_template))
    view.set_frame(frame)
    camera = view.fit(Camera.named("three_quarter"))
    view.draw(camera, Style(background=(0, 0, 0, 0), landmark_color=MAGENTA, landmark_size=20.0))
    rgba = r.read_rgba()
    assert 0.3 < (rgba[..., 3] > 0).mean() < 0.8
    assert not view.accessories_on(Style())                     # a full head has its own eyes
    magenta = (rgba[..., 0] > 200) & (rgba[..., 1] < 90) & (rgba[..., 2] > 200)
    assert magenta.sum() > 40 * 4                               # most of the 68 dots show


# ---------------------------------------------------------------------- no GL
def test_no_gl_names_the_packages_and_the_fix(tmp_path):
    env = dict(os.environ, __EGL_VENDOR_LIBRARY_FILENAMES=str(tmp_path / "nonexistent.json"))
    code = "from runtime.render import Renderer\nRenderer.headless()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode != 0
    assert "GLUnavailableError" in proc.stderr
    for needle in ("libegl1", "libgl1-mesa-dri", "make system-deps"):
        assert needle in proc.stderr


if __name__ == "__main__":
    if "--update-golden" in sys.argv:
        from PIL import Image

        context = headless_context()
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(render_golden(context)).save(GOLDEN, optimize=True)
        print(f"wrote {GOLDEN}")
