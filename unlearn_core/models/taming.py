"""Real VQGAN tokenizers: taming-transformers checkpoints (`.ckpt` + YAML) as diffusers VQModels.

Reference: Esser et al., CompVis/taming-transformers (`taming/models/vqgan.py` VQModel,
`taming/modules/diffusionmodules/model.py` Encoder/Decoder). The taming package itself cannot be
a dependency (it imports pytorch_lightning internals and torchvision, which break on current
torch), so we read its files: the YAML's `model.params` give the architecture, the checkpoint's
`state_dict` the weights, through an explicit key map into diffusers' VQModel, which has the same
layers under other names. The checkpoint is loaded with `torch.load(weights_only=True)`: no
pickled code runs. Keys we do not know are an error, except the training loss's (`loss.*`:
discriminator and LPIPS), which a tokenizer does not need.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from unlearn_core.errors import UserInputError
from unlearn_core.models.base import load_state_strict

RESNET = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def read_config(yaml_path: str | Path) -> dict:
    """The `model.params` of a taming VQModel YAML, checked."""
    import yaml

    try:
        doc = yaml.safe_load(Path(yaml_path).read_text())
        model = doc["model"]
        params = model["params"]
        dd = params["ddconfig"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise UserInputError(f"{Path(yaml_path).name}: not a taming-transformers model config ({e})") from None
    target = model.get("target", "")
    if not target.endswith("vqgan.VQModel"):
        raise UserInputError(f"{Path(yaml_path).name}: {target or 'no target'} is not supported; only taming.models.vqgan.VQModel")
    if dd.get("double_z"):
        raise UserInputError(f"{Path(yaml_path).name}: double_z is a KL autoencoder, not a VQGAN")
    return params


def _attention_levels(dd: dict) -> list[bool]:
    """Per resolution level (highest first): whether its blocks carry attention."""
    return [dd["resolution"] // 2**i in dd.get("attn_resolutions", []) for i in range(len(dd["ch_mult"]))]


def build_vqmodel(params: dict):
    """An empty diffusers VQModel with the architecture of taming `params`."""
    from diffusers import VQModel

    dd = params["ddconfig"]
    attn = _attention_levels(dd)
    return VQModel(
        in_channels=dd["in_channels"],
        out_channels=dd["out_ch"],
        down_block_types=tuple("AttnDownEncoderBlock2D" if a else "DownEncoderBlock2D" for a in attn),
        up_block_types=tuple("AttnUpDecoderBlock2D" if a else "UpDecoderBlock2D" for a in reversed(attn)),
        block_out_channels=tuple(dd["ch"] * m for m in dd["ch_mult"]),
        layers_per_block=dd["num_res_blocks"],
        latent_channels=dd["z_channels"],
        vq_embed_dim=params["embed_dim"],
        num_vq_embeddings=params["n_embed"],
        norm_num_groups=32,  # taming's Normalize
        sample_size=dd["resolution"],
    )


def _rename(key: str, levels: int) -> str | None:
    """One taming key -> its diffusers VQModel name (None for training-only `loss.*` keys)."""
    if key.startswith("loss."):
        return None
    part = r"(block|attn)\.(\d+)\.(\w+)\.(weight|bias)"
    rules = [
        (rf"^encoder\.down\.(\d+)\.{part}$", lambda m: f"encoder.down_blocks.{m[1]}.{_block(m[2], m[3], m[4])}.{m[5]}"),
        (r"^encoder\.down\.(\d+)\.downsample\.conv\.(\w+)$", lambda m: f"encoder.down_blocks.{m[1]}.downsamplers.0.conv.{m[2]}"),
        (rf"^decoder\.up\.(\d+)\.{part}$", lambda m: f"decoder.up_blocks.{levels - 1 - int(m[1])}.{_block(m[2], m[3], m[4])}.{m[5]}"),
        (r"^decoder\.up\.(\d+)\.upsample\.conv\.(\w+)$", lambda m: f"decoder.up_blocks.{levels - 1 - int(m[1])}.upsamplers.0.conv.{m[2]}"),
        (
            r"^(encoder|decoder)\.mid\.block_(\d)\.(\w+)\.(\w+)$",
            lambda m: f"{m[1]}.mid_block.resnets.{int(m[2]) - 1}.{RESNET[m[3]]}.{m[4]}",
        ),
        (r"^(encoder|decoder)\.mid\.attn_1\.(\w+)\.(\w+)$", lambda m: f"{m[1]}.mid_block.attentions.0.{ATTENTION[m[2]]}.{m[3]}"),
        (r"^(encoder|decoder)\.norm_out\.(\w+)$", lambda m: f"{m[1]}.conv_norm_out.{m[2]}"),
        (r"^((encoder|decoder)\.(conv_in|conv_out)|quant_conv|post_quant_conv|quantize\.embedding)\.(\w+)$", lambda m: m[0]),
    ]
    for pattern, to in rules:
        m = re.match(pattern, key)
        if m:
            try:
                return to(m)
            except KeyError:
                break
    raise UserInputError(f"unknown key in taming checkpoint: {key}")


def _block(kind: str, index: str, layer: str) -> str:
    table = RESNET if kind == "block" else ATTENTION
    return f"{'resnets' if kind == 'block' else 'attentions'}.{index}.{table[layer]}"


def convert_state_dict(state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """taming VQModel weights -> diffusers VQModel weights. Attention q/k/v/proj_out are 1x1
    convolutions in taming and linear layers in diffusers: (C, C, 1, 1) -> (C, C)."""
    out = {}
    for key, value in state.items():
        new = _rename(key, levels)
        if new is None:
            continue
        if re.search(r"\.(to_q|to_k|to_v|to_out\.0)\.weight$", new) and value.ndim == 4:
            value = value[:, :, 0, 0]
        out[new] = value
    return out


def load_taming_vqgan(ckpt_path: str | Path, yaml_path: str | Path):
    """A diffusers VQModel holding the weights of a taming-transformers VQGAN checkpoint."""
    params = read_config(yaml_path)
    try:
        raw = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserInputError(f"{Path(ckpt_path).name}: cannot read it as weights only (no pickled code is run): {e}") from None
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise UserInputError(f"{Path(ckpt_path).name}: no state_dict in the checkpoint")
    model = build_vqmodel(params)
    load_state_strict(model, convert_state_dict(state, len(params["ddconfig"]["ch_mult"])), Path(ckpt_path).name)
    return model.eval()
