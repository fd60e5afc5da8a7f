"""The paper's comparison in one command: every method on every family and mask, as a table.

`python -m unlearn_core table --model mae,vqgan,diffusion --mask center25,center50,outpaint50
--out DIR` unlearns with each method (the baselines, ours, ours with a proxy retain set, and ours
over an alpha sweep), measures each unlearned model on held-out forget and retain images under
each mask (FID, embed_cos, probe accuracy; see `metrics.py`), and writes:

- `DIR/cells/<model>/<method>/<mask>/seed<N>-<key>.json`: one finished cell per seed, `key` a hash
  of everything the cell's run depends on (`cell_key`: the sets, steps, batch, precision, the
  family's defaults...). A cell that exists is not redone, so an interrupted table resumes where it
  stopped, and a changed setting runs afresh instead of reading older cells (delete one to redo it).
- `DIR/RESULTS.md`, `DIR/results.csv`: rows are methods, columns FID / embed_cos / probe_acc for
  the forget set and for the retain set (the paper's layout; no Inception Score: the offline
  feature network has no classifier head); with several seeds (`--seeds`) each figure is the mean
  with the lowest and highest seed's in brackets; a second table for the alpha sweep; what each
  method falls short on, in words. results.csv has one line per seed.
- `DIR/tradeoff.png`: retain probe accuracy against forget probe accuracy, one point per method
  and alpha (the mean over seeds, with whiskers from the lowest to the highest), one panel per
  model and mask.

A family whose default training mask is the evaluation mask (MAE, diffusion) is unlearned once
per mask; one that trains with random masks (VQ-GAN) is unlearned once and measured under each.

The CLI builds a table per split of the images (`SPLITS`: the paper's, forget cats and retain the
other nine classes; the app's demonstration, cats and dogs), each in `DIR/<split>/`, and joins
them in one `DIR/RESULTS.md` (`build_splits`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from unlearn_core.data.sets import builtin_classes
from unlearn_core.errors import UserInputError
from unlearn_core.methods import get_method
from unlearn_core.models import family_class, family_names, get_family
from unlearn_core.models.checkpoints import reference_for
from unlearn_core.run.engine import UnlearnConfig, default_alpha, default_train_mask, unlearn
from unlearn_core.run.pipeline import RunSpec, evaluate_pair, evaluation_mask, prepare

PROXY = "proxy"


@dataclass(frozen=True)
class Row:
    key: str  # folder name of its cells
    title: str
    method: str | None  # None: the original model
    alpha: float | None = None  # None: the method's default
    proxy: bool = False  # retain set: the proxy set instead of the real one
    reference: bool = False  # the family's model that never saw the forget class (method None)
    recipe: str = "demo"  # the family's settings it runs with (`registry.RECIPES`)


BASE_ROWS = (
    Row("original", "Original", None),
    Row("retrain", "Retrain (never saw the class)", None, reference=True),
    Row("max_loss", "Max Loss", "max_loss"),
    Row("noisy_label", "Noisy Label", "noisy_label"),
    Row("retain_label", "Retain Label", "retain_label"),
    Row("random_encoder", "Random Encoder", "random_encoder"),
    Row("finetune", "FT (control)", "finetune"),
    Row("ours", "Ours", "ours"),
    Row("ours_official", "Ours (official recipe)", "ours", recipe="official"),
    Row("ours_proxy", "Ours (proxy D_R)", "ours", proxy=True),
)
COLUMNS = ("fid", "embed_cos", "probe_acc")


@dataclass
class TableSpec:
    models: list[str]
    masks: list[str]
    out: Path
    forget: str = "builtin:cat"
    retain: str = "builtin:dog"
    proxy: str = "builtin:others"
    # where the proxy is part of `retain`: the real retain classes (retain without the proxy's), which
    # the proxy row is measured on, beside the original's figures there
    proxy_measured: str | None = None
    alphas: list[float] = field(default_factory=lambda: [0.25, 0.5, 2.0, 4.0])  # besides the default
    rows: list[str] | None = None  # keys of BASE_ROWS to run; None: all
    steps: int | None = None  # None: each family's default
    batch_size: int = 32
    seeds: list[int] = field(default_factory=lambda: [0])  # every cell is run with each
    device: str = "auto"
    precision: str = "auto"  # precision.py
    image_metrics: bool = True
    fid_images: int | None = 200  # FID and embed_cos on at most this many images of each set (None: all)
    audit: bool = False  # also attack every unlearned cell's model (relearning, membership, inversion; audit.md)
    audit_config: object = None  # their sizes (`audit.common.AuditConfig`); None: the defaults
    command: str = ""

    def table_rows(self, model: str | None = None) -> list[Row]:
        """The rows, then the alpha sweep of ours: `alphas` besides the default, which is the
        family's for `model` (a family that names its own also gets the method's, unless there is no sweep)."""
        rows = [r for r in BASE_ROWS if self.rows is None or r.key in self.rows]
        if model is not None and reference_for(model, self.forget) is None:  # a family without one has no such row
            rows = [r for r in rows if not r.reference]
        if model is not None and get_family(model).official is None:
            rows = [r for r in rows if r.recipe != "official"]
        unknown = set(self.rows or []) - {r.key for r in BASE_ROWS}
        if unknown:
            raise UserInputError(f"unknown row {sorted(unknown)[0]!r}; choose from {', '.join(r.key for r in BASE_ROWS)}")
        own = get_method("ours").default_alpha
        default = own if model is None else default_alpha("ours", family_class(model))
        alphas = sorted({*self.alphas, own}) if default != own and self.alphas else self.alphas
        sweep = [Row(f"ours_a{a:g}", f"Ours, alpha {a:g}", "ours", a) for a in alphas if a != default]
        return rows + sweep

    def check(self) -> None:
        if not self.models or not self.masks:
            raise UserInputError("name at least one model and one mask")
        for m in self.models:
            if m not in family_names():
                raise UserInputError(f"unknown model {m!r}; choose from {', '.join(family_names())}")
        for m in self.masks:
            evaluation_mask(m)
        for a in self.alphas:
            if not a >= 0:
                raise UserInputError(f"alpha must be zero or positive, got {a}")
        if self.fid_images is not None and self.fid_images < 2:
            raise UserInputError(f"FID needs at least two images of each set, got {self.fid_images}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserInputError(f"name one seed or more, each once, got {self.seeds}")


@dataclass(frozen=True)
class Split:
    """Which images a table forgets, keeps and proxies: a section of RESULTS.md."""

    name: str  # its folder under the table's output folder
    title: str
    forget: str
    retain: str
    proxy: str  # what the proxy row trains with instead of `retain` (measured on `retain`)
    proxy_measured: str | None = None  # measured on this instead (`TableSpec.proxy_measured`)


SPLITS = {
    "paper": Split(
        "paper",
        "The paper's split: forget cats, retain the other nine classes",
        "builtin:cat",
        "builtin:not-cat",
        "builtin:giraffe+horse+sheep+zebra",
        "builtin:bear+bird+cow+dog+elephant",
    ),
    "demo": Split("demo", "The app's demonstration: forget cats, keep dogs", "builtin:cat", "builtin:dog", "builtin:others"),
}


def build_splits(spec: TableSpec, splits: list[Split], say: Callable[[str], None] = print, on_step: Callable | None = None) -> Path:
    """`build` for each split in its own folder under `spec.out` (`<split>/RESULTS.md` and its
    cells), then one RESULTS.md with a section per split; returns its path."""
    parts = []
    for split in splits:
        say(f"{split.title} ({split.name}/)")
        sub = replace(
            spec,
            forget=split.forget,
            retain=split.retain,
            proxy=split.proxy,
            proxy_measured=split.proxy_measured,
            out=Path(spec.out) / split.name,
        )
        parts.append((split, build(sub, say, on_step)))
    lines = ["# Results: every method, family and mask", ""]
    lines += [f"Produced by `{spec.command or 'python -m unlearn_core table'}`; one section per split of the images:", ""]
    lines += [f"- [{split.title}](#{split.name}) ({split.name}/RESULTS.md)" for split, _ in parts] + [""]
    for split, path in parts:
        lines += [f'<a id="{split.name}"></a>', "", f"# {split.title}", ""]
        body = path.read_text().split("\n")[1:]  # without its own title
        for line in body:
            line = f"#{line}" if line.startswith("#") else line
            lines.append(line.replace("](tradeoff.png)", f"]({split.name}/tradeoff.png)"))
    out = Path(spec.out) / "RESULTS.md"
    out.write_text("\n".join(lines))
    return out


def cell_key(spec: TableSpec, model: str, row: Row, mask: str, seed: int) -> str:
    """A hash of everything a cell's figures depend on: the family and its defaults, the row, the
    mask, the sets, the schedule, the precision, the seed."""
    config = {
        "model": model,
        "defaults": _row_defaults(model, row),
        "row": asdict(row),
        "mask": mask,
        "sets": [spec.forget, spec.retain, spec.proxy if row.proxy else None]
        + ([spec.proxy_measured] if _measured_apart(spec, row) else []),
        "steps": spec.steps,
        "batch_size": spec.batch_size,
        "precision": spec.precision,
        "image_metrics": spec.image_metrics,
        "fid_images": spec.fid_images,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _row_defaults(model: str, row: Row) -> dict:
    """The family's recipe as `row` runs it: the one forget-term weight its method uses instead of
    the family's table of them, so that a new default alpha for one method keys only that
    method's cells anew (the other rows' cells are kept)."""
    defaults = asdict(get_family(model).recipe(row.recipe))
    if row.method is not None:
        defaults["alpha"] = row.alpha if row.alpha is not None else default_alpha(row.method, family_class(model), row.recipe)
    else:
        defaults["alpha"] = None
    return defaults


def _measured_apart(spec: TableSpec, row: Row) -> bool:
    """Whether `row` is measured on the real retain classes apart from the rest (a proxy row whose
    proxy is part of the retain set)."""
    return row.proxy and spec.proxy_measured is not None


def _fid_words(fid_images: int | None) -> str:
    if fid_images is None:
        return "FID and embed_cos on every held-out image of a set."
    return f"FID and embed_cos on {fid_images} held-out images of a set, evenly spread over it (every class of a larger set)."


def cell_path(spec: TableSpec, model: str, row: Row, mask: str, seed: int) -> Path:
    return Path(spec.out) / "cells" / model / row.key / mask / f"seed{seed}-{cell_key(spec, model, row, mask, seed)}.json"


AUDITED = ("relearning", "membership", "inversion")  # what `--audit` runs on a cell's model (the mask sweep is the table itself)


def audit_path(spec: TableSpec, model: str, row: Row, mask: str, seed: int) -> Path:
    """Where a cell's audit is kept, beside the cell (a table without `--audit` keeps its cells)."""
    return cell_path(spec, model, row, mask, seed).with_name(f"audit-seed{seed}-{cell_key(spec, model, row, mask, seed)}.json")


