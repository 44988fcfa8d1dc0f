#!/usr/bin/env python3
"""Assemble the static site in web/ (the step after ``npm run vendor`` and ``python export_models.py``).

* copies the pure-Python pipeline (``facelandmarks/pipeline/*.py``) into ``web/facelandmarks/pipeline/``,
  where ``web/pyscript.toml``'s ``[files]`` table loads it into Pyodide's file system — the page runs
  the very same crop/decode/tracking code as the CLI;
* packs the page's Python modules (``web/*.py`` but ``main.py``, PyScript's script itself, and the
  copied pipeline) into one ``web/python.zip``, which ``pyscript.toml``'s ``[files]`` unpacks into
  Pyodide's working directory (``"./python.zip" = "./*"``): one request instead of one per module;
  each module with its bytecode, compiled by the site's Pyodide (``scripts/compile_pyc.mjs``), and
  the bytecode of PyScript's own ``pyscript`` package (PyScript writes its sources itself);
* checks that ``pyscript.toml`` loads every one of those modules (a new module that is not there
  would fail only in the browser, at import time);
* checks that ``web/vendor/`` was filled by ``npm run vendor`` and that ``web/models/manifest.json``
  exists and names files that exist (``--allow-missing-models`` turns that into a warning);
* ``--models [NAME=]DIR`` (repeatable) deploys existing exports beside the default one, without
  re-exporting anything: each folder's manifest and the graphs it names (sha256-checked) are copied
  into ``web/models/<name>/`` and ``web/models/index.json`` lists them for the page's model selector
  (``?models=NAME``); the first one given is the page's default (``--default NAME`` to choose).
  Without ``--models`` an existing index is kept as it is;
* keeps webgpu's ``ort-wasm-simd-threaded.asyncify.wasm`` (26.8 MB, over the 25 MiB a file that
  static hosts accept) out of the site unless ``--webgpu``: it is moved to ``.cache/webgpu-vendor/``
  (and back with ``--webgpu``), so ``?...=webgpu`` needs a site built with ``--webgpu``;
* gives every folder of the site mode 0755 and every file 0644 (a web server running as another
  user must be able to read them; exports are written from private temporary folders).

    python scripts/build_site.py [--models [NAME=]DIR ...] [--default NAME] [--webgpu] [--allow-missing-models]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
PIPELINE = ROOT / "facelandmarks" / "pipeline"
OUT = WEB / "facelandmarks"
MODELS = WEB / "models"
INDEX = MODELS / "index.json"
INDEX_SCHEMA = 1
NAME_RE = re.compile(r"^[a-z0-9-]+$")
#: files of the webgpu build only, kept out of the default site (too large for static hosts)
WEBGPU_ONLY = ("ort-wasm-simd-threaded.asyncify.wasm",)
WEBGPU_CACHE = ROOT / ".cache" / "webgpu-vendor"
MAX_FILE_BYTES = 25 * 2**20
#: the page's Python modules in one archive (plain .py: Pyodide's CPython 3.14 would need 3.14 .pyc)
ARCHIVE = WEB / "python.zip"

INIT_STUB = '''"""The pure-Python part of facelandmarks, copied here by scripts/build_site.py for the page.
Only facelandmarks.pipeline is shipped: the rest of the package needs torch/onnx/numpy."""
'''


def copy_pipeline() -> list[str]:
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "pipeline").mkdir(parents=True)
    (OUT / "__init__.py").write_text(INIT_STUB)
    copied = []
    for src in sorted(PIPELINE.glob("*.py")):
        text = src.read_text()
        for banned in ("numpy", "PIL", "onnxruntime", "torch"):
            if re.search(rf"^\s*(import|from)\s+{banned}\b", text, re.M):
                raise SystemExit(f"build_site: {src} imports {banned}; the pipeline must be stdlib-only")
        shutil.copy2(src, OUT / "pipeline" / src.name)
        copied.append(f"facelandmarks/pipeline/{src.name}")
    return copied


def pyscript_package() -> dict[str, str]:
    """PyScript's own Python package as PyScript writes it into Pyodide's file system before the
    page's script runs ({"pyscript/__init__.py": source, ...}, from the artifact its core bundles:
    @pyscript/core/src/stdlib/pyscript.js, the vendored version); {} when it is not there."""
    artifact = ROOT / "node_modules" / "@pyscript" / "core" / "src" / "stdlib" / "pyscript.js"
    if not artifact.is_file():
        return {}
    text = artifact.read_text()
    tree = json.loads(text[text.index("{"):text.rindex("}") + 1])

    def walk(node: dict, base: str):
        for name, value in node.items():
            if isinstance(value, str):
                if name.endswith(".py"):
                    yield f"{base}{name}", value
            else:
                yield from walk(value, f"{base}{name}/")
    return dict(walk(tree, ""))


def compile_for_pyodide(members: list[str]) -> tuple[dict[str, bytes], str | None]:
    """The members byte-compiled by the Pyodide in node_modules (scripts/compile_pyc.mjs), as
    {archive path of the .pyc: bytes}; ({}, why) when that cannot run — the page then compiles the
    sources itself, ~0.1 s later. Also PyScript's own package (only its .pyc, checked against the
    sources PyScript writes; ~0.1 s of compiling on the path to the page's script otherwise)."""
    script = ROOT / "scripts" / "compile_pyc.mjs"
    if not (ROOT / "node_modules" / "pyodide" / "pyodide.mjs").exists():
        return {}, "node_modules/pyodide is missing (npm ci)"
    request = json.dumps({"files": {m: (WEB / m).read_text() for m in members}, "checked": pyscript_package()})
    try:
        done = subprocess.run(["node", str(script)], input=request, capture_output=True, text=True,
                              timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {}, f"node could not run {script.name}: {e}"
    if done.returncode != 0:
        return {}, f"{script.name} failed: {done.stderr.strip()[-500:]}"
    answer = json.loads(done.stdout)
    return {path: base64.b64decode(data) for path, data in answer["pycs"].items()}, None


def pack_python(copied: list[str]) -> list[str]:
    """Write web/python.zip (atomically): the page's modules and the copied pipeline, each with its
    .pyc for Pyodide's Python when node can make them. Returns the archive's module names."""
    members = sorted(p.name for p in WEB.glob("*.py") if p.name != "main.py")
    members += ["facelandmarks/__init__.py"] + copied
    pycs, why = compile_for_pyodide(members)
    if why:
        print(f"build_site: warning: shipping python.zip without bytecode: {why}", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(dir=WEB, prefix=".python.zip.")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for m in members:
                z.write(WEB / m, m)
            for path, data in sorted(pycs.items()):
                z.writestr(path, data)
        os.replace(tmp, ARCHIVE)
    except BaseException:
        os.unlink(tmp)
        raise
    return members


def check_toml(packed: list[str]) -> list[str]:
    """pyscript.toml unpacks python.zip into the working directory, and every other file it names
    exists."""
    text = (WEB / "pyscript.toml").read_text()
    listed = dict(re.findall(r'^\s*"\./([^"]+)"\s*=\s*"([^"]*)"', text, re.M))
    problems = []
    if listed.get(ARCHIVE.name) != "./*":
        problems.append(f'web/pyscript.toml [files] does not unpack the page\'s modules ("./{ARCHIVE.name}" = "./*"); '
                        f"it would miss {', '.join(packed)}")
    for p in sorted(listed):
        if not (WEB / p).is_file():
            problems.append(f"web/pyscript.toml [files] lists ./{p}, which does not exist")
    return problems


def check_vendor(webgpu: bool = False) -> list[str]:
    v = WEB / "vendor" / "VENDORED.json"
    if not v.is_file():
        return ["web/vendor/ is empty: run `npm ci && npm run vendor`"]
    missing = [f["file"] for f in json.loads(v.read_text())["files"] if not (WEB / "vendor" / f["file"]).is_file()
               and (webgpu or Path(f["file"]).name not in WEBGPU_ONLY)]
    return [f"web/vendor/{m} is missing: run `npm run vendor`" for m in missing]


class DeployError(ValueError):
    """A --models folder that cannot be deployed; nothing in web/ was changed."""


def _sha256(path: Path) -> str:
    # stdlib only (facelandmarks.weights.sha256_of needs numpy): this script runs in Vercel's build
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def read_export(spec: str) -> tuple[str, Path, dict]:
    """``[NAME=]DIR`` → (name, folder, manifest), checking that every graph file the manifest names
    is there with the sha256 it records."""
    name, sep, folder = spec.partition("=")
    if not sep or "/" in name:
        name, folder = "", spec
    folder = Path(folder).expanduser().resolve()
    m_path = folder / "manifest.json"
    if not m_path.is_file():
        raise DeployError(f"--models {spec}: {m_path} not found (a folder written by export_models.py)")
    try:
        manifest = json.loads(m_path.read_text())
    except json.JSONDecodeError as e:
        raise DeployError(f"--models {spec}: {m_path} is not valid JSON: {e}") from None
    name = name or slug(str(manifest.get("name") or folder.name))
    if not NAME_RE.match(name):
        raise DeployError(f"--models {spec}: name {name!r} must be lower-case letters, digits and '-'")
    files = manifest.get("files") or {}
    graph_files = {g["file"] for det in manifest.get("detectors", {}).values() for g in (det["graph"], det["parser"])}
    if manifest.get("landmarks"):
        graph_files.add(manifest["landmarks"]["graph"]["file"])
    for f in sorted(graph_files | set(files)):
        if Path(f).name != f:
            raise DeployError(f"--models {spec}: graph file {f!r} is not a plain file name")
        if not (folder / f).is_file():
            raise DeployError(f"--models {spec}: {folder / f} (named in manifest.json) is missing")
        if f in files and _sha256(folder / f) != files[f]:
            raise DeployError(f"--models {spec}: {folder / f} does not match the sha256 in manifest.json")
    return name, folder, manifest


def _label(manifest: dict) -> str:
    det = manifest["detectors"][(manifest.get("defaults") or {}).get("camera") or next(iter(manifest["detectors"]))]
    lm = manifest.get("landmarks")
    count, layout = (lm["count"], lm["layout"]) if lm else (det["keypoints"]["count"],
                                                            det["keypoints"].get("layout", ""))
    untrained = "" if manifest.get("trained", True) else ", untrained"
    return f"{manifest.get('name') or 'models'} ({count} points {layout}{untrained})".replace(" )", ")")


def deploy_models(specs: list[str], default: str | None) -> dict:
    """Copy each export into web/models/<name>/ and write web/models/index.json; returns the index.
    All folders are checked before anything is copied."""
    exports = [read_export(s) for s in specs]
    names = [n for n, _, _ in exports]
    if len(set(names)) != len(names):
        raise DeployError(f"--models: two exports named {sorted(n for n in names if names.count(n) > 1)}; "
                          "give them names as NAME=DIR")
    base = MODELS / "manifest.json"
    entries = []
    if base.is_file():
        base_manifest = json.loads(base.read_text())
        base_name = slug(str(base_manifest.get("name") or "default"))
        if base_name not in names and not any(f == MODELS.resolve() for _, f, _ in exports):
            entries.append({"name": base_name, "label": _label(base_manifest), "path": ""})
    if default is not None and default not in names + [e["name"] for e in entries]:
        raise DeployError(f"--default {default}: not one of {names + [e['name'] for e in entries]}")
    old = json.loads(INDEX.read_text()) if INDEX.is_file() else {"models": []}
    MODELS.mkdir(parents=True, exist_ok=True)
    for name, folder, manifest in exports:
        if folder == MODELS.resolve():
            entries.append({"name": name, "label": _label(manifest), "path": ""})
            continue
        target = MODELS / name
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.new-", dir=MODELS))
        try:
            for f in ["manifest.json", *sorted(manifest.get("files") or {})]:
                shutil.copyfile(folder / f, staging / f)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        entries.append({"name": name, "label": _label(manifest), "path": f"{name}/"})
    # folders an earlier --models run made and this one does not list
    kept = {e["path"] for e in entries}
    for e in old.get("models", []):
        path = e.get("path", "")
        if path and path not in kept and NAME_RE.match(path.rstrip("/")) and (MODELS / path).is_dir():
            shutil.rmtree(MODELS / path)
    index = {"schema": INDEX_SCHEMA, "default": default or names[0], "models": entries}
    tmp = INDEX.with_name(f".index.json.{os.getpid()}")
    tmp.write_text(json.dumps(index, indent=2) + "\n")
    tmp.replace(INDEX)
    return index


def place_webgpu_files(webgpu: bool) -> list[str]:
    """Move the webgpu-only vendor files out of web/ (default) or back in (``--webgpu``)."""
    notes = []
    vendor = WEB / "vendor"
    if webgpu:
        for cached in sorted(WEBGPU_CACHE.rglob("*")) if WEBGPU_CACHE.is_dir() else []:
            if cached.is_file():
                target = vendor / cached.relative_to(WEBGPU_CACHE)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(cached), target)
                    notes.append(f"restored web/vendor/{target.relative_to(vendor)} (--webgpu)")
        return notes
    for name in WEBGPU_ONLY:
        for path in sorted(vendor.rglob(name)) if vendor.is_dir() else []:
            target = WEBGPU_CACHE / path.relative_to(vendor)
            size = path.stat().st_size
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target)
            notes.append(f"moved web/vendor/{path.relative_to(vendor)} ({size / 1e6:.1f} MB, webgpu "
                         f"only) to {target.relative_to(ROOT)}; build with --webgpu to ship it")
    return notes


