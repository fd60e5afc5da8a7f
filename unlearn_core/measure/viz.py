"""Pictures: comparison grids (masked input | original | unlearned | what changed | ground truth)
and image tiles.

Hidden pixels of the masked input are shown tinted blue so that a black background and a hidden
region never look alike. The "what changed" picture is a heat map of how far the unlearned
model's output differs from the original's inside the generated region (`change_map`), over the
image faded out, so that a viewer sees where the model changed its mind even where the change is
subtle (the glow around an outpainted cat).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from unlearn_core.measure.metrics import eval_mask
from unlearn_core.models.base import Generation

HIDDEN_TINT = (40, 70, 160)
COLUMNS = ("masked input", "original", "unlearned", "what changed", "ground truth")
# The heat map's colours from no change to CHANGE_FULL (a mean difference over the channels, images
# in [0, 1]) and more: dark blue, red, yellow.
CHANGE_FULL = 0.5
_HEAT = np.array([(25, 30, 70), (215, 40, 40), (255, 225, 60)], np.float32)
_FADED = 235  # the visible region is shown faded towards this grey


def to_rgb_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8."""
    x = x.detach().float().cpu().nan_to_num(0.0).clamp(0, 1)
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


def region_change(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """(B,) mean absolute difference between outputs a and b (B, C, H, W) in [0, 1], over the
    pixels and channels where `region` (B, 1, H, W) is 1: how much one model's output changed
    from the other's where they generated."""
    diff = (a.float() - b.float()).abs().mean(1, keepdim=True) * region
    return diff.sum((1, 2, 3)) / region.sum((1, 2, 3)).clamp(min=1)


def change_map(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor, image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 heat map of |a - b| (C, H, W) inside `region` (1, H, W): dark blue where the
    outputs agree, red, then yellow at CHANGE_FULL and beyond; outside it `image` faded to grey."""
    diff = (a.float() - b.float()).abs().mean(0).clamp(0, CHANGE_FULL).cpu().numpy() / CHANGE_FULL
    t = diff[..., None] * (len(_HEAT) - 1)
    low = np.floor(t).clip(0, len(_HEAT) - 2).astype(int)[..., 0]
    heat = _HEAT[low] + (t - low[..., None]) * (_HEAT[low + 1] - _HEAT[low])
    faded = to_rgb_uint8(image).astype(np.float32) * 0.3 + _FADED * 0.7
    m = region.detach().cpu()[0].numpy()[..., None]
    return (heat * m + faded * (1 - m)).round().astype(np.uint8)


def png_data_uri(im: Image.Image) -> str:
    """A picture as a `data:` URI, for a self-contained HTML page."""
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def tile(x: torch.Tensor, scale: int = 3) -> Image.Image:
    """One (C, H, W) image as a PIL image, enlarged without smoothing."""
    im = Image.fromarray(to_rgb_uint8(x))
    return im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def cell_size(side: int) -> int:
    """Displayed side of one image in a grid: small images (our 32 px) enlarged to 96 px, real
    photos (224 px and up) shown at 192 px, large enough to judge."""
    return 96 if side <= 64 else min(side, 192)


def _resized(arr: np.ndarray, cell: int) -> Image.Image:
    """Enlarged with hard pixel edges, reduced smoothly."""
    im = Image.fromarray(arr)
    return im.resize((cell, cell), Image.Resampling.NEAREST if cell >= im.width else Image.Resampling.LANCZOS)


def grid_image(
    rows: list[tuple[str, list[np.ndarray]]], columns: tuple[str, ...] = COLUMNS, cell: int | None = None, title: str = ""
) -> Image.Image:
    """Rows of (label, [H x W x 3 uint8 per column]) -> one labelled PIL image, with an optional
    title above the column headers. The label column is left out when no row has a label. `cell`:
    the displayed side of each image (None: `cell_size` of the images)."""
    if cell is None:
        cell = cell_size(max((a.shape[1] for _, images in rows for a in images), default=32))
    label_w = 70 if any(label for label, _ in rows) else 0
    title_h, head_h, pad = (26 if title else 0), (22 if any(columns) else 0), 4
    width = label_w + len(columns) * (cell + pad)
    height = title_h + head_h + len(rows) * (cell + pad)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    label_font = font(13)
    if title:
        draw.text((label_w + 2, 4), title, fill=(0, 0, 0), font=font(16))
    for j, name in enumerate(columns):
        draw.text((label_w + j * (cell + pad) + 4, title_h + 4), name, fill=(0, 0, 0), font=label_font)
    for i, (label, images) in enumerate(rows):
        y = title_h + head_h + i * (cell + pad)
        draw.text((6, y + cell // 2 - 7), label, fill=(0, 0, 0), font=label_font)
        for j, arr in enumerate(images):
            canvas.paste(_resized(arr, cell), (label_w + j * (cell + pad), y))
    return canvas


def side_by_side(images: list[Image.Image], gap: int = 24) -> Image.Image:
    """PIL images next to each other, top-aligned, on white."""
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, max(im.height for im in images)), (255, 255, 255))
    x = 0
    for im in images:
        canvas.paste(im, (x, 0))
        x += im.width + gap
    return canvas


def stack(images: list[Image.Image], gap: int = 12) -> Image.Image:
    """PIL images one under the other, left-aligned, on white."""
    height = sum(im.height for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (max(im.width for im in images), height), (255, 255, 255))
    y = 0
    for im in images:
        canvas.paste(im, (0, y))
        y += im.height + gap
    return canvas


def thumbnails(x: torch.Tensor, per_row: int = 8, cell: int | None = None, gap: int = 4) -> Image.Image:
    """Images (N, C, H, W) as one picture of rows of `per_row` thumbnails (a set's preview)."""
    cell = cell or (64 if x.shape[-1] <= 64 else 112)
    n = len(x)
    rows = max(1, -(-n // per_row))
    cols = min(n, per_row)
    canvas = Image.new("RGB", (cols * (cell + gap) - gap, rows * (cell + gap) - gap), (255, 255, 255))
    for i in range(n):
        im = _resized(to_rgb_uint8(x[i]), cell)
        canvas.paste(im, ((i % per_row) * (cell + gap), (i // per_row) * (cell + gap)))
    return canvas


@torch.no_grad()
def generate_on(model, x: torch.Tensor, mask_spec, seed: int = 0, steps: int | None = None) -> tuple[torch.Tensor, Generation]:
    """`model`'s outputs for images x (N, C, H, W) under `mask_spec`, on the model's device, with
    `steps` sampling steps (None: the model's default). Returns (x on that device, Generation)."""
    device = next(model.parameters()).device
    x = x.to(device)
    return x, model.generate(x, eval_mask(model, mask_spec, len(x), seed).to(device), seed=seed, steps=steps)


@dataclass
class Comparison:
    """Both models' outputs on the same images: the picture and how much they changed."""

    image: Image.Image
    change: list[float]  # per set, in order: the mean `region_change` over its pictured images


@torch.no_grad()
def compare_models(
    original,
    unlearned,
    sets: list[tuple[str, torch.Tensor]],
    mask_spec,
    *,
    seed: int = 0,
    columns: tuple[str, ...] = COLUMNS,
    steps: int | None = None,
    reference: tuple[str, object] | None = None,
) -> Comparison:
    """For each (title, images (N, C, H, W)): a block with one row per image and the five
    `columns` (masked input, original, unlearned, what changed, the image itself); blocks side by
    side, with each set's mean change in the generated region. A `reference` (label, model), the
    model that never saw the forget set's class, adds its outputs as a column before the last.

    All models get the same images, mask, seed and sampling steps.
    """
    if reference is not None:
        columns = (*columns[:-1], reference[0], columns[-1])
    blocks, change = [], []
    for title, x in sets:
        x, a = generate_on(original, x, mask_spec, seed, steps)
        _, b = generate_on(unlearned, x, mask_spec, seed, steps)
        r = None if reference is None else generate_on(reference[1], x, mask_spec, seed, steps)[1]
        rows = []
        for i in range(len(x)):
            cells = [masked_view(x[i], a.mask[i]), to_rgb_uint8(a.composite[i]), to_rgb_uint8(b.composite[i])]
            cells.append(change_map(a.composite[i], b.composite[i], a.mask[i], x[i]))
            rows.append(("", cells + ([] if r is None else [to_rgb_uint8(r.composite[i])]) + [to_rgb_uint8(x[i])]))
        blocks.append(grid_image(rows, columns, title=title))
        change.append(round(region_change(a.composite, b.composite, a.mask).mean().item(), 4))
    picture = side_by_side(blocks)
    if "what changed" in columns:
        picture = stack([picture, change_legend()], gap=6)
    return Comparison(picture, change)


def change_legend(width: int = 420) -> Image.Image:
    """The heat map's key: a colour bar from no change to CHANGE_FULL, with words."""
    bar_w, h = 160, 34
    canvas = Image.new("RGB", (width, h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    small = font(12)
    draw.text((4, 2), "what changed:", fill=(0, 0, 0), font=small)
    x0 = 100
    for i in range(bar_w):
        t = i / (bar_w - 1) * (len(_HEAT) - 1)
        low = min(int(t), len(_HEAT) - 2)
        colour = _HEAT[low] + (t - low) * (_HEAT[low + 1] - _HEAT[low])
        draw.line([(x0 + i, 2), (x0 + i, 14)], fill=tuple(int(c) for c in colour))
    draw.text((x0, 17), "same", fill=(60, 60, 60), font=small)
    draw.text((x0 + bar_w - 60, 17), f"{CHANGE_FULL:g}+ apart", fill=(60, 60, 60), font=small)
    draw.text((x0 + bar_w + 8, 2), "faded: visible part", fill=(60, 60, 60), font=small)
    return canvas


def comparison_grid(original, unlearned, sets: list[tuple[str, torch.Tensor]], mask_spec, **options) -> Image.Image:
    """The picture of `compare_models`."""
    return compare_models(original, unlearned, sets, mask_spec, **options).image


def preview_grid(
    model, forget: torch.Tensor, retain: torch.Tensor, mask_spec, seed: int = 0, cell: int | None = None, steps: int | None = None
) -> Image.Image:
    """Current outputs (composites) of `model` on a few forget and retain images: two rows."""
    cell = cell or (72 if forget.shape[-1] <= 64 else cell_size(forget.shape[-1]))
    rows = [
        (label, [to_rgb_uint8(img) for img in generate_on(model, x, mask_spec, seed, steps)[1].composite])
        for label, x in (("forget", forget), ("retain", retain))
    ]
    return grid_image(rows, columns=tuple("" for _ in range(len(forget))), cell=cell)
