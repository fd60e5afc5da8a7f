import math

import pytest
import torch

from unlearn_core.data.masks import parse_mask
from unlearn_core.measure.metrics import eval_noise, evaluate_set, probe_truth, psnr_in_region, spread


def test_psnr_counts_only_the_region():
    target = torch.zeros(2, 1, 4, 4)
    pred = target.clone()
    region = torch.zeros(2, 1, 4, 4)
    region[..., :2, :] = 1
    pred[..., :2, :] = 0.1  # error inside the region: mse 0.01 -> 20 dB
    pred[..., 2:, :] = 1.0  # error outside is ignored
    assert torch.allclose(psnr_in_region(pred, target, region), torch.tensor([20.0, 20.0]))


def test_eval_noise_is_fixed_by_seed_and_matches_stats():
    x = torch.rand(64, 1, 32, 32) * 0.5
    a, b = eval_noise(x, 3), eval_noise(x, 3)
    assert torch.equal(a, b) and not torch.equal(a, eval_noise(x, 4))
    assert abs(a.mean().item() - x.mean().item()) < 0.02


class _ConstantProbe:
    def __init__(self, label):
        self.label = label

    def predict(self, x):
        return torch.full((len(x),), self.label)


def test_evaluate_set_values(tiny_mae, images):
    mask = parse_mask("center50")
    labels = torch.tensor([2] * 6 + [4] * 2)
    m = evaluate_set(tiny_mae, tiny_mae, images, labels, mask, _ConstantProbe(2))
    assert m["n"] == 8 and m["probe_acc"] == 0.75 and m["probe_agree"] == 1.0  # same class for output and truth
    assert -1 <= m["noise_cos"] <= 1 and math.isfinite(m["psnr_masked"])
    # a model that reproduced the truth would score far higher PSNR than this untrained one
    assert m["psnr_masked"] < 30
    unlabelled = evaluate_set(tiny_mae, tiny_mae, images, None, mask, _ConstantProbe(2))
    assert unlabelled["probe_acc"] is None and unlabelled["probe_agree"] == 1.0
    assert evaluate_set(tiny_mae, tiny_mae, images, None, mask, None)["probe_agree"] is None


def test_spread_picks_evenly_from_first_to_last():
    assert spread(5, None).tolist() == [0, 1, 2, 3, 4] and spread(5, 9).tolist() == [0, 1, 2, 3, 4]
    assert spread(1800, 200)[[0, -1]].tolist() == [0, 1799] and len(set(spread(1800, 200).tolist())) == 200
    labels = torch.arange(9).repeat_interleave(200)  # a set ordered by class keeps every class
    assert torch.bincount(labels[spread(1800, 200)]).tolist() == [23, 22, 22, 22, 22, 22, 22, 22, 23]


class _FeaturesOfMean:
    """An Inception stand-in: each image's features are its mean and its top-left pixel; counts the images."""

    def __init__(self):
        self.seen = 0

    def features(self, x):
        self.seen += len(x)
        return torch.stack([x.mean((1, 2, 3)), x[:, 0, 0, 0]], dim=1).double()


def test_fid_on_a_spread_subset_only(tiny_mae, images):
    mask, net = parse_mask("center50"), _FeaturesOfMean()
    every = evaluate_set(tiny_mae, tiny_mae, images, None, mask, None, inception=net)
    assert net.seen == 2 * len(images) and every["fid"] >= 0 and -1 <= every["embed_cos"] <= 1
    net.seen = 0
    part = evaluate_set(tiny_mae, tiny_mae, images, None, mask, None, inception=net, fid_images=3)
    assert net.seen == 2 * 3 and part["n"] == len(images)  # generated and truth, three of each; the rest on every image
    assert part["psnr_masked"] == every["psnr_masked"] and part["fid"] >= 0


class _CountingProbe:
    """Class 1 when an image's mean is above 0.25; counts the images it was shown."""

    def __init__(self):
        self.seen = 0

    def predict(self, x):
        self.seen += len(x)
        return (x.mean((1, 2, 3)) > 0.25).long()


def test_the_truths_classes_are_predicted_once_per_set(tiny_mae, images):
    """The probe's classes for the true images depend on neither the model nor the mask, so a run
    that measures two models under several masks predicts them once; other pixels are new."""
    probe = _CountingProbe()
    for mask in ("center50", "outpaint50"):
        evaluate_set(tiny_mae, tiny_mae, images, None, mask=parse_mask(mask), probe=probe, batch_size=5)
    assert probe.seen == 2 * len(images) + len(images)  # the outputs under two masks, the truth once
    truth = probe_truth(probe, images, 5)
    assert torch.equal(truth, (images.mean((1, 2, 3)) > 0.25).long()) and probe.seen == 3 * len(images)
    other = images.flip(-1) * 0.5 + 0.5
    assert torch.equal(probe_truth(probe, other, 5), torch.ones(len(images), dtype=torch.long))
    assert probe.seen == 4 * len(images)


class _BrightnessProbe:
    """Class 1 when an image's mean is above 0.25, else 0: tells a bright output from a dark one."""

    def predict(self, x):
        return (x.mean((1, 2, 3)) > 0.25).long()


