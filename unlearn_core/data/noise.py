"""The noise n of the paper, as the official code draws it (jpmorganchase/i2i_mage):
Gaussian images with the batch's mean and standard deviation, clamped to [0, 1]."""

from __future__ import annotations

import torch


def noise_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) noise images with x's mean and std, clamped to [0, 1]; drawn from `generator`
    (which must live on x's device)."""
    n = torch.randn(x.shape, generator=generator, device=x.device)
    return (n * x.std() + x.mean()).clamp(0, 1)
