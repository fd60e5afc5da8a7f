"""Device choice: `auto` takes CUDA when present, else the CPU. Nothing here runs at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from unlearn_core.errors import UserInputError

# The CPU threads one computation may use, as the process started (torch's default or
# OMP_NUM_THREADS), read before a server lowers the default with `serve_threads`.
CPU_THREADS = torch.get_num_threads()


def serve_threads() -> None:
    """For a server with many threads: from now on a thread computes on one CPU thread unless it
    takes them all (`all_threads`). With OpenMP every thread that ran a parallel operation keeps a
    team of helper threads; once the process holds more of them than there are cores, OpenMP stops
    letting them spin between operations, and a run in a worker thread slows down while an idle
    thread's team merely exists (measured in docs/BENCHMARKS.md, "The app's threads"). Call it
    before any computation in the process."""
    torch.set_num_threads(1)


@contextmanager
def all_threads() -> Iterator[None]:
    """Inside, this thread computes on all `CPU_THREADS` (a run's worker thread under
    `serve_threads`); after, on as many as before."""
    before = torch.get_num_threads()
    if before != CPU_THREADS:
        torch.set_num_threads(CPU_THREADS)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError(f"device {name!r} asked for, but no CUDA GPU is available (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserInputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def describe(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3 (cuda:0)' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{torch.cuda.get_device_name(index)} (cuda:{index})"
    return f"CPU ({CPU_THREADS} threads)"
