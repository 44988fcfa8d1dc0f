#!/usr/bin/env python3
"""Local static server for the site in web/, with the headers the deployed site gets.

    python scripts/serve.py --port 8000                # http://127.0.0.1:8000/
    python scripts/serve.py --port 0 --models /tmp/m   # any free port; serve another models folder

* Headers come from ``vercel.json`` (its ``headers`` rules, matched the way Vercel matches their
  ``source`` patterns), so the local page runs under the same COOP/COEP (cross-origin isolation →
  multi-threaded wasm) and CSP as the deployed one.
* Compression: a precompressed sibling (``file.br``, ``file.gz``, written by ``npm run vendor``) is
  sent when the request's Accept-Encoding allows it; other compressible files are gzipped on the fly
  (cached in memory by path + mtime + size). ``--no-compress`` turns both off.
* Stdlib only. Prints ``serving http://HOST:PORT/`` once listening (tests read the port from it).
"""
from __future__ import annotations

import argparse
import email.utils
import errno
import gzip
import json
import mimetypes
import os
import posixpath
import re
import sys
import threading
import urllib.parse
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME_MAX = 255  # longest file name (bytes) on Linux/macOS/Windows file systems

TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".wasm": "application/wasm", ".onnx": "application/octet-stream",
    ".py": "text/plain; charset=utf-8", ".toml": "text/plain; charset=utf-8", ".zip": "application/zip",
    ".png": "image/png", ".jpg": "image/jpeg", ".svg": "image/svg+xml", ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8", ".map": "application/json",
}
COMPRESSIBLE = {".html", ".js", ".mjs", ".css", ".json", ".wasm", ".py", ".toml", ".txt", ".svg",
                ".onnx", ".map"}


def vercel_rules(vercel_json: Path) -> list[tuple[re.Pattern, list[tuple[str, str]]]]:
    """vercel.json ``headers`` → (regex, headers). Later rules override earlier ones, as on Vercel."""
    if not vercel_json.is_file():
        return []
    rules = []
    for rule in json.loads(vercel_json.read_text()).get("headers", []):
        src = rule["source"]
        # path-to-regexp subset: literal text, "(.*)" groups, ":name" segments, ":name*" tails
        pattern = ""
        for tok in re.split(r"(\(\.\*\)|:[A-Za-z_]\w*\*?)", src):
            if tok == "(.*)":
                pattern += "(.*)"
            elif tok.startswith(":"):
                pattern += "(.*)" if tok.endswith("*") else "([^/]+)"
            else:
                pattern += re.escape(tok)
        rules.append((re.compile("^" + pattern + "$"), [(h["key"], h["value"]) for h in rule["headers"]]))
    return rules


def headers_for(path: str, rules) -> dict[str, str]:
    out: dict[str, str] = {}
    for rx, hs in rules:
        if rx.match(path):
            for k, v in hs:
                out[k] = v
    return out


@lru_cache(maxsize=64)
def _gzip_cached(path: str, mtime: float, size: int) -> bytes:
    return gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)


