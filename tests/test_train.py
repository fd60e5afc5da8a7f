from dataclasses import replace

import pytest
import torch

from unlearn_core.data.masks import random_box_mask
from unlearn_core.data.sets import load_image_set
from unlearn_core.errors import UserInputError
from unlearn_core.measure.probe_train import corrupt, erase
from unlearn_core.models.mae import PRESETS, MAEModel
from unlearn_core.models.mae_train import train_mae
from unlearn_core.models.train import TrainConfig


def test_training_masks_hide_the_same_count_per_batch():
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        m = random_box_mask(16, 32, 8, g)
        counts = m.sum((1, 2, 3))
        assert (counts == counts[0]).all() and 0 < counts[0] < 32 * 32


def test_corrupt_keeps_shapes_and_erase_blanks_a_large_region():
    x = load_image_set("builtin:dog").test[:64]
    g = torch.Generator().manual_seed(0)
    c = corrupt(x, g)
    assert c.shape == x.shape and 0 <= c.min() and c.max() <= 1
    assert (c - x).abs().mean() < 0.1  # mild: the animal is still there
    e = erase(x, g)
    changed = ((e - x).abs() > 1e-6).float().mean((1, 2, 3))
    assert (changed > 0.05).float().mean() > 0.8


@pytest.mark.slow
def test_mae_training_reduces_the_loss():
    data = load_image_set("builtin:all")
    model = MAEModel.from_config(PRESETS["tiny"], seed=0)
    losses = []
    log = train_mae(
        model,
        data.train,
        TrainConfig(steps=120, batch_size=64, lr=3e-3, warmup=10),
        torch.device("cpu"),
        lambda s, loss: losses.append(loss),
    )
    assert len(losses) == 120 and log["steps"] == 120
    assert sum(losses[-20:]) / 20 < 0.7 * sum(losses[:5]) / 5
    assert not model.training


@pytest.mark.slow
def test_vqgan_trains_both_stages_with_progress():
    from unlearn_core.models.train import train_family

    seen = []
    model, log = train_family(
        "vqgan",
        "builtin:cat",
        "tiny",
        TrainConfig(steps=20, batch_size=16, lr=3e-3, warmup=2),
        torch.device("cpu"),
        lambda done, total, loss: seen.append((done, total)),
        tokenizer_steps=30,
    )
    assert seen[0] == (1, 50) and seen[-1] == (50, 50) and [d for d, _ in seen] == list(range(1, 51))
    tok = log["tokenizer"]
    assert tok["steps"] == 30 and tok["gan_loss"] != 0  # the discriminator joined after its warm-up
    assert 0 < tok["codes_used"] <= tok["codebook_size"] == 32 and tok["test_psnr"] > 5
    assert log["transformer"]["steps"] == 20 and not model.training


@pytest.mark.slow
def test_tokenizer_training_reduces_reconstruction_error():
    from unlearn_core.models.vqgan import PRESETS as VQ_PRESETS
    from unlearn_core.models.vqgan import VQGANModel
    from unlearn_core.models.vqgan_train import train_tokenizer

    data = load_image_set("builtin:all")
    model = VQGANModel.from_config(VQ_PRESETS["tiny"], seed=0)
    losses = []
    train_tokenizer(
        model.tokenizer,
        data.train,
        TrainConfig(steps=60, batch_size=32, lr=3e-3, warmup=5),
        torch.device("cpu"),
        lambda s, v: losses.append(v),
    )
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:3]) / 3


def test_mage_masks_hide_half_or_more():
    from unlearn_core.models.vqgan_train import mage_token_mask

    g = torch.Generator().manual_seed(0)
    counts = [int(mage_token_mask(4, 8, g).sum(1)[0]) for _ in range(200)]
    assert min(counts) >= 32 and max(counts) <= 64 and 36 <= sum(counts) / len(counts) <= 48


