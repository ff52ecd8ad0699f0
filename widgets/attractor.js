// AttractorViewer: the browser side of labkit.widgets.AttractorViewer (anywidget ES module).
//
// A catalogue system arrives as a stream of segments (the `segment` bytes: a JSON header,
// then float32 samples [count, n_ic, 4] = x, y, z, raw colour value). Each segment holds
// only the newest samples of every trajectory; they are appended to a ring that keeps the
// last `capacity` samples of each. A parameter change in the kernel continues the
// trajectories from their present states, so its first segment lands right after the
// samples already here and the comets bend into the new dynamics. The ring lives in a
// per-widget store made when the model is created (anywidget's `initialize`), so samples
// that arrive before a view is shown are kept and every view of the widget shares them. The
// store acknowledges each segment and says how far its views want samples (the animation's
// head plus a lead): the kernel streams no faster than the picture plays, so a change never
// waits behind a backlog. It asks for the whole ring (`resync`) when it has missed a
// segment (a reloaded page).
//
// Samples live on the GPU in one float texture, ring slot by slot, so a segment is one
// contiguous upload; one draw call draws every trajectory from (head - tail) to head with
// alpha fading along the tail. Controls set model state and the
// kernel answers each change (no "update" button); "restart" asks for new initial
// conditions. The same module runs inside Panel's AnyWidgetComponent, whose model adapter
// has the same API.
//
// Given series ("series" mode: a true series beside a model's free run) still arrive whole,
// in the `positions`/`colors`/`valid` buffers, and are drawn through the same ring: each
// series is cut into stretches drawn as comets. Their colour value >= 2 is an entry of the
// discrete PALETTE (series colour or symbolic code), values in [0, 1] the ramp. Diverged
// trajectories are red. The catalogue controls are hidden in that mode.

// Discrete colours (no red: red marks divergence); the last, grey, is "no code".
const PALETTE = ["#4e9fe5", "#ff9f1c", "#2ec4b6", "#e84a8a", "#b5e48c", "#9d79d9",
  "#f6d55c", "#7fd1ae", "#c08552", "#8d99ae", "#5c6370"];
const glslColour = (hex) => `vec3(${[1, 3, 5].map((i) => (parseInt(hex.slice(i, i + 2), 16) / 255).toFixed(3)).join(", ")})`;

// Floats per sample: x, y, z and the colour value (one RGBA32F texel).
const SAMPLE = 4;
// Widest sample texture: rows of this many texels (well inside every WebGL2's limit).
const TEXTURE_WIDTH = 4096;
// Most line segments (points, for a map) drawn per frame where WebGL draws in software:
// there each costs ~1.4 us of the page's main thread (SwiftShader, measured: 1,024 comets
// with 60-sample tails took 99 ms a frame), which delays every message from the kernel.
// Longer tails are drawn thinned (every k-th sample) to stay within it; a GPU draws all.
const SOFTWARE_SEGMENTS = 30000;
// While a parameter slider is dragged, the kernel hears its value at most this often.
const DRAG_COMMIT_MS = 120;
// A view that asked for the whole ring asks again if nothing came within this time.
const RESYNC_RETRY_MS = 3000;
// Samples the kernel may send ahead of a playing animation's head: this many seconds of
// playback at 60 frames per second, and never less than two tails.
const LEAD_SECONDS = 2;

// One draw for all trajectories (no instancing: software WebGL pays a set-up per instance):
// gl_VertexID picks the trajectory and the sample. Each trajectory gets u_count samples,
// counted back from the newest drawn one (every u_stride-th), as line pieces (two vertices
// each: samples 0-1, 1-2, ...) or points for a map. The sample of trajectory i at ring
// index g sits in texel (g mod capacity) * n_ic + i; trajectory i's diverged flag in texel
// i of u_diverged.
const VERTEX = `#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
uniform sampler2D u_samples;
uniform sampler2D u_diverged;
uniform mat4 u_mvp;
uniform int u_last;
uniform int u_count;
uniform int u_stride;
uniform int u_capacity;
uniform int u_nic;
uniform int u_width;
uniform bool u_lines;
uniform float u_head;
uniform float u_tail;
uniform float u_point;
uniform vec2 u_range;
uniform bool u_palette;
out float v_col;
out float v_alpha;
ivec2 at(int texel) { return ivec2(texel % u_width, texel / u_width); }
void main() {
  int per = u_lines ? 2 * (u_count - 1) : u_count;
  int traj = gl_VertexID / per;
  int k = gl_VertexID - traj * per;
  int j = u_lines ? (k + 1) / 2 : k;
  int g = u_last - (u_count - 1 - j) * u_stride;
  vec4 s = texelFetch(u_samples, at((g % u_capacity) * u_nic + traj), 0);
  float age = u_head - float(g);
  v_alpha = (age < 0.0 || age > u_tail) ? 0.0 : 1.0 - age / (u_tail + 1.0);
  if (texelFetch(u_diverged, at(traj), 0).r > 0.5) v_col = -1.0;
  else if (u_palette) v_col = s.w;
  else v_col = clamp((s.w - u_range.x) / max(u_range.y - u_range.x, 1e-30), 0.0, 1.0);
  gl_Position = u_mvp * vec4(s.xyz, 1.0);
  gl_PointSize = u_point;
}`;

const FRAGMENT = `#version 300 es
precision highp float;
in float v_col;
in float v_alpha;
out vec4 colour;
const vec3 PALETTE[${PALETTE.length}] = vec3[${PALETTE.length}](${PALETTE.map(glslColour).join(", ")});
vec3 ramp(float x) {
  vec3 c0 = vec3(0.27, 0.23, 0.62);
  vec3 c1 = vec3(0.16, 0.58, 0.72);
  vec3 c2 = vec3(0.47, 0.82, 0.40);
  vec3 c3 = vec3(0.99, 0.88, 0.25);
  x = clamp(x, 0.0, 1.0) * 3.0;
  if (x < 1.0) return mix(c0, c1, x);
  if (x < 2.0) return mix(c1, c2, x - 1.0);
  return mix(c2, c3, x - 2.0);
}
void main() {
  if (v_alpha <= 0.0) discard;
  vec3 rgb = v_col < 0.0 ? vec3(0.95, 0.20, 0.18)
    : v_col >= 2.0 ? PALETTE[clamp(int(v_col - 1.5), 0, ${PALETTE.length - 1})] : ramp(v_col);
  colour = vec4(rgb, v_alpha);
}`;

// ---- small column-major 4x4 matrix helpers -------------------------------------------
function multiply(a, b) {
  const out = new Float32Array(16);
  for (let c = 0; c < 4; c++) {
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
  }
  return out;
}

function perspective(fovy, aspect, near, far) {
  const f = 1 / Math.tan(fovy / 2);
  const m = new Float32Array(16);
  m[0] = f / aspect;
  m[5] = f;
  m[10] = (far + near) / (near - far);
  m[11] = -1;
  m[14] = (2 * far * near) / (near - far);
  return m;
}