def _missing(spec: TableSpec, model: str, row: Row, seed: int) -> list[str]:
    """The masks of a row and seed still to run: no cell yet, or (with `audit`) no audit of it."""
    audits = spec.audit and row.method is not None
    return [
        m
        for m in spec.masks
        if not cell_path(spec, model, row, m, seed).exists() or (audits and not audit_path(spec, model, row, m, seed).exists())
    ]


def build(spec: TableSpec, say: Callable[[str], None] = print, on_step: Callable | None = None) -> Path:
    """Run every missing cell, then write RESULTS.md, results.csv and tradeoff.png; returns the
    RESULTS.md path. `say` gets one line per row and seed; `on_step` the engine's step events."""
    spec.check()
    jobs = [(model, row, seed) for model in spec.models for row in spec.table_rows(model) for seed in spec.seeds]
    for i, (model, row, seed) in enumerate(jobs, 1):
        missing = _missing(spec, model, row, seed)
        if not missing:
            say(f"[{i}/{len(jobs)}] {model} {row.key} seed {seed}: done before, kept")
            continue
        say(f"[{i}/{len(jobs)}] {model} {row.key} seed {seed}: {', '.join(missing)}")
        _run_row(spec, model, row, missing, seed, on_step)
    return write_results(spec)


def _spec_for(spec: TableSpec, model: str, row: Row, mask: str, seed: int | None = None) -> RunSpec:
    """The run of a cell (`seed` None: the first of the table's); its retain set is the real one,
    which every row is measured on (a proxy row trains with the proxy set instead, see `_run_row`)."""
    seed = spec.seeds[0] if seed is None else seed
    cfg = UnlearnConfig(
        method=row.method or "ours",
        alpha=row.alpha,
        steps=spec.steps,
        batch_size=spec.batch_size,
        seed=seed,
        precision=spec.precision,
        recipe=row.recipe,
    )
    return RunSpec(
        model=model,
        forget=spec.forget,
        retain=spec.proxy_measured if _measured_apart(spec, row) else spec.retain,
        mask=mask,
        config=cfg,
        eval_masks=[],
        image_metrics=spec.image_metrics,
        device=spec.device,
    )


