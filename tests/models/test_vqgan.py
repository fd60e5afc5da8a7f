"""The VQ-GAN family on a tiny, untrained configuration (CPU, no files but tmp_path)."""

import json
import math

import pytest
import torch

from unlearn_core.data.masks import parse_mask
from unlearn_core.errors import UserInputError
from unlearn_core.models import I2IModel, family_class
from unlearn_core.models.checkpoints import detect_family
from unlearn_core.models.vqgan import PRESETS, SamplingConfig, VQGANModel, nearest_codes


@pytest.fixture
def tiny_vqgan() -> VQGANModel:
    return VQGANModel.from_config(PRESETS["tiny"], seed=0).eval()


def test_implements_the_protocol_and_is_registered(tiny_vqgan):
    assert isinstance(tiny_vqgan, I2IModel) and family_class("vqgan") is VQGANModel
    assert tiny_vqgan.grid == 8 and tiny_vqgan.cell == 4


def test_token_rule_half_or_more_of_a_cell(tiny_vqgan):
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 0:2, 0:4] = 1  # half of cell 0
    mask[..., 0:1, 4:8] = 1  # a quarter of cell 1
    hidden = tiny_vqgan.token_mask(mask)[0]
    assert hidden[0] and not hidden[1] and hidden.sum() == 1
    assert torch.equal(tiny_vqgan.pixel_mask(hidden[None])[0, 0, :4, :4], torch.ones(4, 4))


@pytest.mark.parametrize("name, visible", [("center50", 48), ("outpaint50", 16), ("center25", 60), ("patches75", 16)])
def test_encoder_sees_only_visible_tokens(tiny_vqgan, images, name, visible):
    m = parse_mask(name).build(len(images), 32, seed=0)
    e = tiny_vqgan.encode(images, m)
    assert e.shape == (len(images), 1 + visible, tiny_vqgan.transformer.cfg.hidden_size)
    # the tokenizer sees only visible cells: hidden pixels change neither tokens nor embedding
    hidden_changed = images * (1 - m) + torch.rand_like(images) * m
    hidden = tiny_vqgan.token_mask(m)
    assert torch.equal(tiny_vqgan.tokenize(hidden_changed, hidden), tiny_vqgan.tokenize(images, hidden))
    assert torch.allclose(tiny_vqgan.encode(hidden_changed, m), e, atol=1e-6)
    assert not torch.allclose(tiny_vqgan.encode(images * m + torch.rand_like(images) * (1 - m), m), e, atol=1e-3)


def test_images_with_different_visible_counts_share_a_batch(tiny_vqgan, images):
    """Padding rows neither change the valid rows nor get attended to."""
    masks = torch.cat([parse_mask("center50").build(4, 32), parse_mask("center25").build(4, 32)])
    together = tiny_vqgan.encode(images, masks)  # (8, 1 + 60, D), the first four padded after 1 + 48
    alone = tiny_vqgan.encode(images[:4], masks[:4])
    assert together.shape[1] == 61 and torch.allclose(together[:4, :49], alone, atol=1e-5)
    assert together[:4, 49:].abs().max() == 0
    g = tiny_vqgan.generate(images, masks, seed=3)
    assert torch.equal(g.mask, masks)


def test_generation_is_seeded_and_keeps_visible_pixels(tiny_vqgan, images):
    m = parse_mask("outpaint50").build(len(images), 32)
    a, b = tiny_vqgan.generate(images, m, seed=5), tiny_vqgan.generate(images, m, seed=5)
    assert torch.equal(a.raw, b.raw) and a.raw.shape == images.shape
    assert 0 <= a.raw.min() and a.raw.max() <= 1
    assert torch.equal(a.composite * (1 - a.mask), images * (1 - a.mask))
    assert not torch.equal(tiny_vqgan.generate(images, m, seed=6).raw, a.raw)
    # `steps` sets the MaskGIT rounds (the model's default: its config's iterations)
    assert tiny_vqgan.sampling_steps == 4 and tiny_vqgan.max_sampling_steps == 64
    assert torch.equal(tiny_vqgan.generate(images, m, seed=5, steps=4).raw, a.raw)
    assert not torch.equal(tiny_vqgan.generate(images, m, seed=5, steps=1).raw, a.raw)
    with pytest.raises(UserInputError, match="between 1 and 64"):
        tiny_vqgan.generate(images, m, steps=65)
    greedy = SamplingConfig(iterations=3, temperature=0.0, choice_temperature=0.0)
    assert torch.equal(
        tiny_vqgan.generate(images, m, seed=1, sampling=greedy).raw, tiny_vqgan.generate(images, m, seed=2, sampling=greedy).raw
    )


