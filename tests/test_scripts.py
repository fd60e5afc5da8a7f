"""The diagnostic scripts under scripts/ do what their docstrings say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_separability_tells_separable_sets_from_mixed_ones():
    sep = _script("separability")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=g)
    y = torch.cat([torch.ones(200), torch.zeros(200)])
    shifted = x + 3 * y[:, None] * torch.eye(20)[0]  # the classes differ along one axis
    test_acc, _ = sep.linear_accuracy(shifted[::2], y[::2], shifted[1::2], y[1::2])
    assert test_acc > 0.9
    test_acc, _ = sep.linear_accuracy(x[::2], y[::2], x[1::2], y[1::2])  # labels unrelated to x
    assert 0.3 < test_acc < 0.7


def test_separability_embeds_with_the_family_encoder():
    from unlearn_core.checkpoints import cached_model
    from unlearn_core.data import load_builtin
    from unlearn_core.masks import parse_mask

    sep = _script("separability")
    model = cached_model("mae")
    x = load_builtin("cat").test[:6]
    mask = parse_mask("outpaint50").build(6, 32)
    e = sep.embeddings(model, x, mask, chunk=4)
    assert e.shape[0] == 6 and torch.allclose(e, model.encode(x, mask).flatten(1), atol=1e-5)
