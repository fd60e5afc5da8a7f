"""What a finished run hands to people: a metrics table, a loss chart, a model zip, a report.

The model zip holds the model folder (safetensors, config.json, unlearn_meta.json with the
settings and the forget set's SHA-256) plus metrics.json and losses.csv. The report is one
self-contained HTML file (images inlined) with the metrics table, loss chart and comparison grid.
"""

from __future__ import annotations

import html
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from unlearn_core.audit import AUDITS, TITLES
from unlearn_core.audit.runner import pictures
from unlearn_core.measure.metrics import IMAGE_METRICS, metric_names
from unlearn_core.measure.viz import font, png_data_uri
from unlearn_core.run.pipeline import RunOutput, write_outputs

SERIES_COLOURS = {"retain": (31, 119, 180), "forget": (214, 39, 40), "total": (90, 90, 90)}


def _blank_reason(metrics: dict, subset: str, name: str) -> str:
    if name in IMAGE_METRICS:
        return "not computed (FID off)"
    if name == "probe_acc" and not metrics.get(f"{subset}_set", {}).get("labelled", True):
        return "n/a: no labels (see probe_agree)"
    return "n/a: no probe"


def metrics_rows(metrics: dict) -> list[list]:
    """[set, metric, original, unlearned, change] rows for a table; a blank says why it is blank."""
    rows = []
    for s in ("forget", "retain"):
        for name in metric_names()[:-1]:
            a, b = metrics["original"][s].get(name), metrics["unlearned"][s].get(name)
            if a is None or b is None:
                why = _blank_reason(metrics, s, name)
                rows.append([s, name, why, why, ""])
            else:
                rows.append([s, name, a, b, round(b - a, 4)])
    return rows


PROBE_MEASURES = {"probe_acc": "probe accuracy", "probe_agree": "probe agreement with the input image"}
# Under a mask where the original model's own probe score is below this, the original does not
# draw the class there to begin with: a lower score after unlearning is neither forgetting nor damage.
ORIGINAL_FAILS = 0.5
# Forgetting shows in the pictures when the forget set's outputs changed in the generated region by
# more than this many times the retain set's (which is how much unlearning moved outputs anyway).
VISIBLE = 1.25
FEW_IMAGES = 20  # held-out images under which the verdict says how coarse its scores are


def probe_measure(metrics: dict, subset: str) -> str | None:
    """The probe's score a set is judged by: accuracy when it has labels, agreement with the input
    image without (an uploaded set); None without a probe."""
    for key in PROBE_MEASURES:
        if metrics["original"][subset].get(key) is not None:
            return key
    return None


def _word(subset: str, before: float, after: float) -> str:
    """The probe's verdict on one set under one mask (see `forgetting_verdict`)."""
    if before < ORIGINAL_FAILS:
        return "original fails"
    if subset == "forget":
        if after > before + 0.05:
            return "score rose"
        return "forgotten" if after <= before / 2 else "partly forgotten" if after < before - 0.1 else "not forgotten"
    drop = before - after
    return "kept" if drop <= 0.05 else "slightly changed" if drop <= 0.1 else "damaged"


@dataclass(frozen=True)
class Verdict:
    """What happened to one set under one mask: the probe's score before and after, the mean change
    of the pictured outputs in the generated region (None: not pictured), and the word for it."""

    mask: str
    subset: str
    before: float
    after: float
    change: float | None
    other_change: float | None  # the other set's change under the same mask
    word: str

    @property
    def visible(self) -> bool:
        """For forgetting: whether the pictures changed clearly more for this set than for the other
        (VISIBLE times: the retain set's change is what unlearning moves any output by); unknown
        counts as visible."""
        return self.change is None or self.other_change is None or self.change > VISIBLE * self.other_change

    @property
    def text(self) -> str:
        """The verdict as a viewer reads it: a forget set whose probe score fell while its pictures
        changed no more than the retain set's is 'forgotten by the probe only'."""
        if self.subset == "forget" and self.word in ("forgotten", "partly forgotten") and not self.visible:
            return f"{self.word} by the probe only"
        return self.word


def verdicts(metrics: dict) -> dict[str, dict[str, Verdict]]:
    """{mask: {"forget": Verdict, "retain": Verdict}} for the run's own mask, first, and every
    evaluation mask; empty without a probe."""
    keys = {s: probe_measure(metrics, s) for s in ("forget", "retain")}
    if None in keys.values():
        return {}
    out = {}
    for mask, by_model in _by_mask(metrics).items():
        change = metrics.get("change", {}).get(mask, {})
        out[mask] = {}
        for s, other in (("forget", "retain"), ("retain", "forget")):
            before, after = by_model["original"][s][keys[s]], by_model["unlearned"][s][keys[s]]
            out[mask][s] = Verdict(mask, s, before, after, change.get(s), change.get(other), _word(s, before, after))
    return out


