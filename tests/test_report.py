"""What a finished run tells people: the verdict line, the metrics table and the HTML report."""

import pytest

from unlearn_core.serving.report import forgetting_verdict, metrics_rows


def _metrics(f0, f1, r0, r1, key="probe_acc", labelled=True):
    def row(v):
        return {"psnr_masked": 12.0, "probe_acc": v if key == "probe_acc" else None, "probe_agree": v, "noise_cos": 0.5, "n": 10}

    return {
        "original": {"forget": row(f0), "retain": row(r0)},
        "unlearned": {"forget": row(f1), "retain": row(r1)},
        "forget_set": {"labelled": labelled},
        "retain_set": {"labelled": labelled},
    }


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
    assert f"Forget set: **{forget}**" in text and f"Retain set: **{retain}**" in text
    assert f"{f0:.2f} -> {f1:.2f}" in text and "probe accuracy" in text


def test_unlabelled_sets_are_judged_by_agreement_and_blanks_say_why():
    m = _metrics(1.0, 0.2, 0.95, 0.94, key="probe_agree", labelled=False)
    assert "probe agreement with the input image 1.00 -> 0.20" in forgetting_verdict(m)
    rows = {(r[0], r[1]): r for r in metrics_rows(m)}
    assert rows["forget", "probe_acc"][2:] == ["n/a: no labels (see probe_agree)", "n/a: no labels (see probe_agree)", ""]
    assert rows["forget", "probe_agree"][2:] == [1.0, 0.2, -0.8]


def test_no_probe_no_verdict():
    m = _metrics(None, None, None, None)
    assert "No probe" in forgetting_verdict(m)
    assert metrics_rows(m)[1][2] == "n/a: no probe"
