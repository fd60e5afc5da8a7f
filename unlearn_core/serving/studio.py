"""Services for the web app, in plain Python (no gradio here): choices and defaults, set and mask
previews, starting a live run, exports, and running both models on a user's image.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unlearn_core.compute.device import describe, resolve_device
from unlearn_core.compute.precision import describe_precision, resolve_precision
from unlearn_core.data.masks import DESCRIPTIONS, PRESET_MIX, PRESETS, RANDOM, TRAINING_ONLY, MaskSpec, mask_from_image, parse_mask
from unlearn_core.data.sets import HF_PREFIX, builtin_names, load_image_set, pil_to_tensor
from unlearn_core.errors import UserInputError
from unlearn_core.measure.viz import COLUMNS, comparison_grid, generate_on, overlay, thumbnails
from unlearn_core.methods import get_method, methods
from unlearn_core.models import family_of, get_family
from unlearn_core.models.checkpoints import available_models, cached_model, is_hub_id
from unlearn_core.run.engine import UnlearnConfig, default_alpha, default_train_mask
from unlearn_core.run.live import LiveRun, LiveUpdate
from unlearn_core.run.pipeline import MeasureEvent, RunOutput, RunSpec, portable, run
from unlearn_core.serving.access import HF_SETS_ENV, allowed_hf_sets, check_server_path, hub_model_allowed
from unlearn_core.serving.report import (  # noqa: F401 (re-exported for the app)
    MASK_HEADERS,
    SERIES_COLOURS,
    export_model_zip,
    export_report,
    forgetting_verdict,
    mask_rows,
    metrics_rows,
    reference_line,
)

GALLERY_SIZE = 16
# The settings that fill the fields following the model family (`registry.RECIPES`)
RECIPE_CHOICES = [("tuned for this demo", "demo"), ("the official code's, scaled to our data", "official")]
RECIPE_LABEL = "Settings (fill the fields below; you can still change each)"
BRUSH_COLOUR = "#ff3fb4"  # the mask editor's paint: pink shows on the white silhouettes and the black ground
LOSS_COLOURS = {name: "#{:02x}{:02x}{:02x}".format(*rgb) for name, rgb in SERIES_COLOURS.items()}


@dataclass(frozen=True)
class FieldDefaults:
    """What the fields that follow the model family show for one family, and so what a run with
    it uses where the user changes nothing."""

    mask: str  # the mask results are measured with
    train_mask: str  # SAME_MASK: unlearn with the evaluation mask
    steps: int
    lr: float
    alpha: float  # the method's forget-term weight on this family
    sampling_steps: int | None  # the sampler's default steps; None: it generates in one pass
    max_sampling_steps: int | None


def ui_defaults(family: str, checkpoint: str | None = None, method: str = "ours", recipe: str = "demo") -> FieldDefaults:
    """The one place the app reads a model family's defaults: the page's opening values, the
    fields that follow the model and the `/unlearn` API's unset steps and learning rate all come
    here. The family's training mask (or `method`'s own), steps, learning rate and `method`'s
    forget-term weight (`Family.defaults`, or with `recipe` "official" `Family.official`), and the
    sampler's steps of the model `checkpoint` holds."""
    m = cached_model(family, checkpoint)
    d = family_of(m).recipe(recipe)
    return FieldDefaults(
        mask=d.mask,
        train_mask=default_train_mask(method, m, recipe) or SAME_MASK,
        steps=d.steps,
        lr=d.lr,
        alpha=default_alpha(method, m, recipe),
        sampling_steps=m.sampling_steps,
        max_sampling_steps=m.max_sampling_steps,
    )


def device_name() -> str:
    """'CPU (2 threads), bfloat16': where runs go and what they compute in (precision.py)."""
    device = resolve_device("auto")
    return f"{describe(device)}, {describe_precision(resolve_precision('auto', device))}"


def builtin_sets() -> list[str]:
    """The sets the app offers: the built-in silhouettes, then the Hugging Face sets its operator
    named in UNLEARN_HF_SETS (e.g. real cat and dog photos on a Space)."""
    return builtin_names() + allowed_hf_sets()


def model_choices() -> list[tuple[str, str]]:
    return [(f"{get_family(f).label} [{f}]", f) for f in available_models()]


def method_choices() -> list[tuple[str, str]]:
    return [(m.title, name) for name, m in methods().items()]


