import json

import pytest
import torch
from transformers import ViTMAEForPreTraining

from unlearn_core.data.masks import parse_mask
from unlearn_core.errors import UserInputError
from unlearn_core.models import I2IModel
from unlearn_core.models.checkpoints import detect_family
from unlearn_core.models.mae import PRESETS, MAEModel, _sincos


def test_position_embeddings_are_sincos_not_zero(tiny_mae):
    pe = tiny_mae.net.vit.embeddings.position_embeddings
    dpe = tiny_mae.net.decoder.decoder_pos_embed
    n = tiny_mae.grid**2
    assert torch.allclose(pe, _sincos(n, pe.shape[-1]).float())
    assert torch.allclose(dpe, _sincos(n, dpe.shape[-1]).float())
    assert pe[0, 1:].abs().sum() > 0 and dpe[0, 1:].abs().sum() > 0
    # every patch position is distinct
    assert torch.unique(pe[0, 1:], dim=0).shape[0] == n


def test_sincos_table_matches_transformers_pretrained_layout():
    from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

    table = build_2d_sinusoidal_position_embedding(8, 8, embed_dim=32, cls_token=True)
    rotated = torch.cat([table[..., 16:], table[..., :16]], dim=-1)  # as transformers' initialize_weights
    assert torch.allclose(_sincos(64, 32)[0], rotated.float(), atol=1e-6)


def test_implements_the_protocol(tiny_mae):
    assert isinstance(tiny_mae, I2IModel)


def test_patch_rule_half_or_more_hidden(tiny_mae):
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 0:2, 0:4] = 1  # half of patch 0
    mask[..., 0:1, 4:8] = 1  # a quarter of patch 1
    hidden = tiny_mae.patch_mask(mask)[0]
    assert hidden[0] and not hidden[1] and hidden.sum() == 1


@pytest.mark.parametrize("name, visible", [("center50", 48), ("outpaint50", 16), ("center25", 60), ("patches75", 16)])
def test_encoder_sees_only_visible_patches(tiny_mae, images, name, visible):
    m = parse_mask(name).build(len(images), 32, seed=0)
    e = tiny_mae.encode(images, m)
    assert e.shape == (len(images), 1 + visible, tiny_mae.net.config.hidden_size)
    # changing hidden pixels does not change the embedding; changing visible ones does
    hidden_changed = images * (1 - m) + torch.rand_like(images) * m
    assert torch.allclose(tiny_mae.encode(hidden_changed, m), e, atol=1e-6)
    assert not torch.allclose(tiny_mae.encode(images * m + torch.rand_like(images) * (1 - m), m), e, atol=1e-3)


def test_generate_composite_keeps_visible_pixels(tiny_mae, images):
    m = parse_mask("outpaint50").build(len(images), 32)
    g = tiny_mae.generate(images, m)
    assert g.raw.shape == images.shape and 0 <= g.raw.min() and g.raw.max() <= 1
    assert torch.equal(g.composite * (1 - g.mask), images * (1 - g.mask))
    assert torch.equal(g.composite * g.mask, g.raw * g.mask)
    assert torch.equal(g.mask, m)


def test_generate_handles_mixed_hidden_counts(tiny_mae, images):
    m = parse_mask("center50").build(2, 32)
    m[1] = parse_mask("outpaint50").build(1, 32)[0]
    g = tiny_mae.generate(images[:2], m)
    assert torch.equal(g.mask, m)
    with pytest.raises(ValueError, match="same number of patches"):
        tiny_mae.encode(images[:2], m)


def test_encoder_parameters_are_the_vit_encoder_only(tiny_mae):
    enc = {id(p) for p in tiny_mae.encoder_parameters()}
    assert enc == {id(p) for n, p in tiny_mae.net.vit.named_parameters() if "position_embeddings" not in n}
    assert not enc & {id(p) for p in tiny_mae.net.decoder.parameters()}


def test_save_load_round_trip_is_exact(tiny_mae, images, tmp_path):
    tiny_mae.save(tmp_path / "m", {"method": "ours"})
    loaded = MAEModel.load(tmp_path / "m")
    for (k, a), (k2, b) in zip(tiny_mae.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    m = parse_mask("center50").build(len(images), 32)
    assert torch.equal(tiny_mae.generate(images, m).raw, loaded.generate(images, m).raw)
    meta = json.loads((tmp_path / "m" / "unlearn_meta.json").read_text())
    assert meta["family"] == "mae" and meta["method"] == "ours" and meta["pixel_mean"] == [0.5]
    # the folder is a plain transformers checkpoint too
    assert isinstance(ViTMAEForPreTraining.from_pretrained(tmp_path / "m"), ViTMAEForPreTraining)


def test_loads_a_plain_vitmae_folder_with_imagenet_normalisation(tmp_path):
    cfg = PRESETS["tiny"]
    rgb = MAEModel.from_config(type(cfg)(**{**cfg.__dict__, "channels": 3}))
    rgb.net.save_pretrained(tmp_path / "hf")  # no unlearn_meta.json, as on the hub
    assert detect_family(tmp_path / "hf") == "mae"
    loaded = MAEModel.load(tmp_path / "hf")
    assert loaded.channels == 3
    assert torch.allclose(loaded.pixel_mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


def test_mismatched_checkpoint_is_refused(tiny_mae, tmp_path):
    tiny_mae.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["num_hidden_layers"] = 2  # the weights hold one layer
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserInputError, match="does not match"):
        MAEModel.load(tmp_path / "m")


def test_wrong_image_shape_is_a_clear_error(tiny_mae):
    with pytest.raises(UserInputError, match="takes 1x32x32 images"):
        tiny_mae.encode(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