def normalise_modes(root: Path) -> None:
    """Folders 0755, files 0644, whatever umask or mkdtemp made them."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = Path(dirpath) / f
            if not p.is_symlink():
                os.chmod(p, 0o644)


def oversized(root: Path) -> list[str]:
    return [f"{p.relative_to(root)} is {p.stat().st_size / 2**20:.1f} MiB (static hosts take at most 25 MiB a file)"
            for p in sorted(root.rglob("*")) if p.is_file() and p.stat().st_size > MAX_FILE_BYTES]


def check_models() -> list[str]:
    """Every deployed manifest (web/models/ itself, or each index.json entry) names files that exist."""
    folders = [MODELS]
    if INDEX.is_file():
        try:
            folders = [MODELS / e["path"] for e in json.loads(INDEX.read_text())["models"]]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            return [f"web/models/index.json is not a model index: {e}"]
    problems = []
    for folder in folders:
        where = folder.relative_to(WEB)
        m = folder / "manifest.json"
        if not m.is_file():
            problems.append(f"{where}/manifest.json is missing: run `python export_models.py`")
            continue
        try:
            manifest = json.loads(m.read_text())
        except json.JSONDecodeError as e:
            problems.append(f"{where}/manifest.json is not valid JSON: {e}")
            continue
        problems += [f"{where}/{f} (named in manifest.json) is missing"
                     for f in manifest.get("files", {}) if not (folder / f).is_file()]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--allow-missing-models", action="store_true",
                    help="warn instead of failing when web/models/ is not there yet")
    ap.add_argument("--models", action="append", default=[], metavar="[NAME=]DIR",
                    help="an export folder to deploy as web/models/NAME/ (repeatable; NAME defaults "
                         "to the manifest's name)")
    ap.add_argument("--default", help="the index's default model (default: the first --models)")
    ap.add_argument("--webgpu", action="store_true",
                    help="ship webgpu's 26.8 MB asyncify wasm too (over static hosts' 25 MiB file limit)")
    args = ap.parse_args(argv)
    if args.default and not args.models:
        ap.error("--default needs --models")
    if args.models:
        try:
            index = deploy_models(args.models, args.default)
        except DeployError as e:
            print(f"build_site: {e}", file=sys.stderr)
            return 1
        for e in index["models"]:
            print(f"build_site: models/{e['path']} → {e['name']}: {e['label']}"
                  + (" (default)" if e["name"] == index["default"] else ""))
    copied = copy_pipeline()
    print(f"build_site: copied {len(copied)} pipeline modules into web/facelandmarks/pipeline/")
    packed = pack_python(copied)
    print(f"build_site: packed {len(packed)} modules into web/{ARCHIVE.name} ({ARCHIVE.stat().st_size / 1e3:.1f} kB)")
    for note in place_webgpu_files(args.webgpu):
        print(f"build_site: {note}")
    normalise_modes(WEB)
    errors = check_toml(packed) + check_vendor(args.webgpu)
    if not args.webgpu:
        errors += oversized(WEB)
    model_problems = check_models()
    if args.allow_missing_models:
        for p in model_problems:
            print(f"build_site: warning: {p}", file=sys.stderr)
    else:
        errors += model_problems
    for e in errors:
        print(f"build_site: {e}", file=sys.stderr)
    if errors:
        return 1
    print("build_site: web/ is ready (python scripts/serve.py --port 8000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
