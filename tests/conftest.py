"""Shared fixtures: tiny models and image files made on the fly. Everything runs on the CPU, offline."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# The original model's figures are kept on disk between processes (pipeline.metrics_cache_dir):
# the tests and the CLIs they start share one folder of their own, never the user's ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="unlearn-test-cache-")
os.environ["UNLEARN_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

from unlearn_core.models import family_names, get_family  # noqa: E402
from unlearn_core.models.mae import PRESETS, MAEModel  # noqa: E402


@pytest.fixture
def tiny_mae() -> MAEModel:
    """An untrained 32x32 grayscale MAE with one encoder and one decoder layer."""
    return MAEModel.from_config(PRESETS["tiny"], seed=0).eval()


@pytest.fixture(params=family_names())
def tiny_model(request):
    """An untrained tiny model of each registered family (the engine and metrics must not care which)."""
    family = get_family(request.param)
    return family.model.from_config(family.preset("tiny"), seed=0).eval()


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(8, 1, 32, 32, generator=g)


@pytest.fixture(scope="session")
def cats_dogs():
    from unlearn_core.data.sets import load_image_set

    return load_image_set("builtin:cat"), load_image_set("builtin:dog")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    """The app, launched in this process on a free port; yields its URL."""
    import app

    demo = app.build_demo()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, max_file_size=app.MAX_UPLOAD)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def wait_for(condition, seconds: float = 300) -> bool:
    """Wait for an event (not a speed limit: generous, for slow shared machines)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def session_with(size: int, age: float):
    """An app session whose folder holds `size` bytes, last written `age` seconds ago."""
    import time
    from pathlib import Path

    from unlearn_core.serving.session import Session

    s = Session()
    f = Path(s.tmp) / "run" / "model.bin"
    f.parent.mkdir()
    f.write_bytes(b"\0" * size)
    then = time.time() - age
    for p in (f, f.parent, Path(s.tmp)):
        os.utime(p, (then, then))
    return s
