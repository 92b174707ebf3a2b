"""`repro-kit report`'s HTML rendered in headless Chromium: screenshot decoded, DOM dumped.

Skipped where no Chromium is installed (Debian: `apt-get install chromium`), failed instead
under CI (REPRO_KIT_CI, or REPRO_KIT_REQUIRE_CHROMIUM). The report is the session's
`html_report` of `biosses_bundle` (tests/conftest.py).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np

from tests.reportpage import assert_no_network, expected_rows, parse, task_row
from tests.support import require


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


def decode_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (CRCs, zlib stream and filters checked)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])[0]
        chunks.append((kind, body))
        pos += 12 + n
        if kind == b"IEND":
            break
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = w * bpp
    assert len(raw) == h * (stride + 1)
    img = np.zeros((h, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        start = y * (stride + 1)
        f = raw[start]
        line = np.frombuffer(raw, np.uint8, stride, start + 1).astype(np.int64)
        if f == 0:
            cur = line
        elif f == 1:
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) % 256
        elif f == 2:
            cur = (line + prev) % 256
        elif f in (3, 4):
            out, lb, pb = [0] * stride, line.tolist(), prev.tolist()
            for i in range(stride):
                a = out[i - bpp] if i >= bpp else 0
                b = pb[i]
                c = pb[i - bpp] if i >= bpp else 0
                if f == 3:
                    p = (a + b) // 2
                else:
                    pa, pbb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pbb and pa <= pc else (b if pbb <= pc else c)
                out[i] = (lb[i] + p) & 255
            cur = np.array(out, dtype=np.int64)
        else:
            raise AssertionError(f"bad PNG filter {f}")
        img[y] = cur
        prev = cur
    return img.reshape(h, w, bpp)[:, :, :3].astype(np.uint8)


def test_html_in_headless_chromium(html_report: Path, biosses_bundle: Path, tmp_path) -> None:
    chromium = find_chromium()
    require("chromium", chromium is not None, "apt-get install chromium")
    assert chromium is not None
    url = html_report.resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'p'}"]
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1280,2000", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    img = decode_png(shot.read_bytes())
    assert img.shape[1] >= 1280 and img.shape[0] >= 2000, img.shape
    colours = np.unique(img[::4, ::4].reshape(-1, 3), axis=0)
    assert len(colours) > 50, "screenshot is (nearly) blank"
    # the FAIL bar (#cf222e) and the tolerance band (#dafbe1) were painted
    expected = expected_rows(biosses_bundle)
    has = {tuple(c) for c in colours.tolist()}
    assert ((207, 34, 46) in has) == any(e["ok"] is False for e in expected.values())
    assert (218, 251, 225) in has

    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    text = " ".join(" ".join(page.text).split())
    for name in expected:
        task_row(page, name)
        assert name in text
    assert "Mean over 2 tasks (BIOSSES, STSBenchmark)" in text
    assert "STS mean (2 tasks)" in text
    assert_no_network(dom.stdout)


def test_baseline_report_of_the_journey_in_headless_chromium(journey, tmp_path) -> None:
    """The journey's report against the published base as a baseline (tests/journeytools.py):
    gains drawn as wins (green bars), the task it trained on marked not zero-shot."""
    chromium = find_chromium()
    require("chromium", chromium is not None, "apt-get install chromium")
    assert chromium is not None and journey.proc.returncode == 0, journey.proc.stderr[-2000:]
    url = (journey.out / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'p'}"]
    shot = tmp_path / "baseline.png"
    proc = subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1280,2400", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    has = {
        tuple(c)
        for c in np.unique(decode_png(shot.read_bytes())[::2, ::2].reshape(-1, 3), axis=0).tolist()
    }
    assert (26, 127, 55) in has  # a win's bar and badge: #1a7f37
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    text = " ".join(" ".join(page.text).split())
    assert "beats the baseline on " in text and "(1 not zero-shot)" in text
    row = task_row(page, "STSBenchmark")
    assert row[7] == "win (not zero-shot)" and row[8] == "no: trained on it"
    assert ((207, 34, 46) in has) == any(
        r[7] == "loss" for r in page.rows if r and len(r) >= 9 and r[0] != "task"
    )
    assert_no_network(dom.stdout)
