"""Forget only: the paper's forget term alone, no retain term (a toy method from a plug-in)."""

from __future__ import annotations

import torch.nn.functional as F

from unlearn_core.methods.common import teacher_targets

TITLE = "Forget only (plug-in)"
TRAINS = "encoder"
DEFAULT_ALPHA = 1.0


def loss(student, teacher, batch, alpha: float):
    _, target = teacher_targets(teacher, batch)
    forget = F.mse_loss(student.encode(batch.forget, batch.forget_mask, seed=batch.seed), target)
    zero = forget.detach() * 0
    return alpha * forget, {"retain": zero, "forget": forget}
