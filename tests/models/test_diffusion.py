"""The diffusion family on a tiny, untrained configuration (CPU, no files but tmp_path)."""

import inspect
import json

import pytest
import torch
import torch.nn.functional as F

from unlearn_core.data.masks import parse_mask
from unlearn_core.errors import UserInputError
from unlearn_core.methods import UnlearnBatch
from unlearn_core.methods.ours import loss as ours_loss
from unlearn_core.models import I2IModel, family_class
from unlearn_core.models.checkpoints import detect_family
from unlearn_core.models.diffusion import PRESETS, DiffusionModel


@pytest.fixture
def tiny_diffusion() -> DiffusionModel:
    return DiffusionModel.from_config(PRESETS["tiny"], seed=0).eval()


def test_implements_the_protocol_and_is_registered(tiny_diffusion):
    assert isinstance(tiny_diffusion, I2IModel) and family_class("diffusion") is DiffusionModel
    assert tiny_diffusion.unet.config.in_channels == 3 and tiny_diffusion.channels == 1


def test_features_are_every_skip_the_frozen_up_blocks_read(tiny_diffusion, images):
    """The features we compare are the feature maps the UNet's own forward hands its up blocks:
    the middle block's output and every skip connection, the input convolution's output included
    (the official code's `hs`: every input block's output, plus the middle block)."""
    u = tiny_diffusion.unet
    read = []

    def record(module, args, kwargs):
        got = inspect.signature(module.forward).bind(*args, **kwargs).arguments
        if module is u.up_blocks[0]:
            read.append(got["hidden_states"])
        read.extend(got["res_hidden_states_tuple"])

    hooks = [b.register_forward_pre_hook(record, with_kwargs=True) for b in u.up_blocks]
    inp, t = torch.rand(len(images), 3, 32, 32), torch.randint(0, 100, (len(images),))
    with torch.no_grad():
        u(inp, t)
        for h in hooks:
            h.remove()
        ours = tiny_diffusion.features(inp, t)
    skips = 1 + sum(len(b.resnets) + (b.downsamplers is not None) for b in u.down_blocks)
    assert len(ours) == len(read) == skips + 1
    unmatched = list(read)
    for f in ours:
        i = next(i for i, r in enumerate(unmatched) if r.shape == f.shape and torch.allclose(r, f, atol=1e-6))
        unmatched.pop(i)
    assert not unmatched


def test_flattened_features_give_the_sum_of_layer_mses(tiny_diffusion, images):
    m = parse_mask("center50").build(len(images), 32)
    a = [f.detach() for f in tiny_diffusion.features(torch.rand(8, 3, 32, 32), torch.full((8,), 5))]
    b = [f + 0.1 * torch.randn_like(f) * (i + 1) for i, f in enumerate(a)]
    per_layer = sum(F.mse_loss(x, y) for x, y in zip(a, b, strict=True))
    assert torch.allclose(F.mse_loss(tiny_diffusion.flatten_features(a), tiny_diffusion.flatten_features(b)), per_layer, rtol=1e-5)
    e = tiny_diffusion.encode(images, m, seed=1)
    assert e.shape == (len(images), sum(f[0].numel() for f in a))


def test_encode_is_fixed_by_seed_and_the_forget_target_holds_no_image(tiny_diffusion, images):
    m = parse_mask("center50").build(len(images), 32)
    e = tiny_diffusion.encode(images, m, seed=3)
    assert torch.equal(e, tiny_diffusion.encode(images, m, seed=3))
    assert not torch.equal(e, tiny_diffusion.encode(images, m, seed=4))
    # the teacher's forget target: x's conditioning, pure noise in the hole of the noisy target,
    # so it does not depend on the hidden pixels at all, while the student's embedding does
    changed = images * (1 - m) + torch.rand_like(images) * m
    target = tiny_diffusion.encode_noise(images, torch.rand_like(images), m, seed=3)
    assert torch.allclose(target, tiny_diffusion.encode_noise(changed, torch.rand_like(images), m, seed=3), atol=1e-6)
    assert not torch.allclose(tiny_diffusion.encode(changed, m, seed=3), e, atol=1e-4)
    assert not torch.allclose(target, e, atol=1e-4)


