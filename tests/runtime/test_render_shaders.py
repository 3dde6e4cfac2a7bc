"""shaders/: every program compiles headless with the attributes and uniforms
the renderer binds; the loader splits stages by defines."""

from __future__ import annotations

import moderngl
import pytest

from runtime.render import headless_context, load_program, program_names
from runtime.render.shaders import ShaderError, program_stages

#: what each program must expose (GLSL drops unused inputs, so this also
#: checks that every input is wired into the output)
EXPECTED = {
    "mesh": {
        "attributes": {"in_position", "in_normal", "in_albedo", "in_uv", "in_scalar"},
        "uniforms": {"m_model", "m_view", "m_proj", "m_normal", "u_viewport", "u_orthographic", "u_albedo",
                     "u_vertex_albedo", "u_use_texture", "u_texture", "u_heatmap", "u_colormap",
                     "u_scalar_range", "u_key_direction", "u_key_color", "u_fill_direction", "u_fill_color",
                     "u_up", "u_sky_color", "u_ground_color", "u_specular", "u_shininess", "u_wrap",
                     "u_scatter", "u_rim", "u_inside", "u_wireframe", "u_wire_color", "u_wire_width"},
    },
    "points": {
        "attributes": {"in_position"},
        "uniforms": {"m_model", "m_view", "m_proj", "u_point_size", "u_depth_bias", "u_color",
                     "u_outline_color", "u_outline"},
    },
    "overlay": {"attributes": {"in_position"}, "uniforms": {"u_rect", "u_image"}},
    "normals": {"attributes": set(), "uniforms": {"u_count", "u_eps"},
                "blocks": {"Positions", "Triangles", "Offsets", "Incident", "Normals"}},
}


@pytest.fixture(scope="module")
def ctx():
    context = headless_context()
    yield context
    context.release()


def test_every_program_is_known():
    assert set(program_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_program_compiles_with_its_inputs(ctx, name):
    prog = load_program(ctx, name)
    members = {m: prog[m] for m in prog}
    attributes = {m for m, v in members.items() if isinstance(v, moderngl.Attribute)}
    uniforms = {m for m, v in members.items() if isinstance(v, moderngl.Uniform)}
    assert attributes == EXPECTED[name]["attributes"]
    assert uniforms == EXPECTED[name]["uniforms"]
    if "blocks" in EXPECTED[name]:
        assert EXPECTED[name]["blocks"] <= set(members)
    if name == "mesh":
        assert prog["in_position"].dimension == 3 and prog["in_uv"].dimension == 2
        assert prog["m_normal"].dimension == 9


def test_stages_are_split_by_defines():
    stages = program_stages("mesh")
    assert set(stages) == {"VERTEX_SHADER", "GEOMETRY_SHADER", "FRAGMENT_SHADER"}
    for stage, text in stages.items():
        first, second = text.splitlines()[:2]
        assert first.startswith("#version 330") and second == f"#define {stage}"
    assert set(program_stages("normals")) == {"COMPUTE_SHADER"}
    assert program_stages("normals")["COMPUTE_SHADER"].startswith("#version 430")


def test_unknown_program_names_the_file(ctx):
    with pytest.raises(ShaderError, match=r"nope.*not found.*shaders/nope.glsl"):
        load_program(ctx, "nope")
