"""Two runs side by side: their settings, their figures and the differences (audits included),
and, for runs of one model family, both unlearned models' outputs on the same held-out images,
mask and seed. The command line's `compare` and the app's Runs tab show it."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from unlearn_core.audit.folder import open_run, read_metrics
from unlearn_core.compute.precision import compute
from unlearn_core.errors import UserInputError
from unlearn_core.measure.viz import compare_models, png_data_uri
from unlearn_core.models.checkpoints import cached_model
from unlearn_core.run.pipeline import on_device

SETTINGS = ("model", "method", "recipe", "mask", "train_mask", "alpha", "steps", "lr", "batch_size", "seed", "precision", "seconds")
METRICS = ("probe_acc", "probe_agree", "psnr_masked", "noise_cos", "fid", "embed_cos")
COLUMNS = ("masked input", "run A", "run B", "A vs B", "ground truth")


@dataclass
class Comparison:
    names: tuple[str, str]
    settings: list[list]  # [setting, A, B]
    figures: list[list]  # [figure, A, B, B - A]
    picture: Image.Image | None  # both unlearned models on the same images (one family only)
    note: str = ""  # why there is no picture, or what it shows


def run_row(metrics: dict) -> dict:
    """One line of a run history: what ran and what it gave under its own mask."""
    u, o = metrics["unlearned"], metrics["original"]
    return {
        "family": metrics["model"],
        "method": metrics["method"],
        "mask": metrics["mask"],
        "alpha": metrics.get("alpha"),
        "steps": metrics["steps"],
        "seconds": metrics.get("seconds"),
        "forget": f"{_v(o['forget'].get('probe_acc'))} -> {_v(u['forget'].get('probe_acc'))}",
        "retain": f"{_v(o['retain'].get('probe_acc'))} -> {_v(u['retain'].get('probe_acc'))}",
        "audited": ", ".join(k for k in metrics.get("audit", {}) if k not in ("config", "seconds")) or "-",
    }


def _v(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _get(m: dict, dotted: str):
    for part in dotted.split("."):
        m = m.get(part) if isinstance(m, dict) else None
    return m


def settings_rows(a: dict, b: dict) -> list[list]:
    keys = (*SETTINGS, "base_model.name", "forget_set.source", "retain_set.source", "command")
    return [[k, _get(a, k), _get(b, k)] for k in keys if _get(a, k) is not None or _get(b, k) is not None]


def audit_figures(m: dict) -> dict[str, float | None]:
    """The audit's headline figures of a run's unlearned model (none where it was not audited)."""
    au, out = m.get("audit", {}), {}
    for k, models in au.get("relearning", {}).get("k", {}).items():
        out[f"relearning: steps to half the original's score, k={k}"] = models["unlearned"]["steps_to_half"]
    for score, auc in au.get("membership", {}).get("models", {}).get("unlearned", {}).items():
        out[f"membership AUC ({score})"] = auc
    inv = au.get("inversion", {}).get("models", {}).get("unlearned")
    if inv:
        out["decoder inversion: probe acc reached"] = inv["end"]["probe_acc"]
        out["decoder inversion: PSNR reached (dB)"] = inv["end"]["psnr"]
    for kind, start in au.get("mask_sweep", {}).get("holds", {}).items():
        out[f"mask sweep: forgetting holds from ({kind})"] = start
    return out


def figure_rows(a: dict, b: dict) -> list[list]:
    """[figure, A, B, B - A] for the unlearned models: every metric under each run's own mask
    (when both ran with one mask), the probe under every mask both measured, the audits."""
    rows = []

    def add(name: str, x, y) -> None:
        if x is None and y is None:
            return
        diff = round(y - x, 4) if isinstance(x, int | float) and isinstance(y, int | float) else None
        rows.append([name, x, y, diff])

    if a["mask"] == b["mask"]:
        for subset in ("forget", "retain"):
            for metric in METRICS:
                add(f"{subset} {metric} ({a['mask']})", a["unlearned"][subset].get(metric), b["unlearned"][subset].get(metric))
    for mask in [m for m in a.get("masks", {}) if m in b.get("masks", {}) and m != a["mask"]]:
        for subset in ("forget", "retain"):
            ua, ub = a["masks"][mask]["unlearned"][subset], b["masks"][mask]["unlearned"][subset]
            add(f"{subset} probe_acc ({mask})", ua.get("probe_acc"), ub.get("probe_acc"))
    fa, fb = audit_figures(a), audit_figures(b)
    for name in dict.fromkeys([*fa, *fb]):
        add(name, fa.get(name), fb.get(name))
    return rows


def compare_runs(dir_a: str | Path, dir_b: str | Path, device: str = "cpu", images: int = 6, **sets) -> Comparison:
    """Compare two run folders (`sets`: forget= / retain= for runs of uploaded sets). Runs of two
    families are compared by their figures only, saying why."""
    a, b = read_metrics(dir_a), read_metrics(dir_b)
    names = (Path(dir_a).name, Path(dir_b).name)
    settings, figures = settings_rows(a, b), figure_rows(a, b)
    if a["model"] != b["model"]:
        note = (
            f"Run A is a {a['model']} model and run B a {b['model']} model: different families draw differently and may "
            "differ in size, so their outputs are not pictured side by side; their figures are compared below."
        )
        return Comparison(names, settings, figures, None, note)
    uploaded = [w for w in ("forget", "retain") if not str(a[f"{w}_set"].get("source", "")).startswith("builtin:") and not sets.get(w)]
    if uploaded:
        note = (
            f"Run A's {' and '.join(uploaded)} set{'s were' if len(uploaded) > 1 else ' was'} uploaded, and a run folder does not keep "
            "the images: their outputs are not pictured; the figures are compared below."
        )
        return Comparison(names, settings, figures, None, note)
    try:
        picture, note = _pictured(dir_a, dir_b, b, names, device, images, sets)
    except UserInputError as e:  # the outputs cannot be pictured; the figures still compare
        picture, note = None, f"Their outputs are not pictured: {e}. The figures are compared below."
    return Comparison(names, settings, figures, picture, note)


def _pictured(dir_a, dir_b, b: dict, names: tuple[str, str], device: str, images: int, sets: dict) -> tuple[Image.Image, str]:
    """Both unlearned models and the original on run A's held-out images, and what the picture shows."""
    subject = open_run(dir_a, device, sets.get("forget"), sets.get("retain"))
    other = on_device(cached_model(b["model"], Path(dir_b) / "model"), subject.device)
    if (other.image_size, other.channels) != (subject.unlearned.image_size, subject.unlearned.channels):
        raise UserInputError(f"{names[1]} works on other images ({other.image_size} px) than {names[0]}: it cannot be pictured beside it")
    pics = [
        (f"forget set: {subject.forget.name}", subject.forget.test[:images]),
        (f"retain set: {subject.retain.name}", subject.retain.test[:images]),
    ]
    with compute(subject.precision, subject.device):
        c = compare_models(
            subject.unlearned, other, pics, subject.mask, seed=subject.seed, columns=COLUMNS, steps=subject.sampling_steps,
            reference=("original", subject.original),
        )  # fmt: skip
    note = (
        f"Both unlearned models on run A's held-out images, mask ({subject.mask.name}) and seed ({subject.seed}), and the "
        "original; 'A vs B': where the two outputs differ in the generated region (dark blue: the same; red to yellow: "
        "more and more different)."
    )
    return c.image, note


