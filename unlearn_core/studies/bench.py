"""Benchmarks: how fast a model family unlearns and generates on this machine (`bench` command).

Figures (one JSON object):
- `steps_per_s` at the default batch and `steps_per_s_large` at a large batch (forget and retain
  batch each), and the images per second through the unlearning step (2 x batch x steps/s),
  timed over `steps` steps after `warmup` steps;
- `ms_per_image`: generating 16 outputs (original model, the family's default sampler steps) per
  image, after a warm-up call;
- `peak_memory_mb`: the GPU's peak allocation, or the process's peak resident memory on the CPU;
- `time_to_forget_s`: for models the probe can judge (the embedded ones, on the built-in sets), the
  wall time of the default `unlearn` run (cats forgotten, dogs kept, the family's default masks) until the forget
  set's probe accuracy on a fixed held-out batch falls below half of the original's while the
  retain set's stays within 0.05; checked every `check_every` steps, the checks not counted.

`--config vitmae-base` (or `--size`/`--channels` on a family preset) benches an architecture with
random weights where no checkpoint is at hand: speed does not depend on the weights.
"""

from __future__ import annotations

import resource
import time

import torch

from unlearn_core.compute.device import describe, resolve_device
from unlearn_core.compute.precision import compute, resolve_precision
from unlearn_core.data.masks import parse_mask
from unlearn_core.data.sets import load_image_set
from unlearn_core.errors import UserInputError
from unlearn_core.measure.probe import load_probe
from unlearn_core.models import family_class, family_of, get_family
from unlearn_core.models.checkpoints import load_model
from unlearn_core.run.engine import UnlearnConfig, unlearn

TTF_EVAL_IMAGES = 64  # held-out images per set in the time-to-forget check


def architectures() -> dict:
    """Named real-size architectures (random weights): name -> (family, config)."""
    from unlearn_core.models.mae import MAEConfig

    return {
        # ViTMAE-Base as facebook/vit-mae-base: 224x224 RGB, patch 16, 12 x 768 encoder, 8 x 512 decoder
        "vitmae-base": (
            "mae",
            MAEConfig(
                image_size=224, channels=3, patch_size=16, hidden_size=768, layers=12, heads=12, mlp_size=3072,
                decoder_hidden_size=512, decoder_layers=8, decoder_heads=16, decoder_mlp_size=2048,
            ),
        ),
    }  # fmt: skip


def build(model: str, checkpoint: str | None, config: str | None, preset: str, size: int | None, channels: int | None):
    """(the model, a description): a checkpoint (or the embedded model), or random weights."""
    if config is None and size is None and channels is None:
        m = load_model(model, checkpoint)
        return m, {"weights": "checkpoint" if checkpoint else "embedded"}
    if config is not None:
        named = architectures()
        if config not in named:
            raise UserInputError(f"unknown --config {config!r}; choose from {', '.join(named)}")
        family, cfg = named[config]
    else:
        family = model
        cfg = get_family(family).preset(preset, size, channels)
    m = family_class(family).from_config(cfg, seed=0).eval()
    return m, {"weights": "random", "config": config or f"{preset} at {cfg.image_size}px x{cfg.channels}"}


def _images(m, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, m.channels, m.image_size, m.image_size, generator=g)


def _sets(m, labelled: bool):
    if labelled:
        return load_image_set("builtin:cat", m.image_size, m.channels), load_image_set("builtin:dog", m.image_size, m.channels)
    return None, None


def masks(m):
    """(training mask, evaluation mask) of the default `unlearn` command on `m`: its family's."""
    d = family_of(m).defaults
    return parse_mask(d.train_mask or d.mask), parse_mask(d.mask)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_rate(m, forget, retain, batch: int, steps: int, warmup: int, device: torch.device, precision: str = "auto") -> float:
    """Unlearning steps per second at `batch`, timed over `steps` steps after `warmup`."""
    marks: list[float] = []

    def on_step(e) -> None:
        _sync(device)
        marks.append(time.perf_counter())

    cfg = UnlearnConfig(steps=warmup + steps, batch_size=batch, precision=precision)
    unlearn(m, forget, retain, masks(m)[0], cfg, device, on_step)
    return steps / (marks[-1] - marks[warmup - 1])


@torch.inference_mode()
def ms_per_image(m, x: torch.Tensor, device: torch.device) -> float:
    m = m.to(device)
    x = x.to(device)
    mask = parse_mask("center50").build(len(x), m.image_size).to(device)
    m.generate(x, mask, seed=0)  # warm-up
    _sync(device)
    t = time.perf_counter()
    m.generate(x, mask, seed=0)
    _sync(device)
    return 1000 * (time.perf_counter() - t) / len(x)