function rotationX(a) {
  const c = Math.cos(a), s = Math.sin(a);
  return new Float32Array([1, 0, 0, 0, 0, c, s, 0, 0, -s, c, 0, 0, 0, 0, 1]);
}

function rotationY(a) {
  const c = Math.cos(a), s = Math.sin(a);
  return new Float32Array([c, 0, -s, 0, 0, 1, 0, 0, s, 0, c, 0, 0, 0, 0, 1]);
}

function translation(x, y, z) {
  return new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, x, y, z, 1]);
}

function scaling(s) {
  return new Float32Array([s, 0, 0, 0, 0, s, 0, 0, 0, 0, s, 0, 0, 0, 0, 1]);
}

// Data z points up on screen: (x, y, z) -> (x, z, -y).
const Z_UP = new Float32Array([1, 0, 0, 0, 0, 0, -1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);

// ---- binary state --------------------------------------------------------------------
// anywidget hands Bytes traits over as DataView; Panel's adapter as DataView or ArrayBuffer.
function bytesOf(value) {
  if (!value) return new ArrayBuffer(0);
  if (value instanceof ArrayBuffer) return value;
  if (ArrayBuffer.isView(value)) {
    return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
  }
  if (typeof value === "string") { // base64, as some transports send bytes
    const raw = atob(value);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  return new ArrayBuffer(0);
}

const floats = (v) => new Float32Array(bytesOf(v));
const ints = (v) => new Int32Array(bytesOf(v));

// A segment's bytes: uint32 header length, JSON header (padded to 4 bytes), float32 samples.
function parseSegment(value) {
  const buffer = bytesOf(value);
  if (buffer.byteLength < 4) return null;
  const length = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const samples = new Float32Array(buffer, 4 + length, header.count * header.n_ic * SAMPLE);
  return { header, samples };
}

// ---- the ring of samples, one per widget (shared by its views) --------------------------
class Ring {
  constructor() {
    this.n = 0;
    this.capacity = 0;
    this.kind = "flow";
    this.data = null;      // Float32Array [capacity, n, SAMPLE], ring slot by slot
    this.oldest = 0;       // ring index of the oldest sample kept
    this.next = 0;         // ring index of the next sample to come
    this.epochStart = 0;   // ring index of the first sample of the newest version
    this.version = 0;
    this.complete = true;
    this.range = [0, 1];
    this.palette = false;  // colour values are palette codes (given series), not raw values
    this.bounds = [0, 0, 0, 1, 1, 1];
    this.diverged = new Float32Array(0);
    this.tRef = 0;         // time of ring index 0
    this.gap = 1;          // time between samples
    this.seq = 0;          // newest segment taken
    this.resyncTimer = 0;  // set while the whole ring has been asked for
    this.model = null;
    this.wants = new Map();  // view -> ring index of the last sample it wants
    this.told = -1;        // the wanted index last told to the kernel
    this.listeners = new Set();
  }

  reset(n, capacity, kind) {
    this.n = n;
    this.capacity = capacity;
    this.kind = kind;
    this.data = new Float32Array(n * capacity * SAMPLE);
    this.diverged = new Float32Array(n);
  }

  // Copy samples [count, n, SAMPLE] of ring indices start .. start + count - 1 into the ring.
  write(start, count, samples) {
    const per = this.n * SAMPLE;
    for (let done = 0; done < count;) {
      const slot = (start + done) % this.capacity;
      const run = Math.min(count - done, this.capacity - slot);
      this.data.set(samples.subarray(done * per, (done + run) * per), slot * per);
      done += run;
    }
    this.next = start + count;
    this.oldest = Math.max(this.oldest, this.next - this.capacity);
  }

  // Take one segment; false when it does not fit (a missed segment: ask for the whole ring).
  take(header, samples) {
    const h = header;
    if (h.reset) {
      this.reset(h.n_ic, h.capacity, h.kind);
      this.oldest = h.start;
      this.next = h.start;
      this.told = -1;
    } else if (!this.data || h.start !== this.next || h.n_ic !== this.n || h.capacity !== this.capacity) {
      return false;
    }
    this.write(h.start, h.count, samples);
    this.version = h.version;
    this.epochStart = h.epoch_start;
    this.complete = h.complete;
    this.range = h.range;
    this.bounds = h.bounds;
    this.tRef = h.t0 - h.start * h.gap;
    this.gap = h.gap;
    if (h.diverged) {
      this.diverged.fill(0);
      for (const i of h.diverged) this.diverged[i] = 1;
    }
    return true;
  }

  time(index) { return this.tRef + index * this.gap; }

  // The last sample any view wants (-1: none does).
  wanted() {
    let most = -1;
    for (const index of this.wants.values()) most = Math.max(most, index);
    return most;
  }

  // Tell the kernel that segment `seq` was taken and how far the views want samples.
  acknowledge(seq) {
    this.told = this.wanted();
    tell(this.model, "acked", [seq, this.told]);
  }

  // A view wants samples up to `index`; the kernel hears of it once the views want at least
  // `slack` more than it was last told (not every frame).
  want(view, index, slack) {
    this.wants.set(view, index);
    if (this.model && this.data && this.wanted() >= this.told + slack) this.acknowledge(this.seq);
  }
}

const RINGS = (globalThis.__labkitAttractorRings ??= new Map());

function commitNow(model, name, value) {
  model.set(name, value);
  model.save_changes();
}

// A request to the kernel: a custom message where the toolkit has them (no state update, so
// no echo, and not held behind ipywidgets' one-message-at-a-time throttle), else the field.
function tell(model, name, value) {
  if (typeof model.send === "function") model.send({ [name]: value });
  else commitNow(model, name, value);  // Panel's adapter has no custom messages
}

// The widget's ring, made on first use and fed by every new segment; the kernel hears that
// each segment was taken, or that the ring missed one and needs the whole ring again. That
// request is repeated until the whole ring comes: one made while the page is still loading
// can be lost (Panel).
function ringOf(model) {
  const uid = model.get("uid") || "";
  let ring = RINGS.get(uid);
  if (ring) {
    ring.model = model;  // a view's model: the newest way to reach the kernel
    return ring;
  }
  ring = new Ring();
  ring.model = ring.owner = model;
  RINGS.set(uid, ring);
  const askWhole = () => {
    if (ring.resyncTimer) return;
    const ask = () => {
      tell(ring.model, "resync", (ring.model.get("resync") || 0) + 1);
      ring.resyncTimer = setTimeout(ask, RESYNC_RETRY_MS);
    };
    ask();
  };
  const take = () => {
    const segment = parseSegment(model.get("segment"));
    if (!segment || segment.header.seq <= ring.seq) return;
    const h = segment.header;
    ring.seq = h.seq;
    if (ring.take(h, segment.samples)) {
      if (h.reset) {
        clearTimeout(ring.resyncTimer);
        ring.resyncTimer = 0;
      }
      for (const listener of ring.listeners) listener(h, segment.samples);
    } else {
      askWhole();
    }
    ring.acknowledge(h.seq);
  };
  model.on("change:segment", take);
  take();
  return ring;
}

// Given series as a ring of their own (a whole view at once, colours as palette codes).
function seriesRing(model) {
  const [n, t] = model.get("shape") || [0, 0];
  const positions = floats(model.get("positions"));
  const colours = floats(model.get("colors"));
  const valid = ints(model.get("valid"));
  if (positions.length !== n * t * 3 || colours.length !== n * t || valid.length !== n) return null;
  const ring = new Ring();
  ring.reset(n, Math.max(1, t), model.get("kind") || "flow");
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < t; j++) {
      const o = (j * n + i) * SAMPLE, p = (i * t + j) * 3;
      ring.data[o] = positions[p];
      ring.data[o + 1] = positions[p + 1];
      ring.data[o + 2] = positions[p + 2];
      ring.data[o + 3] = colours[i * t + j];
    }
    ring.diverged[i] = valid[i] < t ? 1 : 0;  // drawn in red up to its last finite sample
  }
  ring.next = t;
  ring.version = model.get("version");
  ring.palette = true;
  ring.bounds = (model.get("bounds") || [0, 0, 0, 1, 1, 1]).flat();
  ring.gap = t > 1 ? (model.get("t_end") || 0) / (t - 1) : 1;
  return ring;
}

