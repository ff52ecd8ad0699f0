// common.js: what every labkit widget's browser side shares.
//
// anywidget imports a widget's `_esm` from a Blob URL, where a relative `import` cannot
// resolve, so there are no imports: the Python side (labkit/widgets/_assets.py,
// `widget_module`) builds each widget's module as this file followed by the widget's own
// parts, in the order listed there. Everything below is therefore a module-level name in
// every widget; a widget file must not declare any of them again (tests/widgets/
// test_widget_modules.py checks that no top-level name is declared in two files). No
// `export` here: only a widget's last part exports.

// ---- numbers -----------------------------------------------------------------------------
// A number for a label: four significant digits, exponent form (two decimals) below 1e-2 and
// from 1e4 on. A missing value prints as an en dash "–": null and undefined (JSON carries
// NaN and infinities as null: labkit.widgets._toolkits.finite_or_none) and NaN. The
// infinities print as "∞" and "-∞".
function fmt(x) {
  if (x === null || x === undefined) return "–";
  const v = Number(x);
  if (Number.isNaN(v)) return "–";
  if (v === Infinity) return "∞";
  if (v === -Infinity) return "-∞";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-2 || a >= 1e4)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

// ---- binary state ------------------------------------------------------------------------
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

// ---- the model ---------------------------------------------------------------------------
// Set one field and send it to the kernel.
function save(model, name, value) {
  model.set(name, value);
  model.save_changes();
}

// Call each [event, fn] of `handlers` on the model's events; returns what stops them (Panel's
// adapter may have no `off`).
function listen(model, handlers) {
  for (const [event, fn] of handlers) model.on(event, fn);
  return () => {
    for (const [event, fn] of handlers) {
      if (model.off) model.off(event, fn);
    }
  };
}

// `fn`, called once after the messages being handled now: several buffers change together,
// so a view loads them once the whole batch has arrived.
function batched(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    setTimeout(() => { queued = false; fn(); }, 0);
  };
}

// ---- DOM ---------------------------------------------------------------------------------
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

// ---- keyboard ----------------------------------------------------------------------------
// Keys pressed inside a labkit widget belong to the widget. JupyterLab 4 reads its shortcuts
// from keydown events that bubble up to `document` (it starts lumino's application with
// `bubblingKeydown`). lumino skips a binding when, walking up from the event's target, it
// meets an element with `data-lm-suppress-shortcuts` *before* one the binding's selector
// matches; the notebook's command-mode bindings (arrows, Enter, A, B, D D, ...) use
// `.jp-Notebook.jp-mod-commandMode:not(.jp-mod-readWrite) :focus`, which matches the focused
// element itself. So the attribute protects only the element that carries it: on the root it
// does nothing for a focused button, checkbox or canvas, and one on each control leaves
// every other element to the notebook. Stopping the keydown at the widget's root covers
// everything inside it (and every JupyterLab 4.x, whatever its selectors). Keys held with
// Ctrl, Alt or Meta still reach JupyterLab: saving, the command palette, tab switching.
// Idempotent: `control` calls it for the widget that a control is made in.
function keepKeys(root) {
  if (!root || root.dataset.keys === "labkit") return;
  root.dataset.keys = "labkit";
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.altKey || ev.metaKey)) ev.stopPropagation();
  });
}

// A form control (slider, select) that keeps the keys pressed on it. The attribute is for
// lumino's own walk (see keepKeys) on pages that do not bubble keydown; the widget's root
// (found from `parent`, which must already sit in it) gets keepKeys.
function control(tag, attrs = {}, parent = null) {
  const node = make(tag, { ...attrs, "data-lm-suppress-shortcuts": "true" }, parent);
  if (parent) keepKeys(parent.closest(".lk-widget"));
  return node;
}

// A labelled range slider with a readout of its value through `format`.
function slider(parent, { label, min, max, step, value, name, format }) {
  const row = make("label", { class: "lk-slider" }, parent);
  make("span", { class: "lk-slider-label", text: label }, row);
  const input = control("input", { type: "range", min, max, step, "data-name": name }, row);
  input.value = value;
  const readout = make("span", { class: "lk-readout" }, row);
  const show = () => { readout.textContent = format(Number(input.value)); };
  show();
  input.addEventListener("input", show);
  return { row, input, readout, show };
}

