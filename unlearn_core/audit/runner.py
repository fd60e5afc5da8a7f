"""Run the attacks asked for on a run folder, with progress and a stop; picture each result; add
the figures to the folder (metrics.json's "audit" and audit-<attack>.png)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from unlearn_core.audit import AUDITS
from unlearn_core.audit.common import AuditConfig, AuditEvent, Ticker
from unlearn_core.audit.folder import RunFolder, write_metrics
from unlearn_core.audit.inversion import inversion
from unlearn_core.audit.membership import membership
from unlearn_core.audit.relearn import relearning
from unlearn_core.audit.sweep import KIND_WORDS, mask_sweep
from unlearn_core.errors import UserInputError
from unlearn_core.measure.plots import PALETTE, Series, bars, scatter
from unlearn_core.measure.viz import side_by_side

ATTACKS = {"relearning": relearning, "membership": membership, "inversion": inversion, "mask_sweep": mask_sweep}


def parse_only(text: str | None) -> list[str]:
    """The attacks `--only` names (comma-separated), in the audit's order; all when None."""
    if text is None:
        return list(AUDITS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in AUDITS]
    if unknown or not names:
        raise UserInputError(f"unknown audit {unknown[0] if unknown else text!r}; choose from {', '.join(AUDITS)}")
    return [a for a in AUDITS if a in names]


def parts(run: RunFolder, cfg: AuditConfig, only: list[str]) -> int:
    """How many progress ticks the attacks in `only` give."""
    attacked = len(run.models()) - 1
    count = {
        "relearning": len(cfg.relearn_k) * attacked,
        "membership": len(run.models()),
        "inversion": len(run.models()),
        "mask_sweep": len(cfg.sweep_kinds) * len(cfg.sweep_fractions),
    }
    return sum(count[a] for a in only)


def run_audit(
    run: RunFolder,
    only: list[str] | None = None,
    cfg: AuditConfig = AuditConfig(),
    on_progress: Callable[[AuditEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """{attack: its figures and verdict, ..., "config", "seconds"} for the attacks in `only`
    (default all). Raises AuditStopped when `should_stop` says so (checked after every part)."""
    cfg.check()
    only = list(AUDITS) if only is None else only
    tick = Ticker(on_progress, should_stop, parts(run, cfg, only))
    result = {}
    for name in only:
        began = time.perf_counter()
        result[name] = ATTACKS[name](run, cfg, tick)
        result[name]["seconds"] = round(time.perf_counter() - began, 2)
    return result | {"config": asdict(cfg), "seconds": round(time.perf_counter() - tick.start, 2)}


def pictures(result: dict, reference_label: str | None = None) -> dict[str, Image.Image]:
    """attack -> its plot, for the attacks in `result`."""
    plots = {"relearning": relearning_plot, "membership": membership_plot, "inversion": inversion_plot, "mask_sweep": sweep_plot}
    # an inversion without models: the family offers none, nothing to picture
    shown = [a for a in plots if a in result and (a != "inversion" or result[a].get("models"))]
    return {a: plots[a](result[a], reference_label) for a in shown}


def _model_words(name: str, reference_label: str | None) -> str:
    return reference_label if name == "reference" and reference_label else name


def relearning_plot(r: dict, reference_label: str | None) -> Image.Image:
    series, i = [], 0
    for k, models in r["k"].items():
        for name, m in models.items():
            series.append(Series(f"{_model_words(name, reference_label)}, k={k}", [tuple(p) for p in m["curve"]], PALETTE[i], line=True))
            i += 1
    last = r["steps"]
    series.append(Series("original", [(0, r["original"]), (last, r["original"])], (120, 120, 120), radius=1, line=True))
    series.append(Series("half the original", [(0, r["target"]), (last, r["target"])], (190, 190, 190), radius=1, line=True))
    return scatter(
        series, "Relearning: forget score while fine-tuning on k forget images", "fine-tuning step", "forget probe acc",
        size=(560, 360), limits=(0, last, 0, 1),
    )  # fmt: skip


def membership_plot(r: dict, reference_label: str | None) -> Image.Image:
    groups = {_model_words(name, reference_label): aucs for name, aucs in r["models"].items()}
    title = f"Membership: ROC AUC ({r['members']} unlearned vs {r['non_members']} held-out images)"
    return bars(groups, title, reference=0.5, band=2 * r["noise"], size=(560, 60 + 26 * sum(len(g) + 1 for g in groups.values())))


def inversion_plot(r: dict, reference_label: str | None) -> Image.Image:
    models = {_model_words(name, reference_label): m for name, m in r["models"].items()}
    probe = {name: {"before steering": m["start"]["probe_acc"], "steered decoder": m["end"]["probe_acc"]} for name, m in models.items()}
    top = max(m[w]["psnr"] for m in models.values() for w in ("start", "end")) * 1.15
    psnr = {name: {"before steering": m["start"]["psnr"], "steered decoder": m["end"]["psnr"]} for name, m in models.items()}
    height = 60 + 26 * 3 * len(models)
    return side_by_side([
        bars(probe, f"Decoder inversion: forget probe acc ({r['steps']} steps)", size=(440, height)),
        bars(psnr, "PSNR in the hidden region (dB)", limits=(0.0, top), size=(440, height)),
    ], gap=0)  # fmt: skip


def sweep_plot(r: dict, reference_label: str | None) -> Image.Image:
    panels = []
    for kind, rows in r["kinds"].items():
        series, i = [], 0
        for name in (n for n in rows if n != "hidden"):
            for which in ("forget", "retain"):
                if name == "reference" and which == "retain":
                    continue
                points = list(zip(rows["hidden"], rows[name][which], strict=True))
                series.append(Series(f"{_model_words(name, reference_label)}, {which}", points, PALETTE[i], line=True))
                i += 1
        panels.append(scatter(series, f"Mask sweep: {KIND_WORDS[kind]}", "share hidden", "probe acc", size=(420, 320), limits=(0, 1, 0, 1)))
    return side_by_side(panels, gap=0)


def write_audit(run: RunFolder, result: dict) -> list[Path]:
    """Add `result` to the run's metrics.json (its "audit", the attacks already there kept unless
    run again) and write audit-<attack>.png beside it; returns the pictures' paths."""
    d = run.path
    metrics = json.loads((d / "metrics.json").read_text())
    metrics["audit"] = {**metrics.get("audit", {}), **result}  # "config": the latest audit's; each attack keeps its "seconds"
    drawn = pictures(result, run.reference_label)
    partial = {name: d / f".audit-{name}.png.partial" for name in drawn}
    for name, picture in drawn.items():  # every picture drawn before any replaces an old one
        picture.save(partial[name], format="PNG")
    write_metrics(d, metrics)
    return [partial[name].replace(d / f"audit-{name}.png") for name in drawn]