// ---- DOM helpers -----------------------------------------------------------------------
function make(tag, attrs = {}, parent = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  if (parent) parent.appendChild(node);
  return node;
}

function slider(parent, { label, min, max, step, value, name, format }) {
  const row = make("label", { class: "lk-slider" }, parent);
  make("span", { class: "lk-slider-label", text: label }, row);
  // JupyterLab's shortcuts would take the arrow keys pressed on the slider: the attribute
  // must sit on the focused element itself, which their selectors match first.
  const input = make("input", { type: "range", min, max, step, "data-name": name,
    "data-lm-suppress-shortcuts": "true" }, row);
  input.value = value;
  const readout = make("span", { class: "lk-readout" }, row);
  const show = () => { readout.textContent = format(Number(input.value)); };
  show();
  input.addEventListener("input", show);
  return { row, input, readout, show };
}

const fmt = (x) => {
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-2 || a >= 1e4)) return x.toExponential(2);
  return Number(x.toPrecision(4)).toString();
};

// ---- the renderer ----------------------------------------------------------------------
// Whether WebGL draws in software (SwiftShader, llvmpipe: no GPU). There a multisampled
// canvas costs ~50 ms per frame to resolve and read back (measured in headless Chromium:
// 25 fps with 128 comets, against 60 fps without), so antialiasing only where a GPU draws.
// Probed once per page on a throwaway context, released at once (browsers keep only ~16
// live WebGL contexts per page).
function softwareWebGL() {
  if (globalThis.__labkitSoftwareWebGL === undefined) {
    let software = false;
    try {
      const gl = document.createElement("canvas").getContext("webgl2");
      const info = gl && gl.getExtension("WEBGL_debug_renderer_info");
      const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
      software = /swiftshader|llvmpipe|softpipe|software/i.test(name);
      const lose = gl && gl.getExtension("WEBGL_lose_context");
      if (lose) lose.loseContext();
    } catch (err) {
      software = false;
    }
    globalThis.__labkitSoftwareWebGL = software;
  }
  return globalThis.__labkitSoftwareWebGL;
}