// `text` in `node`, which is hidden while the text is empty.
function showText(node, text) {
  node.textContent = text;
  node.style.display = text ? "" : "none";
}

// Call `fn` whenever `node` changes size; returns what stops it.
function observeSize(node, fn) {
  const observer = typeof ResizeObserver !== "undefined" ? new ResizeObserver(fn) : null;
  if (observer) observer.observe(node);
  return () => { if (observer) observer.disconnect(); };
}

// ---- 2-D canvas --------------------------------------------------------------------------
// A cleared white canvas and its context, with the plots' font.
function prepare(canvas) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.font = "11px sans-serif";
  return { ctx, w, h };
}

// `text` on a 2-D canvas in lines no wider than `width`, broken at spaces (a word wider than a
// line where it must), the block of lines centred on `y`; returns the number of lines.
function fillWrapped(ctx, text, x, y, width, lineHeight = 14) {
  const lines = [];
  for (const paragraph of String(text).split("\n")) {
    let line = "";
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      const longer = line ? `${line} ${word}` : word;
      if (!line || ctx.measureText(longer).width <= width) line = longer;
      else { lines.push(line); line = word; }
      while (line.length > 1 && ctx.measureText(line).width > width) {
        let cut = line.length - 1;
        while (cut > 1 && ctx.measureText(line.slice(0, cut)).width > width) cut--;
        lines.push(line.slice(0, cut));
        line = line.slice(cut);
      }
    }
    if (line) lines.push(line);
  }
  const top = Math.max(lineHeight, y - ((lines.length - 1) * lineHeight) / 2);
  lines.forEach((line, i) => ctx.fillText(line, x, top + i * lineHeight));
  return lines.length;
}

// ---- export ------------------------------------------------------------------------------
// A "PNG" button in `container` that downloads the picture of `canvas` (a canvas, or a
// function giving the canvas of the moment: a view may replace its canvas) as `name`.png
// (`name`: a string or a function giving one). labkit's WebGL views draw into plain canvases
// (see SharedGL), so the current picture is always there to read. One button per widget: a
// second call returns the first button.
function addExportButton(container, canvas, name) {
  const root = container.closest(".lk-widget") || container;
  const existing = root.querySelector("button.lk-png");
  if (existing) return existing;
  const button = make("button", { class: "lk-png", type: "button", text: "⤓ PNG",
    title: "download the current view as a PNG image" }, container);
  button.addEventListener("click", () => {
    const source = typeof canvas === "function" ? canvas() : canvas;
    const file = `${typeof name === "function" ? name() : name}.png`;
    source.toBlob((blob) => {
      if (!blob) return;
      const url = URL.createObjectURL(blob);
      const link = make("a", { href: url, download: file }, document.body);
      link.style.display = "none";
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      root.dataset.png = `${file} ${blob.size}`;
    }, "image/png");
  });
  return button;
}

// ---- WebGL -------------------------------------------------------------------------------
const NO_WEBGL = "WebGL2 is not available in this browser; the static figure (viewer.figure()) still works.";

// One WebGL context per page for all of labkit's views, and none per view. Chromium keeps
// about 16 live WebGL contexts on a page's main thread; past that it drops the oldest
// ("Too many active WebGL contexts"), and a JupyterLab with three labkit notebooks open had
// 29 canvases, so a viewer went blank for good. Of the two ways out, sharing one context
// (each view's picture drawn in it, then copied into the view's plain canvas) was chosen
// over giving back the contexts of views scrolled out of sight (IntersectionObserver) and
// taking them again when they return:
//  - it is bounded by construction: labkit holds one context of the 16 however many views
//    are open, and leaves the rest to plotly and nglview; the off-screen scheme still needs
//    one per view in sight, so a notebook with many small views on screen runs out again;
//  - nothing goes blank: a view's canvas keeps its last picture. A lost context only stops
//    updates until it is restored (the view says so), where a given-back context takes its
//    picture with it and every return into sight waits for a restore and a redraw;
//  - the picture is always readable (PNG export, tests) without preserveDrawingBuffer.
// The cost is one copy of each frame into the view's canvas (a blit on a GPU, a copy of the
// view's pixels in software WebGL) and views drawing one after the other. The
// AttractorViewer draws in a worker (attractor_scene.js), whose contexts do not count
// against the page's (measured: 20 worker contexts, no warning); its views share one worker
// and one context there in the same way.

