// Pixels → model input, and the overlay drawing: the only per-pixel / per-point loops of the page.
// Python (ort_runtime.py, main.py) calls these through the Pyodide FFI with a handful of numbers, so
// no pixel ever crosses into Python.

const inputs = new Map();   // "WxH" → {canvas, ctx}: one scratch canvas per model input size

function inputCanvas(w, h) {
  const key = `${w}x${h}`;
  let c = inputs.get(key);
  if (!c) {
    const canvas = typeof OffscreenCanvas !== "undefined"
      ? new OffscreenCanvas(w, h)
      : Object.assign(document.createElement("canvas"), { width: w, height: h });
    const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    // "medium" (bilinear + mipmaps when shrinking) matches the CLI's PIL sampler: measured on the
    // 640x480 → 128x128 detector input, mean difference 0.5 levels; "low" (plain bilinear) aliases
    // (4.6 levels) and moves the landmarks by up to 3 % of the face width.
    ctx.imageSmoothingQuality = "medium";
    c = { canvas, ctx };
    inputs.set(key, c);
  }
  return c;
}

/**
 * Sample `source` (video, canvas, ImageBitmap) through an affine transform into a w×h input and
 * return it as NCHW float32: value = (pixel/255 − mean) / std, black outside the source.
 * (a, b, c, d, e, f) are setTransform's arguments mapping source pixels → input pixels
 * (Affine.canvas_transform() in geometry.py).
 */
export function toInput(source, a, b, c, d, e, f, w, h, mean, std, bgr) {
  const { ctx } = inputCanvas(w, h);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, w, h);
  ctx.setTransform(a, b, c, d, e, f);
  ctx.drawImage(source, 0, 0);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const n = w * h;
  const out = new Float32Array(3 * n);
  // value = pixel * k + o per channel, with k = 1/(255·std), o = −mean/std
  const k0 = 1 / (255 * std[0]), k1 = 1 / (255 * std[1]), k2 = 1 / (255 * std[2]);
  const o0 = -mean[0] / std[0], o1 = -mean[1] / std[1], o2 = -mean[2] / std[2];
  const r = bgr ? 2 * n : 0, b_ = bgr ? 0 : 2 * n;
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    out[r + i] = rgba[p] * k0 + o0;
    out[n + i] = rgba[p + 1] * k1 + o1;
    out[b_ + i] = rgba[p + 2] * k2 + o2;
  }
  return out;
}

/** Copy the current picture of `source` into `canvas` (one snapshot per processed frame, so every
 *  stage of a frame sees the same picture even while the video plays on). */
export function snapshot(source, canvas, w, h) {
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  // CPU-backed like the input canvases: the stages then copy CPU→CPU; a GPU-backed snapshot would
  // be read back once per stage (measured here: preprocess 61 ms → see bench/page_bench.py).
  const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
  ctx.drawImage(source, 0, 0, w, h);
  return canvas;
}

/**
 * Draw one frame's faces on the overlay. `faces` is an array of
 * {box:[x0,y0,x1,y1], points: Float32Array|Array (x,y,…), mesh: (x,y,…)|null, label: string}
 * in source pixels; `mirror` flips horizontally (selfie view); `scale` = overlay px per source px.
 */
export function drawFaces(canvas, faces, mirror, scale, opts = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, W, canvas.height);
  const tx = (x) => (mirror ? W - x * scale : x * scale);
  const ty = (y) => y * scale;
  const r = Math.max(1.2, (opts.radius ?? 1.6) * Math.sqrt(scale));
  for (const f of faces) {
    const [x0, y0, x1, y1] = f.box;
    const bx = Math.min(tx(x0), tx(x1)), by = ty(y0);
    const bw = Math.abs(tx(x1) - tx(x0)), bh = ty(y1) - ty(y0);
    ctx.lineWidth = 2;
    ctx.strokeStyle = opts.boxColor ?? "#3ddc97";
    ctx.strokeRect(bx, by, bw, bh);
    if (f.mesh) {
      ctx.fillStyle = opts.meshColor ?? "rgba(120, 190, 255, 0.8)";
      const m = f.mesh;
      ctx.beginPath();
      for (let i = 0; i + 1 < m.length; i += 2) {
        const x = tx(m[i]), y = ty(m[i + 1]);
        ctx.moveTo(x + r * 0.7, y);
        ctx.arc(x, y, r * 0.7, 0, 2 * Math.PI);
      }
      ctx.fill();
    }
    const p = f.points;
    ctx.fillStyle = opts.pointColor ?? "#ff4d6d";
    ctx.beginPath();
    for (let i = 0; i + 1 < p.length; i += 2) {
      const x = tx(p[i]), y = ty(p[i + 1]);
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
    ctx.fill();
    if (f.label) {
      ctx.font = `${Math.round(13 * Math.max(1, scale))}px system-ui, sans-serif`;
      const tw = ctx.measureText(f.label).width;
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(bx, Math.max(0, by - 20), tw + 8, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(f.label, bx + 4, Math.max(14, by - 6));
    }
  }
}

/** Hash bytes with SHA-256 (crypto.subtle); hex string. */
export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Clear a canvas. */
export function clear(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
}
