// attractor_scene.js: the AttractorViewer's WebGL picture (after attractor_ring.js; see
// attractor.js for the whole widget).
//
// Samples live on the GPU in one float texture, ring slot by slot, so a segment is one
// contiguous upload; one draw call draws every trajectory from (head - tail) to head with
// alpha fading along the tail. Where the browser can, the drawing runs in a worker on an
// OffscreenCanvas (RemoteScene), so the page's main thread never waits for the GPU; every
// view of the page draws there with one WebGL context (else with the page's one context:
// see SharedGL in common.js for why labkit shares contexts), and a lost context is restored.
// Colour values >= 2 are entries of the discrete PALETTE (series colour or symbolic code),
// values in [0, 1] the ramp; diverged trajectories are red.

// Discrete colours (no red: red marks divergence); the last, grey, is "no code".
const PALETTE = ["#4e9fe5", "#ff9f1c", "#2ec4b6", "#e84a8a", "#b5e48c", "#9d79d9",
  "#f6d55c", "#7fd1ae", "#c08552", "#8d99ae", "#5c6370"];
const glslColour = (hex) => `vec3(${[1, 3, 5].map((i) => (parseInt(hex.slice(i, i + 2), 16) / 255).toFixed(3)).join(", ")})`;

// Widest sample texture: rows of this many texels (well inside every WebGL2's limit).
const TEXTURE_WIDTH = 4096;
// Most line segments (points, for a map) drawn per frame where WebGL draws in software:
// there each costs ~1.4 us of the page's main thread (SwiftShader, measured: 1,024 comets
// with 60-sample tails took 99 ms a frame), which delays every message from the kernel.
// Longer tails are drawn thinned (every k-th sample) to stay within it; a GPU draws all.
const SOFTWARE_SEGMENTS = 30000;

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

// ---- the renderer ----------------------------------------------------------------------
// Draws a ring of samples with a shared WebGL context (SharedGL, common.js): the page's
// (pageGL), the picture then copied into `canvas`, or the drawing worker's (`surface` given;
// `canvas` is then only the picture's size, and the worker posts the picture to the page:
// this class's source also runs there). `software`: thin long tails (SOFTWARE_SEGMENTS).
class Scene {
  constructor(canvas, software, surface = null) {
    this.canvas = canvas;
    this.software = software;
    this.local = !surface;
    this.surface = surface || pageGL();
    this.gl = this.surface.gl;
    this.azimuth = 0.6;
    this.elevation = 0.35;
    this.zoom = 1.0;
    this.n = 0;
    this.capacity = 0;
    this.kind = "flow";
    this.centre = [0, 0, 0];
    this.scale = 1;
    this.ring = null;  // on the page: the ring drawn (loaded again after a lost context)
    this.last = null;  // the last draw's parameters (drawn again after a lost context)
    if (!this.gl) return;
    this.surface.attach(this);
    if (this.surface.usable()) this.setUp();
    else if (this.local) glNotice(canvas, "lost", GL_LOST);
    if (this.local) exportButtonFor(canvas);
  }

