"""One unlearning run from start to files: load, unlearn, measure, picture, save.

The CLI and the web app both call `run`; `write_outputs` lays the results out as the CLI's
contract says (model/, metrics.json, losses.csv, compare.png).
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image

from .checkpoints import cached_model, find_base_model, load_probe, metadata, model_identity, read_metadata, resolve
from .data import ImageSet, load_image_set
from .device import resolve_device
from .engine import StepEvent, UnlearnConfig, UnlearnResult, unlearn
from .errors import UserInputError
from .masks import RANDOM, MaskSpec, parse_mask
from .metrics import evaluate
from .viz import comparison_grid


@dataclass(frozen=True)
class RunSpec:
    model: str = "mae"
    checkpoint: str | None = None  # None: the embedded model of `model`
    forget: str | list = "builtin:cat"
    retain: str | list = "builtin:dog"
    mask: str | MaskSpec = "outpaint50"  # the transform T the results are measured with
    config: UnlearnConfig = field(default_factory=UnlearnConfig)
    # What unlearning trains with: a mask, or "random" (a fresh mask every step). None: the model
    # family's default (`unlearn_defaults["train_mask"]`), else `mask` itself.
    train_mask: str | MaskSpec | None = None
    # Sampling steps of iterative families (MaskGIT rounds, DDIM steps) for the metrics and
    # pictures; None: the model's default (`sampling_steps`).
    sampling_steps: int | None = None
    device: str = "auto"
    compare_per_set: int = 6


@dataclass
class Prepared:
    original: torch.nn.Module
    forget: ImageSet
    retain: ImageSet
    mask: MaskSpec
    device: torch.device
    base_model: dict  # {"name", "sha256"}: recorded instead of a server path
    config: UnlearnConfig  # the spec's, with the model family's defaults filled in
    train_mask: MaskSpec  # likewise
    sampling_steps: int | None = None  # the spec's; None where the family has no sampler steps


@dataclass
class RunOutput:
    prepared: Prepared
    result: UnlearnResult
    metrics: dict
    compare: Image.Image


def _on_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The cached model is shared and lives on the CPU; other devices get their own copy."""
    return model if device.type == "cpu" else copy.deepcopy(model).to(device)


def _source_label(source) -> str:
    """What a run records about where a set came from: a built-in name, or a folder's or file's
    name (never the server path to it)."""
    if isinstance(source, (list, tuple)):
        return f"{len(source)} uploaded files"
    return source if str(source).startswith("builtin:") else Path(source).name


def _mask_words(mask: MaskSpec) -> str:
    return "a fresh random mask every step" if mask.kind == "random" else f"the {mask.name} mask"


def _grid_title(kind: str, s: ImageSet) -> str:
    return f"{kind} set: {s.name}" + ("" if s.held_out else " (its own images)")


def prepare(spec: RunSpec) -> Prepared:
    """Load everything a run needs; raises UserInputError on bad sets, masks or settings."""
    spec.config.validate()
    device = resolve_device(spec.device)
    mask = evaluation_mask(spec.mask)
    original = _on_device(cached_model(spec.model, spec.checkpoint), device)
    forget = load_image_set(spec.forget, original.image_size, original.channels)
    retain = load_image_set(spec.retain, original.image_size, original.channels)
    train_mask = parse_mask(spec.train_mask or getattr(original, "unlearn_defaults", {}).get("train_mask") or mask)
    identity = model_identity(spec.model, spec.checkpoint)
    steps = sampling_steps(original, spec.sampling_steps)
    return Prepared(original, forget, retain, mask, device, identity, spec.config.for_model(original), train_mask, steps)


def evaluation_mask(spec: str | MaskSpec) -> MaskSpec:
    """The mask results are measured with: a preset or a mask image (`random` only trains)."""
    mask = parse_mask(spec)
    if mask.kind == RANDOM:
        raise UserInputError(f"{RANDOM} is a training mask (--train-mask); measure with a preset or a mask image")
    return mask


def sampling_steps(model, requested: int | None) -> int | None:
    """The sampling steps a run uses: `requested`, checked against the model, or the model's
    default; None for one-pass families (which refuse a request)."""
    default = getattr(model, "sampling_steps", None)
    if requested is None:
        return default
    if default is None:
        raise UserInputError(f"the {model.family} family generates in one pass; sampling steps do not apply")
    top = model.max_sampling_steps
    if isinstance(requested, bool) or not isinstance(requested, int) or not 1 <= requested <= top:
        raise UserInputError(f"sampling steps must be a whole number from 1 to {top} for this model, got {requested!r}")
    return requested


