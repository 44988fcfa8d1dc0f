// npm run vendor: copy the few files the page needs out of node_modules into web/vendor/ and write
// precompressed .br/.gz siblings, so the site is same-origin (no CDN) and small on the wire.
//
//   web/vendor/pyscript-<v>/  @pyscript/core/dist (no source maps)
//   web/vendor/pyodide-<v>/   pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm, python_stdlib.zip, pyodide-lock.json,
//                             snapshot.bin.gz (Pyodide's memory once booted, with the pipeline's
//                             modules imported, made here; see makeSnapshot)
//   web/vendor/ort-<v>/       ort.wasm.min.mjs  + ort-wasm-simd-threaded.{mjs,wasm}   (wasm sessions, ~2.7 MB br)
//                             ort.webgl.min.mjs                                     (webgl sessions, pure JS)
//                             ort.webgpu.min.mjs + ort-wasm-simd-threaded.asyncify.{mjs,wasm}
//                                   (only loaded when ?…=webgpu is asked for; never on the default path)
//
// Folder names carry the package version, so vendor/ can be cached as immutable (vercel.json) and an
// upgrade changes every URL. The page names these folders in web/index.html (preloads), web/pyscript.toml
// and web/boot.js; this script checks that they agree with the installed versions.
// ort.all.* (which drags in the 28 MB jsep wasm) is deliberately not copied.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { brotliCompress, constants, gzip, inflateRawSync } from "node:zlib";

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nm = join(root, "node_modules");
const out = join(root, "web", "vendor");
const pkgVersion = (name) => JSON.parse(readFileSync(join(nm, name, "package.json"), "utf8")).version;

const plan = [
  {
    pkg: "@pyscript/core", dest: "pyscript", from: "dist",
    files: readdirSync(join(nm, "@pyscript/core/dist")).filter((f) => !f.endsWith(".map")),
  },
  {
    pkg: "pyodide", dest: "pyodide", from: "",
    files: ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json"],
  },
  {
    pkg: "onnxruntime-web", dest: "ort", from: "dist",
    files: [
      "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
      "ort.webgl.min.mjs",
      "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm",
    ],
  },
];

// Compress what compresses. python_stdlib.zip is rewritten with its entries *stored* (Pyodide writes
// it to /lib/python3XY.zip and imports from it with zipimport, which reads stored entries directly):
// brotli over the whole archive then finds the redundancy between files that per-file deflate cannot
// (2.55 MB deflated → ~1.7 MB br on the wire).
const COMPRESS = /\.(m?js|css|json|wasm|html|txt|zip)$/;
const REPACK_STORED = new Set(["python_stdlib.zip"]);

// Parts of the standard library the page never imports (no servers, mail, GUIs, debuggers, test
// frameworks, legacy codecs). Dropping them saves ~0.5 MB on the wire. The page imports (checked in
// the browser with sys.modules): asyncio, json, dataclasses, statistics, inspect, traceback, zipfile,
// html, logging, concurrent.futures, ... — none of these. `node scripts/vendor.mjs --full-stdlib`
// keeps everything.
const FULL_STDLIB = process.argv.includes("--full-stdlib");
const STDLIB_DROP = new Set(`email multiprocessing xml _pyrepl unittest http pdb.py doctest.py pydoc.py
  pydoc_data sqlite3 wsgiref xmlrpc mailbox.py imaplib.py smtplib.py ftplib.py poplib.py turtle.py
  turtledemo tkinter idlelib lib2to3 ensurepip venv zipapp.py curses dbm pickletools.py profile.py
  cProfile.py pstats.py trace.py tabnanny.py pyclbr.py optparse.py _pydecimal.py _pyio.py`.split(/\s+/));
const ENCODINGS_KEEP = new Set(`__init__ aliases utf_8 utf_8_sig ascii latin_1 cp437 utf_16 utf_16_le
  utf_16_be utf_32 utf_32_le utf_32_be unicode_escape raw_unicode_escape idna punycode charmap
  base64_codec hex_codec mbcs`.split(/\s+/));

function keepStdlibEntry(name) {
  if (FULL_STDLIB) return true;
  const top = name.split("/")[0];
  if (STDLIB_DROP.has(top)) return false;
  const m = /^encodings\/([^/]+)\.py$/.exec(name);
  return !m || ENCODINGS_KEEP.has(m[1]);
}