// Draws a ring of samples into a canvas (or an OffscreenCanvas, in a worker: this class's
// source is also the worker's). `software`: thin long tails (SOFTWARE_SEGMENTS), no
// antialiasing.
class Scene {
  constructor(canvas, software) {
    this.canvas = canvas;
    this.software = software;
    this.gl = canvas.getContext("webgl2", { antialias: !software, premultipliedAlpha: false });
    this.azimuth = 0.6;
    this.elevation = 0.35;
    this.zoom = 1.0;
    this.n = 0;
    this.capacity = 0;
    this.kind = "flow";
    this.centre = [0, 0, 0];
    this.scale = 1;
    if (!this.gl) return;
    const gl = this.gl;
    const compile = (type, source) => {
      const shader = gl.createShader(type);
      gl.shaderSource(shader, source);
      gl.compileShader(shader);
      if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
        throw new Error(`labkit attractor shader: ${gl.getShaderInfoLog(shader)}`);
      }
      return shader;
    };
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
      throw new Error(`labkit attractor program: ${gl.getProgramInfoLog(program)}`);
    }
    this.program = program;
    const u = (name) => gl.getUniformLocation(program, name);
    this.loc = {
      samples: u("u_samples"), diverged: u("u_diverged"), mvp: u("u_mvp"), last: u("u_last"),
      count: u("u_count"), stride: u("u_stride"), capacity: u("u_capacity"), nic: u("u_nic"),
      width: u("u_width"), lines: u("u_lines"), head: u("u_head"), tail: u("u_tail"),
      point: u("u_point"), range: u("u_range"), palette: u("u_palette"),
    };
    this.texture = gl.createTexture();
    this.divergedTexture = gl.createTexture();
    this.vao = gl.createVertexArray();  // no attributes: the shader reads textures
    this.maxWidth = Math.min(TEXTURE_WIDTH, gl.getParameter(gl.MAX_TEXTURE_SIZE));
  }

  // A float texture of `texels` texels in rows of at most maxWidth.
  allocate(texture, texels, internal, format) {
    const gl = this.gl;
    const width = Math.min(this.maxWidth, Math.max(1, texels));
    const height = Math.ceil(Math.max(1, texels) / width);
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texImage2D(gl.TEXTURE_2D, 0, internal, width, height, 0, format, gl.FLOAT, null);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);
    for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T]) gl.texParameteri(gl.TEXTURE_2D, p, gl.CLAMP_TO_EDGE);
    return width;
  }

  ready() { return true; }

  resize(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
  }

  // Room for ring.capacity samples of ring.n trajectories, and all of ring.data in it
  // (ring: {n, capacity, kind, data, diverged, bounds}).
  load(ring) {
    const gl = this.gl;
    if (!gl) return;
    this.n = ring.n;
    this.capacity = ring.capacity;
    this.kind = ring.kind;
    this.width = this.allocate(this.texture, ring.n * ring.capacity, gl.RGBA32F, gl.RGBA);
    if (ring.data) this.upload(0, ring.n * ring.capacity, ring.data, 0);
    this.divergedWidth = this.allocate(this.divergedTexture, ring.n, gl.R32F, gl.RED);
    this.setDiverged(ring.diverged);
    this.setBounds(ring.bounds);
  }

  // Samples [count, n, SAMPLE] of ring indices start .. start + count - 1.
  update(start, count, samples) {
    if (!this.gl) return;
    const per = this.n * SAMPLE;
    for (let done = 0; done < count;) {
      const slot = (start + done) % this.capacity;
      const run = Math.min(count - done, this.capacity - slot);
      this.upload(slot * this.n, run * this.n, samples, done * per);
      done += run;
    }
  }

  // A run of texels is at most three rectangles: the end of a row, whole rows, a row's start.
  upload(texel, texels, source, offset) {
    const gl = this.gl, w = this.width;
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    while (texels > 0) {
      const x = texel % w, y = Math.floor(texel / w);
      const width = x > 0 || texels < w ? Math.min(w - x, texels) : w;
      const rows = width === w ? Math.floor(texels / w) : 1;
      gl.texSubImage2D(gl.TEXTURE_2D, 0, x, y, width, rows, gl.RGBA, gl.FLOAT, source, offset);
      texel += width * rows;
      texels -= width * rows;
      offset += width * rows * SAMPLE;
    }
  }

  setDiverged(flags) {
    if (!this.gl || flags.length !== this.n || !this.n) return;
    const gl = this.gl, w = this.divergedWidth;
    gl.bindTexture(gl.TEXTURE_2D, this.divergedTexture);
    const rows = Math.floor(flags.length / w), rest = flags.length - rows * w;
    if (rows) gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, w, rows, gl.RED, gl.FLOAT, flags, 0);
    if (rest) gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, rows, rest, 1, gl.RED, gl.FLOAT, flags, rows * w);
  }

  setBounds(bounds) {
    const lo = bounds.slice(0, 3), hi = bounds.slice(3, 6);
    this.centre = lo.map((v, i) => (v + hi[i]) / 2);
    const extent = Math.max(1e-12, ...hi.map((v, i) => v - lo[i]));
    this.scale = 2 / extent;
  }

  matrix() {
    const w = this.canvas.width, h = this.canvas.height;
    const model = multiply(scaling(this.scale * this.zoom),
      translation(-this.centre[0], -this.centre[1], -this.centre[2]));
    const view = multiply(translation(0, 0, -3.4),
      multiply(rotationX(this.elevation), multiply(rotationY(this.azimuth), Z_UP)));
    return multiply(perspective(Math.PI / 4, w / Math.max(1, h), 0.05, 50), multiply(view, model));
  }

  // Draw ring indices first .. last of every trajectory (p: {head, tail, first, last, range,
  // palette}); the head's index sets the fading. Returns the trajectories drawn.
  draw(p) {
    const gl = this.gl;
    if (!gl) return 0;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(0.07, 0.08, 0.10, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    const count = p.last - p.first + 1;
    if (!this.n || count < (this.kind === "map" ? 1 : 2)) return 0;
    const spans = Math.max(1, count - 1);
    const stride = this.software ? Math.min(spans, Math.max(1, Math.ceil(this.n * count / SOFTWARE_SEGMENTS))) : 1;
    const vertices = Math.floor((count - 1) / stride) + 1;
    gl.useProgram(this.program);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.uniform1i(this.loc.samples, 0);
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D, this.divergedTexture);
    gl.uniform1i(this.loc.diverged, 1);
    gl.activeTexture(gl.TEXTURE0);
    gl.uniformMatrix4fv(this.loc.mvp, false, this.matrix());
    gl.uniform1i(this.loc.last, p.last);
    gl.uniform1i(this.loc.count, vertices);
    gl.uniform1i(this.loc.stride, stride);
    gl.uniform1i(this.loc.capacity, this.capacity);
    gl.uniform1i(this.loc.nic, this.n);
    gl.uniform1i(this.loc.width, this.width);
    const lines = this.kind !== "map";
    gl.uniform1i(this.loc.lines, lines ? 1 : 0);
    gl.uniform1f(this.loc.head, p.head);
    gl.uniform1f(this.loc.tail, p.tail);
    gl.uniform1f(this.loc.point, lines ? 1.0 : 3.0);
    gl.uniform2f(this.loc.range, p.range[0], p.range[1]);
    gl.uniform1i(this.loc.palette, p.palette ? 1 : 0);
    gl.bindVertexArray(this.vao);
    gl.drawArrays(lines ? gl.LINES : gl.POINTS, 0, this.n * (lines ? 2 * (vertices - 1) : vertices));
    gl.bindVertexArray(null);
    return this.n;
  }

  dispose() {}
}

// The worker's side: a Scene on the transferred OffscreenCanvas, driven by messages.
function sceneWorker(scope) {
  let scene = null;
  scope.onmessage = (event) => {
    const m = event.data;
    try {
      if (m.type === "canvas") {
        scene = new Scene(m.canvas, m.software);
        scope.postMessage({ type: "ready", ok: Boolean(scene.gl) });
      } else if (!scene || !scene.gl) {
        return;
      } else if (m.type === "load") {
        scene.load(m.ring);
      } else if (m.type === "update") {
        scene.update(m.start, m.count, m.samples);
      } else if (m.type === "diverged") {
        scene.setDiverged(m.flags);
      } else if (m.type === "bounds") {
        scene.setBounds(m.bounds);
      } else if (m.type === "size") {
        scene.resize(m.width, m.height);
      } else if (m.type === "draw") {
        Object.assign(scene, m.camera);
        scene.draw(m);
        scope.postMessage({ type: "drawn", version: m.version });
      }
    } catch (err) {
      scope.postMessage({ type: "error", message: String((err && err.message) || err) });
    }
  };
}

// The worker's script: the renderer's constants, helpers and class, from this module.
function workerSource() {
  return [
    `const SAMPLE = ${SAMPLE};`, `const TEXTURE_WIDTH = ${TEXTURE_WIDTH};`,
    `const SOFTWARE_SEGMENTS = ${SOFTWARE_SEGMENTS};`,
    `const VERTEX = ${JSON.stringify(VERTEX)};`, `const FRAGMENT = ${JSON.stringify(FRAGMENT)};`,
    `const Z_UP = new Float32Array(${JSON.stringify(Array.from(Z_UP))});`,
    ...[multiply, perspective, rotationX, rotationY, translation, scaling, Scene, sceneWorker].map(String),
    "sceneWorker(self);",
  ].join("\n");
}

// The same API as Scene, drawing in a worker on an OffscreenCanvas, so that the page's main
// thread, which also reads the kernel's messages from the websocket, never waits for the
// GPU: in software WebGL a frame of 4,096 comets held it ~140 ms, and a 1 MB message then
// took ~1 s to arrive. One frame at a time: the next draw goes once the last is done.
class RemoteScene {
  constructor(canvas, software, onFail) {
    this.canvas = canvas;
    this.gl = true;
    this.azimuth = 0.6;
    this.elevation = 0.35;
    this.zoom = 1.0;
    this.n = 0;
    this.capacity = 0;
    this.kind = "flow";
    this.busy = false;
    this.onDrawn = null;
    this.onFail = onFail;
    this.url = URL.createObjectURL(new Blob([workerSource()], { type: "text/javascript" }));
    this.worker = new Worker(this.url);
    this.worker.onmessage = (event) => this.hear(event.data);
    this.worker.onerror = (event) => this.fail(String(event.message || "the drawing worker failed"));
    const offscreen = canvas.transferControlToOffscreen();
    this.worker.postMessage({ type: "canvas", canvas: offscreen, software }, [offscreen]);
  }

