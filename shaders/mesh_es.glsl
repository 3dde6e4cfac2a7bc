#version 300 es
// Lit face meshes for the web page (WebGL2): the GLSL ES 3.00 variant of
// mesh.glsl, with the same light rig, material uniforms and light() function.
//
// What it leaves out: WebGL2 has no geometry shader, so there is no
// wireframe; the page draws one skin-coloured face, so there is no
// per-vertex albedo, texture or heat map either. ES 3.00 has no interface
// blocks between stages, hence the plain v_* varyings.
// The stages are split as in mesh.glsl: the page defines VERTEX_SHADER or
// FRAGMENT_SHADER right after the version line.

precision highp float;

#if defined VERTEX_SHADER

in vec3 in_position;
in vec3 in_normal;

uniform mat4 m_model;
uniform mat4 m_view;
uniform mat4 m_proj;
uniform mat3 m_normal;      // inverse transpose of mat3(m_view * m_model)

out vec3 v_position;        // view space
out vec3 v_normal;          // view space

void main() {
    vec4 p = m_view * m_model * vec4(in_position, 1.0);
    v_position = p.xyz;
    v_normal = m_normal * in_normal;
    gl_Position = m_proj * p;
}

#elif defined FRAGMENT_SHADER

in vec3 v_position;
in vec3 v_normal;

// camera
uniform bool u_orthographic;
// base colour
uniform vec3 u_albedo;          // sRGB
// light rig, view space
uniform vec3 u_key_direction;
uniform vec3 u_key_color;
uniform vec3 u_fill_direction;
uniform vec3 u_fill_color;
uniform vec3 u_up;              // the world's up, in view space
uniform vec3 u_sky_color;
uniform vec3 u_ground_color;
// material
uniform float u_specular;
uniform float u_shininess;
uniform float u_wrap;           // diffuse wrap (0: Lambert)
uniform vec3 u_scatter;         // colour added where the wrap reaches past the terminator
uniform float u_rim;            // Fresnel rim from the sky
uniform float u_inside;         // brightness of back faces (the inside of an open mask)

out vec4 fragColor;

vec3 to_linear(vec3 c) { return pow(c, vec3(2.2)); }
vec3 to_srgb(vec3 c) { return pow(clamp(c, 0.0, 1.0), vec3(1.0 / 2.2)); }

vec3 light(vec3 n, vec3 v, vec3 l, vec3 color, vec3 base) {
    float ndl = dot(n, l);
    float wrapped = max((ndl + u_wrap) / (1.0 + u_wrap), 0.0);
    float scatter = wrapped - max(ndl, 0.0);
    vec3 h = normalize(l + v);
    float spec = ndl > 0.0 ? pow(max(dot(n, h), 0.0), u_shininess) : 0.0;
    return color * (base * wrapped + u_scatter * scatter + u_specular * spec);
}

void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    vec3 v = u_orthographic ? vec3(0.0, 0.0, 1.0) : normalize(-v_position);

    vec3 base = to_linear(u_albedo);

    float sky = 0.5 + 0.5 * dot(n, normalize(u_up));
    vec3 color = base * mix(u_ground_color, u_sky_color, sky);
    color += light(n, v, normalize(u_key_direction), u_key_color, base);
    color += light(n, v, normalize(u_fill_direction), u_fill_color, base);
    color += u_rim * pow(1.0 - max(dot(n, v), 0.0), 5.0) * u_sky_color * base;
    if (!gl_FrontFacing) color *= u_inside;

    fragColor = vec4(to_srgb(color), 1.0);
}

#endif
