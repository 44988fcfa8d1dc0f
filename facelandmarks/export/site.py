"""Write exported graphs + manifest into the site's models folder, atomically.

Everything is built in a temporary sibling folder first; only when every graph is written and the
manifest is complete does it replace the old folder (rename), so a failed export leaves the previous
``web/models/`` untouched.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import onnx

from ..weights import sha256_of
from .onnx_export import save_model


def write_models_dir(out_dir: Path, graphs: dict[str, onnx.ModelProto], manifest: dict) -> Path:
    """Write ``graphs`` (file name → model) and ``manifest.json`` (its ``files`` filled with each
    graph's sha256) into ``out_dir``, replacing it as a whole."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    try:
        files = {}
        for name, model in graphs.items():
            save_model(model, staging / name)
            files[name] = sha256_of(staging / name)
        manifest = dict(manifest, files=files)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
        staging.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return out_dir
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
