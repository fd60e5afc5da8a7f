"""Shared fixtures: tiny models and image files made on the fly. Everything runs on the CPU, offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from unlearn_core.models.mae import PRESETS, MAEModel  # noqa: E402


@pytest.fixture
def tiny_mae() -> MAEModel:
    """An untrained 32x32 grayscale MAE with one encoder and one decoder layer."""
    return MAEModel.from_config(PRESETS["tiny"], seed=0).eval()


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(8, 1, 32, 32, generator=g)


@pytest.fixture(scope="session")
def trained_tiny_mae() -> MAEModel:
    """A tiny MAE trained briefly on the built-in animals, so its embeddings carry content."""
    from unlearn_core.data import load_image_set
    from unlearn_core.train import TrainConfig, train_mae

    model = MAEModel.from_config(PRESETS["tiny"], seed=0)
    data = load_image_set("builtin:all")
    train_mae(model, data.train, TrainConfig(steps=150, batch_size=64, lr=3e-3, warmup=10), torch.device("cpu"))
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def cats_dogs():
    from unlearn_core.data import load_image_set

    return load_image_set("builtin:cat"), load_image_set("builtin:dog")
