"""The pipeline's modules as Pyodide's memory snapshot holds them (scripts/vendor.mjs imports them into
it), checked against the files python.zip unpacked before anything uses them.

Each module the snapshot holds carries ``__snapshot_sha256__``, the sha256 of the source it was made
from. When every one matches its file on disk the page uses them as they are (no import at all);
when any differs or is gone (the pipeline changed since ``npm run vendor``), all of ``facelandmarks``
is dropped from ``sys.modules`` and imported again from python.zip, so the page never runs a
pipeline other than the one it ships. Plain Python (no ``js``): main.py reports the result.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

PACKAGE = "facelandmarks"


def package_modules(package: str = PACKAGE) -> list[str]:
    return [name for name in list(sys.modules) if name == package or name.startswith(package + ".")]


def frozen_modules(package: str = PACKAGE) -> dict[str, object]:
    """The modules of the package that came from the snapshot (they carry their source's digest)."""
    return {name: sys.modules[name] for name in package_modules(package)
            if hasattr(sys.modules[name], "__snapshot_sha256__")}


def stale_modules(frozen: dict[str, object]) -> list[str]:
    """Names of the frozen modules whose source file differs from their digest, or is missing."""
    stale = []
    for name, module in sorted(frozen.items()):
        try:
            digest = hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()
        except (OSError, TypeError):
            digest = None
        if digest != module.__snapshot_sha256__:
            stale.append(name)
    return stale


def check(package: str = PACKAGE) -> list[str]:
    """Keep the snapshot's pipeline if it is the one on disk, else forget the whole package so it is
    imported from the files. Returns the stale module names (empty: kept, or nothing was frozen)."""
    stale = stale_modules(frozen_modules(package))
    if stale:
        for name in package_modules(package):
            del sys.modules[name]
    return stale


def describe(stale: list[str]) -> str:
    """The console's line for a snapshot that holds another pipeline than python.zip."""
    return (f"Pyodide's snapshot holds another version of {', '.join(stale)} than this site's python.zip; "
            "importing python.zip's (start-up is ~0.15 s slower). `npm run vendor` makes the snapshot again.")
