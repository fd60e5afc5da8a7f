"""What the attacks share: the probe's accuracy of a model's outputs, per-image errors, ROC AUC."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from unlearn_core.compute.precision import compute
from unlearn_core.data.masks import MaskSpec
from unlearn_core.errors import UserInputError
from unlearn_core.measure.metrics import eval_mask, mse_in_region, probe_truth
from unlearn_core.measure.probe import load_probe
from unlearn_core.models.base import Generation

BATCH = 250  # images generated at once, as a run measures them (`measure.metrics.evaluate_set`)


class AuditStopped(Exception):
    """Raised inside an attack when the user asked the audit to stop."""


@dataclass(frozen=True)
class AuditEvent:
    """Progress: `done` of `total` parts, the part just finished, seconds so far."""

    done: int
    total: int
    what: str
    seconds: float


@dataclass
class Ticker:
    """What an attack calls after each part (`tick(what)`): progress to `on_progress`, then
    AuditStopped if `should_stop` says so; long parts ask `stop_asked()` within themselves."""

    on_progress: Callable[[AuditEvent], None] | None = None
    should_stop: Callable[[], bool] | None = None
    total: int = 0
    done: int = 0
    start: float = field(default_factory=time.perf_counter)

    def __call__(self, what: str) -> None:
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(AuditEvent(self.done, self.total, what, time.perf_counter() - self.start))
        if self.stop_asked():
            raise AuditStopped(f"stopped after {what}")

    def stop_asked(self) -> bool:
        return self.should_stop is not None and self.should_stop()


@dataclass(frozen=True)
class AuditConfig:
    """The size of each attack. The defaults keep a full audit of the default MAE run within that
    run's own time on a 2-core CPU (docs/BENCHMARKS.md, 'The audit')."""

    images: int = 100  # held-out images per set that probe scores are measured on
    relearn_k: tuple[int, ...] = (8, 32)  # forget images the relearning attacker holds
    relearn_steps: int = 40  # fine-tuning budget of the relearning attack
    relearn_every: int = 10  # steps between its measurements
    membership_images: int = 200  # members and as many non-members
    membership_draws: int = 2  # masks (and, for diffusion, timesteps) each image's loss is averaged over
    inversion_images: int = 50  # held-out forget images the decoder is steered to draw
    inversion_steps: int = 100  # Adam steps on the decoder's input
    inversion_lr: float = 0.05
    sweep_fractions: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    sweep_kinds: tuple[str, ...] = ("center", "outpaint", "patches")

    def check(self) -> None:
        if self.images < 2 or self.membership_images < 2:
            raise UserInputError("an audit needs at least 2 held-out images per set")
        if not self.relearn_k or min(self.relearn_k) < 1:
            raise UserInputError(f"k (forget images of the relearning attack) must be at least 1, got {list(self.relearn_k)}")
        if min(self.relearn_steps, self.relearn_every, self.membership_draws, self.inversion_images, self.inversion_steps) < 1:
            raise UserInputError(
                "relearning steps, its measuring interval, membership draws and inversion images and steps must be at least 1"
            )
        if not self.inversion_lr > 0:
            raise UserInputError(f"the inversion's learning rate must be positive, got {self.inversion_lr}")
        if not all(0 < f < 1 for f in self.sweep_fractions):
            raise UserInputError(f"hidden fractions must lie between 0 and 1, got {list(self.sweep_fractions)}")
        unknown = set(self.sweep_kinds) - {"center", "outpaint", "patches"}
        if unknown:
            raise UserInputError(f"unknown mask kind {sorted(unknown)[0]!r}; choose from center, outpaint, patches")


def generations(run, model, images: torch.Tensor, mask: MaskSpec, seed: int) -> Iterator[tuple[torch.Tensor, Generation]]:
    """(images on the run's device, `model`'s output for them) batch by batch, under `mask` and
    `seed`, at the run's precision and sampling steps."""
    masks = eval_mask(model, mask, len(images), seed)
    with compute(run.precision, run.device):
        for i in range(0, len(images), BATCH):
            x, m = images[i : i + BATCH].to(run.device), masks[i : i + BATCH].to(run.device)
            yield x, model.generate(x, m, seed=seed, steps=run.sampling_steps)


@torch.no_grad()
def probe_accuracy(run, model, images: torch.Tensor, labels: torch.Tensor | None, mask: MaskSpec, seed: int | None = None) -> float:
    """The share of `model`'s composite outputs for `images` under `mask` that the probe calls by
    their true class, or (`labels` None: an uploaded set) as it calls the true images (the run's
    seed, precision and sampling steps unless `seed` is given)."""
    probe = load_probe()
    if labels is None:
        labels = probe_truth(probe, images, BATCH)
    gens = generations(run, model, images, mask, run.seed if seed is None else seed)
    preds = [probe.predict(gen.composite.float().cpu()) for _, gen in gens]
    return round((torch.cat(preds) == labels[: len(images)]).float().mean().item(), 4)


@torch.no_grad()
def region_errors(run, model, images: torch.Tensor, mask: MaskSpec, seed: int) -> torch.Tensor:
    """(N,) each image's mean squared error in the region `model` generated under `mask`."""
    return torch.cat([mse_in_region(gen.raw.float(), x, gen.mask).cpu() for x, gen in generations(run, model, images, mask, seed)])


def roc_auc(members: torch.Tensor, others: torch.Tensor) -> float:
    """The probability that a member scores higher than a non-member (ties count half): the area
    under the ROC curve of the score as a membership test; 0.5 when it cannot tell them apart."""
    m, o = members.double().flatten(), others.double().flatten()
    higher = (m[:, None] > o[None, :]).double().mean().item()
    ties = (m[:, None] == o[None, :]).double().mean().item()
    return round(higher + ties / 2, 4)


def auc_noise(n_members: int, n_others: int) -> float:
    """The standard deviation of the AUC of a score that cannot tell the two groups apart (Mann-
    Whitney): an AUC farther than twice this from 0.5 tells them apart."""
    return math.sqrt((n_members + n_others + 1) / (12 * n_members * n_others))
