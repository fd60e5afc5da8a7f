"""Membership inference: can an attacker who holds the model tell the forget images it was
unlearned on (members: the forget set's training images) from held-out images of the same set
(non-members)? Three scores, each an ROC AUC (0.5: cannot tell; far from 0.5 either way: can):

- `reconstruction`: the error of the model's output in the hidden region under the run's mask
  (the reconstruction distance used against masked image models, arXiv 2408.06825);
- `loss`: the family's own training loss on the image, averaged over several random masks (and,
  for diffusion, timesteps with their noise: the per-timestep denoising error SecMI builds on),
  the classic loss attack;
- `loss_change` (the unlearned model only): that loss minus the original's on the same draws,
  the attack of an adversary who holds the model before and after unlearning (Chen et al., CCS
  2021), the strongest of the three here.

A score is oriented so that "lower error means member" gives an AUC above 0.5. The original saw
the members in training, so its AUC measures ordinary memorisation; the model that never saw the
class is the yardstick for "as if never seen"."""

from __future__ import annotations

from collections.abc import Callable

import torch

from unlearn_core.audit.common import AuditConfig, auc_noise, region_errors, roc_auc
from unlearn_core.compute.precision import compute
from unlearn_core.data.masks import parse_mask

SCORE_WORDS = {
    "reconstruction": "error in the hidden region",
    "loss": "the model's own training loss",
    "loss_change": "change of that loss since the original",
}


def candidates(run, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(members, non-members): `n` of the forget set's training images (a seeded draw) and its
    first `n` held-out images (fewer when the set has fewer)."""
    n = min(n, len(run.forget.test), len(run.forget.train))
    pick = torch.randperm(len(run.forget.train), generator=torch.Generator().manual_seed(run.seed))[:n]
    return run.forget.train[pick], run.forget.test[:n]


@torch.no_grad()
def objective_losses(run, model, images: torch.Tensor, draws: int) -> torch.Tensor:
    """(N,) each image's training loss, averaged over `draws` random masks; draw j of every image
    uses the same mask seed, so two models (and members and non-members) meet the same draws."""
    random = parse_mask("random")
    out = torch.zeros(len(images))
    with compute(run.precision, run.device):
        for j in range(draws):
            seed = 7919 * (run.seed + 1) + j
            m = random.build(1, images.shape[-1], seed=seed, grid=model.grid).to(run.device)
            for i in range(len(images)):
                out[i] += model.training_loss(images[i : i + 1].to(run.device), m, seed=seed).float().item()
    return out / draws


def membership(run, cfg: AuditConfig, tick: Callable[[str], None] = lambda what: None) -> dict:
    """{"members", "non_members", "noise" (the AUC's spread when nothing tells them apart),
    "models": {model: {score: auc}}, "verdict"}; `tick` after each model."""
    members, others = candidates(run, cfg.membership_images)
    both = torch.cat([members, others])
    k = len(members)
    losses, models = {}, {}
    for name, model in run.models().items():
        err = region_errors(run, model, both, run.mask, run.seed)
        losses[name] = objective_losses(run, model, both, cfg.membership_draws)
        scores = {"reconstruction": -err, "loss": -losses[name]}
        if name == "unlearned":
            scores["loss_change"] = -(losses[name] - losses["original"])
        models[name] = {score: roc_auc(s[:k], s[k:]) for score, s in scores.items()}
        tick(f"membership scores of the {name} model")
    result = {"members": k, "non_members": len(others), "noise": round(auc_noise(k, len(others)), 4), "models": models}
    return result | {"verdict": membership_verdict(result, run.reference_label)}


def advantage(aucs: dict) -> tuple[str, float]:
    """The score that tells members apart best, and its AUC's distance from 0.5."""
    score = max(aucs, key=lambda s: abs(aucs[s] - 0.5))
    return score, abs(aucs[score] - 0.5)


def membership_verdict(result: dict, reference_label: str | None) -> str:
    noise = 2 * result["noise"]
    score, gap = advantage(result["models"]["unlearned"])
    auc = result["models"]["unlearned"][score]
    if gap <= noise:
        said = f"An attacker cannot tell the unlearned images from held-out ones: the best score's AUC is {auc:.2f}, within {noise:.2f} of chance (0.5)"
    else:
        said = f"An attacker can tell the unlearned images from held-out ones: AUC {auc:.2f} by {SCORE_WORDS[score]} (chance: 0.5)"
    models = result["models"]
    said += f"; the best score on the original gives {models['original'][advantage(models['original'])[0]]:.2f}"
    if "reference" in models:
        said += f", on the model that {reference_label} {models['reference'][advantage(models['reference'])[0]]:.2f}"
    return said + "."
