"""What training an original (pre-unlearning) model shares across families: the config, the
loop (`fit`), the learning-rate schedule, building a model from a preset or an existing folder
(`train_one_stage`) and `train_family`, which runs a family's own trainer (`Family.train`, in
`<family>_train.py` beside the family). The probe's training is in `measure.probe_train`.

Two options serve every family: `TrainConfig.noise_share` (CLI `--noise-share`) replaces that share
of each batch by noise images (`noise.noise_like`: the batch's mean and spread, the noise the
unlearning method's forget term feeds the encoder), so that the model also learns what to make of
noise; and `init` (CLI `--init DIR`) starts from an existing model's weights instead of a fresh
one (a fine-tune; VQ-GAN then trains its token transformer only).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from unlearn_core.data.noise import noise_like
from unlearn_core.errors import UserInputError
from unlearn_core.models.registry import get_family


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1.5e-3
    weight_decay: float = 0.05
    warmup: int = 100
    seed: int = 0
    noise_share: float = 0.0  # share of each batch replaced by noise images (see the module's docstring)

    def __post_init__(self):
        if not 0 <= self.noise_share < 1:
            raise UserInputError(f"the noise share must be at least 0 and below 1, got {self.noise_share}")


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def batches(images: torch.Tensor, cfg: TrainConfig, g: torch.Generator):
    for _ in range(cfg.steps):
        idx = torch.randint(len(images), (cfg.batch_size,), generator=g)
        x = images[idx]
        flip = torch.rand(len(x), generator=g) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        k = round(cfg.noise_share * len(x))
        if k:
            x = torch.cat([noise_like(x, g)[:k], x[k:]])
        yield idx, x


def fit(
    module: torch.nn.Module,
    images: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    batch_loss: Callable,
    on_step: Callable | None,
    betas=(0.9, 0.999),
    clip: float | None = None,
) -> dict:
    """The shared loop: AdamW, warm-up + cosine, `batch_loss(idx, x, g)` per batch of `images`."""
    g = torch.Generator().manual_seed(cfg.seed)
    module.to(device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup, cfg.steps))
    start, recent = time.perf_counter(), []
    for step, (idx, x) in enumerate(batches(images, cfg, g)):
        loss = batch_loss(idx, x, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
        opt.step()
        sched.step()
        recent = (recent + [loss.item()])[-100:]
        if on_step:
            on_step(step, loss.item())
    module.eval()
    return {"final_loss": sum(recent) / len(recent), "seconds": time.perf_counter() - start, "steps": cfg.steps}


def train_one_stage(model_cls, preset: str, trainer: Callable, source, cfg: TrainConfig, device, on_progress, options: dict):
    """A new `model_cls` of preset `preset` (at the `image_size` / `channels` in `options`, if
    any), or the model in folder `options["init"]`, trained by `trainer(model, images, cfg,
    device, on_step)` on `source`'s train split; returns (model, the image set, log). Families
    with one stage and no options of their own share it."""
    from unlearn_core.data.sets import load_image_set

    options = dict(options)
    init = options.pop("init", None)
    size, channels = options.pop("image_size", None), options.pop("channels", None)
    if options:
        raise UserInputError(f"the {model_cls.family} family takes no {', '.join(options)}")
    if init is not None:
        model, log = init_model(model_cls, init, size, channels)
    else:
        preset_cfg = get_family(model_cls.family).preset(preset, size, channels)
        model, log = model_cls.from_config(preset_cfg, seed=cfg.seed), {}
    data = load_image_set(source, model.image_size, model.channels)
    log |= trainer(model, data.train, cfg, device, on_progress and (lambda s, v: on_progress(s + 1, cfg.steps, v)))
    return model, data, log


def init_model(model_cls, folder, image_size: int | None, channels: int | None):
    """(the `model_cls` model saved in `folder`, {"init": where it came from}) to train further;
    its size and channels are its own."""
    from unlearn_core.models.checkpoints import load_model, read_metadata, resolve

    if image_size is not None or channels is not None:
        raise UserInputError("a model to start from (--init) keeps its own size and channels; leave out --size and --channels")
    path = resolve(model_cls.family, folder)
    model = load_model(model_cls.family, path)
    before = read_metadata(path).get("training") or {}
    earlier = {k: before[k] for k in ("command", "init") if k in before}  # how that model was made
    return model, {"init": {"folder": str(folder), **earlier}}


def train_family(family: str, source, preset: str, cfg: TrainConfig, device: torch.device, on_progress=None, **options):
    """Train an original model of `family` with its own trainer (`Family.train`)."""
    return get_family(family).train(source, preset, cfg, device, on_progress, **options)