def _run_row(spec: TableSpec, model: str, row: Row, masks: list[str], seed: int, on_step) -> None:
    from unlearn_core.data.sets import load_image_set

    first = prepare(_spec_for(spec, model, row, masks[0], seed))
    model_ = first.original
    retain_train = load_image_set(spec.proxy, model_.image_size, model_.channels).train if row.proxy else first.retain.train
    if row.method is None:  # the loaded model and sets serve every mask
        target = first.reference if row.reference else first.original
        for m in masks:
            p = _measured_on(first, m)
            _write_cell(spec, model, row, m, seed, p, evaluate_pair(p, target, seed, image_metrics=True, fid_images=spec.fid_images), None)
        return
    # Families that unlearn with random masks train once for every mask; the others once per mask.
    shared = default_train_mask(row.method, first.original, row.recipe) is not None
    groups = [masks] if shared else [[m] for m in masks]
    for group in groups:
        p = first if group[0] == masks[0] else prepare(_spec_for(spec, model, row, group[0], seed))
        result = unlearn(p.original, p.forget.train, retain_train, p.train_mask, p.config, p.device, on_step)
        for m in group:
            q = _measured_on(p, m)
            metrics = evaluate_pair(q, result.model, seed, image_metrics=True, fid_images=spec.fid_images)
            if _measured_apart(spec, row):  # the original on the same classes, to compare with
                metrics["original"] = evaluate_pair(q, q.original, seed, image_metrics=True, fid_images=spec.fid_images)
            _write_cell(spec, model, row, m, seed, q, metrics, result)
            if spec.audit:
                _write_audit(spec, model, row, m, seed, q, result.model)


