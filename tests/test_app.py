"""The web app: handlers called directly, and the API through gradio_client against a live server."""

from __future__ import annotations

import json
import shutil
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import app
from unlearn_core.methods import get_method
from unlearn_core.models import family_class, get_family
from unlearn_core.models.checkpoints import cached_model
from unlearn_core.run.engine import default_alpha
from unlearn_core.serving import history, runs, studio
from unlearn_core.serving import session as sessions


def _drain(gen):
    """Run a generator handler to its end; returns every update as a dict by output name."""
    return [dict(zip(app.RUN_OUTPUTS, u, strict=True)) for u in gen]


@pytest.fixture(autouse=True)
def _own_mask_only(monkeypatch):
    """Runs here measure their own mask only (the per-mask table costs a minute for the iterative
    families); `test_full_run_through_the_handler` checks the table over every preset."""
    monkeypatch.setattr(app, "EVAL_MASKS", [])


def _run_args(**over):
    args = dict(
        fc="builtin:cat",
        ff=None,
        rc="builtin:dog",
        rf=None,
        model="mae",
        checkpoint="",
        mask_choice="outpaint50",
        drawn=None,
        method="ours",
        alpha=None,
        steps=12,
        lr=3e-4,
        seed=0,
        sampling=None,
        train_mask="same",
        image_metrics=False,
        session=None,
    )
    args.update(over)
    return args


# ------------------------------------------------------------------------------ handlers


def test_show_set_builtin_and_upload(tmp_path):
    files, picture, info = app.show_set("builtin:dog", None, "mae", "")
    assert "797" in info and "200 held out" in info
    assert picture.size == (8 * 68 - 4, 2 * 68 - 4)  # the first 16 images, two rows of eight
    good = tmp_path / "a.png"
    Image.new("RGB", (40, 40), (200, 10, 10)).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"not really a png")
    empty = tmp_path / "c.png"
    empty.write_bytes(b"")
    _, picture, info = app.show_set(runs.UPLOAD, [str(good)], "mae", "")
    assert picture.size == (64, 64) and "evaluation uses the same images" in info
    _, picture, info = app.show_set(runs.UPLOAD, [str(good), str(bad)], "mae", "")
    assert picture is None and "Error" in info and "b.png" in info
    _, picture, info = app.show_set(runs.UPLOAD, [str(good), str(empty)], "mae", "")
    assert picture is None and "c.png: empty file" in info


# the forget-term weight the MAE family runs ours with (its `Defaults.alpha`)
MAE_ALPHA = default_alpha("ours", family_class("mae"))


def _component(elem_id: str):
    return next(b for b in app.demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def test_fields_show_the_values_a_run_uses():
    """What a field shows before anyone touches it is what runs (the alpha field used to show 0)."""
    d = runs.default_form()
    assert d.alpha == studio.ui_defaults("mae").alpha == MAE_ALPHA
    fields = {"alpha": "alpha", "steps": "steps", "lr": "lr", "seed": "seed", "method": "method", "mask": "mask_choice", "model": "model"}
    for elem_id, name in fields.items():
        assert _component(elem_id).value == getattr(d, name), elem_id
    assert app.method_fields("ours", "mae") == (MAE_ALPHA, "same")
    spec = studio.make_spec("builtin:cat", "builtin:dog", "mae", None, "center50", "ours", d.alpha, d.steps, d.lr, d.seed)
    assert spec.config.resolved_alpha() == MAE_ALPHA and spec.config.steps == d.steps


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("steps", None, "steps is empty"),
        ("steps", 12.5, "whole number"),
        ("lr", "abc", "learning rate must be a number"),
        ("lr", 0, "learning rate must be positive"),
        ("alpha", -1, "alpha must be zero or positive"),
        ("alpha", float("nan"), "alpha must be zero or positive"),
        ("seed", None, "seed is empty"),
    ],
)
def test_bad_settings_are_named(field, value, message):
    out = _drain(app.run_unlearning(**_run_args(**{field: value})))
    assert len(out) == 1 and out[0]["status"].startswith("**Error:**") and message in out[0]["status"]


