"""The results table on a tiny configuration: every row written, resumable, readable."""

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from PIL import Image

from unlearn_core.studies.table import SPLITS, TableSpec, audit_path, build, build_splits, cell_path


@pytest.mark.slow
def test_table_runs_every_row_and_resumes(tmp_path):
    spec = TableSpec(
        models=["mae"], masks=["center50"], out=tmp_path, alphas=[2.0], steps=2, batch_size=4, image_metrics=False, command="test"
    )
    lines = []
    path = build(spec, lines.append)
    by_key = {r.key: r for r in spec.table_rows("mae")}
    rows = list(by_key)
    assert rows == [
        "original", "retrain", "max_loss", "noisy_label", "retain_label", "random_encoder", "finetune", "ours", "ours_official",
        "ours_proxy", "ours_a1", "ours_a2",
    ]  # fmt: skip
    for key in rows:
        cell = json.loads(cell_path(spec, "mae", by_key[key], "center50", 0).read_text())
        assert cell["forget"]["n"] == 200 and 0 <= cell["retain"]["probe_acc"] <= 1
        assert cell["steps"] == (None if key in ("original", "retrain") else 2)
        assert cell["precision"] in ("fp32", "bf16")  # what it computed in, resolved
    official = json.loads(cell_path(spec, "mae", by_key["ours_official"], "center50", 0).read_text())
    assert official["recipe"] == "official" and official["alpha"] == 0.2 and official["train_mask"] == "random"
    assert json.loads(cell_path(spec, "mae", by_key["finetune"], "center50", 0).read_text())["train_mask"] == "random"
    retrain = json.loads(cell_path(spec, "mae", by_key["retrain"], "center50", 0).read_text())
    original = json.loads(cell_path(spec, "mae", by_key["original"], "center50", 0).read_text())
    assert retrain["forget"]["psnr_masked"] != original["forget"]["psnr_masked"]  # another model's figures
    proxy = json.loads(cell_path(spec, "mae", by_key["ours_proxy"], "center50", 0).read_text())
    assert proxy["retain_set"] == "builtin:others" and proxy["retain"]["n"] == 200  # trained on the proxy, measured on dogs
    text = path.read_text()
    for title in ("Original", "Retrain (never saw the class)", "Max Loss", "Ours (official recipe)", "Ours (proxy D_R)", "alpha sweep"):
        assert title in text
    assert "forgets" in text or "does not forget" in text  # each row says what it did
    assert f"arithmetic {cell['precision']}." in text  # the header names the precision of its cells
    assert (tmp_path / "results.csv").read_text().count("\n") == 1 + len(rows)
    assert "seed 0;" in text and "(" not in text.split("| Ours |")[1].split("|")[0]  # one seed: a figure, no range
    assert Image.open(tmp_path / "tradeoff.png").width > 300
    # a second call finds every cell done and runs nothing
    again = []
    build(spec, again.append)
    assert all("done before, kept" in line for line in again)
    # a deleted cell is redone, and only that one
    cell_path(spec, "mae", spec.table_rows()[1], "center50", 0).unlink()
    third = []
    build(spec, third.append)
    assert sum("done before" not in line for line in third) == 1
    # a changed setting is another cell: nothing of the 2-step table is read for 3 steps
    assert not cell_path(replace(spec, steps=3), "mae", spec.table_rows()[1], "center50", 0).exists()


@pytest.mark.slow
def test_several_seeds_give_a_mean_and_its_range(tmp_path):
    spec = TableSpec(
        models=["mae"], masks=["center50"], out=tmp_path, alphas=[], rows=["original", "ours"], steps=2, batch_size=4,
        seeds=[0, 1, 2], image_metrics=False, command="test",
    )  # fmt: skip
    text = build(spec, lambda line: None).read_text()
    ours = next(r for r in spec.table_rows() if r.key == "ours")
    seeds = [json.loads(cell_path(spec, "mae", ours, "center50", s).read_text()) for s in (0, 1, 2)]
    values = [c["forget"]["probe_acc"] for c in seeds]
    assert [c["seed"] for c in seeds] == [0, 1, 2] and len({c["key"] for c in seeds}) == 3
    mean = sum(values) / 3
    assert f"{mean:.3f} ({min(values):.3f}-{max(values):.3f})" in text.split("| Ours |")[1].split("\n")[0]
    assert "seeds 0, 1, 2 (each figure the mean" in text and "whiskers" in text
    assert (tmp_path / "results.csv").read_text().count("\n") == 1 + 2 * 3  # a line per seed


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
    for bad, said in ((["--split", "paper,nope"], "--split takes paper, demo"), (["--forget", "builtin:cat"], "go together")):
        r = subprocess.run([sys.executable, "-m", "unlearn_core", "table", *bad, "--out", str(tmp_path)], capture_output=True, text=True)
        assert r.returncode == 2 and said in r.stderr