def _write_audit(spec: TableSpec, model: str, row: Row, mask: str, seed: int, p, unlearned) -> None:
    """The attacks of `AUDITED` on a cell's unlearned model, their headline figures kept beside the cell."""
    from unlearn_core.audit.common import AuditConfig
    from unlearn_core.audit.compare import audit_figures
    from unlearn_core.audit.folder import from_prepared
    from unlearn_core.audit.runner import run_audit

    result = run_audit(from_prepared(p, unlearned, {}), list(AUDITED), spec.audit_config or AuditConfig())
    _write_json(audit_path(spec, model, row, mask, seed), {"figures": audit_figures({"audit": result}), "audit": result})


def _measured_on(p, mask: str):
    """A prepared run measured under `mask` instead (same model, sets and training)."""
    return p if p.mask.name == mask else replace(p, mask=evaluation_mask(mask))


def _write_cell(spec: TableSpec, model: str, row: Row, mask: str, seed: int, p, metrics: dict, result) -> None:
    cell = {
        "model": model,
        "row": row.key,
        "title": row.title,
        "method": row.method,
        "alpha": None if row.method is None else p.config.resolved_alpha(),
        "recipe": row.recipe,
        "retain_set": spec.proxy if row.proxy else spec.retain,
        "measured_on": p.retain.name,
        "mask": mask,
        "train_mask": None if row.method is None else p.train_mask.name,
        "steps": None if result is None else result.steps_done,
        "lr": None if row.method is None else p.config.lr,
        "seconds": None if result is None else round(result.seconds, 1),
        "seed": seed,
        "key": cell_key(spec, model, row, mask, seed),
        "device": str(p.device),
        "precision": p.precision,
        **metrics,
    }
    _write_json(cell_path(spec, model, row, mask, seed), cell)


