"""Mask sweep: forget and retain probe accuracy as the hidden fraction grows, for centre holes,
outpainting and random patches. An ordinary user with another mask is the attacker: where does
forgetting hold, and where does the visible part still give the class away?"""

from __future__ import annotations

import math
from collections.abc import Callable

from unlearn_core.audit.common import AuditConfig, probe_accuracy
from unlearn_core.data.masks import MaskSpec
from unlearn_core.measure.metrics import eval_mask

KIND_WORDS = {"center": "centre holes", "outpaint": "outpainting", "patches": "random patches"}


def sweep_mask(kind: str, fraction: float) -> MaskSpec:
    """A mask of `kind` hiding about `fraction` of the image: a centred hole of side sqrt(f), a
    visible centred square of side sqrt(1 - f), or that share of the grid's cells."""
    ratio = {"center": math.sqrt(fraction), "outpaint": math.sqrt(1 - fraction), "patches": fraction}[kind]
    return MaskSpec(f"{kind}{round(100 * fraction)}", kind, ratio)


def hidden_share(model, mask: MaskSpec, seed: int) -> float:
    """The share of the image `mask` hides at the model's size and grid."""
    return round(eval_mask(model, mask, 1, seed).mean().item(), 4)


def mask_sweep(run, cfg: AuditConfig, tick: Callable[[str], None] = lambda what: None) -> dict:
    """{"fractions", "images", "kinds": {kind: {"hidden": [...], model: {"forget": [...],
    "retain": [...]}}}, "holds": {kind: fraction or None}, "verdict"}; `tick` after each point."""
    n = cfg.images
    sets = {"forget": (run.forget.test[:n], _labels(run.forget, n)), "retain": (run.retain.test[:n], _labels(run.retain, n))}
    kinds = {}
    for kind in cfg.sweep_kinds:
        rows = {"hidden": []} | {name: {"forget": [], "retain": []} for name in run.models()}
        for f in cfg.sweep_fractions:
            mask = sweep_mask(kind, f)
            rows["hidden"].append(hidden_share(run.original, mask, run.seed))
            for name, model in run.models().items():
                for which, (images, labels) in sets.items():
                    rows[name][which].append(probe_accuracy(run, model, images, labels, mask))
            tick(f"{KIND_WORDS[kind]}, {round(100 * f)}% hidden")
        kinds[kind] = rows
    holds = {kind: holds_from(rows, cfg.sweep_fractions) for kind, rows in kinds.items()}
    result = {
        "fractions": list(cfg.sweep_fractions),
        "images": min(n, len(run.forget.test), len(run.retain.test)),
        "seed": run.seed,
        "kinds": kinds,
        "holds": holds,
    }
    return result | {"verdict": sweep_verdict(result)}


def _labels(s, n: int):
    return None if s.test_labels is None else s.test_labels[:n]


def holds_from(rows: dict, fractions) -> float | None:
    """The smallest hidden fraction from which forgetting holds at every larger one: the unlearned
    model's forget score at most half the original's and at most 0.25; None if it never does."""
    ok = [u <= min(0.25, 0.5 * o) for u, o in zip(rows["unlearned"]["forget"], rows["original"]["forget"], strict=True)]
    start = None
    for f, good in zip(fractions, ok, strict=True):
        start = (f if start is None else start) if good else None
    return start


def sweep_verdict(result: dict) -> str:
    """One sentence: where forgetting holds, and what it costs the retain set at worst."""
    parts, worst = [], (0.0, "", 0.0)
    for kind, start in result["holds"].items():
        words = KIND_WORDS[kind]
        parts.append(f"{words} from {round(100 * start)}% hidden" if start is not None else f"not for {words} at any size tried")
        rows = result["kinds"][kind]
        pairs = zip(result["fractions"], rows["original"]["retain"], rows["unlearned"]["retain"], strict=True)
        worst = max(worst, *((o - u, words, f) for f, o, u in pairs))
    if all(s is None for s in result["holds"].values()):
        head = "Forgetting holds for no mask tried"
    else:
        head = "Forgetting holds (the forget set's probe score at most 0.25 and at most half the original's) for " + "; ".join(parts)
    drop, words, f = worst
    cost = (
        "the retain set keeps the original's probe score everywhere"
        if drop <= 0
        else (f"the retain set's largest loss of probe score is {drop:.2f} ({words}, {round(100 * f)}% hidden)")
    )
    return f"{head}. Along the sweep, {cost}."
