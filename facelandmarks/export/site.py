"""Write exported graphs + manifest into a models folder, atomically, deleting nothing we didn't write.

Everything is built in a temporary sibling folder first; only when every graph is written and the
manifest is complete does it replace the old folder (two renames), so a failed export leaves the
previous folder untouched, and no temporary folder is left behind (Ctrl-C included).

An existing output folder is replaced only when it holds nothing but an export of ours: its
``manifest.json`` (with ``schema`` and the ``files`` it names, each with its sha256) and those
files — or, the layout ``scripts/build_site.py`` makes, an ``index.json`` beside sub-folders that
are exports of ours. Anything else (a user's notes, photos, a working folder given as ``--out .``)
is refused by :func:`check_out_dir`, naming what is there, unless ``replace=True``
(``export_models.py --replace``). The current folder, its parents and the home folder are refused
even then.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import onnx

from ..weights import sha256_of
from .onnx_export import save_model


class OutDirError(ValueError):
    """The output folder cannot be replaced without losing something the export didn't write."""


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def foreign_entries(folder: Path) -> list[str]:
    """The entries of ``folder`` (relative paths) that are not part of an export of ours; all of
    them when the folder has no manifest of ours."""
    names = sorted(p.name for p in folder.iterdir())
    manifest = folder / "manifest.json"
    files, ours = {}, False
    if manifest.is_file():
        try:
            d = json.loads(manifest.read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            d = None
        ours = (isinstance(d, dict) and isinstance(d.get("schema"), int) and isinstance(d.get("files"), dict)
                and all(_is_sha256(v) for v in d["files"].values()))
        if not ours:
            return names
        files = d["files"]
    foreign = []
    for name in names:
        p = folder / name
        if name == "manifest.json" and ours:
            continue
        if name in files and p.is_file() and not p.is_symlink():
            continue
        if name == "index.json" and p.is_file():
            continue  # build_site.py's list of the exports below it
        if p.is_dir() and not p.is_symlink() and (p / "manifest.json").is_file():
            foreign += [f"{name}/{sub}" for sub in foreign_entries(p)]
            continue
        foreign.append(name)
    if not ours and not any((folder / n).is_dir() for n in names if n not in foreign):
        return names  # no manifest and no export below it: not a models folder of ours
    return foreign


def check_out_dir(out_dir: Path, replace: bool = False) -> Path:
    """Raise :class:`OutDirError` unless writing an export to ``out_dir`` loses nothing (or the
    user asked for ``replace``). Returns the resolved path."""
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise OutDirError(f"{out_dir} is a file, not a folder: give --out a folder name")
    protected = {Path.cwd().resolve(), Path.home().resolve(), Path(out_dir.anchor)}
    if out_dir in protected or Path.cwd().resolve().is_relative_to(out_dir):
        raise OutDirError(f"{out_dir} is the current folder, one of its parents or the home folder: "
                          "give --out a folder of its own (e.g. web/models)")
    if out_dir.is_dir() and not replace:
        foreign = foreign_entries(out_dir)
        if foreign:
            more = f" … and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise OutDirError(f"{out_dir} already holds files that are not an export of ours "
                              f"({', '.join(foreign[:5])}{more}): nothing was written; give an empty "
                              "or new folder, or --replace to delete what it holds")
    return out_dir


def write_models_dir(out_dir: Path, graphs: dict[str, onnx.ModelProto], manifest: dict,
                     replace: bool = False) -> Path:
    """Write ``graphs`` (file name → model) and ``manifest.json`` (its ``files`` filled with each
    graph's sha256) into ``out_dir``, replacing it as a whole (see :func:`check_out_dir`)."""
    out_dir = check_out_dir(out_dir, replace)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # one private work folder beside the output holds the new export and, for a moment, the old one
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    # (mkdtemp's folder is 0700; the export itself is made by mkdir, so it gets the umask's modes)
    staging, old = work / "new", work / "old"
    moved_old = False
    try:
        staging.mkdir()
        files = {}
        for name, model in graphs.items():
            save_model(model, staging / name)
            files[name] = sha256_of(staging / name)
        manifest = dict(manifest, files=files)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        # the two renames are not interrupted by Ctrl-C (delivered right after them)
        blocked = hasattr(signal, "pthread_sigmask")
        if blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            if out_dir.exists():
                out_dir.rename(old)
                moved_old = True
            staging.rename(out_dir)
            moved_old = False
        finally:
            if moved_old and not out_dir.exists():
                old.rename(out_dir)  # the second rename failed: put the previous folder back
            if blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        return out_dir
    finally:
        shutil.rmtree(work, ignore_errors=True)
