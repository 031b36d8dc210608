// dermseg in the browser: the runtime's per-image core in JavaScript, run on ONNX Runtime Web (WebAssembly) in this
// tab. Nothing leaves the device: the only requests are for this folder's own files.
//
// Written once, here, to match the Python runtime (dermseg_deploy/core):
//   decode        the browser's decoder, EXIF orientation applied, no colour conversion (as Pillow decodes)
//   resize        Pillow's floating-point bilinear filter (PyTorch's, antialiased where the image shrinks): a triangle
//                 of half-width max(1, scale) per output pixel, horizontal pass first, float32 between the passes
//   normalise     (x / 255 - mean) / std in float32, the (3, S, S) layout
//   masks         logits > logit(threshold), nearest-exact upsampling to the displayed size
//   quality       the predicted Jaccard's signals and the model's calibration (core/quality.py, model/quality_model.py)
"use strict";

// The runtime's own limits and texts, from manifest.json's "settings" (written from the Python defaults)
let UNREADABLE = "", MAX_PIXELS = 0, REVIEW_BELOW = 0;
const SIGNALS = ["soft_jaccard", "centre_distance", "log_compactness"];
const f32 = Math.fround;

// ---- SHA-256 (FIPS 180-4): crypto.subtle where the origin is secure, this elsewhere --------------------------------

const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

function sha256Fallback(bytes) {
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
                             0x5be0cd19]);
  const length = bytes.length, blocks = Math.ceil((length + 9) / 64);
  const tail = new Uint8Array(blocks * 64 - Math.floor(length / 64) * 64);
  tail.set(bytes.subarray(Math.floor(length / 64) * 64));
  tail[length % 64] = 0x80;
  const bits = length * 8, view = new DataView(tail.buffer);
  view.setUint32(tail.length - 8, Math.floor(bits / 0x100000000));
  view.setUint32(tail.length - 4, bits >>> 0);
  const w = new Uint32Array(64);
  const full = Math.floor(length / 64);
  for (let block = 0; block < blocks; block++) {
    const source = block < full ? new DataView(bytes.buffer, bytes.byteOffset + block * 64, 64)
                                : new DataView(tail.buffer, (block - full) * 64, 64);
    for (let i = 0; i < 16; i++) { w[i] = source.getUint32(i * 4); }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K256[i] + w[i]) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  return Array.from(h, (x) => (x >>> 0).toString(16).padStart(8, "0")).join("");
}

async function sha256(buffer) {
  if (window.isSecureContext && window.crypto && crypto.subtle) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
    return Array.from(digest, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  return sha256Fallback(new Uint8Array(buffer));
}

// ---- formats and sizes from the header ----------------------------------------------------------------------------

function sniff(bytes) {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) { return "JPEG"; }
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) { return "PNG"; }
  if (bytes[0] === 0x42 && bytes[1] === 0x4d) { return "BMP"; }
  if ((bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 0x2a && bytes[3] === 0) ||
      (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[2] === 0 && bytes[3] === 0x2a)) { return "TIFF"; }
  return null;
}

function headerPixels(bytes, format) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === "PNG" && bytes.length >= 24) { return view.getUint32(16) * view.getUint32(20); }
  if (format === "BMP" && bytes.length >= 26) { return Math.abs(view.getInt32(18, true) * view.getInt32(22, true)); }
  if (format === "JPEG") {
    let at = 2;
    while (at + 9 < bytes.length) {
      if (bytes[at] !== 0xff) { at++; continue; }
      const marker = bytes[at + 1];
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return view.getUint16(at + 5) * view.getUint16(at + 7);
      }
      if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01 || marker === 0xff) { at += 2; continue; }
      at += 2 + view.getUint16(at + 2);
    }
  }
  return null;
}

// ---- preprocessing --------------------------------------------------------------------------------------------------

function coefficients(inSize, outSize) {
  const scale = inSize / outSize, filterscale = Math.max(scale, 1.0), support = filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2), weights = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) { xmin = 0; }
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) { xmax = inSize; }
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      let t = (x + xmin - center + 0.5) * ss;
      if (t < 0) { t = -t; }
      const w = t < 1.0 ? 1.0 - t : 0.0;
      weights[xx * ksize + x] = w;
      ww += w;
    }
    if (ww !== 0.0) { for (let x = 0; x < xmax; x++) { weights[xx * ksize + x] /= ww; } }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