def evaluate_pair(p: Prepared, model: torch.nn.Module, seed: int) -> dict:
    return evaluate(model, p.original, p.forget, p.retain, p.mask, _probe_or_none(), seed=seed, steps=p.sampling_steps)


def _probe_or_none():
    try:
        return load_probe()
    except UserInputError:
        return None


def run(
    spec: RunSpec,
    on_step: Callable[[StepEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    prepared: Prepared | None = None,
) -> RunOutput:
    p = prepared or prepare(spec)
    cfg = p.config
    result = unlearn(p.original, p.forget.train, p.retain.train, p.train_mask, cfg, p.device, on_step, should_stop)
    original_metrics = evaluate_pair(p, p.original, cfg.seed)
    unlearned_metrics = evaluate_pair(p, result.model, cfg.seed)
    k = spec.compare_per_set
    sets = [(_grid_title(kind, s), s.test[:k]) for kind, s in (("forget", p.forget), ("retain", p.retain))]
    compare = comparison_grid(p.original, result.model, sets, p.mask, seed=cfg.seed, steps=p.sampling_steps)
    notes = [
        f"{s.name}: too few images to hold any out; evaluated on the unlearned images themselves"
        for s in (p.forget, p.retain)
        if not s.held_out
    ]
    if p.train_mask.name != p.mask.name:
        notes.append(f"unlearned with {_mask_words(p.train_mask)}, measured with {p.mask.name}")
    if result.stopped:
        notes.append(f"stopped by the user after {result.steps_done} of {cfg.steps} steps")
    metrics = {
        "model": spec.model,
        "method": cfg.method,
        "mask": p.mask.name,
        "train_mask": p.train_mask.name,
        "sampling_steps": p.sampling_steps,
        "steps": result.steps_done,
        "seconds": round(result.seconds, 2),
        "original": original_metrics,
        "unlearned": unlearned_metrics,
        "alpha": cfg.resolved_alpha(),
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "steps_requested": cfg.steps,
        "stopped": result.stopped,
        "device": str(p.device),
        "base_model": p.base_model,
        "forget_set": p.forget.summary() | {"source": _source_label(spec.forget)},
        "retain_set": p.retain.summary() | {"source": _source_label(spec.retain)},
        "notes": notes,
    }
    return RunOutput(p, result, metrics, compare)


def model_metadata(out: RunOutput) -> dict:
    m = out.metrics
    return metadata(
        base_model=m["base_model"],
        method=m["method"],
        mask=m["mask"],
        train_mask=m["train_mask"],
        forget_sha256=out.prepared.forget.sha256,
        forget_set=m["forget_set"],
        retain_set=m["retain_set"],
        settings=asdict(out.result.config) | {"alpha": m["alpha"], "steps_done": m["steps"], "stopped": m["stopped"]},
    )


def write_outputs(out: RunOutput, directory: str | Path) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out.result.model.save(d / "model", model_metadata(out))
    (d / "metrics.json").write_text(json.dumps(out.metrics, indent=2))
    with open(d / "losses.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["step", "retain", "forget", "total"])
        w.writeheader()
        w.writerows(out.result.history)
    out.compare.save(d / "compare.png")
    return d


def evaluate_checkpoint(
    model: str,
    checkpoint: str | None,
    forget,
    retain,
    mask: str | MaskSpec,
    device: str = "auto",
    seed: int = 0,
    sampling: int | None = None,
) -> dict:
    """M on both sets for one model. noise_cos uses the model's base (original) encoder when
    the checkpoint's metadata names an embedded model with the same weights, else the model's own."""
    dev = resolve_device(device)
    target = _on_device(cached_model(model, checkpoint), dev)
    base_path = find_base_model(read_metadata(resolve(model, checkpoint)).get("base_model"))
    original = _on_device(cached_model(model, base_path), dev) if base_path else target
    spec_mask = evaluation_mask(mask)
    f = load_image_set(forget, target.image_size, target.channels)
    r = load_image_set(retain, target.image_size, target.channels)
    identity = model_identity(model, base_path or checkpoint)
    steps = sampling_steps(target, sampling)
    p = Prepared(original, f, r, spec_mask, dev, identity, UnlearnConfig().for_model(target), spec_mask, steps)
    return {
        "model": model,
        "checkpoint": str(resolve(model, checkpoint)),
        "mask": spec_mask.name,
        "sampling_steps": steps,
        "noise_cos_encoder": p.base_model["name"],  # the original encoder noise_cos compares against
        **evaluate_pair(p, target, seed),
    }
