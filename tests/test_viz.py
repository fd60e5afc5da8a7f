"""The comparison pictures: the 'what changed' heat map and the change figure the verdict uses."""

import numpy as np
import torch

from unlearn_core.data.masks import parse_mask
from unlearn_core.data.sets import load_image_set
from unlearn_core.measure.viz import _FADED, _HEAT, CHANGE_FULL, COLUMNS, change_map, compare_models, region_change
from unlearn_core.models import get_family


def test_region_change_counts_only_the_generated_region():
    a = torch.zeros(2, 3, 4, 4)
    b = a.clone()
    b[0, :, :2] = 1.0  # image 0: its top half changed from black to white
    region = torch.zeros(2, 1, 4, 4)
    region[:, :, :2] = 1  # generated: the top half
    assert region_change(a, b, region).tolist() == [1.0, 0.0]
    region[:, :, :2], region[:, :, 2:] = 0, 1  # generated: the bottom half, which did not change
    assert region_change(a, b, region).tolist() == [0.0, 0.0]


def test_change_map_colours_the_region_and_fades_the_rest():
    image = torch.zeros(1, 4, 4)
    a = torch.zeros(1, 4, 4)
    b = a.clone()
    b[:, 0, 0] = 1.0  # full change at one pixel
    b[:, 0, 1] = CHANGE_FULL / 2  # half the scale at the next
    region = torch.zeros(1, 4, 4)
    region[:, :2] = 1
    out = change_map(a, b, region, image)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == tuple(_HEAT[-1].astype(int))  # at or beyond CHANGE_FULL: the top colour
    assert tuple(out[0, 1]) == tuple(_HEAT[1].astype(int))  # half way: the middle colour
    assert tuple(out[1, 3]) == tuple(_HEAT[0].astype(int))  # in the region, unchanged: dark blue
    assert tuple(out[3, 3]) == (round(_FADED * 0.7),) * 3  # outside: the (black) image faded


def _tiny(seed: int):
    family = get_family("mae")
    return family.model.from_config(family.preset("tiny"), seed=seed).eval()


def test_compare_models_pictures_both_sets_and_measures_their_change():
    model = _tiny(0)
    x = load_image_set("builtin:cat", model.image_size, model.channels).test[:3]
    same = compare_models(model, model, [("a", x), ("b", x)], parse_mask("center50"))
    assert same.change == [0.0, 0.0]  # the same model draws the same outputs
    other = _tiny(1)
    changed = compare_models(model, other, [("a", x)], parse_mask("center50"))
    assert changed.change[0] > 0.01
    assert changed.image.width >= len(COLUMNS) * 96 and changed.image.height > 3 * 96  # five columns, three rows, the key below
