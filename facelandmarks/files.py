"""Writing outputs without losing anything: atomic replacement, modes that follow the umask."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def umask() -> int:
    """The process's umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: str | bytes | None = None, save=None) -> None:
    """Write ``data`` (or call ``save(file_object)``) to a temporary file beside ``path``, then rename
    it over ``path``: readers see the old or the new file, never half of one. Modes follow the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if save is not None:
                save(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
