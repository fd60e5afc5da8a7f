"""Checkpoints: the embedded models, one cached loader, and the metadata we save with a model.

A checkpoint is a folder: safetensors weights, the family's config JSON, and `unlearn_meta.json`
(family, base model, method, settings, forget-set hash, library version). Nothing is pickled.
`load_model` accepts an embedded name (`mae`), our folders, real checkpoint folders of a family
(for MAE: any ViTMAE folder with config.json and weights; for diffusion: a diffusers folder with a
conditional UNet2DModel), and the same as a Hugging Face Hub id (`owner/name`, optionally
`owner/name@revision`), fetched when online (only JSON/YAML configs and safetensors weights: no
pickles) and read from the local cache when offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from unlearn_core import shipped
from unlearn_core.errors import UserInputError
from unlearn_core.models.base import META_FILE
from unlearn_core.models.registry import family_names, get_family

FORMAT = "i2i-unlearning-studio"
FORMAT_VERSION = 1
CHECKPOINTS = Path(os.environ.get("UNLEARN_CHECKPOINTS", shipped("checkpoints")))
PROBE = "probe-animals"


def embedded_folders() -> dict[str, str]:
    """family -> its embedded checkpoint's folder under CHECKPOINTS (families that have one)."""
    return {name: f.embedded for name, f in ((n, get_family(n)) for n in family_names()) if f.embedded}


def embedded_path(name: str) -> Path:
    """The folder of family `name`'s embedded checkpoint, or of the folder `name` (the probe's)."""
    return CHECKPOINTS / (get_family(name).embedded or name if name in family_names() else name)


def available_models() -> list[str]:
    """Families whose embedded checkpoint is present."""
    return [f for f, d in embedded_folders().items() if (CHECKPOINTS / d / META_FILE).exists()]


def detect_family(path: Path) -> str:
    meta = path / META_FILE
    if meta.exists():
        return json.loads(meta.read_text())["family"]
    for cfg in (path / "config.json", path / "unet" / "config.json"):
        if cfg.exists():
            config = json.loads(cfg.read_text())
            if config.get("model_type") == "vit_mae":
                return "mae"
            if config.get("_class_name") == "UNet2DModel":
                return "diffusion"
    raise UserInputError(f"{path}: not a model folder we know (no {META_FILE}, no ViTMAE or diffusers UNet2DModel config.json)")


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
HUB_FILES = ["*.json", "*.yaml", "*.yml", "*.safetensors", "*.txt", "*.md"]


def is_hub_id(text: str) -> bool:
    """`owner/name` or `owner/name@revision`, and no such folder here."""
    return bool(HUB_ID.match(text)) and not Path(text).exists()


