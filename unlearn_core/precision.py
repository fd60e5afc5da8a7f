"""Arithmetic precision of a run: float32, or bfloat16 autocast where the hardware does it natively.

`auto` (the default) picks bfloat16 on a CPU with native bfloat16 instructions (AVX512-BF16 or
AMX) and float32 everywhere else. On such a CPU (2 cores of an AMD EPYC with AVX512-BF16) a
matrix product runs about 4x faster in bfloat16 and the default MAE unlearning step 1.8x faster
(docs/BENCHMARKS.md); a CPU without those instructions would emulate bfloat16 and run slower, and
on an H200 bfloat16 autocast was slower than TF32 for a ViTMAE-Base step (issue 11), so those keep
float32.

What runs under it: the forward passes of unlearning (the losses, with weights, gradients and the
optimiser in float32, as autocast intends; the backward pass follows the forward's types) and
generation for pictures and metrics. Under CPU autocast the products and convolutions run in
bfloat16, the losses in float32, and everything else in its input's type: a transformer's
residual stream stays float32 (bfloat16 branch outputs are added to it), a UNet's activations are
bfloat16 between convolutions; our attention keeps its softmax in float32. Results differ from a float32 run by rounding only (measured in README "Precision"); a run records
the precision it used, and the original model's figures are cached per precision.
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext

import torch

from .errors import UserInputError

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def resolve_precision(name: str | None, device: torch.device | str) -> str:
    """The precision a run computes in, "fp32" or "bf16", for `name` ("auto", "fp32" or "bf16"; None:
    "auto") on `device`."""
    name = name or "auto"
    if name not in PRECISIONS:
        raise UserInputError(f"unknown precision {name!r}; choose from {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if name == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserInputError("this GPU does not support bfloat16; use --precision fp32 or auto")
    return name


def compute(precision: str | None, device: torch.device | str):
    """The context a forward pass runs in at `precision` (resolved here when "auto") on `device`.
    Autocast state is per thread: enter it in the thread that computes."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def instruments_in_fp32() -> ExitStack:
    """The context the measuring networks (the probe, the Inception features) run in: float32
    whatever the run computes in, so that a metric reads the same images the same way."""
    stack = ExitStack()
    stack.enter_context(torch.autocast("cpu", enabled=False))
    if torch.cuda.is_available():
        stack.enter_context(torch.autocast("cuda", enabled=False))
    return stack
