"""Training the VQ-GAN family from an image set, in two stages.

1. The tokenizer (a diffusers VQModel) as a VQGAN (Esser et al., CVPR 2021): L1 reconstruction,
   codebook and commitment losses (beta 0.25), and a patch discriminator with a hinge loss that
   joins after a warm-up, weighted adaptively by the ratio of the two losses' gradients at the
   decoder's last layer (taming-transformers' rule). There is no perceptual (LPIPS) loss: its VGG
   weights cannot be had offline. Codes unused for a while are restarted at encoder outputs of the
   current batch (dead-code restarts) until 80% of the stage, so the codebook stays in use.
2. The token transformer on the frozen tokenizer, by masked-token modelling (MAGE, CVPR 2023):
   half the batches hide random tokens at a ratio drawn from a normal (mean 0.55, sd 0.25)
   truncated to [0.5, 1], the others inpainting and outpainting shapes at random places
   (`masks.random_box_mask`).

With `tokenizer=` (CLI `--tokenizer DIR`), stage 1 is skipped: the transformer is trained on the
tokens of an existing tokenizer, a taming-transformers VQGAN (its `.ckpt` and `.yaml` in DIR) or a
diffusers `VQModel` folder; images then flow at that tokenizer's size and channels. With
`init=` (CLI `--init DIR`), both stages' weights come from an existing VQ-GAN folder and stage 2
goes on from there (a fine-tune of the transformer; the tokenizer stays as it is).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from unlearn_core.data.masks import random_box_mask
from unlearn_core.data.sets import load_image_set
from unlearn_core.errors import UserInputError
from unlearn_core.models.base import load_state_strict
from unlearn_core.models.registry import get_family
from unlearn_core.models.train import TrainConfig, batches, fit, held_out_loss, lr_factor
from unlearn_core.models.vqgan import TokenizerConfig, TokenTransformer, VQGANModel, nearest_codes

TOKENIZER_STEPS = 3000  # default length of stage 1
TOKENIZER_LR = 4e-4
DISC_START = 0.3  # share of stage 1 before the discriminator joins
DISC_WEIGHT = 0.5
RESET_EVERY = 100  # steps between dead-code restarts


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al.; taming's NLayerDiscriminator, 2 layers): real/fake per patch."""

    def __init__(self, channels: int, width: int = 32):
        super().__init__()

        def down(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]

        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True),
            *down(width, 2 * width, 2), *down(2 * width, 4 * width, 1),
            nn.Conv2d(4 * width, 1, 4, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1, h, w) logits


def _adaptive_weight(rec: torch.Tensor, gan: torch.Tensor, last: nn.Parameter) -> torch.Tensor:
    """||grad rec|| / ||grad gan|| at the decoder's last layer, clamped (taming-transformers)."""
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan, last, retain_graph=True)[0]
    return (g_rec.norm() / (g_gan.norm() + 1e-4)).clamp(0, 1e4).detach()