def _write_json(path: Path, value: dict) -> None:
    """A cell's file (or its audit's), which appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(path)


# ------------------------------------------------------------------------------------ the report


def load_seeds(spec: TableSpec) -> dict[tuple[str, str, str], list[dict]]:
    """(model, row key, mask) -> the finished cells of that entry, one per seed of the table's that
    has one, in the table's seed order."""
    cells = {}
    for model in spec.models:
        for row in spec.table_rows(model):
            for mask in spec.masks:
                found = [cell_path(spec, model, row, mask, s) for s in spec.seeds]
                found = [json.loads(p.read_text()) for p in found if p.exists()]
                if found:
                    cells[model, row.key, mask] = found
    return cells


def mean_cell(cells: list[dict]) -> dict:
    """One cell with each set's figures the mean over `cells` (seeds), and `spread`: per set and
    metric, the (lowest, highest) over them."""
    out = dict(cells[0])
    if all("original" in c for c in cells):
        out["original"] = mean_cell([c["original"] for c in cells])
    out["spread"] = {}
    for s in ("forget", "retain"):
        out[s], out["spread"][s] = dict(cells[0][s]), {}
        for name, v in cells[0][s].items():
            values = [c[s].get(name) for c in cells]
            if isinstance(v, (int, float)) and all(isinstance(x, (int, float)) for x in values):
                out[s][name] = sum(values) / len(values)
                out["spread"][s][name] = (min(values), max(values))
    out["seeds"] = [c.get("seed") for c in cells]
    return out


def load_cells(spec: TableSpec) -> dict[tuple[str, str, str], dict]:
    """(model, row key, mask) -> its cell, the mean over the seeds run (`mean_cell`)."""
    return {k: mean_cell(v) for k, v in load_seeds(spec).items()}


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3g}" if isinstance(v, float) and abs(v) >= 10 else f"{v:.3f}" if isinstance(v, float) else str(v)


def _fmt_spread(cell: dict, subset: str, name: str) -> str:
    """A figure as the table prints it: the mean, and over several seeds the lowest and highest in
    brackets ("0.060 (0.050-0.075)")."""
    v = cell[subset].get(name)
    lo_hi = cell.get("spread", {}).get(subset, {}).get(name)
    if v is None or lo_hi is None or len(cell.get("seeds", [])) < 2:
        return _fmt(v)
    return f"{_fmt(float(v))} ({_fmt(float(lo_hi[0]))}-{_fmt(float(lo_hi[1]))})"


def _values(cell: dict) -> list:
    return [cell[s].get(c) for s in ("forget", "retain") for c in COLUMNS]


def _printed(cell: dict) -> list[str]:
    return [_fmt_spread(cell, s, c) for s in ("forget", "retain") for c in COLUMNS]


