#version 330 core
// Round points with an outline (landmarks). Each point is pulled toward the
// camera by a small depth bias so a point on the surface wins the depth test
// against that surface, while points behind the head stay hidden.

#if defined VERTEX_SHADER

in vec3 in_position;

uniform mat4 m_model;
uniform mat4 m_view;
uniform mat4 m_proj;
uniform float u_point_size;     // pixels
uniform float u_depth_bias;     // metres toward the camera

void main() {
    vec4 p = m_view * m_model * vec4(in_position, 1.0);
    p.z += u_depth_bias;
    gl_Position = m_proj * p;
    gl_PointSize = u_point_size;
}

#elif defined FRAGMENT_SHADER

uniform vec4 u_color;           // sRGB + opacity
uniform vec4 u_outline_color;
uniform float u_outline;        // outline width as a share of the radius

out vec4 fragColor;

void main() {
    float r = length(2.0 * gl_PointCoord - 1.0);
    float aa = fwidth(r);
    float inside = 1.0 - smoothstep(1.0 - aa, 1.0, r);
    if (inside <= 0.0) discard;
    float ring = smoothstep(1.0 - u_outline - aa, 1.0 - u_outline, r);
    vec4 c = mix(u_color, u_outline_color, ring);
    fragColor = vec4(c.rgb, c.a * inside);
}

#endif
