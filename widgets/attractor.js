// AttractorViewer: the browser side of labkit.widgets.AttractorViewer (anywidget ES module).
//
// The module is assembled by labkit/widgets/_assets.py: common.js, attractor_ring.js (the
// samples: a stream of segments into a ring shared by the widget's views),
// attractor_scene.js (the WebGL picture), attractor_charts.js (the 2-D side panels), then
// this file (the view and its controls).
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
// alpha fading along the tail. Controls set model state and the kernel answers each change
// (no "update" button): step (pause, one sample on), reset (back to the initial states),
// new ICs, the three variables drawn; a drag over the orbit diagram zooms it, a click on the
// Poincare section seeds trajectories there (a custom message, `seed_at`). A colour bar
// under the picture; the status says what the picture cost in the kernel and, for a change
// made here, how long until a frame showed it. The same module runs inside Panel's
// AnyWidgetComponent, whose model adapter has the same API.
//
// Given series ("series" mode: a true series beside a model's free run) still arrive whole,
// in the `positions`/`colors`/`valid` buffers, and are drawn through the same ring: each
// series is cut into stretches drawn as comets. Their colour value >= 2 is an entry of the
// discrete PALETTE (series colour or symbolic code), values in [0, 1] the ramp. Diverged
// trajectories are red. The catalogue controls are hidden in that mode.

// While a parameter slider is dragged, the kernel hears its value at most this often.
const DRAG_COMMIT_MS = 120;
// Samples the kernel may send ahead of a playing animation's head: this many seconds of
// playback at 60 frames per second, and never less than two tails.
const LEAD_SECONDS = 2;
// Inputs that change the picture: a commit of one starts the "view ready" clock.
const PICTURE_INPUTS = new Set(["system", "parameters", "n_ic", "periods", "color_by", "variables",
  "restarts", "resets", "steps"]);