@pytest.mark.slow
def test_each_split_is_a_section_with_its_own_cells(tmp_path):
    spec = TableSpec(models=["mae"], masks=["center50"], out=tmp_path, alphas=[], rows=["original", "ours_proxy"], steps=2,
                     batch_size=4, image_metrics=False, command="test")  # fmt: skip
    said = []
    top = build_splits(spec, [SPLITS["paper"], SPLITS["demo"]], said.append)
    assert said[0].startswith("The paper's split") and any(line.startswith("The app's demonstration") for line in said)
    row = spec.table_rows()[0]
    paper = json.loads(cell_path(replace(spec, out=tmp_path / "paper", retain="builtin:not-cat"), "mae", row, "center50", 0).read_text())
    assert paper["retain"]["n"] == 1800 and paper["forget"]["n"] == 200  # the nine other classes' held-out images
    demo = json.loads(cell_path(replace(spec, out=tmp_path / "demo"), "mae", row, "center50", 0).read_text())
    assert demo["retain"]["n"] == 200
    text = top.read_text()
    assert text.index("# The paper's split") < text.index("# The app's demonstration")
    assert "](paper/tradeoff.png)" in text and "](demo/tradeoff.png)" in text and (tmp_path / "paper" / "tradeoff.png").exists()
    assert "retain set `builtin:not-cat` (proxy retain set `builtin:giraffe+horse+sheep+zebra`, its row measured on" in text
    # the paper's proxy is four of the nine: its row is measured on the other five, beside the original there
    proxy_row = spec.table_rows()[1]
    paper_spec = replace(spec, out=tmp_path / "paper", retain="builtin:not-cat", proxy=SPLITS["paper"].proxy,
                         proxy_measured=SPLITS["paper"].proxy_measured)  # fmt: skip
    proxy = json.loads(cell_path(paper_spec, "mae", proxy_row, "center50", 0).read_text())
    assert proxy["measured_on"] == "builtin:bear+bird+cow+dog+elephant" and proxy["retain"]["n"] == 1000
    assert proxy["retain_set"] == "builtin:giraffe+horse+sheep+zebra" and proxy["original"]["retain"]["n"] == 1000
    assert proxy["original"]["retain"]["probe_acc"] != paper["retain"]["probe_acc"]  # the five, not the nine
    assert "the classes it did not train on" in text.split("# The app's demonstration")[0]
    demo_proxy = json.loads(cell_path(replace(spec, out=tmp_path / "demo"), "mae", proxy_row, "center50", 0).read_text())
    assert demo_proxy["measured_on"] == "builtin:dog" and "original" not in demo_proxy  # the demo's proxy is apart already


@pytest.mark.slow
def test_the_table_audits_each_methods_model_when_asked(tmp_path):
    from unlearn_core.audit.common import AuditConfig

    small = AuditConfig(images=6, relearn_k=(2,), relearn_steps=2, relearn_every=2, membership_images=6, membership_draws=1,
                        inversion_images=3, inversion_steps=2)  # fmt: skip
    spec = TableSpec(models=["mae"], masks=["center50"], out=tmp_path, alphas=[], rows=["original", "ours"], steps=2, batch_size=4,
                     image_metrics=False, command="test")  # fmt: skip
    build(spec, lambda line: None)
    assert "audit of each method" not in (tmp_path / "RESULTS.md").read_text()
    audited = replace(spec, audit=True, audit_config=small)
    said = []
    text = build(audited, said.append).read_text()  # the cells are kept; the audit needs the model, so ours runs again
    assert any("original seed 0: done before, kept" in s for s in said) and any("ours seed 0: center50" in s for s in said)
    ours = next(r for r in spec.table_rows() if r.key == "ours")
    kept = json.loads(audit_path(audited, "mae", ours, "center50", 0).read_text())
    assert set(kept["audit"]) >= {"relearning", "membership", "inversion"} and "membership AUC (loss_change)" in kept["figures"]
    section = text.split("### mae: audit of each method's model")[1]
    assert "| Ours | center50 |" in section and "relearning: steps to half the original's score, k=2" in section


