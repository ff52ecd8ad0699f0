// attractor_ring.js: the AttractorViewer's samples in the browser (after common.js, before
// attractor_scene.js; see attractor.js for the whole widget).
//
// A catalogue system arrives as a stream of segments (the `segment` bytes: a JSON header,
// then float32 samples [count, n_ic, 4] = x, y, z, raw colour value). Each segment holds
// only the newest samples of every trajectory; they are appended to a ring that keeps the
// last `capacity` samples of each. The ring lives in a per-widget store made when the model
// is created (anywidget's `initialize`), so samples that arrive before a view is shown are
// kept and every view of the widget shares them. The store acknowledges each segment and
// says how far its views want samples; it asks for the whole ring (`resync`) when it has
// missed a segment (a reloaded page). Given series become a ring of their own.

// Floats per sample: x, y, z and the colour value (one RGBA32F texel).
const SAMPLE = 4;
// A view that asked for the whole ring asks again if nothing came within this time.
const RESYNC_RETRY_MS = 3000;

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

// A request to the kernel: a custom message where the toolkit has them (no state update, so
// no echo, and not held behind ipywidgets' one-message-at-a-time throttle), else the field.
function tell(model, name, value) {
  if (typeof model.send === "function") model.send({ [name]: value });
  else save(model, name, value);  // Panel's adapter has no custom messages
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