// ---- the widget --------------------------------------------------------------------------
function render({ model, el }) {
  el.classList.add("lk-widget", "lk-attractor");
  const bar = make("div", { class: "lk-bar" }, el);
  const search = make("input", { type: "search", class: "lk-search lk-catalogue", placeholder: "search systems…",
    "aria-label": "search systems" }, bar);
  const select = control("select", { class: "lk-system lk-catalogue", "aria-label": "system" }, bar);
  const colour = control("select", { class: "lk-colour", "aria-label": "colour by" }, bar);
  const play = make("button", { class: "lk-play", type: "button" }, bar);
  const step = make("button", { class: "lk-step lk-catalogue", type: "button", text: "▶| step",
    title: "pause, and continue every trajectory by one sample" }, bar);
  const reset = make("button", { class: "lk-reset lk-catalogue", type: "button", text: "⇤ reset",
    title: "put every trajectory back at its initial state, at t = 0" }, bar);
  const restart = make("button", { class: "lk-restart lk-catalogue", type: "button", text: "↺ new ICs",
    title: "draw new initial conditions and start at t = 0 (drops seeded trajectories)" }, bar);
  const status = make("span", { class: "lk-status" }, bar);

  const general = make("div", { class: "lk-controls" }, el);
  // The most trajectories comes from the kernel (max_ic), which checks n_ic against it.
  const nIc = slider(general, { label: "trajectories", name: "n_ic", min: 1, max: model.get("max_ic"),
    step: 1, value: model.get("n_ic"), format: (v) => `${v}` });
  const length = slider(general, { label: "length (periods)", name: "periods", min: 1, max: 100, step: 1,
    value: model.get("periods"), format: (v) => `${v}` });
  const speed = slider(general, { label: "speed", name: "speed", min: 0.1, max: 10, step: 0.1,
    value: model.get("speed"), format: (v) => `${fmt(v)}×` });
  const tail = slider(general, { label: "tail", name: "tail", min: 2, max: 1000, step: 1,
    value: model.get("tail"), format: (v) => `${v}` });
  nIc.row.classList.add("lk-catalogue");
  length.row.classList.add("lk-catalogue");
  const variables = variableChooser(el, model, (next) => commit("variables", next));
  const params = make("div", { class: "lk-controls lk-params lk-catalogue" }, el);
  const legend = make("div", { class: "lk-controls lk-legend" }, el);
  const metrics = make("div", { class: "lk-metrics", role: "status" }, el);
  const message = make("div", { class: "lk-message", role: "status" }, el);

  const main = make("div", { class: "lk-main" }, el);
  const picture = make("div", { class: "lk-picture" }, main);
  let canvas = make("canvas", { class: "lk-canvas", width: 640, height: 440 }, picture);
  const colourBar = make("canvas", { class: "lk-colourbar", width: 640, height: 44 }, picture);
  const side = make("div", { class: "lk-side" }, main);
  const series = make("canvas", { class: "lk-series", width: 340, height: 150 }, side);
  const spectrumCanvas = make("canvas", { class: "lk-spectrum lk-catalogue", width: 340, height: 160 }, side);
  const orbitRow = make("div", { class: "lk-orbit-row lk-catalogue" }, side);
  const orbitSelect = control("select", { class: "lk-orbit-parameter", "aria-label": "orbit diagram parameter" }, orbitRow);
  const orbitReset = make("button", { class: "lk-orbit-reset", type: "button", text: "reset zoom",
    title: "the orbit diagram over the slider's whole range" }, orbitRow);
  const orbitCanvas = make("canvas", { class: "lk-orbit lk-catalogue", width: 340, height: 170 }, side);
  const sectionControls = sectionChooser(side, model, (section) => commit("section", section));
  const sectionCanvas = make("canvas", { class: "lk-section lk-catalogue", width: 340, height: 200 }, side);

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
      message.textContent = NO_WEBGL;
    }
  }
  // The worker could not draw: a fresh canvas (the old one belongs to the worker) drawn here.
  function fallBack(why) {
    console.warn(`labkit attractor: drawing on the page instead of a worker (${why})`);
    const fresh = make("canvas", { class: "lk-canvas", width: 640, height: 440 });
    canvas.replaceWith(fresh);
    canvas = fresh;
    watchCamera();
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
  let sectionPoints = new Float32Array(0);
  let band = null;               // the orbit diagram's range being dragged: [from, to] pixels
  let clicks = 0;                // clicks on the section sent to the kernel
  let pending = null;            // the newest picture change made here: { at, version }
  let ready = null;              // the last one shown: { version, seconds }
  let barRange = "";             // the range the colour bar shows

  // Set inputs and send them; a picture input starts the "view ready" clock.
  function commitAll(values) {
    if (Object.keys(values).some((name) => PICTURE_INPUTS.has(name))) {
      pending = { at: performance.now(), version: model.get("version") };
    }
    for (const [name, value] of Object.entries(values)) model.set(name, value);
    model.save_changes();
  }
  const commit = (name, value) => commitAll({ [name]: value });
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
  step.addEventListener("click", () => commitAll({ playing: false, steps: (model.get("steps") || 0) + 1 }));
  reset.addEventListener("click", () => commit("resets", (model.get("resets") || 0) + 1));
  restart.addEventListener("click", () => commit("restarts", (model.get("restarts") || 0) + 1));

  function fillVariables() {
    variables.fill();
    el.dataset.variables = (model.get("variables") || []).join(",");
  }

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
    showText(metrics, text);
    el.dataset.readout = text;
  }

  // --- the Poincare section: its variable and value; a click seeds trajectories there -------
  function loadSection() {
    sectionPoints = floats(model.get("section_points"));
    el.dataset.section = String(drawSection(sectionCanvas, model.get("section_view"), sectionPoints));
    sectionControls.fill();
  }
  sectionCanvas.addEventListener("click", (ev) => {
    const point = dataAt(sectionCanvas, ev);
    if (!point || !sectionPoints.length) return;
    clicks += 1;
    el.dataset.seedClicks = String(clicks);
    pending = { at: performance.now(), version: model.get("version") };
    tell(model, "seed_at", [point[0], point[1], clicks]);
  });

  // --- the orbit diagram: drag over a parameter range to zoom there -----------------------
  dragRange(orbitCanvas, (dragged) => {
    band = dragged;
    drawOrbit(orbitCanvas, model.get("orbit"), orbitPoints, band);
  }, (range) => {
    band = null;
    if (range) commit("orbit_range", range);
    loadOrbit();
  });
  orbitReset.addEventListener("click", () => commit("orbit_range", []));

  function syncColourBar() {
    const palette = isSeries() && model.get("color_by") !== "time";
    const range = !isSeries() && stream.n ? stream.range : model.get("color_range");
    barRange = String(range);
    drawColourBar(colourBar, model.get("color_quantity") || model.get("color_by"), range, !palette);
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
    el.dataset.resets = String(model.get("resets") || 0);
    el.dataset.steps = String(model.get("steps") || 0);
    dirty = true;
  }

  // What the last picture cost: the kernel's line (compute time, first samples), and for a
  // change made here the time from it to the first frame that showed it.
  function syncStatus() {
    const busy = model.get("busy") || "";
    const line = model.get("status") || `${fmt(model.get("seconds") || 0)} s of compute`;
    const shownHere = ready && ready.version === model.get("version")
      ? `view ready ${fmt(ready.seconds)} s after the change` : "";
    status.textContent = [busy || line, shownHere].filter(Boolean).join("; ");
    el.dataset.busy = busy;
    el.dataset.status = status.textContent;
  }

  function syncMessage() {
    const text = model.get("message") || "";
    showText(message, text);
    el.dataset.message = text;
  }

  // --- data --------------------------------------------------------------------------------
  // Draw `source` (a Ring) from now on: all of it goes to the GPU.
  function show(source) {
    ring = source;
    if (!ring.n) return;
    scene.load(ring);
    // A paused view shows the newest samples (else one whose samples came before its first
    // draw would stay at the first sample, blank).
    head = model.get("playing") ? Math.max(ring.oldest, Math.min(head, ring.next - 1)) : ring.next - 1;
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
    if (String(stream.range) !== barRange) syncColourBar();
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

  const scheduleSeries = batched(loadSeries);

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
    if (pending && version > pending.version) {
      ready = { version, seconds: (performance.now() - pending.at) / 1000 };
      el.dataset.readyMs = String(Math.round(1000 * ready.seconds));
      pending = null;
      syncStatus();
    }
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
    const orbit = model.get("orbit") || {};
    el.dataset.orbit = String(drawOrbit(orbitCanvas, orbit, orbitPoints, band));
    el.dataset.orbitRange = (orbit.range || []).map(fmt).join(" ");
    orbitReset.disabled = !orbit.zoomed;
  }

  // --- camera --------------------------------------------------------------------------------
  // The canvas of the moment (a fallback replaces it) turns the scene of the moment.
  function watchCamera() {
    orbitControls(canvas, () => scene, () => { dirty = true; });
  }
  watchCamera();

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
      colourBar.width = width;
      colourBar.style.width = `${width}px`;
      syncColourBar();
      dirty = true;
    }
  }
  const unobserve = observeSize(main, resize);

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
    ["change:busy", syncStatus], ["change:seconds", syncStatus], ["change:status", syncStatus],
    ["change:resets", syncControls], ["change:steps", syncControls],
    ["change:variables", fillVariables], ["change:state_names", fillVariables],
    ["change:state_names", loadSection], ["change:section_view", loadSection],
    ["change:section_points", loadSection],
    ["change:color_quantity", syncColourBar], ["change:color_range", syncColourBar],
    ["change:mode", syncColourBar], ["change:seeded", () => { el.dataset.seeded = String(model.get("seeded")); }],
    ["change:message", syncMessage],
    ["change:mode", syncMode], ["change:series_names", fillLegend], ["change:legend", fillLegend],
    ["change:hidden", fillLegend], ["change:color_by", fillLegend], ["change:readout", syncReadout],
    ["change:spectrum", loadSpectrum],
    ["change:orbit", loadOrbit], ["change:orbit_points", loadOrbit],
  ];
  const unlisten = listen(model, handlers);

  fillSystems();
  fillParams();
  syncMode();
  syncReadout();
  syncControls();
  syncStatus();
  syncMessage();
  loadSpectrum();
  loadOrbit();
  fillVariables();
  loadSection();
  resize();
  syncColourBar();
  raf = requestAnimationFrame(loop);

  return () => {
    cancelAnimationFrame(raf);
    clearTimeout(dragTimer);
    stream.listeners.delete(onSegment);
    stream.wants.delete(viewKey);
    if (stream.model === model) stream.model = stream.owner;
    scene.dispose();
    unobserve();
    unlisten();
  };
}

export default { initialize, render };
