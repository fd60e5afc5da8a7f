"""A run folder, as `unlearn --out` (or the app's download) wrote it, loaded for an audit: the
unlearned model, the original it started from, the never-saw-the-class model where the family has
one, both image sets and the run's mask and seed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from unlearn_core.compute.device import resolve_device
from unlearn_core.compute.precision import resolve_precision
from unlearn_core.data.masks import MaskSpec, parse_mask
from unlearn_core.data.sets import ImageSet, load_image_set
from unlearn_core.errors import UserInputError
from unlearn_core.models.checkpoints import cached_model, find_base_model, reference_for, resolve, weights_sha256
from unlearn_core.run.pipeline import evaluation_mask, on_device

NEEDED = ("model", "method", "mask", "seed", "steps", "base_model", "forget_set", "retain_set", "original", "unlearned")


@dataclass
class RunFolder:
    path: Path
    metrics: dict
    family: str
    original: torch.nn.Module
    unlearned: torch.nn.Module
    forget: ImageSet
    retain: ImageSet
    mask: MaskSpec
    seed: int
    device: torch.device
    precision: str
    sampling_steps: int | None = None
    reference: torch.nn.Module | None = None
    reference_label: str | None = None  # "never saw cats"

    def __post_init__(self):
        # every attack measures on held-out forget images, and membership needs them apart from
        # the images unlearned on: a set too small to hold images out (`ImageSet.held_out`) has
        # its test images equal to its training images
        if not self.forget.held_out:
            raise UserInputError(
                f"the forget set ({self.forget.name}) is too small to hold images out, and every audit needs held-out images"
            )

    def models(self) -> dict[str, torch.nn.Module]:
        """The models an attack compares: original, unlearned and (where there is one) reference."""
        found = {"original": self.original, "unlearned": self.unlearned}
        return found | ({"reference": self.reference} if self.reference is not None else {})


def read_metrics(path: str | Path) -> dict:
    """The run's metrics.json, or a UserInputError saying why `path` is not a run folder."""
    d = Path(path)
    if not d.is_dir():
        raise UserInputError(f"{d}: no such folder (give the folder `unlearn --out` wrote)")
    f = d / "metrics.json"
    if not f.is_file():
        raise UserInputError(f"{d.name} is not a run folder: it has no metrics.json (a run folder holds model/ and metrics.json)")
    try:
        metrics = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserInputError(f"{d.name}/metrics.json is damaged: {e}") from None
    missing = [k for k in NEEDED if not isinstance(metrics, dict) or k not in metrics]
    if missing:
        raise UserInputError(f"{d.name}/metrics.json is not a run's: it lacks {', '.join(missing)}")
    if not (d / "model").is_dir():
        raise UserInputError(f"{d.name} has no model/ folder: the unlearned model is missing")
    return metrics


def write_metrics(path: str | Path, metrics: dict) -> None:
    """Write a run folder's metrics.json again (an audit added to it), whole or not at all."""
    d = Path(path)
    tmp = d / ".metrics.json.partial"
    tmp.write_text(json.dumps(metrics, indent=2))
    tmp.replace(d / "metrics.json")


def _image_set(recorded: dict, given, which: str, size: int, channels: int) -> ImageSet:
    """The set the run used: `given` (a source) or the recorded built-in one; its images must be
    the run's (same hash)."""
    source = given if given is not None else recorded.get("source", "")
    if given is None and not str(source).startswith("builtin:"):
        raise UserInputError(
            f"the run's {which} set ({source or 'uploaded images'}) is not built in and the run folder does not keep its images: "
            f"give it with --{which} FOLDER"
        )
    s = load_image_set(source, size, channels)
    if recorded.get("sha256") and s.sha256 != recorded["sha256"]:
        raise UserInputError(f"the {which} set given ({s.name}) holds other images than the run's {which} set ({recorded.get('name')})")
    return s


def open_run(
    path: str | Path, device: str = "auto", forget=None, retain=None, precision: str = "auto", original: str | Path | None = None
) -> RunFolder:
    """Load a run folder for an audit; `forget` / `retain`: the sets when the run's were not built
    in; `original`: the folder of the model the run started from, when it was not an embedded one."""
    d = Path(path)
    m = read_metrics(d)
    family = m["model"]
    dev = resolve_device(device)
    unlearned = cached_model(family, d / "model")
    base = find_base_model(m["base_model"]) if original is None else Path(original)
    recorded = m["base_model"] if isinstance(m["base_model"], dict) else {"name": str(m["base_model"])}
    if base is None:
        raise UserInputError(
            f"the run's original model ({recorded.get('name')}) is not an embedded one: give its folder with --original (the audit compares with it)"
        )
    if original is not None and recorded.get("sha256") and weights_sha256(resolve(family, base)) != recorded["sha256"]:
        raise UserInputError(f"{Path(original).name} holds other weights than the run's original model ({recorded.get('name')})")
    original = cached_model(family, base)
    mask = parse_mask(m["mask"])
    if mask.kind == "image":
        raise UserInputError(f"the run's mask ({m['mask']}) was a drawn image, which the run folder does not keep")
    forget_set = _image_set(m["forget_set"], forget, "forget", unlearned.image_size, unlearned.channels)
    retain_set = _image_set(m["retain_set"], retain, "retain", unlearned.image_size, unlearned.channels)
    if len(unlearned.state_dict()) != len(original.state_dict()):
        raise UserInputError(f"{d.name}/model does not have the architecture of its original ({recorded.get('name')})")
    run = RunFolder(
        d, m, family, on_device(original, dev), on_device(unlearned, dev), forget_set, retain_set, evaluation_mask(mask),
        int(m["seed"]), dev, resolve_precision(precision, dev), m.get("sampling_steps"),
    )  # fmt: skip
    # The reference stands beside an embedded original only (as in a run, `pipeline.prepare`).
    ref = reference_for(family, m["forget_set"].get("source"))
    if ref is not None and base.resolve() == resolve(family).resolve():
        run.reference, run.reference_label = on_device(cached_model(family, ref.path), dev), ref.label
    return run


def from_prepared(p, model: torch.nn.Module, metrics: dict, path: str | Path | None = None) -> RunFolder:
    """A run still in memory as the audit's subject: its `pipeline.Prepared` (sets, uploaded or
    not, original, reference, mask) and the unlearned `model`; `path`: where its files are."""
    label = None if p.reference_info is None else p.reference_info["label"]
    return RunFolder(
        Path(path or "."), metrics, p.original.family, p.original, model, p.forget, p.retain, p.mask, int(p.config.seed),
        p.device, p.precision, p.sampling_steps, p.reference, label,
    )  # fmt: skip


def from_output(out, path: str | Path) -> RunFolder:
    """A finished run still in memory (`pipeline.RunOutput`, as the app holds it)."""
    return from_prepared(out.prepared, out.result.model, out.metrics, path)
