// Pixels → model input, and the overlay drawing: the only per-pixel / per-point loops of the page.
// The page's Python (ort_runtime.py, frame_loop.py, output.py, photo.py) calls these through the
// Pyodide FFI with a handful of numbers, so no pixel ever crosses into Python.

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
 * Draw one frame's faces on the overlay. `faces` is the frame's published result (the `faces` of the
 * window "faces" event): [{box:[x0,y0,x1,y1], landmarks:[[x,y],…], mesh?:[[x,y,z],…], label?}]
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
  const dots = (points, radius) => {
    ctx.beginPath();
    for (const [px, py] of points) {
      const x = tx(px), y = ty(py);
      ctx.moveTo(x + radius, y);
      ctx.arc(x, y, radius, 0, 2 * Math.PI);
    }
    ctx.fill();
  };
  for (const f of faces) {
    const [x0, y0, x1, y1] = f.box;
    const bx = Math.min(tx(x0), tx(x1)), by = ty(y0);
    const bw = Math.abs(tx(x1) - tx(x0)), bh = ty(y1) - ty(y0);
    ctx.lineWidth = 2;
    ctx.strokeStyle = opts.boxColor ?? "#3ddc97";
    ctx.strokeRect(bx, by, bw, bh);
    if (f.mesh) {
      ctx.fillStyle = opts.meshColor ?? "rgba(120, 190, 255, 0.8)";
      dots(f.mesh, r * 0.7);
    }
    ctx.fillStyle = opts.pointColor ?? "#ff4d6d";
    dots(f.landmarks, r);
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

/**
 * Width and height of a PNG, JPEG, GIF or WebP file from its first bytes, without decoding it
 * (so a picture too large to decode can be refused first); null for anything else.
 */
export async function imageSize(file) {
  const b = new Uint8Array(await file.slice(0, 256 * 1024).arrayBuffer());
  const u16 = (i) => (b[i] << 8) | b[i + 1];
  const u32 = (i) => ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
  const le16 = (i) => b[i] | (b[i + 1] << 8);
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return { width: u32(16), height: u32(20) };                       // PNG: IHDR
  }
  if (b.length >= 10 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) {
    return { width: le16(6), height: le16(8) };                       // GIF: logical screen
  }
  if (b.length >= 30 && b[0] === 0x52 && b[1] === 0x49 && b[8] === 0x57 && b[9] === 0x45) {   // RIFF WEBP
    const kind = String.fromCharCode(b[12], b[13], b[14], b[15]);
    if (kind === "VP8X") return { width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
    if (kind === "VP8 ") return { width: le16(26) & 0x3fff, height: le16(28) & 0x3fff };
    if (kind === "VP8L") {
      const v = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      return { width: (v & 0x3fff) + 1, height: ((v >> 14) & 0x3fff) + 1 };
    }
    return null;
  }
  if (b[0] === 0xff && b[1] === 0xd8) {                                // JPEG: first SOFn marker
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) { i++; continue; }
      const marker = b[i + 1];
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: u16(i + 7), height: u16(i + 5) };
      }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
      i += 2 + u16(i + 2);
    }
  }
  return null;
}

/**
 * `bitmap` scaled to w×h in a CPU-backed canvas, drawn in horizontal strips with a pause between
 * them, so that scaling a large photo never holds the main thread for long (createImageBitmap's
 * own resize options run on the main thread here: ~1 s for 48 MP → 12 MP). `strips` ≥ 1.
 */
export async function downscale(bitmap, w, h, strips) {
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "medium";
  const sh = bitmap.height / strips;
  for (let i = 0; i < strips; i++) {
    const y0 = Math.floor(i * sh), y1 = i + 1 === strips ? bitmap.height : Math.floor((i + 1) * sh);
    const dy0 = Math.floor((y0 * h) / bitmap.height), dy1 = Math.floor((y1 * h) / bitmap.height);
    // one source row of overlap each side, so the strips' seams are filtered like the inside
    const sy0 = Math.max(0, y0 - 1), sy1 = Math.min(bitmap.height, y1 + 1);
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, dy0, w, dy1 - dy0);
    ctx.clip();
    ctx.drawImage(bitmap, 0, sy0, bitmap.width, sy1 - sy0, 0, (sy0 * h) / bitmap.height, w, ((sy1 - sy0) * h) / bitmap.height);
    ctx.restore();
    await new Promise((r) => setTimeout(r, 0));
  }
  return canvas;
}

