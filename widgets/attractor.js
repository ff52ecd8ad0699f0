// AttractorViewer: the browser side of labkit.widgets.AttractorViewer (anywidget ES module).
//
// The kernel integrates an ensemble and sends float32 buffers: positions [n_ic, n_time, 3],
// colours [n_ic, n_time] in [0, 1], and the number of finite samples of each trajectory.
// This module animates them with WebGL2: every trajectory is drawn from (head - tail) to
// head with alpha fading along the tail, so thousands of comets move at once. Controls set
// model state and the kernel re-integrates on every change (no "update" button). The same
// module runs inside Panel's AnyWidgetComponent, whose model adapter has the same API.
//
// Given series ("series" mode: a true series beside a model's free run) use the same
// buffers: each series is cut into stretches drawn as comets. A colour value >= 2 is an
// entry of the discrete PALETTE (series colour or symbolic code), values in [0, 1] the
// ramp, -1 red (diverged). The catalogue controls are hidden in that mode.

// Discrete colours (no red: red marks divergence); the last, grey, is "no code".
const PALETTE = ["#4e9fe5", "#ff9f1c", "#2ec4b6", "#e84a8a", "#b5e48c", "#9d79d9",
  "#f6d55c", "#7fd1ae", "#c08552", "#8d99ae", "#5c6370"];
const glslColour = (hex) => `vec3(${[1, 3, 5].map((i) => (parseInt(hex.slice(i, i + 2), 16) / 255).toFixed(3)).join(", ")})`;

