"""The unlearning loop: one method, one optimiser, events for live plots, cancellation.

Follows the official code of Li et al. (ICLR 2024, jpmorganchase/i2i_mage): AdamW (0.9, 0.95),
weight decay 0.05, gradient clipping at 3.0, cosine learning-rate schedule, noise drawn from the
forget batch's mean and std every step. The original model is never changed: the engine trains a
copy (the student) against another frozen copy (the teacher).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch

from unlearn_core.compute.distributed import average, average_gradients, rank_and_world, share
from unlearn_core.compute.precision import PRECISIONS, compute, resolve_precision, training
from unlearn_core.data.masks import MaskSpec
from unlearn_core.data.noise import noise_like
from unlearn_core.errors import RunFailed, UserInputError
from unlearn_core.methods import UnlearnBatch, get_method
from unlearn_core.models.registry import RECIPES, get_family
from unlearn_core.models.train import lr_factor

MAX_STEPS = 100_000  # a run longer than this is a typo, not a wish (a day on a CPU)
MAX_BATCH = 4096  # forget and retain batch each; more would exhaust memory before doing anything useful
CACHE_BYTES = 256 * 2**20  # the most the teacher's cached retain embeddings may take


def default_alpha(method: str, model=None, recipe: str = "demo") -> float:
    """The forget-term weight `method` uses on `model` (a model or a model class) unless told
    otherwise: the one its family's `recipe` names for the method (`Defaults.alpha`), else the
    method's own."""
    own = get_method(method).default_alpha
    return own if model is None else get_family(model.family).recipe(recipe).alpha_for(method, own)


def default_train_mask(method: str, model, recipe: str = "demo") -> str | None:
    """The mask `method` trains with on `model` (a model or a model class) unless told otherwise:
    the method's own (`Method.train_mask`: FT's random masks), else the family's recipe's; None
    means the run's evaluation mask itself."""
    return get_method(method).train_mask or get_family(model.family).recipe(recipe).train_mask


@dataclass(frozen=True)
class UnlearnConfig:
    method: str = "ours"
    alpha: float | None = None  # None: the method's default on the model's family (`default_alpha`)
    steps: int | None = None  # None: the model family's default (`Family.defaults`)
    batch_size: int = 32
    lr: float | None = None  # None: the model family's default (`Family.defaults`)
    weight_decay: float = 0.05
    grad_clip: float = 3.0
    seed: int = 0
    # The family's settings unset fields come from: "demo" (`Family.defaults`) or "official" (the
    # official code's, `Family.official`); see `registry.RECIPES`.
    recipe: str = "demo"
    # Arithmetic (precision.py): "auto" (bfloat16 forward passes on a CPU that has it natively,
    # TF32 products on a GPU that has them, float32 elsewhere), "fp32", "tf32" or "bf16". A
    # finished run's config holds the one used.
    precision: str = "auto"

    def resolved_alpha(self) -> float:
        return get_method(self.method).default_alpha if self.alpha is None else self.alpha

    def for_model(self, model) -> UnlearnConfig:
        """This config with `alpha`, `steps` and `lr` filled in for `model`: its family's recipe's
        where unset."""
        family = get_family(model.family).recipe(self.recipe)
        return replace(
            self,
            alpha=default_alpha(self.method, model, self.recipe) if self.alpha is None else self.alpha,
            steps=family.steps if self.steps is None else self.steps,
            lr=family.lr if self.lr is None else self.lr,
        )

    def validate(self) -> None:
        get_method(self.method)
        if self.recipe not in RECIPES:
            raise UserInputError(f"unknown recipe {self.recipe!r}; choose from {', '.join(RECIPES)}")
        if (self.steps is not None and self.steps < 1) or self.batch_size < 1:
            raise UserInputError("steps and batch size must be at least 1")
        if self.steps is not None and self.steps > MAX_STEPS:
            raise UserInputError(f"steps must be at most {MAX_STEPS:,}, got {self.steps:,}")
        if self.batch_size > MAX_BATCH:
            raise UserInputError(f"batch size must be at most {MAX_BATCH:,}, got {self.batch_size:,}")
        if not 0 <= self.seed < 2**31:
            raise UserInputError(f"seed must be a whole number from 0 to {2**31 - 1:,}, got {self.seed}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserInputError(f"learning rate must be positive, got {self.lr}")
        if self.precision not in PRECISIONS:
            raise UserInputError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if not (self.resolved_alpha() >= 0 and math.isfinite(self.resolved_alpha())):
            raise UserInputError(f"alpha must be zero or positive, got {self.alpha}")


@dataclass(frozen=True)
class StepEvent:
    """Sent to `on_step` after every step. `model` is the student being trained (read-only use)."""

    step: int  # steps done so far, 1-based
    total_steps: int
    retain: float
    forget: float
    total: float
    lr: float
    model: torch.nn.Module = field(repr=False)


@dataclass
class UnlearnResult:
    model: torch.nn.Module  # the unlearned copy (on the run's device, eval mode)
    history: list[dict]  # one row per step: step, retain, forget, total
    steps_done: int
    stopped: bool  # True when `should_stop` ended the run early
    seconds: float
    config: UnlearnConfig


@contextmanager
def memory_said(what: str, hint: str):
    """An out-of-memory error inside becomes a RunFailed saying what ran out and what to try; the
    GPU's cache is released so that the process can go on serving."""
    try:
        yield
    except torch.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise RunFailed(f"out of memory while {what}; {hint}") from None


def _freeze_except(model: torch.nn.Module, params: list[torch.nn.Parameter]) -> None:
    model.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)


