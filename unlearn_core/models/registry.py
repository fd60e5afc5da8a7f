"""One registry of model families.

Each family declares itself in its own module, as `FAMILY = Family(...)`: its name and label, its
model class (an `I2IModel`), its presets, its trainer, the embedded checkpoint and the defaults
every entry point runs it with (the CLI with no flags, the app's fields and Example button,
`bench` and `table`). `BUILTIN` lists the families of this package, one line each; installed
packages add theirs through the `unlearn_core.families` entry point group (`plugins`). A family
module is imported only when the family is first asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import Any

from unlearn_core import plugins
from unlearn_core.errors import UserInputError
from unlearn_core.models.base import I2IModel

# name -> the module that declares FAMILY
BUILTIN = {
    "mae": "unlearn_core.models.mae",
    "vqgan": "unlearn_core.models.vqgan",
    "diffusion": "unlearn_core.models.diffusion",
}
DEFAULT = "mae"  # the family a run uses when none is named
# The settings a run of a family can start from: "demo", tuned on our data for the demonstration
# (`Family.defaults`), and "official", the official code's (`Family.official`).
RECIPES = ("demo", "official")


@dataclass(frozen=True)
class Defaults:
    """What a run of a family uses where the user set nothing."""

    steps: int  # unlearning steps
    lr: float  # peak learning rate of the cosine schedule
    mask: str = "center50"  # the mask runs are measured with (and the app opens on)
    train_mask: str | None = None  # the mask unlearning trains with; None: the run's mask
    # method -> forget-term weight, where the family's differs from the method's own
    alpha: Mapping[str, float] = field(default_factory=dict)
    sampling_steps: int | None = None  # rounds of the family's sampler; None: one pass

    def alpha_for(self, method: str, own: float) -> float:
        """The forget-term weight `method` uses on this family (`own`: the method's default)."""
        return float(self.alpha.get(method, own))


@dataclass(frozen=True)
class Measured:
    """A family's default run (cats forgotten, dogs kept) as measured and written up in the docs:
    the probe accuracy of each set before and after, under `mask`."""

    forget: tuple[float, float]
    retain: tuple[float, float]
    mask: str
    source: str  # the docs page with the figures and the command
    date: str

    @property
    def retain_drop(self) -> float:
        return self.retain[0] - self.retain[1]


# A retain set whose probe accuracy falls by more than this in the measured default run is damaged
# (as the app's verdict says, `serving.report`): the app warns before such a family's run.
DAMAGE = 0.1


@dataclass(frozen=True)
class Guide:
    """What the app tells a viewer about a family's runs: how its forgotten outputs look, where
    to look in the pictures, and what its default run was measured to do."""

    forgotten: str = "the forget set's generated regions stop showing what the input showed"
    look_for: str = "compare the generated region of each forget image with the original's; the retain images should not change"
    measured: Measured | None = None

    def known_limit(self) -> str | None:
        """A warning for before a run, when the measured default run damages the retain set."""
        m = self.measured
        if m is None or m.retain_drop <= DAMAGE:
            return None
        return (
            f"With its default settings this family damages the retain set too: under {m.mask}, dogs "
            f"{m.retain[0]:.3f} → {m.retain[1]:.3f} in probe accuracy while cats go {m.forget[0]:.3f} → {m.forget[1]:.3f} "
            f"(measured {m.date}, {m.source})."
        )


@dataclass(frozen=True)
class Family:
    """A model family: everything the library needs to know about it, in one place."""

    name: str  # as the CLI and the app name it ("mae")
    label: str  # as people read it ("ViTMAE (masked autoencoder)")
    model: type[I2IModel]
    presets: Mapping[str, Any]  # preset name -> config with `with_size(image_size, channels)`
    # train(source, preset, cfg, device, on_progress=None, **options) -> (model on the CPU, log)
    train: Callable
    defaults: Defaults
    embedded: str | None = None  # folder under checkpoints/ holding the embedded original
    guide: Guide = Guide()  # what the app tells a viewer about its runs
    # The official code's unlearning settings scaled to our data (docs/findings/fair-science.md,
    # 'The official recipe'): a run with `recipe="official"` starts from them instead of `defaults`.
    official: Defaults | None = None
    # built-in class -> folder under checkpoints/ of a model trained like the embedded original on
    # every built-in image but that class's: what a model that never saw it does (the "retrain"
    # reference of unlearning papers)
    references: Mapping[str, str] = field(default_factory=dict)

    def recipe(self, name: str = "demo") -> Defaults:
        """The settings of recipe `name` (`RECIPES`) for this family."""
        if name not in RECIPES:
            raise UserInputError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
        if name == "official":
            if self.official is None:
                raise UserInputError(f"the {self.name} family has no official recipe; use the demo recipe")
            return self.official
        return self.defaults

    def preset(self, name: str, image_size: int | None = None, channels: int | None = None):
        """The config of preset `name`, rebuilt for `image_size` / `channels` where given."""
        if name not in self.presets:
            raise UserInputError(f"no preset {name!r} for the {self.name} family; choose from {', '.join(self.presets)}")
        cfg = self.presets[name]
        if image_size is None and channels is None:
            return cfg
        return cfg.with_size(image_size or cfg.image_size, channels or cfg.channels)


def imported_when_called(module: str, name: str) -> Callable:
    """A function that imports `module` and calls its `name` when first called: a family's trainer
    lives in a module that imports the family's own, so the family refers to it this way."""

    def call(*args, **kwargs):
        return getattr(import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"`{module}.{name}`, imported when first called."
    return call


def family_names() -> list[str]:
    """Every family's name, this package's first, without importing any of them."""
    return [*BUILTIN, *(n for n in plugins.names(plugins.FAMILIES) if n not in BUILTIN)]


@cache
def _plugin_families() -> dict[str, object]:
    return plugins.load(plugins.FAMILIES)


@cache
def get_family(name: str) -> Family:
    """The family called `name` (a UserInputError naming the known ones otherwise)."""
    if name in BUILTIN:
        found = import_module(BUILTIN[name]).FAMILY
    elif name in _plugin_families():
        found = _plugin_families()[name]
    else:
        raise UserInputError(f"unknown model family {name!r}; known: {', '.join(family_names())}")
    if not isinstance(found, Family) or found.name != name or not issubclass(found.model, I2IModel):
        raise UserInputError(f"the {name!r} family is not a Family named {name!r} whose model is an I2IModel")
    return found


def families() -> dict[str, Family]:
    """name -> Family, every family (importing each)."""
    return {n: get_family(n) for n in family_names()}


def family_of(model: I2IModel) -> Family:
    return get_family(model.family)
