"""Our taming-transformers -> diffusers converter against the real taming VQModel.

The taming package (taming-transformers-rom1504, installed by scripts/test.sh with --no-deps)
imports pytorch_lightning and its own `taming.main` (torchvision, Lightning internals); both are
stubbed here, as DESIGN.md describes, so its model classes can be built on the CPU.
"""

import sys
import types

import pytest
import torch

from unlearn_core.errors import UserInputError
from unlearn_core.models.taming import load_taming_vqgan

DDCONFIG = {
    "double_z": False,
    "z_channels": 8,
    "resolution": 32,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [16],  # attention in the second level too, not only in the middle
    "dropout": 0.0,
}
YAML = """model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 4
    n_embed: 16
    ddconfig:
      double_z: false
      z_channels: 8
      resolution: 32
      in_channels: 3
      out_ch: 3
      ch: 32
      ch_mult: [1, 2]
      num_res_blocks: 1
      attn_resolutions: [16]
      dropout: 0.0
    lossconfig:
      target: taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator
      params: {disc_start: 10000}
"""


@pytest.fixture
def taming_vqmodel(monkeypatch):
    lightning = types.ModuleType("pytorch_lightning")
    lightning.LightningModule = torch.nn.Module
    monkeypatch.setitem(sys.modules, "pytorch_lightning", lightning)
    try:
        import taming  # noqa: F401

        main = types.ModuleType("taming.main")
        main.instantiate_from_config = lambda config: torch.nn.Identity()  # the loss: not needed here
        monkeypatch.setitem(sys.modules, "taming.main", main)
        from taming.models.vqgan import VQModel
    except ImportError as e:
        print(f"skipping: taming-transformers-rom1504 cannot be imported ({e})")
        pytest.skip(f"taming-transformers-rom1504 cannot be imported ({e}); scripts/test.sh installs it with --no-deps")
    torch.manual_seed(0)
    model = VQModel(ddconfig=DDCONFIG, lossconfig={"target": "torch.nn.Identity"}, n_embed=16, embed_dim=4).eval()
    with torch.no_grad():
        for p in model.parameters():  # away from the default init, so that every weight matters
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture
def taming_files(taming_vqmodel, tmp_path):
    state = dict(taming_vqmodel.state_dict())
    state["loss.discriminator.main.0.weight"] = torch.zeros(1)  # training-only keys are dropped
    torch.save({"state_dict": state, "global_step": 7, "epoch": 1}, tmp_path / "last.ckpt")
    (tmp_path / "model.yaml").write_text(YAML)
    return tmp_path / "last.ckpt", tmp_path / "model.yaml"


@torch.no_grad()
def test_converted_tokenizer_reproduces_taming(taming_vqmodel, taming_files):
    ours = load_taming_vqgan(*taming_files)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    h_ref = taming_vqmodel.quant_conv(taming_vqmodel.encoder(x))
    h = ours.encode(x).latents
    assert h.shape == h_ref.shape == (4, 4, 16, 16)
    assert torch.allclose(h, h_ref, atol=1e-5)
    quant_ref, _, (_, _, codes_ref) = taming_vqmodel.quantize(h_ref)
    quant, _, (_, _, codes) = ours.quantize(h)
    assert torch.equal(codes.flatten(), codes_ref.flatten())
    out_ref = taming_vqmodel.decode(quant_ref)
    out = ours.decode(quant, force_not_quantize=True).sample
    assert torch.allclose(out, out_ref, atol=1e-5)


def test_unknown_keys_and_pickles_are_refused(taming_vqmodel, taming_files, tmp_path):
    ckpt, yaml_path = taming_files
    state = dict(taming_vqmodel.state_dict())
    state["encoder.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, tmp_path / "odd.ckpt")
    with pytest.raises(UserInputError, match="unknown key in taming checkpoint: encoder.extra.weight"):
        load_taming_vqgan(tmp_path / "odd.ckpt", yaml_path)
    del state["encoder.extra.weight"], state["quant_conv.bias"]
    torch.save({"state_dict": state}, tmp_path / "short.ckpt")
    with pytest.raises(UserInputError, match="missing: quant_conv.bias"):
        load_taming_vqgan(tmp_path / "short.ckpt", yaml_path)
    torch.save({"state_dict": {}, "payload": _Payload()}, tmp_path / "evil.ckpt")
    with pytest.raises(UserInputError, match="no pickled code is run"):
        load_taming_vqgan(tmp_path / "evil.ckpt", yaml_path)


def test_config_is_checked(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(YAML.replace("taming.models.vqgan.VQModel", "taming.models.vqgan.GumbelVQ"))
    with pytest.raises(UserInputError, match="only taming.models.vqgan.VQModel"):
        load_taming_vqgan(tmp_path / "none.ckpt", bad)
    bad.write_text("just: text")
    with pytest.raises(UserInputError, match="not a taming-transformers model config"):
        load_taming_vqgan(tmp_path / "none.ckpt", bad)


class _Payload:
    """Any object beyond tensors and plain containers: weights-only loading refuses it."""


def test_vqgan_transformer_trains_on_a_taming_tokenizer(taming_files, tmp_path):
    """`train --model vqgan --tokenizer DIR`: stage 2 only, on a real-format tokenizer's tokens, at
    its size and channels; the model saves and loads like ours."""
    from PIL import Image

    from unlearn_core.models.train import TrainConfig, train_family
    from unlearn_core.models.vqgan import VQGANModel

    data = tmp_path / "images"
    data.mkdir()
    for i in range(12):
        Image.new("RGB", (40, 36), (20 * i, 120, 200 - 10 * i)).save(data / f"{i}.png")
    seen = []
    model, log = train_family("vqgan", data, "tiny", TrainConfig(steps=3, batch_size=4, warmup=1), torch.device("cpu"),
                              lambda done, total, loss: seen.append((done, total)), tokenizer=taming_files[0].parent)  # fmt: skip
    assert seen[-1] == (3, 3) and log["tokenizer"]["source"] == taming_files[0].parent.name
    assert (model.image_size, model.channels, model.grid) == (32, 3, 16) and model.cfg.transformer.codebook_size == 16
    model.save(tmp_path / "out")
    again = VQGANModel.load(tmp_path / "out")
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(model.tokenize(x), again.tokenize(x))
    with pytest.raises(UserInputError, match="leave out --size and --channels"):
        train_family("vqgan", data, "tiny", TrainConfig(steps=1), torch.device("cpu"), tokenizer=taming_files[0].parent, image_size=64)
    with pytest.raises(UserInputError, match="no preset 'big' for the vqgan family"):  # was a bare KeyError
        train_family("vqgan", data, "big", TrainConfig(steps=1), torch.device("cpu"), tokenizer=taming_files[0].parent)
