"""web/frozen_pipeline.py: the pipeline modules Pyodide's snapshot holds are kept only while each one's
source digest matches its file (python.zip's), else the whole package is imported again."""
import hashlib
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web"))
import frozen_pipeline  # noqa: E402

PACKAGE = "snapshot_fixture_pkg"     # never the real facelandmarks: check() edits sys.modules
SOURCES = {"": b'"""the package"""\n', ".tracking": b"STEP = 1\n", ".geometry": b"SCALE = 2.0\n"}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def package(tmp_path):
    """The package as a restored snapshot leaves it: modules carrying their source's digest, files
    written beside them; removed from sys.modules afterwards."""
    for suffix, data in SOURCES.items():
        path = tmp_path / f"{suffix.lstrip('.') or '__init__'}.py"
        path.write_bytes(data)
        module = types.ModuleType(PACKAGE + suffix)
        module.__file__ = str(path)
        module.__snapshot_sha256__ = digest(data)
        sys.modules[PACKAGE + suffix] = module
    yield tmp_path
    for name in frozen_pipeline.package_modules(PACKAGE):
        del sys.modules[name]


def rewrite(root: Path, name: str, data: bytes) -> None:
    (root / f"{name}.py").write_bytes(data)


def delete(root: Path, name: str, data: bytes) -> None:
    (root / f"{name}.py").unlink()


@pytest.mark.parametrize("case, changes, stale", [
    ("the files it was made from", [], []),
    ("one module edited since", [(rewrite, "tracking", b"STEP = 2\n")], [PACKAGE + ".tracking"]),
    ("the package's own file edited", [(rewrite, "__init__", b"")], [PACKAGE]),
    ("a module's file missing", [(delete, "geometry", b"")], [PACKAGE + ".geometry"]),
    ("two edited", [(rewrite, "tracking", b"x = 1\n"), (rewrite, "geometry", b"y = 2\n")],
     [PACKAGE + ".geometry", PACKAGE + ".tracking"]),
])
def test_the_snapshots_modules_are_kept_only_while_their_files_match(package, case, changes, stale):
    for change, name, data in changes:
        change(package, name, data)
    assert frozen_pipeline.check(PACKAGE) == stale, case
    kept = frozen_pipeline.package_modules(PACKAGE)
    # all or nothing: one stale module drops the whole package (its modules import each other)
    assert kept == ([] if stale else [PACKAGE + s for s in SOURCES]), case
    if stale:
        assert all(name in frozen_pipeline.describe(stale) for name in stale)


def test_modules_imported_from_files_are_left_alone(package):
    """A module without a digest (imported from python.zip after the snapshot) is not the snapshot's."""
    plain = types.ModuleType(PACKAGE + ".extra")
    plain.__file__ = str(package / "extra.py")          # no such file, and no digest: not checked
    sys.modules[PACKAGE + ".extra"] = plain
    assert set(frozen_pipeline.frozen_modules(PACKAGE)) == {PACKAGE + s for s in SOURCES}
    assert frozen_pipeline.check(PACKAGE) == []
    assert PACKAGE + ".extra" in sys.modules
