"""Checkpoints: the embedded models, one cached loader, and the metadata we save with a model.

A checkpoint is a folder: safetensors weights, the family's config JSON, and `unlearn_meta.json`
(family, base model, method, settings, forget-set hash, library version). Nothing is pickled.
`load_model` accepts an embedded name (`mae`), our folders, and real checkpoint folders of a
family (for MAE: any ViTMAE folder with config.json and weights).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from .errors import UserInputError
from .models import FAMILIES, family_class
from .models.base import META_FILE

FORMAT = "i2i-unlearning-studio"
FORMAT_VERSION = 1
CHECKPOINTS = Path(os.environ.get("UNLEARN_CHECKPOINTS", Path(__file__).resolve().parent.parent / "checkpoints"))
EMBEDDED = {"mae": "mae-animals"}  # family -> folder under checkpoints/
PROBE = "probe-animals"


def embedded_path(name: str) -> Path:
    return CHECKPOINTS / EMBEDDED.get(name, name)


def available_models() -> list[str]:
    """Families whose embedded checkpoint is present."""
    return [f for f, d in EMBEDDED.items() if (CHECKPOINTS / d / "config.json").exists()]


def detect_family(path: Path) -> str:
    meta = path / META_FILE
    if meta.exists():
        return json.loads(meta.read_text())["family"]
    cfg = path / "config.json"
    if cfg.exists():
        model_type = json.loads(cfg.read_text()).get("model_type")
        if model_type == "vit_mae":
            return "mae"
    raise UserInputError(f"{path}: not a model folder we know (no {META_FILE}, no ViTMAE config.json)")


def resolve(model: str, checkpoint: str | Path | None = None) -> Path:
    """The folder to load: `checkpoint` if given, else the embedded model of family `model`."""
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_dir():
            raise UserInputError(f"{checkpoint}: checkpoint folder not found")
        return path
    if model not in FAMILIES:
        raise UserInputError(f"unknown model {model!r}; choose from {', '.join(FAMILIES)}")
    path = embedded_path(model)
    if not path.is_dir():
        raise UserInputError(f"no embedded {model} checkpoint at {path}; train one with `python -m unlearn_core train --model {model}`")
    return path


def load_model(model: str, checkpoint: str | Path | None = None):
    """A fresh model (safe to train); use `cached_model` for read-only use."""
    path = resolve(model, checkpoint)
    family = detect_family(path)
    if checkpoint is not None and model in FAMILIES and family != model:
        raise UserInputError(f"{path} holds a {family} model, not {model}")
    return family_class(family).load(path).eval()


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float):
    return family_class(detect_family(Path(path))).load(path).eval().requires_grad_(False)


def cached_model(model: str, checkpoint: str | Path | None = None):
    """A shared, frozen model: never train it or change it in place."""
    path = resolve(model, checkpoint)
    return _cached(str(path.resolve()), (path / "config.json").stat().st_mtime)


@lru_cache(maxsize=1)
def load_probe():
    from .probe import Probe

    path = CHECKPOINTS / PROBE
    if not path.is_dir():
        raise UserInputError(f"no probe at {path}; train one with `python -m unlearn_core train --model probe`")
    return Probe.load(path).requires_grad_(False)


def read_metadata(path: str | Path) -> dict:
    f = Path(path) / META_FILE
    return json.loads(f.read_text()) if f.exists() else {}


def metadata(**fields) -> dict:
    from . import __version__

    return {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__, **fields}