def _by_mask(metrics: dict) -> dict[str, dict]:
    """{mask: {"original": sets, "unlearned": sets}}: the run's own mask first, then the others measured."""
    own = {"original": metrics["original"], "unlearned": metrics["unlearned"]}
    mask = metrics.get("mask", "")
    return {mask: own} | {k: v for k, v in metrics.get("masks", {}).items() if k != mask}


def score(v: float) -> str:
    """A probe score as the page writes it: three decimals, as the figures are (multiples of 0.005
    on the built-in sets), never rounded two ways."""
    return f"{v:.3f}"


SHORT_MEASURES = {"probe_acc": "acc", "probe_agree": "agreement"}


def mask_headers(metrics: dict) -> list[str]:
    """The per-mask table's columns, naming the probe score each set is judged by ('acc': probe
    accuracy; 'agreement': probe agreement with the input image, for a set without labels)."""
    names = {s: SHORT_MEASURES.get(probe_measure(metrics, s) or "", "probe") for s in ("forget", "retain")}
    heads = ["mask"]
    ref = metrics.get("reference")
    for s in ("forget", "retain"):
        heads += [f"{s} {names[s]}: original", f"{s} {names[s]}: unlearned"]
        heads += [f"{s} {names[s]}: {ref['label']}"] if ref is not None and s == "forget" else []
        heads += [f"{s}: change"]
    return heads + ["verdict"]


MASK_HEADERS = mask_headers({"original": {"forget": {"probe_acc": 1}, "retain": {"probe_acc": 1}}})


def mask_rows(metrics: dict) -> list[list]:
    """One row per evaluation mask: each set's probe score (accuracy, or agreement for a set without
    labels) before and after, the mean change of its pictured outputs in the generated region, and
    the verdict; the run's own mask comes first, starred."""
    judged = verdicts(metrics)
    change = metrics.get("change", {})
    ref = metrics.get("reference")
    rows = []
    for name, by_model in _by_mask(metrics).items():
        row = [name + (" *" if name == metrics["mask"] else "")]
        models = by_model | ({"reference": ref["masks"][name]} if ref is not None else {})
        for s in ("forget", "retain"):
            for which in ("original", "unlearned", "reference") if s == "forget" and ref is not None else ("original", "unlearned"):
                m = models[which][s]
                row.append(m["probe_acc"] if m["probe_acc"] is not None else m["probe_agree"])
            c = change.get(name, {}).get(s)
            row.append(None if c is None else round(c, 3))
        v = judged.get(name)
        row.append(_mask_cell(v) if v else "")
        rows.append(row)
    return rows


def _mask_cell(v: dict[str, Verdict]) -> str:
    f, r = v["forget"], v["retain"]
    if f.word == r.word == "original fails":
        return "the original fails on both sets: not counted"
    forget = "the original fails on the forget set: not counted" if f.word == "original fails" else f"forget {f.text}"
    retain = "the original fails on the retain set: not counted" if r.word == "original fails" else f"retain {r.text}"
    return f"{forget}; {retain}"


def _set_line(judged: dict[str, dict[str, Verdict]], subset: str, measure: str) -> str:
    """The headline for one set: the verdict under the run's own mask with its figures, then how
    the other masks went, grouped by verdict."""
    own_mask, *others = judged
    v = judged[own_mask][subset]
    label = "Forget set" if subset == "forget" else "Retain set"
    head = f"{label}: **{v.text}** under {own_mask}, the run's mask ({measure} {score(v.before)} → {score(v.after)}"
    if v.word == "original fails":
        head = (
            f"{label}: under {own_mask}, the run's mask, **the original model itself fails** ({measure} {score(v.before)}, "
            f"below {ORIGINAL_FAILS}): not counted as {'forgetting' if subset == 'forget' else 'damage'}"
        )
    elif v.change is not None:
        head += f"; its pictured outputs changed by {v.change:.3f} in the generated region"
        head += (
            f", the {'retain' if subset == 'forget' else 'forget'} set's by {v.other_change:.3f})" if v.other_change is not None else ")"
        )
    else:
        head += ")"
    groups: dict[str, list[str]] = {}
    for mask in others:
        o = judged[mask][subset]
        figure = f"{mask} ({score(o.before)} → {score(o.after)})" if o.word != "original fails" else f"{mask} ({score(o.before)})"
        groups.setdefault(o.text, []).append(figure)
    if not groups:
        return head + "."
    parts = [f"{'the original fails' if word == 'original fails' else word} under {', '.join(masks)}" for word, masks in groups.items()]
    return f"{head}. Other masks: {'; '.join(parts)}."


