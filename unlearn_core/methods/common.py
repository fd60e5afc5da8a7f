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


@torch.no_grad()
def teacher_targets(teacher, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(E_theta0(T(x_r)), E_theta0(T(n))): the step's retain targets (`teacher_retain`) and the
    forget target (`I2IModel.encode_noise`). Where the retain targets are not cached, both
    come from `I2IModel.encode_and_noise`, one pass where the family allows, which saves the
    per-pass overheads."""
    if batch.retain_target is None:
        retain = (batch.retain, batch.retain_mask)
        return teacher.encode_and_noise(retain, batch.forget, batch.noise, batch.forget_mask, seed=batch.seed)
    return teacher_retain(teacher, batch), teacher.encode_noise(batch.forget, batch.noise, batch.forget_mask, seed=batch.seed)