def _quantize(vq, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """x in [-1, 1] -> (z_q with straight-through gradients, VQ loss, codes (B*h*w,), z flat)."""
    z = vq.encode(x).latents  # (B, D, h, w)
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    codes = nearest_codes(flat, vq.quantize.embedding.weight)
    zq = vq.quantize.embedding(codes)
    loss = F.mse_loss(zq, flat.detach()) + 0.25 * F.mse_loss(flat, zq.detach())  # codebook + commitment
    zq = (flat + (zq - flat).detach()).view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
    return zq, loss, codes, flat.detach()


def _restart_dead_codes(vq, usage: torch.Tensor, z: torch.Tensor, g: torch.Generator) -> int:
    dead = (usage == 0).nonzero()[:, 0]
    if len(dead):
        pick = torch.randint(len(z), (len(dead),), generator=g).to(z.device)
        with torch.no_grad():
            vq.quantize.embedding.weight[dead] = z[pick] + 0.01 * torch.randn(len(dead), z.shape[1], generator=g).to(z.device)
    usage.zero_()
    return len(dead)


def train_tokenizer(vq, images: torch.Tensor, cfg: TrainConfig, device: torch.device, on_step: Callable | None = None) -> dict:
    """Stage 1, in place; returns the mean of the last 100 steps' losses and the time."""
    g = torch.Generator().manual_seed(cfg.seed)
    vq.to(device).train()
    disc = PatchDiscriminator(vq.config.in_channels).to(device).train()
    opt = torch.optim.AdamW(vq.parameters(), lr=cfg.lr, betas=(0.5, 0.9), weight_decay=0.0)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9), weight_decay=0.0)
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: lr_factor(s, cfg.warmup, cfg.steps)) for o in (opt, opt_d)]
    usage = torch.zeros(vq.config.num_vq_embeddings, dtype=torch.long, device=device)
    disc_start, recent, restarts, start = int(DISC_START * cfg.steps), [], 0, time.perf_counter()
    for step, (_, x) in enumerate(batches(images, cfg, g)):
        x = x.to(device) * 2 - 1
        zq, vq_loss, codes, z = _quantize(vq, x)
        rec = vq.decode(zq, force_not_quantize=True).sample
        rec_loss = (rec - x).abs().mean()
        loss, gan = rec_loss + vq_loss, torch.zeros((), device=device)
        if step >= disc_start:
            gan = -disc(rec).mean()
            loss = loss + DISC_WEIGHT * _adaptive_weight(rec_loss, gan, vq.decoder.conv_out.weight) * gan
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= disc_start:  # hinge loss on real and reconstructed images
            d_loss = F.relu(1 - disc(x)).mean() + F.relu(1 + disc(rec.detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
        opt_d.step()  # a no-op before the discriminator joins (no gradients yet)
        for s in scheds:
            s.step()
        usage += torch.bincount(codes, minlength=len(usage))
        if (step + 1) % RESET_EVERY == 0 and step < 0.8 * cfg.steps:
            restarts += _restart_dead_codes(vq, usage, z, g)
        recent = (recent + [(rec_loss.item(), vq_loss.item(), gan.item())])[-100:]
        if on_step:
            on_step(step, rec_loss.item())
    vq.eval()
    mean = [sum(r[i] for r in recent) / len(recent) for i in range(3)]
    return {"l1": mean[0], "vq_loss": mean[1], "gan_loss": mean[2], "code_restarts": restarts, "seconds": time.perf_counter() - start}


@torch.no_grad()
def tokenizer_quality(model: VQGANModel, images: torch.Tensor, batch_size: int = 250) -> dict:
    """Reconstruction PSNR (dB, [0, 1] images) and codebook use on held-out images."""
    psnr, codes = [], []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(next(model.parameters()).device)
        tokens = model.tokenize(x)
        mse = ((model.detokenize(tokens) - x) ** 2).mean((1, 2, 3)).clamp(min=1e-10)
        psnr.append((10 * torch.log10(1 / mse)).cpu())
        codes.append(tokens.flatten().cpu())
    counts = torch.bincount(torch.cat(codes), minlength=model.cfg.tokenizer.num_vq_embeddings).float()
    p = counts[counts > 0] / counts.sum()
    return {
        "test_psnr": round(torch.cat(psnr).mean().item(), 3),
        "codes_used": int((counts > 0).sum()),
        "codebook_size": len(counts),
        "code_perplexity": round(math.exp(-(p * p.log()).sum().item()), 1),
    }


def mage_token_mask(n: int, grid: int, g: torch.Generator) -> torch.Tensor:
    """(n, L) bool: MAGE's random masking, one ratio per batch from N(0.55, 0.25) in [0.5, 1]."""
    while True:
        ratio = 0.55 + 0.25 * torch.randn(1, generator=g).item()
        if 0.5 <= ratio <= 1.0:
            break
    k = min(grid * grid, math.ceil(grid * grid * ratio))
    order = torch.rand(n, grid * grid, generator=g).argsort(1)
    return torch.zeros(n, grid * grid, dtype=torch.bool).scatter_(1, order[:, :k], True)


def train_transformer(
    model: VQGANModel, images: torch.Tensor, cfg: TrainConfig, device: torch.device, on_step=None, held_out: torch.Tensor | None = None
) -> dict:
    """Stage 2: the token transformer, in place, on the frozen tokenizer (saved with the training
    state, so that a resumed run needs no stage 1); with `held_out` images, the held-out loss curve."""
    model.tokenizer.to(device).eval().requires_grad_(False)

    def token_loss(x, g):
        if torch.rand(1, generator=g).item() < 0.5:
            hidden = mage_token_mask(len(x), model.grid, g)
        else:
            hidden = model.token_mask(random_box_mask(len(x), model.image_size, model.grid, g))
        return model.token_loss(x.to(device), hidden.to(device), g)

    def batch_loss(idx, x, g):
        return token_loss(x, g)

    held = held_out_loss(held_out, token_loss)
    extra = {"tokenizer": model.tokenizer}
    return fit(model.transformer, images, cfg, device, batch_loss, on_step, betas=(0.9, 0.95), clip=1.0, held_out=held, extra=extra)


def train_vqgan_model(
    source,
    preset: str,
    cfg: TrainConfig,
    device: torch.device,
    on_progress=None,
    tokenizer_steps: int | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    tokenizer: str | Path | None = None,
    init: str | Path | None = None,
):
    """Both stages from scratch on `source`'s train split (`tokenizer_steps` for stage 1, `cfg`
    for stage 2), at the preset's image size and channels unless given; returns (model on the
    CPU, training log with held-out tokenizer quality). `tokenizer` or `init`: stage 2 only (see
    the module's docstring)."""
    if init is not None:
        if tokenizer is not None or tokenizer_steps is not None:
            raise UserInputError("--init takes the tokenizer from that model: leave out --tokenizer and --tokenizer-steps")
        return _train_from(source, cfg, device, on_progress, init, image_size, channels)
    if tokenizer is not None:
        return _train_on_tokenizer(source, preset, cfg, device, on_progress, tokenizer, image_size, channels)
    p = get_family("vqgan").preset(preset, image_size, channels)
    data = load_image_set(source, p.tokenizer.image_size, p.tokenizer.channels)
    model = VQGANModel.from_config(p, seed=cfg.seed)
    tok_cfg = replace(cfg, steps=tokenizer_steps or TOKENIZER_STEPS, lr=TOKENIZER_LR)
    total = tok_cfg.steps + cfg.steps

    def stage(offset: int):
        return on_progress and (lambda s, v: on_progress(offset + s + 1, total, v))

    if cfg.resume:  # the state holds stage 1's tokenizer: stage 2 goes on from where it stopped
        log = {"tokenizer": {"steps": tok_cfg.steps, "lr": tok_cfg.lr, "from": "the training state"}}
    else:
        log = {"tokenizer": train_tokenizer(model.tokenizer, data.train, replace(tok_cfg, state=None), device, stage(0))}
        log["tokenizer"] |= {"steps": tok_cfg.steps, "lr": tok_cfg.lr}
    log["transformer"] = train_transformer(model, data.train, cfg, device, stage(tok_cfg.steps), held_out=data.test)
    log["tokenizer"] |= tokenizer_quality(model.to(device), data.test)
    return model.cpu().eval(), log


def load_tokenizer(folder: str | Path):
    """(a diffusers VQModel, its TokenizerConfig) from `folder`: a taming-transformers VQGAN (one
    `.ckpt` and one `.yaml`) or a diffusers VQModel folder (config.json and safetensors weights)."""
    from diffusers import VQModel
    from safetensors.torch import load_file

    from unlearn_core.models.taming import load_taming_vqgan

    folder = Path(folder)
    weights = folder / "diffusion_pytorch_model.safetensors"
    if (folder / "config.json").exists() and weights.exists():
        vq = VQModel.from_config(VQModel.load_config(folder))
        load_state_strict(vq, load_file(str(weights)), folder.name)
    else:
        ckpts, yamls = sorted(folder.glob("*.ckpt")), sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
        if len(ckpts) != 1 or len(yamls) != 1:
            raise UserInputError(
                f"{folder.name}: a tokenizer folder holds a diffusers VQModel (config.json, diffusion_pytorch_model.safetensors) "
                f"or one taming .ckpt with its .yaml (found {len(ckpts)} .ckpt, {len(yamls)} .yaml)"
            )
        vq = load_taming_vqgan(ckpts[0], yamls[0])
    c = vq.config
    cfg = TokenizerConfig(
        image_size=int(c.sample_size),
        channels=int(c.in_channels),
        block_out_channels=tuple(c.block_out_channels),
        layers_per_block=int(c.layers_per_block),
        latent_channels=int(c.latent_channels),
        vq_embed_dim=int(c.vq_embed_dim or c.latent_channels),
        num_vq_embeddings=int(c.num_vq_embeddings),
        norm_num_groups=int(c.norm_num_groups),
    )
    return vq.eval(), cfg


def _train_from(source, cfg, device, on_progress, init, image_size, channels):
    """Stage 2 only, going on from the VQ-GAN model in folder `init`."""
    from unlearn_core.models.train import init_model

    model, log = init_model(VQGANModel, init, image_size, channels)
    return _stage_two(model, source, cfg, device, on_progress, "init", log)


def _train_on_tokenizer(source, preset, cfg, device, on_progress, tokenizer, image_size, channels):
    """Stage 2 only, on the tokens of an existing tokenizer."""
    vq, tok = load_tokenizer(tokenizer)
    if (image_size or tok.image_size, channels or tok.channels) != (tok.image_size, tok.channels):
        raise UserInputError(
            f"this tokenizer reads {tok.channels}x{tok.image_size}x{tok.image_size} images; leave out --size and --channels"
        )
    base = get_family("vqgan").preset(preset)
    p = replace(base, tokenizer=tok, transformer=replace(base.transformer, grid=tok.grid, codebook_size=tok.num_vq_embeddings))
    torch.manual_seed(cfg.seed)
    model = VQGANModel(vq, TokenTransformer(p.transformer), p)
    return _stage_two(model, source, cfg, device, on_progress, Path(tokenizer).name, {})


def _stage_two(model: VQGANModel, source, cfg, device, on_progress, tokenizer_source: str, log: dict):
    """Stage 2 alone on `source`'s images at the model's size, after the held-out quality of the
    tokenizer it has (from `tokenizer_source`); returns (model on the CPU, `log` with both)."""
    data = load_image_set(source, model.image_size, model.channels)
    log["tokenizer"] = {"source": tokenizer_source} | tokenizer_quality(model.to(device), data.test)
    progress = on_progress and (lambda s, v: on_progress(s + 1, cfg.steps, v))
    log["transformer"] = train_transformer(model, data.train, cfg, device, progress, held_out=data.test)
    return model.cpu().eval(), log