def forgetting_verdict(metrics: dict, sep: str = " ") -> str:
    """Did the forget set's outputs lose what they showed, and did the retain set's keep it, under
    the run's mask and under each evaluation mask?

    Judged by the probe's score (accuracy, or agreement for a set without labels) together with the
    pictures: forgotten when the forget score fell to half or less, partly forgotten when it fell by
    more than 0.1, and 'by the probe only' when the forget set's pictured outputs did not change in
    the generated region clearly more (VISIBLE times) than the retain set's; a rising forget score is said so. The retain set
    is kept when its score fell by 0.05 or less, slightly changed up to 0.1, damaged beyond. A mask
    under which the original's own score is below ORIGINAL_FAILS is not counted either way. The two
    sets' lines are joined by `sep`."""
    judged = verdicts(metrics)
    if not judged:
        return "No probe is available to judge forgetting; compare the pictures and the PSNR."
    lines = []
    for s in ("forget", "retain"):
        line = _set_line(judged, s, PROBE_MEASURES[probe_measure(metrics, s)])
        n = metrics["original"][s].get("n")
        if n is not None and n < FEW_IMAGES:
            line += f" (Judged on {n} held-out image{'' if n == 1 else 's'} only: each moves the score by {1 / n:.2f}.)"
        lines.append(line)
    return sep.join(lines)


def reference_line(metrics: dict) -> str | None:
    """How the model that never saw the forget set's class scores beside the original and the
    unlearned model under the run's mask: what successful forgetting is compared with (it need not
    be zero: the visible part of a cat still says "cat")."""
    ref = metrics.get("reference")
    keys = {s: probe_measure(metrics, s) for s in ("forget", "retain")}
    if ref is None or None in keys.values():
        return None
    own = metrics["mask"]

    def figures(s: str) -> str:
        k = keys[s]
        return (
            f"{score(ref['masks'][own][s][k])} on the {s} set (original {score(metrics['original'][s][k])}, "
            f"unlearned {score(metrics['unlearned'][s][k])})"
        )

    return (
        f"A model that {ref['label']} ({ref['name']}, trained like the original without them) scores {figures('forget')} "
        f"and {figures('retain')} under {own}: forgetting succeeds when the unlearned model comes near it."
    )


