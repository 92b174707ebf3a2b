"""Image figures: size, cold build, code-only rebuild, and `docker run` to first result.

Needs a Docker daemon (scripts/docker-up.sh) and a base image (scripts/make-base-image.sh
where no registry is reachable). Builds through `repro-kit container build` (docker SDK,
classic builder), then runs the default task hermetically (`--network none`, read-only
HF cache) through `repro-kit container evaluate`.

    python benchmarks/image_timings.py --base-image local/python:3.11-slim \\
        [--flavor cpu] [--ca-cert /etc/ssl/certs/ca-certificates.crt] [--wheels DIR] \\
        [--network host] [--skip-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REPRO_KIT_SHARED", REPO.parent / "shared"))


def _kit(*args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kit", *args], cwd=REPO, capture_output=True, text=True
    )
    if proc.returncode:
        sys.exit(f"failed: repro-kit {' '.join(args)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def _source_copy(dest: Path) -> Path:
    """A copy of the checkout's build inputs with one code-only change."""
    for name in ("Dockerfile.cpu", "Dockerfile.cuda", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "lockfiles", dest / "lockfiles")
    shutil.copytree(REPO / "kit", dest / "kit", ignore=shutil.ignore_patterns("__pycache__"))
    with (dest / "kit" / "__init__.py").open("a") as f:
        f.write(f"# code-only change for the rebuild benchmark {time.time()}\n")
    return dest


def _size(tag: str) -> int:
    out = subprocess.run(
        ["docker", "image", "inspect", tag], capture_output=True, text=True, check=True
    ).stdout
    return int(json.loads(out)[0]["Size"])


def _first_result(out: Path, t0: float, seen: dict[str, float], stop: threading.Event) -> None:
    while not stop.is_set():
        hits = (
            [p for p in (out / "results").rglob("*.json") if p.name != "model_meta.json"]
            if (out / "results").is_dir()
            else []
        )
        if hits:
            seen["first"] = time.perf_counter() - t0
            return
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flavor", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--base-image", default=None)
    ap.add_argument("--ca-cert", default=None)
    ap.add_argument("--wheels", default=None)
    ap.add_argument("--network", default="host", help="network for the build's RUN steps")
    ap.add_argument("--skip-cold", action="store_true", help="reuse the layer cache")
    ap.add_argument("--task", default="STSBenchmark")
    a = ap.parse_args()

    tag = f"repro-kit:bench-{a.flavor}"
    common = ["container", "build", "--flavor", a.flavor, "--network", a.network]
    for opt, val in (("--base-image", a.base_image), ("--ca-cert", a.ca_cert)):
        if val:
            common += [opt, val]
    if a.wheels:
        common += ["--wheels", a.wheels]

    cold = None if a.skip_cold else _kit(*common, "--tag", tag, "--no-cache")
    if a.skip_cold:
        _kit(*common, "--tag", tag)
    with tempfile.TemporaryDirectory(prefix="rk-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "src").mkdir()
        src = _source_copy(tmp / "src")
        code_only = _kit(*common, "--tag", f"{tag}-code", "--source", str(src))
        size = _size(tag)

        t0 = time.perf_counter()
        subprocess.run(
            ["docker", "run", "--rm", "--network", "none", tag, "--version"],
            check=True,
            capture_output=True,
        )
        startup = time.perf_counter() - t0

        result = None
        if a.flavor == "cpu":
            hf = tmp / "hf"
            ds = f"mteb___{a.task.lower()}-sts"
            for part, name in (
                ("datasets", ds),
                ("hub", ds.replace("mteb___", "datasets--mteb--")),
            ):
                if (SHARED / "mteb-cache" / part / name).exists():
                    shutil.copytree(SHARED / "mteb-cache" / part / name, hf / part / name)
            hf.mkdir(exist_ok=True)
            out = tmp / "out"
            seen: dict[str, float] = {}
            stop = threading.Event()
            t0 = time.perf_counter()
            watcher = threading.Thread(target=_first_result, args=(out, t0, seen, stop))
            watcher.start()
            total = _kit(
                "container",
                "evaluate",
                "--image",
                tag,
                "--network",
                "none",
                "--hf-home",
                str(hf),
                "-o",
                str(out),
                "--tasks",
                a.task,
                "-q",
            )
            stop.set()
            watcher.join()
            score = json.loads((out / "run.json").read_text())["tasks"][0]["main_score"]
            result = (seen.get("first", total), total, score)
        subprocess.run(["docker", "image", "rm", f"{tag}-code"], capture_output=True)

    print(f"image {tag} ({a.flavor}), base {a.base_image or 'default'}")
    print(f"  size                    {size / 1e9:.2f} GB")
    print(f"  cold build (--no-cache) {'skipped' if cold is None else f'{cold:.0f} s'}")
    print(f"  code-only rebuild       {code_only:.1f} s")
    print(f"  docker run --version    {startup:.1f} s")
    if result:
        first, total, score = result
        print(
            f"  docker run to first result ({a.task}, --network none): {first:.1f} s "
            f"(whole run {total:.1f} s, main score {score:.10f})"
        )


if __name__ == "__main__":
    main()