SHORT_MASK_NAMES = {
    "center25": "hole, 1/4 side",
    "center50": "hole, 1/2 side",
    "outpaint25": "outpaint, 1/4 visible",
    "outpaint50": "outpaint, 1/2 visible",
    "patches75": "random patches, 75%",
}


def mask_choices() -> list[tuple[str, str]]:
    """Short labels that fit a narrow dropdown; the full description shows under the preview."""
    return [(f"{name} · {SHORT_MASK_NAMES.get(name, '')}", name) for name in PRESETS]


SAME_MASK = "same"  # training-mask choice: unlearn with the mask the results are measured with


def train_mask_choices() -> list[tuple[str, str]]:
    """What unlearning may train with: the evaluation mask, a fresh random mask every step, or a preset."""
    return [
        ("the mask above", SAME_MASK),
        ("random: a fresh mask every step", RANDOM),
        ("presets: a different preset every step", PRESET_MIX),
    ] + mask_choices()


def mask_description(choice: str) -> str:
    return DESCRIPTIONS.get(choice, "your drawn mask, rounded to the model's patches")


def set_preview(source, model: str, checkpoint: str | None) -> tuple[Image.Image, str]:
    """A picture of the set's first images and a one-line summary, at the model's resolution."""
    m = cached_model(model, checkpoint)
    s = load_image_set(source, m.image_size, m.channels)
    held = f"{len(s.test)} held out for evaluation" if s.held_out else "too few to hold any out: evaluation uses the same images"
    noun = "image" if len(s.train) == 1 else "images"
    return thumbnails(s.train[:GALLERY_SIZE]), f"**{len(s.train)}** {noun} to unlearn on, {held}."


def _sample(size: int = 32, channels: int = 1) -> torch.Tensor:
    """The image masks are shown on: the first held-out cat, (C, size, size)."""
    return load_image_set("builtin:cat", size, channels).test[0]


def editor_background(size: int = 256) -> np.ndarray:
    """A sample image to paint a mask over, (size, size, 4) RGBA uint8."""
    im = Image.fromarray((_sample()[0].numpy() * 255).astype(np.uint8)).convert("RGBA")
    return np.asarray(im.resize((size, size), Image.Resampling.NEAREST))


def _editor_strokes(value) -> np.ndarray | None:
    """(H, W) bool of painted pixels in a gr.ImageEditor value, or None when nothing is painted."""
    if not isinstance(value, dict):
        return None
    for layer in value.get("layers") or []:
        arr = np.asarray(layer)
        if arr.ndim == 3 and arr.shape[-1] == 4 and (arr[..., 3] > 127).any():
            return arr[..., 3] > 127
    background, comp = value.get("background"), value.get("composite")
    if background is None or comp is None:
        return None
    diff = np.abs(np.asarray(comp, np.int16)[..., :3] - np.asarray(background, np.int16)[..., :3]).max(-1) > 30
    return diff if diff.any() else None


def editor_has_strokes(value) -> bool:
    return _editor_strokes(value) is not None


def mask_from_editor(value) -> MaskSpec:
    strokes = _editor_strokes(value)
    if strokes is None:
        raise UserInputError("the drawn mask is empty: paint the region to generate first")
    return mask_from_image(Image.fromarray(strokes.astype(np.uint8) * 255), name="drawn")


