"""scripts/build_site.py --models: deploy existing exports side by side without re-exporting."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(tmp_path, monkeypatch, models_dir):
    """build_site.py pointed at a copy of this checkout's site (web/ with its vendor files and the
    default export), so the test can deploy into it."""
    spec = importlib.util.spec_from_file_location("build_site_under_test", ROOT / "scripts" / "build_site.py")
    bs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bs)
    web = tmp_path / "repo" / "web"
    shutil.copytree(ROOT / "web", web, ignore=shutil.ignore_patterns("models", "facelandmarks"))
    shutil.copytree(models_dir, web / "models")
    # webgpu's wasm as `npm run vendor` leaves it (an earlier build_site run may have set it aside)
    cache = ROOT / ".cache" / "webgpu-vendor"
    if cache.is_dir():
        shutil.copytree(cache, web / "vendor", dirs_exist_ok=True)
    assert list((web / "vendor").rglob("ort-wasm-simd-threaded.asyncify.wasm")), "run npm run vendor"
    for name, value in (("ROOT", tmp_path / "repo"), ("WEB", web), ("OUT", web / "facelandmarks"),
                        ("ARCHIVE", web / "python.zip"),
                        ("MODELS", web / "models"), ("INDEX", web / "models" / "index.json"),
                        ("WEBGPU_CACHE", tmp_path / "repo" / ".cache" / "webgpu-vendor")):
        monkeypatch.setattr(bs, name, value)
    return bs


def _user_export(tmp_path, models_dir) -> Path:
    """An export as export_models.py leaves it: a private (0700) folder, graphs + manifest."""
    out = tmp_path / "my-export"
    out.mkdir(mode=0o700)
    manifest = json.loads((models_dir / "manifest.json").read_text())
    manifest["name"] = "My Own Model"
    for f in manifest["files"]:
        shutil.copyfile(models_dir / f, out / f)
        os.chmod(out / f, 0o600)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_deploy_keeps_the_given_exports_side_by_side(site, tmp_path, models_dir, capsys):
    mine = _user_export(tmp_path, models_dir)
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    default_before = {p.name: p.read_bytes() for p in (site.MODELS).iterdir()}
    assert site.main(["--models", str(mine), "--models", f"second={mine}"]) == 0
    index = json.loads(site.INDEX.read_text())
    names = [e["name"] for e in index["models"]]
    assert names == ["mediapipe-blazeface-facemesh", "my-own-model", "second"]
    assert index["schema"] == 1 and index["default"] == "my-own-model"
    assert [e["path"] for e in index["models"]] == ["", "my-own-model/", "second/"]
    assert "98 points" in index["models"][1]["label"]
    for name in ("my-own-model", "second"):       # the export, byte for byte
        assert {p.name: p.read_bytes() for p in (site.MODELS / name).iterdir()} == before
    assert {p.name: p.read_bytes() for p in site.MODELS.iterdir() if p.is_file() and p.name != "index.json"} \
        == default_before
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == before        # the source untouched

    # folders 0755, files 0644 everywhere in the site; nothing over 25 MiB (webgpu's wasm set aside)
    for p in [site.WEB, *site.WEB.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o755 if p.is_dir() else 0o644), (p, oct(mode))
        assert p.is_dir() or p.stat().st_size <= 25 * 2**20, p
    assert not list(site.WEB.rglob("ort-wasm-simd-threaded.asyncify.wasm"))
    assert "webgpu only" in capsys.readouterr().out

    # a build without --models keeps the deployment; --webgpu brings the webgpu wasm back
    assert site.main([]) == 0
    assert json.loads(site.INDEX.read_text()) == index and (site.MODELS / "second" / "manifest.json").is_file()
    assert site.main(["--webgpu"]) == 0
    assert len(list(site.WEB.rglob("ort-wasm-simd-threaded.asyncify.wasm"))) == 1
    # deploying one export again drops the folder of the one no longer listed
    assert site.main(["--models", str(mine)]) == 0
    assert not (site.MODELS / "second").exists()


@pytest.mark.parametrize("problem,message", [
    ("no manifest", "manifest.json not found"),
    ("missing graph", "(named in manifest.json) is missing"),
    ("changed graph", "does not match the sha256"),
    ("bad name", "must be lower-case letters"),
])
def test_bad_export_refused_and_site_unchanged(site, tmp_path, models_dir, capsys, problem, message):
    mine = _user_export(tmp_path, models_dir)
    spec = str(mine)
    graph = next(iter(json.loads((mine / "manifest.json").read_text())["files"]))
    if problem == "no manifest":
        (mine / "manifest.json").unlink()
    elif problem == "missing graph":
        (mine / graph).unlink()
    elif problem == "changed graph":
        with open(mine / graph, "ab") as f:
            f.write(b"\0")
    else:
        spec = f"Not_OK={mine}"
    listing = sorted(str(p.relative_to(site.WEB)) for p in site.WEB.rglob("*"))
    assert site.main(["--models", spec]) == 1
    assert message in capsys.readouterr().err
    assert sorted(str(p.relative_to(site.WEB)) for p in site.WEB.rglob("*")) == listing


def test_python_zip_ships_each_module_with_unchecked_bytecode():
    """web/python.zip (make site) holds a .pyc made by the site's own Pyodide beside every module:
    unchecked-hash ones (PEP 552 flags == 1), since PyScript gives the unpacked sources a new mtime."""
    import zipfile
    archive = ROOT / "web" / "python.zip"
    if not archive.exists():
        pytest.skip("web/python.zip is built by make site")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert "frame_loop.py" in sources and "facelandmarks/pipeline/tracking.py" in sources
        tags = set()
        for src in sources:
            folder, _, stem = src.rpartition("/")
            pycs = [n for n in names if n.startswith(f"{folder}/__pycache__/{stem[:-3]}.".lstrip("/"))
                    and n.endswith(".pyc")]
            assert len(pycs) == 1, (src, pycs)
            tags.add(pycs[0].rsplit(".", 2)[1])
            header = z.read(pycs[0])[:16]
            assert int.from_bytes(header[4:8], "little") == 1, f"{pycs[0]}: not an unchecked-hash .pyc"
        assert len(tags) == 1 and tags.pop().startswith("cpython-3")


def test_python_zip_ships_pyscripts_own_package_as_checked_bytecode():
    """PyScript writes its own `pyscript` package's sources before the page's script runs; python.zip
    holds a checked-hash .pyc (PEP 552 flags == 3) for each of them, so Python takes it when the source
    is the one it was made from and compiles the source otherwise (the browser test checks the match)."""
    import zipfile
    from scripts.build_site import pyscript_package
    archive = ROOT / "web" / "python.zip"
    if not archive.exists():
        pytest.skip("web/python.zip is built by make site")
    package = pyscript_package()
    assert "pyscript/__init__.py" in package and "pyscript/display.py" in package
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert not any(n.startswith("pyscript/") and n.endswith(".py") for n in names), "PyScript writes these"
        for src in package:
            folder, _, stem = src.rpartition("/")
            pycs = [n for n in names if n.startswith(f"{folder}/__pycache__/{stem[:-3]}.") and n.endswith(".pyc")]
            assert len(pycs) == 1, (src, pycs)
            assert int.from_bytes(z.read(pycs[0])[4:8], "little") == 3, f"{pycs[0]}: not a checked-hash .pyc"
