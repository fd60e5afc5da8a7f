"""ZeroGPU: without the `spaces` package nothing changes; with it (a stand-in here) the app's GPU
work runs inside `spaces.GPU` with a computed duration, and what crosses the worker boundary
survives pickling, as on a ZeroGPU Space."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unlearn_core.run.engine import UnlearnConfig
from unlearn_core.run.pipeline import RunSpec
from unlearn_core.serving import zerogpu

ROOT = Path(__file__).resolve().parent.parent

# A stand-in for Hugging Face's `spaces` package: `GPU(duration=...)` records each call with the
# duration it asks for and sends arguments and results through pickle, as ZeroGPU's worker does.
STAND_IN = """
import inspect, pickle
calls, decorated = [], []

def _through(value):
    return pickle.loads(pickle.dumps(value))

def GPU(fn=None, duration=60):
    def wrap(f):
        decorated.append(f.__name__)
        def seconds(args, kwargs):
            return duration(*args, **kwargs) if callable(duration) else duration
        if inspect.isgeneratorfunction(f):
            def gen(*args, **kwargs):
                calls.append((f.__name__, seconds(args, kwargs)))
                args, kwargs = _through((args, kwargs))
                for item in f(*args, **kwargs):
                    yield _through(item)
            return gen
        def call(*args, **kwargs):
            calls.append((f.__name__, seconds(args, kwargs)))
            args, kwargs = _through((args, kwargs))
            return _through(f(*args, **kwargs))
        return call
    return wrap(fn) if fn is not None else wrap
"""

# What the app does on such a Space: a run, a run stopped half-way, a user's image, the API function.
SCRIPT = """
import json
from PIL import Image
import spaces
import app
from unlearn_core.serving.runs import try_own
from unlearn_core.serving.session import stop_run

def drain(gen, stop_at=None, session=None):
    last = None
    for i, u in enumerate(gen):
        last = dict(zip(app.RUN_OUTPUTS, u, strict=True))
        if i == stop_at:
            stop_run(session)
    return last

args = dict(fc="builtin:cat", ff=None, rc="builtin:dog", rf=None, model="mae", checkpoint="", mask_choice="center50",
            drawn=None, method="ours", alpha=None, steps=8, lr=5e-4, seed=0, sampling=None, train_mask="same",
            image_metrics=False)
app.EVAL_MASKS = []
session = app.Session()
done = drain(app.run_unlearning(**args, session=session))
grid, msg = try_own(Image.new("L", (40, 40), 255), "center50", None, session)
stopped_session = app.Session()
stopped = drain(app.run_unlearning(**{**args, "steps": 400}, session=stopped_session), stop_at=3, session=stopped_session)
refused = drain(app.run_unlearning(**{**args, "fc": "builtin:unicorn"}, session=app.Session()))
metrics = app.unlearn_api(steps=4, mask="center50")
print("RESULT " + json.dumps({
    "decorated": spaces.decorated, "calls": spaces.calls,
    "done": done["status"], "device": str(next(session.output.result.model.parameters()).device),
    "grid": list(grid.size), "msg": msg, "stopped": stopped["status"], "stopped_steps": stopped["metrics"]["steps"],
    "refused": refused["status"], "api_steps": metrics["steps"], "running": session.running,
}))
"""


def test_without_spaces_nothing_changes():
    assert not zerogpu.available()  # the test environment does not install `spaces`

    def f(x):
        return x

    assert zerogpu.gpu(60)(f) is f


def test_run_seconds_follow_steps_and_model_size():
    def seconds(**over):
        return zerogpu.run_seconds(RunSpec(**{"model": "mae", "mask": "center50", "eval_masks": [], "image_metrics": False, **over}))

    short, long = seconds(config=UnlearnConfig(steps=100)), seconds(config=UnlearnConfig(steps=5000))
    assert zerogpu.MIN_SECONDS <= short < long <= zerogpu.MAX_SECONDS
    # every measured mask and FID cost time; the diffusion model samples in several steps
    assert seconds(config=UnlearnConfig(steps=100), eval_masks=None) > short
    assert seconds(config=UnlearnConfig(steps=100), image_metrics=True) > short
    assert zerogpu.run_seconds(RunSpec(model="diffusion", mask="center50", eval_masks=[], image_metrics=False)) > short
    assert seconds(config=UnlearnConfig(steps=10**6)) == zerogpu.MAX_SECONDS
    # a spec that cannot run asks for the minimum (the run then says why)
    assert zerogpu.run_seconds(RunSpec(model="unicorn")) == zerogpu.MIN_SECONDS


@pytest.mark.slow
def test_app_on_zerogpu_runs_its_gpu_work_inside_spaces_gpu(tmp_path):
    (tmp_path / "spaces.py").write_text(STAND_IN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert sorted(r["decorated"]) == ["gpu_metrics", "gpu_stream", "try_image"]
    names = [name for name, _ in r["calls"]]
    assert names == ["gpu_stream", "try_image", "gpu_stream", "gpu_stream", "gpu_metrics"]
    durations = dict(r["calls"][:2])
    assert zerogpu.MIN_SECONDS <= durations["gpu_stream"] <= zerogpu.MAX_SECONDS
    assert durations["try_image"] == zerogpu.IMAGE_SECONDS
    # the run finished in the "worker" and its output came back usable, on the CPU
    assert r["done"].startswith("Done: 8 steps"), r["done"]
    assert r["device"] == "cpu" and r["msg"] == "" and r["grid"][0] > 0 and not r["running"]
    # Stop reaches a run in another process through the session's stop file
    assert r["stopped"].startswith("Stopped at step") and r["stopped_steps"] < 400
    assert r["refused"].startswith("**Error:**") and "unicorn" in r["refused"]
    assert r["api_steps"] == 4
