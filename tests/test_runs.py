"""A visitor's run without a browser (`serving.runs`): the page's fields by name to a run spec,
the page's updates from the first preview to the results and downloads, the page's opening values,
previews' messages, a user's image, pushing and the API's run."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import wait_for
from PIL import Image

from unlearn_core.errors import UserInputError
from unlearn_core.models.checkpoints import embedded_path
from unlearn_core.serving import history, runs, studio
from unlearn_core.serving import session as sessions
from unlearn_core.serving.runs import RunForm
from unlearn_core.serving.session import Session

LIMITS = dict(eval_masks=[], max_age=3600, max_mb=2048)  # runs measure their own mask only


@pytest.fixture(autouse=True)
def no_operator_folders(monkeypatch):
    monkeypatch.delenv("UNLEARN_ALLOWED_DIRS", raising=False)


def _form(**over) -> RunForm:
    """The page's fields for a quick MAE run."""
    return replace(runs.default_form(), **({"steps": 3, "lr": 5e-4, "image_metrics": False} | over))


# ------------------------------------------------------------------------------ fields


def test_the_page_opens_on_the_default_family_and_its_run():
    form = runs.default_form()
    d = studio.ui_defaults(runs.DEFAULT_MODEL)
    assert (form.fc, form.rc, form.model, form.checkpoint, form.mask_choice, form.method) == (
        "builtin:cat",
        "builtin:dog",
        "mae",
        "",
        d.mask,
        "ours",
    )
    assert (form.alpha, form.steps, form.lr, form.sampling, form.train_mask) == (d.alpha, d.steps, d.lr, d.sampling_steps, d.train_mask)
    spec = runs.default_spec(["patches75"])
    assert spec.forget == "builtin:cat" and spec.retain == "builtin:dog" and spec.checkpoint is None and spec.mask == "center50"
    assert spec.train_mask == "center50" and spec.eval_masks == ["patches75"]  # "same": the evaluation mask itself
    assert (spec.config.steps, spec.config.lr, spec.config.seed) == (500, 1e-3, 0)


def test_fields_by_name_become_the_run_spec(tmp_path):
    image = tmp_path / "a.png"
    Image.new("L", (32, 32), 255).save(image)
    spec = _form(fc=runs.UPLOAD, ff=[str(image)], rc="builtin:horse", steps="7", seed=2.0, train_mask="random").spec()
    assert spec.forget == [str(image)] and spec.retain == "builtin:horse" and spec.train_mask == "random"
    assert spec.config.steps == 7 and spec.config.seed == 2 and not spec.image_metrics
    with pytest.raises(UserInputError, match="upload some images"):
        _form(rc=runs.UPLOAD, rf=None).spec()
    bg = studio.editor_background()
    layer = np.zeros_like(bg)
    layer[:128] = 255  # the top half painted
    drawn = _form(mask_choice=runs.DRAW, drawn={"background": bg, "layers": [layer], "composite": bg}).spec()
    m = drawn.mask.build(1, 32)[0, 0]
    assert m[:16].all() and not m[16:].any()
    with pytest.raises(UserInputError, match="drawn mask is empty"):
        _form(mask_choice=runs.DRAW, drawn={"background": bg, "layers": [], "composite": bg}).spec()
    # a checkpoint folder: only the embedded ones, and the visitor's own where the caller allows them
    own = tmp_path / "own"
    own.mkdir()
    with pytest.raises(UserInputError, match="only reads the embedded checkpoints"):
        _form(checkpoint=str(own)).spec()
    assert _form(checkpoint=str(own)).spec(allowed=[own]).checkpoint == str(own.resolve())
    assert _form(checkpoint=str(embedded_path("mae"))).spec().checkpoint == str(embedded_path("mae").resolve())


def test_every_field_of_the_form_is_named():
    assert runs.FORM_FIELDS == (
        "fc", "ff", "rc", "rf", "model", "checkpoint", "mask_choice", "drawn", "method", "alpha", "steps", "lr", "seed", "sampling",
        "train_mask", "image_metrics",
    )  # fmt: skip
    with pytest.raises(TypeError):
        RunForm(**{name: None for name in runs.FORM_FIELDS if name != "seed"})  # a missing field is an error, not a default


# ------------------------------------------------------------------------------ a run


