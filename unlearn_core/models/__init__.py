"""Model families behind one interface (`base.I2IModel`); each family lives in its own file and
is imported only when asked for, so importing the package loads nothing."""

from __future__ import annotations

from .base import Generation, I2IModel

FAMILIES = {"mae": "ViTMAE (masked autoencoder)"}


def family_class(family: str) -> type:
    if family == "mae":
        from .mae import MAEModel

        return MAEModel
    raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


__all__ = ["FAMILIES", "Generation", "I2IModel", "family_class"]
