"""What a finished run hands to people: a metrics table, a loss chart, a model zip, a report.

The model zip holds the model folder (safetensors, config.json, unlearn_meta.json with the
settings and the forget set's SHA-256) plus metrics.json and losses.csv. The report is one
self-contained HTML file (images inlined) with the metrics table, loss chart and comparison grid.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

from unlearn_core.measure.metrics import IMAGE_METRICS, metric_names
from unlearn_core.measure.viz import font
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


MASK_HEADERS = ["mask", "forget: original", "forget: unlearned", "retain: original", "retain: unlearned"]


def mask_rows(metrics: dict) -> list[list]:
    """One row per evaluation mask: the probe's score (accuracy, or agreement for a set without
    labels) of each set before and after; the run's own mask is starred."""
    rows = []
    for name, by_model in metrics.get("masks", {}).items():
        row = [name + (" *" if name == metrics["mask"] else "")]
        for s in ("forget", "retain"):
            for which in ("original", "unlearned"):
                m = by_model[which][s]
                row.append(m["probe_acc"] if m["probe_acc"] is not None else m["probe_agree"])
        rows.append(row)
    return rows


PROBE_MEASURES = {"probe_acc": "probe accuracy", "probe_agree": "probe agreement with the input image"}


def _probe_change(metrics: dict, subset: str) -> tuple[str, float, float] | None:
    """(measure name, original, unlearned) for a set: accuracy when it has labels, else agreement."""
    for key, name in PROBE_MEASURES.items():
        a, b = metrics["original"][subset].get(key), metrics["unlearned"][subset].get(key)
        if a is not None and b is not None:
            return name, a, b
    return None


def forgetting_verdict(metrics: dict) -> str:
    """Did the forget set's outputs lose what they showed, and did the retain set's keep it?

    Judged by the probe: forgotten when the forget score fell to half or less, partly forgotten
    when it fell by more than 0.1; the retain set is kept when its score fell by 0.05 or less,
    slightly changed up to 0.1, damaged beyond."""
    forget, retain = _probe_change(metrics, "forget"), _probe_change(metrics, "retain")
    if forget is None or retain is None:
        return "No probe is available to judge forgetting; compare the pictures and the PSNR."
    name, f0, f1 = forget
    word = "forgotten" if f1 <= f0 / 2 else "partly forgotten" if f1 < f0 - 0.1 else "not forgotten"
    rname, r0, r1 = retain
    drop = r0 - r1
    kept = "kept" if drop <= 0.05 else "slightly changed" if drop <= 0.1 else "damaged"
    return f"Forget set: **{word}** ({name} {f0:.2f} -> {f1:.2f}). Retain set: **{kept}** ({rname} {r0:.2f} -> {r1:.2f})."


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


def _png_data_uri(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _html_rows(rows: list[list]) -> str:
    return "".join("<tr>" + "".join(f"<td>{html.escape('-' if v is None else str(v))}</td>" for v in row) + "</tr>" for row in rows)


def _embedding_section(out: RunOutput) -> str:
    if out.embedding is None:
        return ""
    return f"""<h2>Encoder embeddings</h2><p>{html.escape(EMBEDDING_NOTE)}</p>
<img src="{_png_data_uri(out.embedding)}" alt="embedding view">"""


EMBEDDING_NOTE = (
    "Each dot is one held-out image's encoder embedding, projected to 2-D by a PCA fitted on the original model "
    "(both panels share the axes). Before unlearning the forget images sit in their own cloud; after, they should "
    "sit on the noise targets, while the retain images stay where they were."
)


def report_html(out: RunOutput) -> str:
    m = out.metrics
    cells = _html_rows(metrics_rows(m))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in m["notes"])
    by_mask = _html_rows(mask_rows(m))
    mask_head = "".join(f"<th>{html.escape(h)}</th>" for h in MASK_HEADERS)
    settings = html.escape(json.dumps({k: m[k] for k in ("alpha", "lr", "batch_size", "seed", "steps_requested", "device", "precision")}))
    base = m["base_model"]
    verdict = html.escape(forgetting_verdict(m).replace("**", ""))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Unlearning report</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}</style></head><body>
<h1>Unlearning report</h1>
<p>Model <b>{html.escape(m["model"])}</b> (base <b>{html.escape(base["name"])}</b>, weights SHA-256
{html.escape(base["sha256"][:16])}...), method <b>{html.escape(m["method"])}</b>, mask <b>{html.escape(m["mask"])}</b>:
{m["steps"]} steps in {m["seconds"]} s. Forget set: {html.escape(m["forget_set"]["source"])}
({m["forget_set"]["train"]} images unlearned, {m["forget_set"]["test"]} evaluated, SHA-256 {m["forget_set"]["sha256"][:16]}...).
Retain set: {html.escape(m["retain_set"]["source"])}.</p>
<p>{verdict}</p>
<p>Settings: <code>{settings}</code></p>{f"<ul>{notes}</ul>" if notes else ""}
<h2>Metrics (held-out images)</h2>
<table><tr><th>set</th><th>metric</th><th>original</th><th>unlearned</th><th>change</th></tr>{cells}</table>
<h2>Probe score under every evaluation mask</h2><p>* the run's own mask. Probe accuracy (agreement for sets without labels).</p>
<table><tr>{mask_head}</tr>{by_mask}</table>
<h2>Losses</h2><img src="{_png_data_uri(loss_chart(out.result.history))}" alt="loss chart">
<h2>Original vs unlearned</h2><p>Same images, mask and seed for both models.</p>
<img src="{_png_data_uri(out.compare)}" alt="comparison grid">
{_embedding_section(out)}
</body></html>"""


def export_report(out: RunOutput, directory: str | Path) -> Path:
    path = Path(directory) / "unlearning-report.html"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(report_html(out))
    os.replace(partial, path)
    return path