def shortfall(cell: dict, original: dict) -> str:
    """What a method did to each set, in words, judged by the probe as the app's verdict is:
    forgotten when the forget accuracy fell to half or less, the retain set kept when it fell
    by 0.05 or less; with the retain set's FID change beside it (image quality the probe can
    miss)."""
    f0, f1 = original["forget"]["probe_acc"], cell["forget"]["probe_acc"]
    r0, r1 = original["retain"]["probe_acc"], cell["retain"]["probe_acc"]
    if None in (f0, f1, r0, r1):
        return "no probe figures"
    forgot = "forgets" if f1 <= f0 / 2 else "forgets partly" if f1 < f0 - 0.1 else "does not forget"
    kept = "keeps the retain set" if r0 - r1 <= 0.05 else "damages the retain set"
    text = f"{forgot} ({f0:.2f} -> {f1:.2f}), {kept} ({r0:.2f} -> {r1:.2f})"
    fid0, fid1 = original["retain"].get("fid"), cell["retain"].get("fid")
    if fid0 is not None and fid1 is not None:
        text += f"; retain FID {fid0:.1f} -> {fid1:.1f}"
    return text


def frontier_words(cells: dict, model: str, mask: str, rows: list[Row]) -> str:
    """Whether ours lies on the forget/retain frontier of the probe under `mask`: the baselines
    that forget more and keep more than it (mean probe accuracies over the seeds), or that none does."""
    ours = cells.get((model, "ours", mask))
    f, r = (None, None) if ours is None else (ours["forget"].get("probe_acc"), ours["retain"].get("probe_acc"))
    if f is None or r is None:
        return ""
    beyond = []
    for row in rows:
        c = cells.get((model, row.key, mask))
        if c is None or row.method in (None, "ours"):
            continue
        cf, cr = c["forget"].get("probe_acc"), c["retain"].get("probe_acc")
        if cf is not None and cr is not None and cf <= f and cr >= r and (cf, cr) != (f, r):
            beyond.append(f"{row.title} (forget {cf:.3f}, retain {cr:.3f})")
    if not beyond:
        return f"**Ours and the frontier:** no baseline both forgets more and keeps more than ours (forget {f:.3f}, retain {r:.3f}, probe accuracy)."
    return (
        f"**Ours and the frontier:** not on it. {'; '.join(beyond)} both forget{'s' if len(beyond) == 1 else ''} more and "
        f"keep{'s' if len(beyond) == 1 else ''} more than ours (forget {f:.3f}, retain {r:.3f}, probe accuracy)."
    )


