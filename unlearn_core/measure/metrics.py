"""Metrics of one model on one image set, computed on held-out test images.

- `psnr_masked`: PSNR (dB, images in [0, 1]) between the output and the ground truth inside the
  region the model generated, averaged over images. Falls when outputs stop resembling the truth.
- `probe_acc`: share of composite outputs the probe classifies as the image's true class (None
  when the set has no labels, e.g. a user's own photos).
- `probe_agree`: share of composite outputs the probe puts in the same class as the ground-truth
  image: a label-free measure of whether the output still shows what the input showed. It falls
  when a model forgets, also on uploaded sets without labels (None when no probe is available).
- `noise_cos`: mean cosine between the model's embedding of T(x) and the *original* encoder's
  embedding of T(n), n ~ N(mean, std of the images) (the family's forget target,
  `I2IModel.encode_noise`): how much the model sees x as noise. The paper's objective
  drives this up for the forget set.
- `fid`, `embed_cos` (when an Inception network is passed, see `fid.py`): FID between the
  composites and their ground truth, and the mean cosine between their Inception features. There
  is no `is`: the offline network has no classification head.
- `n`: number of images.

Installed packages add metrics through the `unlearn_core.metrics` entry point group
(`unlearn_core.plugins`): each names a function `metric(generation, images) -> (B,)` of per-image
values (`generation` a `models.Generation` of the batch `images`), reported as the set's mean
under the entry point's name.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F

from unlearn_core import plugins
from unlearn_core.data.masks import MaskSpec
from unlearn_core.data.noise import noise_like
from unlearn_core.data.sets import DigestCache

METRIC_NAMES = ("psnr_masked", "probe_acc", "probe_agree", "noise_cos", "fid", "embed_cos", "n")
IMAGE_METRICS = ("fid", "embed_cos")  # present only when computed with an Inception network


@cache
def extra_metrics() -> dict[str, Callable]:
    """name -> metric function of the installed plug-ins (see the module docstring)."""
    return {name: fn for name, fn in plugins.load(plugins.METRICS).items() if name not in METRIC_NAMES}


def metric_names() -> tuple[str, ...]:
    """Every metric a set's results may hold, the plug-ins' before `n`."""
    return (*METRIC_NAMES[:-1], *extra_metrics(), METRIC_NAMES[-1])


def eval_mask(model, mask: MaskSpec, n: int, seed: int) -> torch.Tensor:
    return mask.build(n, model.image_size, seed=seed, grid=model.grid)


def eval_noise(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Noise images with the set's mean and std, fixed by `seed` so every model sees the same."""
    return noise_like(x, torch.Generator().manual_seed(seed))


def mse_in_region(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared error over the pixels where `region` (B, 1, H, W) is 1."""
    err = ((pred - target) ** 2 * region).sum((1, 2, 3))
    return err / (region.sum((1, 2, 3)) * pred.shape[1]).clamp(min=1)


def psnr_in_region(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB over the pixels where `region` (B, 1, H, W) is 1."""
    return 10 * torch.log10(1.0 / mse_in_region(pred, target, region).clamp(min=1e-10))


# probe -> its classes for the last few sets of true images; see `probe_truth`.
_TRUTHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def probe_truth(probe, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(B,) the probe's classes for the true images, predicted in `evaluate_set`'s batches and
    remembered for the probe's last few sets: they depend on neither the model nor the mask, and a
    run compares them with two models' outputs under up to five masks."""
    batches = range(0, len(images), batch_size)
    return _TRUTHS.setdefault(probe, DigestCache(keep=8)).get(
        images, lambda: torch.cat([probe.predict(images[i : i + batch_size].cpu()) for i in batches])
    )


@torch.no_grad()
def evaluate_set(
    model,
    original,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    mask: MaskSpec,
    probe=None,
    *,
    seed: int = 0,
    batch_size: int = 250,
    steps: int | None = None,
    inception=None,
    fid_images: int | None = None,
) -> dict:
    """M for one set, on the models' device. `original` supplies the noise embeddings for
    `noise_cos`; the probe runs on the CPU; `steps`: sampling steps (None: the model's default);
    `inception` (a `fid.Inception`): adds `fid` and `embed_cos`, on at most `fid_images` of the
    images (evenly spread over the set, so a set ordered by class keeps its classes; None: all)."""
    device = next(model.parameters()).device
    masks = eval_mask(model, mask, len(images), seed)
    noise = eval_noise(images, seed + 1)
    psnr, cos, preds, composites = [], [], [], []
    extras = {name: [] for name in extra_metrics()}
    for i in range(0, len(images), batch_size):
        x, m, n = (t[i : i + batch_size].to(device) for t in (images, masks, noise))
        gen = model.generate(x, m, seed=seed, steps=steps)
        psnr.append(psnr_in_region(gen.raw, x, gen.mask).cpu())
        e_x, e_n = model.encode(x, m, seed=seed), original.encode_noise(x, n, m, seed=seed)
        cos.append(F.cosine_similarity(e_x.flatten(1).float(), e_n.flatten(1).float(), dim=1).cpu())
        for name, values in extras.items():
            values.append(extra_metrics()[name](gen, x).detach().float().cpu().reshape(len(x)))
        if inception is not None:
            composites.append(gen.composite.cpu())
        if probe is not None:
            preds.append(probe.predict(gen.composite.cpu()))
    acc = agree = None
    if preds:
        preds = torch.cat(preds)
        agree = round((preds == probe_truth(probe, images, batch_size)).float().mean().item(), 4)
        acc = None if labels is None else round((preds == labels).float().mean().item(), 4)
    out = {
        "psnr_masked": round(torch.cat(psnr).mean().item(), 4),
        "probe_acc": acc,
        "probe_agree": agree,
        "noise_cos": round(torch.cat(cos).mean().item(), 4),
    }
    if composites and len(images) >= 2:
        from unlearn_core.measure.fid import image_metrics

        chosen = spread(len(images), fid_images)
        out |= image_metrics(torch.cat(composites)[chosen], images[chosen], inception)
    out |= {name: round(torch.cat(values).mean().item(), 4) for name, values in extras.items()}
    return out | {"n": len(images)}


def spread(n: int, k: int | None) -> torch.Tensor:
    """Indices of at most `k` of `n` items, evenly spread from the first to the last (None: all)."""
    if k is None or k >= n:
        return torch.arange(n)
    if k < 2:
        raise ValueError(f"FID needs at least two images, got {k}")
    return torch.linspace(0, n - 1, k).round().long()


def evaluate(
    model,
    original,
    forget,
    retain,
    mask: MaskSpec,
    probe=None,
    *,
    seed: int = 0,
    steps: int | None = None,
    inception=None,
    fid_images: int | None = None,
) -> dict:
    """{"forget": M, "retain": M} on the test images of two `data.ImageSet`s."""
    return {
        name: evaluate_set(
            model, original, s.test, s.test_labels, mask, probe, seed=seed, steps=steps, inception=inception, fid_images=fid_images
        )
        for name, s in (("forget", forget), ("retain", retain))
    }
