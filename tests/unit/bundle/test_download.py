"""kit.bundle.download against a real HTTP server on the loopback interface (in a thread):
the sha256 is checked before anything is kept, the size bound holds, and only https (http on
loopback) is fetched."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.bundle.archive import Limits
from kit.bundle.download import fetch, parse_source
from kit.errors import ExitCode, KitError

BODY = b"\x1f\x8b" + bytes(range(256)) * 40  # any bytes: nothing here parses them
DIGEST = hashlib.sha256(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect-off":
            self.send_response(302)
            self.send_header("Location", "http://example.org/b.tar.gz")
            self.end_headers()
            return
        if self.path == "/redirect-here":
            self.send_response(302)
            self.send_header("Location", "/b.tar.gz")
            self.end_headers()
            return
        if self.path != "/b.tar.gz":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _refused(text: str, dest: Path, limits: Limits | None = None) -> KitError:
    with pytest.raises(KitError) as e:
        fetch(parse_source(text), dest, limits)
    assert e.value.code == ExitCode.BUNDLE_DOWNLOAD
    assert not dest.exists()  # nothing kept of a refused download
    return e.value


def test_a_url_with_its_sha256_is_fetched(server: str, tmp_path: Path) -> None:
    dest = fetch(parse_source(f"{server}/b.tar.gz#sha256={DIGEST}"), tmp_path / "b")
    assert dest.read_bytes() == BODY
    assert (dest.stat().st_mode & 0o777) == 0o600
    via = fetch(parse_source(f"{server}/redirect-here#sha256={DIGEST}"), tmp_path / "c")
    assert via.read_bytes() == BODY


def test_another_sha256_is_refused_and_nothing_kept(server: str, tmp_path: Path) -> None:
    other = hashlib.sha256(b"another bundle").hexdigest()
    e = _refused(f"{server}/b.tar.gz#sha256={other}", tmp_path / "b")
    assert f"sha256 is {DIGEST}, not {other}" in e.message


def test_over_the_bound_is_refused(server: str, tmp_path: Path) -> None:
    small = Limits(max_file_bytes=len(BODY) - 1)
    e = _refused(f"{server}/b.tar.gz#sha256={DIGEST}", tmp_path / "b", small)
    assert "bound" in e.message


@pytest.mark.parametrize(
    ("path", "why"),
    [("/missing.tar.gz", "HTTP 404"), ("/redirect-off", "not https")],
)
def test_unusable_urls_are_refused(server: str, tmp_path: Path, path: str, why: str) -> None:
    assert why in _refused(f"{server}{path}#sha256={DIGEST}", tmp_path / "b").message


def test_an_unreachable_host_is_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert (
        "unreachable"
        in _refused(f"http://127.0.0.1:{port}/b#sha256={DIGEST}", tmp_path / "b").message
    )


@pytest.mark.parametrize(
    "text",
    [
        "https://example.org/b.tar.gz",  # no digest
        "https://example.org/b.tar.gz#sha256=abc",  # not 64 hex digits
        f"http://example.org/b.tar.gz#sha256={DIGEST}",  # http off loopback
        f"ftp://127.0.0.1/b.tar.gz#sha256={DIGEST}",
        f"file:///etc/passwd#sha256={DIGEST}",
    ],
)
def test_sources_that_are_no_fetchable_url(text: str) -> None:
    with pytest.raises(KitError) as e:
        parse_source(text)
    assert e.value.code == ExitCode.BUNDLE_DOWNLOAD


def test_paths_stay_paths() -> None:
    source = parse_source("bundles/b.tar.gz")
    assert not source.is_url and source.path == Path("bundles/b.tar.gz")
    url = parse_source(f"https://example.org/x/b.tar.gz#sha256={DIGEST.upper()}")
    assert url.url == "https://example.org/x/b.tar.gz" and url.sha256 == DIGEST
