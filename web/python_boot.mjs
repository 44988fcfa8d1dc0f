// python_boot.mjs — Pyodide's boot, started at the page's first bytes.
//
// PyScript would only call loadPyodide once its own module, its config and the interpreter module
// are in (~1.5 s after navigation here), and everything on the page waits for Python. So this module
// starts loadPyodide as soon as it is evaluated (boot.js imports it first), and pyscript.toml names
// this module as PyScript's interpreter: PyScript imports the same module (one instance per URL),
// calls its loadPyodide and gets the interpreter that is already booting, with PyScript's own
// stdout/stderr attached. It exports what PyScript reads from an interpreter module: loadPyodide and
// version.
import { loadPyodide as bootPyodide, version } from "./vendor/pyodide-314.0.7/pyodide.mjs";

export { version };

// ms since navigation: when the boot started and when Python was up (boot.js shows them as marks)
export const marks = {};

const INDEX_URL = new URL("./vendor/pyodide-314.0.7/", import.meta.url).href;

const SNAPSHOT = "snapshot.bin.gz";
let booting = null;

// The memory snapshot (scripts/vendor.mjs makes it) turns Python's initialisation, ~2 s of the main
// thread here, into a ~0.3 s restore. It is gzipped (hosts rarely compress binary files). A server
// that says so (Content-Encoding: gzip: vercel.json, hence scripts/serve.py) has the browser's network
// process inflate it; otherwise it is inflated here, on the page's main thread, where its 31 MB took
// ~0.24 s of tasks (up to 0.12 s each) while Pyodide's other downloads waited for that thread.
// ?snapshot=0 boots without it; so does a failed fetch or restore.
const GZIP_MAGIC = [0x1f, 0x8b];

// The body is read whole by the browser (no script per chunk on the main thread, where it is read
// during the start-up's busiest second); only the gzip a host sent as it is gets inflated here.
async function snapshotBytes(response) {
  const bytes = await response.arrayBuffer();
  const head = new Uint8Array(bytes, 0, Math.min(2, bytes.byteLength));
  if (head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1]) return bytes;
  marks["pyodide:inflate"] = performance.now();      // the server sent the gzip as it is
  return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
}

async function bootFromSnapshot() {
  const response = await fetch(INDEX_URL + SNAPSHOT);
  if (!response.ok) throw new Error(`${SNAPSHOT}: HTTP ${response.status}`);
  // Pyodide awaits the bytes only once its wasm is compiled: a bad gzip rejects before that, and the
  // rejection would be reported as unhandled (bootPyodide still receives it and fails).
  const bytes = snapshotBytes(response);
  bytes.catch(() => {});
  const pyodide = await bootPyodide({ indexURL: INDEX_URL, _loadSnapshot: bytes });
  // The snapshot holds random's state as it was when it was made: give each page its own.
  pyodide.runPython("import sys\nif 'random' in sys.modules: sys.modules['random'].seed()");
  marks["pyodide:snapshot"] = performance.now();
  return pyodide;
}

export function start() {
  if (!booting) {
    marks["pyodide:start"] = performance.now();
    const useSnapshot = new URLSearchParams(location.search).get("snapshot") !== "0";
    booting = (useSnapshot ? bootFromSnapshot() : Promise.reject(null)).catch((why) => {
      if (why) console.warn("Pyodide's memory snapshot did not load; booting Python without it:", why);
      return bootPyodide({ indexURL: INDEX_URL });
    });
    booting.then(() => { marks["pyodide:ready"] = performance.now(); }, () => {});
  }
  return booting;
}

// PyScript's call. Its indexURL (the folder of this module) is not Pyodide's: the boot above already
// has the right one. Packages a pyscript.toml may list are loaded the way loadPyodide would.
export async function loadPyodide({ stdout, stderr, packages } = {}) {
  const pyodide = await start();
  if (stdout) pyodide.setStdout({ batched: stdout });
  if (stderr) pyodide.setStderr({ batched: stderr });
  if (packages?.length) await pyodide.loadPackage(packages);
  return pyodide;
}

// Without WebAssembly there is nothing to boot: boot.js says so; PyScript's call gets the error.
if (typeof WebAssembly === "object") start();
