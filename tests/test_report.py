"""What a finished run tells people: the verdict line, the metrics table and the HTML report."""

import pytest

from unlearn_core.serving.report import forgetting_verdict, mask_headers, mask_rows, metrics_rows


def _row(v, key="probe_acc"):
    return {"psnr_masked": 12.0, "probe_acc": v if key == "probe_acc" else None, "probe_agree": v, "noise_cos": 0.5, "n": 10}


def _metrics(f0, f1, r0, r1, key="probe_acc", labelled=True, mask="center50"):
    return {
        "mask": mask,
        "original": {"forget": _row(f0, key), "retain": _row(r0, key)},
        "unlearned": {"forget": _row(f1, key), "retain": _row(r1, key)},
        "forget_set": {"labelled": labelled},
        "retain_set": {"labelled": labelled},
    }


def _with_masks(m: dict, masks: dict, change: dict, key="probe_acc") -> dict:
    """`m` measured under more masks: {mask: (f0, f1, r0, r1)}, and the pictures' change {mask: (forget, retain)}."""
    m["masks"] = {m["mask"]: {"original": m["original"], "unlearned": m["unlearned"]}}
    for name, (f0, f1, r0, r1) in masks.items():
        m["masks"][name] = {
            "original": {"forget": _row(f0, key), "retain": _row(r0, key)},
            "unlearned": {"forget": _row(f1, key), "retain": _row(r1, key)},
        }
    m["change"] = {name: {"forget": f, "retain": r} for name, (f, r) in change.items()}
    return m


@pytest.mark.parametrize(
    "f0, f1, r0, r1, forget, retain",
    [
        (0.93, 0.06, 0.84, 0.82, "forgotten", "kept"),
        (0.93, 0.465, 0.84, 0.76, "forgotten", "slightly changed"),
        (0.93, 0.70, 0.84, 0.60, "partly forgotten", "damaged"),
        (0.93, 0.90, 0.84, 0.84, "not forgotten", "kept"),
    ],
)
def test_verdict_words(f0, f1, r0, r1, forget, retain):
    text = forgetting_verdict(_metrics(f0, f1, r0, r1))
    assert f"Forget set: **{forget}** under center50" in text and f"Retain set: **{retain}** under center50" in text
    assert f"probe accuracy {f0:.3f} → {f1:.3f}" in text


def test_scores_are_written_one_way():
    """0.855 and 0.875 both keep their three decimals (two decimals rounded them two ways: 0.85, 0.88)."""
    text = forgetting_verdict(_metrics(0.855, 0.22, 0.875, 0.865))
    assert "0.855 → 0.220" in text and "0.875 → 0.865" in text


def test_the_verdict_names_the_masks_it_holds_for_and_never_hides_a_rising_score():
    """Forgotten under the run's mask, the forget score rising under another: the headline says both;
    a mask where the original itself fails is counted neither as forgetting nor as damage."""
    m = _with_masks(
        _metrics(0.93, 0.06, 0.84, 0.82),
        {"center25": (0.99, 0.40, 0.93, 0.92), "outpaint25": (0.25, 0.875, 0.08, 0.02), "outpaint50": (0.75, 0.875, 0.87, 0.86)},
        {"center50": (0.27, 0.05), "center25": (0.3, 0.1), "outpaint25": (0.1, 0.1), "outpaint50": (0.05, 0.04)},
    )
    text = forgetting_verdict(m)
    assert text.startswith("Forget set: **forgotten** under center50, the run's mask (probe accuracy 0.930 → 0.060; ")
    assert "changed by 0.270 in the generated region, the retain set's by 0.050" in text
    assert "score rose under outpaint50 (0.750 → 0.875)" in text
    assert "the original fails under outpaint25 (0.250)" in text  # forget
    assert "the original fails under outpaint25 (0.080)" in text  # retain: its fall to 0.02 is no damage
    assert "forgotten under center25 (0.990 → 0.400)" in text
    rows = {r[0]: r for r in mask_rows(m)}
    assert rows["center50 *"][-1] == "forget forgotten; retain kept"
    assert rows["outpaint50"][-1] == "forget score rose; retain kept"
    assert rows["outpaint25"][-1] == "the original fails on both sets: not counted"
    assert rows["center25"][1:] == [0.99, 0.40, 0.3, 0.93, 0.92, 0.1, "forget forgotten; retain kept"]


def test_a_probe_drop_the_pictures_do_not_show_is_said_so():
    """The probe calls the cats gone, but their outputs changed no more than the dogs': 'by the probe only'."""
    m = _with_masks(_metrics(0.855, 0.28, 0.875, 0.86), {}, {"center50": (0.062, 0.065)})
    assert "Forget set: **forgotten by the probe only** under center50" in forgetting_verdict(m)
    m["change"]["center50"] = {"forget": 0.2, "retain": 0.065}
    assert "Forget set: **forgotten** under center50" in forgetting_verdict(m)


def test_unlabelled_sets_are_judged_by_agreement_and_blanks_say_why():
    m = _metrics(1.0, 0.2, 0.95, 0.94, key="probe_agree", labelled=False)
    assert "probe agreement with the input image 1.000 → 0.200" in forgetting_verdict(m)
    assert mask_headers(m)[1:4] == ["forget agreement: original", "forget agreement: unlearned", "forget: change"]
    assert mask_headers(_metrics(1.0, 0.2, 0.95, 0.94))[1] == "forget acc: original"
    rows = {(r[0], r[1]): r for r in metrics_rows(m)}
    assert rows["forget", "probe_acc"][2:] == ["n/a: no labels (see probe_agree)", "n/a: no labels (see probe_agree)", ""]
    assert rows["forget", "probe_agree"][2:] == [1.0, 0.2, -0.8]


def test_a_verdict_on_few_images_says_how_coarse_it_is():
    m = _metrics(1.0, 0.5, 1.0, 1.0, key="probe_agree", labelled=False)
    assert "Judged on 10 held-out images only: each moves the score by 0.10." in forgetting_verdict(m)
    m["original"]["forget"]["n"] = m["original"]["retain"]["n"] = 200
    assert "Judged on" not in forgetting_verdict(m)


def test_no_probe_no_verdict():
    m = _metrics(None, None, None, None)
    assert "No probe" in forgetting_verdict(m)
    assert metrics_rows(m)[1][2] == "n/a: no probe"
