import torch

from unlearn_core.data import load_image_set
from unlearn_core.models.mae import PRESETS, MAEModel
from unlearn_core.train import TrainConfig, corrupt, erase, random_box_mask, train_mae


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
