// CrystalViewer: the browser side of labkit.widgets.CrystalViewer (anywidget ES module).
//
// The kernel sends every frame of every panel as float32 buffers (see
// labkit/widgets/_crystal_data.py, ScenePayload): shown atoms (position, fractional
// coordinates, Jmol colour, covalent radius, atomic number, source index; periodic images
// included), half-bond line vertices coloured by their atom, and the 12 cell edges. This
// module draws them with WebGL2: atoms as shaded sphere impostors (point sprites sized by
// covalent radius), bonds and cell edges as lines, one viewport per panel sharing one
// orbit camera, each frame framed on its own (slotBounds). The picture is drawn with the
// page's one shared WebGL context and copied into the view's canvas (common.js, SharedGL),
// which a "PNG" button downloads. The trajectory player writes `frame` to the model, so the
// kernel sees it.
// No CDN and no bundler (labkit/widgets/_assets.py puts common.js in front of this file);
// the same module runs inside Panel's AnyWidgetComponent.

const ATOM_STRIDE = 12; // x y z  fa fb fc  r g b  radius  Z  index
const BOND_STRIDE = 6; // x y z  r g b

const SPHERE_VERTEX = `#version 300 es
in vec3 a_pos;
in vec3 a_col;
in float a_rad;
uniform mat4 u_mvp;
uniform float u_pxscale;
uniform float u_atom;
uniform float u_maxpt;
out vec3 v_col;
void main() {
  vec4 clip = u_mvp * vec4(a_pos, 1.0);
  gl_Position = clip;
  gl_PointSize = clamp(2.0 * a_rad * u_atom * u_pxscale / clip.w, 2.0, u_maxpt);
  v_col = a_col;
}`;

const SPHERE_FRAGMENT = `#version 300 es
precision highp float;
in vec3 v_col;
out vec4 colour;
void main() {
  vec2 p = gl_PointCoord * 2.0 - 1.0;
  float r2 = dot(p, p);
  if (r2 > 1.0) discard;
  vec3 n = vec3(p.x, -p.y, sqrt(1.0 - r2));
  vec3 light = normalize(vec3(-0.4, 0.55, 0.75));
  float diffuse = max(dot(n, light), 0.0);
  float specular = pow(max(dot(reflect(-light, n), vec3(0.0, 0.0, 1.0)), 0.0), 28.0);
  vec3 rgb = v_col * (0.28 + 0.72 * diffuse) + 0.30 * specular;
  rgb *= mix(0.45, 1.0, smoothstep(0.0, 0.3, n.z));
  colour = vec4(rgb, 1.0);
}`;

const LINE_VERTEX = `#version 300 es
in vec3 a_pos;
in vec3 a_col;
uniform mat4 u_mvp;
out vec3 v_col;
void main() {
  gl_Position = u_mvp * vec4(a_pos, 1.0);
  v_col = a_col;
}`;

const LINE_FRAGMENT = `#version 300 es
precision highp float;
in vec3 v_col;
out vec4 colour;
void main() { colour = vec4(v_col, 1.0); }`;

// ---- DOM helpers -----------------------------------------------------------------------
function checkbox(parent, label, cls) {
  const row = make("label", { class: `lk-check ${cls}` }, parent);
  const input = make("input", { type: "checkbox" }, row);
  make("span", { text: label }, row);
  return input;
}

const hexOf = (r, g, b) => `#${[r, g, b].map((v) => Math.round(255 * v).toString(16).padStart(2, "0")).join("")}`;

// Each frame is framed on its own: a denoising trajectory starts from a cell and
// coordinates far from the final ones, and one scale for all frames left the first a speck.
// The box of slot s, [lo xyz, hi xyz]: the kernel's `frame_bounds` (float32 [slots, 2, 3]:
// atoms, cell corners and half-bond ends), else (a payload without them) one made here from
// the atoms and cell corners.
function slotBounds(atoms, atomOffsets, cells, nSlots) {
  const out = new Float32Array(nSlots * 6);
  for (let s = 0; s < nSlots; s++) {
    const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    const take = (x, y, z) => {
      lo[0] = Math.min(lo[0], x); lo[1] = Math.min(lo[1], y); lo[2] = Math.min(lo[2], z);
      hi[0] = Math.max(hi[0], x); hi[1] = Math.max(hi[1], y); hi[2] = Math.max(hi[2], z);
    };
    for (let i = atomOffsets[s]; i < atomOffsets[s + 1]; i++) {
      take(atoms[i * ATOM_STRIDE], atoms[i * ATOM_STRIDE + 1], atoms[i * ATOM_STRIDE + 2]);
    }
    for (let v = 0; v < 24; v++) take(cells[s * 72 + v * 3], cells[s * 72 + v * 3 + 1], cells[s * 72 + v * 3 + 2]);
    if (!(hi[0] >= lo[0])) { lo.fill(0); hi.fill(1); }
    out.set([...lo, ...hi], s * 6);
  }
  return out;
}

