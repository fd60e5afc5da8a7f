"""bfloat16 autocast (precision.py): where `auto` picks it, that every family computes under it,
that unlearning under it trains like float32, and that a run says which it used."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from unlearn_core.compute import precision
from unlearn_core.data.masks import parse_mask
from unlearn_core.errors import UserInputError
from unlearn_core.models.base import attention
from unlearn_core.run.engine import UnlearnConfig, unlearn

MASK = parse_mask("outpaint50")


def test_auto_takes_bfloat16_only_on_a_cpu_that_computes_it(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.resolve_precision("auto", "cpu") == "bf16"
    assert precision.resolve_precision(None, "cpu") == "bf16"
    monkeypatch.setattr(precision, "gpu_has_tf32", lambda device: True)
    assert precision.resolve_precision("auto", torch.device("cuda")) == "tf32"  # faster than bfloat16 there
    monkeypatch.setattr(precision, "gpu_has_tf32", lambda device: False)
    assert precision.resolve_precision("auto", torch.device("cuda")) == "fp32"  # a GPU older than Ampere
    with pytest.raises(UserInputError, match="TF32 needs an NVIDIA GPU"):
        precision.resolve_precision("tf32", torch.device("cuda"))
    assert precision.resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.resolve_precision("auto", "cpu") == "fp32"
    assert precision.resolve_precision("bf16", "cpu") == "bf16"  # asked for: emulated, slower, allowed
    with pytest.raises(UserInputError, match="TF32 needs an NVIDIA GPU"):
        precision.resolve_precision("tf32", "cpu")
    with pytest.raises(UserInputError, match="unknown precision 'fp16'"):
        precision.resolve_precision("fp16", "cpu")
    with pytest.raises(UserInputError, match="unknown precision"):
        UnlearnConfig(precision="half").validate()


def test_compute_is_autocast_for_bfloat16_and_nothing_for_float32():
    with precision.compute("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu")
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    with precision.compute("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_tf32_holds_inside_its_context_and_is_undone_after(monkeypatch):
    """TF32 switches are process-wide: a run turns them on for itself (the whole step, backward
    included) and leaves them as it found them, also when it fails."""
    monkeypatch.setattr(precision, "gpu_has_tf32", lambda device: True)
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        for context in (precision.compute("tf32", torch.device("cuda")), precision.training("tf32")):
            with pytest.raises(RuntimeError), context:
                assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
                assert not torch.is_autocast_enabled("cpu")
                raise RuntimeError("out of memory")
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        with precision.training("bf16"), precision.training("fp32"):  # autocast covers bfloat16's forward passes
            assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    assert [precision.describe_precision(p) for p in ("bf16", "tf32", "fp32")] == ["bfloat16", "TF32", "float32"]


@pytest.mark.parametrize("mask_kind", [None, "bool", "additive"])
def test_attention_is_the_fused_kernel_and_close_to_it_under_autocast(mask_kind):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 16, generator=g) for _ in range(3))
    mask = None
    if mask_kind == "bool":
        mask = torch.rand(2, 1, 1, 9, generator=g) > 0.3
        mask[..., 0] = True  # every row may attend somewhere
    elif mask_kind == "additive":
        mask = torch.randn(2, 1, 9, 9, generator=g)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(attention(q, k, v, mask), want)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = attention(q, k, v, mask)  # no gradient to flow: the fused kernel
        assert torch.equal(fused, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
        got = attention(q.requires_grad_(), k, v, mask)  # a backward pass to come: written out
    assert got.dtype == fused.dtype == torch.bfloat16
    assert torch.allclose(got.float(), want, atol=0.05) and torch.allclose(fused.float(), want, atol=0.05)
    got.float().sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_every_family_generates_under_bfloat16_close_to_float32(tiny_model, images):
    """The same outputs up to rounding (a MaskGIT round can pick another token where two were
    nearly tied, so compare the mean), given as float32, and the model itself stays float32."""
    mask = MASK.build(len(images), 32)
    want = tiny_model.generate(images, mask, seed=0).composite
    with torch.inference_mode(), precision.compute("bf16", "cpu"):
        gen = tiny_model.generate(images, mask, seed=0)
    assert gen.raw.dtype == gen.composite.dtype == torch.float32  # what metrics and pictures read
    assert (gen.composite - want).abs().mean() < 0.05
    assert all(p.dtype == torch.float32 for p in tiny_model.parameters())


@pytest.mark.slow
def test_unlearning_under_bfloat16_trains_like_float32(tiny_model, cats_dogs):
    """Forward passes under autocast, weights and update in float32: the losses follow the float32
    run's, and the run records what it used."""
    cats, dogs = cats_dogs
    runs = {
        p: unlearn(copy.deepcopy(tiny_model), cats.train[:64], dogs.train[:64], MASK, UnlearnConfig(steps=8, batch_size=8, precision=p))
        for p in ("fp32", "bf16")
    }
    assert runs["bf16"].config.precision == "bf16" and runs["fp32"].config.precision == "fp32"
    for a, b in zip(runs["fp32"].history, runs["bf16"].history, strict=True):
        assert b["forget"] == pytest.approx(a["forget"], rel=0.05, abs=1e-3)
        assert b["retain"] == pytest.approx(a["retain"], rel=0.25, abs=1e-3)
    assert all(p.dtype == torch.float32 for p in runs["bf16"].model.parameters())