// Whether WebGL draws in software (SwiftShader, llvmpipe: no GPU). There a multisampled
// canvas costs ~50 ms per frame to resolve and read back (measured in headless Chromium:
// 25 fps with 128 comets, against 60 fps without), so antialiasing only where a GPU draws.
// Probed once per page on a throwaway context, released at once.
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

// The options of a shared context: opaque pictures, antialiased where a GPU draws.
const glOptions = (software) => ({ antialias: !software, alpha: false, depth: true });

// A WebGL2 context shared by several renderers ("clients"), on `canvas` (a detached canvas,
// or an OffscreenCanvas in a worker: this class's source also runs there). A client draws a
// width x height picture into the lower-left corner of the canvas through `paint`; the
// canvas grows to the largest picture asked for (or takes each picture's size: `exact`, for
// transferToImageBitmap). A lost context is asked back from the browser (preventDefault),
// and its clients hear `contextLost()`, then `contextRestored()` once it is back, when they
// make their buffers, textures and programs again and draw.
class SharedGL {
  constructor(canvas, options) {
    this.canvas = canvas;
    this.clients = new Set();
    this.lost = false;
    this.gl = canvas.getContext("webgl2", options);
    this.loser = this.gl ? this.gl.getExtension("WEBGL_lose_context") : null;
    canvas.addEventListener("webglcontextlost", (ev) => {
      ev.preventDefault();
      this.lost = true;
      for (const client of [...this.clients]) client.contextLost();
    });
    canvas.addEventListener("webglcontextrestored", () => {
      this.lost = false;
      for (const client of [...this.clients]) client.contextRestored();
    });
  }

  attach(client) { this.clients.add(client); }

  detach(client) { this.clients.delete(client); }

  usable() { return Boolean(this.gl) && !this.lost && !this.gl.isContextLost(); }

  // What `paint(gl)` returns after it drew a width x height picture (viewport and scissor
  // set to it, no blending, no depth test); null when there is no context to draw with.
  paint(width, height, paint, exact = false) {
    if (!this.usable()) return null;
    const gl = this.gl, c = this.canvas;
    if (exact ? c.width !== width || c.height !== height : c.width < width || c.height < height) {
      c.width = exact ? width : Math.max(c.width, width);
      c.height = exact ? height : Math.max(c.height, height);
    }
    gl.disable(gl.BLEND);
    gl.disable(gl.DEPTH_TEST);
    gl.enable(gl.SCISSOR_TEST);
    gl.scissor(0, 0, width, height);
    gl.viewport(0, 0, width, height);
    try {
      return paint(gl);
    } finally {
      gl.disable(gl.SCISSOR_TEST);
    }
  }

  // Copy the last width x height picture into `target` (a canvas of that size), in the same
  // task as it was drawn (the drawing buffer is not preserved).
  copyTo(target, width, height) {
    const ctx = target.getContext("2d");
    if (!ctx) return false;
    ctx.drawImage(this.canvas, 0, this.canvas.height - height, width, height, 0, 0, width, height);
    target.dataset.glFrames = String(Number(target.dataset.glFrames || 0) + 1);
    return true;
  }

  // WEBGL_lose_context, for tests and for checking recovery by hand.
  lose() { if (this.loser && !this.lost) this.loser.loseContext(); }

  restore() { if (this.loser && this.lost) this.loser.restoreContext(); }
}

// Every shared context of the page, main thread and workers (each with lose() and
// restore()): `globalThis.__labkitGLContexts`. Kept on globalThis, as is the main thread's
// context, so that every labkit widget's module (each carries its own copy of this file)
// finds the same ones.
const GL_CONTEXTS = (globalThis.__labkitGLContexts ??= new Set());

