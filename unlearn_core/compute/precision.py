"""Arithmetic precision of a run: float32, TF32 matrix products on a GPU, or bfloat16 autocast
where the hardware does it natively.

`auto` (the default) picks bfloat16 on a CPU with native bfloat16 instructions (AVX512-BF16 or
AMX), TF32 on an NVIDIA GPU that has it (compute capability 8.0 or newer: A100, H100, H200, RTX
30xx and later) and float32 everywhere else. On such a CPU matrix products and the unlearning
steps run faster in bfloat16 than in float32 (docs/precision.md, docs/BENCHMARKS.md); a CPU
without those instructions would emulate bfloat16 and run slower. On an H200 a ViTMAE-Base step
under bfloat16 autocast was slower than with TF32 products (issue 11; docs/precision.md), so GPUs
get TF32: float32 tensors throughout, with the products (and cuDNN's convolutions) rounding their
inputs to a 10-bit mantissa. Not measured by us (no GPU was lent to the session that added it);
`fp32` keeps torch's own settings.

What runs under it: the forward passes of unlearning (the losses, with weights, gradients and the
optimiser in float32, as autocast intends; the backward pass follows the forward's types) and
generation for pictures and metrics. Under CPU autocast the products and convolutions run in
bfloat16, the losses in float32, and everything else in its input's type: a transformer's
residual stream stays float32 (bfloat16 branch outputs are added to it), a UNet's activations are
bfloat16 between convolutions; attention that a gradient flows through (the model being
trained) is written out with its softmax in float32, elsewhere (a frozen teacher, generation,
measuring) it is the fused kernel (models/base.py, `writes_out_attention`). Results of `ours` differ from a float32 run by rounding only
(docs/precision.md; whole-model baselines can land further off); a run records
the precision it used, and the original model's figures are cached per precision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext

import torch

from unlearn_core.errors import UserInputError

PRECISIONS = ("auto", "fp32", "tf32", "bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def gpu_has_tf32(device: torch.device) -> bool:
    """Whether the CUDA device `device` has TF32 tensor cores (compute capability 8.0 or newer)."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def resolve_precision(name: str | None, device: torch.device | str) -> str:
    """The precision a run computes in, "fp32", "tf32" or "bf16", for `name` (one of PRECISIONS;
    None: "auto") on `device`."""
    name = name or "auto"
    if name not in PRECISIONS:
        raise UserInputError(f"unknown precision {name!r}; choose from {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if name == "auto":
        if device.type == "cpu":
            return "bf16" if cpu_has_bf16() else "fp32"
        return "tf32" if device.type == "cuda" and gpu_has_tf32(device) else "fp32"
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserInputError("this GPU does not support bfloat16; use --precision fp32 or auto")
    if name == "tf32" and not (device.type == "cuda" and gpu_has_tf32(device)):
        raise UserInputError("TF32 needs an NVIDIA GPU of compute capability 8.0 or newer (A100, H100, RTX 30xx...); use --precision auto")
    return name


@contextmanager
def _tf32(allowed: bool = True) -> Iterator[None]:
    """TF32 products and convolutions inside (or, `allowed` False, none), torch's settings as they
    were after. The switches are process-wide, not per thread."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def compute(precision: str | None, device: torch.device | str):
    """The context a forward pass runs in at `precision` (resolved here when "auto") on `device`.
    Autocast state is per thread: enter it in the thread that computes."""
    device = torch.device(device)
    resolved = resolve_precision(precision, device)
    if resolved == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return training(resolved)


def training(precision: str):
    """The context a whole training step runs in, backward pass and update included, at a resolved
    `precision`: TF32 products under "tf32" (the backward pass does not follow the forward's mode
    as it follows autocast's types); nothing under the others."""
    return _tf32() if precision == "tf32" else nullcontext()


def describe_precision(precision: str) -> str:
    """'bfloat16', 'TF32' or 'float32' for a resolved precision."""
    return {"bf16": "bfloat16", "tf32": "TF32"}.get(precision, "float32")


def instruments_in_fp32() -> ExitStack:
    """The context the measuring networks (the probe, the Inception features) run in: float32
    whatever the run computes in, so that a metric reads the same images the same way."""
    stack = ExitStack()
    stack.enter_context(torch.autocast("cpu", enabled=False))
    if torch.cuda.is_available():
        stack.enter_context(torch.autocast("cuda", enabled=False))
        stack.enter_context(_tf32(False))
    return stack
