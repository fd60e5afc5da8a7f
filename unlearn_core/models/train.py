"""What training an original (pre-unlearning) model shares across families: the config, the
loop (`fit`), the learning-rate schedule, building a model from a preset or an existing folder
(`train_one_stage`) and `train_family`, which runs a family's own trainer (`Family.train`, in
`<family>_train.py` beside the family). The probe's training is in `measure.probe_train`.

`fit` records the held-out loss over training (`held_out`: the family's objective on test images
with fixed draws, at `HELD_OUT_POINTS` points) and says whether the last fifth of the steps still
improved it by 1% or more (`plateau`); with `TrainConfig.state` it saves its whole state (weights,
optimizer, schedule, random draws, the curve) every `save_every` steps, and `resume` goes on from
it, so that a long training runs in chunks.

Two options serve every family: `TrainConfig.noise_share` (CLI `--noise-share`) replaces that share
of each batch by noise images (`noise.noise_like`: the batch's mean and spread, the noise the
unlearning method's forget term feeds the encoder), so that the model also learns what to make of
noise; and `init` (CLI `--init DIR`) starts from an existing model's weights instead of a fresh
one (a fine-tune; VQ-GAN then trains its token transformer only).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    state: str | None = None  # file to keep the training state in (`fit`); None: none kept
    resume: bool = False  # go on from `state` where a run left it
    save_every: int = 250

    def __post_init__(self):
        if not 0 <= self.noise_share < 1:
            raise UserInputError(f"the noise share must be at least 0 and below 1, got {self.noise_share}")


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


HELD_OUT_POINTS = 20  # held-out evaluations over a training run, the last at its end
PLATEAU = 0.01  # the last fifth of the steps improving the held-out loss by less than this: a plateau


def plateau(curve: list[list[float]]) -> dict:
    """{"last_fifth_gain": the held-out loss's relative fall over the last fifth of the steps,
    "reached": whether it is below PLATEAU} from a curve of [step, loss] points."""
    if len(curve) < 2:
        return {"last_fifth_gain": None, "reached": False}
    last = curve[-1][0]
    before = min(curve, key=lambda p: abs(p[0] - 0.8 * last))
    gain = (before[1] - curve[-1][1]) / abs(before[1]) if before[1] else 0.0
    return {"last_fifth_gain": round(gain, 4), "reached": gain < PLATEAU}


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def batches(images: torch.Tensor, cfg: TrainConfig, g: torch.Generator, start: int = 0):
    for _ in range(start, cfg.steps):
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
    held_out: Callable[[], float] | None = None,
    extra: dict[str, torch.nn.Module] | None = None,
) -> dict:
    """The shared loop: AdamW, warm-up + cosine, `batch_loss(idx, x, g)` per batch of `images`.

    `held_out()`: the loss on held-out images, recorded HELD_OUT_POINTS times (the log's
    `held_out` curve and `plateau`); `extra`: modules the trainer keeps besides `module` (an EMA),
    saved and restored with the state (`cfg.state`, `cfg.resume`)."""
    g = torch.Generator().manual_seed(cfg.seed)
    module.to(device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup, cfg.steps))
    extra = extra or {}
    first, curve, recent, earlier = 0, [], [], 0.0
    state_path = Path(cfg.state) if cfg.state else None
    if cfg.resume:
        if state_path is None or not state_path.is_file():
            raise UserInputError(f"nothing to resume: no training state at {state_path}")
        saved = torch.load(state_path, map_location=device, weights_only=True)
        if saved["steps"] != cfg.steps or saved["seed"] != cfg.seed:
            raise UserInputError(
                f"{state_path} is a run of {saved['steps']} steps, seed {saved['seed']}: resume it with the same --steps and --seed"
            )
        module.load_state_dict(saved["module"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["schedule"])
        g.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"].cpu())  # dropout and other draws from torch's own generator
        if torch.cuda.is_available() and saved.get("cuda_rng"):
            torch.cuda.set_rng_state_all([s.cpu() for s in saved["cuda_rng"]])
        for name, m in extra.items():
            m.load_state_dict(saved["extra"][name])
        first, curve, recent, earlier = saved["step"], saved["curve"], saved["recent"], saved["seconds"]
    every = max(1, cfg.steps // HELD_OUT_POINTS)

    def save(step: int) -> None:
        state = {"module": module.state_dict(), "optimizer": opt.state_dict(), "schedule": sched.state_dict(), "generator": g.get_state()}
        state |= {"extra": {n: m.state_dict() for n, m in extra.items()}, "step": step, "curve": curve, "recent": recent}
        state |= {"torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        _save_state(state_path, state | {"seconds": earlier + time.perf_counter() - start, "steps": cfg.steps, "seed": cfg.seed})

    start = time.perf_counter()
    for step, (idx, x) in enumerate(batches(images, cfg, g, first), start=first):
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
        if held_out is not None and ((step + 1) % every == 0 or step + 1 == cfg.steps):
            module.eval()
            curve.append([step + 1, round(float(held_out()), 6)])
            module.train()
        if state_path is not None and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            save(step + 1)
    module.eval()
    log = {"final_loss": sum(recent) / len(recent), "seconds": earlier + time.perf_counter() - start, "steps": cfg.steps}
    if first:
        log["resumed_at"] = first
    if held_out is not None:
        log |= {"held_out": curve, "plateau": plateau(curve)}
    if state_path is not None:
        state_path.unlink(missing_ok=True)  # finished: the model itself is what is kept
    return log


def train_one_stage(model_cls, preset: str, trainer: Callable, source, cfg: TrainConfig, device, on_progress, options: dict):
    """A new `model_cls` of preset `preset` (at the `image_size` / `channels` in `options`, if
    any), or the model in folder `options["init"]`, trained by `trainer(model, images, cfg,
    device, on_step, held_out=test images)` on `source`'s train split; returns (model, the image
    set, log). Families with one stage and no options of their own share it."""
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
    log |= trainer(model, data.train, cfg, device, on_progress and (lambda s, v: on_progress(s + 1, cfg.steps, v)), held_out=data.test)
    return model, data, log


HELD_OUT_IMAGES = 500  # test images the held-out loss is measured on: evenly spread over the split (every class)


def held_out_loss(
    images: torch.Tensor | None, loss: Callable, labels: torch.Tensor | None = None, seed: int = 0, batch_size: int = 250
) -> Callable[[], float] | None:
    """A function giving the mean of `loss(x, g)` (`loss(x, y, g)` with `labels`) over HELD_OUT_IMAGES
    of `images` spread evenly over them (a split sorted by class gives every class its share),
    with the same random draws each time (`g` seeded by `seed`): the held-out curve `fit`
    records. None when there are no held-out images."""
    if images is None or not len(images):
        return None
    pick = torch.linspace(0, len(images) - 1, min(len(images), HELD_OUT_IMAGES)).round().long().unique()
    x, y = images[pick], None if labels is None else labels[pick]

    @torch.no_grad()
    def measure() -> float:
        g = torch.Generator().manual_seed(seed)
        total = 0.0
        for i in range(0, len(x), batch_size):
            part = slice(i, i + batch_size)
            value = loss(x[part], g) if y is None else loss(x[part], y[part], g)
            total += float(value) * len(x[part])
        return total / len(x)

    return measure


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