def test_one_pass_pairs_give_what_separate_calls_give(tiny_diffusion, images):
    """The student's retain + forget pass and the teacher's retain + forget-target pass: each half
    draws its timesteps and noise as its own call would, under its own mask."""
    a, b = (images[:4], parse_mask("outpaint50").build(4, 32)), (images[4:], parse_mask("center50").build(4, 32))
    with torch.no_grad():
        pair = tiny_diffusion.encode_pair(a, b, seed=9)
        both = tiny_diffusion.encode_and_noise(a, b[0], torch.rand_like(b[0]), b[1], seed=9)
        alone = tiny_diffusion.encode(*a, seed=9), tiny_diffusion.encode(*b, seed=9)
        target = tiny_diffusion.encode_noise(b[0], torch.rand_like(b[0]), b[1], seed=9)
    for got, want in zip((*pair, *both), (*alone, alone[0], target), strict=True):
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(both[1], pair[1], atol=1e-4)  # the forget target is not the image's


@pytest.mark.slow
def test_sampling_is_seeded_keeps_visible_pixels_and_takes_steps(tiny_diffusion, images):
    m = parse_mask("outpaint50").build(len(images), 32)
    a, b = tiny_diffusion.generate(images, m, seed=5), tiny_diffusion.generate(images, m, seed=5)
    assert torch.equal(a.raw, b.raw) and a.raw.shape == images.shape
    assert 0 <= a.raw.min() and a.raw.max() <= 1
    assert torch.equal(a.composite * (1 - a.mask), images * (1 - a.mask)) and torch.equal(a.mask, m)
    assert not torch.equal(tiny_diffusion.generate(images, m, seed=6).raw, a.raw)
    calls = []
    original = tiny_diffusion.unet.forward
    tiny_diffusion.unet.forward = lambda *args, **kw: calls.append(1) or original(*args, **kw)
    tiny_diffusion.generate(images, m, steps=3)
    assert len(calls) == 3
    with pytest.raises(UserInputError, match="sampling steps"):
        tiny_diffusion.generate(images, m, steps=0)


def test_only_the_encoder_half_is_listed(tiny_diffusion):
    enc = {id(p) for p in tiny_diffusion.encoder_parameters()}
    names = {n for n, p in tiny_diffusion.named_parameters() if id(p) in enc}
    assert names == {
        n for n, _ in tiny_diffusion.named_parameters() if n.split(".")[1] in ("conv_in", "time_embedding", "down_blocks", "mid_block")
    }
    assert not any(n.startswith(("unet.up_blocks", "unet.conv_out", "unet.conv_norm_out")) for n in names)


def test_official_forget_term_reaches_only_the_encoder_half(tiny_diffusion, images):
    teacher = DiffusionModel.from_config(PRESETS["tiny"], seed=0).eval().requires_grad_(False)
    m = parse_mask("center50").build(4, 32)
    batch = UnlearnBatch(images[:4], images[4:], torch.rand(4, 1, 32, 32), m, m, seed=7)
    total, terms = ours_loss(tiny_diffusion, teacher, batch, 1.0)
    assert terms["retain"].item() == 0  # same weights, same seed: the retain term starts at zero
    assert terms["forget"].item() > 0
    total.backward()
    enc = {id(p) for p in tiny_diffusion.encoder_parameters()}
    assert all((p.grad is not None) == (id(p) in enc) for p in tiny_diffusion.parameters())