function givenBounds(value, nSlots) {
  const flat = Array.isArray(value) ? value.flat() : Array.from(floats(value));
  return flat.length === nSlots * 6 && flat.every(Number.isFinite) ? Float32Array.from(flat) : null;
}

// ---- the renderer ----------------------------------------------------------------------
// Draws with the page's shared WebGL context (pageGL, common.js: one for all of labkit's
// views); each picture is copied into `canvas`, which keeps it while the context is lost.
class CrystalScene {
  constructor(canvas) {
    this.canvas = canvas;
    this.surface = pageGL();
    this.gl = this.surface.gl;
    this.azimuth = 0.55;
    this.elevation = 0.35;
    this.zoom = 1.0;
    this.data = null;
    this.last = null;  // the last draw's arguments (drawn again after a lost context)
    this.live = false; // programs and buffers made in the current context
    this.maxPoint = 64;
    if (!this.gl) return;
    this.surface.attach(this);
    if (this.surface.usable()) this.setUp();
    else glNotice(canvas, "lost", GL_LOST);
  }

  // Programs, vertex arrays and buffers: at the start and after a lost context.
  setUp() {
    const gl = this.gl;
    this.sphere = glProgram(gl, SPHERE_VERTEX, SPHERE_FRAGMENT, "crystal");
    this.line = glProgram(gl, LINE_VERTEX, LINE_FRAGMENT, "crystal");
    const at = (p, n) => gl.getAttribLocation(p, n);
    const un = (p, n) => gl.getUniformLocation(p, n);
    this.sLoc = { pos: at(this.sphere, "a_pos"), col: at(this.sphere, "a_col"),
      rad: at(this.sphere, "a_rad"), mvp: un(this.sphere, "u_mvp"),
      pxscale: un(this.sphere, "u_pxscale"), atom: un(this.sphere, "u_atom"),
      maxpt: un(this.sphere, "u_maxpt") };
    this.lLoc = { pos: at(this.line, "a_pos"), col: at(this.line, "a_col"), mvp: un(this.line, "u_mvp") };
    this.maxPoint = gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE)[1] || 64;
    this.atomVao = gl.createVertexArray();
    this.bondVao = gl.createVertexArray();
    this.cellVao = gl.createVertexArray();
    this.atomBuffer = gl.createBuffer();
    this.bondBuffer = gl.createBuffer();
    this.cellBuffer = gl.createBuffer();
    this.live = true;
  }

  contextLost() {
    this.live = false;
    glNotice(this.canvas, "lost", GL_LOST);
  }

  contextRestored() {
    this.setUp();
    glNotice(this.canvas, "lost", "");
    if (this.data) this.upload(this.data);
    if (this.last) this.draw(...this.last);
  }

  upload(data) {
    this.data = data;
    if (!this.live) return;
    const gl = this.gl;
    const F = 4;
    gl.bindVertexArray(this.atomVao);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.atomBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, data.atoms, gl.STATIC_DRAW);
    const s = this.sLoc;
    gl.enableVertexAttribArray(s.pos);
    gl.vertexAttribPointer(s.pos, 3, gl.FLOAT, false, ATOM_STRIDE * F, 0);
    gl.enableVertexAttribArray(s.col);
    gl.vertexAttribPointer(s.col, 3, gl.FLOAT, false, ATOM_STRIDE * F, 6 * F);
    gl.enableVertexAttribArray(s.rad);
    gl.vertexAttribPointer(s.rad, 1, gl.FLOAT, false, ATOM_STRIDE * F, 9 * F);
    gl.bindVertexArray(this.bondVao);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.bondBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, data.bonds, gl.STATIC_DRAW);
    const l = this.lLoc;
    gl.enableVertexAttribArray(l.pos);
    gl.vertexAttribPointer(l.pos, 3, gl.FLOAT, false, BOND_STRIDE * F, 0);
    gl.enableVertexAttribArray(l.col);
    gl.vertexAttribPointer(l.col, 3, gl.FLOAT, false, BOND_STRIDE * F, 3 * F);
    gl.bindVertexArray(this.cellVao);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.cellBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, data.cells, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(l.pos);
    gl.vertexAttribPointer(l.pos, 3, gl.FLOAT, false, 3 * F, 0);
    gl.disableVertexAttribArray(l.col);
    gl.bindVertexArray(null);
  }

  // The viewport [x, y, w, h] (canvas pixels, y from the top) of panel p of n.
  viewport(p, n) {
    const w = Math.floor(this.canvas.width / n);
    return [p * w, 0, w, this.canvas.height];
  }

  // Slot `slot` framed in viewport `vp`: its box's centre in the middle, its diagonal
  // across (so any turn of the camera keeps it in view).
  matrix(slot, vp) {
    const b = this.data.bounds.subarray(slot * 6, slot * 6 + 6);
    const c = [0, 1, 2].map((i) => (b[i] + b[i + 3]) / 2);
    const extent = Math.hypot(b[3] - b[0], b[4] - b[1], b[5] - b[2]);
    const scale = (2 / Math.max(1e-6, extent)) * this.zoom;
    return { mvp: orbitMatrix(this, c, scale, vp[2] / Math.max(1, vp[3])),
      pxscale: scale * (1 / Math.tan(FOV / 2)) * vp[3] / 2 };
  }

  // Draw slot slots[p] in panel p into the canvas; returns the number of atoms drawn (0
  // while the context is lost: the canvas keeps the last picture).
  draw(slots, opts) {
    this.last = [slots, opts];
    if (!this.live) return 0;
    const w = this.canvas.width, h = this.canvas.height;
    const drawn = this.surface.paint(w, h, (gl) => this.paint(gl, slots, opts));
    if (drawn === null) return 0;
    this.surface.copyTo(this.canvas, w, h);
    return drawn;
  }

  paint(gl, slots, opts) {
    gl.clearColor(0.07, 0.08, 0.10, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    const d = this.data;
    if (!d) return 0;
    gl.enable(gl.DEPTH_TEST);
    let drawn = 0;
    slots.forEach((slot, p) => {
      const vp = this.viewport(p, slots.length);
      gl.viewport(vp[0], this.canvas.height - vp[1] - vp[3], vp[2], vp[3]);
      const { mvp, pxscale } = this.matrix(slot, vp);
      gl.useProgram(this.line);
      gl.uniformMatrix4fv(this.lLoc.mvp, false, mvp);
      if (opts.cell) {
        gl.bindVertexArray(this.cellVao);
        gl.vertexAttrib3f(this.lLoc.col, 0.78, 0.80, 0.84);
        gl.drawArrays(gl.LINES, slot * 24, 24);
      }
      if (opts.bonds) {
        const first = d.bondOffsets[slot], count = d.bondOffsets[slot + 1] - first;
        if (count > 0) {
          gl.bindVertexArray(this.bondVao);
          gl.drawArrays(gl.LINES, first, count);
        }
      }
      gl.useProgram(this.sphere);
      gl.uniformMatrix4fv(this.sLoc.mvp, false, mvp);
      gl.uniform1f(this.sLoc.pxscale, pxscale);
      gl.uniform1f(this.sLoc.atom, opts.atomScale);
      gl.uniform1f(this.sLoc.maxpt, this.maxPoint);
      const first = d.atomOffsets[slot], count = d.atomOffsets[slot + 1] - first;
      if (count > 0) {
        gl.bindVertexArray(this.atomVao);
        gl.drawArrays(gl.POINTS, first, count);
        drawn += count;
      }
    });
    gl.bindVertexArray(null);
    return drawn;
  }

  // What this view holds in the shared context goes.
  dispose() {
    if (!this.gl) return;
    this.surface.detach(this);
    if (this.live && this.surface.usable()) {
      const gl = this.gl;
      for (const p of [this.sphere, this.line]) gl.deleteProgram(p);
      for (const v of [this.atomVao, this.bondVao, this.cellVao]) gl.deleteVertexArray(v);
      for (const b of [this.atomBuffer, this.bondBuffer, this.cellBuffer]) gl.deleteBuffer(b);
    }
    this.live = false;
    this.data = null;
  }

  // Shown atoms of slot in panel p projected to canvas pixels: [{i, x, y, r, z}].
  project(slot, p, n, atomScale) {
    const d = this.data;
    if (!d) return [];
    const vp = this.viewport(p, n);
    const { mvp, pxscale } = this.matrix(slot, vp);
    const out = [];
    for (let i = d.atomOffsets[slot]; i < d.atomOffsets[slot + 1]; i++) {
      const o = i * ATOM_STRIDE;
      const x = d.atoms[o], y = d.atoms[o + 1], z = d.atoms[o + 2];
      const cx = mvp[0] * x + mvp[4] * y + mvp[8] * z + mvp[12];
      const cy = mvp[1] * x + mvp[5] * y + mvp[9] * z + mvp[13];
      const cz = mvp[2] * x + mvp[6] * y + mvp[10] * z + mvp[14];
      const cw = mvp[3] * x + mvp[7] * y + mvp[11] * z + mvp[15];
      if (cw <= 0) continue;
      out.push({ i, x: vp[0] + ((cx / cw + 1) / 2) * vp[2], y: vp[1] + ((1 - cy / cw) / 2) * vp[3],
        r: Math.min(this.maxPoint, Math.max(2, (2 * d.atoms[o + 9] * atomScale * pxscale) / cw)) / 2,
        z: cz / cw });
    }
    return out;
  }
}

