"""Model families behind one interface (`base.I2IModel`), found through one registry
(`registry`): each family lives in its own module, which declares it as `FAMILY`, and is imported
only when asked for, so importing the package loads nothing. A new family is a new module plus one
line in `registry.BUILTIN` (or an entry point of an installed package, see `unlearn_core.plugins`).
"""

from __future__ import annotations

from unlearn_core.models.base import Generation, I2IModel
from unlearn_core.models.registry import Defaults, Family, Guide, Measured, families, family_names, family_of, get_family


def family_class(family: str) -> type[I2IModel]:
    """The model class of `family`."""
    return get_family(family).model


__all__ = [
    "Defaults",
    "Family",
    "Generation",
    "Guide",
    "Measured",
    "I2IModel",
    "families",
    "family_class",
    "family_names",
    "family_of",
    "get_family",
]
