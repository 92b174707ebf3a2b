"""kit.container.choice: which image a re-run uses, from the bundle's record and local images."""

from __future__ import annotations

import pytest

from kit.container.choice import choose_image
from kit.errors import ExitCode, KitError

LOCK = "dev.repro-kit.lockfile-sha256"
FLAVOR = "dev.repro-kit.flavor"


def test_choose_image_decisions() -> None:
    lock, other = "a" * 64, "b" * 64
    local = [
        {
            "id": "sha256:" + "1" * 64,
            "tags": ["repro-kit:cpu"],
            "labels": {LOCK: lock, FLAVOR: "cpu"},
        }
    ]
    rec = {"image_id": "sha256:" + "1" * 64, "flavor": "cpu", "lockfile_sha256": other}
    assert choose_image(rec, local, lock)["image"] == rec["image_id"]  # present: used as is
    rec = {"image_id": "sha256:" + "9" * 64, "flavor": "cpu", "lockfile_sha256": lock}
    choice = choose_image(rec, local, lock)
    assert choice["action"] == "use" and choice["image"] == local[0]["id"]
    assert choose_image(rec, [], lock)["action"] == "build"
    with pytest.raises(KitError) as e:
        choose_image({**rec, "lockfile_sha256": other}, local, lock)
    assert e.value.code == ExitCode.DOCKER and "lockfile" in e.value.message