// ---- the widget --------------------------------------------------------------------------
function render({ model, el }) {
  el.classList.add("lk-widget", "lk-crystal");
  keepKeys(el);
  const bar = make("div", { class: "lk-bar" }, el);
  const bondsBox = checkbox(bar, "bonds", "lk-bonds");
  const cellBox = checkbox(bar, "cell", "lk-cell");
  const imagesBox = checkbox(bar, "boundary images", "lk-images");
  const repeat = control("select", { class: "lk-repeat", "aria-label": "repeat cells" }, bar);
  const sizeRow = make("label", { class: "lk-slider" }, bar);
  make("span", { text: "atom size" }, sizeRow);
  const size = control("input", { type: "range", class: "lk-atom-scale", min: 0.1, max: 1.2, step: 0.05 }, sizeRow);

  const player = make("div", { class: "lk-player" }, el);
  const play = make("button", { class: "lk-play", type: "button" }, player);
  const frameInput = control("input", { type: "range", class: "lk-frame", min: 0, max: 0, step: 1,
    "aria-label": "frame" }, player);
  const readout = make("span", { class: "lk-frame-readout" }, player);

  const message = make("div", { class: "lk-message", role: "status" }, el);
  // The element legend on a row of its own, wrapping (in the tool bar it ran off the edge).
  const legend = make("div", { class: "lk-legend" }, el);
  const titles = make("div", { class: "lk-titles" }, el);
  const info = make("div", { class: "lk-titles lk-cell-info" }, el);
  const stage = make("div", { class: "lk-stage" }, el);
  const canvas = make("canvas", { class: "lk-canvas", width: 720, height: 420 }, stage);
  const tip = make("div", { class: "lk-tooltip" }, stage);
  tip.style.display = "none";
  addExportButton(bar, canvas, () => `crystal-frame-${model.get("frame")}`);

  let scene;
  try {
    scene = new CrystalScene(canvas);
  } catch (err) {
    scene = { gl: null, draw: () => 0, upload: () => {}, project: () => [], dispose: () => {} };
    message.textContent = String(err.message || err);
  }
  if (!scene.gl) {
    message.textContent = NO_WEBGL;
  }

  let data = null;
  let dirty = true;
  let raf = 0;
  let lastTick = 0;
  const commit = (name, value) => save(model, name, value);

  const panels = () => model.get("panels") || [];
  const slots = () => {
    const f = model.get("frame");
    return panels().map((p) => p.slot + Math.min(f, p.frames - 1));
  };
  const drawOptions = () => ({ bonds: model.get("bonds"), cell: model.get("cell"),
    atomScale: model.get("atom_scale") });

  // --- controls ------------------------------------------------------------------------------
  for (const n of [1, 2, 3]) make("option", { value: `${n},${n},${n}`, text: `${n}×${n}×${n} cells` }, repeat);
  bondsBox.addEventListener("change", () => commit("bonds", bondsBox.checked));
  cellBox.addEventListener("change", () => commit("cell", cellBox.checked));
  imagesBox.addEventListener("change", () => commit("images", imagesBox.checked));
  repeat.addEventListener("change", () => commit("repeat", repeat.value.split(",").map(Number)));
  size.addEventListener("input", () => commit("atom_scale", Number(size.value)));
  play.addEventListener("click", () => commit("playing", !model.get("playing")));
  frameInput.addEventListener("input", () => commit("frame", Number(frameInput.value)));

  function syncControls() {
    bondsBox.checked = model.get("bonds");
    cellBox.checked = model.get("cell");
    imagesBox.checked = model.get("images");
    const r = (model.get("repeat") || [1, 1, 1]).join(",");
    if (![...repeat.options].some((o) => o.value === r)) {
      make("option", { value: r, text: `${r.replaceAll(",", "×")} cells` }, repeat);
    }
    repeat.value = r;
    size.value = model.get("atom_scale");
    play.textContent = model.get("playing") ? "❚❚ pause" : "▶ play";
    el.dataset.playing = String(model.get("playing"));
    dirty = true;
  }

  function syncFrame() {
    const n = model.get("n_frames") || 1;
    const f = model.get("frame");
    frameInput.max = String(n - 1);
    frameInput.value = String(f);
    readout.textContent = `frame ${f} / ${n - 1}`;
    player.style.display = n > 1 ? "" : "none";
    el.dataset.frame = String(f);
    el.dataset.nFrames = String(n);
    hideTip();
    syncInfo();
    dirty = true;
  }

  // The space group and lattice parameters of each panel's crystal at the shown frame, under
  // its title: the kernel's `frame_info` (one dict per slot; `text` is the line for people).
  function syncInfo() {
    const all = model.get("frame_info") || [];
    const texts = data ? slots().map((slot) => String((all[slot] && all[slot].text) || "")) : [];
    info.replaceChildren(...texts.map((text) => make("span", { class: "lk-title-info", text })));
    info.style.display = texts.some(Boolean) ? "" : "none";
    el.dataset.cellInfo = texts.join(" | ");
  }

  function syncMessage() {
    const text = model.get("message") || "";
    showText(message, text || (scene.gl ? "" : message.textContent));  // keeps NO_WEBGL
    el.dataset.message = text;
  }

  // --- data ------------------------------------------------------------------------------------
  function loadData() {
    const atoms = floats(model.get("atoms"));
    const atomOffsets = ints(model.get("atom_offsets"));
    const bonds = floats(model.get("bond_vertices"));
    const bondOffsets = ints(model.get("bond_offsets"));
    const cells = floats(model.get("cells"));
    const centres = floats(model.get("centres"));
    const nSlots = atomOffsets.length - 1;
    if (nSlots < 1 || atoms.length !== atomOffsets[nSlots] * ATOM_STRIDE
        || bonds.length !== bondOffsets[nSlots] * BOND_STRIDE || cells.length !== nSlots * 72
        || centres.length !== nSlots * 3) {
      if (model.get("version")) console.warn("labkit crystal: buffers and offsets disagree");
      return;
    }
    const bounds = givenBounds(model.get("frame_bounds"), nSlots) || slotBounds(atoms, atomOffsets, cells, nSlots);
    data = { atoms, atomOffsets, bonds, bondOffsets, cells, centres, bounds };
    scene.upload(data);
    titles.replaceChildren(...panels().map((p) => make("span", { class: "lk-title",
      text: [p.title, p.formula].filter(Boolean).join(": ") })));
    // Legend: one swatch per element, its colour from the first atom of that element.
    const elements = model.get("elements") || {};
    const seen = new Map();
    for (let i = 0; i < atoms.length / ATOM_STRIDE; i++) {
      const z = atoms[i * ATOM_STRIDE + 10];
      if (!seen.has(z)) seen.set(z, hexOf(...atoms.subarray(i * ATOM_STRIDE + 6, i * ATOM_STRIDE + 9)));
    }
    legend.replaceChildren(...[...seen.keys()].sort((a, b) => a - b).map((z) => {
      const item = make("span", { class: "lk-legend-item", text: elements[String(z)] || `Z=${z}` });
      const dot = make("span", { class: "lk-swatch" });
      dot.style.background = seen.get(z);
      item.prepend(dot);
      return item;
    }));
    el.dataset.version = String(model.get("version"));
    el.dataset.panels = String(panels().length);
    syncFrame();
  }

  const scheduleLoad = batched(loadData);

  function drawFrame() {
    dirty = false;
    if (!data) return;
    const s = slots();
    const opts = drawOptions();
    el.dataset.drawn = String(scene.draw(s, opts));
    let nb = 0;
    for (const slot of s) nb += (data.bondOffsets[slot + 1] - data.bondOffsets[slot]) / 4;
    el.dataset.bonds = String(opts.bonds ? nb : 0);
    // A point a test (or a user script) can hover: the front-most atom of panel 0.
    const shown = scene.project(s[0], 0, s.length, opts.atomScale);
    if (shown.length) {
      const front = shown.reduce((a, b) => (b.z < a.z ? b : a));
      const ratio = canvas.width / Math.max(1, canvas.clientWidth);
      el.dataset.probe = `${(front.x / ratio).toFixed(1)},${(front.y / ratio).toFixed(1)}`;
    }
  }

  function loop(now) {
    const n = model.get("n_frames") || 1;
    if (model.get("playing") && n > 1 && now - lastTick >= 1000 / Math.max(0.1, model.get("fps"))) {
      lastTick = now;
      let next = model.get("frame") + 1;
      if (next >= n) {
        if (model.get("loop")) next = 0;
        else { next = n - 1; commit("playing", false); }
      }
      if (next !== model.get("frame")) commit("frame", next);
    }
    if (dirty) drawFrame();
    raf = requestAnimationFrame(loop);
  }

  // --- hover labels ------------------------------------------------------------------------------
  function hideTip() { tip.style.display = "none"; el.dataset.hover = ""; }

  function hover(ev) {
    if (!data) return;
    const rect = canvas.getBoundingClientRect();
    const ratio = canvas.width / Math.max(1, rect.width);
    const mx = (ev.clientX - rect.left) * ratio, my = (ev.clientY - rect.top) * ratio;
    const s = slots();
    const p = Math.min(s.length - 1, Math.floor(mx / (canvas.width / s.length)));
    let best = null;
    for (const a of scene.project(s[p], p, s.length, model.get("atom_scale"))) {
      const inside = (a.x - mx) ** 2 + (a.y - my) ** 2 <= a.r * a.r;
      if (inside && (!best || a.z < best.z)) best = a;
    }
    if (!best) { hideTip(); return; }
    const o = best.i * ATOM_STRIDE, at = data.atoms;
    const symbol = (model.get("elements") || {})[String(at[o + 10])] || `Z=${at[o + 10]}`;
    const text = `${symbol} ${at[o + 11]} (${at[o + 3].toFixed(3)}, ${at[o + 4].toFixed(3)}, ${at[o + 5].toFixed(3)})`;
    tip.textContent = text;
    tip.style.display = "";
    tip.style.left = `${best.x / ratio + 12}px`;
    tip.style.top = `${best.y / ratio - 8}px`;
    el.dataset.hover = text;
  }

  // --- camera --------------------------------------------------------------------------------
  orbitControls(canvas, () => scene, () => { dirty = true; }, { hover, interrupt: hideTip });

  function resize() {
    const width = Math.max(320, Math.floor(stage.clientWidth));
    const ratio = window.devicePixelRatio || 1;
    if (Math.abs(canvas.width - width * ratio) > 1) {
      canvas.width = Math.floor(width * ratio);
      canvas.height = Math.floor(420 * ratio);
      canvas.style.width = `${width}px`;
      canvas.style.height = "420px";
      dirty = true;
    }
  }
  const unobserve = observeSize(stage, resize);

  // --- wiring ----------------------------------------------------------------------------
  const redraw = () => { dirty = true; };
  const handlers = [
    ["change:version", scheduleLoad], ["change:atoms", scheduleLoad],
    ["change:atom_offsets", scheduleLoad], ["change:bond_vertices", scheduleLoad],
    ["change:cells", scheduleLoad], ["change:panels", scheduleLoad],
    ["change:frame", syncFrame], ["change:n_frames", syncFrame],
    ["change:bonds", syncControls], ["change:cell", syncControls], ["change:images", syncControls],
    ["change:repeat", syncControls], ["change:atom_scale", syncControls],
    ["change:playing", syncControls], ["change:fps", redraw],
    ["change:message", syncMessage], ["change:frame_bounds", scheduleLoad],
    ["change:frame_info", syncInfo],
  ];
  const unlisten = listen(model, handlers);

  syncControls();
  syncMessage();
  loadData();
  resize();
  raf = requestAnimationFrame(loop);

  return () => {
    cancelAnimationFrame(raf);
    unobserve();
    unlisten();
    scene.dispose();
  };
}

export default { render };
