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

// A form control (slider, select) that keeps the keys pressed on it: JupyterLab's shortcuts
// would take the arrow keys otherwise. The attribute must sit on the focused element
// itself, which their selectors match first.
function control(tag, attrs = {}, parent = null) {
  return make(tag, { ...attrs, "data-lm-suppress-shortcuts": "true" }, parent);
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

// ---- WebGL -------------------------------------------------------------------------------
const NO_WEBGL = "WebGL2 is not available in this browser; the static figure (viewer.figure()) still works.";

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