def mask_preview(mask: str | MaskSpec, model: str, checkpoint: str | None, seed: int = 0) -> Image.Image:
    """The mask on a sample image, as the model rounds it and with the run's seed (random patches)."""
    m = cached_model(model, checkpoint)
    x = _sample(m.image_size, m.channels)
    hidden = generate_on(m, x[None], parse_mask(mask), seed=seed)[1].mask[0]
    return overlay(x, hidden, scale=max(1, 192 // m.image_size))


def server_checkpoint(text: str | None, allowed: Iterable[str | Path] = ()) -> str | None:
    """The model-source field of the app: empty means the embedded model; a folder must lie in the
    allowed folders, a Hub id must be one the operator allowed (see `access`)."""
    text = (text or "").strip()
    if not text:
        return None
    if is_hub_id(text) and hub_model_allowed(text):
        return text
    return str(check_server_path(text, allowed))


def server_source(source, allowed: Iterable[str | Path] = ()):
    """A set named through the API: a built-in name, or a folder or file in the allowed folders."""
    if isinstance(source, str) and source.startswith(HF_PREFIX):
        if source not in allowed_hf_sets():
            raise UserInputError(f"{source}: this app offers only the Hugging Face sets its operator named ({HF_SETS_ENV})")
        return source
    if isinstance(source, str) and not source.startswith("builtin:"):
        return str(check_server_path(source, allowed))
    return source


def server_mask(mask, allowed: Iterable[str | Path] = ()):
    """A mask named through the API: a preset, or a mask image in the allowed folders."""
    if isinstance(mask, str) and mask not in PRESETS:
        if mask in TRAINING_ONLY:
            return mask  # the run then says it is a training mask
        if "/" not in mask and "." not in mask:  # a name, not a path: say which names there are,
            raise UserInputError(  # without looking at the server's files
                f"unknown mask {mask!r}; choose from {', '.join(PRESETS)} or give a mask image in an allowed folder"
            )
        return str(check_server_path(mask, allowed))
    return mask


def _number(value, name: str, kind: type):
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserInputError(f"{name} is empty: enter a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a number, got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise UserInputError(f"{name} must be a whole number, got {value!r}")
        return int(number)
    return number


def make_spec(
    forget, retain, model: str, checkpoint: str | None, mask, method: str, alpha, steps, lr, seed, sampling_steps=None, train_mask=None,
    image_metrics=False, eval_masks=None,
) -> RunSpec:  # fmt: skip
    """A RunSpec from UI values (numbers may arrive as floats, strings or None); exactly the
    values shown are used: an empty alpha means the method's default, empty sampling steps the
    model's, an empty training mask the model's, SAME_MASK the evaluation mask itself.
    `image_metrics`: FID and embed_cos too (slow on a CPU: docs/app.md, 'Using it'); `eval_masks`:
    the masks of the per-mask table (None: every preset)."""
    get_method(method)
    cfg = UnlearnConfig(
        method=method,
        alpha=None if alpha is None or (isinstance(alpha, str) and not alpha.strip()) else _number(alpha, "alpha", float),
        steps=_number(steps, "steps", int),
        lr=_number(lr, "learning rate", float),
        seed=_number(seed, "seed", int),
    )
    cfg.validate()
    sampling = None
    if sampling_steps is not None and not (isinstance(sampling_steps, str) and not sampling_steps.strip()):
        sampling = _number(sampling_steps, "sampling steps", int)
    if train_mask == SAME_MASK:
        train_mask = mask
    elif train_mask is not None and train_mask not in TRAINING_ONLY and train_mask not in PRESETS:
        raise UserInputError(
            f"unknown training mask {train_mask!r}; choose {SAME_MASK}, {', '.join(TRAINING_ONLY)} or one of {', '.join(PRESETS)}"
        )
    return RunSpec(
        model=model,
        checkpoint=checkpoint,
        forget=forget,
        retain=retain,
        mask=mask,
        config=cfg,
        sampling_steps=sampling,
        train_mask=train_mask or None,
        image_metrics=bool(image_metrics),
        eval_masks=eval_masks,
    )


def stream(spec: RunSpec, stop_file: str | Path | None = None, interval: float = 1.0) -> Iterator[LiveUpdate]:
    """A run from start to end as `LiveUpdate`s in plain, picklable data (a ZeroGPU worker sends
    them to the page's process): first the original model's preview at step 0, then the run's
    updates at most one per `interval` seconds; the finished output's models come on the CPU.
    Refused input comes as a single update with `refused` set. The run stops when `stop_file`
    appears (see `LiveRun`)."""
    try:
        live = LiveRun(spec, stop_file=stop_file)
    except UserInputError as e:
        yield LiveUpdate(error=str(e), refused=True)
        return
    yield LiveUpdate(total_steps=live.total_steps, preview=live.original_preview())
    for update in live.updates(interval=interval):
        if update.output is not None:  # the headline's models go on measuring: they are copied, not moved
            update.output = portable(update.output, keep=update.headline)
        yield update


def run_to_end(spec: RunSpec, extras: bool = True) -> RunOutput:
    """A run without live updates (the `/unlearn` API); without `extras`, the headline results only."""
    return run(spec, extras=extras)


def progress_text(step: int, total: int, seconds: float, measuring: MeasureEvent | None = None) -> str:
    """The status line while a run works: its step, share done and time left (from the pace so
    far), then measuring's share done and time left after the last step."""
    if measuring is not None:
        return measuring_text(measuring)
    if step <= 0:
        return "Starting..."
    if step >= total:
        return f"Step {step} / {total}: measuring both models on the held-out images..."
    text = f"Step {step} / {total} ({100 * step // total}%)"
    if seconds >= 2 and step >= total / 20:  # the pace is known well enough to say
        left = seconds * (total - step) / step
        text += f", about {_duration(left)} left"
    return text


EXTRAS = "Per-mask table and embedding view"  # what follows the headline results
EXTRAS_FOLLOW = f"{EXTRAS}: measuring next..."  # under the headline results until they start


def extras_text(e: MeasureEvent) -> str:
    """'Per-mask table and embedding view: measuring, 40%, about 30 s left (just measured: ...).',
    under the headline results while the rest is measured."""
    return _share_done(f"{EXTRAS}: measuring, ", e)


def measuring_text(e: MeasureEvent) -> str:
    """'Unlearning done. Measuring both models on the held-out images: 40%, about 30 s left (just
    measured: ...)'."""
    return _share_done("Unlearning done. Measuring both models on the held-out images: ", e)


def _share_done(lead: str, e: MeasureEvent) -> str:
    share = min(1.0, e.done / e.total) if e.total else 1.0
    text = f"{lead}{round(100 * share)}%"
    if 0 < share < 1 and e.seconds >= 1:
        text += f", about {_duration(e.seconds * (1 - share) / share)} left"
    return f"{text} (just measured: {e.what})."


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def loss_long_rows(rows: list[dict], max_points: int = 200) -> list[tuple[int, float, str]]:
    """(step, loss, term) rows for a line plot, thinned to about `max_points` steps."""
    stride = max(1, len(rows) // max_points)
    kept = rows[::stride] + ([rows[-1]] if rows and (len(rows) - 1) % stride else [])
    return [(r["step"], r[k], k) for r in kept for k in ("retain", "forget", "total")]


def summary(out: RunOutput, waited: float | None = None) -> str:
    """The status line after a run: the time it took (`waited`: seconds since the user pressed
    Unlearn, queue and loading included), whether forgetting happened under which masks, the change
    in PSNR, notes."""
    m = out.metrics
    f0, f1 = m["original"]["forget"], m["unlearned"]["forget"]
    r0, r1 = m["original"]["retain"], m["unlearned"]["retain"]
    if m["stopped"]:
        head = (
            f"Stopped at step {m['steps']} of {m['steps_requested']}. The results and downloads below are for a "
            f"partly unlearned model ({m['steps']} steps); the original model is untouched."
        )
    else:
        head = f"Done: {m['steps']} steps."
    head += " " + time_split(m, waited)
    lines = [head, forgetting_verdict(m, sep="\n\n")]
    lines += [line for line in (reference_line(m),) if line]
    lines.append(
        f"PSNR against the true image in the generated region: forget {f0['psnr_masked']:.2f} → {f1['psnr_masked']:.2f} dB "
        f"(change {f1['psnr_masked'] - f0['psnr_masked']:+.2f} dB); retain {r0['psnr_masked']:.2f} → {r1['psnr_masked']:.2f} dB "
        f"(change {r1['psnr_masked'] - r0['psnr_masked']:+.2f} dB)."
    )
    lines.extend(f"Note: {n}" for n in m["notes"] if "stopped by the user" not in n)
    return "\n\n".join(lines)  # one paragraph each on the page


def time_split(metrics: dict, waited: float | None = None) -> str:
    """'You waited 221 s: 145 s unlearning, 70 s measuring, 6 s loading, queueing and showing.'"""
    unlearning, measuring = metrics["seconds"], metrics.get("measure_seconds", 0.0)
    if waited is None:
        return f"{unlearning:.0f} s unlearning, {measuring:.0f} s measuring."
    rest = max(0.0, waited - unlearning - measuring)
    return f"You waited {waited:.0f} s: {unlearning:.0f} s unlearning, {measuring:.0f} s measuring, {rest:.0f} s loading, queueing and showing."


def export(out: RunOutput, directory: str | Path) -> dict[str, Path]:
    d = Path(directory)
    return {"model": export_model_zip(out, d), "report": export_report(out, d)}


def try_image(out: RunOutput, image: Image.Image, mask: str | MaskSpec) -> Image.Image:
    """A user's image through both models: masked input | original | unlearned | the image."""
    original = out.prepared.original
    x = pil_to_tensor(image, original.image_size, original.channels)[None]
    columns = (*COLUMNS[:-1], "your image")
    ref = out.prepared.reference
    with out.prepared.computing():
        return comparison_grid(
            original,
            out.result.model,
            [("", x)],
            parse_mask(mask),
            seed=out.result.config.seed,
            columns=columns,
            steps=out.prepared.sampling_steps,
            reference=None if ref is None else (out.prepared.reference_info["label"], ref),
        )