  // The program, textures and vertex array: at the start and after a lost context.
  setUp() {
    const gl = this.gl;
    const program = glProgram(gl, VERTEX, FRAGMENT, "attractor");
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

  contextLost() {
    this.program = null;
    if (this.local) glNotice(this.canvas, "lost", GL_LOST);
  }

  // The context is back: everything made again; on the page, the ring loaded and the last
  // picture drawn again (in the worker, RemoteScene sends them).
  contextRestored() {
    this.setUp();
    if (!this.local) return;
    glNotice(this.canvas, "lost", "");
    if (this.ring) this.load(this.ring);
    if (this.last) this.draw(this.last);
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
    if (this.local) this.ring = ring;
    this.n = ring.n;
    this.capacity = ring.capacity;
    this.kind = ring.kind;
    this.setBounds(ring.bounds);
    const gl = this.gl;
    if (!gl || !this.program) return;
    this.width = this.allocate(this.texture, ring.n * ring.capacity, gl.RGBA32F, gl.RGBA);
    if (ring.data) this.upload(0, ring.n * ring.capacity, ring.data, 0);
    this.divergedWidth = this.allocate(this.divergedTexture, ring.n, gl.R32F, gl.RED);
    this.setDiverged(ring.diverged);
  }

  // Samples [count, n, SAMPLE] of ring indices start .. start + count - 1.
  update(start, count, samples) {
    if (!this.program) return;
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
    if (!this.program || flags.length !== this.n || !this.n) return;
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
    return orbitMatrix(this, this.centre, this.scale * this.zoom, w / Math.max(1, h));
  }

  // Draw ring indices first .. last of every trajectory (p: {head, tail, first, last, range,
  // palette}); the head's index sets the fading. Returns the trajectories drawn. On the page
  // the picture lands in the view's canvas; a lost context leaves the last one there.
  draw(p) {
    this.last = p;
    const drawn = this.render(p);
    if (drawn === null) return 0;
    if (this.local) this.surface.copyTo(this.canvas, this.canvas.width, this.canvas.height);
    return drawn;
  }

  // The picture in the shared context (null: no context to draw with).
  render(p) {
    if (!this.program) return null;
    return this.surface.paint(this.canvas.width, this.canvas.height, (gl) => this.paint(gl, p), !this.local);
  }

  paint(gl, p) {
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

  // What this view holds in the shared context goes.
  dispose() {
    if (!this.gl) return;
    this.surface.detach(this);
    if (this.program && this.surface.usable()) {
      const gl = this.gl;
      gl.deleteProgram(this.program);
      gl.deleteTexture(this.texture);
      gl.deleteTexture(this.divergedTexture);
      gl.deleteVertexArray(this.vao);
    }
    this.program = null;
    this.ring = null;
  }
}

// The AttractorViewer's PNG button (attractor.js owns the bar; the view's picture is made
// here): the current canvas of the view, named after the system shown.
function exportButtonFor(canvas) {
  const root = canvas.closest(".lk-attractor");
  const bar = root && root.querySelector(":scope > .lk-bar");
  if (!bar) return;
  addExportButton(bar, () => root.querySelector("canvas.lk-canvas"),
    () => `attractor-${root.dataset.system || "view"}`);
}

// ---- the drawing worker ----------------------------------------------------------------
// The worker's side: one SharedGL on an OffscreenCanvas for every AttractorViewer view of
// the page, a Scene per view, driven by messages naming the view (`id`); each picture goes
// back to the page as an ImageBitmap (none while the context is lost).
function sceneWorker(scope) {
  let surface = null;
  const scenes = new Map();
  const say = (message, transfer = []) => scope.postMessage(message, transfer);
  scope.onmessage = (event) => {
    const m = event.data;
    try {
      if (m.type === "start") {
        surface = new SharedGL(new OffscreenCanvas(1, 1), glOptions(m.software));
        surface.attach({ contextLost: () => say({ type: "lost" }),
          contextRestored: () => say({ type: "restored" }) });
        say({ type: "ready", ok: Boolean(surface.gl) });
        return;
      }
      if (!surface || !surface.gl) return;
      const scene = scenes.get(m.id);
      if (m.type === "lose") {
        surface.lose();
      } else if (m.type === "restore") {
        surface.restore();
      } else if (m.type === "open") {
        scenes.set(m.id, new Scene({ width: 1, height: 1 }, m.software, surface));
      } else if (!scene) {
        return;
      } else if (m.type === "close") {
        scene.dispose();
        scenes.delete(m.id);
      } else if (m.type === "load") {
        scene.load(m.ring);
      } else if (m.type === "update") {
        scene.update(m.start, m.count, m.samples);
      } else if (m.type === "diverged") {
        scene.setDiverged(m.flags);
      } else if (m.type === "bounds") {
        scene.setBounds(m.bounds);
      } else if (m.type === "draw") {
        scene.canvas = { width: m.width, height: m.height };
        Object.assign(scene, m.camera);
        const drawn = scene.render(m);
        const bitmap = drawn === null ? null : surface.canvas.transferToImageBitmap();
        say({ type: "frame", id: m.id, version: m.version, bitmap }, bitmap ? [bitmap] : []);
      }
    } catch (err) {
      say({ type: "error", id: m.id, message: String((err && err.message) || err) });
    }
  };
}

// The worker's script: the renderer's constants, helpers and classes, from this module (the
// helpers of common.js it needs among them).
function workerSource() {
  return [
    `const SAMPLE = ${SAMPLE};`, `const TEXTURE_WIDTH = ${TEXTURE_WIDTH};`,
    `const SOFTWARE_SEGMENTS = ${SOFTWARE_SEGMENTS};`,
    `const VERTEX = ${JSON.stringify(VERTEX)};`, `const FRAGMENT = ${JSON.stringify(FRAGMENT)};`,
    `const Z_UP = new Float32Array(${JSON.stringify(Array.from(Z_UP))});`, `const FOV = ${FOV};`,
    `const glOptions = ${String(glOptions)};`,
    ...[SharedGL, glProgram, multiply, perspective, rotationX, rotationY, translation, scaling,
      orbitMatrix, Scene, sceneWorker].map(String),
    "sceneWorker(self);",
  ].join("\n");
}

// The page's side of the drawing worker, one per page (per version of this module: kept on
// globalThis under its script) for every view. A failure of the worker as a whole (no
// WebGL2 there) sends every view back to the page (RemoteScene's onFail); one that names a
// view, that view only.
class SceneWorker {
  constructor(software) {
    this.views = new Map();
    this.next = 1;
    this.failed = "";
    this.url = URL.createObjectURL(new Blob([workerSource()], { type: "text/javascript" }));
    this.worker = new Worker(this.url);
    this.worker.onmessage = (event) => this.hear(event.data);
    this.worker.onerror = (event) => this.fail(String(event.message || "the drawing worker failed"));
    this.post({ type: "start", software });
  }

  static of(software) {
    const workers = (globalThis.__labkitSceneWorkers ??= new Map());
    const key = workerSource();
    if (!workers.has(key)) {
      const made = new SceneWorker(software);
      workers.set(key, made);
      GL_CONTEXTS.add(made);
    }
    return workers.get(key);
  }

  post(message, transfer = []) {
    if (this.worker) this.worker.postMessage(message, transfer);
  }

  open(view) {
    const id = this.next++;
    this.views.set(id, view);
    this.post({ type: "open", id, software: view.software });
    return id;
  }

  close(id) {
    if (this.views.delete(id)) this.post({ type: "close", id });
  }

  hear(m) {
    const view = this.views.get(m.id);
    if (m.type === "frame") {
      if (view) view.frame(m);
      else if (m.bitmap) m.bitmap.close();
    } else if (m.type === "ready") {
      URL.revokeObjectURL(this.url);
      if (!m.ok) this.fail("no WebGL2 in a worker");
    } else if (m.type === "error") {
      if (view) view.fail(m.message);
      else if (m.id === undefined) this.fail(m.message);
    } else if (m.type === "lost" || m.type === "restored") {
      for (const each of [...this.views.values()]) {
        if (m.type === "lost") each.contextLost();
        else each.contextRestored();
      }
    }
  }

  fail(message) {
    if (!this.worker) return;
    this.failed = message;
    this.worker.terminate();
    this.worker = null;
    GL_CONTEXTS.delete(this);
    const views = [...this.views.values()];
    this.views.clear();
    for (const view of views) view.fail(message);
  }

  lose() { this.post({ type: "lose" }); }

  restore() { this.post({ type: "restore" }); }
}

// The same API as Scene, drawing in the page's drawing worker, so that the page's main
// thread, which also reads the kernel's messages from the websocket, never waits for the
// GPU: in software WebGL a frame of 4,096 comets held it ~140 ms, and a 1 MB message then
// took ~1 s to arrive. Each picture comes back as an ImageBitmap shown by the canvas'
// bitmaprenderer (no copy). One frame at a time: the next draw goes once the last is back.
// Throws (attractor.js then draws on the page) when the worker has already failed.
class RemoteScene {
  constructor(canvas, software, onFail) {
    const hub = SceneWorker.of(software);
    if (hub.failed) {
      glNotice(canvas, "fallback", `drawing on the page, not in a worker (${hub.failed})`);
      throw new Error(`the drawing worker failed: ${hub.failed}`);
    }
    this.hub = hub;
    this.canvas = canvas;
    this.software = software;
    this.gl = true;
    this.azimuth = 0.6;
    this.elevation = 0.35;
    this.zoom = 1.0;
    this.n = 0;
    this.capacity = 0;
    this.kind = "flow";
    this.busy = false;
    this.again = false;  // draw the last picture again once the frame in flight is back
    this.ring = null;
    this.last = null;
    this.onDrawn = null;
    this.onFail = onFail;
    this.output = canvas.getContext("bitmaprenderer");
    if (!this.output) throw new Error("this canvas cannot show bitmaps");
    this.id = hub.open(this);
    exportButtonFor(canvas);
  }

  frame(m) {
    this.busy = false;
    if (m.bitmap) {
      this.output.transferFromImageBitmap(m.bitmap);
      this.canvas.dataset.glFrames = String(Number(this.canvas.dataset.glFrames || 0) + 1);
    }
    if (this.onDrawn) this.onDrawn(m);
    if (this.again && this.last) {
      this.again = false;
      this.draw(this.last);
    }
  }

  contextLost() { glNotice(this.canvas, "lost", GL_LOST); }

  // The worker's context is back: the ring again and the last picture again.
  contextRestored() {
    glNotice(this.canvas, "lost", "");
    if (this.ring) this.load(this.ring);
    if (!this.last) return;
    if (this.busy) this.again = true;
    else this.draw(this.last);
  }

  fail(message) {
    if (this.disposed) return;
    this.dispose();
    glNotice(this.canvas, "fallback", `drawing on the page, not in a worker (${message})`);
    if (this.onFail) this.onFail(message);
  }

  post(message, transfer = []) {
    if (!this.disposed) this.hub.post({ ...message, id: this.id }, transfer);
  }

  ready() { return !this.busy; }

  resize(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
  }

  load(ring) {
    this.ring = ring;
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
    this.last = p;
    if (this.disposed) return 0;
    this.busy = true;
    this.post({ type: "draw", ...p, width: this.canvas.width, height: this.canvas.height,
      camera: this.camera() });
    const count = p.last - p.first + 1;
    return this.n && count >= (this.kind === "map" ? 1 : 2) ? this.n : 0;
  }

  camera() { return { azimuth: this.azimuth, elevation: this.elevation, zoom: this.zoom }; }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.hub.close(this.id);
    this.busy = false;
    this.ring = null;
  }
}