def comparison_text(c: Comparison) -> str:
    """The comparison as plain text (the command line)."""
    width = max(len(str(r[0])) for r in c.settings + c.figures)
    lines = [f"A = {c.names[0]}, B = {c.names[1]}", "", "settings:"]
    lines += [f"  {k:<{width}}  A: {x}  B: {y}" + ("" if x == y else "   (differs)") for k, x, y in c.settings if k != "command"]
    lines += ["", f"  {'figure':<{width}}  {'A':>8} {'B':>8} {'B - A':>8}"]
    lines += [f"  {k:<{width}}  {_cell(x):>8} {_cell(y):>8} {_cell(d):>8}" for k, x, y, d in c.figures]
    return "\n".join(lines + (["", c.note] if c.note else []))


def _cell(v) -> str:
    return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def comparison_html(c: Comparison) -> str:
    """A page with both runs' settings, figures and (one family) pictures."""

    def table(head: list[str], rows: list[list]) -> str:
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in r) + "</tr>" for r in rows)
        return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + f"</tr>{cells}</table>"

    picture = f'<img src="{png_data_uri(c.picture)}" alt="both runs side by side">' if c.picture is not None else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Two runs compared</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}img{{max-width:100%;height:auto}}</style></head><body>
<h1>Run A ({html.escape(c.names[0])}) and run B ({html.escape(c.names[1])})</h1>
<h2>Settings</h2>{table(["setting", "A", "B"], c.settings)}
<h2>Figures of the unlearned models (held-out images)</h2>{table(["figure", "A", "B", "B - A"], c.figures)}
<h2>Outputs</h2><p>{html.escape(c.note)}</p>{picture}
</body></html>"""
