"""Pictures: comparison grids (masked input | original | unlearned | ground truth) and image tiles.

Hidden pixels of the masked input are shown tinted blue so that a black background and a hidden
region never look alike.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .metrics import eval_mask
from .models.base import Generation

HIDDEN_TINT = (40, 70, 160)
COLUMNS = ("masked input", "original", "unlearned", "ground truth")


def to_rgb_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8."""
    x = x.detach().float().cpu().clamp(0, 1)
    if x.shape[0] == 1:
        x = x.repeat(3, 1, 1)
    return (x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def overlay(x: torch.Tensor, mask: torch.Tensor, scale: int = 6) -> Image.Image:
    """(C, H, W) image with its hidden region tinted, enlarged: a mask preview."""
    im = Image.fromarray(masked_view(x, mask))
    return im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)


def masked_view(x: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """(C, H, W) image with its hidden region (mask (1, H, W) == 1) painted in the tint."""
    rgb = to_rgb_uint8(x).astype(np.float32)
    m = mask.detach().cpu()[0].numpy()[..., None]
    return (rgb * (1 - m) + np.array(HIDDEN_TINT, np.float32) * m).astype(np.uint8)


def tile(x: torch.Tensor, scale: int = 3) -> Image.Image:
    """One (C, H, W) image as a PIL image, enlarged without smoothing."""
    im = Image.fromarray(to_rgb_uint8(x))
    return im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def grid_image(rows: list[tuple[str, list[np.ndarray]]], columns: tuple[str, ...] = COLUMNS, cell: int = 96) -> Image.Image:
    """Rows of (label, [H x W x 3 uint8 per column]) -> one labelled PIL image."""
    label_w, head_h, pad = 70, 24, 4
    width = label_w + len(columns) * (cell + pad)
    height = head_h + len(rows) * (cell + pad)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    label_font = font(13)
    for j, name in enumerate(columns):
        draw.text((label_w + j * (cell + pad) + 4, 5), name, fill=(0, 0, 0), font=label_font)
    for i, (label, images) in enumerate(rows):
        y = head_h + i * (cell + pad)
        draw.text((6, y + cell // 2 - 7), label, fill=(0, 0, 0), font=label_font)
        for j, arr in enumerate(images):
            tile_im = Image.fromarray(arr).resize((cell, cell), Image.Resampling.NEAREST)
            canvas.paste(tile_im, (label_w + j * (cell + pad), y))
    return canvas


@torch.no_grad()
def generate_on(model, x: torch.Tensor, mask_spec, seed: int = 0) -> tuple[torch.Tensor, Generation]:
    """`model`'s outputs for images x (N, C, H, W) under `mask_spec`, on the model's device.
    Returns (x on that device, Generation)."""
    device = next(model.parameters()).device
    x = x.to(device)
    return x, model.generate(x, eval_mask(model, mask_spec, len(x), seed).to(device), seed=seed)


@torch.no_grad()
def comparison_grid(original, unlearned, sets: list[tuple[str, torch.Tensor]], mask_spec, *, seed: int = 0) -> Image.Image:
    """For each (label, images (N, C, H, W)): one row per image with the four `COLUMNS`.

    Both models get the same images, mask and seed.
    """
    rows = []
    for label, x in sets:
        x, a = generate_on(original, x, mask_spec, seed)
        _, b = generate_on(unlearned, x, mask_spec, seed)
        for i in range(len(x)):
            rows.append(
                (label, [masked_view(x[i], a.mask[i]), to_rgb_uint8(a.composite[i]), to_rgb_uint8(b.composite[i]), to_rgb_uint8(x[i])])
            )
    return grid_image(rows)


def preview_grid(model, forget: torch.Tensor, retain: torch.Tensor, mask_spec, seed: int = 0, cell: int = 72) -> Image.Image:
    """Current outputs (composites) of `model` on a few forget and retain images: two rows."""
    rows = [
        (label, [to_rgb_uint8(img) for img in generate_on(model, x, mask_spec, seed)[1].composite])
        for label, x in (("forget", forget), ("retain", retain))
    ]
    return grid_image(rows, columns=tuple("" for _ in range(len(forget))), cell=cell)
