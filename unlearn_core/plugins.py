"""Extensions from installed packages, found through Python entry points.

A package adds a model family, an unlearning method or a metric by naming it in its own
pyproject.toml under one of the groups below; nothing in this package needs editing:

    [project.entry-points."unlearn_core.methods"]
    my_method = "my_package.my_method"          # a module shaped like unlearn_core/methods/ours.py

The registries (`models.registry`, `methods`, `measure.metrics`) read their group once, when
first asked, so importing the package still loads nothing.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

FAMILIES = "unlearn_core.families"
METHODS = "unlearn_core.methods"
METRICS = "unlearn_core.metrics"


def names(group: str) -> list[str]:
    """The names the installed packages give under `group`, without importing them."""
    return sorted({ep.name for ep in entry_points(group=group)})


def load(group: str) -> dict[str, object]:
    """name -> the object each installed package names under `group`. A plug-in that fails to
    import is skipped with a warning naming it, so one broken package cannot stop the others."""
    found = {}
    for ep in entry_points(group=group):
        try:
            found[ep.name] = ep.load()
        except Exception as e:  # a third party's import error, whatever its type
            warnings.warn(f"plug-in {ep.name!r} ({ep.value}) in {group} could not be loaded: {type(e).__name__}: {e}", stacklevel=2)
    return found
