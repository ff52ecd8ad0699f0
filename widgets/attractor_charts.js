// attractor_charts.js: the AttractorViewer's 2-D side panels, drawn on canvases: the time
// series of trajectory 0, the Lyapunov spectrum, the orbit diagram, the Poincare section,
// and the colour bar under the picture; and the controls that go with them (drag to select
// a range, the drawn variables, the section's variable and value). After attractor_scene.js;
// see attractor.js for the whole widget.
//
// Every panel has ticks and a label on both axes. A drawn panel leaves on its canvas what it
// shows, for the view's pointer handlers and for tests: `canvas.lkAxes` (the data range of
// each axis and the plot box in canvas pixels) and `data-x-label`, `data-y-label`,
// `data-x-ticks`, `data-y-ticks`.

// The plot box inside a panel: left, top, right and bottom margins in canvas pixels (room for
// the title above, tick labels and axis labels left and below).
const BOX = { left: 58, top: 18, right: 8, bottom: 30 };
// The colour ramp of the picture's shader (attractor_scene.js: ramp()), at 0, 1/3, 2/3, 1.
const RAMP = ["rgb(69, 59, 158)", "rgb(41, 148, 184)", "rgb(120, 209, 102)", "rgb(252, 224, 64)"];
// Points of the drawn trajectories in the section, then one colour per seeding.
const SECTION_COLOURS = ["rgba(20, 40, 90, 0.5)", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd",
  "#8c564b", "#e377c2", "#17becf"];

// About `count` round values (1, 2 or 5 times a power of ten apart) within [lo, hi].
function niceTicks(lo, hi, count = 5) {
  if (!(Number.isFinite(lo) && Number.isFinite(hi)) || hi <= lo) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || 10 * power;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return ticks;
}

// A panel's frame: the title, the plot box, ticks and labels of both axes. `x` and `y` are
// { lo, hi, label, ticks? } (ticks: the values to mark, default niceTicks; `names`: text
// for each tick instead of its value). Returns the box and the data-to-pixel maps X and Y.
function frame(canvas, ctx, w, h, title, x, y) {
  const L = BOX.left, T = BOX.top, R = w - BOX.right, B = h - BOX.bottom;
  const X = (v) => L + ((v - x.lo) / ((x.hi - x.lo) || 1)) * (R - L);
  const Y = (v) => B - ((v - y.lo) / ((y.hi - y.lo) || 1)) * (B - T);
  ctx.strokeStyle = "#bbb";
  ctx.strokeRect(L + 0.5, T + 0.5, R - L, B - T);
  ctx.fillStyle = "#333";
  ctx.textAlign = "left";
  ctx.fillText(title, 4, 12);
  const xt = x.ticks || niceTicks(x.lo, x.hi, 4);
  const yt = y.ticks || niceTicks(y.lo, y.hi, 4);
  ctx.fillStyle = "#555";
  ctx.strokeStyle = "#999";
  ctx.textAlign = "center";
  xt.forEach((v, i) => {
    const px = X(v);
    ctx.beginPath(); ctx.moveTo(px, B); ctx.lineTo(px, B + 3); ctx.stroke();
    ctx.fillText(x.names ? x.names[i] : fmt(v), px, B + 13);
  });
  ctx.textAlign = "right";
  yt.forEach((v, i) => {
    const py = Y(v);
    ctx.beginPath(); ctx.moveTo(L - 3, py); ctx.lineTo(L, py); ctx.stroke();
    ctx.fillText(y.names ? y.names[i] : fmt(v), L - 5, py + 4);
  });
  ctx.textAlign = "center";
  ctx.fillStyle = "#333";
  ctx.fillText(x.label, (L + R) / 2, h - 4);
  ctx.save();
  ctx.translate(9, (T + B) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(y.label, 0, 0);
  ctx.restore();
  ctx.textAlign = "left";
  canvas.lkAxes = { x: [x.lo, x.hi], y: [y.lo, y.hi], box: [L, T, R, B] };
  Object.assign(canvas.dataset, { xLabel: x.label, yLabel: y.label,
    xTicks: (x.names || xt.map(fmt)).join(" "), yTicks: (y.names || yt.map(fmt)).join(" ") });
  return { L, T, R, B, X, Y };
}

// A pointer event's position on a canvas, in canvas pixels.
function canvasPoint(canvas, ev) {
  const rect = canvas.getBoundingClientRect();
  return [((ev.clientX - rect.left) / rect.width) * canvas.width,
    ((ev.clientY - rect.top) / rect.height) * canvas.height];
}

// The least drag, in canvas pixels, over a panel's x axis that selects a range (less: a click).
const MIN_DRAG_PX = 4;

// A drag across a drawn panel selects a range of its x axis: `moved([from, to])` (canvas
// pixels, within the plot box) while dragging, then `done([lo, hi])` in data units (null
// for a drag shorter than MIN_DRAG_PX).
function dragRange(canvas, moved, done) {
  let band = null;
  canvas.addEventListener("pointerdown", (ev) => {
    if (!dataAt(canvas, ev)) return;
    const [x] = canvasPoint(canvas, ev);
    band = [x, x];
    canvas.setPointerCapture(ev.pointerId);
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!band) return;
    const [L, , R] = canvas.lkAxes.box;
    band[1] = Math.min(Math.max(canvasPoint(canvas, ev)[0], L), R);
    moved([...band]);
  });
  canvas.addEventListener("pointerup", () => {
    if (!band) return;
    const [a, b] = [Math.min(...band), Math.max(...band)];
    band = null;
    const axes = canvas.lkAxes;
    const [L, , R] = axes.box;
    const at = (px) => axes.x[0] + ((px - L) / (R - L)) * (axes.x[1] - axes.x[0]);
    done(b - a >= MIN_DRAG_PX ? [at(a), at(b)] : null);
  });
}