@torch.no_grad()
def _probe_acc(m, probe, x: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> float:
    was_training = m.training
    m.eval()
    out = m.generate(x, mask, seed=0).composite
    m.train(was_training)
    return (probe.predict(out.cpu()) == labels).float().mean().item()


def time_to_forget(m, forget, retain, device: torch.device, check_every: int, max_steps: int | None, precision: str = "auto") -> dict:
    """Seconds (and steps) of the default unlearning run until forgetting holds (see module doc)."""
    probe = load_probe()
    k = TTF_EVAL_IMAGES
    xf, yf = forget.test[:k].to(device), forget.test_labels[:k]
    xr, yr = retain.test[:k].to(device), retain.test_labels[:k]
    train_with, measure_with = masks(m)
    mask = measure_with.build(k, m.image_size, grid=m.grid).to(device)
    original = m.to(device)
    with compute(precision, device):
        f0, r0 = _probe_acc(original, probe, xf, yf, mask), _probe_acc(original, probe, xr, yr, mask)
    state = {"paused": 0.0, "hit": None, "checks": []}
    start = time.perf_counter()

    def on_step(e) -> None:
        if e.step % check_every:
            return
        _sync(device)
        t = time.perf_counter()
        elapsed = t - start - state["paused"]  # unlearning time so far, earlier checks left out
        with compute(precision, device):
            f, r = _probe_acc(e.model, probe, xf, yf, mask), _probe_acc(e.model, probe, xr, yr, mask)
        state["checks"].append({"step": e.step, "forget": round(f, 3), "retain": round(r, 3)})
        state["paused"] += time.perf_counter() - t
        if state["hit"] is None and f < 0.5 * f0 and r >= r0 - 0.05:
            state["hit"] = {"steps": e.step, "seconds": round(elapsed, 2)}

    cfg = UnlearnConfig(steps=max_steps, precision=precision)
    unlearn(m, forget.train, retain.train, train_with, cfg, device, on_step, should_stop=lambda: state["hit"] is not None)
    hit = state["hit"] or {}
    return {
        "time_to_forget_s": hit.get("seconds"),
        "time_to_forget_steps": hit.get("steps"),
        "original": {"forget": round(f0, 3), "retain": round(r0, 3)},
        "checks": state["checks"],
    }


def bench(
    model: str = "mae",
    checkpoint: str | None = None,
    config: str | None = None,
    preset: str = "animals",
    size: int | None = None,
    channels: int | None = None,
    device: str = "auto",
    batch_size: int = 32,
    large_batch: int = 256,
    steps: int = 30,
    warmup: int = 5,
    ttf: bool = True,
    check_every: int = 50,
    max_steps: int | None = None,
    precision: str = "auto",
) -> dict:
    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    m, weights = build(model, checkpoint, config, preset, size, channels)
    labelled = weights["weights"] == "embedded" and m.image_size == 32 and m.channels == 1
    forget, retain = _sets(m, labelled)
    fx = forget.train if forget is not None else _images(m, 256, 0)
    rx = retain.train if retain is not None else _images(m, 256, 1)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    out = {
        "model": m.family,
        **weights,
        "image_size": m.image_size,
        "channels": m.channels,
        "parameters": sum(p.numel() for p in m.parameters()),
        "device": describe(dev),
        "precision": precision,
        "threads": torch.get_num_threads(),
        "batch": batch_size,
    }
    out["steps_per_s"] = round(step_rate(m, fx, rx, batch_size, steps, warmup, dev, precision), 3)
    out["images_per_s"] = round(2 * batch_size * out["steps_per_s"], 1)
    if large_batch:
        rate = step_rate(m, fx, rx, large_batch, max(3, steps // 4), 2, dev, precision)
        out |= {"large_batch": large_batch, "steps_per_s_large": round(rate, 3), "images_per_s_large": round(2 * large_batch * rate, 1)}
    with compute(precision, dev):
        out["ms_per_image"] = round(ms_per_image(m, fx[:16], dev), 2)
    out["sampling_steps"] = m.sampling_steps
    if ttf and labelled:
        out |= time_to_forget(m, forget, retain, dev, check_every, max_steps, precision)
    elif ttf:
        out["time_to_forget_s"] = None
        out["time_to_forget_note"] = "needs the probe's kind of images: an embedded model on the built-in sets"
    if dev.type == "cuda":
        out["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    else:
        out["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out
