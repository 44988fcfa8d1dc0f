// compile_pyc.mjs — byte-compile the page's Python modules with the Pyodide the site ships.
//
//   node scripts/compile_pyc.mjs < modules.json > pycs.json
//
// stdin: {"files": {"relative/path.py": "source", ...}, "checked": {...the same...}}; stdout: {"pycs":
// {"relative/__pycache__/path.cpython-314.pyc": "<base64>", ...}} (the cache tag is this Pyodide's).
// scripts/build_site.py puts them into web/python.zip, so the page's imports skip compiling (~0.1 s
// of its main thread here). The .pyc files of "files" are "unchecked-hash" ones (PEP 552): valid
// whatever the source file's mtime, which is the time PyScript unpacked the archive; source and .pyc
// always ship together in the one archive. Those of "checked" (PyScript's own package, whose sources
// PyScript writes itself) are "checked-hash": Python compares the source's hash with the one in the
// .pyc and compiles the source instead when they differ.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { loadPyodide } = await import(join(root, "node_modules", "pyodide", "pyodide.mjs"));
const { files, checked = {} } = JSON.parse(readFileSync(0, "utf8"));
const pyodide = await loadPyodide({ indexURL: join(root, "node_modules", "pyodide") + "/", stdout: () => {}, stderr: () => {} });
pyodide.globals.set("FILES", pyodide.toPy(files));
pyodide.globals.set("CHECKED", pyodide.toPy(checked));
const out = pyodide.runPython(`
import base64, importlib.util, json, os, py_compile
pycs = {}
MODES = py_compile.PycInvalidationMode
for rel, source, mode in [(r, s, MODES.UNCHECKED_HASH) for r, s in FILES.items()] + \
                         [(r, s, MODES.CHECKED_HASH) for r, s in CHECKED.items()]:
    src = os.path.join("/tmp/pyc", rel)
    os.makedirs(os.path.dirname(src), exist_ok=True)
    with open(src, "w") as f:
        f.write(source)
    cached = importlib.util.cache_from_source(src)
    py_compile.compile(src, cfile=cached, dfile=rel, doraise=True,
                       invalidation_mode=mode)
    with open(cached, "rb") as f:
        pycs[os.path.relpath(cached, "/tmp/pyc")] = base64.b64encode(f.read()).decode()
json.dumps({"pycs": pycs})
`);
process.stdout.write(out);