def test_the_plot_legend_says_when_a_rows_retain_figures_come_from_other_classes(monkeypatch):
    import unlearn_core.measure.plots as plots
    from unlearn_core.studies.table import tradeoff_plot

    spec = TableSpec(models=["mae"], masks=["center50"], out=".", alphas=[], rows=["original", "ours_proxy"],
                     proxy_measured="builtin:bear+cow+dog")  # fmt: skip
    cell = {"forget": {"probe_acc": 0.1}, "retain": {"probe_acc": 0.7}}
    cells = {("mae", "original", "center50"): cell, ("mae", "ours_proxy", "center50"): cell}
    names, scatter = [], plots.scatter
    monkeypatch.setattr(plots, "scatter", lambda series, *a, **k: names.extend(s.name for s in series) or scatter(series, *a, **k))
    assert tradeoff_plot(cells, spec).width > 300
    assert names == ["Original", "Ours (proxy D_R) (retain: 3 classes)"]


def test_a_new_default_alpha_keys_anew_only_the_rows_that_use_it(tmp_path, monkeypatch):
    from unlearn_core.models import get_family
    from unlearn_core.studies import table

    spec = TableSpec(models=["vqgan"], masks=["center50"], out=tmp_path, alphas=[0.2])
    rows = {r.key: r for r in spec.table_rows("vqgan")}
    before = {k: table.cell_key(spec, "vqgan", r, "center50", 0) for k, r in rows.items()}
    family = get_family("vqgan")
    moved = replace(family, defaults=replace(family.defaults, alpha={"ours": 0.3}))
    monkeypatch.setattr(table, "get_family", lambda name: moved if name == "vqgan" else get_family(name))
    own = table.get_method
    monkeypatch.setattr(table, "default_alpha", lambda m, model, recipe="demo": moved.recipe(recipe).alpha_for(m, own(m).default_alpha))
    after = {k: table.cell_key(spec, "vqgan", r, "center50", 0) for k, r in rows.items()}
    changed = {k for k in rows if before[k] != after[k]}
    # ours and its proxy row run with the default alpha; the baselines, the official recipe and a
    # sweep point with its own alpha keep their cells
    assert changed == {"ours", "ours_proxy"}


def test_the_table_says_which_baselines_lie_beyond_ours():
    from unlearn_core.studies.table import BASE_ROWS, frontier_words

    def cell(forget, retain):
        return {"forget": {"probe_acc": forget}, "retain": {"probe_acc": retain}}

    cells = {
        ("mae", "original", "center50"): cell(0.95, 0.90),
        ("mae", "ours", "center50"): cell(0.10, 0.80),
        ("mae", "noisy_label", "center50"): cell(0.05, 0.85),  # forgets more, keeps more
        ("mae", "max_loss", "center50"): cell(0.02, 0.60),  # forgets more, keeps less
        ("mae", "finetune", "center50"): cell(0.90, 0.90),  # keeps more, forgets less
    }
    text = frontier_words(cells, "mae", "center50", list(BASE_ROWS))
    assert "not on it" in text and "Noisy Label (forget 0.050, retain 0.850)" in text
    assert "Max Loss" not in text and "FT" not in text and "Original" not in text
    del cells["mae", "noisy_label", "center50"]
    assert "no baseline both forgets more and keeps more" in frontier_words(cells, "mae", "center50", list(BASE_ROWS))
    assert frontier_words(cells, "mae", "outpaint50", list(BASE_ROWS)) == ""  # no cell of ours: nothing to say