// The page's shared context (made on first use).
function pageGL() {
  if (!globalThis.__labkitPageGL) {
    const shared = new SharedGL(document.createElement("canvas"), glOptions(softwareWebGL()));
    globalThis.__labkitPageGL = shared;
    if (shared.gl) GL_CONTEXTS.add(shared);
  }
  return globalThis.__labkitPageGL;
}

// A line above the picture of `canvas` saying what its drawing waits for or fell back to,
// hidden while there is nothing to say. `key` keeps reasons apart (a fallback and a lost
// context can hold at once); each is kept in the line's dataset, so tests can read it.
function glNotice(canvas, key, text) {
  const root = canvas.closest(".lk-widget");
  if (!root) return;
  let line = root.querySelector(":scope > .lk-gl-notice");
  if (!line && !text) return;
  if (!line) {
    let row = canvas;
    while (row.parentElement && row.parentElement !== root) row = row.parentElement;
    line = make("div", { class: "lk-gl-notice", role: "status" });
    root.insertBefore(line, row.parentElement === root ? row : null);
  }
  if (text) line.dataset[key] = text;
  else delete line.dataset[key];
  showText(line, Object.values(line.dataset).join(" · "));
}

// What a view says while its shared context is lost.
const GL_LOST = "WebGL context lost: the picture stays as it was until the browser gives " +
  "the context back";

// A linked program of two shader sources; errors name the widget (`who`).
function glProgram(gl, vertex, fragment, who) {
  const compile = (type, source) => {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
      throw new Error(`labkit ${who} shader: ${gl.getShaderInfoLog(shader)}`);
    }
    return shader;
  };
  const program = gl.createProgram();
  gl.attachShader(program, compile(gl.VERTEX_SHADER, vertex));
  gl.attachShader(program, compile(gl.FRAGMENT_SHADER, fragment));
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
    throw new Error(`labkit ${who} program: ${gl.getProgramInfoLog(program)}`);
  }
  return program;
}

// Small column-major 4x4 matrices.
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
// The orbit camera's vertical field of view.
const FOV = Math.PI / 4;

// The orbit camera's model-view-projection: the data centred on `centre` and scaled by
// `scale`, seen from `camera`'s azimuth and elevation (radians) at distance 3.4.
function orbitMatrix(camera, centre, scale, aspect) {
  const model = multiply(scaling(scale), translation(-centre[0], -centre[1], -centre[2]));
  const view = multiply(translation(0, 0, -3.4),
    multiply(rotationX(camera.elevation), multiply(rotationY(camera.azimuth), Z_UP)));
  return multiply(perspective(FOV, aspect, 0.05, 50), multiply(view, model));
}

// Drag on `target` to turn the orbit camera, scroll to zoom: `camera()` (a getter: a view
// may replace its scene) gets its azimuth, elevation and zoom moved, then `moved()` is
// called. `hover(ev)` hears pointer moves outside a drag; `interrupt()` a press, a wheel,
// or the pointer leaving outside a drag.
function orbitControls(target, camera, moved, { hover = null, interrupt = null } = {}) {
  let drag = null;
  target.addEventListener("pointerdown", (ev) => {
    drag = [ev.clientX, ev.clientY];
    target.setPointerCapture(ev.pointerId);
    if (interrupt) interrupt();
  });
  target.addEventListener("pointermove", (ev) => {
    if (!drag) {
      if (hover) hover(ev);
      return;
    }
    const c = camera();
    c.azimuth += (ev.clientX - drag[0]) * 0.01;
    c.elevation = Math.max(-1.5, Math.min(1.5, c.elevation + (ev.clientY - drag[1]) * 0.01));
    drag = [ev.clientX, ev.clientY];
    moved();
  });
  target.addEventListener("pointerup", () => { drag = null; });
  if (interrupt) target.addEventListener("pointerleave", () => { if (!drag) interrupt(); });
  target.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const c = camera();
    c.zoom = Math.max(0.2, Math.min(8, c.zoom * Math.exp(-ev.deltaY * 0.001)));
    if (interrupt) interrupt();
    moved();
  }, { passive: false });
}
