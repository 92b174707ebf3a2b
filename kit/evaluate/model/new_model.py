"""Metadata for a model mteb does not know: a local sentence-transformers folder.

``read_card`` reads the folder's README.md front matter (huggingface_hub's ``ModelCard``);
``build_model_meta`` starts from mteb's ``ModelMeta.from_sentence_transformer_model`` and adds
what the folder and the user know; ``model_meta_json`` is the model_meta.json a results
repository needs, as mteb's ``ResultCache`` writes it; ``python_entry`` is a ``ModelMeta(...)``
entry to paste into mteb's model implementations. Usage errors exit 2 (``ExitCode.USAGE``).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from kit.errors import ExitCode, KitError

if TYPE_CHECKING:
    from mteb.models.model_meta import ModelMeta
    from sentence_transformers import SentenceTransformer

CARD = "README.md"
MB = 1024**2
# Fields mteb's registry wants that the kit cannot know: a None among them gets a TODO.
TODO_FIELDS = (
    "release_date",
    "languages",
    "license",
    "public_training_code",
    "public_training_data",
    "reference",
    "use_instructions",
    "training_datasets",
    "adapted_from",
    "citation",
    "contacts",
)


@dataclass(frozen=True)
class CardInfo:
    """What a model card's front matter says; ``note`` says why a card was ignored."""

    license: str | None = None
    base_model: str | None = None
    base_model_revision: str | None = None
    languages: tuple[str, ...] | None = None
    model_name: str | None = None
    note: str | None = None


