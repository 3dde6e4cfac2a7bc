#version 330 core
// Lit triangle meshes (faces, eyeballs, mouth cavity).
//
// Blinn-Phong under a camera-fixed rig: a warm key light, a cool fill light
// and a sky/ground hemisphere, with wrapped diffuse and a red scatter tint at
// the terminator for a skin-like look. The base colour is a per-vertex albedo
// (sRGB), optionally multiplied by a texture, or a per-vertex scalar mapped
// through a colormap (heat maps). An optional wireframe is drawn in the same
// pass from per-pixel edge distances that the geometry stage computes.
// Lighting runs in linear RGB; the output is sRGB.

#if defined VERTEX_SHADER

in vec3 in_position;
in vec3 in_normal;
in vec3 in_albedo;
in vec2 in_uv;
in float in_scalar;

uniform mat4 m_model;
uniform mat4 m_view;
uniform mat4 m_proj;
uniform mat3 m_normal;      // inverse transpose of mat3(m_view * m_model)

out Vertex {
    vec3 position;          // view space
    vec3 normal;            // view space
    vec3 albedo;
    vec2 uv;
    float scalar;
} vs_out;

void main() {
    vec4 p = m_view * m_model * vec4(in_position, 1.0);
    vs_out.position = p.xyz;
    vs_out.normal = m_normal * in_normal;
    vs_out.albedo = in_albedo;
    vs_out.uv = in_uv;
    vs_out.scalar = in_scalar;
    gl_Position = m_proj * p;
}

#elif defined GEOMETRY_SHADER

layout(triangles) in;
layout(triangle_strip, max_vertices = 3) out;

uniform vec2 u_viewport;    // pixels

in Vertex {
    vec3 position;
    vec3 normal;
    vec3 albedo;
    vec2 uv;
    float scalar;
} gs_in[];

out Fragment {
    vec3 position;
    vec3 normal;
    vec3 albedo;
    vec2 uv;
    float scalar;
    noperspective vec3 edge;    // distance in pixels to the edge opposite each corner
} gs_out;

vec2 to_pixels(vec4 clip) {
    return 0.5 * u_viewport * clip.xy / clip.w;
}

void main() {
    vec2 p0 = to_pixels(gl_in[0].gl_Position);
    vec2 p1 = to_pixels(gl_in[1].gl_Position);
    vec2 p2 = to_pixels(gl_in[2].gl_Position);
    vec2 e0 = p2 - p1;
    vec2 e1 = p2 - p0;
    vec2 e2 = p1 - p0;
    float area = abs(e1.x * e2.y - e1.y * e2.x);
    vec3 height = area / max(vec3(length(e0), length(e1), length(e2)), vec3(1e-6));
    for (int i = 0; i < 3; ++i) {
        gs_out.position = gs_in[i].position;
        gs_out.normal = gs_in[i].normal;
        gs_out.albedo = gs_in[i].albedo;
        gs_out.uv = gs_in[i].uv;
        gs_out.scalar = gs_in[i].scalar;
        gs_out.edge = vec3(0.0);
        gs_out.edge[i] = height[i];
        gl_Position = gl_in[i].gl_Position;
        EmitVertex();
    }
    EndPrimitive();
}

#elif defined FRAGMENT_SHADER

in Fragment {
    vec3 position;
    vec3 normal;
    vec3 albedo;
    vec2 uv;
    float scalar;
    noperspective vec3 edge;
} fs_in;

// camera
uniform bool u_orthographic;
// base colour
uniform vec3 u_albedo;          // sRGB, where the mesh has no per-vertex albedo
uniform bool u_vertex_albedo;   // use the per-vertex albedo instead
uniform bool u_use_texture;
uniform sampler2D u_texture;    // albedo texture, sRGB
uniform bool u_heatmap;
uniform sampler2D u_colormap;   // 256 x 1 lookup table, sRGB
uniform vec2 u_scalar_range;    // scalar mapped to the ends of the colormap
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
// wireframe
uniform bool u_wireframe;
uniform vec4 u_wire_color;      // sRGB + opacity
uniform float u_wire_width;     // pixels

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
    vec3 n = normalize(fs_in.normal);
    if (!gl_FrontFacing) n = -n;
    vec3 v = u_orthographic ? vec3(0.0, 0.0, 1.0) : normalize(-fs_in.position);

    vec3 base = u_vertex_albedo ? fs_in.albedo : u_albedo;
    if (u_heatmap) {
        float s = (fs_in.scalar - u_scalar_range.x) / max(u_scalar_range.y - u_scalar_range.x, 1e-12);
        base = texture(u_colormap, vec2(clamp(s, 0.0, 1.0), 0.5)).rgb;
    }
    if (u_use_texture) base *= texture(u_texture, fs_in.uv).rgb;
    base = to_linear(base);

    float sky = 0.5 + 0.5 * dot(n, normalize(u_up));
    vec3 color = base * mix(u_ground_color, u_sky_color, sky);
    color += light(n, v, normalize(u_key_direction), u_key_color, base);
    color += light(n, v, normalize(u_fill_direction), u_fill_color, base);
    color += u_rim * pow(1.0 - max(dot(n, v), 0.0), 5.0) * u_sky_color * base;
    if (!gl_FrontFacing) color *= u_inside;

    if (u_wireframe) {
        float d = min(fs_in.edge.x, min(fs_in.edge.y, fs_in.edge.z));
        float line = 1.0 - smoothstep(u_wire_width - 0.5, u_wire_width + 0.5, d);
        color = mix(color, to_linear(u_wire_color.rgb), line * u_wire_color.a);
    }
    fragColor = vec4(to_srgb(color), 1.0);
}

#endif
