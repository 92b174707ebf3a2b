"""A loopback stand-in for GitHub: the REST calls of deploy/github/review_pr.py, and files.

``FakeGitHub`` serves, on 127.0.0.1 only, what the workflow's ``post`` step calls (list an issue's
comments a page at a time, create one, update one; each with the bearer token checked and
recorded) and static files under ``/files/`` (the bundle a pull request names); ``tls=True``
serves https with a throwaway certificate for 127.0.0.1 (``ca_file``: trust it through
``SSL_CERT_FILE``). ``load_review_pr`` imports the workflow's script from its path.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import re
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support import REPO

SCRIPT = REPO / "deploy" / "github" / "review_pr.py"
WORKFLOW = REPO / "deploy" / "github" / "repro-kit-review.yml"
TOKEN = "ghs_fakeTokenForTheLoopbackApi0123456789"
BOT = "github-actions[bot]"


def load_review_pr() -> ModuleType:
    """deploy/github/review_pr.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("review_pr", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["review_pr"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class FakeGitHub:
    """Comments of one repository's issues, files under /files/, every request recorded."""

    def __init__(self, repo: str = "org/results", files: dict[str, bytes] | None = None) -> None:
        self.repo = repo
        self.files = dict(files or {})
        self.comments: dict[int, list[dict[str, Any]]] = {}  # issue -> comments
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization)
        self._next = 1000
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.ca_file: Path | None = None
        self.redirect: str | None = None  # a base URL every API call is redirected to

    def add_comment(self, issue: int, body: str, login: str) -> int:
        """A comment someone else posted (a hostile one may carry the marker)."""
        with self._lock:
            self._next += 1
            self.comments.setdefault(issue, []).append(
                {"id": self._next, "body": body, "user": {"login": login, "type": "User"}}
            )
            return self._next

    def start(self, tmp: Path, tls: bool = False) -> str:
        """Serve on 127.0.0.1 (a free port); the base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_PATCH(self) -> None:
                fake._handle(self, "PATCH")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if tls:
            cert, key = _self_signed(tmp)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.ca_file = cert
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        scheme = "https" if tls else "http"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -------------------------------------------------------------------------- requests

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path, _, query = h.path.partition("?")
        auth = h.headers.get("Authorization", "")
        with self._lock:
            self.requests.append((method, path, auth))
        if method == "GET" and path.startswith("/files/"):
            data = self.files.get(path[len("/files/") :])
            return self._send(h, 404, None) if data is None else self._raw(h, data)
        if self.redirect is not None:
            h.send_response(307)
            h.send_header("Location", self.redirect + h.path)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if auth != f"Bearer {TOKEN}":
            return self._send(h, 401, {"message": "Bad credentials"})
        length = int(h.headers.get("Content-Length") or 0)
        payload = json.loads(h.rfile.read(length)) if length else None
        prefix = f"/repos/{self.repo}/issues/"
        listing = re.fullmatch(re.escape(prefix) + r"(\d+)/comments", path)
        one = re.fullmatch(re.escape(prefix) + r"comments/(\d+)", path)
        with self._lock:
            if listing and method == "GET":
                params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                per, page = int(params.get("per_page", 30)), int(params.get("page", 1))
                shown = self.comments.get(int(listing.group(1)), [])
                return self._send(h, 200, shown[(page - 1) * per : page * per])
            if listing and method == "POST":
                self._next += 1
                made = {"id": self._next, "body": payload["body"], "user": {"login": BOT}}
                self.comments.setdefault(int(listing.group(1)), []).append(made)
                return self._send(h, 201, made)
            if one and method == "PATCH":
                for comments in self.comments.values():
                    for c in comments:
                        if c["id"] == int(one.group(1)):
                            c["body"] = payload["body"]
                            return self._send(h, 200, c)
        return self._send(h, 404, {"message": "Not Found"})

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _raw(h: BaseHTTPRequestHandler, data: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/gzip")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key (PEM files in ``tmp``)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "loopback-cert.pem", tmp / "loopback-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
