"""The web app: handlers called directly, and the API through gradio_client against a live server."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import app
from unlearn_core import studio
from unlearn_core.checkpoints import cached_model


def _drain(gen):
    """Run a generator handler to its end; returns every yielded tuple."""
    return list(gen)


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
        session=None,
    )
    args.update(over)
    return args


# ------------------------------------------------------------------------------ handlers


def test_show_set_builtin_and_upload(tmp_path):
    files, gallery, info = app.show_set("builtin:dog", None, "mae", "")
    assert len(gallery) == studio.GALLERY_SIZE and "797" in info and "200 held out" in info
    good = tmp_path / "a.png"
    Image.new("RGB", (40, 40), (200, 10, 10)).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"not really a png")
    _, gallery, info = app.show_set(app.UPLOAD, [str(good)], "mae", "")
    assert len(gallery) == 1 and "evaluation uses the same images" in info
    _, gallery, info = app.show_set(app.UPLOAD, [str(good), str(bad)], "mae", "")
    assert gallery == [] and "Error" in info and "b.png" in info


def test_full_run_through_the_handler():
    updates = _drain(app.run_unlearning(**_run_args()))
    status, plot, preview, compare, table, metrics, model_zip, report, session = updates[-1]
    assert status.startswith("Done: 12 steps")
    assert list(plot.columns) == app.LOSS_COLUMNS and set(plot["term"]) == {"retain", "forget", "total"} and plot["step"].max() == 12
    assert isinstance(compare, Image.Image) and compare.height > 400
    assert set(table["set"]) == {"forget", "retain"} and metrics["steps"] == 12
    assert model_zip.endswith("unlearned-model.zip") and Path(report).read_text().startswith("<!doctype html>")
    # every output is something its component can send to the browser
    fn = next(d for d in app.demo.fns.values() if d.name == "run_unlearning")
    for component, value in zip(fn.outputs, updates[-1], strict=True):
        if not isinstance(component, gr.State) and not (isinstance(value, dict) and value.get("__type__") == "update"):
            component.postprocess(value)
    assert session.output is not None and session.live is None
    # intermediate updates carried a growing loss series
    steps_seen = [u[1]["step"].max() for u in updates[1:-1] if hasattr(u[1], "columns") and len(u[1])]
    assert steps_seen == sorted(steps_seen)
    # try-your-own goes through both models of this session
    grid, msg = app.try_own(Image.new("RGB", (64, 48), (255, 255, 255)), "center50", None, session)
    assert isinstance(grid, Image.Image) and msg == ""
    session.cleanup()


def test_bad_input_gives_a_message_not_a_crash(tmp_path):
    bad = tmp_path / "evil.zip"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    out = _drain(app.run_unlearning(**_run_args(fc=app.UPLOAD, ff=[str(bad)])))
    assert len(out) == 1 and "evil.zip" in out[0][0] and out[0][0].startswith("**Error:**")
    out = _drain(app.run_unlearning(**_run_args(fc=app.UPLOAD, ff=None)))
    assert "upload some images" in out[0][0]
    out = _drain(app.run_unlearning(**_run_args(steps=0)))
    assert "at least 1" in out[0][0]


def test_stop_leaves_the_original_untouched():
    original = cached_model("mae")
    before = {k: v.clone() for k, v in original.state_dict().items()}
    session = app.Session()
    gen = app.run_unlearning(**_run_args(steps=400, session=session))
    last = None
    for i, update in enumerate(gen):
        last = update
        if i == 2:
            assert app.stop_run(session).startswith("Stopping")
    status, metrics = last[0], last[5]
    assert status.startswith("Stopped at step") and "original model is unchanged" in status
    assert metrics["stopped"] and metrics["steps"] < 400
    for k, v in original.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert app.stop_run(session) == "Nothing is running."
    session.cleanup()


def test_drawn_mask_from_editor_value():
    bg = studio.editor_background()
    layer = np.zeros_like(bg)
    layer[:128, :, :] = 255  # top half painted
    spec = app._mask(app.DRAW, {"background": bg, "layers": [layer], "composite": bg})
    m = spec.build(1, 32)[0, 0]
    assert m[:16].all() and not m[16:].any()
    editor, preview, info = app.show_mask(app.DRAW, {"background": bg, "layers": [], "composite": bg}, "mae", "")
    assert preview is None and "Paint" in info


# ------------------------------------------------------------------------------ API


def test_api_unlearn_returns_metrics(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    result = client.predict(forget="builtin:cat", retain="builtin:dog", steps=10, api_name="/unlearn")
    assert result["steps"] == 10 and result["mask"] == studio.DEFAULT_MASK
    for which in ("original", "unlearned"):
        assert {"psnr_masked", "probe_acc", "noise_cos", "n"} <= result[which]["forget"].keys()


def test_api_bad_set_is_a_clear_error(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    with pytest.raises(Exception, match="unknown built-in set"):
        client.predict(forget="builtin:unicorn", retain="builtin:dog", steps=5, api_name="/unlearn")


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
    status = out[-1][0]
    assert status.startswith("**Run failed:**") and "loss became" in status and "original model is unchanged" in status