def _seed_words(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {', '.join(map(str, seeds))} (each figure the mean over them, the lowest and highest seed's in brackets)"


def machine() -> str:
    cpu = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    return f"{torch.cuda.get_device_name(0)} ({cpu})" if torch.cuda.is_available() else f"CPU ({cpu})"


def _precisions(cells: dict) -> str:
    """The precisions the cells were computed in (cells from before the setting: float32)."""
    return " and ".join(sorted({c.get("precision", "fp32") for c in cells.values()})) or "-"


def write_results(spec: TableSpec) -> Path:
    from unlearn_core.data.masks import DESCRIPTIONS

    by_seed = load_seeds(spec)
    cells = {k: mean_cell(v) for k, v in by_seed.items()}
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    heads = [f"{s} {c}" for s in ("forget", "retain") for c in COLUMNS]
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "mask", "method", "alpha", "retain_set", "train_mask", "steps", "seconds", "seed", *heads])
        for (model, _key, mask), seeds in by_seed.items():
            for c in seeds:
                w.writerow(
                    [
                        model,
                        mask,
                        c["title"],
                        c["alpha"],
                        c["retain_set"],
                        c["train_mask"],
                        c["steps"],
                        c["seconds"],
                        c["seed"],
                        *_values(c),
                    ]
                )
    lines = [
        "# Results: every method, family and mask",
        "",
        f"Produced by `{spec.command or 'python -m unlearn_core table'}` on {time.strftime('%Y-%m-%d')}, "
        f"machine: {machine()}; {_seed_words(spec.seeds)}; arithmetic {_precisions(cells)}.",
        f"Forget set `{spec.forget}`, retain set `{spec.retain}` (proxy retain set `{spec.proxy}`"
        + ("" if spec.proxy_measured is None else f", its row measured on the real retain classes `{spec.proxy_measured}`")
        + "); every figure on "
        "held-out test images (200 per built-in class). Forget: FID up, embed_cos and probe accuracy down is forgetting. "
        "Retain: all three should stay at the original's. FID and embed_cos use the offline InceptionV3 "
        "(`fid.py`); there is no Inception Score column because that network has no classifier head. "
        f"{_fid_words(spec.fid_images)} FID on so few images is biased upwards against the usual 10k+: compare rows "
        "with each other, not with papers.",
        "",
    ]
    for model in spec.models:
        rows = spec.table_rows(model)
        lines += [f"## {model}", ""]
        for mask in spec.masks:
            original = cells.get((model, "original", mask))
            lines += [f"### {mask}: {DESCRIPTIONS.get(mask, mask)}", ""]
            lines.append("| method | " + " | ".join(heads) + " | what it does |")
            lines.append("|---" * (len(heads) + 2) + "|")
            for row in rows:
                c = cells.get((model, row.key, mask))
                if c is None or row.key.startswith("ours_a"):
                    continue
                note = "" if original is None or row.method is None else shortfall(c, c.get("original", original))
                if "original" in c:
                    note = f"retain figures on `{c['measured_on']}`, the classes it did not train on; there {note}"
                lines.append(f"| {row.title} | " + " | ".join(_printed(c)) + f" | {note} |")
            lines.append("")
            frontier = frontier_words(cells, model, mask, rows)
            lines += [frontier, ""] if frontier else []
            ran = [c for (m, _k, mk), c in cells.items() if m == model and mk == mask and c["train_mask"]]
            if ran:
                # what the cells ran with: the family's defaults when they were computed
                schedules = ", ".join(f"{s:,} steps at learning rate {lr:g}" for s, lr in sorted({(c["steps"], c["lr"]) for c in ran}))
                lines += [f"Unlearned with training mask {', '.join(sorted({c['train_mask'] for c in ran}))}; {schedules}.", ""]
        sweep = [r for r in rows if r.method == "ours" and not r.proxy and r.recipe == "demo"]
        lines += [
            f"### {model}: alpha sweep of ours",
            "",
            "| alpha | mask | forget probe_acc | retain probe_acc | forget fid | retain fid |",
        ]
        lines.append("|---|---|---|---|---|---|")
        for row in sorted(sweep, key=lambda r: cells.get((model, r.key, spec.masks[0]), {}).get("alpha") or 0):
            for mask in spec.masks:
                c = cells.get((model, row.key, mask))
                if c is not None:
                    figures = [
                        _fmt_spread(c, s, name)
                        for s, name in (("forget", "probe_acc"), ("retain", "probe_acc"), ("forget", "fid"), ("retain", "fid"))
                    ]
                    lines.append(f"| {c['alpha']:g} | {mask} | " + " | ".join(figures) + " |")
        lines.append("")
        lines += _audit_lines(spec, model)
    missing = [
        (m, r.key, k, s)
        for m in spec.models
        for r in spec.table_rows(m)
        for k in spec.masks
        for s in spec.seeds
        if s not in cells.get((m, r.key, k), {}).get("seeds", [])
    ]
    if missing:
        lines += [f"**Unfinished:** {len(missing)} cells not run yet (the command resumes where it stopped).", ""]
    tradeoff_plot(cells, spec).save(out / "tradeoff.png")
    lines += [
        "## Trade-off",
        "",
        "Retain probe accuracy against forget probe accuracy: the top left is best"
        + (" (the mean over seeds; whiskers from the lowest seed's to the highest's)." if len(spec.seeds) > 1 else "."),
        "",
        "![trade-off](tradeoff.png)",
        "",
    ]
    path = out / "RESULTS.md"
    path.write_text("\n".join(lines))
    return path


