"""Training the classifier probe that measures forgetting: images whose generated region was
corrupted as a generator might (blur, noise, contrast) keep their label, and images with a large
region erased as a model that forgot might (black, grey, noise) are labelled "none"."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from unlearn_core.data.masks import PRESETS, parse_mask, random_box_mask
from unlearn_core.data.noise import noise_like
from unlearn_core.measure.probe import Probe
from unlearn_core.models.train import TrainConfig, fit, held_out_loss


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur; x (B, 1, H, W), sigma (B,)."""
    r = 4
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))  # (B, 2r+1)
    k = k / k.sum(1, keepdim=True)
    b = len(x)
    xp = F.pad(x.transpose(0, 1), (r, r, r, r), mode="replicate")  # (1, B, H+2r, W+2r)
    xp = F.conv2d(xp, k.view(b, 1, 1, -1), groups=b)
    xp = F.conv2d(xp, k.view(b, 1, -1, 1), groups=b)
    return xp.transpose(0, 1)


def corrupt(x: torch.Tensor, g: torch.Generator, grid: int = 8) -> torch.Tensor:
    """What a generator may do to a region: blur (sigma 0.7-2.5), add mild noise, shift contrast.
    Applied to a random box/border/patch region of 3 in 4 images."""
    b = len(x)
    region = random_box_mask(b, x.shape[-1], grid, g)
    if torch.rand(1, generator=g).item() < 0.25:  # exact evaluation regions too
        name = list(PRESETS)[int(torch.randint(len(PRESETS), (1,), generator=g))]
        region = parse_mask(name).build(b, x.shape[-1], seed=int(torch.randint(1 << 30, (1,), generator=g)))
    y = _gaussian_blur(x, 0.7 + 1.8 * torch.rand(b, generator=g))
    y = y + torch.randn(y.shape, generator=g) * 0.12 * torch.rand(b, 1, 1, 1, generator=g)
    y = (y - 0.5) * (0.6 + 0.6 * torch.rand(b, 1, 1, 1, generator=g)) + 0.5
    apply = (torch.rand(b, 1, 1, 1, generator=g) < 0.75).float() * region
    return (apply * y + (1 - apply) * x).clamp(0, 1)


NONE_SHARE = 1 / 6  # share of probe training images erased and labelled "none"
LARGE_PRESETS = ("center50", "outpaint25", "outpaint50", "patches75")


def large_region(n: int, size: int, grid: int, g: torch.Generator) -> torch.Tensor:
    """(n, 1, size, size): a region hiding at least a quarter of the image (one kind per batch)."""
    if torch.rand(1, generator=g).item() < 0.5:
        name = LARGE_PRESETS[int(torch.randint(len(LARGE_PRESETS), (1,), generator=g))]
        return parse_mask(name).build(n, size, seed=int(torch.randint(1 << 30, (1,), generator=g)), grid=grid)
    while True:
        region = random_box_mask(n, size, grid, g)
        if region[0].mean() >= 0.25:
            return region


def erase(x: torch.Tensor, g: torch.Generator, grid: int = 8) -> torch.Tensor:
    """What a model that forgot might output: a large region replaced by black, a flat grey, or
    (slightly blurred) noise. The probe learns to call such images "none"."""
    b = len(x)
    region = large_region(b, x.shape[-1], grid, g)
    kind = torch.randint(3, (b, 1, 1, 1), generator=g)
    grey = torch.rand(b, 1, 1, 1, generator=g) * 0.6
    noise = _gaussian_blur(noise_like(x, g), 0.3 + 0.7 * torch.rand(b, generator=g))
    fill = torch.where(kind == 0, torch.zeros_like(x), torch.where(kind == 1, grey.expand_as(x), noise))
    return region * fill + (1 - region) * x


def train_probe(
    probe: Probe,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    on_step: Callable | None = None,
    held_out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict:
    """Trains `probe` in place on corrupted images plus erased ones labelled "none"; with `held_out`
    (test images, their labels), the held-out loss curve (`fit`)."""

    def labelled_loss(x, y, g):
        x, y = corrupt(x, g), y.clone()
        erased = torch.rand(len(x), generator=g) < NONE_SHARE
        x[erased], y[erased] = erase(x[erased], g), probe.none_index
        return F.cross_entropy(probe(x.to(device)), y.to(device), label_smoothing=0.05)

    def batch_loss(idx, x, g):
        return labelled_loss(x, labels[idx], g)

    held = None if held_out is None else held_out_loss(held_out[0], labelled_loss, labels=held_out[1])
    return fit(probe, images, cfg, device, batch_loss, on_step, held_out=held)
