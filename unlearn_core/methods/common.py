"""What several methods share."""

from __future__ import annotations

import torch


def teacher_retain(teacher, batch) -> torch.Tensor:
    """E_theta0(T(x_r)) for the step's retain batch: the engine's cached copy
    (`batch.retain_target`), or computed."""
    if batch.retain_target is not None:
        return batch.retain_target
    with torch.no_grad():
        return teacher.encode(batch.retain, batch.retain_mask, seed=batch.seed)
