"""Where the CLI looks for models without --models (facelandmarks.locations), and what it says when
there are none (as after `pip install .` outside a clone)."""
from __future__ import annotations

import shutil

import pytest

from facelandmarks import locations


@pytest.fixture
def export(models_dir, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    shutil.copy(models_dir / "manifest.json", out / "manifest.json")
    return out


@pytest.mark.parametrize("where", ["env", "cwd", "checkout"])
def test_first_place_with_a_manifest_wins(where, export, tmp_path, monkeypatch):
    monkeypatch.delenv(locations.MODELS_ENV, raising=False)
    fake_pkg = tmp_path / "site" / "facelandmarks" / "locations.py"      # an installed copy
    monkeypatch.setattr(locations, "__file__", str(fake_pkg))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    if where == "env":
        monkeypatch.setenv(locations.MODELS_ENV, str(export))
        want = export
    elif where == "cwd":
        (cwd / "web").mkdir()
        want = shutil.copytree(export, cwd / "web" / "models")
    else:
        (tmp_path / "site" / "web").mkdir(parents=True)
        (tmp_path / "site" / "export_models.py").write_text("")           # a clone, not site-packages
        want = shutil.copytree(export, tmp_path / "site" / "web" / "models")
    assert locations.find_models() == want


def test_none_found_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv(locations.MODELS_ENV, str(tmp_path / "nothing"))
    monkeypatch.setattr(locations, "__file__", str(tmp_path / "site" / "facelandmarks" / "locations.py"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(locations.ModelsNotFound) as e:
        locations.find_models()
    text = str(e.value)
    places = locations.model_search_path()
    assert len(places) == 2                      # env, ./web/models: an installed copy is no checkout
    for place in places:
        assert str(place) in text
    assert "--models" in text and "export_models.py" in text
