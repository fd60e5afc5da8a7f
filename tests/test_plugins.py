"""Plug-ins without forking: a package installed next to unlearn_core adds a model family, a
method and a metric through entry points, and the CLI and the app offer them. The package is
tests/plugin (unlearn-toy), installed into this environment for the module and removed after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parent / "plugin"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PLUGIN.parent.parent)}

pytestmark = pytest.mark.slow


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True, env=ENV)


def _forget_loaded() -> None:
    """The registries read the entry points once; make them read them again."""
    from unlearn_core.measure import metrics
    from unlearn_core.methods import _plugin_methods
    from unlearn_core.models import registry

    for cached in (registry.get_family, registry._plugin_families, _plugin_methods, metrics.extra_metrics):
        cached.cache_clear()


@pytest.fixture(scope="module")
def toy_installed(tmp_path_factory):
    """unlearn-toy installed from a copy of tests/plugin whose embedded checkpoint was trained here."""
    src = tmp_path_factory.mktemp("plugin") / "plugin"
    shutil.copytree(PLUGIN, src)
    sys.path.insert(0, str(src))
    try:
        import torch
        from unlearn_toy import ToyConfig, ToyModel, _fit_toy

        from unlearn_core.data.sets import load_image_set
        from unlearn_core.models.train import TrainConfig

        model = ToyModel.from_config(ToyConfig())
        _fit_toy(model, load_image_set("builtin:all").train, TrainConfig(steps=30, batch_size=32, warmup=5), torch.device("cpu"))
        model.save(src / "unlearn_toy" / "checkpoint", {"family": "toy"})
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("unlearn_toy", None)
    _pip("install", "--no-deps", "--no-build-isolation", str(src))
    _forget_loaded()
    yield
    _pip("uninstall", "-y", "unlearn-toy")
    _forget_loaded()


def test_the_registries_find_the_plugin(toy_installed):
    from unlearn_core.measure.metrics import metric_names
    from unlearn_core.methods import get_method, methods
    from unlearn_core.models import family_names, get_family
    from unlearn_core.models.checkpoints import available_models

    assert family_names()[-1] == "toy" and get_family("toy").label == "toy convolutional autoencoder"
    assert "toy" in available_models()
    assert "toy_forget_only" in methods() and get_method("toy_forget_only").trains == "encoder"
    assert "toy_brightness" in metric_names()


def test_the_cli_offers_and_runs_them(toy_installed, tmp_path):
    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "unlearn_core", *args], capture_output=True, text=True, env=ENV, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "toy" in {f["family"] for f in json.loads(cli("families", "--json"))}
    helptext = cli("unlearn", "--help")
    assert "toy_forget_only" in helptext and "toy" in helptext
    out = cli(
        "unlearn", "--model", "toy", "--method", "toy_forget_only", "--forget", "builtin:cat", "--retain", "builtin:dog",
        "--steps", "5", "--eval-masks", "", "--out", str(tmp_path / "run"), "--json",
    )  # fmt: skip
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics["model"] == "toy" and metrics["method"] == "toy_forget_only" and metrics["steps"] == 5
    assert metrics["mask"] == "center50"  # the family's default
    for model in ("original", "unlearned"):
        assert 0 <= metrics[model]["forget"]["toy_brightness"] <= 1


def test_the_app_offers_them(toy_installed):
    from unlearn_core.serving import studio

    assert "toy" in {value for _, value in studio.model_choices()}
    assert "toy_forget_only" in {value for _, value in studio.method_choices()}