  hear(m) {
    if (m.type === "drawn") {
      this.busy = false;
      if (this.onDrawn) this.onDrawn(m);
    } else if (m.type === "ready") {
      URL.revokeObjectURL(this.url);
      if (!m.ok) this.fail("no WebGL2 in a worker");
    } else if (m.type === "error") {
      this.fail(m.message);
    }
  }

  fail(message) {
    if (!this.worker) return;
    this.dispose();
    if (this.onFail) this.onFail(message);
  }

  post(message, transfer = []) {
    if (this.worker) this.worker.postMessage(message, transfer);
  }

  ready() { return !this.busy; }

  resize(width, height) { this.post({ type: "size", width, height }); }

  load(ring) {
    this.n = ring.n;
    this.capacity = ring.capacity;
    this.kind = ring.kind;
    const copy = { n: ring.n, capacity: ring.capacity, kind: ring.kind, bounds: ring.bounds,
      data: ring.data ? ring.data.slice() : null, diverged: ring.diverged.slice() };
    this.post({ type: "load", ring: copy }, copy.data ? [copy.data.buffer] : []);
  }

  update(start, count, samples) {
    const copy = samples.slice();  // each view gets its own (a transfer empties the source)
    this.post({ type: "update", start, count, samples: copy }, [copy.buffer]);
  }

  setDiverged(flags) { this.post({ type: "diverged", flags: flags.slice() }); }

  setBounds(bounds) { this.post({ type: "bounds", bounds }); }

  draw(p) {
    if (!this.worker) return 0;
    this.busy = true;
    this.post({ type: "draw", ...p, camera: this.camera() });
    const count = p.last - p.first + 1;
    return this.n && count >= (this.kind === "map" ? 1 : 2) ? this.n : 0;
  }

  camera() { return { azimuth: this.azimuth, elevation: this.elevation, zoom: this.zoom }; }

  dispose() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.busy = false;
  }
}

// ---- 2-D panels ------------------------------------------------------------------------
function prepare(canvas) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.font = "11px sans-serif";
  return { ctx, w, h };
}

function axes(ctx, w, h, title) {
  ctx.strokeStyle = "#bbb";
  ctx.strokeRect(36.5, 16.5, w - 44, h - 34);
  ctx.fillStyle = "#333";
  ctx.fillText(title, 38, 12);
}

