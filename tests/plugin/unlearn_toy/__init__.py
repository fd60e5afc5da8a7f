"""A toy model family for unlearn_core: a two-layer convolutional encoder and decoder over the
masked image, small enough to train in seconds. It is the smallest family the contract test
accepts and the example docs/architecture.md walks through; a metric rides along.

A family is an `I2IModel` subclass (encode, generate, encoder_parameters, save, load; the rest has
defaults) plus a `Family` record naming its presets, trainer and defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from unlearn_core.errors import UserInputError
from unlearn_core.models import Defaults, Family, Generation, I2IModel
from unlearn_core.models.base import META_FILE, check_size, composite, load_state_strict
from unlearn_core.models.train import TrainConfig, fit, train_one_stage


@dataclass(frozen=True)
class ToyConfig:
    image_size: int = 32
    channels: int = 1
    width: int = 8

    def with_size(self, image_size: int, channels: int) -> ToyConfig:
        check_size(image_size, channels, 4)  # two stride-2 convolutions
        return replace(self, image_size=image_size, channels=channels)


class ToyModel(I2IModel):
    """E: two stride-2 convolutions over (masked image, mask) -> (B, 2w, H/4, W/4); D: two
    transposed convolutions back to the image."""

    family = "toy"
    seed_free_encode = True

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg, self.image_size, self.channels = cfg, cfg.image_size, cfg.channels
        c, w = cfg.channels, cfg.width
        self.encoder = nn.Sequential(nn.Conv2d(c + 1, w, 3, 2, 1), nn.GELU(), nn.Conv2d(w, 2 * w, 3, 2, 1))
        self.decoder = nn.Sequential(nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.GELU(), nn.ConvTranspose2d(w, c, 4, 2, 1))

    @classmethod
    def from_config(cls, cfg: ToyConfig, seed: int = 0) -> ToyModel:
        torch.manual_seed(seed)
        return cls(cfg)

    def _check(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        if x.shape[1:] != (self.channels, self.image_size, self.image_size) or mask.shape[-2:] != x.shape[-2:]:
            raise UserInputError(f"this model takes {self.channels}x{self.image_size}x{self.image_size} images, got {tuple(x.shape[1:])}")

    def encode(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        self._check(x, mask)
        return self.encoder(torch.cat([x * (1 - mask), mask], 1))

    def _decode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encode(x, mask)))

    @torch.no_grad()
    def generate(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0, steps: int | None = None) -> Generation:
        raw = self._decode(x, mask)
        return Generation(raw=raw, composite=composite(raw, x, mask), mask=mask)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        hidden = mask.expand_as(x)
        err = (self._decode(x, mask) - (x if target is None else target)) ** 2
        return (err * hidden).sum() / hidden.sum().clamp(min=1)

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), path / "model.safetensors")
        (path / META_FILE).write_text(json.dumps({**(metadata or {}), "family": self.family, "config": asdict(self.cfg)}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> ToyModel:
        path = Path(path)
        model = cls(ToyConfig(**json.loads((path / META_FILE).read_text())["config"]))
        load_state_strict(model, load_file(path / "model.safetensors"), path)
        return model


def _fit_toy(model: ToyModel, images: torch.Tensor, cfg: TrainConfig, device: torch.device, on_step=None) -> dict:
    """Inpainting of random centred-or-not boxes, the family's own objective."""
    from unlearn_core.data.masks import random_box_mask

    def batch_loss(idx, x, g):
        return model.training_loss(x.to(device), random_box_mask(len(x), model.image_size, model.grid, g).to(device))

    return fit(model, images, cfg, device, batch_loss, on_step)


def train(source, preset: str, cfg: TrainConfig, device: torch.device, on_progress=None, **options):
    model, _, log = train_one_stage(ToyModel, preset, _fit_toy, source, cfg, device, on_progress, options)
    return model.cpu(), log


FAMILY = Family(
    name="toy",
    label="toy convolutional autoencoder",
    model=ToyModel,
    presets={"tiny": ToyConfig()},
    train=train,
    defaults=Defaults(steps=50, lr=1e-3),
    embedded=str(Path(__file__).resolve().parent / "checkpoint"),  # written by the plug-in test
)


def brightness(generation: Generation, images: torch.Tensor) -> torch.Tensor:
    """(B,) mean brightness of each output in the generated region."""
    m = generation.mask.expand_as(generation.raw)
    return (generation.raw * m).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp(min=1)


__all__ = ["FAMILY", "ToyConfig", "ToyModel", "brightness"]