def test_probe_agree_falls_when_outputs_lose_what_the_input_showed(images):
    """Label-free forgetting: a model whose outputs go dark agrees with the truth less often."""
    from unlearn_core.models.base import Generation

    class Darkening(torch.nn.Module):
        image_size, channels, grid = 32, 1, 8

        def __init__(self, keep: bool):
            super().__init__()
            self.keep = keep
            self.w = torch.nn.Parameter(torch.zeros(1))

        def generate(self, x, mask, *, seed=0, steps=None):
            raw = x if self.keep else torch.zeros_like(x)
            return Generation(raw=raw, composite=mask * raw + (1 - mask) * x, mask=mask)

        def encode(self, x, mask, *, seed=None):
            return x.flatten(1)

        def encode_noise(self, x, noise, mask, *, seed=None):
            return self.encode(noise, mask)

    bright = images * 0.5 + 0.5  # every image's mean is above 0.25
    mask = parse_mask("outpaint25")
    kept = evaluate_set(Darkening(True), Darkening(True), bright, None, mask, _BrightnessProbe())
    gone = evaluate_set(Darkening(False), Darkening(True), bright, None, mask, _BrightnessProbe())
    assert kept["probe_agree"] == 1.0 and gone["probe_agree"] == 0.0


@pytest.mark.slow
def test_the_original_models_figures_are_kept_between_processes(monkeypatch, tmp_path):
    """Measured once, read back by a later process (here: the in-process copy forgotten) with the
    same key; another seed is measured anew; a damaged file is measured again; an empty
    UNLEARN_CACHE_DIR keeps nothing. Other labels for the same images, another precision, or any
    change to this package's code, are another key."""
    from dataclasses import replace

    from unlearn_core.run import pipeline
    from unlearn_core.run.engine import UnlearnConfig

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path))
    p = pipeline.prepare(pipeline.RunSpec(mask="center50", config=UnlearnConfig(steps=1), eval_masks=[], image_metrics=False))
    calls = []
    real = pipeline.evaluate
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    monkeypatch.setattr(pipeline, "_ORIGINAL_METRICS", {})
    first = pipeline.evaluate_pair(p, p.original, seed=0)
    stored = list((tmp_path / "metrics").glob("*.json"))
    assert calls == [0] and len(stored) == 1
    pipeline._ORIGINAL_METRICS.clear()  # a new process
    assert pipeline.evaluate_pair(p, p.original, seed=0) == first and calls == [0]
    pipeline.evaluate_pair(p, p.original, seed=1)
    assert calls == [0, 1] and len(list((tmp_path / "metrics").glob("*.json"))) == 2
    stored[0].write_text("[]")  # not what we wrote
    pipeline._ORIGINAL_METRICS.clear()
    assert pipeline.evaluate_pair(p, p.original, seed=0) == first and calls == [0, 1, 0]
    stored[0].write_text('{"forget": ')  # cut short by a crash
    pipeline._ORIGINAL_METRICS.clear()
    assert pipeline.evaluate_pair(p, p.original, seed=0) == first and calls == [0, 1, 0, 0]
    pipeline._ORIGINAL_METRICS.clear()
    relabelled = replace(p, forget=replace(p.forget, test_labels=1 - p.forget.test_labels))
    assert pipeline.evaluate_pair(relabelled, p.original, seed=0) != first and calls == [0, 1, 0, 0, 0]
    pipeline._ORIGINAL_METRICS.clear()
    other = replace(p.config, precision="fp32" if p.precision == "bf16" else "bf16")
    pipeline.evaluate_pair(replace(p, config=other), p.original, seed=0)
    assert calls == [0, 1, 0, 0, 0, 0]
    monkeypatch.setattr(pipeline, "_code_digest", lambda: "the package changed")
    pipeline._ORIGINAL_METRICS.clear()
    pipeline.evaluate_pair(p, p.original, seed=0)
    assert calls == [0, 1, 0, 0, 0, 0, 0]
    monkeypatch.setenv("UNLEARN_CACHE_DIR", "")
    pipeline._ORIGINAL_METRICS.clear()
    pipeline.evaluate_pair(p, p.original, seed=2)
    assert calls == [0, 1, 0, 0, 0, 0, 0, 2] and len(list((tmp_path / "metrics").glob("*.json"))) == 5
    assert pipeline.metrics_cache_dir() is None


def test_the_metrics_cache_keeps_to_its_size_least_recently_used_first(monkeypatch, tmp_path):
    import os
    import time

    from unlearn_core.run import pipeline

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("UNLEARN_CACHE_MB", str(10_000 / 2**20))  # 10 kB
    folder = tmp_path / "metrics"
    paths = [folder / f"{i}.json" for i in range(4)]
    for i, p in enumerate(paths):
        pipeline._store(p, {"forget": {"pad": "x" * 2_000}, "retain": {}})  # about 2 kB each
        os.utime(p, (time.time() - 100 + i, time.time() - 100 + i))  # written in this order
    assert all(p.exists() for p in paths)
    assert pipeline._read_stored(paths[0]) is not None  # read again: now the most recently used
    pipeline._store(folder / "4.json", {"forget": {"pad": "x" * 2_000}, "retain": {}})  # 10 kB: over the bound
    kept = sorted(p.name for p in folder.glob("*.json"))
    assert "0.json" in kept and "4.json" in kept and "1.json" not in kept
    assert sum(p.stat().st_size for p in folder.glob("*.json")) <= 10_000 * 3 // 4
    monkeypatch.setenv("UNLEARN_CACHE_MB", "not a number")
    assert pipeline.metrics_cache_bytes() == 64 * 2**20
