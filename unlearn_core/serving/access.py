"""Which folders on the server a visitor of the web app may name (the checkpoint field, and the
sets, mask and checkpoint of the `/unlearn` API).

A public app must not read arbitrary folders of its server: a stranger could run it over a private
folder of images, or probe which paths exist. The app reads only
- the embedded checkpoints (`checkpoints/`),
- the visitor's own run folders (the app passes them in),
- folders the operator names in the environment variable `UNLEARN_ALLOWED_DIRS` (separated by
  `os.pathsep`, ':' on Linux).
Paths are resolved (symbolic links, `..`) before the check, and the refusal reads the same whether
or not the path exists. Hugging Face Hub ids (`owner/name`) are accepted as a model source only when
the operator lists them in `UNLEARN_HUB_MODELS` (comma-separated ids, or `*` for any): each one
downloads hundreds of megabytes to the server. The CLI is not restricted: its user owns the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from unlearn_core.errors import UserInputError
from unlearn_core.models.checkpoints import CHECKPOINTS

ALLOWED_ENV = "UNLEARN_ALLOWED_DIRS"
HUB_ENV = "UNLEARN_HUB_MODELS"
HF_SETS_ENV = "UNLEARN_HF_SETS"


def allowed_hf_sets() -> list[str]:
    """Hugging Face image sets (`hf:<dataset>:<label>`, comma-separated in UNLEARN_HF_SETS) the app
    offers beside the built-in ones; visitors cannot name others (each downloads a dataset)."""
    return _env_list(HF_SETS_ENV)


def allowed_hub_models() -> list[str]:
    return _env_list(HUB_ENV)


def _env_list(name: str) -> list[str]:
    """A comma-separated environment variable as a list (empty when unset)."""
    return [m.strip() for m in os.environ.get(name, "").split(",") if m.strip()]


def hub_model_allowed(repo: str) -> bool:
    """Whether the operator lets visitors load Hub model `repo` (`owner/name[@revision]`)."""
    allowed = allowed_hub_models()
    return "*" in allowed or repo in allowed or repo.partition("@")[0] in allowed


def allowed_roots(extra: Iterable[str | Path] = ()) -> list[Path]:
    """The folders (resolved) under which server paths are accepted."""
    named = [p for p in os.environ.get(ALLOWED_ENV, "").split(os.pathsep) if p.strip()]
    return [Path(os.path.realpath(r)) for r in (CHECKPOINTS, *extra, *named)]


def check_server_path(path: str | Path, extra: Iterable[str | Path] = ()) -> Path:
    """`path` resolved, if it lies inside an allowed folder; else a UserInputError."""
    text = str(path)
    if "\x00" in text:
        raise UserInputError("a path cannot contain a NUL character")
    resolved = Path(os.path.realpath(text))
    if any(resolved == root or resolved.is_relative_to(root) for root in allowed_roots(extra)):
        return resolved
    raise UserInputError(
        f"{Path(text).name or text}: this app only reads the embedded checkpoints, your own runs and folders its operator "
        f"allowed (environment variable {ALLOWED_ENV}; Hub models: {HUB_ENV}); upload files instead"
    )