@torch.no_grad()
def cached_retain_targets(method, teacher, retain: torch.Tensor, mask: MaskSpec, cfg: UnlearnConfig, grid: int) -> torch.Tensor | None:
    """The teacher's embedding of every retain image under `mask`, computed once before the first
    step, where no step could compute anything else: the method's loss takes
    `methods.common.teacher_retain`, the mask is the same whatever the step, and the family's
    `encode` ignores its seed. Only when it saves work (the run draws more retain images than
    there are) and fits in CACHE_BYTES; None otherwise."""
    if not (method.teacher_retain and mask.fixed and teacher.seed_free_encode):
        return None
    if len(retain) > cfg.steps * cfg.batch_size:
        return None
    chunk = min(2 * cfg.batch_size, len(retain))  # a forward pass only: twice a step's batch fits
    m = mask.build(chunk, retain.shape[-1], grid=grid).to(retain.device)  # the same for every image
    parts = [teacher.encode(retain[:chunk], m)]
    if parts[0][:1].nbytes * len(retain) > CACHE_BYTES:
        return None
    for i in range(chunk, len(retain), chunk):
        x = retain[i : i + chunk]
        parts.append(teacher.encode(x, m[: len(x)]))
    return torch.cat(parts)


def unlearn(
    original: torch.nn.Module,
    forget: torch.Tensor,
    retain: torch.Tensor,
    mask: MaskSpec,
    cfg: UnlearnConfig = UnlearnConfig(),
    device: torch.device | str = "cpu",
    on_step: Callable[[StepEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> UnlearnResult:
    """Unlearn `forget` (N, C, H, W) while keeping `retain`; returns a new model."""
    cfg = cfg.for_model(original)
    cfg.validate()
    if len(forget) == 0 or len(retain) == 0:
        raise UserInputError("both the forget set and the retain set need at least one image")
    world = rank_and_world()[1]
    if cfg.batch_size % world:
        raise UserInputError(f"the batch size ({cfg.batch_size}) must divide among the {world} processes")
    method, alpha, device = get_method(cfg.method), cfg.resolved_alpha(), torch.device(device)
    cfg = replace(cfg, precision=resolve_precision(cfg.precision, device))
    teacher = copy.deepcopy(original).to(device).eval().requires_grad_(False)
    # Dropout stays off (eval mode) so that at step 0 the student equals the teacher exactly (up to
    # rounding under bfloat16, where the frozen teacher's attention is the fused kernel).
    student = copy.deepcopy(original).to(device).eval()
    trainable = student.encoder_parameters() if method.trains == "encoder" else student.trainable_parameters()
    _freeze_except(student, trainable)
    # foreach: one call per operation over all tensors, where the CPU default loops over them in
    # Python; the same numbers, a slightly quicker short step (docs/BENCHMARKS.md, 'AdamW over all
    # tensors at once').
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay, foreach=True)
    warmup = min(20, cfg.steps // 10 + 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, warmup, cfg.steps))
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    cpu_g = torch.Generator().manual_seed(cfg.seed)
    forget, retain = forget.to(device), retain.to(device)
    grid = student.grid
    history, stopped, start = [], False, time.perf_counter()
    # TF32 (on a GPU) holds for the whole step; bfloat16 autocast for the forward passes only.
    with memory_said(f"unlearning (batch {cfg.batch_size} on {device})", "try a smaller batch size"), training(cfg.precision):
        with compute(cfg.precision, device):
            retain_targets = cached_retain_targets(method, teacher, retain, mask, cfg, grid)
        for step in range(cfg.steps):
            if should_stop is not None and should_stop():
                stopped = True
                break
            xf = forget[torch.randint(len(forget), (cfg.batch_size,), generator=cpu_g)]
            ri = torch.randint(len(retain), (cfg.batch_size,), generator=cpu_g)
            xr = retain[ri]
            target = None if retain_targets is None else share(retain_targets[ri.to(device)])
            seed = cfg.seed * 1_000_003 + step
            noise = noise_like(xf, g)
            # One draw for both halves, as if the forget and retain images were one batch (as in
            # the official code, where they are): a mask drawn per step then hides as many cells
            # in every image of the step, and each model encodes both halves in one pass.
            masks = mask.build(2 * cfg.batch_size, xf.shape[-1], seed=2 * seed, grid=grid).to(device)
            forget_mask, retain_mask = masks[: cfg.batch_size], masks[cfg.batch_size :]
            # With several processes each takes its share of the same global batch (distributed.py).
            xf, xr, noise, forget_mask, retain_mask = (share(t) for t in (xf, xr, noise, forget_mask, retain_mask))
            batch = UnlearnBatch(
                forget=xf, retain=xr, noise=noise, forget_mask=forget_mask, retain_mask=retain_mask, seed=seed, retain_target=target
            )
            with compute(cfg.precision, device):
                total, terms = method.loss(student, teacher, batch, alpha)
            # One host sync a step for the three logged values (averaged over processes when several).
            retain_v, forget_v, total_v = average(torch.stack([terms["retain"], terms["forget"], total]).detach()).tolist()
            if not math.isfinite(total_v):
                raise RunFailed(f"the loss became {total_v} at step {step + 1}; try a lower learning rate or alpha")
            opt.zero_grad(set_to_none=True)
            total.backward()
            average_gradients(trainable)
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip, foreach=True)
            opt.step()
            sched.step()
            # Autocast keeps bfloat16 copies of the weights until its outermost context ends; were
            # the caller's autocast around this loop, the next step would read this step's stale
            # copies, and the forget loss stalls (docs/BENCHMARKS.md, 'CPU, fourth session').
            torch.clear_autocast_cache()
            row = {"step": step + 1, "retain": retain_v, "forget": forget_v, "total": total_v}
            history.append(row)
            if on_step is not None:
                on_step(StepEvent(total_steps=cfg.steps, lr=sched.get_last_lr()[0], model=student, **row))
    student.requires_grad_(False)
    return UnlearnResult(student.eval(), history, len(history), stopped, time.perf_counter() - start, cfg)