@pytest.mark.slow
def test_full_run_through_the_handler(monkeypatch):
    monkeypatch.setattr(app, "EVAL_MASKS", None)  # the app's default: every preset
    updates = _drain(app.run_unlearning(**_run_args()))
    first, last = updates[0], updates[-1]
    assert first["live"]["visible"] is True and first["results"]["visible"] is False  # results appear when there are some
    assert last["status"].startswith("Done: 12 steps") and "Forget set:" in last["status"] and "Retain set:" in last["status"]
    plot = last["plot"]
    assert list(plot.columns) == runs.LOSS_COLUMNS and set(plot["term"]) == {"retain", "forget", "total"} and plot["step"].max() == 12
    assert isinstance(last["compare"], Image.Image) and last["compare"].height > 400 and last["results"]["visible"] is True
    assert set(last["table"]["set"]) == {"forget", "retain"} and last["metrics"]["steps"] == 12
    # probe accuracy under every preset mask, the run's own first and starred; FID off (the app's CPU default)
    assert list(last["mask_table"]["mask"]) == ["outpaint50 *", "center25", "center50", "outpaint25", "patches75"]
    assert last["compare_mask"]["choices"] == ["outpaint50", "center25", "center50", "outpaint25", "patches75"]
    assert last["compare_mask"]["value"] == "outpaint50" and "verdict" in last["mask_table"].columns
    assert "not computed (FID off)" in set(last["table"]["original"])
    report = Path(last["report_file"]).read_text()
    assert isinstance(last["embedding"], Image.Image) and "Encoder embeddings" in report
    assert last["model_file"].endswith("unlearned-model.zip") and report.startswith("<!doctype html>")
    assert "mae-animals" in report and str(Path(app.__file__).parent) not in report  # base model by name, not server path
    # every output is something its component can send to the browser
    fn = next(d for d in app.demo.fns.values() if d.name == "run_unlearning")
    for component, value in zip(fn.outputs, last.values(), strict=True):
        if not isinstance(component, (gr.State, gr.Row, gr.Column)) and not isinstance(value, (dict, type(gr.skip()))):
            component.postprocess(value)
    session = last["session"]
    assert session.output is not None and not session.running
    # intermediate updates carried a growing loss series
    steps_seen = [u["plot"]["step"].max() for u in updates[1:-1] if hasattr(u["plot"], "columns") and len(u["plot"])]
    assert steps_seen == sorted(steps_seen)
    # try-your-own goes through both models of this session, under columns that say what they are
    grid, msg = runs.try_own(Image.new("RGB", (64, 48), (255, 255, 255)), "center50", None, session)
    assert isinstance(grid, Image.Image) and msg == ""
    # the session's files live under this process's workspace
    assert Path(session.tmp).parent == Path(app.workspace()) and Path(last["model_file"]).is_relative_to(session.tmp)
    session.cleanup()


def test_bad_input_gives_a_message_not_a_crash(tmp_path):
    bad = tmp_path / "evil.zip"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    out = _drain(app.run_unlearning(**_run_args(fc=runs.UPLOAD, ff=[str(bad)])))
    assert len(out) == 1 and "evil.zip" in out[0]["status"] and out[0]["status"].startswith("**Error:**")
    out = _drain(app.run_unlearning(**_run_args(fc=runs.UPLOAD, ff=None)))
    assert "upload some images" in out[0]["status"]
    out = _drain(app.run_unlearning(**_run_args(steps=0)))
    assert "at least 1" in out[0]["status"]


@pytest.mark.slow
def test_stop_leaves_the_original_untouched():
    original = cached_model("mae")
    before = {k: v.clone() for k, v in original.state_dict().items()}
    session = app.Session()
    gen = app.run_unlearning(**_run_args(steps=400, session=session))
    last = None
    for i, update in enumerate(gen):
        last = dict(zip(app.RUN_OUTPUTS, update, strict=True))
        if i == 2:
            assert sessions.stop_run(session).startswith("Stopping")
    status, metrics = last["status"], last["metrics"]
    assert status.startswith("Stopped at step") and "partly unlearned model" in status and "original model is untouched" in status
    assert metrics["stopped"] and metrics["steps"] < 400
    for k, v in original.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert sessions.stop_run(session) == "Nothing is running."
    session.cleanup()


def test_drawn_mask_from_editor_value():
    bg = studio.editor_background()
    layer = np.zeros_like(bg)
    layer[:128, :, :] = 255  # top half painted
    spec = runs.chosen_mask(runs.DRAW, {"background": bg, "layers": [layer], "composite": bg})
    m = spec.build(1, 32)[0, 0]
    assert m[:16].all() and not m[16:].any()
    editor, preview, info = app.show_mask(runs.DRAW, {"background": bg, "layers": [], "composite": bg}, "mae", "")
    assert preview is None and "Paint" in info


