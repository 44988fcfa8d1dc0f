#!/usr/bin/env python3
"""Assemble the static site in web/ (the step after ``npm run vendor`` and ``python export_models.py``).

* copies the pure-Python pipeline (``facelandmarks/pipeline/*.py``) into ``web/facelandmarks/pipeline/``,
  where ``web/pyscript.toml``'s ``[files]`` table loads it into Pyodide's file system — the page runs
  the very same crop/decode/tracking code as the CLI;
* checks that ``pyscript.toml`` lists every one of those modules (a new module that is not listed
  would fail only in the browser, at import time);
* checks that ``web/vendor/`` was filled by ``npm run vendor`` and that ``web/models/manifest.json``
  exists and names files that exist (``--allow-missing-models`` turns that into a warning).

    python scripts/build_site.py [--allow-missing-models]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
PIPELINE = ROOT / "facelandmarks" / "pipeline"
OUT = WEB / "facelandmarks"

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


def check_toml(copied: list[str]) -> list[str]:
    text = (WEB / "pyscript.toml").read_text()
    listed = set(re.findall(r'^\s*"\./([^"]+)"\s*=', text, re.M))
    problems = [f"web/pyscript.toml [files] does not list ./{p}" for p in copied + ["facelandmarks/__init__.py"]
                if p not in listed]
    for p in sorted(listed):
        if not (WEB / p).is_file():
            problems.append(f"web/pyscript.toml [files] lists ./{p}, which does not exist")
    return problems


def check_vendor() -> list[str]:
    v = WEB / "vendor" / "VENDORED.json"
    if not v.is_file():
        return ["web/vendor/ is empty: run `npm ci && npm run vendor`"]
    missing = [f["file"] for f in json.loads(v.read_text())["files"] if not (WEB / "vendor" / f["file"]).is_file()]
    return [f"web/vendor/{m} is missing: run `npm run vendor`" for m in missing]


def check_models() -> list[str]:
    m = WEB / "models" / "manifest.json"
    if not m.is_file():
        return ["web/models/manifest.json is missing: run `python export_models.py`"]
    try:
        manifest = json.loads(m.read_text())
    except json.JSONDecodeError as e:
        return [f"web/models/manifest.json is not valid JSON: {e}"]
    return [f"web/models/{f} (named in manifest.json) is missing"
            for f in manifest.get("files", {}) if not (WEB / "models" / f).is_file()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--allow-missing-models", action="store_true",
                    help="warn instead of failing when web/models/ is not there yet")
    args = ap.parse_args(argv)
    copied = copy_pipeline()
    print(f"build_site: copied {len(copied)} pipeline modules into web/facelandmarks/pipeline/")
    errors = check_toml(copied) + check_vendor()
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