function repackStored(buf, keep = () => true) {
  // Minimal zip reader/writer: no zip64, no encryption, which Pyodide's stdlib zip does not use.
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error("not a zip file");
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const locals = [], centrals = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error("bad central directory");
    const method = buf.readUInt16LE(p + 10);
    const csize = buf.readUInt32LE(p + 20), usize = buf.readUInt32LE(p + 24);
    const nlen = buf.readUInt16LE(p + 28), xlen = buf.readUInt16LE(p + 30), clen = buf.readUInt16LE(p + 32);
    const lho = buf.readUInt32LE(p + 42);
    const name = buf.subarray(p + 46, p + 46 + nlen);
    if (!keep(name.toString("utf8"))) {
      p += 46 + nlen + xlen + clen;
      continue;
    }
    const lnlen = buf.readUInt16LE(lho + 26), lxlen = buf.readUInt16LE(lho + 28);
    const start = lho + 30 + lnlen + lxlen;
    let data = buf.subarray(start, start + csize);
    if (method === 8) data = inflateRawSync(data);
    else if (method !== 0) throw new Error(`zip method ${method} not handled`);
    if (data.length !== usize) throw new Error("zip entry size mismatch");
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    buf.copy(local, 4, p + 6, p + 10);            // version needed, flags
    local.writeUInt16LE(0, 8);                    // method: stored
    buf.copy(local, 10, p + 12, p + 20);          // time, date, crc32
    local.writeUInt32LE(usize, 18); local.writeUInt32LE(usize, 22);
    local.writeUInt16LE(nlen, 26); local.writeUInt16LE(0, 28);
    const central = Buffer.from(buf.subarray(p, p + 46));
    central.writeUInt16LE(0, 10);
    central.writeUInt32LE(usize, 20);
    central.writeUInt16LE(0, 30); central.writeUInt16LE(0, 32);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += 30 + nlen + data.length;
    p += 46 + nlen + xlen + clen;
  }
  const cd = Buffer.concat(centrals);
  const kept = centrals.length / 2;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(kept, 8); end.writeUInt16LE(kept, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

// Brotli at quality 11 (what a CDN's static precompression would use): on the two big wasm files it
// saves ~0.7 MB on the wire against quality 9, for ~1 minute of build time. Files off the default
// path (the webgpu build) get quality 9.
const OFF_PATH = new Set(["ort-wasm-simd-threaded.asyncify.wasm"]);

// Pyodide's memory snapshot: the interpreter's wasm memory once Python is initialised and the
// standard-library modules the page's Python imports are imported. The page hands it to loadPyodide
// (web/python_boot.mjs), which then restores it instead of initialising Python: ~0.3 s instead of
// ~2 s of the main thread on this machine. It is only valid with this pyodide.asm.wasm and this
// python_stdlib.zip (zipimport keeps the archive's directory in that memory), so it is made here,
// from the vendored files, and checked by restoring it in a second interpreter. Its randomness
// (random's state, str hashes) is the same on every load: python_boot.mjs reseeds `random`.
// It is written gzipped (31 MB → 6 MB): hosts compress by content type, and few compress
// application/octet-stream. vercel.json sends it with Content-Encoding: gzip, so the browser inflates
// it off the page's main thread; on a host without that header the page inflates it itself.
// What Pyodide's boot has not imported yet but the page's start does (sys.modules at the end of
// main.py's imports, less Pyodide's own boot): statistics (with decimal, fractions, numbers) for the
// pipeline, html for PyScript, hashlib for the frozen pipeline's check (web/frozen_pipeline.py; from
// source it took ~20 ms of the page's start). Modules that touch JS at import (js, pyscript) cannot be in it.
const SNAPSHOT_IMPORTS = ["statistics", "html.entities", "encodings.cp437", "hashlib"];
const SNAPSHOT_CHECK = "import csv, colorsys; 'ok'";   // imports from the zip after a restore

// The pipeline's modules (facelandmarks/pipeline/*.py, stdlib-only) are imported into the snapshot
// too, from the files at the paths where python.zip unpacks them (Pyodide's working directory), so
// the page's imports of them cost nothing: −0.15 s of the main thread at start-up here, first
// landmarks −0.14 s and −0.23 s (bench/startup_ab.py, two batches of 8 pairs). The snapshot then holds a copy of the pipeline:
// each module carries the sha256 of the source it was made from (__snapshot_sha256__), and the page
// (web/frozen_pipeline.py) drops them all in favour of python.zip's when any differs. The Makefile
// re-vendors when the pipeline changes.
const PIPELINE = join(root, "facelandmarks", "pipeline");
const pipelineSources = () => readdirSync(PIPELINE).filter((f) => f.endsWith(".py")).sort()
  .map((f) => ({ path: `facelandmarks/pipeline/${f}`, bytes: readFileSync(join(PIPELINE, f)) }));
const moduleName = (path) => path.replace(/\.py$/, "").replace(/\/__init__$/, "").replaceAll("/", ".");

function importPipeline(py) {
  py.FS.mkdirTree("facelandmarks/pipeline");
  py.FS.writeFile("facelandmarks/__init__.py", "");     // build_site writes its own (a docstring)
  const digests = {};
  for (const { path, bytes } of pipelineSources()) {
    py.FS.writeFile(path, bytes);
    digests[moduleName(path)] = createHash("sha256").update(bytes).digest("hex");
  }
  py.runPython(`import importlib, sys
for name, digest in ${JSON.stringify(digests)}.items():
    importlib.import_module(name).__snapshot_sha256__ = digest
del importlib, name, digest`);
  return Object.keys(digests);
}

async function makeSnapshot(pyodideDir) {
  const { loadPyodide } = await import(join(nm, "pyodide", "pyodide.mjs"));
  const paths = { indexURL: join(nm, "pyodide") + "/", stdLibURL: join(pyodideDir, "python_stdlib.zip") };
  const maker = await loadPyodide({ ...paths, _makeSnapshot: true });
  maker.runPython(SNAPSHOT_IMPORTS.map((m) => `import ${m}`).join("\n"));
  const pipeline = importPipeline(maker);
  const snapshot = maker.makeMemorySnapshot();
  const check = await loadPyodide({ ...paths, _loadSnapshot: snapshot });
  if (check.runPython(SNAPSHOT_CHECK) !== "ok") throw new Error("the Pyodide snapshot does not restore");
  const frozen = check.runPython(`import sys; ' '.join(sorted(n for n, m in sys.modules.items()
    if hasattr(m, '__snapshot_sha256__')))`);
  if (frozen !== [...pipeline].sort().join(" ")) throw new Error(`the snapshot holds ${frozen}, not the pipeline`);
  writeFileSync(join(pyodideDir, "snapshot.bin.gz"), await gzipAsync(snapshot, { level: 9 }));
}

rmSync(out, { recursive: true, force: true });
const jobs = [];
for (const { pkg, dest, from, files } of plan) {
  const version = pkgVersion(pkg);
  for (const f of files) {
    const src = join(nm, pkg, from, f);
    const dst = join(out, `${dest}-${version}`, f);
    mkdirSync(dirname(dst), { recursive: true });
    if (REPACK_STORED.has(f)) writeFileSync(dst, repackStored(readFileSync(src), keepStdlibEntry));
    else copyFileSync(src, dst);
    jobs.push({ pkg, version, f, dst });
  }
  if (pkg === "pyodide") {
    await makeSnapshot(join(out, `${dest}-${version}`));
    jobs.push({ pkg, version, f: "snapshot.bin.gz", dst: join(out, `${dest}-${version}`, "snapshot.bin.gz") });
  }
}
const lines = await Promise.all(jobs.map(async ({ pkg, version, f, dst }) => {
  const data = readFileSync(dst);
  const raw = data.length;
  let br = raw, gz = raw;
  if (COMPRESS.test(f) && raw > 1024) {
    const [b, g] = await Promise.all([
      brotliAsync(data, { params: {
        [constants.BROTLI_PARAM_QUALITY]: OFF_PATH.has(f) ? 9 : 11,
        [constants.BROTLI_PARAM_SIZE_HINT]: raw } }),
      gzipAsync(data, { level: 9 }),
    ]);
    writeFileSync(dst + ".br", b);
    writeFileSync(dst + ".gz", g);
    br = b.length; gz = g.length;
  }
  return { file: relative(out, dst), pkg: `${pkg}@${version}`, raw, br, gz,
           sha256: createHash("sha256").update(data).digest("hex") };
}));
const total = { raw: 0, br: 0, gz: 0 };
for (const l of lines) { total.raw += l.raw; total.br += l.br; total.gz += l.gz; }

// The page refers to the versioned folders by name: fail loudly if a version moved without them.
const refs = { "web/index.html": ["pyodide", "ort"], "web/python_boot.mjs": ["pyodide"], "web/boot.js": ["ort", "pyscript"] };
let stale = [];
for (const [file, dests] of Object.entries(refs)) {
  let text = "";
  try { text = readFileSync(join(root, file), "utf8"); } catch { stale.push(`${file} is missing`); continue; }
  for (const d of dests) {
    const { pkg } = plan.find((p) => p.dest === d);
    const want = `vendor/${d}-${pkgVersion(pkg)}/`;
    if (!text.includes(want)) stale.push(`${file} does not refer to ${want}`);
  }
}
// Every vendor/ URL the page's source files name must exist (e.g. PyScript's hashed chunk names in
// index.html's modulepreload links change with its version).
for (const file of Object.keys(refs)) {
  let text = "";
  try { text = readFileSync(join(root, file), "utf8"); } catch { continue; }
  for (const m of text.matchAll(/vendor\/([\w.@-]+\/[\w.@-]+)/g)) {
    try { statSync(join(out, m[1])); } catch { stale.push(`${file} refers to vendor/${m[1]}, which npm run vendor did not produce`); }
  }
}
writeFileSync(join(out, "VENDORED.json"), JSON.stringify({ files: lines, total }, null, 2) + "\n");
const mb = (n) => (n / 1e6).toFixed(2).padStart(6) + " MB";
for (const l of lines) console.log(`${mb(l.raw)} raw ${mb(l.br)} br ${mb(l.gz)} gz  ${l.file}`);
console.log(`${mb(total.raw)} raw ${mb(total.br)} br ${mb(total.gz)} gz  total in web/vendor (${lines.length} files)`);
if (stale.length) {
  console.error("vendor: the page refers to other versions than node_modules holds:\n  " + stale.join("\n  "));
  process.exit(1);
}