# ------------------------------------------------------------------------------ API


@pytest.mark.slow
def test_api_unlearn_returns_metrics(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    result = client.predict(forget="builtin:cat", retain="builtin:dog", steps=10, api_name="/unlearn")
    assert result["steps"] == 10 and result["mask"] == get_family("mae").defaults.mask
    for which in ("original", "unlearned"):
        assert {"psnr_masked", "probe_acc", "noise_cos", "n"} <= result[which]["forget"].keys()


def test_the_api_measures_the_per_mask_table_only_when_asked(monkeypatch):
    """The headline results come back at once; the page's per-mask table only with `per_mask`."""
    monkeypatch.setattr(app, "EVAL_MASKS", ["patches75"])
    quick = app.unlearn_api(steps=2)
    assert quick["masks"] == {} and "extras_seconds" not in quick and quick["unlearned"]["forget"]["n"] > 0
    full = app.unlearn_api(steps=2, per_mask=True)
    assert list(full["masks"]) == ["patches75"] and "extras_seconds" in full
    assert full["unlearned"] == quick["unlearned"]  # the same run: the same seed gives the same figures


def test_api_bad_set_is_a_clear_error(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    with pytest.raises(Exception, match="unknown built-in set"):
        client.predict(forget="builtin:unicorn", retain="builtin:dog", steps=5, api_name="/unlearn")


@pytest.mark.slow
def test_two_sessions_do_not_see_each_other(server):
    from gradio_client import Client

    results = {}

    def call(name, forget):
        results[name] = Client(server, verbose=False).predict(forget=forget, retain="builtin:dog", steps=6, seed=1, api_name="/unlearn")

    threads = [threading.Thread(target=call, args=(n, f)) for n, f in (("a", "builtin:cat"), ("b", "builtin:horse"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"]["forget_set"]["source"] == "builtin:cat"
    assert results["b"]["forget_set"]["source"] == "builtin:horse"
    assert results["a"]["forget_set"]["sha256"] != results["b"]["forget_set"]["sha256"]
    # handler-level state: each Session object holds only its own output
    s1, s2 = app.Session(), app.Session()
    _drain(app.run_unlearning(**_run_args(steps=3, session=s1)))
    _drain(app.run_unlearning(**_run_args(fc="builtin:bear", steps=3, session=s2)))
    assert s1.output.metrics["forget_set"]["source"] == "builtin:cat"
    assert s2.output.metrics["forget_set"]["source"] == "builtin:bear"
    assert s1.tmp != s2.tmp
    s1.cleanup()
    s2.cleanup()


def test_a_failed_run_ends_with_a_clear_message():
    out = _drain(app.run_unlearning(**_run_args(lr=1e12, steps=30)))
    status = out[-1]["status"]
    assert status.startswith("**Run failed:**") and "loss became" in status and "original model is untouched" in status


# ------------------------------------------------------------------------------ server paths and files


def test_checkpoint_field_reads_only_allowed_folders(tmp_path, monkeypatch):
    from unlearn_core.models.checkpoints import embedded_path

    monkeypatch.delenv("UNLEARN_ALLOWED_DIRS", raising=False)
    private = tmp_path / "private"
    private.mkdir()
    Image.new("L", (32, 32), 255).save(private / "secret.png")
    session = app.Session()
    for path in ("/etc", str(private), f"{embedded_path('mae')}/../../..", "/proc/self"):
        _, picture, info = app.show_set("builtin:cat", None, "mae", path, session)
        assert picture is None and "only reads the embedded checkpoints" in info, path
        out = _drain(app.run_unlearning(**_run_args(checkpoint=path, session=session)))
        assert "only reads the embedded checkpoints" in out[0]["status"], path
    # a link inside an allowed folder that points outside is refused too
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to(private)
    monkeypatch.setenv("UNLEARN_ALLOWED_DIRS", str(allowed))
    _, _, info = app.show_set("builtin:cat", None, "mae", str(allowed / "escape"), session)
    assert "only reads" in info
    # the embedded folder, and a copy of it in a folder the operator allowed, are read
    assert app.show_set("builtin:cat", None, "mae", str(embedded_path("mae")), session)[1] is not None
    shutil.copytree(embedded_path("mae"), allowed / "mae-copy")
    assert app.show_set("builtin:cat", None, "mae", str(allowed / "mae-copy"), session)[1] is not None
    session.cleanup()


def test_api_refuses_server_paths_outside_the_allowed_folders(monkeypatch):
    monkeypatch.delenv("UNLEARN_ALLOWED_DIRS", raising=False)
    for kwargs in ({"forget": "/etc"}, {"retain": "/root"}, {"mask": "/etc/passwd"}, {"checkpoint": "/tmp"}):
        with pytest.raises(gr.Error, match="only reads the embedded checkpoints"):
            app.unlearn_api(**{"steps": 2, **kwargs})


@pytest.mark.slow
@pytest.mark.parametrize("family, sampling", [("vqgan", None), ("diffusion", 3)])
def test_other_families_through_the_handler(family, sampling):
    """Everything that works for MAE works for the other families: run, previews, grid, exports."""
    assert family in [value for _, value in studio.model_choices()]
    updates = _drain(app.run_unlearning(**_run_args(model=family, steps=4, mask_choice="center50", sampling=sampling)))
    last = updates[-1]
    assert last["status"].startswith("Done: 4 steps") and last["metrics"]["model"] == family
    assert last["metrics"]["sampling_steps"] == (sampling or studio.ui_defaults(family).sampling_steps)
    assert isinstance(last["preview"], Image.Image) or any(isinstance(u["preview"], Image.Image) for u in updates)
    assert Path(last["model_file"]).stat().st_size > 1_000_000
    session = last["session"]
    grid, msg = runs.try_own(Image.new("RGB", (64, 48), (255, 255, 255)), "center50", None, session)
    assert isinstance(grid, Image.Image) and msg == ""
    session.cleanup()


def test_steps_and_sampling_steps_follow_the_model_family():
    """What the fields show is what a run with that family uses."""
    train_mask, steps, lr, sampling, alpha = app.model_defaults("mae", "")
    mae = get_family("mae").defaults
    assert train_mask == "same" and steps == mae.steps and lr == mae.lr and alpha == MAE_ALPHA
    assert sampling["visible"] is False and sampling["value"] is None
    for family in ("vqgan", "diffusion"):
        model = cached_model(family)
        train_mask, steps, lr, sampling, alpha = app.model_defaults(family, "")
        named = get_family(family).defaults
        assert alpha == named.alpha_for("ours", 1.0)
        assert app.model_defaults(family, "", "max_loss")[4] == get_method("max_loss").default_alpha  # the family names none for it
        assert train_mask == (named.train_mask or "same") and steps == named.steps and lr == named.lr
        assert sampling["visible"] is True and sampling["value"] == model.sampling_steps
    assert app.model_defaults("diffusion", "/etc") == (gr.skip(),) * 5  # a refused folder changes nothing
    # the official code's settings fill the same fields, and the demo's come back
    for family in ("mae", "vqgan", "diffusion"):
        official = get_family(family).official
        train_mask, steps, lr, _, alpha = app.model_defaults(family, "", "ours", None, "official")
        assert (train_mask, steps, lr, alpha) == ("random", official.steps, official.lr, official.alpha["ours"])
        assert app.method_fields("ours", family, "", None, "official")[0] == official.alpha["ours"]
    assert app.model_defaults("mae", "", "ours", None, "demo")[1] == get_family("mae").defaults.steps
    # VQ-GAN names its own weight for ours (0.2): the field shows it, and a run left at None uses it
    assert app.method_fields("ours", "vqgan", "") == (0.2, "random") and app.method_fields("ours", "mae")[0] == MAE_ALPHA
    # FT trains with its model's own training masks: the field says so, on every family, and back
    assert app.method_fields("finetune", "mae") == (0.0, "random") and app.method_fields("finetune", "diffusion")[1] == "random"
    assert app.method_fields("ours", "diffusion")[1] == "same"
    spec = studio.make_spec("builtin:cat", "builtin:dog", "vqgan", None, "center50", "ours", None, 5, 1e-3, 0)
    assert spec.config.for_model(cached_model("vqgan")).resolved_alpha() == 0.2
    out = _drain(app.run_unlearning(**_run_args(model="mae", sampling=5)))
    assert "one pass" in out[0]["status"]
    out = _drain(app.run_unlearning(**_run_args(model="diffusion", sampling=0)))
    assert "sampling steps must be a whole number from 1 to 1000" in out[0]["status"]


@pytest.mark.slow
def test_training_mask_setting_is_what_the_run_trains_with():
    """The training-mask field: the mask above, random, or a preset, whatever the family's default."""
    cases = {
        "center50": dict(model="vqgan", train_mask="same", mask_choice="center50"),  # VQ-GAN's own default: random
        "random": dict(train_mask="random"),
        "center25": dict(train_mask="center25"),
    }
    for expected, over in cases.items():
        last = _drain(app.run_unlearning(**_run_args(steps=2, **over)))[-1]
        assert last["metrics"]["train_mask"] == expected, over
        if expected == "random":
            assert "fresh random mask every step" in " ".join(last["metrics"]["notes"])
        last["session"].cleanup()
    with pytest.raises(gr.Error, match="unknown training mask"):
        app.unlearn_api(steps=2, train_mask="sideways")


def test_hugging_face_sets_only_where_the_operator_named_them(tmp_path, monkeypatch):
    from test_data import hf_dataset_folder

    folder = hf_dataset_folder(tmp_path / "pets")
    name = f"hf:{folder}:cat"
    monkeypatch.delenv("UNLEARN_HF_SETS", raising=False)
    assert name not in studio.builtin_sets()
    with pytest.raises(studio.UserInputError, match="only the Hugging Face sets its operator named"):
        studio.server_source(name)
    monkeypatch.setenv("UNLEARN_HF_SETS", f"{name},hf:{folder}:dog")
    assert studio.builtin_sets()[-2:] == [name, f"hf:{folder}:dog"] and studio.server_source(name) == name
    _, picture, info = app.show_set(name, None, "mae", "")
    assert picture is not None and "**10** images to unlearn on, 2 held out" in info


@pytest.mark.slow
def test_a_served_run_computes_on_every_cpu_thread(monkeypatch):
    """The app as a server (`device.serve_threads`) computes on one CPU thread per thread, except
    a run, whose worker takes them all; the caller's threads are left as they were."""
    from unlearn_core.compute import device
    from unlearn_core.run import pipeline
    from unlearn_core.run.engine import UnlearnConfig
    from unlearn_core.run.pipeline import RunSpec

    seen = []
    real_unlearn = pipeline.unlearn
    monkeypatch.setattr(pipeline, "unlearn", lambda *a, **k: seen.append(torch.get_num_threads()) or real_unlearn(*a, **k))
    monkeypatch.setattr(device, "CPU_THREADS", 3)  # any count but one
    monkeypatch.setattr(device, "spare_cores", lambda: 8.0)  # however busy the machine running the test is
    monkeypatch.setattr(device, "_SERVING", False)  # put back after (serve_threads sets it)
    before = torch.get_num_threads()
    spec = RunSpec(forget="builtin:cat", retain="builtin:dog", mask="center50", config=UnlearnConfig(steps=2), eval_masks=[])
    try:
        device.serve_threads()
        updates = list(studio.stream(spec))
        assert updates[-1].output is not None and torch.get_num_threads() == 1
        api = threading.Thread(target=studio.run_to_end, args=(spec,))  # the API's path, in a thread of its own
        api.start()
        api.join()
    finally:
        torch.set_num_threads(before)
    assert seen == [3, 3]


def test_status_line_says_share_done_and_time_left():
    assert studio.progress_text(0, 800, 0.0) == "Starting..."
    assert studio.progress_text(10, 800, 0.5) == "Step 10 / 800 (1%)"  # too early to tell the pace
    assert studio.progress_text(200, 800, 15.0) == "Step 200 / 800 (25%), about 45 s left"
    assert studio.progress_text(100, 800, 30.0) == "Step 100 / 800 (12%), about 4 min left"
    assert studio.progress_text(800, 800, 60.0).startswith("Step 800 / 800: measuring both models")


def test_measuring_says_share_done_and_time_left():
    from unlearn_core.run.pipeline import MeasureEvent

    assert studio.progress_text(800, 800, 60.0, MeasureEvent(0.0, 4.0, "original model under center50", 0.0)) == (
        "Unlearning done. Measuring both models on the held-out images: 0% (just measured: original model under center50)."
    )
    assert studio.progress_text(800, 800, 70.0, MeasureEvent(1.0, 4.0, "unlearned model under center50", 10.0)) == (
        "Unlearning done. Measuring both models on the held-out images: 25%, about 30 s left (just measured: unlearned model under center50)."
    )


def test_done_says_the_whole_wait_split_into_its_parts():
    m = {"seconds": 144.92, "measure_seconds": 70.2}
    assert studio.time_split(m, 221.0) == "You waited 221 s: 145 s unlearning, 70 s measuring, 6 s loading, queueing and showing."
    assert studio.time_split(m) == "145 s unlearning, 70 s measuring."


@pytest.mark.slow
def test_the_last_step_is_reported_at_once_with_the_time_so_far():
    """Measuring follows the last step: the page says so when it starts, not when it ends."""
    from unlearn_core.run.engine import UnlearnConfig
    from unlearn_core.run.pipeline import RunSpec

    spec = RunSpec(forget="builtin:cat", retain="builtin:dog", mask="center50", config=UnlearnConfig(steps=5), eval_masks=[])
    updates = list(studio.stream(spec, interval=3600.0))  # no other update could be due
    steps = [u for u in updates if u.measuring is None]
    assert [(u.step, u.output is None, u.headline) for u in steps] == [
        (0, True, False),
        (5, True, False),
        (5, False, True),
        (5, False, False),
    ]
    assert 0 < steps[1].seconds <= steps[2].seconds
    # then measuring's parts, each as it ends, up to the whole: the headline's, then what follows it
    measured = [u.measuring for u in updates if u.measuring is not None]
    assert [(e.what, e.extras) for e in measured] == [
        ("original model under center50", False),
        ("unlearned model under center50", False),
        ("the model that never saw cats under center50", False),  # MAE ships a model trained without cats
        ("pictures under center50", False),
        ("embedding view", True),
    ]
    for part in (False, True):
        done = [e for e in measured if e.extras is part]
        assert [e.done for e in done] == sorted(e.done for e in done) and done[-1].done == done[-1].total
    assert updates.index(steps[1]) < updates.index(next(u for u in updates if u.measuring)) < updates.index(steps[2])
    assert updates.index(steps[2]) < updates.index(next(u for u in updates if u.measuring and u.measuring.extras))
    assert steps[2].output.embedding is None and steps[3].output.embedding is not None


@pytest.mark.slow
def test_warm_up_measures_the_default_runs_original_model(monkeypatch):
    """A server measures the original model of its default run at start; the run then finds
    those figures instead of measuring again, and a failed warm-up is a log line, not a crash."""
    from unlearn_core.run import pipeline

    monkeypatch.setattr(pipeline, "_ORIGINAL_METRICS", {})
    monkeypatch.delenv("UNLEARN_CACHE_DIR", raising=False)
    monkeypatch.setattr(pipeline, "metrics_cache_dir", lambda: None)  # memory only: count the work
    line = runs.warm_up(["patches75"])
    assert line.startswith("warm-up: the default run's original model measured in"), line
    assert len(pipeline._ORIGINAL_METRICS) == 4  # its own mask (center50) and patches75, original and never-saw-cats
    measured = []
    real = pipeline.evaluate
    monkeypatch.setattr(
        pipeline, "evaluate", lambda model, original, *a, **k: measured.append(model is original) or real(model, original, *a, **k)
    )
    spec = runs.default_spec(["patches75"])
    pipeline.run(replace(spec, config=replace(spec.config, steps=2)))
    assert measured == [False, False]  # the unlearned model only, under both masks
    monkeypatch.setattr(runs, "default_spec", lambda masks: 1 / 0)
    assert runs.warm_up() == "warm-up skipped: ZeroDivisionError: division by zero"


# ------------------------------------------------------------------------------ the Audit tab


def _audit(chosen, session):
    return [dict(zip(app.auditing.AUDIT_OUTPUTS, u, strict=True)) for u in app.audit_run(chosen, session)]


def test_the_audit_attacks_the_last_run_and_adds_to_its_files():
    session = sessions.Session()
    first = _audit(["mask_sweep"], session)
    assert len(first) == 1 and "Run an unlearning first" in first[0]["audit_status"]
    _drain(app.run_unlearning(**_run_args(session=session)))
    assert _audit([], session)[0]["audit_status"] == "Pick at least one attack."
    updates = _audit(["mask_sweep"], session)
    assert any("Auditing: " in u["audit_status"] and "% (" in u["audit_status"] for u in updates[1:-1])  # progress, share done
    last = updates[-1]
    assert last["audit_status"].startswith("Audit done") and "**Mask sweep.** Forgetting" in last["audit_verdicts"]
    (picture, caption), = last["audit_plots"]  # fmt: skip
    assert isinstance(picture, Image.Image) and caption.startswith("Mask sweep: ")
    assert "mask_sweep" in last["metrics"]["audit"] and "mask_sweep" in session.output.metrics["audit"]
    report = Path(last["report_file"]).read_text()
    assert "Audit: is it really gone?" in report and "Forgetting holds" in report
    with zipfile.ZipFile(last["model_file"]) as z:
        assert "mask_sweep" in json.loads(z.read("metrics.json"))["audit"]


def test_stop_ends_an_audit_and_adds_nothing(monkeypatch):
    session = sessions.Session()
    _drain(app.run_unlearning(**_run_args(session=session)))
    before = dict(session.output.metrics)
    gen = app.audit_run(["mask_sweep", "membership"], session)
    next(gen)  # started
    assert session.auditing and app.sessions.stop_run(session) == "Stopping the audit after its current part..."
    rest = [dict(zip(app.auditing.AUDIT_OUTPUTS, u, strict=True)) for u in gen]
    assert rest[-1]["audit_status"] == "Audit stopped: nothing was added to the run."
    assert not session.auditing and "audit" not in session.output.metrics and session.output.metrics == before


# ------------------------------------------------------------------------------ the Runs tab


def test_every_run_is_kept_and_any_two_compare():
    session = sessions.Session()
    frame, a, b = app.list_runs(session, None)
    assert frame.empty and a["choices"] == []
    _drain(app.run_unlearning(**_run_args(session=session)))
    _drain(app.run_unlearning(**_run_args(session=session, alpha=4.0)))
    frame, a, b = app.list_runs(session, None)
    assert len(frame) == 2 and list(frame.columns) == history.HEADERS
    assert set(frame["alpha"]) == {MAE_ALPHA, 4.0} and all("->" in v for v in frame["forget"])
    assert b["value"] == frame["run"][0] and a["value"] == frame["run"][1]  # the latest as B, the one before as A
    kept = Path(session.tmp) / "history" / frame["run"][0]
    assert json.loads((kept / "metrics.json").read_text())["command"].startswith("python -m unlearn_core unlearn")
    note, picture, figures = app.compare_runs(a["value"], b["value"], session, None)
    assert isinstance(picture, Image.Image) and "outpaint50" in note and "B - A" in list(figures.columns)
    note, picture, figures = app.compare_runs(a["value"], "nope", session, None)
    assert note == "**Error:** no run 'nope' in this session's history" and picture is None
    # an audit adds to the kept run's metrics.json too
    _audit(["mask_sweep"], session)
    assert "mask_sweep" in json.loads((kept / "metrics.json").read_text())["audit"]
    assert "mask_sweep" in app.list_runs(session, None)[0]["audited"][0]


def test_with_a_runs_folder_the_history_survives_a_restart_and_stays_private(tmp_path, monkeypatch):
    monkeypatch.setattr(app, "RUNS_DIR", str(tmp_path / "runs"))
    key, other = history.new_key(None), history.new_key(None)
    assert history.new_key(key) == key and history.new_key("../../etc") != "../../etc" and len(key) == 32
    _drain(app.run_unlearning(**_run_args(session=sessions.Session(), key=key)))
    assert len(app.list_runs(sessions.Session(), key)[0]) == 1  # a new session (as after a restart), the same browser
    assert app.list_runs(sessions.Session(), other)[0].empty  # another browser sees nothing
    secret = history.browser_secret(app.RUNS_DIR)
    assert secret == history.browser_secret(app.RUNS_DIR) and len(secret) == 32  # the same after a restart


def test_the_history_keeps_the_latest_runs_only(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "MAX_RUNS", 2)
    session = sessions.Session()
    for alpha in (1.0, 2.0, 3.0):
        _drain(app.run_unlearning(**_run_args(session=session, alpha=alpha, steps=2)))
    frame = app.list_runs(session, None)[0]
    assert sorted(frame["alpha"]) == [2.0, 3.0]