def _audit_lines(spec: TableSpec, model: str) -> list[str]:
    """The audits' headline figures of each method's model (`--audit`), the mean over the seeds
    audited; nothing when no cell of `model` was audited."""
    found = {}
    for row in spec.table_rows(model):
        for mask in spec.masks:
            paths = [audit_path(spec, model, row, mask, s) for s in spec.seeds]
            runs = [json.loads(p.read_text())["figures"] for p in paths if p.exists()]
            if runs:
                found[row.title, mask] = runs
    if not found:
        return []
    names = list(dict.fromkeys(k for runs in found.values() for r in runs for k in r))
    lines = [f"### {model}: audit of each method's model ([audit.md](audit.md))", ""]
    lines += ["| method | mask | " + " | ".join(names) + " | seeds |", "|---" * (len(names) + 3) + "|"]
    for (title, mask), runs in found.items():
        lines.append(f"| {title} | {mask} | " + " | ".join(_mean_of(runs, n) for n in names) + f" | {len(runs)} |")
    return [*lines, ""]


def _mean_of(runs: list[dict], name: str) -> str:
    """A figure's mean over seeds; None (relearning that did not reach its target) is said."""
    values = [r.get(name) for r in runs]
    if any(v is None for v in values):
        return f"not within the budget in {sum(v is None for v in values)} of {len(values)}"
    return _fmt(sum(values) / len(values))


def _probe_spread(cell: dict) -> tuple[float, float, float, float] | None:
    """(forget low, forget high, retain low, retain high) probe accuracy over the cell's seeds."""
    spread = cell.get("spread", {})
    if len(cell.get("seeds", [])) < 2 or "probe_acc" not in spread.get("forget", {}) or "probe_acc" not in spread.get("retain", {}):
        return None
    return (*spread["forget"]["probe_acc"], *spread["retain"]["probe_acc"])


def _apart_note(images: str) -> str:
    """The legend's note for a row whose retain figures come from another set than the others'."""
    if images.startswith("builtin:"):
        return f" (retain: {len(builtin_classes(images))} classes)"
    return f" (retain: {images})"


def tradeoff_plot(cells: dict, spec: TableSpec):
    from unlearn_core.measure.plots import PALETTE, Series, scatter
    from unlearn_core.measure.viz import side_by_side, stack

    lines = []
    for model in spec.models:
        panels = []
        for mask in spec.masks:
            series = []
            for j, row in enumerate(r for r in BASE_ROWS if spec.rows is None or r.key in spec.rows):
                c = cells.get((model, row.key, mask))
                if c and c["forget"]["probe_acc"] is not None:
                    point, spread = (c["forget"]["probe_acc"], c["retain"]["probe_acc"]), _probe_spread(c)
                    name = row.title + (_apart_note(spec.proxy_measured) if _measured_apart(spec, row) else "")
                    series.append(Series(name, [point], PALETTE[j % len(PALETTE)], spreads=[spread] if spread else None))
            sweep = [cells.get((model, r.key, mask)) for r in spec.table_rows(model) if r.key.startswith("ours_a")]
            sweep = [c for c in sweep if c and c["forget"]["probe_acc"] is not None]
            if sweep:
                pts = [(c["forget"]["probe_acc"], c["retain"]["probe_acc"]) for c in sweep]
                spreads = [_probe_spread(c) for c in sweep]
                labels = [f"a={c['alpha']:g}" for c in sweep]
                series.append(
                    Series("Ours, other alpha", pts, (120, 120, 120), labels, radius=3, spreads=spreads if all(spreads) else None)
                )
            panels.append(scatter(series, f"{model}, {mask}", "forget probe_acc", "retain probe_acc", limits=(0, 1, 0, 1)))
        lines.append(side_by_side(panels))
    return stack(lines)
