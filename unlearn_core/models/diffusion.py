"""Diffusion family (Palette-style): a conditional UNet that denoises the target image.

References:
- Saharia et al., "Palette: Image-to-Image Diffusion Models" (SIGGRAPH 2022): the UNet reads the
  noisy target concatenated with the conditioning image, whose hidden region is filled with
  Gaussian noise; it is trained to predict the noise (DDPM) on the hidden region only, and during
  sampling the visible region is kept from the input.
- Ho et al., "Denoising Diffusion Probabilistic Models" (NeurIPS 2020); Song et al., "Denoising
  Diffusion Implicit Models" (ICLR 2021): the noise schedule and the few-step sampler, here the
  `diffusers` `DDPMScheduler` (training) and `DDIMScheduler` (sampling, eta 0).
- Li et al., ICLR 2024 (jpmorganchase/i2i_Palette-Image-to-Image-Diffusion-Models, branch i2i):
  unlearning trains the UNet's encoder half (input conv, time embedding, down blocks, middle
  block); its losses sum the MSE over the output of every input block (the input conv, each
  resblock, each downsample: the skip connections the decoder reads) and of the middle block.
  For the forget term the frozen teacher sees the forget image's conditioning, but the hidden
  region of its noisy target holds pure Gaussian noise (no signal of the forget image); the
  student sees the forget image's usual noisy target. Timestep and noise are shared.

Rules of this implementation:
- Pixels live in [-1, 1] inside the model. The UNet's input is (noisy target, conditioning,
  mask): 2C + 1 channels; the noisy target is noisy only where the mask hides the image (Palette
  puts the clean visible pixels there, during training and sampling alike).
- `encode(x, mask, seed=s)` draws the timestep (uniform over the training steps) and the noise
  from `s`, so a student and a teacher called with the same seed see the same input. It returns
  the encoder-half features flattened into one vector, each layer scaled by sqrt(N / n_layer)
  (N values in all, n_layer in the layer) so that the mean squared error over the vector equals
  the sum of the per-layer MSEs, as the official code computes it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from unlearn_core.errors import UserInputError
from unlearn_core.models.base import (
    META_FILE,
    Generation,
    I2IModel,
    Inversion,
    check_size,
    composite,
    load_state_strict,
    writes_out_attention,
)
from unlearn_core.models.registry import Defaults, Family, Guide, Measured, imported_when_called

UNET, SCHEDULER = "unet", "scheduler"  # sub-folders of a diffusers-format model folder
INVERSION_T = 0.9  # the share of the training schedule at which the decoder-inversion attack denoises
SUPPORTED_BLOCKS = ("DownBlock2D", "AttnDownBlock2D", "UpBlock2D", "AttnUpBlock2D")


@dataclass(frozen=True)
class DiffusionConfig:
    image_size: int = 32
    channels: int = 1
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    down_block_types: tuple[str, ...] = ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D")
    up_block_types: tuple[str, ...] = ("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")
    attention_head_dim: int = 32
    norm_num_groups: int = 8
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    sampling_steps: int = 10  # DDIM steps when the caller names none (why 10: docs/findings/diffusion.md, '10 sampling steps')

    def with_size(self, image_size: int, channels: int) -> DiffusionConfig:
        """This UNet for other images (the size must halve at every down block but the last)."""
        check_size(image_size, channels, 2 ** (len(self.block_out_channels) - 1))
        return replace(self, image_size=image_size, channels=channels)

    def unet(self):
        from diffusers import UNet2DModel

        return UNet2DModel(
            sample_size=self.image_size,
            in_channels=2 * self.channels + 1,
            out_channels=self.channels,
            block_out_channels=self.block_out_channels,
            layers_per_block=self.layers_per_block,
            down_block_types=self.down_block_types,
            up_block_types=self.up_block_types,
            attention_head_dim=self.attention_head_dim,
            norm_num_groups=self.norm_num_groups,
        )

    def scheduler(self):
        from diffusers import DDPMScheduler

        return DDPMScheduler(num_train_timesteps=self.train_timesteps, beta_schedule=self.beta_schedule, clip_sample=True)


PRESETS = {
    "animals": DiffusionConfig(),
    # An experiment, not the embedded model: four levels (down to 4x4), self-attention from 16x16
    # on, meant to let features that see the whole image decide more of the picture. They decided
    # less (docs/findings/diffusion.md#what-the-deep-features-decide-2026-11-30).
    "animals-deep": DiffusionConfig(
        block_out_channels=(32, 64, 64, 128),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    ),
    "tiny": DiffusionConfig(
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
        norm_num_groups=4,
        train_timesteps=100,
        sampling_steps=4,
    ),  # fmt: skip
}


class DiffusionModel(I2IModel):
    """A conditional `diffusers` UNet2DModel and its noise schedule behind `I2IModel`."""

    family: ClassVar[str] = "diffusion"
    sampling_steps: int = DiffusionConfig.sampling_steps  # DDIM steps; a checkpoint names its own

    def __init__(self, unet: nn.Module, scheduler_config: dict, sampling_steps: int = DiffusionConfig.sampling_steps):
        super().__init__()
        from diffusers import DDPMScheduler

        _check_unet(unet.config)
        self.unet = _cpu_friendly_attention(_fast_upsampling(unet))
        self.scheduler_config = dict(scheduler_config)
        self.sampling_steps = int(sampling_steps)
        self.image_size = int(unet.config.sample_size)
        self.channels = int(unet.config.out_channels)
        schedule = DDPMScheduler.from_config(self.scheduler_config).alphas_cumprod
        self.register_buffer("alphas_cumprod", schedule.float().clone(), persistent=False)

    @classmethod
    def from_config(cls, cfg: DiffusionConfig, seed: int = 0) -> DiffusionModel:
        torch.manual_seed(seed)
        return cls(cfg.unet(), dict(cfg.scheduler().config), cfg.sampling_steps)

    @property
    def train_timesteps(self) -> int:
        return len(self.alphas_cumprod)

    @property
    def max_sampling_steps(self) -> int:
        return self.train_timesteps

    def _check(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        if x.shape[1:] != (self.channels, self.image_size, self.image_size) or mask.shape[-2:] != x.shape[-2:]:
            raise UserInputError(
                f"this model takes {self.channels}x{self.image_size}x{self.image_size} images, "
                f"got {tuple(x.shape[1:])} with a mask of {tuple(mask.shape[-2:])}"
            )

    # ------------------------------------------------------------------ the Palette input

    def draw(self, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(timesteps (B,), target noise, conditioning noise), all fixed by `seed`."""
        g = torch.Generator(device=x.device).manual_seed(int(seed))
        t = torch.randint(0, self.train_timesteps, (len(x),), generator=g, device=x.device)
        eps = torch.randn(x.shape, generator=g, device=x.device)
        cond_noise = torch.randn(x.shape, generator=g, device=x.device)
        return t, eps, cond_noise

    @staticmethod
    def condition(y0: torch.Tensor, mask: torch.Tensor, cond_noise: torch.Tensor) -> torch.Tensor:
        """Palette's conditioning image: the visible pixels, Gaussian noise in the hidden region."""
        return y0 * (1 - mask) + mask * cond_noise

    def noisy(self, y0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return a.sqrt() * y0 + (1 - a).sqrt() * eps

    def _input(self, y_t: torch.Tensor, y0: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([mask * y_t + (1 - mask) * y0, cond, mask], dim=1)

    # ------------------------------------------------------------------ encoder half

    def encoder_modules(self) -> list[nn.Module]:
        u = self.unet
        return [u.conv_in, u.time_embedding, u.down_blocks, u.mid_block]

    def features(self, inp: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        """Everything the frozen up blocks read from the encoder half: the input convolution's
        output, every skip connection of every down block (each resnet or attention output and
        each downsample) and the middle block's output (the UNet's own forward up to its up
        blocks). This is the official code's `hs`: the output of every input block plus the middle
        block. A skip left out of the loss (the input convolution feeds the last up block
        directly) could drift on the retain set with nothing to hold it."""
        u = self.unet
        emb = u.time_embedding(u.time_proj(t).to(inp.dtype))
        h = u.conv_in(inp)
        out = [h]
        for block in u.down_blocks:
            h, skips = block(hidden_states=h, temb=emb)
            out.extend(skips)
        out.append(u.mid_block(h, emb))
        return out

    @staticmethod
    def flatten_features(feats: list[torch.Tensor]) -> torch.Tensor:
        """(B, N): each layer scaled by sqrt(N / n_layer), so that MSE over it = sum of layer MSEs."""
        total = sum(f[0].numel() for f in feats)
        return torch.cat([f.flatten(1) * math.sqrt(total / f[0].numel()) for f in feats], dim=1)

    def encode(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        return self._encode([(x, mask, False)], seed)[0]

    def encode_noise(self, x: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        """The forget target E_theta0(T(n)) as the official code builds it: `x`'s conditioning,
        pure Gaussian noise in the hidden region of the noisy target (`noise`, the image-space
        noise other families encode, is not used)."""
        return self._encode([(x, mask, True)], seed)[0]

    def encode_pair(self, a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor], *, seed: int | None = None):
        """(`encode(*a)`, `encode(*b)`) in one pass of the UNet; each half draws its timesteps and
        noise from `seed` as its own call would (`models.base.encode_pair`)."""
        return self._encode([(*a, False), (*b, False)], seed)

    def encode_and_noise(
        self, a: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None
    ):
        """(`encode(*a)`, `encode_noise(x, noise, mask)`) in one pass: the teacher's retain and
        forget targets of a step (`models.base.encode_and_noise`)."""
        return self._encode([(*a, False), (x, mask, True)], seed)

    def _encode(self, parts: list[tuple[torch.Tensor, torch.Tensor, bool]], seed: int | None) -> tuple[torch.Tensor, ...]:
        """The flattened features of each (images, mask, pure_noise) part, all in one UNet pass."""
        inputs, steps = [], []
        for x, mask, pure_noise in parts:
            self._check(x, mask)
            y0 = 2 * x - 1
            t, eps, cond_noise = self.draw(x, 0 if seed is None else seed)
            y_t = eps if pure_noise else self.noisy(y0, t, eps)
            inputs.append(self._input(y_t, y0, self.condition(y0, mask, cond_noise), mask))
            steps.append(t)
        return self.flatten_features(self.features(torch.cat(inputs), torch.cat(steps))).split([len(x) for x, _, _ in parts])

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.encoder_modules() for p in m.parameters()]

    # ------------------------------------------------------------------ training and sampling

    def denoising_loss(
        self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Palette's objective: MSE between the true and predicted noise over the hidden region.
        The conditioning comes from `x`; the noisy target from `target` (default: `x`)."""
        self._check(x, mask)
        y0 = 2 * x - 1
        goal = y0 if target is None else 2 * target - 1
        t = torch.randint(0, self.train_timesteps, (len(x),), generator=generator).to(x.device)
        eps, cond_noise = (torch.randn(x.shape, generator=generator).to(x.device) for _ in range(2))
        inp = self._input(self.noisy(goal, t, eps), y0, self.condition(y0, mask, cond_noise), mask)
        pred = self.unet(inp, t).sample
        hidden = mask.expand_as(x)
        return ((pred - eps) ** 2 * hidden).sum() / hidden.sum().clamp(min=1)

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        return self.denoising_loss(x, mask, torch.Generator().manual_seed(int(seed)), target)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.unet.parameters())

    @torch.no_grad()
    def generate(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0, steps: int | None = None) -> Generation:
        """DDIM sampling (eta 0) in `steps` steps (default `sampling_steps`); the starting noise
        and the conditioning noise come from `seed`, so the same seed gives the same output."""
        from diffusers import DDIMScheduler

        self._check(x, mask)
        steps = self.sampling_steps if steps is None else int(steps)
        if not 1 <= steps <= self.max_sampling_steps:
            raise UserInputError(f"sampling steps must be between 1 and {self.max_sampling_steps}, got {steps}")
        mask = (mask > 0.5).to(x.dtype)
        y0 = 2 * x - 1
        g = torch.Generator(device=x.device).manual_seed(int(seed))
        y = torch.randn(x.shape, generator=g, device=x.device)
        cond = self.condition(y0, mask, torch.randn(x.shape, generator=g, device=x.device))
        # A fresh DDIM over the training schedule each call (it keeps state); "trailing" spacing starts
        # at the last training step, which keeps few-step sampling sharp (Lin et al., 2024).
        sampler = DDIMScheduler.from_config(self.scheduler_config, timestep_spacing="trailing", clip_sample=True)
        sampler.set_timesteps(steps, device=x.device)
        for t in sampler.timesteps:
            pred = self.unet(self._input(y, y0, cond, mask), t.expand(len(x))).sample
            y = sampler.step(pred, t, y, eta=0.0).prev_sample
        raw = ((y + 1) / 2).clamp(0, 1)
        return Generation(raw=raw, composite=composite(raw, x, mask), mask=mask)

    def decoder_inversion(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0) -> Inversion:
        """One denoising step at a late timestep (`INVERSION_T` of the schedule: the hidden region
        of the noisy target is almost pure noise): the encoder half's features, the time
        embedding first (every up block reads it); the frozen up blocks turn them into the
        predicted noise, and so into the estimate of the clean image."""
        mask = (mask > 0.5).to(x.dtype)
        y0 = 2 * x - 1
        g = torch.Generator(device=x.device).manual_seed(int(seed))
        t = torch.full((len(x),), int(INVERSION_T * (self.train_timesteps - 1)), device=x.device)
        eps, cond_noise = (torch.randn(x.shape, generator=g, device=x.device) for _ in range(2))
        y_t = self.noisy(y0, t, eps)
        u = self.unet
        with torch.no_grad():
            inp = self._input(y_t, y0, self.condition(y0, mask, cond_noise), mask)
            emb = u.time_embedding(u.time_proj(t).to(inp.dtype))
            feats = self.features(inp, t)
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)

        def decode(z: list[torch.Tensor]) -> torch.Tensor:
            emb, *skips = z
            h, skips = skips[-1], tuple(skips[:-1])
            for block in u.up_blocks:
                n = len(block.resnets)
                h, skips = block(h, skips[-n:], emb), skips[:-n]
            pred = u.conv_out(u.conv_act(u.conv_norm_out(h))).float()
            return (((y_t - (1 - a).sqrt() * pred) / a.sqrt() + 1) / 2).clamp(0, 1)

        return Inversion([emb.detach(), *(f.detach() for f in feats)], decode, mask)

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """A diffusers-format folder: unet/ (UNet2DModel) + scheduler/ (DDPMScheduler) + our metadata."""
        from diffusers import DDPMScheduler

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(path / UNET)
        DDPMScheduler.from_config(self.scheduler_config).save_pretrained(path / SCHEDULER)
        meta = dict(metadata or {}) | {
            "family": self.family,
            "image_size": self.image_size,
            "channels": self.channels,
            "sampling_steps": self.sampling_steps,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> DiffusionModel:
        """Any diffusers-format folder with a conditional UNet2DModel (in `unet/`, or at the top)
        whose input has 2C + 1 channels, and a scheduler config (in `scheduler/`; without one the
        default DDPM schedule of 1,000 steps is assumed)."""
        from diffusers import DDPMScheduler, UNet2DModel

        path = Path(path)
        unet_dir = path / UNET if (path / UNET / "config.json").exists() else path
        if not (unet_dir / "config.json").exists():
            raise UserInputError(f"{path.name}: not a diffusion model folder (no {UNET}/config.json)")
        try:
            config = UNet2DModel.load_config(unet_dir)
            if config.get("_class_name") not in (None, "UNet2DModel"):
                raise ValueError(f"{config.get('_class_name')} is not a UNet2DModel")
            _check_unet(config)
            unet = UNet2DModel.from_config(config)
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise UserInputError(f"{path.name}: not a conditional UNet2DModel folder ({e})") from None
        weights = unet_dir / "diffusion_pytorch_model.safetensors"
        if not weights.exists():
            raise UserInputError(f"{path.name}: no {weights.relative_to(path)} (only safetensors weights are read)")
        from safetensors.torch import load_file

        load_state_strict(unet, load_file(str(weights)), f"{path.name}/{unet_dir.relative_to(path)}")
        sched_dir = path / SCHEDULER
        sched = (
            dict(DDPMScheduler.load_config(sched_dir)) if (sched_dir / "scheduler_config.json").exists() else dict(DDPMScheduler().config)
        )
        steps = DiffusionConfig.sampling_steps
        if (path / META_FILE).exists():
            steps = int(json.loads((path / META_FILE).read_text()).get("sampling_steps", steps))
        return cls(unet.eval(), sched, steps).eval()


class NearestUpsample(nn.Module):
    """diffusers' `Upsample2D` (nearest x2, then its 3x3 convolution) computed by broadcasting,
    which gives the same numbers as `F.interpolate(mode="nearest")` faster on a CPU, and makes
    sampling faster with it (docs/BENCHMARKS.md, 'What changed this session, and what it bought'). It
    keeps the `conv` child, so the UNet's weights keep their names and load and save as before."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, h: torch.Tensor, output_size=None, *args, **kwargs) -> torch.Tensor:
        if output_size is not None:  # an odd size the UNet asks for: the general path
            return self.conv(nn.functional.interpolate(h, size=output_size, mode="nearest"))
        b, c, height, width = h.shape
        return self.conv(h[:, :, :, None, :, None].expand(b, c, height, 2, width, 2).reshape(b, c, 2 * height, 2 * width))


def _fast_upsampling(unet: nn.Module) -> nn.Module:
    """`unet` with each plain nearest-x2-then-conv `Upsample2D` replaced by `NearestUpsample`."""
    from diffusers.models.upsampling import Upsample2D

    for block in unet.up_blocks:
        ups = getattr(block, "upsamplers", None) or []
        for i, up in enumerate(ups):
            if type(up) is not Upsample2D:  # e.g. a resnet upsampler (`upsample_type="resnet"`): kept
                continue
            if up.interpolate and up.use_conv and not up.use_conv_transpose and up.norm is None and up.name == "conv":
                ups[i] = NearestUpsample(up.conv)
    return unet


class CPUFriendlyAttention:
    """diffusers' attention processor (`AttnProcessor2_0`, the fused kernel), except on a CPU
    under bfloat16 autocast where gradients flow through it: there it takes diffusers' plain one
    (`AttnProcessor`: two batched products and a softmax), as the fused kernel's backward pass is
    much slower there (`base.attention`; docs/BENCHMARKS.md, 'CPU, fourth session'). Processors
    hold no weights, so saving and loading are unchanged."""

    def __init__(self):
        from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

        self.fused, self.plain = AttnProcessor2_0(), AttnProcessor()

    # The arguments named as diffusers' processors name them: it passes only those it finds here.
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        grad = hidden_states.requires_grad or attn.to_q.weight.requires_grad
        use = self.plain if writes_out_attention(hidden_states, grad) else self.fused
        return use(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


def _cpu_friendly_attention(unet: nn.Module) -> nn.Module:
    """`unet` with `CPUFriendlyAttention` in each of its attention layers."""
    from diffusers.models.attention_processor import Attention

    for module in unet.modules():
        if isinstance(module, Attention):
            module.set_processor(CPUFriendlyAttention())
    return unet


def _check_unet(config) -> None:
    """A UNet this family can drive: input 2C + 1 channels, output C, blocks whose forward we know."""
    get = config.get  # a plain dict or diffusers' FrozenDict (unet.config)
    c_in, c_out = get("in_channels"), get("out_channels")
    if c_in != 2 * c_out + 1:
        raise UserInputError(
            f"the UNet takes {c_in} input channels; a conditional (Palette) UNet for {c_out}-channel "
            f"images takes {2 * c_out + 1} (noisy target, masked image, mask)"
        )
    blocks = [b for b in list(get("down_block_types", ())) + list(get("up_block_types", ())) if b not in SUPPORTED_BLOCKS]
    if blocks or get("class_embed_type") is not None or get("num_class_embeds") is not None:
        raise UserInputError(f"unsupported UNet blocks or class conditioning: {blocks or get('class_embed_type')}")


FAMILY = Family(
    name="diffusion",
    label="conditional diffusion UNet (Palette)",
    model=DiffusionModel,
    presets=PRESETS,
    train=imported_when_called("unlearn_core.models.diffusion_train", "train_diffusion_model"),
    embedded="diffusion-animals",
    references={"cat": "diffusion-animals-nocat"},
    # a higher learning rate than the other families (docs/findings/diffusion.md)
    defaults=Defaults(steps=600, lr=2e-3, sampling_steps=DiffusionConfig.sampling_steps),
    # the official Palette code's: lr 5e-5, alpha 0.1, random masks, 50 epochs over our forget set
    official=Defaults(steps=1200, lr=5e-5, train_mask="random", alpha={"ours": 0.1}, sampling_steps=DiffusionConfig.sampling_steps),
    guide=Guide(
        forgotten="the generated region fills with speckled, scribbly noise instead of a body",
        look_for="the cats' fills turn to speckled scribbles; so, with these defaults, do many dogs' (see the known limit): "
        "compare how much of each set the 'what changed' column lights up, and both with the 'never saw cats' column, "
        "which draws clean bodies",
        measured=Measured(
            forget=(0.86, 0.27), retain=(0.75, 0.475), mask="center50", source="docs/findings/diffusion.md", date="2026-11-30"
        ),
    ),
)
