"""The results table on a tiny configuration: every row written, resumable, readable."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from unlearn_core.studies.table import TableSpec, build, cell_path


@pytest.mark.slow
def test_table_runs_every_row_and_resumes(tmp_path):
    spec = TableSpec(
        models=["mae"], masks=["center50"], out=tmp_path, alphas=[0.5], steps=2, batch_size=4, image_metrics=False, command="test"
    )
    lines = []
    path = build(spec, lines.append)
    rows = [r.key for r in spec.table_rows()]
    assert rows == ["original", "max_loss", "noisy_label", "retain_label", "random_encoder", "finetune", "ours", "ours_proxy", "ours_a0.5"]
    for key in rows:
        cell = json.loads(cell_path(tmp_path, "mae", next(r for r in spec.table_rows() if r.key == key), "center50").read_text())
        assert cell["forget"]["n"] == 200 and 0 <= cell["retain"]["probe_acc"] <= 1
        assert cell["steps"] == (None if key == "original" else 2)
        assert cell["precision"] in ("fp32", "bf16")  # what it computed in, resolved
    proxy = json.loads(cell_path(tmp_path, "mae", spec.table_rows()[6], "center50").read_text())
    assert proxy["retain_set"] == "builtin:others" and proxy["retain"]["n"] == 200  # trained on the proxy, measured on dogs
    text = path.read_text()
    for title in ("Original", "Max Loss", "Noisy Label", "Retain Label", "Random Encoder", "Ours (proxy D_R)", "alpha sweep"):
        assert title in text
    assert "forgets" in text or "does not forget" in text  # each row says what it did
    assert f"arithmetic {cell['precision']}." in text  # the header names the precision of its cells
    assert (tmp_path / "results.csv").read_text().count("\n") == 1 + len(rows)
    assert Image.open(tmp_path / "tradeoff.png").width > 300
    # a second call finds every cell done and runs nothing
    again = []
    build(spec, again.append)
    assert all("done before, kept" in line for line in again)
    # a deleted cell is redone, and only that one
    cell_path(tmp_path, "mae", spec.table_rows()[1], "center50").unlink()
    third = []
    build(spec, third.append)
    assert sum("done before" not in line for line in third) == 1


@pytest.mark.slow
def test_table_refuses_bad_arguments(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "unlearn_core", "table", "--model", "mae,gan", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "unknown model 'gan'" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "unlearn_core", "table", "--mask", "random", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "training mask" in r.stderr
