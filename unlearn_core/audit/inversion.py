"""Decoder inversion: encoder-only unlearning leaves the decoder as it was. An attacker who holds
the weights optimises what the decoder receives (starting from the unlearned encoder's output for
a held-out forget image) so that the decoder's output matches the true image in the hidden region,
under a fixed budget of steps. If the unlearned model's decoder then draws the forgotten class far
better than the same attack on the model that never saw it, the knowledge is still in the decoder:
a limit of encoder-only unlearning that users must know."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from unlearn_core.audit.common import BATCH, AuditConfig
from unlearn_core.compute.precision import compute
from unlearn_core.measure.metrics import eval_mask, probe_truth, psnr_in_region
from unlearn_core.measure.probe import load_probe
from unlearn_core.models.base import I2IModel, composite


def invert(run, model, images: torch.Tensor, labels: torch.Tensor | None, cfg: AuditConfig) -> dict:
    """{"start": {"psnr", "probe_acc"}, "end": {...}, "curve": [[step, mean loss], ...]}: the
    decoder's output from `model`'s own encoding (start) and after `inversion_steps` of Adam on
    the decoder's input (end), on `images` under the run's mask."""
    probe = load_probe()
    labels = probe_truth(probe, images, BATCH) if labels is None else labels
    masks = eval_mask(model, run.mask, len(images), run.seed)
    every = max(1, cfg.inversion_steps // 10)
    found = {"start": ([], []), "end": ([], [])}
    losses = torch.zeros(cfg.inversion_steps // every + 1)
    for i in range(0, len(images), BATCH):
        x, m = images[i : i + BATCH].to(run.device), masks[i : i + BATCH].to(run.device)
        with compute(run.precision, run.device):
            inv = model.decoder_inversion(x, m, seed=run.seed)
        z = [t.detach().float().clone().requires_grad_(True) for t in inv.latents]
        opt = torch.optim.Adam(z, lr=cfg.inversion_lr)
        region = inv.mask
        count = (region.sum() * x.shape[1]).clamp(min=1)
        for step in range(cfg.inversion_steps + 1):
            with compute(run.precision, run.device):
                raw = inv.decode(z).float()
            loss = ((raw - x) ** 2 * region).sum() / count
            if step % every == 0:
                losses[step // every] += loss.item() * len(x)
            if step in (0, cfg.inversion_steps):
                with torch.no_grad():
                    psnr, preds = found["start" if step == 0 else "end"]
                    psnr.append(psnr_in_region(raw, x, region).cpu())
                    preds.append(probe.predict(composite(raw, x, region).cpu()))
            if step == cfg.inversion_steps:
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    out = {}
    for when, (psnr, preds) in found.items():
        acc = (torch.cat(preds) == labels[: len(images)]).float().mean().item()
        out[when] = {"psnr": round(torch.cat(psnr).mean().item(), 3), "probe_acc": round(acc, 4)}
    out["curve"] = [[k * every, round(v / len(images), 5)] for k, v in enumerate(losses.tolist())]
    return out


def inversion(run, cfg: AuditConfig, tick: Callable[[str], None] = lambda what: None) -> dict:
    """{"steps", "lr", "images", "models": {model: invert(...)}, "verdict"} for the original, the
    unlearned model (whose decoder is the original's) and, where there is one, the model that
    never saw the class."""
    if type(run.original).decoder_inversion is I2IModel.decoder_inversion:  # a plug-in family without it
        for name in run.models():
            tick(f"decoder inversion on the {name} model (not offered)")
        return {"models": {}, "verdict": f"The {run.family} family offers no decoder inversion: not measured."}
    n = cfg.inversion_images
    images, labels = run.forget.test[:n], None if run.forget.test_labels is None else run.forget.test_labels[:n]
    models = {}
    for name, model in run.models().items():
        models[name] = invert(run, model, images, labels, cfg)
        tick(f"decoder inversion on the {name} model")
    result = {"steps": cfg.inversion_steps, "lr": cfg.inversion_lr, "images": len(images), "models": models}
    return result | {"verdict": inversion_verdict(result, run.reference_label)}


def inversion_verdict(result: dict, reference_label: str | None) -> str:
    m = result["models"]
    u = m["unlearned"]
    said = (
        f"Decoder inversion ({result['steps']} steps): the unlearned model's decoder, steered from its encoder's output, "
        f"draws the forget set at {u['end']['psnr']:.1f} dB in the hidden region, probe {u['end']['probe_acc']:.2f} "
        f"(before steering: {u['start']['psnr']:.1f} dB, {u['start']['probe_acc']:.2f})"
    )
    if "reference" not in m:
        o = m["original"]["end"]
        return said + (
            f"; the original's under the same attack: {o['psnr']:.1f} dB, probe {o['probe_acc']:.2f}. With no model that never "
            "saw the class to compare with, this does not say whether the decoder holds more of it than such a model would."
        )
    r = m["reference"]["end"]
    said += f"; the same attack on the model that {reference_label}: {r['psnr']:.1f} dB, probe {r['probe_acc']:.2f}"
    p = (u["end"]["probe_acc"] + r["probe_acc"]) / 2
    gap = max(0.05, 2 * math.sqrt(2 * p * (1 - p) / max(1, result["images"])))  # two standard errors of the difference
    if min(u["end"]["probe_acc"], r["probe_acc"]) >= 0.95 and abs(u["end"]["psnr"] - r["psnr"]) <= 1.0:
        said += (
            ". Steered, both decoders draw the class almost exactly at this budget: the attack shows no difference, "
            "neither that the decoder holds the class nor that it does not"
        )
    elif u["end"]["probe_acc"] > r["probe_acc"] + gap or u["end"]["psnr"] > r["psnr"] + 1.0:
        said += ". The decoder still holds what was forgotten: steered, it draws the class better than a model that never saw it"
    else:
        said += ". The decoder holds no more of the class than a model that never saw it"
    return said + "."