function resizePlane(plane, width, height, outWidth, outHeight) {
  let current = plane, currentWidth = width;
  if (outWidth !== width) {
    const { bounds, weights, ksize } = coefficients(width, outWidth);
    const next = new Float32Array(outWidth * height);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let xx = 0; xx < outWidth; xx++) {
        const xmin = bounds[xx * 2], count = bounds[xx * 2 + 1], k = xx * ksize;
        let sum = 0.0;
        for (let x = 0; x < count; x++) { sum += current[row + xmin + x] * weights[k + x]; }
        next[y * outWidth + xx] = sum;
      }
    }
    current = next;
    currentWidth = outWidth;
  }
  if (outHeight !== height) {
    const { bounds, weights, ksize } = coefficients(height, outHeight);
    const next = new Float32Array(currentWidth * outHeight);
    for (let yy = 0; yy < outHeight; yy++) {
      const ymin = bounds[yy * 2], count = bounds[yy * 2 + 1], k = yy * ksize;
      for (let x = 0; x < currentWidth; x++) {
        let sum = 0.0;
        for (let y = 0; y < count; y++) { sum += current[(ymin + y) * currentWidth + x] * weights[k + y]; }
        next[yy * currentWidth + x] = sum;
      }
    }
    current = next;
  }
  return current;
}

function networkInput(rgba, width, height, metadata) {
  const size = metadata.size_px, pixels = width * height, input = new Float32Array(3 * size * size);
  for (let channel = 0; channel < 3; channel++) {
    const plane = new Float32Array(pixels);
    for (let i = 0; i < pixels; i++) { plane[i] = rgba[i * 4 + channel]; }
    const resized = resizePlane(plane, width, height, size, size);
    const mean = f32(metadata.mean[channel]), std = f32(metadata.std[channel]);
    for (let i = 0; i < size * size; i++) {
      input[channel * size * size + i] = f32(f32(f32(resized[i] / 255) - mean) / std);
    }
  }
  return input;
}

// ---- masks and their quality ---------------------------------------------------------------------------------------

function nearestIndices(inSize, outSize) {
  const scale = f32(f32(inSize) / f32(outSize)), indices = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) { indices[i] = Math.min(Math.floor(f32((i + 0.5) * scale)), inSize - 1); }
  return indices;
}

function upsample(mask, size, height, width) {
  const rows = nearestIndices(size, height), cols = nearestIndices(size, width), out = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    const source = rows[y] * size;
    for (let x = 0; x < width; x++) { out[y * width + x] = mask[source + cols[x]]; }
  }
  return out;
}

function qualitySignals(logits, mask, size) {
  let agreement = 0, sumP = 0, inside = 0, rows = 0, cols = 0, perimeter = 0;
  const at = (y, x) => (y >= 0 && x >= 0 && y < size && x < size ? mask[y * size + x] : 0);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x, p = f32(1 / (1 + Math.exp(-logits[i])));
      sumP += p;
      if (!mask[i]) { continue; }
      agreement += p; inside += 1; rows += (y + 0.5) / size - 0.5; cols += (x + 0.5) / size - 0.5;
      if (!(at(y - 1, x) && at(y + 1, x) && at(y, x - 1) && at(y, x + 1))) { perimeter += 1; }
    }
  }
  const union = sumP + inside - agreement;
  return [union > 0 ? agreement / union : 1.0,
          inside > 0 ? Math.hypot(rows / inside, cols / inside) : Math.sqrt(0.5),
          inside > 0 ? Math.log(Math.max(perimeter, 1) ** 2 / (4 * Math.PI * inside)) : 3.0];
}

function predictQuality(calibration, signals) {
  const values = Object.fromEntries(SIGNALS.map((name, i) => [name, signals[i]]));
  let score = calibration.intercept;
  calibration.signals.forEach((name, i) => { score += calibration.weights[i] * values[name]; });
  const xs = calibration.knots.score, ys = calibration.knots.jaccard;
  if (score <= xs[0]) { return ys[0]; }
  if (score >= xs[xs.length - 1]) { return ys[ys.length - 1]; }
  let i = 1;
  while (score > xs[i]) { i++; }
  return ys[i - 1] + (score - xs[i - 1]) / (xs[i] - xs[i - 1]) * (ys[i] - ys[i - 1]);
}