@pytest.mark.slow
def test_a_run_says_which_precision_it_computed_in(tmp_path):
    from unlearn_core.cli import main

    out = tmp_path / "run"
    args = ["unlearn", "--forget", "builtin:cat", "--retain", "builtin:dog", "--mask", "center50", "--steps", "2"]
    assert main([*args, "--eval-masks", "", "--precision", "bf16", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["precision"] == "bf16"
    meta = json.loads((out / "model" / "unlearn_meta.json").read_text())
    assert meta["settings"]["precision"] == "bf16"


def test_the_cli_refuses_an_unknown_precision(capsys):
    from unlearn_core.cli import main

    with pytest.raises(SystemExit) as e:
        main(["unlearn", "--forget", "builtin:cat", "--retain", "builtin:dog", "--out", "x", "--precision", "fp16"])
    assert e.value.code == 2 and "precision" in capsys.readouterr().err


def test_a_callers_autocast_around_the_run_changes_nothing(tiny_mae, cats_dogs):
    """Autocast keeps its bfloat16 weight copies until the outermost context ends: the engine
    drops them after every update, else each step would read the first step's weights."""
    cats, dogs = cats_dogs
    cfg = UnlearnConfig(steps=4, batch_size=8, precision="bf16")
    plain = unlearn(copy.deepcopy(tiny_mae), cats.train[:64], dogs.train[:64], MASK, cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        wrapped = unlearn(copy.deepcopy(tiny_mae), cats.train[:64], dogs.train[:64], MASK, cfg)
    assert wrapped.history == plain.history


def test_the_measuring_networks_read_in_float32_under_a_bfloat16_run(tiny_model, cats_dogs, monkeypatch):
    """The probe (and the Inception features) measure every run alike: float32 even where the
    model generates in bfloat16, and on float32 images."""
    from unlearn_core.measure.metrics import evaluate_set
    from unlearn_core.measure.probe import load_probe

    probe = load_probe()
    seen = []
    real = probe.forward  # what the network itself sees, inside `predict`
    monkeypatch.setattr(probe, "forward", lambda x: seen.append((torch.is_autocast_enabled("cpu"), x.dtype)) or real(x))
    cats = cats_dogs[0]
    with precision.compute("bf16", "cpu"):
        out = evaluate_set(tiny_model, tiny_model, cats.test[:8], cats.test_labels[:8], MASK, probe)
    assert seen and all(s == (False, torch.float32) for s in seen)
    assert 0 <= out["probe_acc"] <= 1 and -1 <= out["noise_cos"] <= 1