def test_maskgit_draws_codes_as_often_as_their_probability():
    logits = torch.tensor([0.0, -math.inf, math.log(6), math.log(3)]).expand(2, 10_000, 4)
    g = torch.Generator().manual_seed(0)
    sample, logp = VQGANModel._draw(logits, 1.0, g)
    share = torch.bincount(sample.flatten(), minlength=4) / sample.numel()
    assert share[1] == 0  # a code of probability zero is never drawn
    assert torch.allclose(share, torch.tensor([0.1, 0.0, 0.6, 0.3]), atol=0.01)
    assert torch.allclose(logp, logits.log_softmax(-1).gather(-1, sample[..., None])[..., 0])
    # temperature sharpens the distribution; zero is the most likely code
    hot = VQGANModel._draw(logits, 0.25, g)[0]
    assert (hot == 2).float().mean() > 0.9
    assert (VQGANModel._draw(logits, 0.0, g)[0] == 2).all()


def test_nearest_codes_are_exact_where_the_matrix_product_route_cancels():
    # Codes far from the origin and close to each other: |z|^2 + |e|^2 - 2 z.e loses their
    # distances to float32 cancellation (the route whose rounding varied from run to run); the
    # differences themselves keep them.
    g = torch.Generator().manual_seed(0)
    codebook = 300 + 0.01 * torch.randn(64, 16, generator=g)
    z = codebook[torch.randint(64, (500,), generator=g)] + 0.002 * torch.randn(500, 16, generator=g)
    exact = torch.cdist(z.double(), codebook.double()).argmin(1)
    assert torch.equal(nearest_codes(z, codebook), exact)
    assert not torch.equal(torch.cdist(z, codebook, compute_mode="use_mm_for_euclid_dist").argmin(1), exact)
    assert torch.equal(nearest_codes(z.bfloat16(), codebook), torch.cdist(z.bfloat16().double(), codebook.double()).argmin(1))


def test_maskgit_fills_every_hidden_token_and_keeps_the_rest(tiny_vqgan, images):
    m = parse_mask("center50").build(len(images), 32)
    hidden = tiny_vqgan.token_mask(m)
    start = tiny_vqgan.tokenize(images, hidden)
    rounds = []
    original_forward = tiny_vqgan.transformer.forward

    def spy(tokens, unknown):
        rounds.append(int(unknown[0].sum()))
        return original_forward(tokens, unknown)

    tiny_vqgan.transformer.forward = spy
    filled = tiny_vqgan.maskgit(start, hidden, 0, SamplingConfig(iterations=4))
    # cosine schedule: 16 hidden, then floor(16 cos(pi/8 t)) = 14, 11, 6 still hidden after rounds
    # 1-3, none after round 4; then one pass with nothing hidden corrects the visible tokens
    assert rounds == [16, 14, 11, 6, 0]
    tiny_vqgan.transformer.forward = original_forward
    # the visible tokens are the model's reading of the image with the hole filled
    corrected = tiny_vqgan.transformer(torch.where(hidden, filled, start), torch.zeros_like(hidden)).argmax(-1)
    assert torch.equal(filled[~hidden], corrected[~hidden])


def test_only_encoder_parameters_are_listed(tiny_vqgan):
    enc = {id(p) for p in tiny_vqgan.encoder_parameters()}
    names = {n for n, p in tiny_vqgan.named_parameters() if id(p) in enc}
    assert names == {
        n for n, _ in tiny_vqgan.named_parameters() if n.split(".")[1] in ("token_emb", "pos_emb", "emb_norm", "blocks", "norm")
    }
    assert all(n.startswith("transformer.") for n in names)


def test_save_load_round_trip(tiny_vqgan, images, tmp_path):
    tiny_vqgan.save(tmp_path / "m", {"note": "x"})
    assert detect_family(tmp_path / "m") == "vqgan"
    assert json.loads((tmp_path / "m" / "unlearn_meta.json").read_text())["note"] == "x"
    loaded = VQGANModel.load(tmp_path / "m")
    m = parse_mask("center50").build(len(images), 32)
    assert torch.equal(loaded.generate(images, m, seed=2).raw, tiny_vqgan.generate(images, m, seed=2).raw)
    assert torch.allclose(loaded.encode(images, m), tiny_vqgan.encode(images, m))


def test_loader_names_wrong_weights(tiny_vqgan, tmp_path):
    from safetensors.torch import load_file, save_file

    tiny_vqgan.save(tmp_path / "m")
    weights = load_file(str(tmp_path / "m" / "model.safetensors"))
    weights["extra.weight"] = torch.zeros(1)
    weights["head.bias"] = torch.zeros(3)
    del weights["pos_emb"]
    save_file(weights, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(UserInputError, match="missing: pos_emb; unexpected: extra.weight; wrong shape: head.bias"):
        VQGANModel.load(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(UserInputError, match="not a VQ-GAN model folder"):
        VQGANModel.load(tmp_path / "m")


def test_wrong_image_size_is_a_user_error(tiny_vqgan):
    with pytest.raises(UserInputError, match="1x32x32"):
        tiny_vqgan.encode(torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32))


def test_token_loss_trains_the_transformer(tiny_vqgan, images):
    hidden = tiny_vqgan.token_mask(parse_mask("center50").build(len(images), 32))
    opt = torch.optim.Adam(tiny_vqgan.transformer.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        loss = tiny_vqgan.token_loss(images, hidden, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert all(p.grad is None for p in tiny_vqgan.tokenizer.parameters())
