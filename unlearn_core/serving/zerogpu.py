"""Hugging Face ZeroGPU: where the GPU work runs on a Space that borrows its GPU per call.

On a ZeroGPU Space the process has no GPU of its own; a function decorated with `spaces.GPU`
gets one for at most `duration` seconds, in a worker process: its arguments and what it returns
(or yields) are pickled across. `gpu(duration)` applies `spaces.GPU(duration=duration)` when the
`spaces` package is importable (it is installed on every Space, and its decorator does nothing off
ZeroGPU), and returns the function unchanged otherwise, so the app runs the same code either way.

`run_seconds(spec)` is the duration asked for an unlearning run: a fixed start-up cost, the
requested steps at a per-step time that grows with the model's size and the batch, and the
evaluation (generations under every measured mask, FID features when asked). The per-step times
come from steps measured on an H200 (ZeroGPU's GPU) for the 1.4 M-parameter MAE at batch 32+32
and an 86 M-parameter ViTMAE-Base (docs/BENCHMARKS.md, 'GPU'). Asking too little aborts the run;
asking too much only lowers the visitor's priority in ZeroGPU's queue, so the estimate is generous
and capped at `MAX_SECONDS`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

MIN_SECONDS = 30
MAX_SECONDS = 600
START_SECONDS = 20.0  # moving the model to the GPU, preparing the sets, the first kernels
STEP_SECONDS = 0.03  # one step of a tiny model at batch 32+32 (launch-bound)
STEP_SECONDS_PER_PARAMETER = 0.8e-9  # what a step adds per parameter at batch 32+32
EVAL_SECONDS = 10.0  # generating and scoring the held-out sets under one mask
FID_SECONDS = 20.0  # Inception features of both sets, original and unlearned
IMAGE_SECONDS = 15  # one user image through both models
SAFETY = 1.5


def available() -> bool:
    """Whether the `spaces` package is importable (on a Hugging Face Space)."""
    return importlib.util.find_spec("spaces") is not None


def gpu(duration: int | Callable[..., int]):
    """Decorator: `spaces.GPU(duration=duration)` when `spaces` is importable, else nothing.

    `duration` is seconds, or a function of the decorated function's arguments returning them."""

    def wrap(fn):
        if not available():
            return fn
        import spaces

        return spaces.GPU(duration=duration)(fn)

    return wrap


def run_seconds(spec) -> int:
    """Seconds of GPU to ask for one unlearning run (a `pipeline.RunSpec`); the minimum for a
    spec that cannot run (the run itself then reports why, at once)."""
    from unlearn_core.errors import UserInputError
    from unlearn_core.models.checkpoints import cached_model
    from unlearn_core.run.pipeline import evaluation_masks

    try:
        model = cached_model(spec.model, spec.checkpoint)
        masks = 1 + len(evaluation_masks(spec.eval_masks))
    except UserInputError:
        return MIN_SECONDS
    parameters = sum(p.numel() for p in model.parameters())
    cfg = spec.config.for_model(model)
    steps = cfg.steps
    per_step = (STEP_SECONDS + STEP_SECONDS_PER_PARAMETER * parameters) * max(1.0, cfg.batch_size / 32)
    sampling = model.sampling_steps or 1
    evaluation = masks * EVAL_SECONDS * max(1.0, sampling / 4) + (FID_SECONDS if spec.image_metrics else 0.0)
    seconds = SAFETY * (START_SECONDS + steps * per_step + evaluation)
    return int(min(MAX_SECONDS, max(MIN_SECONDS, seconds)))