def read_card(folder: Path) -> CardInfo:
    """The front matter of ``folder/README.md``, parsed by huggingface_hub.

    No README or no front matter gives an empty ``CardInfo``. A front matter that does not
    parse is treated as absent too (the model still evaluates), with ``note`` saying why.
    """
    from huggingface_hub import ModelCard, ModelCardData
    from mteb.models.model_meta import _get_source_model

    path = Path(folder) / CARD
    if not path.is_file():
        return CardInfo()
    try:
        data = ModelCard(path.read_text(encoding="utf-8")).data
    except Exception as e:  # ValueError, or yaml's YAMLError (yaml ships no type stubs)
        why = _first_line(e)
        return CardInfo(note=f"{CARD}: front matter ignored, it does not parse ({why})")
    if not isinstance(data, ModelCardData):  # ModelCard always parses into one
        return CardInfo()
    language = data.language
    return CardInfo(
        license=_str_or_none(data.license),
        base_model=_str_or_none(_get_source_model(data)),
        base_model_revision=_str_or_none(data.get("base_model_revision")),
        languages=(language,) if isinstance(language, str) else _tuple_or_none(language),
        model_name=_str_or_none(data.model_name),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _tuple_or_none(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def build_model_meta(
    model: SentenceTransformer,
    *,
    name: str,
    revision: str | None,
    folder: Path,
    release_date: str | None,
    training_datasets: list[str] | None,
    fetch_from_hf: bool,
) -> ModelMeta:
    """mteb's metadata for a loaded ``model`` from ``folder``, completed from the folder.

    mteb names a local model from its sentence-transformers card data (usually empty), so the
    hub is asked about ``name`` (``fetch_from_hf``), merged as mteb merges it: the loaded
    model wins. The folder's own facts come last: parameters counted and memory summed over the
    tensors as loaded (mteb's rule without the hub assumes 4 bytes each), and the card.
    ``training_datasets`` must be mteb task names (``[]``: none of them; ``None``: unknown).
    """
    from mteb.models.model_meta import FRAMEWORKS, MODEL_TYPES, ModelMeta

    with warnings.catch_warnings():  # mteb 2.26 warns for its own default fill_missing=False
        warnings.simplefilter("ignore", DeprecationWarning)
        meta = ModelMeta.from_sentence_transformer_model(model, revision=revision)
    if fetch_from_hf:
        try:
            meta = ModelMeta.from_hub(name, revision).merge(meta)
        except Exception as e:  # offline, unreachable, or the hub said no
            raise KitError(
                f"could not read {name}'s metadata from the hub ({_first_line(e)})",
                ExitCode.NOT_FOUND,
            ) from None
    card = read_card(folder)
    params = list(model.parameters())
    update: dict[str, Any] = {
        "name": name,
        "revision": revision or meta.revision,
        "n_parameters": sum(p.numel() for p in params),
        "memory_usage_mb": round(sum(p.numel() * p.element_size() for p in params) / MB),
        "release_date": _release_date(release_date) if release_date else meta.release_date,
        "training_datasets": _training_datasets(training_datasets),
        "open_weights": True,
        "modalities": ["text"],
        # mteb's merge lists a set: put it back in the order mteb declares
        "framework": _in_order(meta.framework, get_args(FRAMEWORKS)),
        "model_type": _in_order(meta.model_type, get_args(MODEL_TYPES)),
    }
    if card.license and card.license != "other":  # mteb's own reading of "other"
        update["license"] = card.license
    if card.base_model:
        update["adapted_from"] = card.base_model
    if card.languages:
        from mteb.languages.iso_mappings import _hf_langs_to_iso_lang_scripts

        update["languages"] = _hf_langs_to_iso_lang_scripts(list(card.languages))
    return _validated(meta.model_copy(update=update))


def _in_order(values: Sequence[str], order: tuple[str, ...]) -> list[str]:
    return sorted(set(values), key=lambda v: (order.index(v) if v in order else len(order), v))


def _release_date(value: str) -> str:
    """``value`` if mteb's ``StrDate`` reads it as itself, i.e. an ISO date YYYY-MM-DD."""
    from mteb.types import StrDate
    from pydantic import TypeAdapter, ValidationError

    try:
        ok = TypeAdapter(StrDate).validate_python(value) == value
    except ValidationError:
        ok = False
    if not ok:
        raise KitError(f"release date {value!r} is not a date YYYY-MM-DD", ExitCode.USAGE)
    return value


def _training_datasets(names: list[str] | None) -> set[str] | None:
    """The mteb task names in ``names`` (renamed tasks under their new name)."""
    import mteb

    if names is None:
        return None
    out = set()
    for name in names:
        try:
            out.add(mteb.get_task(name).metadata.name)
        except KeyError as e:  # mteb's message names its closest match
            why = str(e.args[0]) if e.args else name
            raise KitError(f"unknown training dataset: {why}", ExitCode.USAGE) from None
    return out


def _validated(meta: ModelMeta) -> ModelMeta:
    """``meta`` run through mteb's validators (``model_copy`` skips them)."""
    from pydantic import ValidationError

    fields = {k: getattr(meta, k) for k in type(meta).model_fields}
    try:
        return type(meta).model_validate(fields)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise KitError(f"model metadata refused by mteb: {errs}", ExitCode.USAGE) from None


def model_meta_json(meta: ModelMeta) -> dict[str, Any]:
    """model_meta.json as mteb's ``ResultCache.save_to_cache`` writes it (``to_dict()``).

    mteb lists ``training_datasets``, a set, in hash order; here it is sorted, so
    ``json.dumps(model_meta_json(meta), indent=4)`` gives the same bytes on every run.
    """
    out = meta.to_dict()
    if isinstance(meta.training_datasets, set):
        out["training_datasets"] = sorted(meta.training_datasets)
    result: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return result


def python_entry(meta: ModelMeta, variable: str | None = None) -> str:
    """Python source of ``meta`` as an entry for mteb's model implementations.

    The body is mteb's own ``ModelMeta.to_python()``; the kit adds the imports, the variable
    (``variable`` or the model's name in snake case) and a TODO on fields left unknown.
    """
    imports = {
        ("mteb.models.model_meta", "ModelMeta"),
        ("mteb.models.model_meta", "ScoringFunction"),
    }
    for field in type(meta).model_fields:
        value = getattr(meta, field)
        for item in value if isinstance(value, (list, set, tuple)) else [value]:
            if isinstance(item, Enum):
                imports.add((type(item).__module__, type(item).__name__))
    if meta.loader is not None:
        loader = getattr(meta.loader, "func", meta.loader)  # mteb names a partial by its func
        imports.add((loader.__module__, loader.__name__))
    var = variable or _variable_name(meta.name or "model")
    modules = sorted({mod for mod, _ in imports})
    lines = [
        f"from {m} import {', '.join(sorted(o for n, o in imports if n == m))}" for m in modules
    ]
    lines += ["", ""]
    for line in meta.to_python().splitlines():
        m = re.fullmatch(r" {4}(\w+)=None,", line)
        if line == "ModelMeta(":
            line = f"{var} = ModelMeta("
        elif m and m.group(1) in TODO_FIELDS:
            line += "  # TODO: fill in"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _variable_name(name: str) -> str:
    var = re.sub(r"\W+", "_", name.rsplit("/", 1)[-1]).strip("_").lower() or "model"
    return f"model_{var}" if var[0].isdigit() else var