// ---- the page -------------------------------------------------------------------------------------------------------

const state = { session: null, metadata: null, calibrated: false };
window.dermseg = { state };

function show(id, text) { document.getElementById(id).textContent = text; }

function fail(text) {
  const error = document.getElementById("error");
  error.textContent = text; error.hidden = false;
  document.getElementById("result").hidden = true;
  document.body.setAttribute("data-state", "error");
  show("status", "");
}

async function fetchChecked(name, expected) {
  const response = await fetch(name, { cache: "no-store" });
  if (!response.ok) { throw new Error(name + ": missing from this folder (HTTP " + response.status + ")"); }
  const buffer = await response.arrayBuffer();
  if ((await sha256(buffer)) !== expected) {
    throw new Error(name + ": its SHA-256 differs from manifest.json (the file was altered or damaged): not run");
  }
  return buffer;
}

async function start() {
  try {
    const manifestResponse = await fetch("manifest.json", { cache: "no-store" });
    if (!manifestResponse.ok) { throw new Error("manifest.json: missing from this folder"); }
    const manifest = await manifestResponse.json();
    const files = manifest.files;
    ({ unreadable: UNREADABLE, max_pixels: MAX_PIXELS, review_below: REVIEW_BELOW } = manifest.settings);
    const checked = {};
    for (const name of Object.keys(files)) { checked[name] = await fetchChecked(name, files[name]); }
    if (typeof ort === "undefined") { throw new Error("ort/ort.wasm.min.js: did not load"); }
    state.metadata = JSON.parse(new TextDecoder().decode(checked["model.json"]));
    const quality = (state.metadata.extra || {}).quality;
    state.calibrated = Boolean(quality && quality.fitted_on.tta === "none" && quality.fitted_on.postprocess === "none"
                               && Math.abs(quality.fitted_on.threshold - state.metadata.threshold) < 1e-9);
    const threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = new URL("ort/", document.baseURI).href;  // a relative prefix is a bare module specifier
    state.session = await ort.InferenceSession.create(checked["model.onnx"], { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    state.threads = threads;
    const settings = { model: "model.onnx (" + (files["model.onnx"] || "").slice(0, 12) + "...)",
                       "input size": state.metadata.size_px + " px", threshold: state.metadata.threshold,
                       "predicted Jaccard": state.calibrated ? "calibrated on " + quality.fitted_on.images + " images"
                                                             : "uncalibrated: the raw soft Jaccard",
                       runtime: "ONNX Runtime Web " + manifest.runtime.version + ", WebAssembly, " +
                                (threads > 1 ? threads + " threads (cross-origin isolated)"
                                             : "1 thread (this page is not cross-origin isolated)") };
    const table = document.getElementById("settings");
    Object.entries(settings).forEach(([key, value]) => {
      const row = table.insertRow(); row.insertCell().textContent = key; row.insertCell().textContent = String(value);
    });
    show("status", "Ready: choose or drop an image. It stays on this device.");
    document.body.setAttribute("data-ready", "true");
  } catch (error) {
    fail(String(error.message || error));
    document.body.setAttribute("data-ready", "failed");
  }
}

async function segment(file) {
  document.body.setAttribute("data-state", "busy");
  document.getElementById("error").hidden = true;
  const started = performance.now();
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const format = sniff(bytes);
    if (format === null) { throw new Error(file.name + ": " + UNREADABLE); }
    const pixels = headerPixels(bytes, format);
    if (pixels !== null && pixels > MAX_PIXELS) {
      throw new Error(file.name + ": has " + pixels + " pixels, over the limit of " + MAX_PIXELS);
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(new Blob([bytes]), { imageOrientation: "from-image",
                                                             colorSpaceConversion: "none", premultiplyAlpha: "none" });
    } catch (error) {
      throw new Error(file.name + ": cannot be decoded (this browser cannot decode it" +
                      (format === "TIFF" ? ": TIFF; use dermseg-run" : "") + ")");
    }
    const width = bitmap.width, height = bitmap.height;
    if (width * height > MAX_PIXELS) {
      throw new Error(file.name + ": has " + width + "x" + height + " = " + width * height +
                      " pixels, over the limit of " + MAX_PIXELS);
    }
    const canvas = document.createElement("canvas");
    canvas.width = width; canvas.height = height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, width, height).data;
    const decoded = performance.now();
    const metadata = state.metadata, size = metadata.size_px;
    const input = networkInput(rgba, width, height, metadata);
    const preprocessed = performance.now();
    const feeds = {};
    feeds[metadata.input_name] = new ort.Tensor("float32", input, [1, 3, size, size]);
    const output = await state.session.run(feeds);
    const logits = output[metadata.output_name].data;
    const inferred = performance.now();
    const cut = Math.log(metadata.threshold / (1 - metadata.threshold));
    const small = new Uint8Array(size * size);
    for (let i = 0; i < small.length; i++) { small[i] = logits[i] > cut ? 1 : 0; }
    const full = upsample(small, size, height, width);
    const signals = qualitySignals(logits, small, size);
    const predicted = state.calibrated ? predictQuality(metadata.extra.quality, signals) : signals[0];
    let lesion = 0;
    for (let i = 0; i < full.length; i++) { lesion += full[i]; }
    const finished = performance.now();
    Object.assign(window.dermseg, { input, logits, mask: full, width, height, predicted, signals,
                                    ms: { decode: decoded - started, preprocess: preprocessed - decoded,
                                          inference: inferred - preprocessed, postprocess: finished - inferred,
                                          total: finished - started } });
    draw(canvas, full, width, height);
    show("name", file.name);
    show("size", width + " x " + height);
    show("fraction", (100 * lesion / full.length).toFixed(2) + " %");
    show("quality", predicted.toFixed(2) + (state.calibrated ? "" : " (uncalibrated)"));
    show("seconds", (finished - started).toFixed(0) + " ms, here in this tab");
    const review = document.getElementById("review");
    review.hidden = predicted >= REVIEW_BELOW;
    review.textContent = predicted < REVIEW_BELOW ? "Check this mask: its predicted Jaccard is below " + REVIEW_BELOW + "." : "";
    document.getElementById("result").hidden = false;
    show("status", "Done: the green outline is the predicted lesion's border. Nothing was uploaded.");
    document.body.setAttribute("data-state", "done");
  } catch (error) {
    fail(String(error.message || error));
  }
}

