"""Device choice: `auto` takes CUDA when present, else the CPU. Nothing here runs at import."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from unlearn_core.errors import UserInputError

# The CPU threads one computation may use, as the process started (torch's default or
# OMP_NUM_THREADS), read before a server lowers the default with `serve_threads`.
CPU_THREADS = torch.get_num_threads()
_SERVING = False  # set by `serve_threads`: a run takes the cores other processes leave it (`run_threads`)
_NESTING = threading.local()  # how deep this thread is inside `all_threads`


def serve_threads() -> None:
    """For a server with many threads: from now on a thread computes on one CPU thread unless it
    takes them all (`all_threads`). With OpenMP every thread that ran a parallel operation keeps a
    team of helper threads; once the process holds more of them than there are cores, OpenMP stops
    letting them spin between operations, and a run in a worker thread slows down while an idle
    thread's team merely exists (measured in docs/BENCHMARKS.md, "The app's threads"). Call it
    before any computation in the process. From then on a run also takes only the cores that
    other processes leave it (`run_threads`)."""
    global _SERVING
    torch.set_num_threads(1)
    _SERVING = True


def _cpu_times(cpus: set[int], stat: str) -> tuple[float, float]:
    """(busy, all) seconds of `cpus` in /proc/stat's text `stat` (steal counts as busy: a
    hypervisor's share is not ours either)."""
    busy = total = 0
    for line in stat.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
            busy += user + nice + system + irq + softirq + steal
            total += user + nice + system + idle + iowait + irq + softirq + steal
    tick = os.sysconf("SC_CLK_TCK")
    return busy / tick, total / tick


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def spare_cores(window: float = 0.2, read: Callable[[str], str] = _read, own: Callable[[], float] = _own_seconds) -> float | None:
    """How many of the CPUs this process may run on other processes left idle over `window`
    seconds: the CPUs' busy time (/proc/stat) less this process's own, over the time that passed
    by the same count. None where the system does not say (no /proc)."""
    try:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
        (busy, total), mine = _cpu_times(cpus, read("/proc/stat")), own()
        time.sleep(window)
        (busy_after, total_after), mine_after = _cpu_times(cpus, read("/proc/stat")), own()
    except (OSError, ValueError):
        return None
    elapsed = (total_after - total) / len(cpus)
    if elapsed <= 0:
        return None
    return len(cpus) - max(0.0, (busy_after - busy) - (mine_after - mine)) / elapsed


def run_threads() -> int:
    """The CPU threads a run computes on: `CPU_THREADS`, or in a server (`serve_threads`) no more
    than the cores other processes leave it, at least one. Threads that wait on each other for a
    core another process holds make a run several times slower: beside one busy process on 2 cores
    150 MAE steps took 3.3 times as long on 2 threads as alone, and as long as alone on one
    (docs/BENCHMARKS.md, 'Click to results, every family, and a run beside a busy process')."""
    spare = spare_cores() if _SERVING else None
    return CPU_THREADS if spare is None else max(1, min(CPU_THREADS, round(spare)))


@contextmanager
def all_threads() -> Iterator[None]:
    """Inside, this thread computes on `run_threads()` CPU threads (all `CPU_THREADS` unless a
    server's other processes hold some; a run's worker thread under `serve_threads`); after, on
    as many as before. Nested, it keeps what the outermost chose (and does not look again)."""
    depth, before = getattr(_NESTING, "depth", 0), torch.get_num_threads()
    threads = before if depth else run_threads()
    if before != threads:
        torch.set_num_threads(threads)
    _NESTING.depth = depth + 1
    try:
        yield
    finally:
        _NESTING.depth = depth
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
