"""Read a PyTorch checkpoint file as a plain state dict (parameter name → tensor), for any model family.

    state = read_state_dict("mobilenet0.25_Final.pth")     # raises CheckpointError, in our words

* Only tensors are unpickled (``torch.load(weights_only=True)``): a checkpoint cannot run code.
* The usual wrappers are taken off: ``{"state_dict": …}`` (Lightning, biubug6), ``{"model": …}``,
  ``{"net": …}``, ``{"model_state_dict": …}``, nested ones too, and the ``module.`` (DataParallel)
  and ``_orig_mod.`` (torch.compile) key prefixes.
* Everything else gets one plain sentence: a whole pickled ``nn.Module`` (save its
  ``state_dict()`` instead), other Python objects, an empty, truncated or damaged file, a file that
  is not a checkpoint at all (text, random bytes). PyTorch's own advice (``weights_only=False``)
  is never passed on: following it would run the file's code.
"""
from __future__ import annotations

import io
import pickletools
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

#: wrapper keys whose value is the state dict, in the order they are looked for
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
#: key prefixes added by torch.nn.DataParallel / DistributedDataParallel and torch.compile
KEY_PREFIXES = ("module.", "_orig_mod.")

SAVE_STATE_DICT = "save it with torch.save(model.state_dict(), PATH) and give that file"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the model; the message names what is wrong."""


def read_state_dict(source: str | Path | Mapping, label: str | None = None) -> dict[str, torch.Tensor]:
    """A checkpoint (a file, or an already-loaded mapping) as a plain state dict, unwrapped."""
    if isinstance(source, Mapping):
        return unwrap(source, label or "checkpoint")
    path = Path(source)
    label = label or str(path)
    if not path.is_file():
        raise CheckpointError(f"{label}: no such checkpoint file")
    head = path.open("rb").read(4)
    if not head:
        raise CheckpointError(f"{label} is empty: not a PyTorch checkpoint")
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{label} is truncated or damaged (its zip archive is incomplete)")
        with zipfile.ZipFile(path) as z:
            if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist()):
                raise CheckpointError(f"{label} is a zip archive but not a PyTorch checkpoint "
                                      "(no data.pkl inside)")
    elif head[0] != 0x80:  # every pickle of protocol 2+ (torch.save's legacy format) starts so
        raise CheckpointError(f"{label} is not a PyTorch checkpoint (neither a torch.save zip archive "
                              "nor a pickle): give the .pth/.pt file the model was saved to")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 — torch's messages advise weights_only=False; we explain instead
        raise CheckpointError(_why_unreadable(path, label)) from None
    return unwrap(obj, label)


def unwrap(obj, label: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Take the wrappers and key prefixes off a loaded checkpoint; refuse what is not a state dict."""
    while isinstance(obj, Mapping) and not _all_tensors(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if isinstance(obj, torch.nn.Module):
        raise CheckpointError(f"{label} is a whole model object, not a state dict: {SAVE_STATE_DICT}")
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{label} holds a {type(obj).__name__}, not a state dict "
                              "(a mapping of parameter names to tensors)")
    if not obj:
        raise CheckpointError(f"{label} holds an empty state dict (no parameters)")
    if not _all_tensors(obj):
        others = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
        raise CheckpointError(f"{label} is not a state dict: {', '.join(others[:6])}"
                              f"{' …' if len(others) > 6 else ''} are not tensors, and none of "
                              f"{', '.join(WRAPPER_KEYS)} holds the parameters")
    state = {str(k): v for k, v in obj.items()}
    changed = True
    while changed:
        changed = False
        for prefix in KEY_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _all_tensors(d: Mapping) -> bool:
    return bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def _why_unreadable(path: Path, label: str) -> str:
    try:
        names = pickle_globals(path)
    except Exception:  # noqa: BLE001 — the pickle itself is broken
        names = None
    if names is None:
        return f"{label} is truncated or damaged: it cannot be read as a PyTorch checkpoint"
    if any(n.startswith("torch.nn.modules.") for n in names):
        return f"{label} is a whole pickled model (nn.Module), not a state dict: {SAVE_STATE_DICT}"
    unsafe = sorted(n for n in names if not n.startswith(("torch.", "collections.", "_codecs.")))
    if unsafe:
        return (f"{label} holds Python objects other than tensors ({', '.join(unsafe[:4])}), which are "
                f"not loaded because loading them could run code: {SAVE_STATE_DICT}")
    return f"{label} is truncated or damaged: it cannot be read as a PyTorch checkpoint"


def pickle_globals(path: Path) -> set[str]:
    """The ``module.name`` globals the checkpoint's pickle refers to, read without unpickling."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("data.pkl"))
            data = z.read(name)
    else:
        data = path.read_bytes()
    found: set[str] = set()
    strings: list[str] = []
    stream = io.BytesIO(data)
    first = True
    while first or data[stream.tell():stream.tell() + 1] == b"\x80":
        # the legacy format is several pickles one after another, then raw tensor bytes
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name == "GLOBAL":
                    found.add(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.add(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
        except Exception:  # noqa: BLE001 — only the first pickle must be whole
            if first:
                raise
            break
        first = False
    return found
