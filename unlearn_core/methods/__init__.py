"""Unlearning methods: the paper's objective and its baselines, one module each.

A method is a module with a plain loss function `loss(student, teacher, batch, alpha) ->
(total, terms)` (terms: "retain" and "forget"), what it trains (`TRAINS`: "encoder" or "all"),
its `DEFAULT_ALPHA` and a `TITLE`; its docstring's first line is its summary. `TOTAL` says how
the total combines the terms, for the loss plot's legend (default "retain + α·forget"). A method whose
retain term compares with the frozen teacher's embedding of the retain batch takes it from
`common.teacher_retain(teacher, batch)` and says so with `TEACHER_RETAIN = True`: the engine then
computes those embeddings once, before the first step, wherever they cannot change from step to
step. A new method is one module plus a line in `_MODULES`, or a module of another installed
package named under the `unlearn_core.methods` entry point group (`unlearn_core.plugins`). The
engine owns everything else (sampling, optimiser, loop).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch

from unlearn_core import plugins
from unlearn_core.errors import UserInputError
from unlearn_core.methods import finetune, max_loss, noisy_label, ours, random_encoder, retain_label


@dataclass(frozen=True)
class UnlearnBatch:
    """One step's inputs. Images (B, C, H, W) in [0, 1], masks (B, 1, H, W) with 1 = hidden.

    `noise` holds Gaussian images with the forget batch's mean and std (clamped to [0, 1]), drawn
    afresh each step; methods mask it with `forget_mask`, as T(n) in the paper. `seed` is passed
    to both encoders so any randomness inside them matches.
    """

    forget: torch.Tensor
    retain: torch.Tensor
    noise: torch.Tensor
    forget_mask: torch.Tensor
    retain_mask: torch.Tensor
    seed: int
    # The teacher's embedding of `retain` under `retain_mask`, when the engine cached it
    # (`common.teacher_retain`); None: the method computes it.
    retain_target: torch.Tensor | None = None


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    trains: str  # "encoder" or "all"
    default_alpha: float
    loss: Callable
    summary: str
    teacher_retain: bool = False  # its loss takes `common.teacher_retain` (cacheable)
    total: str = "retain + α·forget"  # how `loss` combines its terms, as the loss plot's legend says
    # the mask it trains with where the user names none, before the family's (FT: `random`, the
    # masks the model itself was trained with); None: the family's
    train_mask: str | None = None


_MODULES = (ours, max_loss, noisy_label, retain_label, random_encoder, finetune)


def as_method(name: str, module) -> Method:
    """The `Method` a method module describes (see the module docstring)."""
    return Method(
        name=name,
        title=module.TITLE,
        trains=module.TRAINS,
        default_alpha=module.DEFAULT_ALPHA,
        loss=module.loss,
        summary=(module.__doc__ or module.TITLE).strip().splitlines()[0],
        teacher_retain=getattr(module, "TEACHER_RETAIN", False),
        total=getattr(module, "TOTAL", Method.total),
        train_mask=getattr(module, "TRAIN_MASK", None),
    )


# This package's methods, in the order the CLI, the app and the results table show them.
METHODS = {m.__name__.rsplit(".", 1)[1]: as_method(m.__name__.rsplit(".", 1)[1], m) for m in _MODULES}


@cache
def _plugin_methods() -> dict[str, Method]:
    found = {}
    for name, obj in plugins.load(plugins.METHODS).items():
        if name in METHODS:
            warnings.warn(f"plug-in method {name!r} ignored: this package has a method of that name", stacklevel=2)
            continue
        try:
            found[name] = obj if isinstance(obj, Method) else as_method(name, obj)
        except AttributeError as e:
            warnings.warn(f"plug-in method {name!r} ignored: not a method module ({e})", stacklevel=2)
    return found


def methods() -> dict[str, Method]:
    """Every method: this package's, then those of installed plug-ins (`unlearn_core.plugins`)."""
    return METHODS | _plugin_methods()


def get_method(name: str) -> Method:
    found = METHODS.get(name) or _plugin_methods().get(name)
    if found is None:
        raise UserInputError(f"unknown method {name!r}; choose from {', '.join(methods())}")
    return found
