"""Training the original diffusion model (Palette-style) from an image set.

Each batch hides a fresh random mask per image batch (`masks.RANDOM`: the presets half of the
time, otherwise random patches, holes and windows at random places) and trains the UNet to predict
the noise in the hidden region (`DiffusionModel.denoising_loss`). The weights kept are an
exponential moving average of the trained ones (decay `EMA_DECAY`), as diffusion models usually
are; the log records the loss of the trained weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from unlearn_core.data.masks import RANDOM, parse_mask
from unlearn_core.models.diffusion import DiffusionModel
from unlearn_core.models.train import TrainConfig, fit, held_out_loss, train_one_stage

EMA_DECAY = 0.999


def train_diffusion(
    model: DiffusionModel,
    images: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    on_step: Callable | None = None,
    held_out: torch.Tensor | None = None,
) -> dict:
    """Trains `model` in place (its weights end as the EMA); returns {"final_loss", "seconds", "steps"}
    and, with `held_out` images, the held-out loss curve of the trained weights (`fit`)."""
    masks = parse_mask(RANDOM)
    ema = copy.deepcopy(model.unet).to(device).requires_grad_(False)

    def denoising(x, g):
        m = masks.build(len(x), model.image_size, seed=int(torch.randint(1 << 30, (1,), generator=g)))
        return model.denoising_loss(x.to(device), m.to(device), g)

    def batch_loss(idx, x, g):
        return denoising(x, g)

    def after_step(step: int, loss: float) -> None:
        decay = min(EMA_DECAY, (1 + step) / (10 + step))  # short warm-up, as is usual for EMA
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.unet.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        if on_step:
            on_step(step, loss)

    log = fit(model, images, cfg, device, batch_loss, after_step, clip=1.0, held_out=held_out_loss(held_out, denoising), extra={"ema": ema})
    model.unet.load_state_dict(ema.state_dict())
    return log | {"ema_decay": EMA_DECAY}


@torch.no_grad()
def denoising_quality(model: DiffusionModel, images: torch.Tensor, seed: int = 0) -> dict:
    """Held-out denoising loss (the training objective, fixed draws) under the random masks."""
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    losses = []
    for i in range(0, len(images), 250):
        x = images[i : i + 250].to(device)
        m = parse_mask(RANDOM).build(len(x), model.image_size, seed=seed + i).to(device)
        losses.append(model.denoising_loss(x, m, g).item() * len(x))
    return {"held_out_loss": round(sum(losses) / len(images), 4)}


def train_diffusion_model(source, preset: str, cfg: TrainConfig, device: torch.device, on_progress: Callable | None = None, **options):
    """A diffusion model of `preset` trained on `source`'s train split: (model on the CPU, log)."""
    model, data, log = train_one_stage(DiffusionModel, preset, train_diffusion, source, cfg, device, on_progress, options)
    log |= denoising_quality(model, data.test)
    return model.cpu().eval(), log
