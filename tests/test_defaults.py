"""Defaults in one place: for every family, the CLI with no flags, the app's fields (and its
Example button, for the family the page opens on), `bench` and `table` all run what the family's
registry record says (`Family.defaults`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from unlearn_core.cli import build_parser, spec_from_args
from unlearn_core.models import family_names, get_family
from unlearn_core.models.checkpoints import cached_model
from unlearn_core.models.registry import DAMAGE
from unlearn_core.run.engine import UnlearnConfig
from unlearn_core.run.pipeline import prepare
from unlearn_core.serving import runs, studio
from unlearn_core.studies import bench
from unlearn_core.studies.table import BASE_ROWS, TableSpec, _spec_for

OURS = next(r for r in BASE_ROWS if r.key == "ours")


def _settings(p) -> tuple:
    """What a prepared run will do, as the registry's defaults name it."""
    return (p.config.steps, p.config.lr, p.config.alpha, p.mask.name, p.train_mask.name, p.sampling_steps)


def _expected(family: str) -> tuple:
    d = get_family(family).defaults
    return (d.steps, d.lr, d.alpha_for("ours", 1.0), d.mask, d.train_mask or d.mask, d.sampling_steps)


@pytest.mark.parametrize("family", family_names())
def test_every_entry_point_runs_the_family_defaults(family):
    expected = _expected(family)
    # the CLI with only the required arguments
    args = build_parser().parse_args(["unlearn", "--model", family, "--forget", "builtin:cat", "--retain", "builtin:dog", "--out", "x"])
    assert _settings(prepare(spec_from_args(args))) == expected
    # the app: the fields as they stand once the family is chosen
    shown = studio.ui_defaults(family)
    form = replace(
        runs.default_form(), model=family, mask_choice=shown.mask, alpha=shown.alpha, steps=shown.steps, lr=shown.lr,
        sampling=shown.sampling_steps, train_mask=shown.train_mask,
    )  # fmt: skip
    assert _settings(prepare(form.spec(eval_masks=[]))) == expected
    # bench's default run
    model = cached_model(family)
    train_with, measure_with = bench.masks(model)
    cfg = UnlearnConfig().for_model(model)
    assert (cfg.steps, cfg.lr, cfg.alpha, measure_with.name, train_with.name, model.sampling_steps) == expected
    # the results table's row of the paper's method under the family's mask
    table = TableSpec(models=[family], masks=[expected[3]], out=Path("unused"))
    assert _settings(prepare(_spec_for(table, family, OURS, expected[3]))) == expected


def test_the_example_button_runs_the_cli_default():
    """The page opens on (and Example sets) the run `unlearn` makes with no flags."""
    args = build_parser().parse_args(["unlearn", "--forget", "builtin:cat", "--retain", "builtin:dog", "--out", "x"])
    cli = prepare(spec_from_args(args))
    app = prepare(runs.default_spec([]))
    assert runs.default_form().model == args.model
    assert _settings(app) == _settings(cli)


@pytest.mark.parametrize("family", family_names())
def test_what_the_app_says_of_a_family_is_in_its_docs(family):
    """A family's measured default run (the app's 'Known limit' note) gives figures its docs page has,
    and a family whose retain set falls by more than DAMAGE there is warned of before a run."""
    guide = get_family(family).guide
    assert guide.forgotten and guide.look_for
    m = guide.measured
    if m is None:
        assert guide.known_limit() is None
        return
    page = (Path(__file__).resolve().parent.parent / m.source).read_text()
    assert m.date in page and f"`{m.mask}`" in page
    for v in (*m.forget, *m.retain):
        assert f"{v:.2f}".rstrip("0") in page or f"{v:.3f}".rstrip("0") in page, v
    limit = guide.known_limit()
    assert (limit is not None) == (m.retain_drop > DAMAGE)
    if limit:
        assert f"dogs {m.retain[0]:.3f} → {m.retain[1]:.3f}" in limit and m.source in limit