@pytest.mark.slow
def test_diffusion_trains_with_progress_and_keeps_the_ema():
    from unlearn_core.models.diffusion_train import EMA_DECAY
    from unlearn_core.models.train import train_family

    seen = []
    model, log = train_family(
        "diffusion",
        "builtin:cat",
        "tiny",
        TrainConfig(steps=30, batch_size=16, lr=3e-3, warmup=2),
        torch.device("cpu"),
        lambda done, total, loss: seen.append((done, total)),
    )
    assert [d for d, _ in seen] == list(range(1, 31)) and seen[-1] == (30, 30)
    assert log["steps"] == 30 and log["ema_decay"] == EMA_DECAY and 0 < log["held_out_loss"] < 1.5
    assert not model.training and model.family == "diffusion"
    with pytest.raises(Exception, match="takes no"):
        train_family("diffusion", "builtin:cat", "tiny", TrainConfig(steps=1), torch.device("cpu"), tokenizer_steps=3)
    with pytest.raises(
        UserInputError, match="no preset 'animals-deep' for the mae family; choose from animals, tiny"
    ):  # a diffusion-only preset
        train_family("mae", "builtin:cat", "animals-deep", TrainConfig(steps=1), torch.device("cpu"))


@pytest.mark.parametrize("family", ["mae", "vqgan", "diffusion"])
def test_every_family_trains_on_rgb_images_of_another_size(tmp_path, family):
    """`train --size --channels`: each family's preset rebuilt for 48 px RGB, trained a few steps
    on a folder, then generating RGB images of that size."""
    from PIL import Image

    from unlearn_core.data.masks import parse_mask
    from unlearn_core.models.train import train_family

    for i in range(6):
        Image.new("RGB", (60, 50), (40 * i, 200 - 30 * i, 90)).save(tmp_path / f"{i}.png")
    options = {"tokenizer_steps": 2} if family == "vqgan" else {}
    cfg = TrainConfig(steps=2, batch_size=4, warmup=1)
    model, log = train_family(family, tmp_path, "tiny", cfg, torch.device("cpu"), image_size=48, channels=3, **options)
    assert (model.image_size, model.channels) == (48, 3)
    x = load_image_set(tmp_path, 48, 3).train[:2]
    gen = model.generate(x, parse_mask("center50").build(2, 48), seed=0)
    assert gen.composite.shape == (2, 3, 48, 48)
    with pytest.raises(Exception, match="multiple of"):
        train_family(family, tmp_path, "tiny", cfg, torch.device("cpu"), image_size=50, channels=3, **options)


def test_noise_share_replaces_part_of_each_batch_with_noise_images():
    from unlearn_core.models.train import batches

    images = load_image_set("builtin:cat").train[:64]
    plain = next(batches(images, TrainConfig(steps=1, batch_size=8), torch.Generator().manual_seed(0)))[1]
    noisy = next(batches(images, TrainConfig(steps=1, batch_size=8, noise_share=0.25), torch.Generator().manual_seed(0)))[1]
    assert torch.equal(noisy[2:], plain[2:])  # the same images after the two noise images
    assert not torch.equal(noisy[:2], plain[:2]) and 0 <= noisy.min() and noisy.max() <= 1
    # noise: no silhouette's large flat regions, grey levels spread over the whole image
    assert (noisy[:2].diff(dim=-1).abs().mean() > 3 * plain[:2].diff(dim=-1).abs().mean()).item()
    with pytest.raises(Exception, match="noise share"):
        TrainConfig(noise_share=1.0)