const VERTEX = `#version 300 es
in vec3 a_pos;
in float a_col;
uniform mat4 u_mvp;
uniform float u_head;
uniform float u_tail;
uniform int u_ntime;
uniform float u_point;
out float v_col;
out float v_alpha;
void main() {
  float idx = float(gl_VertexID % u_ntime);
  float age = u_head - idx;
  v_alpha = (age < 0.0 || age > u_tail) ? 0.0 : 1.0 - age / (u_tail + 1.0);
  v_col = a_col;
  gl_Position = u_mvp * vec4(a_pos, 1.0);
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
  const input = make("input", { type: "range", min, max, step, "data-name": name }, row);
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
class Scene {
  constructor(canvas) {
    this.canvas = canvas;
    this.gl = canvas.getContext("webgl2", { antialias: true, premultipliedAlpha: false });
    this.azimuth = 0.6;
    this.elevation = 0.35;
    this.zoom = 1.0;
    this.count = 0;
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
    this.loc = {
      pos: gl.getAttribLocation(program, "a_pos"),
      col: gl.getAttribLocation(program, "a_col"),
      mvp: gl.getUniformLocation(program, "u_mvp"),
      head: gl.getUniformLocation(program, "u_head"),
      tail: gl.getUniformLocation(program, "u_tail"),
      ntime: gl.getUniformLocation(program, "u_ntime"),
      point: gl.getUniformLocation(program, "u_point"),
    };
    this.vao = gl.createVertexArray();
    this.posBuffer = gl.createBuffer();
    this.colBuffer = gl.createBuffer();
    this.multi = gl.getExtension("WEBGL_multi_draw");
  }

  upload(positions, colours, nIc, nTime, valid, bounds, kind) {
    const gl = this.gl;
    if (!gl) return;
    this.nIc = nIc;
    this.nTime = nTime;
    this.valid = valid;
    this.kind = kind;
    const lo = bounds.slice(0, 3), hi = bounds.slice(3, 6);
    this.centre = lo.map((v, i) => (v + hi[i]) / 2);
    const extent = Math.max(1e-12, ...hi.map((v, i) => v - lo[i]));
    this.scale = 2 / extent;
    gl.bindVertexArray(this.vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.posBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, positions, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(this.loc.pos);
    gl.vertexAttribPointer(this.loc.pos, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.colBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, colours, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(this.loc.col);
    gl.vertexAttribPointer(this.loc.col, 1, gl.FLOAT, false, 0, 0);
    gl.bindVertexArray(null);
    this.firsts = new Int32Array(nIc);
    this.counts = new Int32Array(nIc);
  }

  matrix() {
    const w = this.canvas.width, h = this.canvas.height;
    const model = multiply(scaling(this.scale * this.zoom),
      translation(-this.centre[0], -this.centre[1], -this.centre[2]));
    const view = multiply(translation(0, 0, -3.4),
      multiply(rotationX(this.elevation), multiply(rotationY(this.azimuth), Z_UP)));
    return multiply(perspective(Math.PI / 4, w / Math.max(1, h), 0.05, 50), multiply(view, model));
  }

  draw(head, tail) {
    const gl = this.gl;
    if (!gl) return 0;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(0.07, 0.08, 0.10, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (!this.nIc) return 0;
    gl.useProgram(this.program);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.uniformMatrix4fv(this.loc.mvp, false, this.matrix());
    gl.uniform1f(this.loc.head, head);
    gl.uniform1f(this.loc.tail, tail);
    gl.uniform1i(this.loc.ntime, this.nTime);
    gl.uniform1f(this.loc.point, this.kind === "map" ? 3.0 : 1.0);
    gl.bindVertexArray(this.vao);
    const mode = this.kind === "map" ? gl.POINTS : gl.LINE_STRIP;
    const h = Math.floor(head);
    let n = 0;
    for (let i = 0; i < this.nIc; i++) {
      const last = Math.min(h, this.valid[i] - 1);
      const first = Math.max(0, h - Math.ceil(tail));
      if (last - first < (this.kind === "map" ? 0 : 1)) continue;
      this.firsts[n] = i * this.nTime + first;
      this.counts[n] = last - first + 1;
      n++;
    }
    if (n > 0) {
      if (this.multi) {
        this.multi.multiDrawArraysWEBGL(mode, this.firsts, 0, this.counts, 0, n);
      } else {
        for (let k = 0; k < n; k++) gl.drawArrays(mode, this.firsts[k], this.counts[k]);
      }
    }
    gl.bindVertexArray(null);
    this.count = n;
    return n;
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

function drawSeries(canvas, view, head) {
  const { ctx, w, h } = prepare(canvas);
  axes(ctx, w, h, "time series (trajectory 0)");
  if (!view || !view.nTime) return;
  const colours = ["#1f77b4", "#d62728", "#2ca02c"];
  const n = view.valid[0];
  for (let d = 0; d < 3; d++) {
    let lo = Infinity, hi = -Infinity;
    for (let j = 0; j < n; j++) {
      const v = view.positions[j * 3 + d];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) continue;
    ctx.strokeStyle = colours[d];
    ctx.beginPath();
    for (let j = 0; j < n; j++) {
      const x = 37 + (j / Math.max(1, view.nTime - 1)) * (w - 46);
      const y = h - 19 - ((view.positions[j * 3 + d] - lo) / (hi - lo)) * (h - 38);
      if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
    ctx.fillStyle = colours[d];
    ctx.fillText(view.varNames[d] || "", w - 40 + 12 * d - 24, 12);
  }
  const cx = 37 + (Math.min(head, view.nTime - 1) / Math.max(1, view.nTime - 1)) * (w - 46);
  ctx.strokeStyle = "#888";
  ctx.beginPath(); ctx.moveTo(cx, 17); ctx.lineTo(cx, h - 18); ctx.stroke();
  ctx.fillStyle = "#333";
  ctx.fillText(`t = 0 … ${fmt(view.tEnd)}`, 38, h - 4);
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
  const select = make("select", { class: "lk-system lk-catalogue", "aria-label": "system" }, bar);
  const colour = make("select", { class: "lk-colour", "aria-label": "colour by" }, bar);
  const play = make("button", { class: "lk-play", type: "button" }, bar);
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
  const canvas = make("canvas", { class: "lk-canvas", width: 640, height: 440 }, main);
  const side = make("div", { class: "lk-side" }, main);
  const series = make("canvas", { class: "lk-series", width: 340, height: 140 }, side);
  const spectrumCanvas = make("canvas", { class: "lk-spectrum lk-catalogue", width: 340, height: 140 }, side);
  const orbitRow = make("div", { class: "lk-orbit-row lk-catalogue" }, side);
  const orbitSelect = make("select", { class: "lk-orbit-parameter", "aria-label": "orbit diagram parameter" }, orbitRow);
  const orbitCanvas = make("canvas", { class: "lk-orbit lk-catalogue", width: 340, height: 150 }, side);

  let scene;
  try {
    scene = new Scene(canvas);
  } catch (err) {
    scene = { gl: null, draw: () => 0, upload: () => {} };
    message.textContent = String(err.message || err);
  }
  if (!scene.gl) {
    message.textContent = "WebGL2 is not available in this browser; the static figure (viewer.figure()) still works.";
  }

  let view = null;       // the decoded data of the latest version
  let head = 0;
  let frame = 0;
  let raf = 0;
  let orbitPoints = new Float32Array(0);

  const commit = (name, value) => { model.set(name, value); model.save_changes(); };

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
  function fillParams() {
    const specs = model.get("param_specs") || [];
    const values = model.get("parameters") || {};
    params.replaceChildren();
    for (const spec of specs) {
      const v = spec.name in values ? values[spec.name] : spec.value;
      const s = slider(params, { label: spec.name, name: spec.name, min: spec.min, max: spec.max,
        step: spec.step, value: v, format: fmt });
      s.input.dataset.param = spec.name;
      s.input.addEventListener("change", () => {
        const next = { ...(model.get("parameters") || {}) };
        next[spec.name] = Number(s.input.value);
        commit("parameters", next);
      });
    }
    const orbitName = model.get("orbit_parameter");
    orbitSelect.replaceChildren(...specs.map((s) => make("option", { value: s.name, text: `orbit diagram: ${s.name}` })));
    orbitSelect.value = orbitName;
  }
  orbitSelect.addEventListener("change", () => commit("orbit_parameter", orbitSelect.value));

  // --- general controls --------------------------------------------------------------------
  nIc.input.addEventListener("change", () => commit("n_ic", Number(nIc.input.value)));
  length.input.addEventListener("change", () => commit("periods", Number(length.input.value)));
  speed.input.addEventListener("input", () => commit("speed", Number(speed.input.value)));
  tail.input.addEventListener("input", () => commit("tail", Number(tail.input.value)));
  colour.addEventListener("change", () => commit("color_by", colour.value));
  play.addEventListener("click", () => commit("playing", !model.get("playing")));

  // --- given series: mode, colour modes, legend with visibility toggles, readout ----------
  function syncMode() {
    const series = model.get("mode") === "series";
    el.classList.toggle("lk-series-mode", series);
    el.dataset.mode = series ? "series" : "system";
    for (const node of el.querySelectorAll(".lk-catalogue input, .lk-catalogue select, input.lk-catalogue, select.lk-catalogue")) {
      node.disabled = series;
    }
    const modes = series ? ["series", "time", "codes"] : ["time", "speed", "expansion"];
    colour.replaceChildren(...modes.map((m) => make("option", { value: m, text: `colour: ${m}` })));
    colour.value = model.get("color_by");
    fillLegend();
  }

  function fillLegend() {
    legend.replaceChildren();
    if (model.get("mode") !== "series") return;
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
  function loadData() {
    const shape = model.get("shape") || [0, 0];
    const positions = floats(model.get("positions"));
    const colours = floats(model.get("colors"));
    const valid = ints(model.get("valid"));
    const [n, t] = shape;
    if (positions.length !== n * t * 3 || colours.length !== n * t || valid.length !== n) {
      console.warn("labkit attractor: buffers and shape disagree", shape, positions.length, colours.length);
      return;
    }
    // Diverged trajectories are drawn in red (colour < 0) up to their last finite sample.
    for (let i = 0; i < n; i++) {
      if (valid[i] < t) colours.fill(-1, i * t, (i + 1) * t);
    }
    const bounds = (model.get("bounds") || [0, 0, 0, 1, 1, 1]).flat();
    view = { nIc: n, nTime: t, positions, valid, varNames: model.get("var_names") || [],
      tEnd: model.get("t_end") || 0 };
    scene.upload(positions, colours, n, t, valid, bounds, model.get("kind"));
    if (head > t - 1 + model.get("tail")) head = 0;
    el.dataset.version = String(model.get("version"));
    el.dataset.system = model.get("system");
    el.dataset.nIc = String(n);
    drawFrame();
  }

  // Several buffers change together; load once after the whole batch has arrived.
  let loadQueued = false;
  function scheduleLoad() {
    if (loadQueued) return;
    loadQueued = true;
    setTimeout(() => { loadQueued = false; loadData(); }, 0);
  }

  function drawFrame() {
    const t = view ? view.nTime : 0;
    const drawn = scene.draw(head, model.get("tail"));
    el.dataset.drawn = String(drawn);
    el.dataset.head = String(Math.floor(head));
    if (frame % 6 === 0 || !model.get("playing")) drawSeries(series, view, head);
    if (t && model.get("playing")) {
      head += model.get("speed");
      if (head > t - 1 + model.get("tail")) head = 0;
    }
    frame++;
    el.dataset.frames = String(frame);
  }

  function loop() {
    if (model.get("playing") || frame === 0) drawFrame();
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
  canvas.addEventListener("pointerdown", (ev) => { drag = [ev.clientX, ev.clientY]; canvas.setPointerCapture(ev.pointerId); });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    scene.azimuth += (ev.clientX - drag[0]) * 0.01;
    scene.elevation = Math.max(-1.5, Math.min(1.5, scene.elevation + (ev.clientY - drag[1]) * 0.01));
    drag = [ev.clientX, ev.clientY];
    if (!model.get("playing")) drawFrame();
  });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    scene.zoom = Math.max(0.2, Math.min(8, scene.zoom * Math.exp(-ev.deltaY * 0.001)));
    if (!model.get("playing")) drawFrame();
  }, { passive: false });

  function resize() {
    const width = Math.max(320, Math.floor(main.clientWidth - side.clientWidth - 12));
    const ratio = window.devicePixelRatio || 1;
    if (Math.abs(canvas.width - width * ratio) > 1) {
      canvas.width = Math.floor(width * ratio);
      canvas.height = Math.floor(440 * ratio);
      canvas.style.width = `${width}px`;
      canvas.style.height = "440px";
      drawFrame();
    }
  }
  const observer = typeof ResizeObserver !== "undefined" ? new ResizeObserver(resize) : null;
  if (observer) observer.observe(main);

  // --- wiring ----------------------------------------------------------------------------
  const handlers = [
    ["change:systems", fillSystems], ["change:system", fillSystems],
    ["change:param_specs", fillParams], ["change:parameters", fillParams],
    ["change:orbit_parameter", fillParams],
    ["change:version", scheduleLoad], ["change:positions", scheduleLoad],
    ["change:colors", scheduleLoad], ["change:valid", scheduleLoad], ["change:shape", scheduleLoad],
    ["change:n_ic", syncControls], ["change:periods", syncControls], ["change:speed", syncControls],
    ["change:tail", syncControls], ["change:color_by", syncControls], ["change:playing", syncControls],
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
  loadData();
  loadSpectrum();
  loadOrbit();
  resize();
  raf = requestAnimationFrame(loop);

  return () => {
    cancelAnimationFrame(raf);
    if (observer) observer.disconnect();
    for (const [event, fn] of handlers) {
      if (model.off) model.off(event, fn);
    }
  };
}

export default { render };