class Handler(BaseHTTPRequestHandler):
    server_version = "facelandmarks-serve"
    protocol_version = "HTTP/1.1"
    # answer malformed request lines with a status line and headers too (HTTP/0.9 would get neither)
    default_request_version = "HTTP/1.1"

    # set on the class by make_server()
    root: Path = ROOT / "web"
    models: Path | None = None
    rules: list = []
    compress: bool = True
    quiet: bool = False

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def send_response(self, code, message=None):
        self._sent_headers: set[str] = set()
        super().send_response(code, message)

    def send_header(self, keyword, value):
        getattr(self, "_sent_headers", set()).add(keyword.lower())
        super().send_header(keyword, value)

    def end_headers(self):
        """Every response, errors included (400/404/414/431/501 from http.server too), gets
        vercel.json's headers for its path; a header the response set itself is not sent twice."""
        try:
            path = urllib.parse.urlsplit(self.path).path if getattr(self, "path", "") else "/"
        except ValueError:
            path = "/"
        sent = getattr(self, "_sent_headers", set())
        for k, v in headers_for(path if path.startswith("/") else "/", self.rules).items():
            if k.lower() not in sent:
                super().send_header(k, v)
        super().end_headers()

    def resolve(self, url_path: str) -> Path | None:
        path = posixpath.normpath(urllib.parse.unquote(url_path))
        parts = [p for p in path.split("/") if p and p not in (".", "..")]
        if parts and parts[0] == "models" and self.models is not None:
            base, parts = self.models, parts[1:]
        else:
            base = self.root
        if any(len(p.encode()) > NAME_MAX for p in parts):
            return None  # no file has such a name (the file system would refuse to look it up)
        target = base.joinpath(*parts) if parts else base
        try:
            if target.is_dir():
                target = target / "index.html"
            target.resolve().relative_to(base.resolve())
            return target if target.is_file() else None
        except (OSError, ValueError):  # outside the base, a NUL byte, a path the OS refuses
            return None

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head: bool):
        url_path = urllib.parse.urlsplit(self.path).path
        target = self.resolve(url_path)
        if target is None:
            body = b"404 not found\n"
            self.send_response(HTTPStatus.NOT_FOUND)
            self.send_header("Cache-Control", "no-store")  # not vercel.json's, which is for files
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        ext = target.suffix.lower()
        ctype = TYPES.get(ext) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        accept = {e.split(";")[0].strip() for e in self.headers.get("Accept-Encoding", "").split(",")}
        st = target.stat()
        encoding, body_path, body = None, target, None
        if self.compress and ext in COMPRESSIBLE | {".zip"}:
            for enc, suffix in (("br", ".br"), ("gzip", ".gz")):
                sib = target.with_name(target.name + suffix)
                if enc in accept and sib.is_file() and sib.stat().st_mtime >= st.st_mtime - 1:
                    encoding, body_path = enc, sib
                    break
            if encoding is None and "gzip" in accept and ext in COMPRESSIBLE and st.st_size > 1024:
                encoding, body = "gzip", _gzip_cached(str(target), st.st_mtime, st.st_size)
        if body is None:
            try:
                body = body_path.read_bytes()
            except OSError:
                self.send_error(HTTPStatus.FORBIDDEN, "the file cannot be read")
                return
        etag = '"%x-%x%s"' % (int(st.st_mtime), st.st_size, "-" + encoding if encoding else "")
        if self.headers.get("If-None-Match") == etag:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if self.compress:
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return  # the client went away: nothing to answer, nothing to report
        super().handle_error(request, client_address)


def make_server(host: str = "127.0.0.1", port: int = 8000, root: Path | None = None,
                models: Path | None = None, compress: bool = True, quiet: bool = False,
                vercel_json: Path | None = None) -> ThreadingHTTPServer:
    attrs = dict(root=Path(root or ROOT / "web").resolve(),
                 models=Path(models).resolve() if models else None,
                 rules=vercel_rules(Path(vercel_json or ROOT / "vercel.json")),
                 compress=compress, quiet=quiet)
    handler = type("SiteHandler", (Handler,), attrs)
    return SiteServer((host, port), handler)


def serve_in_thread(**kw) -> tuple[ThreadingHTTPServer, str]:
    """Start a server on a background thread (for tests); returns (server, base URL)."""
    server = make_server(**kw)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 = any free port")
    ap.add_argument("--root", type=Path, default=ROOT / "web", help="site folder (default: web/)")
    ap.add_argument("--models", type=Path, help="serve this folder as /models/ instead of web/models/")
    ap.add_argument("--no-compress", action="store_true", help="send every file uncompressed")
    ap.add_argument("--quiet", action="store_true", help="no request log")
    args = ap.parse_args(argv)
    if not (args.root / "index.html").is_file():
        print(f"{args.root}/index.html not found", file=sys.stderr)
        return 2
    try:
        server = make_server(args.host, args.port, args.root, args.models, not args.no_compress,
                             args.quiet)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"error: port {args.port} on {args.host} is already in use (another server?): "
                  "stop it or pick another port with --port N (make serve PORT=N)", file=sys.stderr)
        else:
            print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    print(f"serving http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
