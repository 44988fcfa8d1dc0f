"""scripts/serve.py: the local server sends vercel.json's headers, compressed bodies, and nothing
outside web/ (no browser needed)."""
from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import pytest

from bench import browser as helpers


@pytest.fixture(scope="module")
def site():
    with helpers.serve() as url:
        yield url


def get(url, encoding=None):
    req = urllib.request.Request(url, headers={"Accept-Encoding": encoding} if encoding else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def vercel_headers(source):
    rules = json.loads((helpers.ROOT / "vercel.json").read_text())["headers"]
    return {h["key"]: h["value"] for r in rules if r["source"] == source for h in r["headers"]}


def test_page_has_the_deployed_headers(site):
    status, headers, body = get(site)
    assert status == 200 and b"<script type=\"py\"" in body
    for key, value in vercel_headers("/(.*)").items():
        assert headers.get(key) == value, key
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "'wasm-unsafe-eval'" in csp and "http" not in csp


def test_vercel_json_shape():
    v = json.loads((helpers.ROOT / "vercel.json").read_text())
    assert v["outputDirectory"] == "web"
    assert vercel_headers("/vendor/(.*)")["Cache-Control"].startswith("public, max-age=31536000")


def test_compression_and_caching(site):
    status, headers, body = get(site + "pixels.js", "gzip")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert b"toInput" in gzip.decompress(body)
    status, headers, body = get(site + "pixels.js")
    assert "Content-Encoding" not in headers and b"toInput" in body
    if not (helpers.WEB / "vendor" / "VENDORED.json").is_file():
        pytest.skip("web/vendor not built")
    files = json.loads((helpers.WEB / "vendor" / "VENDORED.json").read_text())["files"]
    wasm = next(f["file"] for f in files if f["file"].endswith("ort-wasm-simd-threaded.wasm"))
    status, headers, body = get(f"{site}vendor/{wasm}", "gzip, deflate, br")
    assert status == 200 and headers["Content-Encoding"] == "br"
    assert headers["Content-Type"] == "application/wasm"
    assert headers["Cache-Control"].startswith("public, max-age=31536000, immutable")
    assert len(body) < 0.3 * next(f["raw"] for f in files if f["file"] == wasm)


def test_not_found_and_no_escape(site):
    assert get(site + "nope.txt")[0] == 404
    assert get(site + "../pyproject.toml")[0] == 404
    assert get(site + "%2e%2e/pyproject.toml")[0] == 404