def hub_folder(repo: str) -> Path:
    """The local folder of Hub model `repo` (`owner/name[@revision]`): downloaded when online, from
    the cache when offline. Configs and safetensors weights only."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    repo_id, _, revision = repo.partition("@")
    try:
        return Path(snapshot_download(repo_id, revision=revision or None, allow_patterns=HUB_FILES))
    except LocalEntryNotFoundError:
        raise UserInputError(
            f"{repo}: not a folder here, and not in the local Hugging Face cache while offline "
            "(unset HF_HUB_OFFLINE and connect to download it)"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError):
        raise UserInputError(f"{repo}: no such folder here, and no such model on the Hugging Face Hub") from None
    except OSError as e:  # network failures
        raise UserInputError(f"{repo}: could not download it from the Hugging Face Hub ({type(e).__name__})") from None


def resolve(model: str, checkpoint: str | Path | None = None) -> Path:
    """The folder to load: `checkpoint` (a folder, or a Hub id) if given, else the embedded model
    of family `model`."""
    if checkpoint is not None:
        path = Path(checkpoint)
        if path.is_dir():
            return path
        if is_hub_id(str(checkpoint)):
            return hub_folder(str(checkpoint))
        raise UserInputError(f"{checkpoint}: checkpoint folder not found")
    return _embedded(model)


def _embedded(model: str) -> Path:
    if model not in family_names():
        raise UserInputError(f"unknown model {model!r}; choose from {', '.join(family_names())}")
    if get_family(model).embedded is None:
        raise UserInputError(f"the {model} family has no embedded checkpoint; give a model folder or Hub id")
    path = embedded_path(model)
    if not path.is_dir():
        raise UserInputError(f"no embedded {model} checkpoint at {path}; train one with `python -m unlearn_core train --model {model}`")
    return path


def _checked_family(model: str, checkpoint: str | Path | None, path: Path) -> str:
    family = detect_family(path)
    if checkpoint is not None and model in family_names() and family != model:
        held = get_family(family).label if family in family_names() else family
        raise UserInputError(f"{Path(checkpoint).name} holds a {held} model, not {get_family(model).label}: pick that model family")
    return family


# Models load one at a time. A family's first load imports diffusers, whose lazy top-level module
# fails when two threads import it at once ("cannot import name 'VQModel' from 'diffusers'", seen
# when loading VQ-GAN from four threads, as the app's events do when a visitor picks the family;
# docs/architecture.md, 'Package layout'); waiting also lets a second caller of `cached_model` find
# the first one's model.
_LOADING = threading.RLock()


def _new_loading_lock() -> None:
    """In a forked child (ZeroGPU runs GPU work in one): a lock another thread held at the fork
    would stay held there for good."""
    global _LOADING
    _LOADING = threading.RLock()


os.register_at_fork(after_in_child=_new_loading_lock)


def _load(family: str, path: str | Path):
    """A family's loader, with any failure to read the files (a corrupt or truncated weights file,
    an unexpected format) said in one line naming the folder."""
    try:
        with _LOADING:
            return get_family(family).model.load(path).eval()
    except UserInputError:
        raise
    except Exception as e:
        raise UserInputError(
            f"{Path(path).name}: cannot read this model ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
        ) from None


def load_model(model: str, checkpoint: str | Path | None = None):
    """A fresh model (safe to train); use `cached_model` for read-only use."""
    path = resolve(model, checkpoint)
    return _load(_checked_family(model, checkpoint, path), path)


@lru_cache(maxsize=8)  # every family's original and its reference
def _cached(path: str, mtime: float):
    return _load(detect_family(Path(path)), path).requires_grad_(False)


def cached_model(model: str, checkpoint: str | Path | None = None):
    """A shared, frozen model: never train it or change it in place."""
    path = resolve(model, checkpoint)
    _checked_family(model, checkpoint, path)
    with _LOADING:
        return _cached(str(path.resolve()), max((f.stat().st_mtime for f in _weight_files(path)), default=0.0))


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


def _weight_files(path: Path) -> list[Path]:
    return sorted(f for f in path.rglob("*") if f.suffix in WEIGHT_SUFFIXES and f.is_file())


@lru_cache(maxsize=16)
def _weights_sha256(path: str, stamps: tuple) -> str:
    h = hashlib.sha256()
    for f in _weight_files(Path(path)):
        h.update(f.relative_to(path).as_posix().encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def weights_sha256(path: str | Path) -> str:
    """SHA-256 over a model folder's weight files, subfolders included (relative names and bytes,
    in name order)."""
    path = Path(path).resolve()
    stamps = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in _weight_files(path))
    return _weights_sha256(str(path), stamps)


def model_identity(model: str, checkpoint: str | Path | None = None) -> dict:
    """How a run records its base model: a name and the weights' hash, never a server path.

    The name is the embedded model's folder name (`mae-animals`), the checkpoint folder's name, or
    the Hub id it came from.
    """
    path = resolve(model, checkpoint)
    hub = checkpoint is not None and is_hub_id(str(checkpoint))
    return {"name": str(checkpoint) if hub else path.resolve().name, "sha256": weights_sha256(path)}


@dataclass(frozen=True)
class Reference:
    """A family's model trained like its embedded original on every built-in image but one class's
    (`Family.references`): what a model that never saw that class does, the standard the
    unlearned model is compared with."""

    family: str
    unseen: str  # the built-in class it never saw
    path: Path

    @property
    def label(self) -> str:
        return f"never saw {self.unseen}s"


def reference_for(model: str, forget) -> Reference | None:
    """The never-saw-the-class reference of family `model` for the forget set `forget`: there is
    one when `forget` is a single built-in class (`builtin:cat`) and the family ships a model
    trained without it."""
    if not isinstance(forget, str) or not forget.startswith("builtin:") or model not in family_names():
        return None
    unseen = forget.removeprefix("builtin:")
    folder = get_family(model).references.get(unseen)
    if folder is None or not (CHECKPOINTS / folder / META_FILE).is_file():
        return None
    return Reference(model, unseen, CHECKPOINTS / folder)


def find_base_model(identity) -> Path | None:
    """The folder of a recorded base model, when it is an embedded one with the same weights.

    Also accepts the older record, a folder path, when that folder exists."""
    if isinstance(identity, str):
        return Path(identity) if Path(identity).is_dir() else None
    if not isinstance(identity, dict):
        return None
    for folder in embedded_folders().values():
        path = CHECKPOINTS / folder
        if folder == identity.get("name") and path.is_dir() and weights_sha256(path) == identity.get("sha256"):
            return path
    return None


def read_metadata(path: str | Path) -> dict:
    f = Path(path) / META_FILE
    return json.loads(f.read_text()) if f.exists() else {}


def metadata(**fields) -> dict:
    from unlearn_core import __version__

    return {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__, **fields}
