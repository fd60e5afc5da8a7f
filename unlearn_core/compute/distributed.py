"""Data-parallel unlearning over several processes (GPUs or nodes) through Hugging Face Accelerate.

`accelerate launch -m unlearn_core unlearn ...` starts one process per device. Every process draws
the same global batch (same seed), works on its share (rank r takes items r, r + N, r + 2N, ...),
and the gradients are averaged across processes before each optimiser step, so the run follows
the single-process run with the same global batch and seed (exactly for MAE, which draws nothing
per item; the iterative families draw their per-item noise for the share they see). Only the main
process measures the result and writes outputs; the others stop after unlearning.

Nothing here does anything in a single process: `setup()` returns the requested device.
"""

from __future__ import annotations

import os

import torch

from unlearn_core.errors import UserInputError


def launched() -> bool:
    """Whether this process is one of several started by `accelerate launch` (or torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched (through Accelerate), and return this process's device."""
    if not launched():
        return device
    try:
        from accelerate import PartialState
    except ImportError:
        raise UserInputError("several processes need Hugging Face Accelerate: pip install accelerate") from None
    state = PartialState(cpu=device.type == "cpu")
    return state.device


def rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_and_world()[0] == 0


def share(x: torch.Tensor) -> torch.Tensor:
    """This process's share of a global batch."""
    rank, world = rank_and_world()
    return x if world == 1 else x[rank::world]


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Gradients averaged over the processes (the global batch's mean loss)."""
    rank, world = rank_and_world()
    if world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average(values: torch.Tensor) -> torch.Tensor:
    """A tensor of per-process values averaged over the processes."""
    if rank_and_world()[1] == 1:
        return values
    values = values.clone()
    torch.distributed.all_reduce(values)
    return values / rank_and_world()[1]