// ---- taking the camera's picture once per frame ---------------------------------------------------
// Two ways to put the camera's current picture into the (CPU-backed) snapshot canvas the stages draw
// from: drawImage(video), or copying a VideoFrame's own I420/NV12 planes (VideoFrame.copyTo) and
// converting them to RGB in one typed-array pass. The page times both on its first frames and keeps
// the cheaper. The VideoFrame is the camera's own (below) where the browser has
// MediaStreamTrackProcessor, else one made of the <video> element. Why: with GPU compositing the
// <video>'s picture is the compositor's GPU copy, and reading it back (either way) waits on the GPU
// process — 14–40 ms a frame on a software GPU here, and the page's frame rate with it — while the
// camera's own frame is in memory the page can read (copyTo ~0.1 ms, conversion ~2 ms).
const grabbers = { draw: [], planes: [] };
const TRIES = 5;                   // frames timed per way before choosing
let grabChoice = null;
let rgba = null, planes = null;

// The camera's own frames (MediaStreamTrackProcessor): read as they come, only the latest kept.
const camera = { track: null, reader: null, latest: null };

/** Read `track`'s frames from now on (boot.js calls it as the camera opens, so the first camera
 *  frame Python takes is already there; grab() follows whatever track the <video> shows). */
export function followTrack(track) {
  if (camera.track === track) return;
  if (camera.reader) camera.reader.cancel().catch(() => {});
  camera.latest?.close();
  Object.assign(camera, { track, reader: null, latest: null });
  if (!track || track.readyState !== "live" || typeof MediaStreamTrackProcessor === "undefined") return;
  let reader;
  try {
    reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
  } catch {
    return;                        // (e.g. a track this browser can't process): frames from the <video>
  }
  camera.reader = reader;
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (camera.reader !== reader) { value.close(); break; }
        camera.latest?.close();
        camera.latest = value;
      }
    } catch { /* the track ended or the reader was cancelled */ }
    if (camera.reader === reader) {
      camera.latest?.close();
      Object.assign(camera, { reader: null, latest: null });
    }
  })();
}

function yuvToRgba(frame, buf, layout, out) {
  const w = frame.visibleRect.width, h = frame.visibleRect.height;
  const full = !!frame.colorSpace?.fullRange;
  const bt709 = frame.colorSpace?.matrix === "bt709";
  // Y'CbCr → R'G'B' (BT.601 or BT.709), limited or full range
  const ky = full ? 1 : 255 / 219, kc = full ? 1 : 255 / 224, y0 = full ? 0 : 16;
  const [cr_r, cb_g, cr_g, cb_b] = bt709 ? [1.5748, 0.1873, 0.4681, 1.8556] : [1.402, 0.344136, 0.714136, 1.772];
  const nv12 = frame.format === "NV12";
  const [pY, pU, pV] = layout;
  for (let y = 0; y < h; y++) {
    const rowY = pY.offset + y * pY.stride;
    const rowU = pU.offset + (y >> 1) * pU.stride;
    const rowV = nv12 ? rowU : pV.offset + (y >> 1) * pV.stride;
    let o = y * w * 4;
    for (let x = 0; x < w; x++, o += 4) {
      const yy = (buf[rowY + x] - y0) * ky;
      const cx = nv12 ? (x >> 1) * 2 : x >> 1;
      const cb = (buf[rowU + cx] - 128) * kc, cr = (buf[rowV + cx + (nv12 ? 1 : 0)] - 128) * kc;
      out[o] = yy + cr_r * cr;
      out[o + 1] = yy - cb_g * cb - cr_g * cr;
      out[o + 2] = yy + cb_b * cb;
      out[o + 3] = 255;
    }
  }
}

/** The picture by one way: "draw" (drawImage(video)), "track" (the camera's own latest frame's
 *  planes; false while it has none), "video" (the planes of a VideoFrame made of the <video>).
 *  False when the frame can't be read that way (not I420/NV12, or not w×h). */
