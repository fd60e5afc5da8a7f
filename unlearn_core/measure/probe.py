"""The probe: a small CNN that names the animal in a 32x32 grayscale image.

It judges generated images (`probe_acc`), so it is trained to tolerate what generators do to the
region they fill: blur, mild noise and contrast changes inside random regions shaped like the
evaluation masks (centre holes, outpainting borders, patches). A probe trained on clean images only
calls a blurry MAE fill "zebra". It also has an eleventh class, "none", for images in which a
large region is blank, flat or noise: a centre crop of a cat surrounded by black is what a model
that forgot cats outputs under outpainting, and must not count as a cat. The probe is not an I2I
model and is never unlearned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from unlearn_core.compute.precision import instruments_in_fp32
from unlearn_core.data.sets import CLASSES
from unlearn_core.errors import UserInputError
from unlearn_core.models.checkpoints import PROBE, embedded_path

WEIGHTS, CONFIG = "model.safetensors", "config.json"


@dataclass(frozen=True)
class ProbeConfig:
    image_size: int = 32
    widths: tuple[int, int, int] = (32, 64, 128)
    classes: tuple[str, ...] = (*CLASSES, "none")  # "none": no whole animal (a region blanked out)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )  # fmt: skip


class Probe(nn.Module):
    def __init__(self, cfg: ProbeConfig = ProbeConfig()):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.features = nn.Sequential(_block(1, w[0]), _block(w[0], w[1]), _block(w[1], w[2]))
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(w[2], len(cfg.classes)))

    @property
    def none_index(self) -> int:
        return self.cfg.classes.index("none")

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Any (B, C, H, W) in [0, 1] -> (B, 1, 32, 32): mean over channels, resized."""
        x = x.mean(1, keepdim=True)
        if x.shape[-1] != self.cfg.image_size or x.shape[-2] != self.cfg.image_size:
            size = (self.cfg.image_size, self.cfg.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self.prepare(x) * 2 - 1)  # (B, C, 4, 4)
        return self.head(h.mean((2, 3)))  # (B, classes)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(B,) class indices, computed in float32 whatever the caller computes in."""
        self.eval()
        with instruments_in_fp32():
            return torch.cat([self(x[i : i + batch_size].float()).argmax(1) for i in range(0, len(x), batch_size)])

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / WEIGHTS))
        cfg = asdict(self.cfg)
        (path / CONFIG).write_text(json.dumps({"family": "probe", "config": cfg, **(metadata or {})}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Probe:
        path = Path(path)
        if not (path / CONFIG).exists() or not (path / WEIGHTS).exists():
            raise UserInputError(f"{path}: not a probe checkpoint (needs {CONFIG} and {WEIGHTS})")
        raw = json.loads((path / CONFIG).read_text())["config"]
        cfg = ProbeConfig(raw["image_size"], tuple(raw["widths"]), tuple(raw["classes"]))
        probe = cls(cfg)
        probe.load_state_dict(load_file(str(path / WEIGHTS)), strict=True)
        return probe.eval()


@lru_cache(maxsize=1)
def load_probe():
    path = embedded_path(PROBE)
    if not path.is_dir():
        raise UserInputError(f"no probe at {path}; train one with `python -m unlearn_core train --model probe`")
    return Probe.load(path).requires_grad_(False)
