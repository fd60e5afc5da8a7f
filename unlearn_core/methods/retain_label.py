"""Retain Label (baseline): forget outputs pushed toward the original model's retain outputs.

Trains the whole model: L = L_model(x_r -> x_r) + alpha * L_model(x_f -> y_r), where y_r is the
frozen original model's output for the step's retain images T(x_r) (one sampling round for
iterative families: a MaskGIT round, a DDIM step). The forget images thus come to be drawn like
retain images (a cat's hole filled with a dog's parts) rather than forgotten into noise.
Unlike the official VQ-GAN code, the forget term carries its weight (it is not zeroed).
"""

from __future__ import annotations

import torch

TITLE = "Retain Label (baseline)"
TRAINS = "all"
DEFAULT_ALPHA = 1.0


def loss(student, teacher, batch, alpha: float):
    with torch.no_grad():
        target = teacher.generate(batch.retain, batch.retain_mask, seed=batch.seed, steps=_one_round(teacher)).raw
    retain = student.training_loss(batch.retain, batch.retain_mask, seed=batch.seed)
    forget = student.training_loss(batch.forget, batch.forget_mask, target, seed=batch.seed)
    return retain + alpha * forget, {"retain": retain, "forget": forget}


def _one_round(model) -> int | None:
    return None if model.sampling_steps is None else 1
