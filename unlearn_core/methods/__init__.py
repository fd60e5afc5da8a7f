"""Unlearning methods: the paper's objective and (later) its baselines, one module each.

A method is a plain loss function `loss(student, teacher, batch, alpha) -> (total, terms)` plus
what it trains (`encoder` or `all`). The engine owns everything else (sampling, optimiser, loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import UserInputError
from . import ours


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


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    trains: str  # "encoder" or "all"
    default_alpha: float
    loss: Callable
    summary: str


METHODS = {
    "ours": Method(
        name="ours",
        title="Ours (Li et al., ICLR 2024)",
        trains="encoder",
        default_alpha=ours.DEFAULT_ALPHA,
        loss=ours.loss,
        summary=ours.__doc__.strip().splitlines()[0],
    ),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UserInputError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name]
