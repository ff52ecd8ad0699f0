// SymmetryDashboard: the browser side of labkit.widgets.SymmetryDashboard (anywidget ES module).
//
// The kernel trains LieGAN on a background thread and publishes, a few times a second,
// the learned generators (heatmaps beside the ground truth, with cosine badges), the
// history (cosine to the truth with the threshold and the first sustained crossing; the
// GAN's losses and regularizers), and the orbit of a sample of data points along exp(tL)x
// over a grid of t (float32 [T, P, 2]). A slider moves the points along their orbits here,
// at once, and sends t to the kernel. LieGG's singular values and a model's equivariance
// error versus t arrive from a second background worker. Plain SVG and canvas, no
// libraries; labkit/widgets/_assets.py puts common.js in front of this file. The same
// module runs inside Panel's AnyWidgetComponent.

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

// ---- SVG -------------------------------------------------------------------------------
function svg(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// Diverging blue - white - red for v in [-1, 1].
function diverging(v) {
  const x = Math.max(-1, Math.min(1, v || 0));
  const lo = [33, 102, 172], mid = [247, 247, 247], hi = [178, 24, 43];
  const end = x < 0 ? lo : hi;
  const f = Math.abs(x);
  const c = mid.map((m, i) => Math.round(m + (end[i] - m) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

// ---- heatmaps ----------------------------------------------------------------------------
function heatmapSvg(parent, matrix, labels, title, badge) {
  const box = make("div", { class: "lk-heat" }, parent);
  const head = make("div", { class: "lk-heat-title" }, box);
  make("span", { text: title }, head);
  if (badge) make("span", { class: `lk-badge ${badge.cls}`, text: badge.text }, head);
  const n = matrix.length;
  const cell = Math.max(10, Math.min(28, Math.floor(140 / Math.max(1, n))));
  const pad = 18;
  const size = pad + n * cell;
  const root = svg("svg", { width: size, height: size, viewBox: `0 0 ${size} ${size}`,
    class: "lk-heat-svg" }, box);
  let cells = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = matrix[i][j];
      const r = svg("rect", { x: pad + j * cell, y: pad + i * cell, width: cell - 1,
        height: cell - 1, fill: diverging(v), "data-value": String(v) }, root);
      svg("title", {}, r).textContent = `[${i}, ${j}] = ${fmt(v)}`;
      cells++;
    }
    const t = svg("text", { x: pad - 3, y: pad + i * cell + cell * 0.7, "text-anchor": "end",
      class: "lk-heat-label" }, root);
    t.textContent = labels[i] || "";
    const u = svg("text", { x: pad + i * cell + cell / 2, y: pad - 5, "text-anchor": "middle",
      class: "lk-heat-label" }, root);
    u.textContent = labels[i] || "";
  }
  return cells;
}

// ---- line plots on a canvas ---------------------------------------------------------------
// A framed plot: series [{x, y, colour, name, dash}], optional log y, horizontal and
// vertical marker lines [{at, colour, label, dash}]. Returns the number of points drawn.
function plot(canvas, { title, series = [], ylog = false, ylim = null, hlines = [], vlines = [],
  xlabel = "", empty = "waiting…", bars = false }) {
  const { ctx, w, h } = prepare(canvas);
  const L = 44, R = 8, T = 18, B = 20;
  ctx.strokeStyle = "#bbb";
  ctx.strokeRect(L + 0.5, T + 0.5, w - L - R, h - T - B);
  ctx.fillStyle = "#333";
  ctx.fillText(title, L, 12);
  const tf = (v) => (ylog ? Math.log10(Math.max(v, 1e-300)) : v);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, count = 0;
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      const yv = s.y[i];
      if (yv === null || yv === undefined || !Number.isFinite(yv) || (ylog && yv <= 0)) continue;
      x0 = Math.min(x0, s.x[i]); x1 = Math.max(x1, s.x[i]);
      y0 = Math.min(y0, tf(yv)); y1 = Math.max(y1, tf(yv));
      count++;
    }
  }
  if (!count) {
    ctx.fillStyle = "#777";
    fillWrapped(ctx, empty, L + 6, (T + h - B) / 2, w - L - R - 12);
    return 0;
  }
  if (ylim) { y0 = Math.min(y0, ylim[0]); y1 = Math.max(y1, ylim[1]); }
  for (const m of hlines) { y0 = Math.min(y0, tf(m.at)); y1 = Math.max(y1, tf(m.at)); }
  if (!(y1 > y0)) { y0 -= 0.5; y1 += 0.5; }
  if (bars) { x0 -= 0.5; x1 += 0.5; }
  if (!(x1 > x0)) { x0 -= 0.5; x1 += 0.5; }
  const pad = 0.05 * (y1 - y0); y0 -= pad; y1 += pad;
  const X = (v) => L + ((v - x0) / (x1 - x0)) * (w - L - R);
  const Y = (v) => h - B - ((tf(v) - y0) / (y1 - y0)) * (h - T - B);
  ctx.fillStyle = "#555";
  const tick = (v) => (ylog ? `1e${Math.round(v)}` : fmt(v));
  ctx.fillText(tick(y1), 2, T + 8);
  ctx.fillText(tick(y0), 2, h - B);
  ctx.fillText(`${fmt(x0 + (bars ? 0.5 : 0))}`, L, h - 6);
  const right = `${fmt(x1 - (bars ? 0.5 : 0))} ${xlabel}`;
  ctx.fillText(right, w - R - ctx.measureText(right).width, h - 6);
  for (const m of hlines) {
    ctx.strokeStyle = m.colour || "#888";
    ctx.setLineDash(m.dash || [4, 3]);
    ctx.beginPath(); ctx.moveTo(L, Y(m.at)); ctx.lineTo(w - R, Y(m.at)); ctx.stroke();
    if (m.label) { ctx.fillStyle = m.colour || "#888"; ctx.fillText(m.label, L + 4, Y(m.at) - 3); }
  }
  ctx.setLineDash([]);
  for (const s of series) {
    ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour;
    ctx.setLineDash(s.dash || []);
    if (bars) {
      const bw = Math.max(2, ((w - L - R) / (x1 - x0)) * 0.7);
      for (let i = 0; i < s.x.length; i++) {
        if (!(s.y[i] > 0) && ylog) continue;
        const top = Y(s.y[i]);
        ctx.fillRect(X(s.x[i]) - bw / 2, top, bw, h - B - top);
      }
      continue;
    }
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < s.x.length; i++) {
      const yv = s.y[i];
      if (yv === null || yv === undefined || !Number.isFinite(yv) || (ylog && yv <= 0)) { pen = false; continue; }
      if (pen) ctx.lineTo(X(s.x[i]), Y(yv)); else ctx.moveTo(X(s.x[i]), Y(yv));
      pen = true;
    }
    ctx.stroke();
    ctx.lineWidth = 1;
  }
  ctx.setLineDash([]);
  for (const m of vlines) {
    ctx.strokeStyle = m.colour || "#2ca02c";
    ctx.setLineDash(m.dash || []);
    ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(X(m.at), T); ctx.lineTo(X(m.at), h - B); ctx.stroke();
    ctx.lineWidth = 1;
    ctx.setLineDash([]);
    if (m.label) { ctx.fillStyle = m.colour || "#2ca02c"; ctx.fillText(m.label, Math.min(X(m.at) + 4, w - 90), h - B - 6); }
  }
  // legend
  let lx = L + ctx.measureText(title).width + 12;
  for (const s of series) {
    if (!s.name) continue;
    ctx.fillStyle = s.colour;
    ctx.fillRect(lx, 5, 10, 8);
    ctx.fillStyle = "#333";
    ctx.fillText(s.name, lx + 13, 12);
    lx += 20 + ctx.measureText(s.name).width;
  }
  return count;
}

