"""Training the original MAE from an image set (He et al.: MSE on hidden patches), with the masks
an I2I model meets at test time: each batch draws one of random patches (ratio 0.5-0.85), a hole
or a visible window (side 2-5 patches, random place)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from unlearn_core.data.masks import random_box_mask
from unlearn_core.models.mae import MAEModel
from unlearn_core.models.train import TrainConfig, fit, held_out_loss, train_one_stage


def train_mae(
    model,
    images: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    on_step: Callable | None = None,
    held_out: torch.Tensor | None = None,
) -> dict:
    """Trains `model` (an MAEModel) in place; returns {"final_loss", "seconds", "steps"} and, with
    `held_out` images, the held-out loss curve (`fit`)."""

    def masked_loss(x, g):
        mask = random_box_mask(len(x), model.image_size, model.grid, g)
        return model.reconstruction_loss(x.to(device), mask.to(device))

    def batch_loss(idx, x, g):
        return masked_loss(x, g)

    return fit(model, images, cfg, device, batch_loss, on_step, betas=(0.9, 0.95), clip=1.0, held_out=held_out_loss(held_out, masked_loss))


def train_mae_model(source, preset: str, cfg: TrainConfig, device: torch.device, on_progress: Callable | None = None, **options):
    """An MAE of `preset` trained on `source`'s train split: (model on the CPU, log)."""
    model, _, log = train_one_stage(MAEModel, preset, train_mae, source, cfg, device, on_progress, options)
    return model.cpu(), log