// The data point under a pointer event on a drawn panel (null outside its plot box).
function dataAt(canvas, ev) {
  const axes = canvas.lkAxes;
  if (!axes) return null;
  const [px, py] = canvasPoint(canvas, ev);
  const [L, T, R, B] = axes.box;
  if (px < L || px > R || py < T || py > B) return null;
  return [axes.x[0] + ((px - L) / (R - L)) * (axes.x[1] - axes.x[0]),
    axes.y[0] + ((B - py) / (B - T)) * (axes.y[1] - axes.y[0])];
}

function drawSeries(canvas, ring, head, names) {
  const { ctx, w, h } = prepare(canvas);
  const ready = ring && ring.n && ring.next > ring.oldest;
  const first = ready ? ring.oldest : 0, count = ready ? ring.next - ring.oldest : 0;
  const at = (j, d) => ring.data[((first + j) % ring.capacity) * ring.n * SAMPLE + d];
  let lo = Infinity, hi = -Infinity;
  for (let d = 0; d < 3; d++) {
    for (let j = 0; j < count; j++) {
      const v = at(j, d);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!(hi > lo)) { lo = Number.isFinite(lo) ? lo - 1 : 0; hi = lo + 2; }
  const span = Math.max(1, ring && ring.capacity ? ring.capacity - 1 : 1);
  const t0 = ready ? ring.time(first) : 0, t1 = ready ? ring.time(first + span) : 1;
  const { L, R, T, B, X, Y } = frame(canvas, ctx, w, h, "time series (trajectory 0)",
    { lo: t0, hi: t1 > t0 ? t1 : t0 + 1, label: ready && ring.kind === "map" ? "iteration" : "time t" },
    { lo, hi, label: "value" });
  if (!ready) return;
  const colours = ["#1f77b4", "#d62728", "#2ca02c"];
  for (let d = 0; d < 3; d++) {
    if (names[d] === "0") continue;
    ctx.strokeStyle = colours[d];
    ctx.beginPath();
    for (let j = 0; j < count; j++) {
      const x = X(ring.time(first + j)), y = Y(at(j, d));
      if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
    ctx.fillStyle = colours[d];
    ctx.fillText(names[d] || "", w - 90 + 28 * d, 12);
  }
  const cx = X(ring.time(Math.min(Math.max(head, first), ring.next - 1)));
  ctx.strokeStyle = "#888";
  ctx.beginPath(); ctx.moveTo(Math.min(Math.max(cx, L), R), T); ctx.lineTo(Math.min(Math.max(cx, L), R), B); ctx.stroke();
}

function drawSpectrum(canvas, spectrum) {
  const { ctx, w, h } = prepare(canvas);
  const ex = (spectrum && spectrum.exponents) || [];
  const se = (spectrum && spectrum.stderr) || ex.map(() => 0);
  let lo = Math.min(0, ...ex.map((v, i) => v - se[i]));
  let hi = Math.max(0, ...ex.map((v, i) => v + se[i]));
  const pad = 0.08 * (hi - lo || 1); lo -= pad; hi += pad;
  const title = ex.length
    ? `Lyapunov spectrum: λ1 = ${fmt(ex[0])} ± ${fmt(se[0])}, D_KY = ${fmt(spectrum.kaplan_yorke)}`
    : "Lyapunov spectrum (mean ± s.e. over ICs)";
  const index = ex.map((_, i) => i + 1);
  const { X, Y } = frame(canvas, ctx, w, h, title,
    { lo: 0.5, hi: Math.max(1, ex.length) + 0.5, label: "exponent index i", ticks: index },
    { lo, hi, label: "λ_i (1 / time)" });
  if (!ex.length) {
    ctx.fillStyle = "#666";
    fillWrapped(ctx, spectrum && spectrum.message ? spectrum.message : "computing…", 42, h / 2, w - 52);
    return 0;
  }
  ctx.strokeStyle = "#ccc";
  ctx.beginPath(); ctx.moveTo(X(0.5), Y(0)); ctx.lineTo(X(ex.length + 0.5), Y(0)); ctx.stroke();
  ex.forEach((v, i) => {
    const x = X(i + 1);
    ctx.strokeStyle = "#333";
    ctx.beginPath(); ctx.moveTo(x, Y(v - se[i])); ctx.lineTo(x, Y(v + se[i])); ctx.stroke();
    ctx.fillStyle = v > 0 ? "#d62728" : "#1f77b4";
    ctx.beginPath(); ctx.arc(x, Y(v), 3.5, 0, 2 * Math.PI); ctx.fill();
  });
  return ex.length;
}

// The orbit diagram; `band` ([from, to] in canvas pixels, or null) is a parameter range
// being selected by a drag.
function drawOrbit(canvas, orbit, points, band = null) {
  const { ctx, w, h } = prepare(canvas);
  const name = (orbit && orbit.parameter) || "";
  const variable = (orbit && orbit.variable_name) || "x0";
  const ready = orbit && orbit.values && orbit.values.length;
  const p0 = ready ? orbit.values[0] : 0, p1 = ready ? orbit.values[orbit.values.length - 1] : 1;
  let lo = Infinity, hi = -Infinity;
  for (let i = 1; i < points.length; i += 2) {
    if (points[i] < lo) lo = points[i];
    if (points[i] > hi) hi = points[i];
  }
  if (!(hi > lo)) { lo = Number.isFinite(lo) ? lo - 1 : 0; hi = lo + 2; }
  const what = orbit && orbit.kind === "map" ? `iterates of ${variable}` : `maxima of ${variable}`;
  const zoom = ready && orbit.zoomed ? " (zoomed: drag to zoom more)" : " (drag to zoom)";
  const { T, B, X, Y } = frame(canvas, ctx, w, h, `orbit diagram over ${name}${ready ? zoom : ""}`,
    { lo: p0, hi: p1 > p0 ? p1 : p0 + 1, label: `parameter ${name}` },
    { lo, hi, label: what });
  if (!ready) {
    ctx.fillStyle = "#666";
    fillWrapped(ctx, orbit && orbit.message ? orbit.message : "computing…", 42, h / 2, w - 52);
    return 0;
  }
  ctx.fillStyle = "rgba(20, 40, 90, 0.55)";
  for (let i = 0; i + 1 < points.length; i += 2) ctx.fillRect(X(points[i]), Y(points[i + 1]), 1.2, 1.2);
  if (orbit.current >= p0 && orbit.current <= p1) {
    ctx.strokeStyle = "#d62728";
    ctx.beginPath(); ctx.moveTo(X(orbit.current), T); ctx.lineTo(X(orbit.current), B); ctx.stroke();
  }
  if (band) {
    ctx.fillStyle = "rgba(255, 127, 14, 0.25)";
    ctx.fillRect(Math.min(band[0], band[1]), T, Math.abs(band[1] - band[0]), B - T);
  }
  return points.length / 2;
}

// The Poincare section: `view` is the kernel's description (section_view), `points` float32
// [k, 3]: the two shown variables and the seeding group (0: the drawn trajectories).
function drawSection(canvas, view, points) {
  const { ctx, w, h } = prepare(canvas);
  const names = (view && view.names) || ["", ""];
  let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
  for (let i = 0; i + 2 < points.length; i += 3) {
    xlo = Math.min(xlo, points[i]); xhi = Math.max(xhi, points[i]);
    ylo = Math.min(ylo, points[i + 1]); yhi = Math.max(yhi, points[i + 1]);
  }
  const widen = (a, b) => (b > a ? [a - 0.05 * (b - a), b + 0.05 * (b - a)] : [Number.isFinite(a) ? a - 1 : -1, Number.isFinite(a) ? a + 1 : 1]);
  [xlo, xhi] = widen(xlo, xhi);
  [ylo, yhi] = widen(ylo, yhi);
  const title = !view || !view.kind ? "Poincaré section"
    : view.kind === "map" ? "iterates (click to seed there)"
      : `Poincaré section ${view.variable >= 0 ? `x${view.variable}` : ""} = ${fmt(view.value)}, upwards (click to seed)`;
  const { X, Y } = frame(canvas, ctx, w, h, title,
    { lo: xlo, hi: xhi, label: names[0] || "–" }, { lo: ylo, hi: yhi, label: names[1] || "–" });
  if (!points.length) {
    ctx.fillStyle = "#666";
    ctx.textAlign = "left";
    fillWrapped(ctx, view && view.message ? view.message : "computing…", 62, h / 2, w - 72);
    return 0;
  }
  for (let i = 0; i + 2 < points.length; i += 3) {
    const group = points[i + 2];
    ctx.fillStyle = SECTION_COLOURS[group > 0 ? 1 + ((group - 1) % (SECTION_COLOURS.length - 1)) : 0];
    const size = group > 0 ? 2.5 : 1.6;
    ctx.fillRect(X(points[i]) - size / 2, Y(points[i + 1]) - size / 2, size, size);
  }
  return points.length / 3;
}

// The colour bar under the picture: the ramp from `range[0]` to `range[1]` of `label`, with
// ticks; hidden (and empty) when `shown` is false (given series in their own colours).
function drawColourBar(canvas, label, range, shown) {
  canvas.style.display = shown ? "" : "none";
  const { ctx, w, h } = prepare(canvas);
  const [lo, hi] = range && range.length === 2 ? range : [0, 1];
  canvas.dataset.colourLabel = shown ? label : "";
  canvas.dataset.colourRange = shown ? `${fmt(lo)} ${fmt(hi)}` : "";
  if (!shown) return;
  const L = 12, R = w - 12, T = 16, H = 10;
  const gradient = ctx.createLinearGradient(L, 0, R, 0);
  RAMP.forEach((c, i) => gradient.addColorStop(i / (RAMP.length - 1), c));
  ctx.fillStyle = gradient;
  ctx.fillRect(L, T, R - L, H);
  ctx.fillStyle = "#333";
  ctx.textAlign = "left";
  ctx.fillText(`colour: ${label}`, L, 11);
  ctx.strokeStyle = "#555";
  ctx.textAlign = "center";
  const ticks = niceTicks(lo, hi, 6);
  for (const v of ticks) {
    const x = L + ((v - lo) / ((hi - lo) || 1)) * (R - L);
    ctx.beginPath(); ctx.moveTo(x, T + H); ctx.lineTo(x, T + H + 3); ctx.stroke();
    ctx.fillText(fmt(v), x, T + H + 14);
  }
  ctx.textAlign = "left";
  canvas.dataset.colourTicks = ticks.map(fmt).join(" ");
}

// ---- controls of the panels ----------------------------------------------------------------
// Three selects choosing the state variables drawn on the x, y and z axes (a row in `parent`,
// shown for systems of three or more variables); a variable chosen for an axis that another
// axis shows swaps the two, and `choose(next)` gets the new three. `fill()` follows the model.
function variableChooser(parent, model, choose) {
  const row = make("div", { class: "lk-controls lk-variables lk-catalogue" }, parent);
  make("span", { class: "lk-slider-label", text: "drawn variables" }, row);
  const selects = ["x", "y", "z"].map((axis, i) => {
    const label = make("label", { class: "lk-slider" }, row);
    make("span", { text: axis }, label);
    const select = control("select", { class: "lk-variable", "data-axis": String(i),
      "aria-label": `variable on the ${axis} axis` }, label);
    select.addEventListener("change", () => {
      const next = [...(model.get("variables") || [0, 1, 2])];
      const k = Number(select.value), j = next.indexOf(k);
      if (j >= 0 && j !== i) next[j] = next[i];
      next[i] = k;
      choose(next);
    });
    return select;
  });
  function fill() {
    const names = model.get("state_names") || [];
    const chosen = model.get("variables") || [0, 1, 2];
    row.style.display = names.length >= 3 ? "" : "none";
    selects.forEach((select, i) => {
      select.replaceChildren(...names.map((n, k) => make("option", { value: String(k), text: n })));
      select.value = String(chosen[i]);
    });
  }
  return { row, selects, fill };
}

// The Poincare section's variable (a select) and value (a slider over that variable's range):
// a row in `parent` (flows only); `choose({ variable, value? })` gets a choice. `fill()`
// follows the kernel's section_view (not while the slider is being moved).
function sectionChooser(parent, model, choose) {
  const row = make("div", { class: "lk-orbit-row lk-section-row lk-catalogue" }, parent);
  const select = control("select", { class: "lk-section-variable", "aria-label": "section variable" }, row);
  const value = slider(row, { label: "=", name: "section_value", min: 0, max: 1, step: 0.01, value: 0,
    format: fmt });
  select.addEventListener("change", () => choose({ variable: Number(select.value) }));
  value.input.addEventListener("change", () => choose({ variable: Number(select.value),
    value: Number(value.input.value) }));
  function fill() {
    const view = model.get("section_view") || {};
    const names = model.get("state_names") || [];
    const flow = view.kind !== "map" && names.length >= 3;
    select.style.display = flow ? "" : "none";
    value.row.style.display = flow && view.span ? "" : "none";
    select.replaceChildren(...names.map((n, k) => make("option", { value: String(k), text: `section: ${n}` })));
    if (view.variable >= 0) select.value = String(view.variable);
    if (view.span && document.activeElement !== value.input) {
      const [lo, hi] = view.span;
      Object.assign(value.input, { min: lo, max: hi, step: "any" });
      value.input.value = view.value;
      value.show();
    }
  }
  return { row, select, value, fill };
}
