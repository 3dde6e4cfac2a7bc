// Draws one face mesh with WebGL2 and shaders/mesh_es.glsl, lit like the
// desktop renderer (runtime/render/renderer.py): the light rig and skin
// material come from the runtime (/shaders/lighting.json); normals are
// recomputed on the CPU for every new frame.

// Compiles a program file the way the desktop loader does: each stage is the
// file with `#define STAGE` inserted right after its #version line.
export function compileProgram(gl, source) {
  const versionEnd = source.indexOf("\n") + 1;
  const stage = (type, name) => {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, `${source.slice(0, versionEnd)}#define ${name}\n${source.slice(versionEnd)}`);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
      throw new Error(`mesh_es.glsl ${name}: ${gl.getShaderInfoLog(shader)}`);
    }
    return shader;
  };
  const program = gl.createProgram();
  gl.attachShader(program, stage(gl.VERTEX_SHADER, "VERTEX_SHADER"));
  gl.attachShader(program, stage(gl.FRAGMENT_SHADER, "FRAGMENT_SHADER"));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(`mesh_es.glsl: ${gl.getProgramInfoLog(program)}`);
  return program;
}

// Area-weighted vertex normals: each triangle's cross product (twice its area
// times its unit normal) summed onto its corners, then normalised.
export function vertexNormals(v, faces, out) {
  out.fill(0);
  for (let t = 0; t < faces.length; t += 3) {
    const a = 3 * faces[t], b = 3 * faces[t + 1], c = 3 * faces[t + 2];
    const ux = v[b] - v[a], uy = v[b + 1] - v[a + 1], uz = v[b + 2] - v[a + 2];
    const wx = v[c] - v[a], wy = v[c + 1] - v[a + 1], wz = v[c + 2] - v[a + 2];
    const nx = uy * wz - uz * wy, ny = uz * wx - ux * wz, nz = ux * wy - uy * wx;
    out[a] += nx; out[a + 1] += ny; out[a + 2] += nz;
    out[b] += nx; out[b + 1] += ny; out[b + 2] += nz;
    out[c] += nx; out[c + 1] += ny; out[c + 2] += nz;
  }
  for (let i = 0; i < out.length; i += 3) {
    const length = Math.sqrt(out[i] * out[i] + out[i + 1] * out[i + 1] + out[i + 2] * out[i + 2]);
    if (length > 0) {
      out[i] /= length; out[i + 1] /= length; out[i + 2] /= length;
    }
  }
}

export class FaceRenderer {
  // lighting: {rig, material, background} as /shaders/lighting.json serves it
  constructor(canvas, shaderSource, lighting) {
    const gl = canvas.getContext("webgl2", { alpha: false, antialias: true });
    if (!gl) throw new Error("this browser has no WebGL2");
    this.gl = gl;
    this.canvas = canvas;
    this.program = compileProgram(gl, shaderSource);
    this.background = lighting.background;
    this.uniforms = {};
    for (let i = 0; i < gl.getProgramParameter(this.program, gl.ACTIVE_UNIFORMS); i++) {
      const name = gl.getActiveUniform(this.program, i).name;
      this.uniforms[name] = gl.getUniformLocation(this.program, name);
    }
    gl.useProgram(this.program);
    this.setLighting(lighting.rig, lighting.material);
    this.topology = null;
    this.vao = null;
    this.scale = 1;                          // drawing-buffer pixels per CSS pixel, times the device ratio
  }

  // The rig and material uniforms (what runtime/render/lighting.py `apply` sets, less the per-view u_up).
  setLighting(rig, material) {
    const gl = this.gl, u = this.uniforms;
    for (const [name, value] of Object.entries(rig)) gl.uniform3fv(u[`u_${name}`], value);
    gl.uniform3fv(u.u_albedo, material.albedo);
    gl.uniform3fv(u.u_scatter, material.scatter);
    for (const name of ["specular", "shininess", "wrap", "rim", "inside"]) gl.uniform1f(u[`u_${name}`], material[name]);
    gl.uniform1i(u.u_orthographic, 0);
    gl.uniformMatrix4fv(u.m_model, false, new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]));
  }

  // Buffers for a topology (kept while frames stay on it).
  setTopology(topology) {
    if (this.topology && this.topology.id === topology.id) return;
    const gl = this.gl;
    if (this.vao) {
      gl.deleteVertexArray(this.vao);
      for (const buffer of this.buffers) gl.deleteBuffer(buffer);
    }
    this.topology = topology;
    this.vertices = new Float32Array(3 * topology.n);
    this.normals = new Float32Array(3 * topology.n);
    this.vao = gl.createVertexArray();
    gl.bindVertexArray(this.vao);
    const attribute = (name) => {
      const buffer = gl.createBuffer();
      const location = gl.getAttribLocation(this.program, name);
      gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
      gl.bufferData(gl.ARRAY_BUFFER, this.vertices.byteLength, gl.DYNAMIC_DRAW);
      gl.enableVertexAttribArray(location);
      gl.vertexAttribPointer(location, 3, gl.FLOAT, false, 0, 0);
      return buffer;
    };
    this.positionBuffer = attribute("in_position");
    this.normalBuffer = attribute("in_normal");
    const index = gl.createBuffer();
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, index);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, topology.faces, gl.STATIC_DRAW);
    gl.bindVertexArray(null);
    this.buffers = [this.positionBuffer, this.normalBuffer, index];
  }

  // New positions (this.vertices, written by the caller): recompute the normals and upload both.
  update() {
    const gl = this.gl;
    vertexNormals(this.vertices, this.topology.faces, this.normals);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.positionBuffer);
    gl.bufferSubData(gl.ARRAY_BUFFER, 0, this.vertices);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.normalBuffer);
    gl.bufferSubData(gl.ARRAY_BUFFER, 0, this.normals);
  }

  // Matches the drawing buffer to the canvas's size on screen times `scale`
  // (the browser stretches it to fill the canvas); true when it changed.
  resize() {
    const ratio = (window.devicePixelRatio || 1) * this.scale;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (this.canvas.width === width && this.canvas.height === height) return false;
    this.canvas.width = width;
    this.canvas.height = height;
    return true;
  }

  get aspect() {
    return this.canvas.width / this.canvas.height;
  }

  draw(camera) {
    const gl = this.gl, u = this.uniforms;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(...this.background);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    if (!this.topology) return;
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LESS);
    gl.disable(gl.CULL_FACE);               // back faces are lit as the inside of the mask
    gl.useProgram(this.program);
    gl.uniformMatrix4fv(u.m_view, false, camera.viewMatrix());
    gl.uniformMatrix4fv(u.m_proj, false, camera.projectionMatrix(this.aspect));
    gl.uniformMatrix3fv(u.m_normal, false, camera.normalMatrix());
    gl.uniform3fv(u.u_up, camera.up());
    gl.bindVertexArray(this.vao);
    gl.drawElements(gl.TRIANGLES, this.topology.faces.length, gl.UNSIGNED_INT, 0);
    gl.bindVertexArray(null);
  }
}
