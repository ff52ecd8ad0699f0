// attractor_charts.js: the AttractorViewer's 2-D side panels, drawn on canvases: the time
// series of trajectory 0, the Lyapunov spectrum and the orbit diagram (after
// attractor_scene.js; see attractor.js for the whole widget).

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