function draw(source, mask, width, height) {
  const scale = Math.min(1, 800 / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
  const canvas = document.getElementById("overlay");
  canvas.width = w; canvas.height = h;
  const context = canvas.getContext("2d");
  context.drawImage(source, 0, 0, w, h);
  const pixels = context.getImageData(0, 0, w, h);
  const at = (x, y) => mask[Math.min(height - 1, Math.floor(y / scale)) * width + Math.min(width - 1, Math.floor(x / scale))];
  const inside = (x, y) => x < 0 || y < 0 || x >= w || y >= h || at(x, y);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (at(x, y) && !(inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1))) {
        const i = 4 * (y * w + x);
        pixels.data[i] = 0; pixels.data[i + 1] = 255; pixels.data[i + 2] = 0;
      }
    }
  }
  context.putImageData(pixels, 0, 0);
}

// For tests and tools: the last mask as runs of equal values, row by row (small to read back), and the network
// input as base64 of its float32 bytes.
window.dermseg.maskRuns = function () {
  const mask = window.dermseg.mask, runs = [];
  let value = 0, length = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] === value) { length++; } else { runs.push(length); value = mask[i]; length = 1; }
  }
  runs.push(length);
  return runs;
};
window.dermseg.base64 = function (name) {  // "input" or "logits": the float32 array, for tests
  const array = window.dermseg[name], bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) { text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)); }
  return btoa(text);
};

document.getElementById("file").addEventListener("change", (event) => {
  if (event.target.files.length) { segment(event.target.files[0]); }
});
const drop = document.getElementById("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault(); drop.classList.remove("over");
  if (event.dataTransfer.files.length) { segment(event.dataTransfer.files[0]); }
});
start();