function drawSeries(canvas, ring, head, names) {
  const { ctx, w, h } = prepare(canvas);
  axes(ctx, w, h, "time series (trajectory 0)");
  if (!ring || !ring.n || ring.next <= ring.oldest) return;
  const colours = ["#1f77b4", "#d62728", "#2ca02c"];
  const first = ring.oldest, count = ring.next - ring.oldest;
  const at = (j, d) => ring.data[((first + j) % ring.capacity) * ring.n * SAMPLE + d];
  const span = Math.max(1, ring.capacity - 1);
  for (let d = 0; d < 3; d++) {
    let lo = Infinity, hi = -Infinity;
    for (let j = 0; j < count; j++) {
      const v = at(j, d);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) continue;
    ctx.strokeStyle = colours[d];
    ctx.beginPath();
    for (let j = 0; j < count; j++) {
      const x = 37 + (j / span) * (w - 46);
      const y = h - 19 - ((at(j, d) - lo) / (hi - lo)) * (h - 38);
      if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
    ctx.fillStyle = colours[d];
    ctx.fillText(names[d] || "", w - 40 + 12 * d - 24, 12);
  }
  const cx = 37 + (Math.min(Math.max(head - first, 0), count - 1) / span) * (w - 46);
  ctx.strokeStyle = "#888";
  ctx.beginPath(); ctx.moveTo(cx, 17); ctx.lineTo(cx, h - 18); ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.fillText(`t = ${fmt(ring.time(first))} … ${fmt(ring.time(ring.next - 1))}`, 38, h - 4);
}

function drawSpectrum(canvas, spectrum) {
  const { ctx, w, h } = prepare(canvas);
  axes(ctx, w, h, "Lyapunov spectrum (mean ± s.e. over ICs)");
  const ex = (spectrum && spectrum.exponents) || [];
  if (!ex.length) {
    ctx.fillStyle = "#666";
    ctx.fillText(spectrum && spectrum.message ? spectrum.message.slice(0, 60) : "computing…", 42, h / 2);
    return 0;
  }
  const se = spectrum.stderr || ex.map(() => 0);
  let lo = Math.min(0, ...ex.map((v, i) => v - se[i]));
  let hi = Math.max(0, ...ex.map((v, i) => v + se[i]));
  const pad = 0.08 * (hi - lo || 1); lo -= pad; hi += pad;
  const Y = (v) => h - 19 - ((v - lo) / (hi - lo)) * (h - 38);
  ctx.strokeStyle = "#ccc";
  ctx.beginPath(); ctx.moveTo(37, Y(0)); ctx.lineTo(w - 9, Y(0)); ctx.stroke();
  ex.forEach((v, i) => {
    const x = 37 + ((i + 0.5) / ex.length) * (w - 46);
    ctx.strokeStyle = "#333";
    ctx.beginPath(); ctx.moveTo(x, Y(v - se[i])); ctx.lineTo(x, Y(v + se[i])); ctx.stroke();
    ctx.fillStyle = v > 0 ? "#d62728" : "#1f77b4";
    ctx.beginPath(); ctx.arc(x, Y(v), 3.5, 0, 2 * Math.PI); ctx.fill();
  });
  ctx.fillStyle = "#333";
  ctx.fillText(`λ1 = ${fmt(ex[0])} ± ${fmt(se[0])}   D_KY = ${fmt(spectrum.kaplan_yorke)}`, 38, h - 4);
  return ex.length;
}

function drawOrbit(canvas, orbit, points) {
  const { ctx, w, h } = prepare(canvas);
  const name = (orbit && orbit.parameter) || "";
  axes(ctx, w, h, `orbit diagram over ${name}`);
  if (!orbit || !orbit.values || !orbit.values.length) {
    ctx.fillStyle = "#666";
    ctx.fillText(orbit && orbit.message ? orbit.message.slice(0, 60) : "computing…", 42, h / 2);
    return 0;
  }
  const p0 = orbit.values[0], p1 = orbit.values[orbit.values.length - 1];
  let lo = Infinity, hi = -Infinity;
  for (let i = 1; i < points.length; i += 2) {
    if (points[i] < lo) lo = points[i];
    if (points[i] > hi) hi = points[i];
  }
  if (!(hi > lo)) { lo -= 1; hi += 1; }
  const X = (v) => 37 + ((v - p0) / ((p1 - p0) || 1)) * (w - 46);
  const Y = (v) => h - 19 - ((v - lo) / (hi - lo)) * (h - 38);
  ctx.fillStyle = "rgba(20, 40, 90, 0.55)";
  for (let i = 0; i + 1 < points.length; i += 2) ctx.fillRect(X(points[i]), Y(points[i + 1]), 1.2, 1.2);
  ctx.strokeStyle = "#d62728";
  ctx.beginPath(); ctx.moveTo(X(orbit.current), 17); ctx.lineTo(X(orbit.current), h - 18); ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.fillText(`${name}: ${fmt(p0)} … ${fmt(p1)}   (current ${fmt(orbit.current)})`, 38, h - 4);
  return points.length / 2;
}

// ---- the widget --------------------------------------------------------------------------
function render({ model, el }) {
  el.classList.add("lk-attractor");
  const bar = make("div", { class: "lk-bar" }, el);
  const search = make("input", { type: "search", class: "lk-search lk-catalogue", placeholder: "search systems…",
    "aria-label": "search systems" }, bar);
  const select = make("select", { class: "lk-system lk-catalogue", "data-lm-suppress-shortcuts": "true", "aria-label": "system" }, bar);
  const colour = make("select", { class: "lk-colour", "data-lm-suppress-shortcuts": "true", "aria-label": "colour by" }, bar);
  const play = make("button", { class: "lk-play", type: "button" }, bar);
  const restart = make("button", { class: "lk-restart lk-catalogue", type: "button", text: "↺ restart",
    title: "draw the initial conditions again and start at t = 0" }, bar);
  const status = make("span", { class: "lk-status" }, bar);

  const general = make("div", { class: "lk-controls" }, el);
  const nIc = slider(general, { label: "trajectories", name: "n_ic", min: 1, max: 4096, step: 1,
    value: model.get("n_ic"), format: (v) => `${v}` });
  const length = slider(general, { label: "length (periods)", name: "periods", min: 1, max: 100, step: 1,
    value: model.get("periods"), format: (v) => `${v}` });
  const speed = slider(general, { label: "speed", name: "speed", min: 0.1, max: 10, step: 0.1,
    value: model.get("speed"), format: (v) => `${fmt(v)}×` });
  const tail = slider(general, { label: "tail", name: "tail", min: 2, max: 1000, step: 1,
    value: model.get("tail"), format: (v) => `${v}` });
  nIc.row.classList.add("lk-catalogue");
  length.row.classList.add("lk-catalogue");
  const params = make("div", { class: "lk-controls lk-params lk-catalogue" }, el);
  const legend = make("div", { class: "lk-controls lk-legend" }, el);
  const metrics = make("div", { class: "lk-metrics", role: "status" }, el);
  const message = make("div", { class: "lk-message", role: "status" }, el);

  const main = make("div", { class: "lk-main" }, el);
  let canvas = make("canvas", { class: "lk-canvas", width: 640, height: 440 }, main);
  const side = make("div", { class: "lk-side" }, main);
  const series = make("canvas", { class: "lk-series", width: 340, height: 140 }, side);
  const spectrumCanvas = make("canvas", { class: "lk-spectrum lk-catalogue", width: 340, height: 140 }, side);
  const orbitRow = make("div", { class: "lk-orbit-row lk-catalogue" }, side);
  const orbitSelect = make("select", { class: "lk-orbit-parameter", "data-lm-suppress-shortcuts": "true", "aria-label": "orbit diagram parameter" }, orbitRow);
  const orbitCanvas = make("canvas", { class: "lk-orbit lk-catalogue", width: 340, height: 150 }, side);

  // The picture is drawn in a worker where the browser can (OffscreenCanvas), else here.
  const NO_SCENE = { gl: null, ready: () => true, draw: () => 0, load: () => {}, update: () => {},
    setDiverged: () => {}, setBounds: () => {}, resize: () => {}, dispose: () => {} };
  let scene = NO_SCENE;
  let size = [0, 0];
  function localScene() {
    try {
      scene = new Scene(canvas, softwareWebGL());
    } catch (err) {
      scene = NO_SCENE;
      message.textContent = String(err.message || err);
    }
    if (!scene.gl) {
      message.textContent = "WebGL2 is not available in this browser; the static figure (viewer.figure()) still works.";
    }
  }
  // The worker could not draw: a fresh canvas (the old one belongs to the worker) drawn here.
  function fallBack(why) {
    console.warn(`labkit attractor: drawing on the page instead of a worker (${why})`);
    const fresh = make("canvas", { class: "lk-canvas", width: 640, height: 440 });
    canvas.replaceWith(fresh);
    canvas = fresh;
    watchCamera(canvas);
    size = [0, 0];
    const camera = { azimuth: scene.azimuth, elevation: scene.elevation, zoom: scene.zoom };
    localScene();
    Object.assign(scene, camera);
    if (ring) show(ring);
    resize();
  }
  if (typeof OffscreenCanvas !== "undefined" && typeof Worker !== "undefined"
      && typeof canvas.transferControlToOffscreen === "function") {
    try {
      scene = new RemoteScene(canvas, softwareWebGL(), fallBack);
      scene.onDrawn = (m) => shown(m.version);
    } catch (err) {
      scene = NO_SCENE;
    }
  }
  if (scene === NO_SCENE) localScene();

  const stream = ringOf(model);  // the catalogue system's samples, shared by this widget's views
  const viewKey = {};            // this view, in the ring's table of wants
  let ring = null;               // what is drawn: `stream`, or the given series
  let head = 0;                  // ring index of the comets' heads (fractional)
  let frame = 0;
  let raf = 0;
  let dirty = true;              // draw the next frame even when paused
  let orbitPoints = new Float32Array(0);

  const commit = (name, value) => commitNow(model, name, value);
  const isSeries = () => model.get("mode") === "series";

  // --- system list with search -------------------------------------------------------
  function fillSystems() {
    const all = model.get("systems") || [];
    const q = search.value.trim().toLowerCase();
    const current = model.get("system");
    const shown = all.filter((n) => !q || n.toLowerCase().includes(q) || n === current);
    select.replaceChildren(...shown.map((n) => make("option", { value: n, text: n })));
    select.value = current;
    el.dataset.systemsShown = String(shown.length);
  }
  search.addEventListener("input", () => {
    fillSystems();
    const all = model.get("systems") || [];
    const q = search.value.trim().toLowerCase();
    const exact = all.find((n) => n.toLowerCase() === q);
    if (exact && exact !== model.get("system")) commit("system", exact);
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    const first = Array.from(select.options).find((o) => o.value !== model.get("system")
      && o.value.toLowerCase().includes(search.value.trim().toLowerCase()));
    if (first) commit("system", first.value);
  });
  select.addEventListener("change", () => commit("system", select.value));

  // --- parameter sliders -----------------------------------------------------------------
  // While a slider is dragged its value reaches the kernel every DRAG_COMMIT_MS (each one
  // continues the trajectories, and a newer value stops an older one's stream); the final
  // value always goes on release.
  let dragTimer = 0, lastCommit = 0;
  function commitParameter(name, value) {
    clearTimeout(dragTimer);
    dragTimer = 0;
    lastCommit = performance.now();
    const next = { ...(model.get("parameters") || {}) };
    if (next[name] === value) return;
    next[name] = value;
    el.dataset.inputAt = String(lastCommit);
    commit("parameters", next);
  }

  function fillParams() {
    const specs = model.get("param_specs") || [];
    const values = model.get("parameters") || {};
    params.replaceChildren();
    for (const spec of specs) {
      const v = spec.name in values ? values[spec.name] : spec.value;
      const s = slider(params, { label: spec.name, name: spec.name, min: spec.min, max: spec.max,
        step: spec.step, value: v, format: fmt });
      s.input.dataset.param = spec.name;
      s.input.addEventListener("input", () => {
        const wait = DRAG_COMMIT_MS - (performance.now() - lastCommit);
        clearTimeout(dragTimer);
        if (wait <= 0) commitParameter(spec.name, Number(s.input.value));
        else dragTimer = setTimeout(() => commitParameter(spec.name, Number(s.input.value)), wait);
      });
      s.input.addEventListener("change", () => commitParameter(spec.name, Number(s.input.value)));
    }
    const orbitName = model.get("orbit_parameter");
    orbitSelect.replaceChildren(...specs.map((s) => make("option", { value: s.name, text: `orbit diagram: ${s.name}` })));
    orbitSelect.value = orbitName;
  }

  // New values of the same parameters move the sliders in place (rebuilding them would end
  // a drag in progress).
  function syncParams() {
    const values = model.get("parameters") || {};
    for (const input of params.querySelectorAll("input[data-param]")) {
      const v = values[input.dataset.param];
      if (v !== undefined && Number(input.value) !== v && document.activeElement !== input) {
        input.value = v;
        input.parentElement.querySelector(".lk-readout").textContent = fmt(Number(input.value));
      }
    }
  }
  orbitSelect.addEventListener("change", () => commit("orbit_parameter", orbitSelect.value));

  // --- general controls --------------------------------------------------------------------
  nIc.input.addEventListener("change", () => commit("n_ic", Number(nIc.input.value)));
  length.input.addEventListener("change", () => commit("periods", Number(length.input.value)));
  speed.input.addEventListener("input", () => commit("speed", Number(speed.input.value)));
  tail.input.addEventListener("input", () => commit("tail", Number(tail.input.value)));
  colour.addEventListener("change", () => commit("color_by", colour.value));
  play.addEventListener("click", () => commit("playing", !model.get("playing")));
  restart.addEventListener("click", () => commit("restarts", (model.get("restarts") || 0) + 1));

  // --- given series: mode, colour modes, legend with visibility toggles, readout ----------
  function syncMode() {
    const given = isSeries();
    el.classList.toggle("lk-series-mode", given);
    el.dataset.mode = given ? "series" : "system";
    for (const node of el.querySelectorAll(".lk-catalogue input, .lk-catalogue select, input.lk-catalogue, select.lk-catalogue, button.lk-catalogue")) {
      node.disabled = given;
    }
    const modes = given ? ["series", "time", "codes"] : ["time", "speed", "expansion"];
    colour.replaceChildren(...modes.map((m) => make("option", { value: m, text: `colour: ${m}` })));
    colour.value = model.get("color_by");
    fillLegend();
    if (given) {
      stream.wants.delete(viewKey);
      scheduleSeries();
    } else {
      show(stream);
    }
  }

  function fillLegend() {
    legend.replaceChildren();
    if (!isSeries()) return;
    const hidden = model.get("hidden") || [];
    const names = model.get("series_names") || [];
    names.forEach((name, i) => {
      const row = make("label", { class: "lk-toggle" }, legend);
      const box = make("input", { type: "checkbox", "data-series": name }, row);
      box.checked = !hidden.includes(name);
      box.addEventListener("change", () => {
        const rest = (model.get("hidden") || []).filter((n) => n !== name);
        commit("hidden", box.checked ? rest : [...rest, name]);
      });
      if (model.get("color_by") === "series") { // a series' own colour only where it is used
        make("span", { class: "lk-swatch", style: `background:${PALETTE[i % (PALETTE.length - 1)]}` }, row);
      }
      make("span", { text: name }, row);
    });
    if (model.get("color_by") === "series") return;
    for (const entry of model.get("legend") || []) {
      const item = make("span", { class: "lk-key" }, legend);
      make("span", { class: "lk-swatch", style: `background:${PALETTE[entry.colour] || "#888"}` }, item);
      make("span", { text: entry.label }, item);
    }
  }

  function syncReadout() {
    const text = model.get("readout") || "";
    metrics.textContent = text;
    metrics.style.display = text ? "" : "none";
    el.dataset.readout = text;
  }

  function syncControls() {
    nIc.input.value = model.get("n_ic"); nIc.show();
    length.input.value = model.get("periods"); length.show();
    speed.input.value = model.get("speed"); speed.show();
    tail.input.value = model.get("tail"); tail.show();
    colour.value = model.get("color_by");
    el.dataset.colorBy = model.get("color_by");
    play.textContent = model.get("playing") ? "❚❚ pause" : "▶ play";
    el.dataset.playing = String(model.get("playing"));
    el.dataset.restarts = String(model.get("restarts") || 0);
    dirty = true;
  }

  function syncStatus() {
    const busy = model.get("busy") || "";
    status.textContent = busy || `${fmt(model.get("seconds") || 0)} s`;
    el.dataset.busy = busy;
  }

  function syncMessage() {
    const text = model.get("message") || "";
    message.textContent = text;
    message.style.display = text ? "" : "none";
    el.dataset.message = text;
  }

  // --- data --------------------------------------------------------------------------------
  // Draw `source` (a Ring) from now on: all of it goes to the GPU.
  function show(source) {
    ring = source;
    if (!ring.n) return;
    scene.load(ring);
    head = Math.max(ring.oldest, Math.min(head, ring.next - 1));
    describe();
  }

  function describe() {
    el.dataset.version = String(ring.version);
    el.dataset.system = model.get("system");
    el.dataset.nIc = String(ring.n);
    el.dataset.complete = String(ring.complete);
    el.dataset.samples = String(ring.next - ring.oldest);
    dirty = true;
  }

  // New samples of the catalogue system: upload them; a new version moves the heads to its
  // first sample (playing) or to the newest sample (paused), so the change shows at once.
  function onSegment(h, samples) {
    if (isSeries() || ring !== stream) return;
    if (h.reset || scene.n !== stream.n || scene.capacity !== stream.capacity) {
      scene.load(stream);
    } else {
      scene.update(h.start, h.count, samples);
      if (h.diverged) scene.setDiverged(stream.diverged);
      scene.setBounds(stream.bounds);
    }
    const playing = model.get("playing");
    if (h.snapshot) head = Math.max(stream.oldest, Math.min(head, stream.next - 1));
    else if (h.start === h.epoch_start) head = playing ? h.epoch_start : stream.next - 1;
    else if (!playing) head = stream.next - 1;
    describe();
    wantMore();  // before the ring acknowledges this segment
  }
  stream.listeners.add(onSegment);

  function loadSeries() {
    if (!isSeries()) return;
    const given = seriesRing(model);
    if (!given) {
      console.warn("labkit attractor: buffers and shape disagree", model.get("shape"));
      return;
    }
    if (ring && ring.next > 0 && head > given.next - 1 + model.get("tail")) head = 0;
    show(given);
  }

  // Several buffers change together; load once after the whole batch has arrived.
  let loadQueued = false;
  function scheduleSeries() {
    if (loadQueued) return;
    loadQueued = true;
    setTimeout(() => { loadQueued = false; loadSeries(); }, 0);
  }

  // How far this view wants samples: its head plus a lead while playing; all of the version
  // while paused (the still picture shows the newest samples); none in series mode.
  function wantMore() {
    if (ring !== stream || isSeries()) {
      stream.wants.delete(viewKey);
      return;
    }
    const lead = model.get("playing")
      ? Math.max(2 * model.get("tail"), Math.ceil(model.get("speed") * 60 * LEAD_SECONDS))
      : stream.capacity;
    stream.want(viewKey, Math.floor(head) + lead, Math.ceil(lead / 2));
  }

  function drawFrame() {
    const t = model.get("tail");
    let drawn = 0;
    if (ring && ring.n) {
      const h = Math.floor(head);
      const first = Math.max(ring.oldest, h - Math.ceil(t));
      const last = Math.min(ring.next - 1, h);
      // The first frame that draws a sample of a new version: what a change costs, seen.
      const version = last >= ring.epochStart ? ring.version : -1;
      drawn = scene.draw({ head, tail: t, first, last, range: ring.range, palette: ring.palette, version });
      if (!(scene instanceof RemoteScene)) shown(version);
      if (frame % 6 === 0 || !model.get("playing")) drawSeries(series, ring, head, model.get("var_names") || []);
      wantMore();
      if (model.get("playing")) {
        head += model.get("speed");
        if (!ring.complete) head = Math.min(head, ring.next - 1);  // wait for the stream
        else if (head > ring.next - 1 + t) head = ring.oldest;
        head = Math.max(head, ring.oldest);
      }
    } else {
      scene.draw({ head: 0, tail: t, first: 0, last: -1, range: [0, 1], palette: false, version: -1 });
    }
    el.dataset.drawn = String(drawn);
    el.dataset.head = String(Math.floor(head));
    frame++;
    el.dataset.frames = String(frame);
    dirty = false;
  }

  // A frame (drawn by the worker, or here) showed samples of `version` (-1: none new).
  function shown(version) {
    if (version < 0 || el.dataset.shownVersion === String(version)) return;
    el.dataset.shownVersion = String(version);
    el.dataset.shownAt = String(performance.now());
  }

  function loop() {
    if ((model.get("playing") || dirty) && scene.ready()) drawFrame();
    raf = requestAnimationFrame(loop);
  }

  function loadSpectrum() {
    el.dataset.spectrum = String(drawSpectrum(spectrumCanvas, model.get("spectrum")));
  }

  function loadOrbit() {
    orbitPoints = floats(model.get("orbit_points"));
    el.dataset.orbit = String(drawOrbit(orbitCanvas, model.get("orbit"), orbitPoints));
  }

  // --- camera --------------------------------------------------------------------------------
  let drag = null;
  function watchCamera(target) {
    target.addEventListener("pointerdown", (ev) => { drag = [ev.clientX, ev.clientY]; target.setPointerCapture(ev.pointerId); });
    target.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      scene.azimuth += (ev.clientX - drag[0]) * 0.01;
      scene.elevation = Math.max(-1.5, Math.min(1.5, scene.elevation + (ev.clientY - drag[1]) * 0.01));
      drag = [ev.clientX, ev.clientY];
      dirty = true;
    });
    target.addEventListener("pointerup", () => { drag = null; });
    target.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      scene.zoom = Math.max(0.2, Math.min(8, scene.zoom * Math.exp(-ev.deltaY * 0.001)));
      dirty = true;
    }, { passive: false });
  }
  watchCamera(canvas);

  // The drawing buffer follows the canvas' CSS size (the worker's canvas is resized there).
  function resize() {
    const width = Math.max(320, Math.floor(main.clientWidth - side.clientWidth - 12));
    const ratio = window.devicePixelRatio || 1;
    const next = [Math.floor(width * ratio), Math.floor(440 * ratio)];
    if (Math.abs(size[0] - next[0]) > 1 || size[1] !== next[1]) {
      size = next;
      scene.resize(next[0], next[1]);
      canvas.style.width = `${width}px`;
      canvas.style.height = "440px";
      dirty = true;
    }
  }
  const observer = typeof ResizeObserver !== "undefined" ? new ResizeObserver(resize) : null;
  if (observer) observer.observe(main);

  // --- wiring ----------------------------------------------------------------------------
  const handlers = [
    ["change:systems", fillSystems], ["change:system", fillSystems],
    ["change:param_specs", fillParams], ["change:parameters", syncParams],
    ["change:orbit_parameter", fillParams],
    ["change:version", scheduleSeries], ["change:positions", scheduleSeries],
    ["change:colors", scheduleSeries], ["change:valid", scheduleSeries], ["change:shape", scheduleSeries],
    ["change:n_ic", syncControls], ["change:periods", syncControls], ["change:speed", syncControls],
    ["change:tail", syncControls], ["change:color_by", syncControls], ["change:playing", syncControls],
    ["change:restarts", syncControls],
    ["change:busy", syncStatus], ["change:seconds", syncStatus],
    ["change:message", syncMessage],
    ["change:mode", syncMode], ["change:series_names", fillLegend], ["change:legend", fillLegend],
    ["change:hidden", fillLegend], ["change:color_by", fillLegend], ["change:readout", syncReadout],
    ["change:spectrum", loadSpectrum],
    ["change:orbit", loadOrbit], ["change:orbit_points", loadOrbit],
  ];
  for (const [event, fn] of handlers) model.on(event, fn);

  fillSystems();
  fillParams();
  syncMode();
  syncReadout();
  syncControls();
  syncStatus();
  syncMessage();
  loadSpectrum();
  loadOrbit();
  resize();
  raf = requestAnimationFrame(loop);

  return () => {
    cancelAnimationFrame(raf);
    clearTimeout(dragTimer);
    stream.listeners.delete(onSegment);
    stream.wants.delete(viewKey);
    if (stream.model === model) stream.model = stream.owner;
    scene.dispose();
    if (observer) observer.disconnect();
    for (const [event, fn] of handlers) {
      if (model.off) model.off(event, fn);
    }
  };
}

// Made once per widget model, before any view: the ring starts taking segments at once.
// It goes when the model does.
function initialize({ model }) {
  const uid = model.get("uid") || "";
  const ring = ringOf(model);
  return () => {
    clearTimeout(ring.resyncTimer);
    RINGS.delete(uid);
  };
}

export default { initialize, render };
