"""Relearning: an attacker who holds the weights and k images of the forgotten class fine-tunes
the whole model with its own training objective (random masks, as it was trained) and watches the
forget score on held-out images. Knowledge that was only suppressed comes back in a few steps; the
model that never saw the class shows how a model without it behaves under the same attack."""

from __future__ import annotations

import torch

from unlearn_core.audit.common import AuditConfig, Ticker, probe_accuracy
from unlearn_core.data.masks import parse_mask
from unlearn_core.errors import UserInputError
from unlearn_core.run.engine import UnlearnConfig, unlearn


def relearn_curve(run, model, k: int, cfg: AuditConfig, images, labels, tick: Ticker) -> list[list[float]]:
    """[[step, forget probe accuracy], ...] while fine-tuning `model` (a copy: the model itself is
    left as it is) on `k` of the forget set's training images, measured every `relearn_every`
    steps and before the first; it ends early when a stop is asked (`tick`)."""
    pick = torch.randperm(len(run.forget.train), generator=torch.Generator().manual_seed(run.seed + 1))[:k]
    attack = run.forget.train[pick]
    curve = [[0, probe_accuracy(run, model, images, labels, run.mask)]]

    def on_step(e) -> None:
        if e.step % cfg.relearn_every == 0 or e.step == e.total_steps:
            curve.append([e.step, probe_accuracy(run, e.model, images, labels, run.mask)])

    config = UnlearnConfig(method="finetune", steps=cfg.relearn_steps, batch_size=k, seed=run.seed, precision=run.precision)
    unlearn(model, attack, attack, parse_mask("random"), config, run.device, on_step, should_stop=tick.stop_asked)
    return curve


def steps_to(curve: list[list[float]], target: float) -> int | None:
    """The first measured step at which the score reached `target`; None if it never did."""
    return next((int(step) for step, acc in curve if acc >= target), None)


def relearning(run, cfg: AuditConfig, tick: Ticker | None = None) -> dict:
    """{"target" (half the original's forget score), "k": {k: {model: {"curve", "steps_to_half"}}},
    "lr", "steps", "verdict"}: curves for the unlearned model and, where there is one, the model
    that never saw the class; `tick` after each curve."""
    tick = tick or Ticker()
    if max(cfg.relearn_k) > len(run.forget.train):
        raise UserInputError(
            f"k = {max(cfg.relearn_k)} is more than the forget set's {len(run.forget.train)} training images: choose a smaller k"
        )
    n = cfg.images
    images, labels = run.forget.test[:n], None if run.forget.test_labels is None else run.forget.test_labels[:n]
    original = probe_accuracy(run, run.original, images, labels, run.mask)
    target = round(original / 2, 4)
    attacked = {name: m for name, m in run.models().items() if name != "original"}
    by_k = {}
    for k in cfg.relearn_k:
        by_k[str(k)] = {}
        for name, model in attacked.items():
            curve = relearn_curve(run, model, k, cfg, images, labels, tick)
            by_k[str(k)][name] = {"curve": curve, "steps_to_half": steps_to(curve, target)}
            tick(f"relearning the {name} model from {k} images")
    lr = UnlearnConfig(method="finetune").for_model(run.original).lr
    result = {"original": original, "target": target, "k": by_k, "steps": cfg.relearn_steps, "lr": lr, "images": len(images)}
    return result | {"verdict": relearning_verdict(result, run.reference_label)}


def relearning_verdict(result: dict, reference_label: str | None) -> str:
    """One sentence: how fast the forget score comes back, beside the reference's."""
    first = next(iter(result["k"].values()))
    start = first["unlearned"]["curve"][0][1]
    ref = first.get("reference")
    ref_words = "" if ref is None else f"; the model that {reference_label} scores {ref['curve'][0][1]:.2f} before any fine-tuning"
    if start >= result["target"]:
        return f"Nothing to relearn: the forget score ({start:.2f}) is above half the original's ({result['target']:.2f}) before any fine-tuning{ref_words}."
    parts = []
    for k, models in result["k"].items():
        u = models["unlearned"]
        end = u["curve"][-1][1]
        if u["steps_to_half"] is None:
            parts.append(
                f"from {k} images the forget score stays below half the original's for {result['steps']} steps ({start:.2f} -> {end:.2f})"
            )
        else:
            parts.append(f"from {k} images it is back at half the original's after {u['steps_to_half']} steps ({start:.2f} -> {end:.2f})")
    said = "; ".join(parts)
    said = said[0].upper() + said[1:] + ref_words
    back = {k: m["unlearned"]["steps_to_half"] for k, m in result["k"].items()}
    if ref is None:
        return said + ". Without a model that never saw the class to compare with, this does not tell suppressed knowledge from removed."
    if ref["curve"][0][1] >= result["target"]:
        if any(s is not None for s in back.values()):
            return said + ", so a fast return is also what a model without the knowledge shows."
        return said + ", which the unlearned model does not reach: it draws the class less than a model that never saw it."
    slower = [
        k for k, m in result["k"].items()
        if back[k] is not None and (m["reference"]["steps_to_half"] is None or m["reference"]["steps_to_half"] >= 2 * back[k])
    ]  # fmt: skip
    if len(slower) == len(back):
        return said + ". It comes back at least twice as fast as in the model that never had it: the knowledge was suppressed, not removed."
    if slower:
        return (
            said
            + f". Only from {' and '.join(slower)} images does it come back twice as fast as in the model that never had it: mixed evidence."
        )
    return said + ". It comes back no faster than in the model that never had it."
