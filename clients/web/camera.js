// An orbit camera, as the desktop's (runtime/render/camera.py): it looks at
// `target` from `distance` metres, turned by `yaw` about the world's +y and
// `pitch` toward +y (degrees); yaw 0 sits on +z looking down -z at the face.
// Matrices are Float32Arrays in WebGL's column-major order.

const PITCH_LIMIT = 89;     // degrees: the view never flips over the pole
const CLIP_RADII = 3;       // near/far planes this many scene radii from the target
const MIN_NEAR = 1e-3;      // metres

const rad = (deg) => (deg * Math.PI) / 180;

export class OrbitCamera {
  constructor() {
    this.target = [0, 0, 0];
    this.distance = 0.6;
    this.yaw = 0;
    this.pitch = 0;
    this.fovY = 20;
    this.radius = 0.15;     // scene radius (m), for the clip planes
  }

  // Front view, aimed at the centre of the box [lo, hi] (world, metres) and
  // moved back until it fills the image (width/height `aspect`) with `margin`.
  frame(lo, hi, aspect, margin) {
    this.yaw = 0;
    this.pitch = 0;
    const half = [0, 1, 2].map((i) => (hi[i] - lo[i]) / 2);
    this.target = [0, 1, 2].map((i) => (hi[i] + lo[i]) / 2);
    const halfY = Math.max(half[1], half[0] / aspect) * margin;
    this.distance = halfY / Math.tan(rad(this.fovY) / 2) + half[2];
    this.radius = Math.max(Math.hypot(...half), 1e-3);
  }

  orbit(dYaw, dPitch) {
    this.yaw = (((this.yaw + dYaw) % 360) + 360) % 360;
    this.pitch = Math.min(Math.max(this.pitch + dPitch, -PITCH_LIMIT), PITCH_LIMIT);
  }

  zoom(factor) {
    this.distance *= factor;
  }

  // World -> view rotation as its rows: the camera's right, up and back.
  rotation() {
    const yaw = rad(this.yaw), pitch = rad(this.pitch);
    const back = [Math.sin(yaw) * Math.cos(pitch), Math.sin(pitch), Math.cos(yaw) * Math.cos(pitch)];
    const length = Math.hypot(back[2], back[0]);            // right = normalize(y x back)
    const right = [back[2] / length, 0, -back[0] / length];
    const up = [
      back[1] * right[2] - back[2] * right[1],
      back[2] * right[0] - back[0] * right[2],
      back[0] * right[1] - back[1] * right[0],
    ];
    return [right, up, back];
  }

  viewMatrix() {
    const r = this.rotation();
    const eye = this.target.map((t, i) => t + this.distance * r[2][i]);
    const m = new Float32Array(16);
    for (let row = 0; row < 3; row++) {
      for (let col = 0; col < 3; col++) m[4 * col + row] = r[row][col];
      m[12 + row] = -(r[row][0] * eye[0] + r[row][1] * eye[1] + r[row][2] * eye[2]);
    }
    m[15] = 1;
    return m;
  }

  // The normal matrix: the view's rotation, since the model matrix is the identity.
  normalMatrix() {
    const r = this.rotation();
    const m = new Float32Array(9);
    for (let row = 0; row < 3; row++) for (let col = 0; col < 3; col++) m[3 * col + row] = r[row][col];
    return m;
  }

  // The world's up in view space (the sky of the light rig's hemisphere).
  up() {
    const r = this.rotation();
    return [r[0][1], r[1][1], r[2][1]];
  }

  projectionMatrix(aspect) {
    const near = Math.max(this.distance - CLIP_RADII * this.radius, MIN_NEAR);
    const far = this.distance + CLIP_RADII * this.radius;
    const f = 1 / Math.tan(rad(this.fovY) / 2);
    const m = new Float32Array(16);
    m[0] = f / aspect;
    m[5] = f;
    m[10] = (far + near) / (near - far);
    m[11] = -1;
    m[14] = (2 * far * near) / (near - far);
    return m;
  }
}