export async function grabBy(way, video, canvas, w, h) {
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  if (way === "draw") {
    snapshot(video, canvas, w, h);
    return true;
  }
  if (way === "track" && !camera.latest) return false;
  // a clone: the reader may close `latest` (a newer frame came) while this one is being copied
  const frame = way === "track" ? camera.latest.clone() : new VideoFrame(video);
  try {
    if (!["I420", "NV12"].includes(frame.format) || frame.visibleRect.width !== w || frame.visibleRect.height !== h) {
      return false;
    }
    const size = frame.allocationSize({ rect: frame.visibleRect });
    if (!planes || planes.length !== size) planes = new Uint8Array(size);
    const layout = await frame.copyTo(planes, { rect: frame.visibleRect });
    if (!rgba || rgba.width !== w || rgba.height !== h) rgba = new ImageData(w, h);
    yuvToRgba(frame, planes, layout, rgba.data);
  } finally {
    frame.close();
  }
  canvas.getContext("2d", { alpha: false, willReadFrequently: true }).putImageData(rgba, 0, 0);
  return true;
}

/** Run the per-pixel loops (the camera picture's conversion, a model input's normalisation) a few
 *  times on a small picture: the first camera frame would otherwise run them cold, in V8's
 *  interpreter (its conversion and preprocessing took 60-70 and 10-17 ms, against ~2 and ~1 ms once
 *  compiled). boot.js calls it while the page waits for its downloads. */
export function warmUp() {
  const w = 64, h = 48;
  const frame = { visibleRect: { width: w, height: h }, colorSpace: { fullRange: false, matrix: "bt601" }, format: "I420" };
  const layout = [{ offset: 0, stride: w }, { offset: w * h, stride: w / 2 }, { offset: (w * h * 5) / 4, stride: w / 2 }];
  const picture = new ImageData(w, h);
  const canvas = Object.assign(document.createElement("canvas"), { width: w, height: h });
  for (let i = 0; i < 20; i++) {
    yuvToRgba(frame, new Uint8Array((w * h * 3) / 2), layout, picture.data);
    toInput(canvas, 0.5, 0, 0, 0.5, 0, 0, 32, 32, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], false);
  }
}

/** Make the scratch canvas of each model input size ([[w, h], ...]) and draw into it once: the first
 *  camera frame's preprocessing otherwise pays for them (20-28 ms here against ~1 ms later). boot.js
 *  calls it once the manifest names the sizes. */
export function prepareInputs(sizes) {
  const source = Object.assign(document.createElement("canvas"), { width: 8, height: 8 });
  for (const [w, h] of sizes) toInput(source, 1, 0, 0, 1, 0, 0, w, h, [0, 0, 0], [1, 1, 1], false);
}

/** The way of the next grab: the choice, else alternately while the first frames are timed. The very
 *  first by planes only from the camera's own frame (~10 ms here); a VideoFrame of the <video> or
 *  drawImage(video) is slow the first time (the <video>'s first picture: 120–160 ms in the page). */
function nextWay() {
  if (grabChoice) return grabChoice;
  if (typeof VideoFrame === "undefined") return "draw";
  const p = grabbers.planes.length, d = grabbers.draw.length;
  if (p === d) return p > 0 || camera.latest ? "planes" : "draw";
  return p < d ? "planes" : "draw";
}

/** Take the camera's current picture into `canvas` (w×h) by the cheaper of the two ways; returns ms. */
export async function grab(video, canvas, w, h) {
  followTrack(video.srcObject?.getVideoTracks?.()[0] ?? null);
  const way = nextWay();
  const t = performance.now();
  let done = false;
  if (way === "planes") {
    try {
      done = await grabBy(camera.latest ? "track" : "video", video, canvas, w, h);
    } catch {
      done = false;
    }
    if (!done) grabChoice = "draw";                 // this camera's frames can't be read that way
  }
  if (!done) await grabBy("draw", video, canvas, w, h);
  const ms = performance.now() - t;
  if (grabChoice === null) {
    grabbers[way].push(ms);
    if (grabbers.planes.length >= TRIES && grabbers.draw.length >= TRIES) {
      const med = (v) => v.slice().sort((a, b) => a - b)[v.length >> 1];
      grabChoice = med(grabbers.planes) < med(grabbers.draw) ? "planes" : "draw";
    }
  }
  return ms;
}

/** Which way grab() settled on (null while it still measures), and where its frames come from. */
export const grabWay = () => grabChoice;
export const grabSource = () => (camera.reader ? "camera track" : "video element");
