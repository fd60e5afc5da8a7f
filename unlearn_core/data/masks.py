"""The transforms T of the paper: which pixels of an image the model must generate.

A mask is a float tensor (N, 1, H, W) with 1 where the model generates (hidden) and 0 where the
input is visible. Presets follow the paper's evaluation (Li et al., ICLR 2024, Sec. 5):
- `center25`, `center50`: inpainting, a centred hole whose side is 25% / 50% of the image side;
- `outpaint25`, `outpaint50`: outpainting, only a centred square of that side stays visible;
- `patches75`: 75% of the cells of a `grid` x `grid` layout hidden at random (seeded, per image,
  the same count in every image).
A user mask is any image: pixels brighter than mid-grey are hidden.

For unlearning only there are also `random`: each call (each step) draws a fresh mask, as the
official code does with its model's training masks: half the time one of the presets, otherwise
random patches (50-85% of the cells), a hole or a visible window of 2-5 cells at a random place;
and `presets`: each step one of the presets, drawn at random, so that one model learns to forget
under all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unlearn_core.errors import UserInputError

PRESETS = {
    "center25": ("center", 0.25),
    "center50": ("center", 0.50),
    "outpaint25": ("outpaint", 0.25),
    "outpaint50": ("outpaint", 0.50),
    "patches75": ("patches", 0.75),
}
DESCRIPTIONS = {
    "center25": "inpainting: centred hole, side 25% of the image",
    "center50": "inpainting: centred hole, side 50% of the image",
    "outpaint25": "outpainting: only a centred square of side 25% is visible",
    "outpaint50": "outpainting: only a centred square of side 50% is visible",
    "patches75": "random patches: 75% of an 8x8 grid hidden (seeded)",
}
RANDOM = "random"  # a training mask only: a fresh draw every step
PRESET_MIX = "presets"  # a training mask only: one of the presets every step
TRAINING_ONLY = (RANDOM, PRESET_MIX)
DESCRIPTIONS_TRAINING = {
    RANDOM: "a fresh random mask every step (presets, patches, holes, windows)",
    PRESET_MIX: "one of the presets every step, drawn at random",
}


@dataclass(frozen=True)
class MaskSpec:
    """What to hide. `kind` is center | outpaint | patches | image | random; `image` (H, W) bool for image masks."""

    name: str
    kind: str
    ratio: float = 0.0
    image: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def fixed(self) -> bool:
        """The same mask for every image, whatever the seed (centre, outpaint and image masks)."""
        return self.kind in ("center", "outpaint", "image")

    def build(self, n: int, size: int, *, seed: int = 0, grid: int = 8) -> torch.Tensor:
        """(n, 1, size, size) float mask, 1 = hidden. Deterministic for a given seed."""
        m = torch.zeros(n, 1, size, size)
        if self.kind in ("center", "outpaint"):
            side = round(size * self.ratio)
            lo = (size - side) // 2
            if self.kind == "center":
                m[..., lo : lo + side, lo : lo + side] = 1
            else:
                m[:] = 1
                m[..., lo : lo + side, lo : lo + side] = 0
        elif self.kind == "patches":
            if size % grid:
                raise ValueError(f"image size {size} is not a multiple of the mask grid {grid}")
            g = torch.Generator().manual_seed(seed)
            cells = grid * grid
            k = round(cells * self.ratio)
            order = torch.rand(n, cells, generator=g).argsort(dim=1)  # (n, cells)
            hidden = torch.zeros(n, cells)
            hidden.scatter_(1, order[:, :k], 1.0)
            cell = size // grid
            m = hidden.view(n, 1, grid, grid).repeat_interleave(cell, 2).repeat_interleave(cell, 3)
        elif self.kind == RANDOM:
            m = _random_mask(n, size, grid, torch.Generator().manual_seed(seed))
        elif self.kind == PRESET_MIX:
            name = list(PRESETS)[int(torch.randint(len(PRESETS), (1,), generator=torch.Generator().manual_seed(seed)))]
            m = parse_mask(name).build(n, size, seed=seed, grid=grid)
        elif self.kind == "image":
            img = Image.fromarray(self.image.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
            m[:] = torch.from_numpy(np.asarray(img) > 127).float()
        else:
            raise ValueError(f"unknown mask kind {self.kind!r}")
        return m


def random_box_mask(n: int, size: int, grid: int, g: torch.Generator) -> torch.Tensor:
    """(n, 1, size, size): one kind per batch so every image hides the same number of patches."""
    cell = size // grid
    kind = torch.randint(3, (1,), generator=g).item()
    if kind == 0:  # random patches
        ratio = 0.5 + 0.35 * torch.rand(1, generator=g).item()
        k = round(grid * grid * ratio)
        order = torch.rand(n, grid * grid, generator=g).argsort(1)
        cells = torch.zeros(n, grid * grid).scatter_(1, order[:, :k], 1.0).view(n, 1, grid, grid)
    else:  # a box of side s cells: a hole (kind 1) or the only visible window (kind 2)
        s = int(torch.randint(2, min(6, grid), (1,), generator=g))
        cells = torch.zeros(n, 1, grid, grid)
        top = torch.randint(grid - s + 1, (n,), generator=g)
        left = torch.randint(grid - s + 1, (n,), generator=g)
        for i in range(n):
            cells[i, :, top[i] : top[i] + s, left[i] : left[i] + s] = 1
        if kind == 2:
            cells = 1 - cells
    return cells.repeat_interleave(cell, 2).repeat_interleave(cell, 3)


def _random_mask(n: int, size: int, grid: int, g: torch.Generator) -> torch.Tensor:
    """The `random` training mask: a preset half the time, else `random_box_mask`."""
    if torch.rand(1, generator=g).item() < 0.5:
        name = list(PRESETS)[int(torch.randint(len(PRESETS), (1,), generator=g))]
        return parse_mask(name).build(n, size, seed=int(torch.randint(1 << 30, (1,), generator=g)), grid=grid)
    return random_box_mask(n, size, grid, g)


def mask_from_image(image: Image.Image | np.ndarray, name: str = "drawn") -> MaskSpec:
    """A user mask: white (or any bright or opaque stroke) = hidden, black or transparent = visible."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        gray = np.asarray(image.convert("L"))
        hidden = (alpha > 127) & (gray > 127) if alpha.min() > 127 else alpha > 127
    else:
        hidden = np.asarray(image.convert("L")) > 127
    if not hidden.any():
        raise UserInputError(f"mask {name!r} hides nothing: paint the region to generate in white")
    if hidden.all():
        raise UserInputError(f"mask {name!r} hides the whole image: leave some of it visible")
    return MaskSpec(name=name, kind="image", image=hidden)


def parse_mask(spec: str | MaskSpec) -> MaskSpec:
    """A preset name or the path of a mask image."""
    if isinstance(spec, MaskSpec):
        return spec
    if spec in PRESETS:
        kind, ratio = PRESETS[spec]
        return MaskSpec(name=spec, kind=kind, ratio=ratio)
    if spec in TRAINING_ONLY:
        return MaskSpec(name=spec, kind=spec)
    path = Path(spec)
    if path.is_file():
        try:
            with Image.open(path) as im:
                im.load()
                return mask_from_image(im, name=path.name)
        except UserInputError:
            raise
        except Exception:
            raise UserInputError(f"{path.name}: not a readable mask image") from None
    raise UserInputError(
        f"unknown mask {spec!r}; choose from {', '.join(PRESETS)} (or {RANDOM} or {PRESET_MIX}, to unlearn with) or give a mask image path"
    )
