"""Model families behind one interface (`base.I2IModel`); each family lives in its own file and
is imported only when asked for, so importing the package loads nothing. A new family is a new
file plus one line in each table below."""

from __future__ import annotations

from importlib import import_module

from unlearn_core.models.base import Generation, I2IModel

FAMILIES = {
    "mae": "ViTMAE (masked autoencoder)",
    "vqgan": "VQ-GAN + token transformer (MAGE)",
    "diffusion": "conditional diffusion UNet (Palette)",
}
_CLASSES = {"mae": "mae.MAEModel", "vqgan": "vqgan.VQGANModel", "diffusion": "diffusion.DiffusionModel"}  # module.Class under models/


def family_class(family: str) -> type:
    if family not in _CLASSES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    module, name = _CLASSES[family].rsplit(".", 1)
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = ["FAMILIES", "Generation", "I2IModel", "family_class"]