@pytest.mark.slow
def test_save_load_round_trip_in_diffusers_format(tiny_diffusion, images, tmp_path):
    tiny_diffusion.save(tmp_path / "m", {"note": "x"})
    assert (tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert (tmp_path / "m" / "scheduler" / "scheduler_config.json").exists()
    assert json.loads((tmp_path / "m" / "unlearn_meta.json").read_text())["note"] == "x"
    assert detect_family(tmp_path / "m") == "diffusion"
    loaded = DiffusionModel.load(tmp_path / "m")
    m = parse_mask("center50").build(len(images), 32)
    assert loaded.sampling_steps == tiny_diffusion.sampling_steps
    assert torch.equal(loaded.generate(images, m, seed=2).raw, tiny_diffusion.generate(images, m, seed=2).raw)
    assert torch.allclose(loaded.encode(images, m, seed=1), tiny_diffusion.encode(images, m, seed=1))


@pytest.mark.slow
def test_a_plain_diffusers_folder_loads(tiny_diffusion, images, tmp_path):
    """A UNet2DModel saved by diffusers alone (no metadata of ours): found and loaded."""
    from diffusers import DDPMScheduler

    tiny_diffusion.unet.save_pretrained(tmp_path / "p" / "unet")
    DDPMScheduler.from_config(tiny_diffusion.scheduler_config).save_pretrained(tmp_path / "p" / "scheduler")
    assert detect_family(tmp_path / "p") == "diffusion"
    loaded = DiffusionModel.load(tmp_path / "p")
    m = parse_mask("center25").build(len(images), 32)
    assert torch.equal(loaded.generate(images, m, seed=2, steps=4).raw, tiny_diffusion.generate(images, m, seed=2, steps=4).raw)


def test_loader_refuses_unconditional_unets_and_pickles(tmp_path):
    from diffusers import UNet2DModel

    plain = UNet2DModel(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(8, 16), norm_num_groups=4,
                        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))  # fmt: skip
    plain.save_pretrained(tmp_path / "u" / "unet")
    with pytest.raises(UserInputError, match="takes 1 input channels; a conditional .* takes 3"):
        DiffusionModel.load(tmp_path / "u")
    tiny = DiffusionModel.from_config(PRESETS["tiny"])
    tiny.unet.save_pretrained(tmp_path / "b" / "unet", safe_serialization=False)
    with pytest.raises(UserInputError, match="only safetensors"):
        DiffusionModel.load(tmp_path / "b")
    with pytest.raises(UserInputError, match="not a diffusion model folder"):
        DiffusionModel.load(tmp_path)


def test_wrong_image_size_is_a_user_error(tiny_diffusion):
    with pytest.raises(UserInputError, match="1x32x32"):
        tiny_diffusion.encode(torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32))


@pytest.mark.slow
def test_denoising_loss_trains_the_unet(tiny_diffusion, images):
    m = parse_mask("center50").build(len(images), 32)
    opt = torch.optim.Adam(tiny_diffusion.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        loss = tiny_diffusion.denoising_loss(images, m, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) < 0.7 * sum(losses[:10])


def test_fast_upsampling_matches_diffusers_own_and_keeps_weight_names(tiny_diffusion):
    """The family swaps diffusers' nearest-x2 upsamplers for a faster equivalent: same outputs,
    same parameter names (so folders load and save as diffusers writes them)."""
    from unlearn_core.models.diffusion import NearestUpsample

    plain = PRESETS["tiny"].unet().eval()
    plain.load_state_dict(tiny_diffusion.unet.state_dict())
    assert list(plain.state_dict()) == list(tiny_diffusion.unet.state_dict())
    assert any(isinstance(m, NearestUpsample) for m in tiny_diffusion.unet.modules())
    assert not any(isinstance(m, NearestUpsample) for m in plain.modules())
    inp, t = torch.rand(70, 3, 32, 32), torch.randint(0, 100, (70,))
    with torch.no_grad():
        assert torch.allclose(plain(inp, t).sample, tiny_diffusion.unet(inp, t).sample, atol=1e-5)
        up = next(m for m in tiny_diffusion.unet.modules() if isinstance(m, NearestUpsample))
        h = torch.rand(2, up.conv.in_channels, 5, 5)
        assert torch.allclose(up(h, output_size=(11, 11)), up.conv(F.interpolate(h, size=(11, 11), mode="nearest")))


def test_resnet_upsamplers_are_left_as_they_are():
    """A UNet whose up blocks upsample with resnets (`upsample_type="resnet"`) loads unchanged."""
    from diffusers import UNet2DModel

    from unlearn_core.models.diffusion import NearestUpsample

    c = PRESETS["tiny"]
    unet = UNet2DModel(
        sample_size=32, in_channels=3, out_channels=1, block_out_channels=c.block_out_channels, layers_per_block=1,
        down_block_types=c.down_block_types, up_block_types=c.up_block_types, attention_head_dim=8, norm_num_groups=4,
        upsample_type="resnet",
    )  # fmt: skip
    model = DiffusionModel(unet, dict(c.scheduler().config), 4)
    assert not any(isinstance(m, NearestUpsample) for m in model.modules())
    assert model.generate(torch.rand(2, 1, 32, 32), parse_mask("center50").build(2, 32), steps=2).raw.shape == (2, 1, 32, 32)
