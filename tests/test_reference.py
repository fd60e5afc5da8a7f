"""The never-saw-the-class reference: found for a built-in class, measured and pictured beside the
original and the unlearned model, and shown in the CLI's text, the mask table and the report."""

from dataclasses import replace

import pytest

from unlearn_core.cli import format_table
from unlearn_core.models import checkpoints, get_family
from unlearn_core.models.checkpoints import Reference, reference_for
from unlearn_core.models.mae import PRESETS, MAEModel
from unlearn_core.run import pipeline
from unlearn_core.run.engine import UnlearnConfig
from unlearn_core.run.pipeline import RunSpec, original_known, run
from unlearn_core.serving.report import mask_headers, mask_rows, reference_line, report_html, score


@pytest.fixture
def tiny_reference(tmp_path, monkeypatch):
    """A tiny untrained MAE standing in as the MAE family's model that never saw cats."""
    folder = tmp_path / "mae-nocat"
    MAEModel.from_config(PRESETS["tiny"], seed=1).save(folder)
    ref = Reference("mae", "cat", folder)
    monkeypatch.setattr(pipeline, "reference_for", lambda model, forget: ref if (model, forget) == ("mae", "builtin:cat") else None)
    return ref


def test_a_reference_is_found_for_a_single_built_in_class_only(tmp_path, monkeypatch):
    family = replace(get_family("mae"), references={"cat": "mae-nocat"})
    (tmp_path / "mae-nocat").mkdir()
    monkeypatch.setattr(checkpoints, "CHECKPOINTS", tmp_path)
    monkeypatch.setattr(checkpoints, "get_family", lambda name: family)
    assert reference_for("mae", "builtin:cat") is None  # the folder holds no model yet
    MAEModel.from_config(PRESETS["tiny"], seed=1).save(tmp_path / "mae-nocat")
    found = reference_for("mae", "builtin:cat")
    assert found == Reference("mae", "cat", tmp_path / "mae-nocat") and found.label == "never saw cats"
    for forget in ("builtin:dog", "builtin:cat+dog", "builtin:not-cat", ["cat.png"], "cats/"):
        assert reference_for("mae", forget) is None
    assert reference_for("unicorn", "builtin:cat") is None


def test_a_run_measures_and_pictures_the_reference(tiny_reference):
    spec = RunSpec(mask="center50", config=UnlearnConfig(steps=2, batch_size=4), eval_masks=["outpaint50"], image_metrics=False)
    heard = []
    out = run(spec, on_measure=heard.append)
    m = out.metrics
    ref = m["reference"]
    assert ref["label"] == "never saw cats" and ref["name"] == "mae-nocat" and len(ref["sha256"]) == 64
    assert list(ref["masks"]) == ["center50", "outpaint50"]
    # its own figures: an untrained model fills holes far worse than the trained original
    assert ref["masks"]["center50"]["retain"]["psnr_masked"] != m["original"]["retain"]["psnr_masked"]
    assert "reference" not in m["masks"]["outpaint50"]  # the per-mask figures of the two models stay as they were
    assert any("never saw cats" in e.what for e in heard) and heard[-1].done == pytest.approx(heard[-1].total)
    # remembered like the original's: a later run measures neither again
    assert original_known(out.prepared, 0, out.prepared.mask, ref["sha256"])
    without = run(replace(spec, reference=False))
    assert "reference" not in without.metrics
    assert out.compare.width > without.compare.width  # one more column in each set's block
    # the mask table gains the reference's forget score, the report and the CLI text a line
    heads = mask_headers(m)
    assert heads[1:4] == ["forget acc: original", "forget acc: unlearned", "forget acc: never saw cats"]
    rows = mask_rows(m)
    assert all(len(r) == len(heads) for r in rows) and rows[0][3] == ref["masks"]["center50"]["forget"]["probe_acc"]
    line = reference_line(m)
    assert line.startswith("A model that never saw cats (mae-nocat") and score(ref["masks"]["center50"]["forget"]["probe_acc"]) in line
    assert reference_line(without.metrics) is None
    assert line.replace("→", "&rarr;")[:40] in report_html(out).replace("→", "&rarr;")
    text = format_table(m)
    assert "reference: mae-nocat, a model that never saw cats" in text and "reference forget" in text
