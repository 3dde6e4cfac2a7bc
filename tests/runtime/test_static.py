"""What the runtime serves the web page besides its folder: ``/shaders/NAME.glsl``
and ``/shaders/lighting.json`` (the light rig and skin material), and that the
page's GLSL ES shader keeps the desktop's shading."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import asdict

import pytest

from runtime.render.lighting import SKIN, LightRig
from runtime.render.scene import BACKGROUND
from runtime.render.shaders import SHADER_DIR, program_names


def get(port: int, path: str):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)


def assert_404(port: int, path: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        get(port, path)
    assert info.value.code == 404, path


def test_shaders_and_the_light_rig_are_served(tmp_path, serve_runtime):
    (tmp_path / "index.html").write_text("<!doctype html><title>page</title>")
    rt = serve_runtime(web=tmp_path)
    for name in ("mesh", "mesh_es", "points"):
        reply = get(rt.ws_port, f"/shaders/{name}.glsl")
        assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert reply.read() == (SHADER_DIR / f"{name}.glsl").read_bytes()
    reply = get(rt.ws_port, "/shaders/lighting.json")
    assert reply.headers["Content-Type"] == "application/json"
    lighting = json.loads(reply.read())
    assert lighting == json.loads(json.dumps({"rig": asdict(LightRig()), "material": asdict(SKIN),
                                              "background": BACKGROUND}))
    assert lighting["rig"]["key_direction"] == list(LightRig().key_direction)
    assert lighting["material"]["shininess"] == SKIN.shininess
    assert b"<title>page</title>" in get(rt.ws_port, "/").read()      # the folder is still served


def test_only_glsl_files_directly_in_the_shader_folder_are_served(serve_runtime):
    rt = serve_runtime(web=None)                   # the shaders do not need a web folder
    assert get(rt.ws_port, "/shaders/overlay.glsl").read() == (SHADER_DIR / "overlay.glsl").read_bytes()
    for path in ("/shaders/missing.glsl", "/shaders/mesh", "/shaders/mesh.txt", "/shaders/mesh.glsl.bak",
                 "/shaders/.glsl", "/shaders/", "/shaders/lighting.py", "/shaders/sub/mesh.glsl",
                 "/shaders/../README.md", "/shaders/%2e%2e/README.md", "/shaders/..%2fpyproject.toml",
                 "/shaders/..%2f..%2fetc%2fpasswd", "/shaders/%2fetc%2fpasswd", "/shaders/mesh%00.glsl",
                 "/shaders/..%2fshaders%2fmesh.glsl", "/"):
        assert_404(rt.ws_port, path)


def test_es_variants_are_not_desktop_programs():
    assert (SHADER_DIR / "mesh_es.glsl").is_file()
    assert "mesh_es" not in program_names() and "mesh" in program_names()


# ---- the ES shader keeps the desktop's shading ---------------------------------

def light_function(source: str) -> str:
    match = re.search(r"^vec3 light\(.*?^\}\n", source, re.MULTILINE | re.DOTALL)
    assert match, "no light() function"
    return match[0]


def lighting_block(source: str) -> str:
    """``main``'s lighting, from the sky hemisphere to the back-face dimming."""
    match = re.search(r"^ *float sky = .*?color \*= u_inside;\n", source, re.MULTILINE | re.DOTALL)
    assert match, "no lighting block in main()"
    return match[0]


def declarations(source: str) -> list[str]:
    """The light rig and material uniforms, and the colour space helpers."""
    rig = re.search(r"^// light rig, view space\n.*?^uniform float u_inside;[^\n]*\n", source,
                    re.MULTILINE | re.DOTALL)
    assert rig, "no light rig / material uniforms"
    helpers = re.findall(r"^vec3 to_(?:linear|srgb)\(.*$", source, re.MULTILINE)
    assert len(helpers) == 2
    return [rig[0], *helpers]


def test_the_es_shader_keeps_the_desktop_shading():
    desktop = (SHADER_DIR / "mesh.glsl").read_text()
    es = (SHADER_DIR / "mesh_es.glsl").read_text()
    assert es.startswith("#version 300 es\n")
    assert light_function(es) == light_function(desktop)
    assert lighting_block(es) == lighting_block(desktop)
    assert declarations(es) == declarations(desktop)
    for name in ("u_albedo", "u_orthographic", "m_model", "m_view", "m_proj", "m_normal"):
        assert re.search(rf"^uniform \w+ {name};", es, re.MULTILINE), name