def loss_chart(history: list[dict], size: tuple[int, int] = (640, 300)) -> Image.Image:
    """Retain, forget and total loss against step (log scale), drawn with PIL."""
    w, h = size
    left, right, top, bottom = 60, 110, 20, 35
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    small = font(12)
    if not history:
        draw.text((left, h // 2), "no steps", fill=(0, 0, 0), font=small)
        return canvas
    values = [max(r[k], 1e-8) for r in history for k in SERIES_COLOURS]
    lo, hi = math.log10(min(values)), math.log10(max(values))
    hi = hi if hi > lo else lo + 1
    steps = len(history)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (w - left - right) * (i / max(1, steps - 1))
        y = top + (h - top - bottom) * (1 - (math.log10(max(v, 1e-8)) - lo) / (hi - lo))
        return x, y

    draw.rectangle([left, top, w - right, h - bottom], outline=(180, 180, 180))
    for frac in (0, 0.5, 1):
        v = 10 ** (lo + frac * (hi - lo))
        _, y = xy(0, v)
        draw.text((4, y - 6), f"{v:.1e}", fill=(80, 80, 80), font=small)
    draw.text((left, h - bottom + 8), "step 1", fill=(80, 80, 80), font=small)
    draw.text((w - right - 50, h - bottom + 8), f"step {history[-1]['step']}", fill=(80, 80, 80), font=small)
    for j, (key, colour) in enumerate(SERIES_COLOURS.items()):
        pts = [xy(i, r[key]) for i, r in enumerate(history)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        draw.line([(w - right + 10, top + 10 + 18 * j), (w - right + 30, top + 10 + 18 * j)], fill=colour, width=3)
        draw.text((w - right + 35, top + 4 + 18 * j), key, fill=(0, 0, 0), font=small)
    return canvas


def export_model_zip(out: RunOutput, directory: str | Path) -> Path:
    """`unlearned-model.zip`: model/ (weights, config, metadata), metrics.json, losses.csv."""
    directory = Path(directory)
    run_dir = write_outputs(out, directory / "run")
    path = directory / "unlearned-model.zip"
    partial = path.with_name(path.name + ".partial")  # complete zips only under the final name
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(run_dir.rglob("*")):
            if f.is_file() and f.suffix != ".png":
                zf.write(f, f.relative_to(run_dir).as_posix())
    os.replace(partial, path)
    return path


def _html_rows(rows: list[list]) -> str:
    return "".join("<tr>" + "".join(f"<td>{html.escape('-' if v is None else str(v))}</td>" for v in row) + "</tr>" for row in rows)


def _embedding_section(out: RunOutput) -> str:
    if out.embedding is None:
        return ""
    return f"""<h2>Encoder embeddings</h2><p>{html.escape(EMBEDDING_NOTE)}</p>
<img src="{png_data_uri(out.embedding)}" alt="embedding view">"""


EMBEDDING_NOTE = (
    "Each dot is one held-out image's encoder embedding, projected to 2-D by a PCA fitted on the original model "
    "(both panels share the axes). Before unlearning the forget images sit in their own cloud; after, they should "
    "sit on the noise targets, while the retain images stay where they were."
)


MASK_TABLE_NOTE = (
    "* the run's own mask. Each set's probe score before and after ('acc': probe accuracy; 'agreement': the probe's agreement "
    "with the input image, for a set without labels), and 'change': the mean difference between the two models' outputs in the generated region over the "
    f"pictured images (0: the same, 1: black for white). Under a mask where the original itself scores below {ORIGINAL_FAILS} "
    "it does not draw the class to begin with, so a fall there is counted neither as forgetting nor as damage."
)
CHANGE_NOTE = (
    "'what changed': where the unlearned model's output differs from the original's in the generated region "
    "(dark blue: the same; red to yellow: more and more different); the visible part is faded."
)


def _comparisons(out: RunOutput) -> str:
    own = out.metrics["mask"]
    pictures = out.compares or {own: out.compare}
    mine = " (the run's mask)"
    return "".join(
        f"<h3>Under {html.escape(name)}{mine if name == own else ''}</h3>"
        f'<img src="{png_data_uri(picture)}" alt="comparison under {html.escape(name)}">'
        for name, picture in pictures.items()
    )


def _audit_section(m: dict) -> str:
    """The audit's verdicts and plots, when the run was audited (serving/auditing.py)."""
    if not m.get("audit"):
        return ""
    plots = pictures(m["audit"], m.get("reference", {}).get("label"))
    parts = [
        f"<h3>{TITLES[a]}</h3><p>{html.escape(m['audit'][a]['verdict'])}</p>"
        + (f'<img src="{png_data_uri(plots[a])}" alt="{a}">' if a in plots else "")
        for a in AUDITS
        if a in m["audit"]
    ]
    return "<h2>Audit: is it really gone?</h2>" + "".join(parts)


def report_html(out: RunOutput) -> str:
    m = out.metrics
    cells = _html_rows(metrics_rows(m))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in m["notes"])
    by_mask = _html_rows(mask_rows(m))
    mask_head = "".join(f"<th>{html.escape(h)}</th>" for h in mask_headers(m))
    settings = html.escape(json.dumps({k: m[k] for k in ("alpha", "lr", "batch_size", "seed", "steps_requested", "device", "precision")}))
    base = m["base_model"]
    verdict = html.escape(forgetting_verdict(m).replace("**", ""))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Unlearning report</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}img{{max-width:100%;height:auto}}</style></head><body>
<h1>Unlearning report</h1>
<p>Model <b>{html.escape(m["model"])}</b> (base <b>{html.escape(base["name"])}</b>, weights SHA-256
{html.escape(base["sha256"][:16])}...), method <b>{html.escape(m["method"])}</b>, mask <b>{html.escape(m["mask"])}</b>:
{m["steps"]} steps in {m["seconds"]} s. Forget set: {html.escape(m["forget_set"]["source"])}
({m["forget_set"]["train"]} images unlearned, {m["forget_set"]["test"]} evaluated, SHA-256 {m["forget_set"]["sha256"][:16]}...).
Retain set: {html.escape(m["retain_set"]["source"])}.</p>
<p>{verdict}</p>{f"<p>{html.escape(reference_line(m))}</p>" if reference_line(m) else ""}
<p>Settings: <code>{settings}</code></p>{f"<ul>{notes}</ul>" if notes else ""}
<h2>Metrics (held-out images)</h2>
<table><tr><th>set</th><th>metric</th><th>original</th><th>unlearned</th><th>change</th></tr>{cells}</table>
<h2>Probe score under every evaluation mask</h2><p>{html.escape(MASK_TABLE_NOTE)}</p>
<table><tr>{mask_head}</tr>{by_mask}</table>
<h2>Losses</h2><img src="{png_data_uri(loss_chart(out.result.history))}" alt="loss chart">
<h2>Original vs unlearned</h2><p>Same images, mask and seed for both models. {html.escape(CHANGE_NOTE)}</p>
{_comparisons(out)}
{_embedding_section(out)}
{_audit_section(m)}
</body></html>"""


def export_report(out: RunOutput, directory: str | Path) -> Path:
    path = Path(directory) / "unlearning-report.html"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(report_html(out))
    os.replace(partial, path)
    return path
