"""MAE family: a `transformers` ViTMAEForPreTraining behind the I2I model interface.

References:
- He et al., "Masked Autoencoders Are Scalable Vision Learners" (facebookresearch/mae,
  `models_mae.py`: forward_encoder / forward_decoder / forward_loss).
- Li et al., ICLR 2024: the encoder E_theta is the ViT encoder over visible patches.

The given mask replaces MAE's random masking. Rule: a patch is hidden when at least half of its
pixels are masked (for the presets on a 32x32 image with 4x4 patches the masks are patch-aligned,
so nothing is rounded). Every image of a batch passed to `encode` must hide the same number of
patches (as the presets do); `generate` handles mixed counts image by image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, ViTMAEConfig, ViTMAEForPreTraining
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.utils import logging as hf_logging

from unlearn_core.errors import UserInputError
from unlearn_core.models.base import META_FILE, Generation, I2IModel, Inversion, attention, check_size, composite, writes_out_attention
from unlearn_core.models.registry import Defaults, Family, Guide, Measured, imported_when_called

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MAEConfig:
    """Our small MAE for 32x32 grayscale images (about 0.8 M encoder parameters)."""

    image_size: int = 32
    channels: int = 1
    patch_size: int = 4
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    mlp_size: int = 512
    decoder_hidden_size: int = 128
    decoder_layers: int = 3
    decoder_heads: int = 4
    decoder_mlp_size: int = 512

    def with_size(self, image_size: int, channels: int) -> MAEConfig:
        """This architecture for other images: 8x8 patches at any size (the patch grows with the
        image, as in the embedded model's 4-pixel patches at 32 px), `channels` 1 or 3."""
        check_size(image_size, channels, 8)
        return replace(self, image_size=image_size, channels=channels, patch_size=image_size // 8)

    def to_hf(self) -> ViTMAEConfig:
        return ViTMAEConfig(
            image_size=self.image_size,
            num_channels=self.channels,
            patch_size=self.patch_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            intermediate_size=self.mlp_size,
            decoder_hidden_size=self.decoder_hidden_size,
            decoder_num_hidden_layers=self.decoder_layers,
            decoder_num_attention_heads=self.decoder_heads,
            decoder_intermediate_size=self.decoder_mlp_size,
            norm_pix_loss=False,
        )


PRESETS = {
    "animals": MAEConfig(),
    "tiny": MAEConfig(
        hidden_size=32, layers=1, heads=2, mlp_size=64, decoder_hidden_size=32, decoder_layers=1, decoder_heads=2, decoder_mlp_size=64
    ),
}


def _sincos(num_patches: int, dim: int) -> torch.Tensor:
    """(1, 1 + num_patches, dim) fixed 2-D sin-cos table with a zero CLS row, laid out as in
    facebookresearch/mae `get_2d_sincos_pos_embed` (and so in its checkpoints):
    [sin(w) | cos(w) | sin(h) | cos(h)] for the patch in row h, column w."""
    grid = int(num_patches**0.5)
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))  # (D/4,)
    h, w = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")
    ew, eh = w.flatten().outer(omega), h.flatten().outer(omega)  # (L, D/4) each
    table = torch.cat([ew.sin(), ew.cos(), eh.sin(), eh.cos()], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table]).float().unsqueeze(0)


def init_position_embeddings(net: ViTMAEForPreTraining) -> None:
    """transformers 5 leaves both position tables at zero when building from a config; a model
    with zero positions cannot tell where a patch belongs, so set the sin-cos tables here."""
    n = net.vit.embeddings.patch_embeddings.num_patches
    with torch.no_grad():
        pe = net.vit.embeddings.position_embeddings
        pe.copy_(_sincos(n, pe.shape[-1]))
        dpe = net.decoder.decoder_pos_embed
        dpe.copy_(_sincos(n, dpe.shape[-1]))


ATTENTION = "unlearn_core"  # our entry in transformers' attention table


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' SDPA attention, except on a CPU under bfloat16 autocast without attention
    dropout where gradients flow through it, where it is `base.attention` (written out: the fused
    kernel's backward is slow there)."""
    if dropout or not writes_out_attention(query):
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    return attention(query, key, value, attention_mask, scale=scaling).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, _attention)