// ---- the widget --------------------------------------------------------------------------
function render({ model, el }) {
  el.classList.add("lk-widget", "lk-symmetry");
  keepKeys(el);
  const commit = (name, value) => save(model, name, value);

  const bar = make("div", { class: "lk-bar" }, el);
  const dataset = control("select", { class: "lk-dataset", "aria-label": "data set" }, bar);
  const startBtn = make("button", { class: "lk-start", type: "button" }, bar);
  const resetBtn = make("button", { class: "lk-reset", type: "button", text: "↺ reset" }, bar);
  const status = make("span", { class: "lk-status", role: "status" }, bar);
  const description = make("div", { class: "lk-description" }, el);
  const message = make("div", { class: "lk-message" }, el);
  const verdict = make("div", { class: "lk-verdict" }, el);

  const heat = make("div", { class: "lk-heatmaps" }, el);
  const row1 = make("div", { class: "lk-row" }, el);
  const traceCanvas = make("canvas", { class: "lk-traces", width: 420, height: 190 }, row1);
  const healthCanvas = make("canvas", { class: "lk-health", width: 420, height: 190 }, row1);

  const row2 = make("div", { class: "lk-row" }, el);
  const orbitBox = make("div", { class: "lk-orbit-box" }, row2);
  const orbitBar = make("div", { class: "lk-orbit-bar" }, orbitBox);
  const source = control("select", { class: "lk-orbit-source", "aria-label": "orbit generator" }, orbitBar);
  for (const s of ["learned", "reference"]) make("option", { value: s, text: `orbit: ${s} L` }, source);
  const tLabel = make("label", { class: "lk-slider" }, orbitBar);
  make("span", { text: "t" }, tLabel);
  const tSlider = control("input", { type: "range", class: "lk-orbit-t", "aria-label": "orbit t",
    min: -3.14159, max: 3.14159, step: 0.01 }, tLabel);
  const tReadout = make("span", { class: "lk-readout" }, tLabel);
  const orbitSvg = svg("svg", { class: "lk-orbit", width: 300, height: 260, viewBox: "0 0 300 260" }, orbitBox);
  const curveBox = make("div", { class: "lk-curve-box" }, row2);
  const modelSelect = control("select", { class: "lk-model", "aria-label": "model" }, curveBox);
  const curveCanvas = make("canvas", { class: "lk-curve", width: 330, height: 236 }, curveBox);
  const spectrumCanvas = make("canvas", { class: "lk-spectrum", width: 330, height: 260 }, row2);

  // --- controls ------------------------------------------------------------------------------
  dataset.addEventListener("change", () => commit("dataset", dataset.value));
  startBtn.addEventListener("click", () => commit("running", !model.get("running")));
  resetBtn.addEventListener("click", () => commit("resets", (model.get("resets") || 0) + 1));
  source.addEventListener("change", () => commit("orbit_source", source.value));
  modelSelect.addEventListener("change", () => commit("model", modelSelect.value));

  function fillSelects() {
    const names = model.get("datasets") || [];
    dataset.replaceChildren(...names.map((n) => make("option", { value: n, text: n })));
    dataset.value = model.get("dataset");
    const models = model.get("models") || [];
    modelSelect.replaceChildren(...models.map((n) => make("option", { value: n, text: `model: ${n}` })));
    modelSelect.value = model.get("model");
    source.value = model.get("orbit_source");
  }

  function syncStatus() {
    const running = !!model.get("running");
    const st = model.get("status") || "idle";
    startBtn.textContent = running ? "■ stop" : "▶ start";
    const busy = model.get("busy") || "";
    status.textContent = `${st} · step ${model.get("step")} / ${model.get("total")}` +
      ` · ${fmt(model.get("seconds") || 0)} s${busy ? ` · ${busy}` : ""}`;
    el.dataset.status = st;
    el.dataset.running = String(running);
    el.dataset.step = String(model.get("step"));
    el.dataset.busy = busy;
  }

  function syncText() {
    description.textContent = model.get("description") || "";
    const text = model.get("message") || "";
    showText(message, text);
    el.dataset.message = text;
    const v = model.get("verdict") || {};
    verdict.replaceChildren();
    if (v.label) {
      make("span", { class: `lk-badge ${v.symmetric ? "lk-pass" : "lk-fail"}`, text: v.label }, verdict);
      make("span", { text: ` ${v.reason || ""}${v.note ? ` (${v.note})` : ""}` }, verdict);
    }
    el.dataset.verdict = v.label || "";
  }

  // --- heatmaps ------------------------------------------------------------------------------
  function drawHeatmaps() {
    const h = model.get("heatmap") || {};
    heat.replaceChildren();
    let cells = 0;
    const labels = h.labels || [];
    const learned = h.learned || [];
    const scores = h.scores || [];
    const group = make("div", { class: "lk-heat-group" }, heat);
    make("div", { class: "lk-heat-caption", text: "learned" }, group);
    const row = make("div", { class: "lk-heat-row" }, group);
    learned.slice(0, 6).forEach((m, i) => {
      const s = scores[i];
      const badge = s === null || s === undefined ? null
        : { text: `cos ${fmt(s)}`, cls: h.passed && h.passed[i] ? "lk-pass" : "lk-fail" };
      cells += heatmapSvg(row, m, labels, `L${i + 1}`, badge);
    });
    const reference = h.reference || [];
    if (reference.length) {
      const g2 = make("div", { class: "lk-heat-group" }, heat);
      make("div", { class: "lk-heat-caption", text: `ground truth (${reference.length})` }, g2);
      const row2 = make("div", { class: "lk-heat-row" }, g2);
      reference.slice(0, 6).forEach((m, i) => { cells += heatmapSvg(row2, m, labels, `T${i + 1}`, null); });
    }
    el.dataset.heatmapCells = String(cells);
  }

  // --- traces ----------------------------------------------------------------------------------
  // Why the cosine plot has no point yet, at this stage of the run (it used to ask for a
  // press of start after a run had finished, on data with no ground truth to compare with).
  function cosineEmpty() {
    const heat = model.get("heatmap") || {};
    const status = model.get("status") || "idle";
    if (heat.learned && !(heat.reference || []).length) {
      return `${model.get("dataset") || "this data set"} has no ground-truth generator, so there is ` +
        "no cosine to plot; the verdict and the LieGG spectrum judge the run without one";
    }
    if (status === "idle") return "no evaluations yet: press ▶ start";
    if (status === "running" || status === "stopping") return "training: the first evaluation of the cosine is on its way";
    if (status === "error") return "the run failed before the first evaluation of the cosine (see the message above)";
    return `the run ${status} at step ${model.get("step")} before the first evaluation of the cosine`;
  }

  function drawTraces() {
    const tr = model.get("traces") || {};
    const steps = tr.cosine_steps || [];
    const vlines = [];
    if (tr.sustained_step !== null && tr.sustained_step !== undefined) {
      vlines.push({ at: tr.sustained_step, colour: "#2ca02c", label: `sustained @ ${tr.sustained_step}` });
    }
    const n = plot(traceCanvas, {
      title: "cosine to the truth", xlabel: "step", ylim: [0, 1],
      series: [{ x: steps, y: tr.cosine || [], colour: "#1f77b4" }],
      hlines: tr.threshold !== undefined ? [{ at: tr.threshold, colour: "#d62728",
        label: `threshold ${fmt(tr.threshold)} × ${tr.window} evals` }] : [],
      vlines, empty: cosineEmpty(),
    });
    const names = ["loss_d", "loss_g", "reg_ortho", "reg_nontrivial"];
    const x = tr.steps || [];
    const m = plot(healthCanvas, {
      title: "GAN health", xlabel: "step",
      series: names.map((k, i) => ({ x, y: tr[k] || [], colour: COLOURS[i], name: k })),
      empty: "no steps yet",
    });
    el.dataset.traces = String(n);
    el.dataset.cosineNote = n ? "" : cosineEmpty();
    el.dataset.health = String(m);
    el.dataset.sustained = tr.sustained_step === null || tr.sustained_step === undefined
      ? "" : String(tr.sustained_step);
    el.dataset.lastStep = tr.last_step === null || tr.last_step === undefined ? "" : String(tr.last_step);
  }

  // --- orbit explorer --------------------------------------------------------------------------
  let orbit = { meta: {}, pts: new Float32Array(0) };
  let circles = [];

  function loadOrbit() {
    const meta = model.get("orbit") || {};
    orbit = { meta, pts: floats(model.get("orbit_points")) };
    const ts = meta.ts || [];
    if (ts.length) {
      tSlider.min = String(ts[0]);
      tSlider.max = String(ts[ts.length - 1]);
      tSlider.step = String((ts[ts.length - 1] - ts[0]) / 400);
    }
    orbitSvg.replaceChildren();
    circles = [];
    const [T, P] = meta.shape || [0, 0];
    if (!T || orbit.pts.length !== T * P * 2) {
      const t = svg("text", { x: 20, y: 130, class: "lk-empty" }, orbitSvg);
      t.textContent = meta.message || "waiting for the orbit…";
      el.dataset.orbitPoints = "0";
      return;
    }
    const [x0, x1, y0, y1] = meta.bounds;
    const span = Math.max(x1 - x0, y1 - y0, 1e-9) * 1.1;
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    const W = 300, H = 260, S = Math.min(W, H) - 30;
    orbit.X = (v) => W / 2 + ((v - cx) / span) * S;
    orbit.Y = (v) => H / 2 + 6 - ((v - cy) / span) * S;
    svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#fbfbfd" }, orbitSvg);
    const cap = svg("text", { x: 6, y: 14, class: "lk-axis" }, orbitSvg);
    cap.textContent = `${(meta.labels || []).join(" vs ")} · ${meta.source || ""} generator`;
    // Faint full orbits, then the moving points.
    for (let p = 0; p < P; p++) {
      let d = "";
      for (let j = 0; j < T; j++) {
        const k = (j * P + p) * 2;
        d += `${j ? "L" : "M"}${orbit.X(orbit.pts[k]).toFixed(1)},${orbit.Y(orbit.pts[k + 1]).toFixed(1)}`;
      }
      svg("path", { d, class: "lk-orbit-path" }, orbitSvg);
    }
    for (let p = 0; p < P; p++) {
      circles.push(svg("circle", { r: 3.2, class: "lk-orbit-point", fill: COLOURS[p % COLOURS.length] }, orbitSvg));
    }
    el.dataset.orbitPoints = String(P);
    placePoints(Number(tSlider.value));
  }

  // Positions at t, linearly interpolated between the grid values of t.
  function placePoints(t) {
    const meta = orbit.meta;
    const ts = meta.ts || [];
    const [T, P] = meta.shape || [0, 0];
    tReadout.textContent = fmt(Math.abs(t) < 1e-9 ? 0 : t);
    el.dataset.orbitT = String(t);
    if (!T || !circles.length) return;
    let j = 0;
    while (j < T - 2 && ts[j + 1] < t) j++;
    const f = Math.max(0, Math.min(1, (t - ts[j]) / ((ts[j + 1] - ts[j]) || 1)));
    let first = "";
    for (let p = 0; p < P; p++) {
      const a = (j * P + p) * 2, b = ((j + 1) * P + p) * 2;
      const x = orbit.pts[a] + f * (orbit.pts[b] - orbit.pts[a]);
      const y = orbit.pts[a + 1] + f * (orbit.pts[b + 1] - orbit.pts[a + 1]);
      circles[p].setAttribute("cx", orbit.X(x).toFixed(2));
      circles[p].setAttribute("cy", orbit.Y(y).toFixed(2));
      if (p === 0) first = `${x.toFixed(4)},${y.toFixed(4)}`;
    }
    el.dataset.orbitFirst = first;
  }

  let sendTimer = 0;
  tSlider.addEventListener("input", () => {
    placePoints(Number(tSlider.value));
    if (!sendTimer) {
      sendTimer = setTimeout(() => { sendTimer = 0; commit("orbit_t", Number(tSlider.value)); }, 120);
    }
  });
  tSlider.addEventListener("change", () => commit("orbit_t", Number(tSlider.value)));

  function syncOrbitT() {
    const t = Number(model.get("orbit_t"));
    if (Math.abs(Number(tSlider.value) - t) > 1e-9) tSlider.value = String(t);
    placePoints(t); // exactly the kernel's t (the slider snaps to its step grid)
  }

  // --- equivariance curve and LieGG spectrum -------------------------------------------------
  function drawCurve() {
    const c = model.get("curve") || {};
    const names = Object.keys(c.curves || {});
    const n = plot(curveCanvas, {
      title: "invariance error vs t", xlabel: "t",
      series: names.map((k, i) => ({ x: c.t, y: c.curves[k].mean, colour: COLOURS[i], name: k })),
      empty: c.message || "computing…",
    });
    el.dataset.curve = String(n);
  }

  function drawSpectrum() {
    const s = model.get("spectrum") || {};
    const values = s.values || [];
    const vlines = s.gap === null || s.gap === undefined ? []
      : [{ at: s.gap - 0.5, colour: "#d62728", dash: [4, 3], label: `gap ×${fmt(s.ratio)}` }];
    const n = plot(spectrumCanvas, {
      title: "LieGG singular values", ylog: true, bars: true, xlabel: "index",
      series: [{ x: values.map((_, i) => i), y: values, colour: "#555" }],
      vlines, empty: s.message || "computing…",
    });
    el.dataset.spectrum = String(n);
    el.dataset.gap = s.gap === null || s.gap === undefined ? "" : String(s.gap);
  }

  function onVersion() { el.dataset.version = String(model.get("version")); }

  // --- wiring ----------------------------------------------------------------------------
  const handlers = [
    ["change:datasets", fillSelects], ["change:dataset", fillSelects], ["change:models", fillSelects],
    ["change:model", fillSelects], ["change:orbit_source", fillSelects],
    ["change:status", syncStatus], ["change:running", syncStatus], ["change:step", syncStatus],
    ["change:total", syncStatus], ["change:seconds", syncStatus], ["change:busy", syncStatus],
    ["change:status", drawTraces], ["change:heatmap", drawTraces],
    ["change:description", syncText], ["change:message", syncText], ["change:verdict", syncText],
    ["change:heatmap", drawHeatmaps], ["change:traces", drawTraces],
    ["change:orbit", loadOrbit], ["change:orbit_points", loadOrbit], ["change:orbit_t", syncOrbitT],
    ["change:curve", drawCurve], ["change:spectrum", drawSpectrum], ["change:version", onVersion],
  ];
  const unlisten = listen(model, handlers);

  fillSelects();
  syncStatus();
  syncText();
  drawHeatmaps();
  drawTraces();
  tSlider.value = String(model.get("orbit_t") || 0);
  loadOrbit();
  drawCurve();
  drawSpectrum();
  onVersion();

  return () => {
    if (sendTimer) clearTimeout(sendTimer);
    unlisten();
  };
}

export default { render };
