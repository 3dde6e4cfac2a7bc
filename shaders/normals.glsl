#version 430 core
// Area-weighted vertex normals, one invocation per vertex.
//
// Each vertex sums the unnormalised normals (twice the area times the unit
// normal) of the triangles that use it, read through a CSR list of incident
// triangles built once per topology, and writes the unit result straight
// into the normal vertex buffer. Same definition as
// models.geometry.normals.vertex_normals (the numpy fallback).

#if defined COMPUTE_SHADER

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Positions { float positions[]; };   // N x 3
layout(std430, binding = 1) readonly buffer Triangles { uint triangles[]; };    // F x 3
layout(std430, binding = 2) readonly buffer Offsets { uint offsets[]; };        // N + 1
layout(std430, binding = 3) readonly buffer Incident { uint incident[]; };      // 3 F
layout(std430, binding = 4) writeonly buffer Normals { float normals[]; };      // N x 3

uniform uint u_count;           // vertices
uniform float u_eps;            // below this length a normal is zero

vec3 position(uint i) {
    return vec3(positions[3u * i], positions[3u * i + 1u], positions[3u * i + 2u]);
}

void main() {
    uint v = gl_GlobalInvocationID.x;
    if (v >= u_count) return;
    vec3 sum = vec3(0.0);
    for (uint k = offsets[v]; k < offsets[v + 1u]; ++k) {
        uint f = 3u * incident[k];
        vec3 a = position(triangles[f]);
        sum += cross(position(triangles[f + 1u]) - a, position(triangles[f + 2u]) - a);
    }
    vec3 n = sum / max(length(sum), u_eps);
    normals[3u * v] = n.x;
    normals[3u * v + 1u] = n.y;
    normals[3u * v + 2u] = n.z;
}

#endif
