"""What several methods share."""

from __future__ import annotations

import torch

from ..models.base import encode_pair, noise_embedding


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
    forget target (`models.base.noise_embedding`). Where the retain targets are not cached, both
    come from one pass, which saves the per-pass overheads: one `encode_pair` call where the
    family's forget target is the plain embedding of the noise (no `encode_noise`), else the
    family's own `encode_and_noise((retain, mask), (forget, mask), seed=...)` where it has one."""
    retain, forget = (batch.retain, batch.retain_mask), (batch.forget, batch.forget_mask)
    if batch.retain_target is None and not hasattr(teacher, "encode_noise"):
        return encode_pair(teacher, retain, (batch.noise, batch.forget_mask), seed=batch.seed)
    if batch.retain_target is None and hasattr(teacher, "encode_and_noise"):
        return teacher.encode_and_noise(retain, forget, seed=batch.seed)
    return teacher_retain(teacher, batch), noise_embedding(teacher, batch.forget, batch.noise, batch.forget_mask, seed=batch.seed)
