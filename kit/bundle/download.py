"""A bundle named by URL: fetched to a file with a size bound, its sha256 checked first.

A bundle source is a local path or ``https://...#sha256=HEX`` (``http://`` only on a loopback
host, for tests). The download streams into a private file under the archive reader's bound
(``Limits.max_file_bytes``), hashing as it goes; a body over the bound, an unreachable host, a
redirect off https, a missing ``#sha256=`` or another digest is refused (BUNDLE_DOWNLOAD) before
any byte is parsed, so what the archive reader sees is exactly the file its sender named.
urllib only: no new dependency.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.bundle.archive import Limits
from kit.errors import ExitCode, KitError

_SHA256 = re.compile(r"^sha256=([0-9a-f]{64})$")
_CHUNK = 1 << 16
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BundleSource:
    """Where a bundle comes from: ``path`` (local), or ``url`` with its expected ``sha256``."""

    text: str
    path: Path | None = None
    url: str | None = None
    sha256: str | None = None

    @property
    def is_url(self) -> bool:
        return self.url is not None


def _refuse(text: str, why: str) -> KitError:
    return KitError(f"bundle {text}: {why}", ExitCode.BUNDLE_DOWNLOAD)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed(url: str) -> bool:
    """https anywhere; http only on a loopback host."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname))


def parse_source(text: str) -> BundleSource:
    """A ``--bundle`` value as a source: a URL must end in ``#sha256=<64 lowercase hex>``."""
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        return BundleSource(text, path=Path(text))
    url, _, fragment = text.partition("#")
    if not _allowed(url):
        raise _refuse(text, "only https:// URLs (http:// on a loopback host) are fetched")
    found = _SHA256.match(fragment.lower()) if fragment else None
    if found is None:
        raise _refuse(text, "a URL must end in #sha256=<64 hex digits>, the bundle's digest")
    return BundleSource(text, url=url, sha256=found.group(1))


class _HttpsOnly(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to an address a source may name itself."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        if not _allowed(newurl):
            raise urllib.error.URLError(f"redirected to {newurl}, which is not https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _stream(source: BundleSource, response: Any, dest: Path, limit: int) -> str:
    """Copy the body into ``dest`` (at most ``limit`` bytes) and return its sha256."""
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _refuse(source.text, f"{length} bytes, over the {limit}-byte bound")
    digest, total = hashlib.sha256(), 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := response.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise _refuse(source.text, f"more than {limit} bytes, over the bound")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def fetch(
    source: BundleSource, dest: Path, limits: Limits | None = None, timeout: float = TIMEOUT_S
) -> Path:
    """Download ``source`` into the new file ``dest`` and check its sha256; ``dest``.

    Everything that goes wrong is BUNDLE_DOWNLOAD, and ``dest`` is removed: the archive
    reader never sees a file whose digest is not the one named.
    """
    if source.url is None or source.sha256 is None:
        raise ValueError("fetch needs a URL source")
    opener = urllib.request.build_opener(_HttpsOnly())
    request = urllib.request.Request(source.url, headers={"User-Agent": "repro-kit"})
    try:
        with opener.open(request, timeout=timeout) as response:
            got = _stream(source, response, dest, (limits or Limits()).max_file_bytes)
    except KitError:
        dest.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as e:
        dest.unlink(missing_ok=True)
        raise _refuse(source.text, f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        dest.unlink(missing_ok=True)
        raise _refuse(source.text, f"unreachable ({e.reason})") from None
    except (OSError, ValueError) as e:
        dest.unlink(missing_ok=True)
        raise _refuse(source.text, f"download failed ({e})") from None
    if got != source.sha256:
        dest.unlink(missing_ok=True)
        raise _refuse(
            source.text, f"the download's sha256 is {got}, not {source.sha256}; not read further"
        )
    return dest
