import numpy as np
import pytest
import torch
from PIL import Image

from unlearn_core.data.masks import PRESETS, mask_from_image, parse_mask
from unlearn_core.errors import UserInputError


@pytest.mark.parametrize(
    "name, hidden_fraction",
    [("center25", 0.25**2), ("center50", 0.5**2), ("outpaint25", 1 - 0.25**2), ("outpaint50", 1 - 0.5**2), ("patches75", 0.75)],
)
def test_presets_hide_what_they_claim(name, hidden_fraction):
    m = parse_mask(name).build(4, 32, seed=3)
    assert m.shape == (4, 1, 32, 32)
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(m.mean((1, 2, 3)), torch.full((4,), hidden_fraction))


def test_center_and_outpaint_are_centred_complements():
    hole = parse_mask("center50").build(1, 32)[0, 0]
    window = parse_mask("outpaint50").build(1, 32)[0, 0]
    assert torch.equal(hole, 1 - window)
    assert hole[8:24, 8:24].all() and hole.sum() == 16 * 16
    assert not hole[:8].any() and not hole[:, 24:].any()


def test_patches_are_seeded_and_differ_per_image():
    spec = parse_mask("patches75")
    a, b = spec.build(3, 32, seed=1), spec.build(3, 32, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, spec.build(3, 32, seed=2))
    assert not torch.equal(a[0], a[1])
    # cells of the 8x8 grid are hidden whole
    cells = a.view(3, 1, 8, 4, 8, 4)
    assert torch.equal(cells.amin((3, 5)), cells.amax((3, 5)))


def test_user_mask_image_white_is_hidden(tmp_path):
    arr = np.zeros((64, 64), np.uint8)
    arr[:32] = 255  # top half hidden
    Image.fromarray(arr).save(tmp_path / "m.png")
    m = parse_mask(str(tmp_path / "m.png")).build(2, 32)
    assert m[:, :, :16].all() and not m[:, :, 16:].any()


def test_user_mask_strokes_on_transparent_layer():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[10:20, 10:20] = (255, 0, 0, 255)  # an opaque red stroke, transparent elsewhere
    spec = mask_from_image(Image.fromarray(rgba, "RGBA"))
    m = spec.build(1, 32)[0, 0]
    assert m[10:20, 10:20].all() and m.sum() == 100


@pytest.mark.parametrize("fill, message", [(0, "hides nothing"), (255, "whole image")])
def test_user_mask_must_hide_something_but_not_all(fill, message):
    with pytest.raises(UserInputError, match=message):
        mask_from_image(Image.new("L", (8, 8), fill))


def test_unknown_mask_is_a_user_error():
    with pytest.raises(UserInputError, match="unknown mask"):
        parse_mask("center99")
    assert set(PRESETS) == {"center25", "center50", "outpaint25", "outpaint50", "patches75"}


def test_random_training_mask_draws_afresh_per_seed():
    spec = parse_mask("random")
    assert spec.kind == "random" and "random" not in PRESETS  # a training mask, not an evaluation preset
    masks = [spec.build(4, 32, seed=s) for s in range(40)]
    assert torch.equal(spec.build(4, 32, seed=3), masks[3])  # seeded
    assert len({m.sum().item() for m in masks}) > 10  # varied shapes and sizes
    for m in masks:
        counts = m.sum((1, 2, 3))
        assert (counts == counts[0]).all() and 0 < counts[0] < 32 * 32  # one count per batch, never all or nothing


def test_presets_training_mask_is_one_preset_per_step():
    spec = parse_mask("presets")
    assert spec.kind == "presets" and "presets" not in PRESETS
    seen = set()
    for s in range(60):
        m = spec.build(3, 32, seed=s)
        assert torch.equal(m, spec.build(3, 32, seed=s))  # seeded
        same = [name for name in PRESETS if torch.equal(m, parse_mask(name).build(3, 32, seed=s))]
        assert len(same) == 1, s  # exactly one of the presets
        seen.add(same[0])
    assert seen == set(PRESETS)  # every preset comes up