@pytest.mark.slow
def test_a_run_as_the_page_sees_it():
    """The original's preview first (live part shown, results hidden), then growing loss curves,
    then the results: summary, pictures, both tables, metrics and both files in the session's folder."""
    session = Session()
    views = list(runs.run_session(_form(), session, **(LIMITS | {"eval_masks": ["center50", "patches75"]})))
    first, last = views[0], views[-1]
    assert first.status == "Starting..." and first.live is True and first.results is False and isinstance(first.preview, Image.Image)
    assert first.plot is None and first.table is None  # the rest stays as it was
    steps = [v.plot["step"].max() for v in views[1:] if v.plot is not None]
    assert steps == sorted(steps) and steps[-1] == 3
    assert (
        last.status.startswith("Done: 3 steps. You waited") and "Forget set:" in last.status and last.results is True and last.live is None
    )
    assert "s unlearning" in last.status and "s measuring" in last.status
    measuring = [v.status for v in views if v.status and v.status.startswith("Unlearning done. Measuring")]
    assert measuring and measuring[-1].startswith("Unlearning done. Measuring both models on the held-out images: 100%")
    assert isinstance(last.compare, Image.Image) and isinstance(last.embedding, Image.Image)
    # the pictures under each mask of the table, the run's own first; the page shows any of them
    assert last.compare_mask == ["center50", "patches75"]
    assert runs.compare_under("patches75", session) is session.output.compares["patches75"]
    assert runs.compare_under("center50", session) is last.compare and runs.compare_under("center50", None) is None
    assert list(last.table.columns) == runs.METRIC_HEADERS and set(last.table["set"]) == {"forget", "retain"}
    assert list(last.mask_table["mask"]) == ["center50 *", "patches75"] and last.metrics["steps"] == 3
    assert Path(last.model_file).is_relative_to(session.tmp) and Path(last.model_file).name == "unlearned-model.zip"
    assert Path(last.report_file).read_text().startswith("<!doctype html>")
    assert all(v.session is session for v in views)
    assert session.output is not None and session.output.metrics is last.metrics and not session.running
    # the headline results came first, under the run's own mask; the per-mask table and the
    # embedding view followed with their own progress, the summary staying above it
    head = next(v for v in views if v.results)
    assert head.status.startswith("Done: 3 steps. You waited") and head.status.endswith(runs.EXTRAS_FOLLOW)
    assert head.compare_mask == ["center50"] and list(head.mask_table["mask"]) == ["center50 *"] and head.embedding is runs.CLEAR
    assert head.metrics["original"] == last.metrics["original"] and head.metrics["unlearned"] == last.metrics["unlearned"]
    extras = [v.status for v in views[views.index(head) + 1 : -1]]
    assert extras and all(e.startswith(head.status.removesuffix(runs.EXTRAS_FOLLOW)) for e in extras)
    assert "Per-mask table and embedding view: measuring, 100% (just measured: embedding view)." in extras[-1]
    assert last.status.split("\n\n")[0] == head.status.split("\n\n")[0]  # the same wait: the headline's
    assert "Other masks:" in last.status and "Other masks:" not in head.status and runs.EXTRAS_FOLLOW not in last.status
    assert "extras_seconds" in last.metrics and "extras_seconds" not in head.metrics
    # one run, one folder in the history, holding the finished run
    kept = history.runs(session.kept.parent)
    assert list(kept) == [session.kept.name] and list(kept[session.kept.name]["masks"]) == ["center50", "patches75"]
    assert sessions.RUNNING == set() and not session.stop_file.exists()
    session.cleanup()


def test_refused_fields_and_a_cancelled_run_are_one_update_each():
    session = Session()
    for form, words in ((_form(fc="builtin:unicorn"), "unicorn"), (_form(steps=0), "at least 1"), (_form(lr="abc"), "learning rate")):
        views = list(runs.run_session(form, session, **LIMITS))
        assert len(views) == 1 and views[0].status.startswith("**Error:**") and words in views[0].status
        assert views[0].live is None and not session.running and sessions.RUNNING == set()
    session.cancelled = session.waiting = True
    views = list(runs.run_session(_form(), session, **LIMITS))
    assert [v.status for v in views] == ["Cancelled before it started. Press **Unlearn** to run."]
    assert not session.cancelled and not session.waiting and session.output is None


@pytest.mark.slow
def test_closing_the_updates_stops_the_run():
    """Gradio closes the handler's generator when the page goes away: the run stops as well."""
    assert wait_for(lambda: not any(t.name == "unlearn-run" for t in threading.enumerate()))
    session = Session()
    views = runs.run_session(_form(steps=5000), session, **LIMITS)
    next(views), next(views)
    assert session.running and session.tmp in sessions.RUNNING
    views.close()
    assert not session.running and session.stop_file.exists() and session.tmp not in sessions.RUNNING
    assert wait_for(lambda: not any(t.name == "unlearn-run" for t in threading.enumerate()))
    session.cleanup()


def test_loss_frame_is_thinned_and_typed():
    rows = [{"step": i, "retain": 1.0 / i, "forget": 2.0 / i, "total": 3.0 / i} for i in range(1, 1001)]
    frame = runs.loss_frame(rows)
    assert list(frame.columns) == runs.LOSS_COLUMNS and set(frame["term"]) == {"retain", "forget", "total"}
    assert frame["step"].nunique() <= 201 and frame["step"].max() == 1000 and len(frame) == 3 * frame["step"].nunique()
    assert str(frame["step"].dtype) == "int64" and str(frame["loss"].dtype) == "float64" and str(frame["term"].dtype) == "string"
    assert runs.loss_frame([]).empty


# ------------------------------------------------------------------------------ previews and the rest