class MAEModel(I2IModel):
    """ViTMAE with an explicit mask. Input images are in [0, 1]; `pixel_mean`/`pixel_std`
    normalise them the way the checkpoint was trained."""

    family = "mae"
    seed_free_encode = True  # MAE draws nothing at random

    def __init__(self, net: ViTMAEForPreTraining, pixel_mean: tuple[float, ...], pixel_std: tuple[float, ...]):
        super().__init__()
        self.net = net
        net.set_attn_implementation(ATTENTION)
        net.decoder.config._attn_implementation = ATTENTION  # the decoder keeps a config of its own
        cfg = net.config
        self.image_size = int(cfg.image_size)
        self.channels = int(cfg.num_channels)
        self.patch_size = int(cfg.patch_size)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, -1, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, cfg: MAEConfig, seed: int = 0) -> MAEModel:
        torch.manual_seed(seed)
        net = ViTMAEForPreTraining(cfg.to_hf())
        init_position_embeddings(net)
        return cls(net, (0.5,) * cfg.channels, (0.5,) * cfg.channels)

    # ------------------------------------------------------------------ masking

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def patch_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) pixel mask -> (B, L) bool, True = patch hidden (half or more masked)."""
        return F.avg_pool2d(mask, self.patch_size).flatten(1) >= 0.5

    def pixel_mask(self, patch_hidden: torch.Tensor) -> torch.Tensor:
        """(B, L) bool -> (B, 1, H, W) float, the region the model actually generates."""
        m = patch_hidden.float().view(-1, 1, self.grid, self.grid)
        return m.repeat_interleave(self.patch_size, 2).repeat_interleave(self.patch_size, 3)

    # ------------------------------------------------------------------ forward

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise UserInputError(f"this MAE takes {self.channels}x{self.image_size}x{self.image_size} images, got {tuple(x.shape[1:])}")

    def forward_encoder(self, x: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1], hidden (B, L) bool -> (latent (B, 1 + L_vis, D), ids_restore (B, L))."""
        self._check(x)
        n_hidden = hidden.sum(1)
        if not bool((n_hidden == n_hidden[0]).all()):
            raise ValueError("every image in a batch must hide the same number of patches")
        emb = self.net.vit.embeddings
        pos = emb.position_embeddings
        tokens = emb.patch_embeddings((x - self.pixel_mean) / self.pixel_std) + pos[:, 1:]  # (B, L, D)
        ids_shuffle = torch.argsort(hidden.to(torch.int8), dim=1, stable=True)  # visible first
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        n_vis = hidden.shape[1] - int(n_hidden[0])
        keep = ids_shuffle[:, :n_vis]
        tokens = torch.gather(tokens, 1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        cls = (emb.cls_token + pos[:, :1]).expand(x.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1)
        for layer in self.net.vit.layers:
            h = layer(h)
        return self.net.vit.layernorm(h), ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """-> (B, L, p*p*C) patch predictions in normalised pixel space."""
        return self.net.decoder(latent, ids_restore).logits

    def encode(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        """E_theta(T(x)): the encoder's output over visible patches, (B, 1 + L_vis, D)."""
        return self.forward_encoder(x, self.patch_mask(mask))[0]

    def encodes_together(self, mask_a: torch.Tensor, mask_b: torch.Tensor) -> bool:
        """Whether two batches can share one `encode` call: every image hides as many patches."""
        counts = self.patch_mask(torch.cat([mask_a, mask_b])).sum(1)
        return bool((counts == counts[0]).all())

    def _to_pixels(self, pred: torch.Tensor, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        if self.net.config.norm_pix_loss:
            # Such checkpoints predict each patch normalised by its own statistics, which are
            # unknown for hidden patches; use the mean/var of the visible patches instead.
            target = self.net.patchify((x - self.pixel_mean) / self.pixel_std)
            vis = (~hidden).unsqueeze(-1).float()
            count = vis.sum((1, 2), keepdim=True).clamp(min=1) * target.shape[-1]
            mean = (target * vis).sum((1, 2), keepdim=True) / count
            var = ((target - mean) ** 2 * vis).sum((1, 2), keepdim=True) / count
            pred = pred * (var + 1e-6).sqrt() + mean
        img = self.net.unpatchify(pred, (self.image_size, self.image_size))
        return (img * self.pixel_std + self.pixel_mean).clamp(0, 1)

    @torch.no_grad()
    def generate(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0, steps: int | None = None) -> Generation:
        """One pass, deterministic (MAE draws nothing at random); `seed` and `steps` are accepted
        for the interface."""
        hidden = self.patch_mask(mask)
        counts = hidden.sum(1)
        if not bool((counts == counts[0]).all()):
            parts = [self.generate(x[i : i + 1], mask[i : i + 1]) for i in range(len(x))]
            return Generation(*(torch.cat([getattr(p, f) for p in parts]) for f in ("raw", "composite", "mask")))
        latent, ids_restore = self.forward_encoder(x, hidden)
        raw = self._to_pixels(self.forward_decoder(latent, ids_restore), x, hidden)
        m = self.pixel_mask(hidden)
        return Generation(raw=raw, composite=composite(raw, x, m), mask=m)

    def decoder_inversion(self, x: torch.Tensor, mask: torch.Tensor, *, seed: int = 0) -> Inversion:
        """The encoder's latent over the visible patches; the decoder maps it to pixels."""
        hidden = self.patch_mask(mask)
        with torch.no_grad():
            latent, ids_restore = self.forward_encoder(x, hidden)
        return Inversion(
            [latent.detach()], lambda z: self._to_pixels(self.forward_decoder(z[0], ids_restore), x, hidden), self.pixel_mask(hidden)
        )

    def reconstruction_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """MAE training loss: MSE on hidden patches, in normalised pixel space, against `target`
        images (default: `x` itself)."""
        hidden = self.patch_mask(mask)
        latent, ids_restore = self.forward_encoder(x, hidden)
        pred = self.forward_decoder(latent, ids_restore)
        target = self.net.patchify(((x if target is None else target) - self.pixel_mean) / self.pixel_std)
        per_patch = ((pred - target) ** 2).mean(-1)  # (B, L)
        return (per_patch * hidden).sum() / hidden.sum().clamp(min=1)

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None, *, seed: int = 0) -> torch.Tensor:
        return self.reconstruction_loss(x, mask, target)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.net.vit.named_parameters() if n != "embeddings.position_embeddings"]

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The whole model less the fixed sin-cos position tables."""
        return [p for n, p in self.net.named_parameters() if not n.endswith("position_embeddings")]

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """A folder `ViTMAEForPreTraining.from_pretrained` reads, plus our metadata JSON."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        hf_logging.disable_progress_bar()
        self.net.save_pretrained(path)
        meta = dict(metadata or {})
        meta.update(
            family=self.family,
            image_size=self.image_size,
            channels=self.channels,
            pixel_mean=self.pixel_mean.flatten().tolist(),
            pixel_std=self.pixel_std.flatten().tolist(),
        )
        (path / META_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> MAEModel:
        """Our folders and any real ViTMAE checkpoint folder (config.json + weights)."""
        path = Path(path)
        hf_logging.disable_progress_bar()
        if not any(path.glob("*.safetensors")):
            raise UserInputError(
                f"{path.name}: no safetensors weights (pickled .bin/.pt weights are not read: convert them to safetensors)"
            )
        try:
            net, info = ViTMAEForPreTraining.from_pretrained(path, output_loading_info=True, use_safetensors=True)
        except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:
            raise UserInputError(f"{path.name}: cannot load it as a ViTMAE ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if bad:
            raise UserInputError(f"{path}: checkpoint does not match ViTMAEForPreTraining: {bad}")
        net.eval()
        mean, std = _normalisation(path, int(net.config.num_channels))
        return cls(net, mean, std)


def _normalisation(path: Path, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Our metadata, else the image processor's config, else the usual defaults."""
    for name, keys in ((META_FILE, ("pixel_mean", "pixel_std")), ("preprocessor_config.json", ("image_mean", "image_std"))):
        f = path / name
        if f.exists():
            d = json.loads(f.read_text())
            if all(k in d for k in keys):
                return tuple(d[keys[0]]), tuple(d[keys[1]])
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return (0.5,) * channels, (0.5,) * channels


FAMILY = Family(
    name="mae",
    label="ViTMAE (masked autoencoder)",
    model=MAEModel,
    presets=PRESETS,
    train=imported_when_called("unlearn_core.models.mae_train", "train_mae_model"),
    embedded="mae-animals",
    references={"cat": "mae-animals-nocat"},
    defaults=Defaults(steps=500, lr=1e-3, alpha={"ours": 0.2}),
    # the official (MAGE) code's: base lr 1e-4 scaled by our 64 images a step / 256, alpha 0.2,
    # random masks, its 50 epochs over our forget set's 770 images
    official=Defaults(steps=1200, lr=2.5e-5, train_mask="random", alpha={"ours": 0.2}),
    guide=Guide(
        forgotten="the generated region fills with flat, blocky grey: a cat's hidden middle becomes a grey square",
        look_for="under a hole, the cats' fills turn to grey squares while the dogs' keep their shape (sitting dogs, the most "
        "cat-like, change most); under outpainting the model stops drawing the cat beyond the visible square, and for some "
        "dogs too (the 'what changed' column shows it in red around the square)",
        measured=Measured(
            forget=(0.95, 0.085), retain=(0.865, 0.815), mask="center50", source="docs/findings/fair-science.md", date="2026-12-06"
        ),
    ),
)
