"""The hub revision a local-model bundle is exported under (``export --revision``).

A local folder has no revision: its results go to the results repository under the commit of
its hub upload, and only when the cached snapshot of that commit holds the evaluated files.
"""

from __future__ import annotations

import re
from typing import Any

from kit.errors import ExitCode, KitError

_SHA = re.compile(r"^[0-9a-f]{40}$")


def upload_revision(
    manifest: dict[str, Any], run: dict[str, Any], revision: str | None
) -> str | None:
    """The hub revision a local-model bundle is exported under, checked by content digest.

    A local folder has no revision; its results go to the results repository under the
    revision of its hub upload, and only if the cached snapshot of that revision holds the
    same files (the bundle's model digest). Registered and hub models keep their own.
    """
    from kit.evaluate.model.identity import digest_folder
    from kit.machine.hfcache import snapshot_folder
    from kit.runfolder import files_from_record, first_difference

    model = manifest["model"]
    if model.get("source") != "local":
        if revision is not None and revision != model["revision"]:
            raise KitError(
                f"--revision {revision}: the bundle evaluated {model['name']} at "
                f"{model['revision']}; --revision is for local-model bundles",
                ExitCode.USAGE,
            )
        return None
    if revision is None:
        raise KitError(
            f"this bundle evaluated a local folder; upload it ({model['name']}) and give the "
            "upload's commit: --revision SHA (checked against the bundle's model digest)",
            ExitCode.USAGE,
        )
    if not _SHA.match(revision):
        raise KitError(f"--revision {revision!r} is not a 40-hex commit", ExitCode.USAGE)
    snap = snapshot_folder(model["name"], revision)
    if snap is None:
        raise KitError(
            f"{model['name']}@{revision} is not in the local HF cache; fetch it first: "
            f"repro-kit prefetch {model['name']} --revision {revision}",
            ExitCode.DATA_MISSING,
        )
    here = digest_folder(snap)
    if here.digest != model.get("digest"):
        recorded = (run.get("model") or {}).get("files") or []
        what = first_difference(files_from_record(recorded), here.files)
        raise KitError(
            f"{model['name']}@{revision[:12]} holds other files than the evaluated folder "
            f"(digest {here.digest}, bundle {model.get('digest')}: {what}); refusing to export",
            ExitCode.MODEL_DIGEST,
        )
    return revision