def test_preview_messages():
    assert runs.set_view(runs.UPLOAD, None, "mae", "") == (
        None,
        "Upload images or one zip (PNG, JPEG, WebP, BMP, GIF, TIFF; 20 MB a file).",
    )
    picture, text = runs.set_view("builtin:dog", None, "mae", "")
    assert isinstance(picture, Image.Image) and text.startswith("**797** images to unlearn on")
    assert runs.set_view("builtin:unicorn", None, "mae", "")[1].startswith("**Error:**")
    bg = studio.editor_background()
    blank = {"background": bg, "layers": [], "composite": bg}
    assert runs.mask_view(runs.DRAW, blank, "mae", "") == (
        None,
        "Paint the region to generate in white over the sample; it becomes the mask.",
    )
    picture, text = runs.mask_view("center25", None, "mae", "", seed="3")
    assert isinstance(picture, Image.Image) and text.startswith("Blue = generated. ")
    assert runs.mask_view("center25", None, "mae", "/etc")[1].startswith("**Error:**")


def test_try_own_and_push_need_a_finished_run():
    image = Image.new("RGB", (40, 40), (255, 255, 255))
    assert runs.try_own(None, "center50", None, None) == (None, "Upload or paste an image first.")
    assert runs.try_own(image, "center50", None, Session())[1].startswith("Run an unlearning first")
    session = Session()
    assert runs.push_model("lab/x", True, session, owner="lab") == "Run an unlearning first."
    session.output = object()
    assert (
        runs.push_model(" someone/x ", True, session, owner="lab") == "**Error:** this app pushes only to repositories of lab (lab/name)."
    )
    assert runs.push_model("lab/x", True, session).startswith("**Error:**")  # the session holds no run folder
    session.cleanup()


def test_the_api_run_takes_the_familys_schedule_where_it_names_none():
    api = dict(forget="builtin:cat", retain="builtin:dog", checkpoint="", mask="center50", method="ours", alpha=None, seed=0)
    api |= dict(sampling_steps=None, train_mask=None, fid=False, eval_masks=[])
    spec = runs.api_spec(model="vqgan", steps=None, lr=None, **api)
    family = studio.ui_defaults("vqgan")
    assert (spec.config.steps, spec.config.lr) == (family.steps, family.lr) and spec.train_mask is None
    spec = runs.api_spec(model="mae", steps=12, lr=None, **api)
    assert (spec.config.steps, spec.config.lr) == (12, studio.ui_defaults("mae").lr)
    for bad in ({"forget": "/etc"}, {"mask": "/etc/passwd"}, {"checkpoint": "/tmp"}):
        with pytest.raises(UserInputError, match="only reads the embedded checkpoints"):
            runs.api_spec(model="mae", steps=2, lr=1e-3, **(api | bad))


def test_run_outputs_are_the_views_fields_in_order():
    assert runs.RUN_OUTPUTS == (
        "status", "plot", "preview", "live", "results", "compare", "compare_mask", "table", "mask_table", "embedding", "metrics",
        "model_file",
        "report_file", "session",
    )  # fmt: skip
    assert isinstance(runs.RunView(table=pd.DataFrame()).table, pd.DataFrame) and runs.RunView().status is None


def test_the_rest_follows_the_headline_and_stops_when_asked():
    """A run's headline results hold its own mask only; `measure_extras` adds the other masks and
    the embedding view in a new output (the headline stays as a page shows it), and stops early
    with a note when asked."""
    from unlearn_core.run.engine import UnlearnConfig
    from unlearn_core.run.pipeline import RunSpec, measure_extras, run

    spec = RunSpec(
        mask="outpaint50", config=UnlearnConfig(steps=2, batch_size=4), eval_masks=["center50", "outpaint50"], image_metrics=False
    )
    head = run(spec, extras=False)
    assert list(head.metrics["masks"]) == ["outpaint50"] and list(head.compares) == ["outpaint50"] and head.embedding is None
    before = copy.deepcopy(head.metrics)
    heard = []
    full = measure_extras(head, heard.append)
    assert head.metrics == before and list(head.compares) == ["outpaint50"]
    assert list(full.metrics["masks"]) == ["center50", "outpaint50"]  # in the order asked for
    assert list(full.compares) == ["outpaint50", "center50"] and isinstance(full.embedding, Image.Image)
    assert full.metrics["masks"]["outpaint50"] == {k: head.metrics[k] for k in ("original", "unlearned")}
    assert list(full.metrics["reference"]["masks"]) == ["outpaint50", "center50"]  # MAE has a never-saw-cats model
    assert set(full.metrics["change"]) == {"outpaint50", "center50"}
    assert all(e.extras for e in heard) and heard[-1].what == "embedding view" and heard[-1].done == pytest.approx(heard[-1].total)
    stopped = measure_extras(head, should_stop=lambda: True)
    assert list(stopped.metrics["masks"]) == ["outpaint50"] and isinstance(stopped.embedding, Image.Image)
    assert stopped.metrics["notes"][-1] == "the per-mask table was stopped by the user: 0 of 1 other mask measured"
