"""The audit (is it really gone?): relearning, membership and the mask sweep on a run folder, the
`audit` command, and clear errors that change nothing on bad input."""

import json
import shutil
from dataclasses import replace

import pytest
import torch

from unlearn_core.audit.common import AuditConfig, AuditStopped, auc_noise, roc_auc
from unlearn_core.audit.compare import compare_runs, comparison_html, comparison_text
from unlearn_core.audit.folder import open_run
from unlearn_core.audit.relearn import relearning_verdict, steps_to
from unlearn_core.audit.runner import parse_only, pictures, run_audit, write_audit
from unlearn_core.audit.sweep import holds_from, sweep_mask
from unlearn_core.cli import main
from unlearn_core.errors import UserInputError
from unlearn_core.models import family_class
from unlearn_core.run.engine import UnlearnConfig, default_alpha
from unlearn_core.run.pipeline import RunSpec, run, write_outputs

SMALL = AuditConfig(images=8, relearn_k=(2, 4), relearn_steps=4, relearn_every=2, membership_images=8, membership_draws=1,
                    inversion_images=4, inversion_steps=3, sweep_fractions=(0.3, 0.7))  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short real run of the embedded MAE (cats forgotten, dogs kept), written as `unlearn --out` writes it."""
    spec = RunSpec(forget="builtin:cat", retain="builtin:dog", mask="center50", config=UnlearnConfig(steps=3, batch_size=4),
                   eval_masks="", image_metrics=False)  # fmt: skip
    d = tmp_path_factory.mktemp("runs") / "cat"
    write_outputs(run(spec), d)
    return d


@pytest.fixture
def fresh(run_dir, tmp_path):
    """A copy of the run folder a test may change."""
    return shutil.copytree(run_dir, tmp_path / "run")


def test_auc_says_how_well_a_score_separates_two_groups():
    assert roc_auc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert roc_auc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    assert roc_auc(torch.ones(5), torch.ones(7)) == 0.5  # ties count half
    assert roc_auc(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 4.0])) == 0.25
    assert 0.02 < auc_noise(200, 200) < 0.04 and auc_noise(20, 20) > auc_noise(200, 200)


def _relearned(unlearned: list[int | None], reference: list[int | None] | None, ref_start: float = 0.1) -> dict:
    """A relearning result: steps to half for the unlearned model (and reference) from k = 8, 32."""
    k = {}
    for i, key in enumerate(("8", "32")):
        k[key] = {"unlearned": {"curve": [[0, 0.05], [40, 0.6 if unlearned[i] else 0.2]], "steps_to_half": unlearned[i]}}
        if reference is not None:
            k[key]["reference"] = {"curve": [[0, ref_start], [40, 0.5]], "steps_to_half": reference[i]}
    return {"original": 0.9, "target": 0.45, "k": k, "steps": 40}


def test_relearning_verdict_claims_only_what_the_reference_supports():
    """Suppressed only when a model that never saw the class relearns clearly slower; no claim without one."""
    assert "does not tell suppressed" in relearning_verdict(_relearned([10, 10], None), None)
    assert "suppressed, not removed" in relearning_verdict(_relearned([10, 10], [30, None]), "never saw cats")
    assert "no faster" in relearning_verdict(_relearned([10, 10], [10, 10]), "never saw cats")
    assert "mixed evidence" in relearning_verdict(_relearned([10, 10], [30, 10]), "never saw cats")
    # the reference draws the class before any step: a fast return says nothing ...
    assert "also what a model without" in relearning_verdict(_relearned([10, None], [0, 0], ref_start=0.88), "never saw cats")
    # ... and an unlearned model that never comes back is below the reference, not "suppressed"
    text = relearning_verdict(_relearned([None, None], [0, 0], ref_start=0.88), "never saw cats")
    assert "less than a model that never saw it" in text and "suppressed" not in text and "stays below half" in text


def test_sweep_masks_hide_about_the_share_asked():
    for kind in ("center", "outpaint", "patches"):
        for f in (0.1, 0.5, 0.9):
            hidden = sweep_mask(kind, f).build(4, 32, seed=0).mean().item()
            assert abs(hidden - f) < 0.08, (kind, f, hidden)


def test_forgetting_holds_from_the_smallest_fraction_after_which_it_always_does():
    rows = {"original": {"forget": [0.9, 0.9, 0.8, 0.6]}, "unlearned": {"forget": [0.8, 0.2, 0.5, 0.1]}}
    assert holds_from(rows, [0.1, 0.3, 0.5, 0.7]) == 0.7  # 0.3 held but 0.5 did not
    rows["unlearned"]["forget"][2] = 0.2
    assert holds_from(rows, [0.1, 0.3, 0.5, 0.7]) == 0.3
    rows["unlearned"]["forget"][3] = 0.4  # above half the original's 0.6 at the largest fraction
    assert holds_from(rows, [0.1, 0.3, 0.5, 0.7]) is None


def test_steps_to_a_target_is_the_first_measured_step_that_reaches_it():
    curve = [[0, 0.1], [10, 0.3], [20, 0.6], [30, 0.4]]
    assert steps_to(curve, 0.5) == 20 and steps_to(curve, 0.05) == 0 and steps_to(curve, 0.7) is None


def test_an_audit_of_a_run_measures_every_attack_against_the_original(run_dir):
    folder = open_run(run_dir, "cpu")
    assert folder.family == "mae" and folder.mask.name == "center50" and folder.seed == 0
    assert set(folder.models()) >= {"original", "unlearned"}
    heard = []
    result = run_audit(folder, None, SMALL, heard.append)
    assert {"relearning", "membership", "inversion", "mask_sweep", "config", "seconds"} <= set(result)
    assert heard[-1].done == heard[-1].total and all(e.total == heard[-1].total for e in heard)

    r = result["relearning"]
    assert r["target"] == pytest.approx(r["original"] / 2, abs=1e-4)
    for k in ("2", "4"):
        curve = r["k"][k]["unlearned"]["curve"]
        assert [step for step, _ in curve] == [0, 2, 4] and all(0 <= acc <= 1 for _, acc in curve)
    # the model under attack is a copy: the run's own unlearned model is unchanged
    assert torch.equal(folder.unlearned.state_dict()["net.vit.embeddings.patch_embeddings.projection.weight"],
                       open_run(run_dir, "cpu").unlearned.state_dict()["net.vit.embeddings.patch_embeddings.projection.weight"])  # fmt: skip

    m = result["membership"]
    assert m["members"] == m["non_members"] == 8 and 0 < m["noise"] < 0.5
    assert set(m["models"]["unlearned"]) == {"reconstruction", "loss", "loss_change"}
    assert set(m["models"]["original"]) == {"reconstruction", "loss"}
    assert all(0 <= auc <= 1 for aucs in m["models"].values() for auc in aucs.values())

    inv = result["inversion"]["models"]
    assert set(inv) == set(folder.models()) and inv["unlearned"]["curve"][0][0] == 0 and inv["unlearned"]["curve"][-1][0] == 3
    for figures in inv.values():
        assert figures["end"]["psnr"] > figures["start"]["psnr"]  # steering the decoder brings it closer to the truth

    s = result["mask_sweep"]
    assert list(s["kinds"]) == ["center", "outpaint", "patches"] and s["fractions"] == [0.3, 0.7]
    for rows in s["kinds"].values():
        assert len(rows["hidden"]) == 2 and len(rows["unlearned"]["forget"]) == len(rows["original"]["retain"]) == 2
    for name in ("relearning", "membership", "inversion", "mask_sweep"):
        assert result[name]["verdict"].endswith(".") and len(result[name]["verdict"]) > 40
    pics = pictures(result)
    assert set(pics) == {"relearning", "membership", "inversion", "mask_sweep"} and all(p.width > 300 for p in pics.values())


def test_every_family_lets_an_attacker_steer_its_decoder(tiny_model):
    tiny_model.requires_grad_(False)  # as the audit's models are: the attacker moves the decoder's input only
    x = torch.rand(2, tiny_model.channels, tiny_model.image_size, tiny_model.image_size)
    mask = torch.zeros(2, 1, x.shape[-1], x.shape[-1])
    mask[..., 8:24, 8:24] = 1
    inv = tiny_model.decoder_inversion(x, mask, seed=0)
    z = [t.clone().requires_grad_(True) for t in inv.latents]
    opt = torch.optim.Adam(z, lr=0.05)
    losses = []
    for _ in range(8):
        raw = inv.decode(z)
        assert raw.shape == x.shape and 0 <= raw.min() and raw.max() <= 1
        loss = ((raw - x) ** 2 * inv.mask).mean()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0]
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in z[:1])
    if tiny_model.family == "mae":  # one pass: the start is the model's own output
        assert torch.allclose(inv.decode(inv.latents), tiny_model.generate(x, mask).raw, atol=1e-5)


def test_the_audit_goes_into_metrics_json_and_beside_it(fresh):
    folder = open_run(fresh, "cpu")
    before = json.loads((fresh / "metrics.json").read_text())
    first = run_audit(folder, ["membership"], SMALL)
    written = write_audit(folder, first)
    assert [p.name for p in written] == ["audit-membership.png"] and written[0].is_file()
    after = json.loads((fresh / "metrics.json").read_text())
    assert after["audit"]["membership"] == first["membership"]
    assert {k: v for k, v in after.items() if k != "audit"} == before  # the run's own figures kept
    write_audit(folder, run_audit(folder, ["mask_sweep"], replace(SMALL, sweep_kinds=("center",))))
    both = json.loads((fresh / "metrics.json").read_text())["audit"]
    assert {"membership", "mask_sweep"} <= set(both)  # a later audit adds to the earlier one


def test_a_stopped_audit_raises_and_writes_nothing(fresh):
    folder = open_run(fresh, "cpu")
    before = (fresh / "metrics.json").read_bytes()
    with pytest.raises(AuditStopped):
        run_audit(folder, ["mask_sweep"], SMALL, should_stop=lambda: True)
    assert (fresh / "metrics.json").read_bytes() == before and not list(fresh.glob("audit-*"))


def test_bad_input_gets_a_clear_error_and_changes_nothing(fresh, tmp_path):
    with pytest.raises(UserInputError, match="no such folder"):
        open_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="not a run folder"):
        open_run(tmp_path / "empty")
    before = (fresh / "metrics.json").read_bytes()
    folder = open_run(fresh, "cpu")
    with pytest.raises(UserInputError, match="more than the forget set"):
        run_audit(folder, ["relearning"], replace(SMALL, relearn_k=(100_000,)))
    with pytest.raises(UserInputError, match="at least 1"):
        run_audit(folder, ["relearning"], replace(SMALL, relearn_k=(0,)))
    assert (fresh / "metrics.json").read_bytes() == before and not list(fresh.glob("audit-*"))
    with pytest.raises(UserInputError, match="unknown audit 'bogus'"):
        parse_only("membership,bogus")
    assert parse_only("mask_sweep,relearning") == ["relearning", "mask_sweep"]

    weights = fresh / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a damaged model file
    with pytest.raises(UserInputError, match="cannot read this model"):
        open_run(fresh, "cpu")
    shutil.rmtree(fresh / "model")
    with pytest.raises(UserInputError, match="model/ folder"):
        open_run(fresh, "cpu")
    (fresh / "metrics.json").write_text("{not json")
    with pytest.raises(UserInputError, match="damaged"):
        open_run(fresh, "cpu")


def test_a_run_of_an_uploaded_set_needs_that_set(fresh):
    m = json.loads((fresh / "metrics.json").read_text())
    m["forget_set"]["source"] = "my-cats"
    (fresh / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(UserInputError, match="--forget FOLDER"):
        open_run(fresh, "cpu")
    with pytest.raises(UserInputError, match="other images than the run's forget set"):
        open_run(fresh, "cpu", forget="builtin:bird")
    assert open_run(fresh, "cpu", forget="builtin:cat").forget.name  # the same images: accepted


def test_the_audit_command_prints_json_and_errors_in_one_line(fresh, capsys):
    args = ["audit", str(fresh), "--only", "membership,mask_sweep", "--images", "4", "--membership-images", "4", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) == {"membership", "mask_sweep", "config", "seconds"}
    assert (fresh / "audit-membership.png").is_file() and (fresh / "audit-mask_sweep.png").is_file()
    assert main(["audit", str(fresh), "--only", "bogus"]) == 2
    assert main(["audit", str(fresh), "--k", "two"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown audit 'bogus'" in err and "--k takes comma-separated whole numbers" in err


# ------------------------------------------------------------------------------ two runs compared


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory):
    """A second run: the same sets and mask, alpha 4."""
    spec = RunSpec(forget="builtin:cat", retain="builtin:dog", mask="center50", config=UnlearnConfig(steps=3, batch_size=4, alpha=4.0),
                   eval_masks="", image_metrics=False)  # fmt: skip
    d = tmp_path_factory.mktemp("runs") / "cat-alpha4"
    write_outputs(run(spec), d)
    return d


def test_two_runs_are_compared_on_the_same_images(run_dir, other_dir):
    c = compare_runs(run_dir, other_dir, "cpu")
    settings = {k: (a, b) for k, a, b in c.settings}
    assert settings["alpha"] == (default_alpha("ours", family_class("mae")), 4.0) and settings["model"] == ("mae", "mae")
    assert settings["command"][0].startswith("python -m unlearn_core unlearn --model mae") and "--alpha 4" in settings["command"][1]
    figures = {k: (a, b, d) for k, a, b, d in c.figures}
    a, b, d = figures["forget probe_acc (center50)"]
    assert d == pytest.approx(b - a, abs=1e-4)
    assert c.picture is not None and c.picture.width > 600 and "seed (0)" in c.note
    text = comparison_text(c)
    assert "alpha" in text and "(differs)" in text and "B - A" in text
    page = comparison_html(c)
    assert page.count("<img") == 1 and "Run A (cat)" in page


def test_runs_of_two_families_or_of_uploads_compare_figures_only(run_dir, other_dir, tmp_path):
    vq = shutil.copytree(other_dir, tmp_path / "vq")
    m = json.loads((vq / "metrics.json").read_text())
    (vq / "metrics.json").write_text(json.dumps(m | {"model": "vqgan"}))
    c = compare_runs(run_dir, vq)
    assert c.picture is None and "mae model and run B a vqgan model" in c.note and c.figures
    up = shutil.copytree(run_dir, tmp_path / "up")
    m = json.loads((up / "metrics.json").read_text())
    m["forget_set"]["source"] = "3 uploaded files"
    (up / "metrics.json").write_text(json.dumps(m))
    c = compare_runs(up, other_dir)
    assert c.picture is None and "forget set was uploaded" in c.note
    elsewhere = shutil.copytree(run_dir, tmp_path / "elsewhere")  # its original is no embedded model: no picture, figures
    m = json.loads((elsewhere / "metrics.json").read_text())
    (elsewhere / "metrics.json").write_text(json.dumps(m | {"base_model": {"name": "my-own-mae"}}))
    c = compare_runs(elsewhere, other_dir)
    assert c.picture is None and "not pictured" in c.note and "--original" in c.note and c.figures
    with pytest.raises(UserInputError, match="not a run folder"):
        compare_runs(tmp_path, other_dir)


def test_the_compare_command_prints_and_writes_a_page(run_dir, other_dir, tmp_path, capsys):
    page = tmp_path / "c.html"
    assert main(["compare", str(run_dir), str(other_dir), "--html", str(page), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["names"] == ["cat", "cat-alpha4"] and page.read_text().startswith("<!doctype html>")


def test_a_run_without_out_is_named_by_its_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["unlearn", "--forget", "builtin:cat", "--retain", "builtin:dog", "--steps", "2", "--batch-size", "4", "--eval-masks", ""]
    assert main([*args, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    folder = tmp_path / "runs" / metrics["config_hash"]
    assert (folder / "model").is_dir() and metrics["command"].endswith(f"--out runs/{metrics['config_hash']}")
    assert main([*args, "--seed", "1", "--json"]) == 0  # other settings, another name
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_the_app_relearns_from_what_a_small_forget_set_has():
    """The page has no k field: a forget set of 20 training images is relearned from 8 and 20, and the page says so."""
    from unlearn_core.serving.auditing import fit_to_forget_set

    cfg, said = fit_to_forget_set(AuditConfig(), 20)
    assert cfg.relearn_k == (8, 20) and "20 training images" in said
    assert fit_to_forget_set(AuditConfig(), 770) == (AuditConfig(), "")
