"""The CPU threads a run computes on (`compute.device`): all of them, or in a server as many as
other processes leave it."""

from __future__ import annotations

import os

import pytest
import torch

from unlearn_core.compute import device

TICK = os.sysconf("SC_CLK_TCK")


def stat(busy: dict[int, float], elapsed: float) -> str:
    """/proc/stat's text after `elapsed` seconds, with `busy` of them user time on each CPU."""
    lines = ["cpu  1 2 3 4 5 6 7 8 0 0"]
    lines += [f"cpu{c} {round(s * TICK)} 0 0 {round((elapsed - s) * TICK)} 0 0 0 0 0 0" for c, s in busy.items()]
    return "\n".join(lines + ["intr 1 2 3", "ctxt 5"]) + "\n"


def test_spare_cores_are_the_cpus_less_what_other_processes_used(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    cases = [  # (CPU 0 and 1 busy seconds over a 1 s window, this process's seconds, spare cores)
        ((0.0, 0.0), 0.0, 2.0),  # all idle
        ((1.0, 0.0), 0.0, 1.0),  # another process held one core the whole window
        ((1.0, 1.0), 2.0, 2.0),  # this process held both: still ours to use
        ((1.0, 1.0), 1.0, 1.0),  # half ours, half another's
        ((1.0, 1.0), 0.0, 0.0),  # both held by others
        ((0.5, 0.0), 0.0, 1.5),
    ]
    for (b0, b1), mine, spare in cases:
        # CPU 2 is not this process's to run on: ignored, however busy
        readings = iter([stat({0: 0, 1: 0, 2: 0}, 0), stat({0: b0, 1: b1, 2: 1.0}, 1.0)])
        owns = iter([0.0, mine])
        got = device.spare_cores(0.0, read=lambda path, r=readings: next(r), own=lambda o=owns: next(o))
        assert got == pytest.approx(spare)


def test_spare_cores_are_unknown_without_proc():
    def missing(path):
        raise FileNotFoundError(path)

    assert device.spare_cores(0.0, read=missing) is None


def test_a_server_run_takes_the_cores_left_to_it_and_a_script_takes_them_all(monkeypatch):
    monkeypatch.setattr(device, "CPU_THREADS", 4)
    spare = {"n": 1.2}
    monkeypatch.setattr(device, "spare_cores", lambda: spare["n"])
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(device, "_SERVING", False)
        assert device.run_threads() == 4  # a script or the CLI: every thread, whatever the load
        monkeypatch.setattr(device, "_SERVING", True)
        seen = []
        for spare["n"], want in ((1.2, 1), (0.2, 1), (2.6, 3), (7.0, 4), (None, 4)):
            with device.all_threads():
                seen.append(torch.get_num_threads())
            assert torch.get_num_threads() == before  # put back after
            assert seen[-1] == want
        # nested (a run's measuring inside the run): what the outermost chose, without looking again
        spare["n"] = 1.0
        with device.all_threads():
            spare["n"] = 7.0
            with device.all_threads():
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def test_a_run_on_fewer_threads_than_the_machine_has_says_so(monkeypatch):
    """metrics.json records the threads unlearning computed on, and a note says when other
    processes held some of them (a server's run, `serve_threads`)."""
    from unlearn_core.run.engine import UnlearnConfig
    from unlearn_core.run.pipeline import RunSpec, run

    monkeypatch.setattr(device, "CPU_THREADS", 3)
    monkeypatch.setattr(device, "_SERVING", True)
    monkeypatch.setattr(device, "spare_cores", lambda: 1.0)
    spec = RunSpec(
        forget="builtin:cat", retain="builtin:dog", mask="center50", config=UnlearnConfig(steps=2), eval_masks=[], reference=False
    )
    before = torch.get_num_threads()
    try:
        metrics = run(spec, extras=False).metrics
    finally:
        torch.set_num_threads(before)
    assert metrics["cpu_threads"] == 1
    assert any(n.startswith("unlearned on 1 of 3 CPU threads: other processes held the rest") for n in metrics["notes"])
    monkeypatch.setattr(device, "_SERVING", False)  # a script: every thread, and nothing to say
    try:
        metrics = run(spec, extras=False).metrics
    finally:
        torch.set_num_threads(before)
    assert metrics["cpu_threads"] == 3 and not any("CPU threads" in n for n in metrics["notes"])
