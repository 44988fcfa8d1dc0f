"""Where the command line looks for an export when ``--models`` is not given.

In order: ``$FACELANDMARKS_MODELS``; ``web/models`` under the current folder (a clone of the
repository); ``web/models`` of the checkout this package runs from (an editable install or
``python -m`` in a clone). An installed package ships no models (they are built from MediaPipe's
weights by ``export_models.py``), so outside a clone one of the first two must hold them.
"""
from __future__ import annotations

import os
from pathlib import Path

MODELS_ENV = "FACELANDMARKS_MODELS"


class ModelsNotFound(FileNotFoundError):
    """No export in any of the places searched."""


def model_search_path() -> list[Path]:
    """The folders searched for ``manifest.json``, first match wins."""
    places = []
    if os.environ.get(MODELS_ENV):
        places.append(Path(os.environ[MODELS_ENV]))
    places.append(Path.cwd() / "web" / "models")
    repo = Path(__file__).resolve().parent.parent
    checkout = repo / "web" / "models"
    # an installed copy sits in site-packages, which is no checkout: only a clone has export_models.py
    if (repo / "export_models.py").is_file() and checkout not in places:
        places.append(checkout)
    return places


def find_models() -> Path:
    """The first searched folder holding an export; :class:`ModelsNotFound` naming them all."""
    places = model_search_path()
    for p in places:
        if (p / "manifest.json").is_file():
            return p
    raise ModelsNotFound(
        "no exported models found; looked for manifest.json in " + ", ".join(map(str, places))
        + f". Give --models DIR, set {MODELS_ENV}=DIR, or run `python export_models.py` in a clone "
        "of the repository (it writes web/models).")


def describe_search() -> str:
    """For help texts."""
    return f"${MODELS_ENV}, ./web/models, then the checkout's web/models"