@pytest.mark.parametrize("family", ["mae", "vqgan", "diffusion"])
def test_init_goes_on_from_a_saved_model(tmp_path, family):
    """`train --init DIR`: the saved model's weights are the start (a fine-tune), its record says
    where it came from, and VQ-GAN keeps its tokenizer."""
    from unlearn_core.models.checkpoints import load_model, metadata
    from unlearn_core.models.train import train_family

    options = {"tokenizer_steps": 2} if family == "vqgan" else {}
    cfg = TrainConfig(steps=2, batch_size=4, warmup=1)
    first, _ = train_family(family, "builtin:cat", "tiny", cfg, torch.device("cpu"), **options)
    first.save(tmp_path / "a", metadata(training={"command": "first"}))
    before = {k: v.clone() for k, v in load_model(family, tmp_path / "a").state_dict().items()}
    # a learning rate so small that the weights stay within 1e-5 of where they started
    model, log = train_family(
        family, "builtin:cat", "tiny", replace(cfg, lr=1e-6, noise_share=0.5), torch.device("cpu"), init=tmp_path / "a"
    )
    assert log["init"] == {"folder": str(tmp_path / "a"), "command": "first"}
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k].float(), after[k].float(), atol=1e-5) for k in before)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed  # it did train, from the saved weights
    if family == "vqgan":
        assert not any(k.startswith("tokenizer.") for k in changed)
        assert log["tokenizer"]["source"] == "init" and log["transformer"]["steps"] == 2
        with pytest.raises(Exception, match="leave out --tokenizer"):
            train_family(family, "builtin:cat", "tiny", cfg, torch.device("cpu"), init=tmp_path / "a", tokenizer_steps=3)
    with pytest.raises(Exception, match="own size and channels"):
        train_family(family, "builtin:cat", "tiny", cfg, torch.device("cpu"), init=tmp_path / "a", image_size=48)


class _Interrupted(Exception):
    pass


@pytest.mark.parametrize("family", ["mae", "vqgan", "diffusion"])
def test_an_interrupted_training_resumes_where_it_stopped(tmp_path, family):
    """`train --resume`: a run stopped after its state was saved goes on from it (weights, optimizer,
    schedule, random draws, an EMA, VQ-GAN's tokenizer) and ends with the weights and held-out
    curve of a run never stopped; the state file goes when training ends."""
    from unlearn_core.models.train import train_family

    options = {"tokenizer_steps": 2} if family == "vqgan" else {}
    cfg = TrainConfig(steps=6, batch_size=4, warmup=1, save_every=2, state=str(tmp_path / "state.pt"))
    whole, whole_log = train_family(family, "builtin:cat", "tiny", replace(cfg, state=None), torch.device("cpu"), **options)

    def stop_after_four(done, total, loss):
        if done == total - 1:  # during step 5 of 6, after the state of step 4 was saved
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train_family(family, "builtin:cat", "tiny", cfg, torch.device("cpu"), stop_after_four, **options)
    assert (tmp_path / "state.pt").is_file()
    resumed, log = train_family(family, "builtin:cat", "tiny", replace(cfg, resume=True), torch.device("cpu"), **options)
    assert not (tmp_path / "state.pt").exists()
    a, b = whole.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    stage = log["transformer"] if family == "vqgan" else log
    whole_stage = whole_log["transformer"] if family == "vqgan" else whole_log
    assert stage["resumed_at"] == 4 and stage["held_out"] == whole_stage["held_out"]
    assert [step for step, _ in stage["held_out"]] == [1, 2, 3, 4, 5, 6]  # every step of so short a run
    assert set(stage["plateau"]) == {"last_fifth_gain", "reached"}
    with pytest.raises(UserInputError, match="nothing to resume"):
        train_family(family, "builtin:cat", "tiny", replace(cfg, resume=True), torch.device("cpu"), **options)


def test_plateau_is_the_last_fifths_gain():
    from unlearn_core.models.train import plateau

    assert plateau([[100, 1.0], [800, 0.5], [1000, 0.499]]) == {"last_fifth_gain": 0.002, "reached": True}
    assert plateau([[100, 1.0], [800, 0.5], [1000, 0.45]]) == {"last_fifth_gain": 0.1, "reached": False}
    assert plateau([[100, 1.0]]) == {"last_fifth_gain": None, "reached": False}
