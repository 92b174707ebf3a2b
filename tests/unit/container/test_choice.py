"""kit.container.choice: which image a re-run uses, from the bundle's record and local images."""

from __future__ import annotations

import dataclasses

import pytest

from kit.container.choice import ImageAction, RecordedImage, choose_image
from kit.container.engine import Image
from kit.errors import ExitCode, KitError

LOCK = "dev.repro-kit.lockfile-sha256"
FLAVOR = "dev.repro-kit.flavor"


def test_choose_image_decisions() -> None:
    lock, other = "a" * 64, "b" * 64
    local = [Image("sha256:" + "1" * 64, ("repro-kit:cpu",), {LOCK: lock, FLAVOR: "cpu"})]
    rec = RecordedImage("sha256:" + "1" * 64, "cpu", other)
    choice = choose_image(rec, local, lock)
    assert choice.image == rec.image_id and choice.is_recorded  # present: used as is
    rec = RecordedImage("sha256:" + "9" * 64, "cpu", lock)
    choice = choose_image(rec, local, lock)
    assert choice.action is ImageAction.USE and choice.image == local[0].id
    assert choose_image(rec, [], lock).action is ImageAction.BUILD
    with pytest.raises(KitError) as e:
        choose_image(dataclasses.replace(rec, lockfile_sha256=other), local, lock)
    assert e.value.code == ExitCode.DOCKER and "lockfile" in e.value.message
