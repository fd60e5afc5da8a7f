"""The one small interface every I2I model family implements (MAE, VQ-GAN, diffusion).

The paper (Li et al., ICLR 2024) writes an I2I model as h = D_phi . E_theta applied to T(x).
Unlearning needs four things from a family: the encoder embedding E_theta(T(x)) that its losses
compare, the encoder's parameters (the only ones it trains), generation (to see and measure the
result), and save/load. Images are (B, C, H, W) float in [0, 1]; masks are (B, 1, H, W), 1 = hidden.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_core.errors import UserInputError

META_FILE = "unlearn_meta.json"  # our metadata beside a family's own config and weights


@dataclass(frozen=True)
class Generation:
    """What a model makes of a masked image.

    raw: (B, C, H, W) the model's output everywhere, in [0, 1].
    composite: (B, C, H, W) `raw` where the model hid the input, the input elsewhere.
    mask: (B, 1, H, W) the region the model actually generated (e.g. the given mask rounded to
        whole patches), 1 = generated.
    """

    raw: torch.Tensor
    composite: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class Inversion:
    """The decoder's side of a model for the decoder-inversion attack (audit/inversion.py).

    latents: what the encoder hands the frozen decoder for T(x) (detached), the attacker's
        starting point.
    decode: latents (of those shapes) -> the decoder's raw output (B, C, H, W) in [0, 1],
        differentiable in the latents.
    mask: (B, 1, H, W) the region the decoder generates.
    """

    latents: list[torch.Tensor]
    decode: Callable[[list[torch.Tensor]], torch.Tensor]
    mask: torch.Tensor


class I2IModel(nn.Module, metaclass=ABCMeta):
    """An image-to-image model split into a trainable encoder and a frozen decoder.

    A family subclasses this and implements the abstract part: `encode`, `generate`,
    `encoder_parameters`, `save` and `load`. What a family may do differently (how it builds the
    forget target, whether two batches share a pass, its training objective for the whole-model
    baselines, its sampler) are ordinary methods here with the behaviour most families want; a
    family overrides the ones it does differently.
    """

    family: ClassVar[str]
    image_size: int
    channels: int
    grid: int = 8  # side of the grid of cells masks are built on (`MaskSpec.build(grid=...)`)
    # `encode` ignores its seed (draws nothing at random), so the engine may cache the teacher's
    # embeddings of retain images under a fixed mask.
    seed_free_encode: ClassVar[bool] = False

    @abstractmethod
    def encode(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        """E_theta(T(x)): the embedding the unlearning losses compare, (B, ...).

        `seed` fixes any randomness inside the encoder (e.g. a diffusion timestep) so that two
        models called with the same seed see the same input.
        """

    @abstractmethod
    def generate(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0, steps: int | None = None) -> Generation:
        """The model's output for T(x). `steps`: rounds of an iterative sampler (MaskGIT
        iterations, DDIM steps), None for the model's default (`sampling_steps`); one-pass
        families ignore it."""

    @abstractmethod
    def encoder_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters of E_theta (fixed tables such as sin-cos positions excluded)."""

    @abstractmethod
    def save(self, path: str | Path, metadata: dict | None = None) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path) -> I2IModel: ...

    @property
    def sampling_steps(self) -> int | None:
        """Rounds of the sampler `generate` runs when told none; None: it generates in one pass."""
        return None

    @property
    def max_sampling_steps(self) -> int | None:
        """The most rounds `generate(steps=...)` takes; None for one-pass families."""
        return None

    def encode_noise(self, x: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        """E_theta0(T(n)), the forget target for the images `x`: the embedding of the noise images
        `noise` under the same mask. A family whose official code builds it otherwise overrides
        this (and `encode_and_noise`)."""
        return self.encode(noise, mask, seed=seed)

    def encodes_together(self, mask_a: torch.Tensor, mask_b: torch.Tensor) -> bool:
        """Whether two batches under these masks can share one `encode` call: the encoder treats
        each image on its own and both give latents of one shape."""
        return False

    def encode_pair(
        self, a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], *, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode` of two (images, masks) pairs: one call over both where `encodes_together`
        says they can share a batch (one pass instead of two saves the per-pass overheads that
        dominate small models), else two calls. A family whose latents cannot share a call but
        whose frozen front end can (VQ-GAN's tokenizer) overrides this."""
        (xa, ma), (xb, mb) = a, b
        if self.encodes_together(ma, mb):
            e = self.encode(torch.cat([xa, xb]), torch.cat([ma, mb]), seed=seed)
            return e[: len(xa)], e[len(xa) :]
        return self.encode(xa, ma, seed=seed), self.encode(xb, mb, seed=seed)

    def encode_and_noise(
        self, a: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(`encode(*a)`, `encode_noise(x, noise, mask)`): the teacher's retain and forget
        targets, in one pass where `encode_pair` allows (the default forget target is the plain
        embedding of the noise images)."""
        return self.encode_pair(a, (noise, mask), seed=seed)

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        """The family's own training objective with input T(x) and ground truth `target` (default
        x); differentiable. The baselines that train the whole model need it."""
        raise UserInputError(f"the {self.family} family has no training loss; this method needs one")

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What a whole-model method trains: by default every float parameter."""
        return [p for p in self.parameters() if p.is_floating_point()]

    def decoder_inversion(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0) -> Inversion:
        """The encoder's output for T(x) and a differentiable way from such an output through the
        frozen decoder to an image: what an attacker who holds the weights optimises to make the
        decoder draw what the encoder no longer asks for (audit/inversion.py)."""
        raise UserInputError(f"the {self.family} family offers no decoder inversion")


def writes_out_attention(x: torch.Tensor, grad: bool | None = None) -> bool:
    """Whether attention over `x` is written out rather than the fused kernel (see `attention`):
    on a CPU under bfloat16 autocast, where a backward pass will run through it (`grad`, by
    default whether `x` requires grad). Without one, the fused kernel is both the faster and the
    closer to float32 (docs/BENCHMARKS.md, 'A cheaper sampler, the fused kernel where nothing
    trains')."""
    grad = x.requires_grad if grad is None else grad
    return grad and torch.is_grad_enabled() and x.device.type == "cpu" and torch.is_autocast_enabled("cpu")


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, scale: float | None = None
) -> torch.Tensor:
    """Scaled dot-product attention over (B, heads, S, d) tensors; `mask` broadcasts to (B, heads,
    S, S), boolean (True: may attend) or additive. On a CPU under bfloat16 autocast (precision.py),
    where gradients will flow through it, it is written out as two products and a float32
    softmax: there the fused kernel's backward pass is many times slower than in float32, which
    undid what bfloat16 gained elsewhere (docs/BENCHMARKS.md, 'CPU, fourth session'). Everywhere
    else the fused kernel."""
    if writes_out_attention(q):
        w = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5 if scale is None else scale)
        if mask is not None:
            w = w.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else w + mask
        return torch.softmax(w.float(), dim=-1).to(v.dtype) @ v
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def composite(raw: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Generated pixels where `mask` is 1, the input where it is 0."""
    return mask * raw + (1 - mask) * x


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load `state` into `module`, or raise naming every missing, unexpected and mis-shaped key."""
    from unlearn_core.errors import UserInputError

    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in set(own) & set(state) if state[k].shape != own[k].shape
    )
    if missing or unexpected or shapes:
        parts = [f"{name}: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}" for name, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if keys]  # fmt: skip
        raise UserInputError(f"{source}: weights do not match the model ({'; '.join(parts)})")
    module.load_state_dict(state, strict=True)


MIN_SIZE, MAX_SIZE = 16, 512  # image sides a family's preset can be rebuilt for (`with_size`)


def check_size(image_size: int, channels: int, multiple: int) -> None:
    """Refuse an image size or channel count a preset cannot be rebuilt for: the side must suit
    the architecture (`multiple`) and the masks, which work on an 8x8 grid of cells."""
    multiple = math.lcm(8, multiple)
    if channels not in (1, 3):
        raise UserInputError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if not MIN_SIZE <= image_size <= MAX_SIZE or image_size % multiple:
        raise UserInputError(f"image size must be a multiple of {multiple} between {MIN_SIZE} and {MAX_SIZE}, got {image_size}")
