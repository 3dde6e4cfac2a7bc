#version 330 core
// A screen-space image (text, colour bars) drawn over the scene with alpha.
// The image is uploaded top row first; the quad is placed in NDC.

#if defined VERTEX_SHADER

in vec2 in_position;            // corners of the unit square

uniform vec4 u_rect;            // x0, y0 (bottom left), x1, y1 (top right) in NDC

out vec2 v_uv;

void main() {
    v_uv = vec2(in_position.x, 1.0 - in_position.y);
    gl_Position = vec4(mix(u_rect.xy, u_rect.zw, in_position), 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform sampler2D u_image;      // RGBA, straight alpha

in vec2 v_uv;
out vec4 fragColor;

void main() {
    fragColor = texture(u_image, v_uv);
}

#endif
