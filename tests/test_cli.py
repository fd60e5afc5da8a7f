"""End to end through `python -m unlearn_core` on the committed checkpoints, with few steps."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"psnr_masked", "probe_acc", "noise_cos", "n"}


def cli(*args, cwd=ROOT, env=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "unlearn_core", *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.slow
def test_unlearn_end_to_end(tmp_path):
    out = tmp_path / "run"
    r = cli(
        "unlearn",
        "--model",
        "mae",
        "--forget",
        "builtin:cat",
        "--retain",
        "builtin:dog",
        "--out",
        str(out),
        "--steps",
        "4",
        "--batch-size",
        "8",
        "--mask",
        "outpaint50",
        "--eval-masks",
        "center50,outpaint50",
        "--no-fid",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"model", "method", "mask", "steps", "seconds", "original", "unlearned", "masks"} <= result.keys()
    # per evaluation mask; the run's own mask holds the same figures as the top-level keys
    assert list(result["masks"]) == ["center50", "outpaint50"]
    assert result["masks"]["outpaint50"] == {"original": result["original"], "unlearned": result["unlearned"]}
    assert result["masks"]["center50"]["original"]["forget"]["probe_acc"] != result["original"]["forget"]["probe_acc"]
    assert "fid" not in result["original"]["forget"]  # --no-fid
    assert result["model"] == "mae" and result["method"] == "ours" and result["mask"] == "outpaint50" and result["steps"] == 4
    assert result["train_mask"] == "outpaint50"  # MAE unlearns with the run's own mask
    for which in ("original", "unlearned"):
        for s in ("forget", "retain"):
            assert KEYS <= result[which][s].keys() and result[which][s]["n"] == 200
            assert 0 <= result[which][s]["probe_acc"] <= 1
    assert json.loads((out / "metrics.json").read_text()) == result
    lines = (out / "losses.csv").read_text().splitlines()
    assert lines[0] == "step,retain,forget,total" and len(lines) == 5
    # retain loss at step 1: zero, up to rounding under bfloat16 (test_engine's step-zero test)
    assert 0.0 <= float(lines[1].split(",")[1]) < 1e-4
    assert Image.open(out / "embedding.png").width > 600  # the embedding view, original and unlearned panels
    grid = Image.open(out / "compare.png")
    assert grid.width > 10 * 96 and grid.height > 6 * 96  # forget and retain blocks side by side, six rows of five each
    # the pictures under the other evaluation mask too, and how much each set's pictured outputs changed
    assert Image.open(out / "compare-center50.png").size == grid.size and not (out / "compare-outpaint50.png").exists()
    assert list(result["change"]) == ["outpaint50", "center50"]
    assert all(0 <= c <= 1 for by_set in result["change"].values() for c in by_set.values())
    assert result["measure_seconds"] > 0 and "verdict: Forget set: " in r.stderr
    measuring = [line for line in r.stderr.splitlines() if line.startswith("measure (")]
    assert any(line.startswith("measure (headline): 100% (pictures under outpaint50") for line in measuring)
    assert measuring[-1].startswith("measure (other masks, embedding view): 100% (embedding view")
    # progress into a pipe: a line every few percent, no carriage-return redraws
    progress = [line for line in r.stderr.splitlines() if line.startswith("unlearn builtin:cat: ")]
    assert "\r" not in r.stderr and progress[-1].startswith("unlearn builtin:cat: 100% (4/4")
    meta = json.loads((out / "model" / "unlearn_meta.json").read_text())
    assert meta["method"] == "ours" and len(meta["forget_sha256"]) == 64
    # the base model is recorded by name and weights hash, never by the server's path to it
    assert meta["base_model"]["name"] == "mae-animals" and len(meta["base_model"]["sha256"]) == 64
    assert str(ROOT) not in (out / "model" / "unlearn_meta.json").read_text() and str(ROOT) not in (out / "metrics.json").read_text()

    # the unlearned model loads through the same loader and evaluates
    r = cli(
        "evaluate",
        "--model",
        "mae",
        "--checkpoint",
        str(out / "model"),
        "--forget",
        "builtin:cat",
        "--retain",
        "builtin:dog",
        "--mask",
        "outpaint50",
        "--eval-masks",
        "",
        "--no-fid",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout.strip().splitlines()[-1])
    assert ev["forget"]["psnr_masked"] == pytest.approx(result["unlearned"]["forget"]["psnr_masked"], abs=1e-3)
    # noise_cos is measured against the original encoder, found again by its name and hash
    assert ev["noise_cos_encoder"] == "mae-animals"
    assert ev["forget"]["noise_cos"] == pytest.approx(result["unlearned"]["forget"]["noise_cos"], abs=1e-3)


@pytest.mark.slow
def test_unlearn_on_user_folders_with_every_metric(tmp_path):
    """Small sets keep the Inception features cheap: --fid measures FID and embed_cos (off by
    default on a CPU), the default every preset mask."""
    folders = []
    for name, colour in (("mine", (10, 200)), ("keep", (200, 30))):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(4):
            Image.new("RGB", (50, 40), (60 * i, *colour)).save(folder / f"{i}.jpg")
        folders.append(str(folder))
    sets = ["--forget", folders[0], "--retain", folders[1]]
    r = cli("unlearn", *sets, "--out", str(tmp_path / "o"), "--steps", "2", "--batch-size", "4", "--fid", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["unlearned"]["forget"]["probe_acc"] is None and result["unlearned"]["forget"]["n"] == 4
    assert any("evaluated on the unlearned images themselves" in n for n in result["notes"])
    for which in ("original", "unlearned"):
        for s in ("forget", "retain"):
            m = result[which][s]
            assert m["fid"] >= 0 and -1 <= m["embed_cos"] <= 1 and "is" not in m  # no IS: the network has no classifier
    assert list(result["masks"]) == ["center25", "center50", "outpaint25", "outpaint50", "patches75"]
    assert result["mask"] == "center50" and "fid" not in result["masks"]["outpaint50"]["unlearned"]["forget"]  # on the run's own mask only
    assert "probe_acc by mask" in r.stderr  # the text table, on stderr with --json
    r = cli("evaluate", "--checkpoint", str(tmp_path / "o" / "model"), *sets, "--fid", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout.strip().splitlines()[-1])
    assert ev["forget"]["fid"] == pytest.approx(result["unlearned"]["forget"]["fid"], rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["--forget", "builtin:unicorn", "--retain", "builtin:dog"], "unknown built-in set"),
        (["--forget", "builtin:cat", "--retain", "/no/such/folder"], "no such built-in set, folder, zip or image"),
        (["--forget", "builtin:cat", "--retain", "builtin:dog", "--mask", "middle"], "unknown mask"),
        (["--forget", "builtin:cat", "--retain", "builtin:dog", "--steps", "0"], "at least 1"),
        (["--forget", "builtin:cat", "--retain", "builtin:dog", "--model", "gan"], "unknown model"),
        (["--forget", "builtin:cat", "--retain", "builtin:dog", "--checkpoint", "/nope"], "checkpoint folder not found"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path, args, message):
    r = cli("unlearn", *args, "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["unlearn", "--forget", "builtin:cat", "--retain", "builtin:dog", "--out", "OUT", "--lr", "abc"],
            "argument --lr: invalid float value",
        ),
        (["unlearn", "--forget", "builtin:cat"], "the following arguments are required"),
        (["evaluate", "--forget", "builtin:cat", "--retain", "builtin:dog", "--seed", "1.5"], "argument --seed: invalid int value"),
        (["fly"], "invalid choice"),
    ],
)
def test_argument_mistakes_are_one_line_too(tmp_path, args, message):
    r = cli(*(str(tmp_path / "o") if a == "OUT" else a for a in args))
    assert r.returncode == 2 and not (tmp_path / "o").exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr


@pytest.mark.slow
def test_bad_image_in_set_is_named(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    r = cli("evaluate", "--forget", str(folder), "--retain", "builtin:dog")
    assert r.returncode == 2 and "broken.png" in r.stderr and "Traceback" not in r.stderr


FAMILY_RUNS = {
    # family: (its weights file in the model folder, the family's training mask, sampling steps, its name in errors)
    "vqgan": ("tokenizer/diffusion_pytorch_model.safetensors", "random", "4", "VQ-GAN"),
    "diffusion": ("unet/diffusion_pytorch_model.safetensors", "center50", "3", "conditional diffusion"),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_RUNS)
def test_other_families_end_to_end(tmp_path, family):
    weights, train_mask, sampling, title = FAMILY_RUNS[family]
    out = tmp_path / "run"
    args = ["--forget", "builtin:cat", "--retain", "builtin:dog", "--mask", "center50", "--sampling-steps", sampling]
    args += ["--eval-masks", "", "--no-fid", "--json"]
    r = cli("unlearn", "--model", family, "--steps", "3", "--batch-size", "4", "--out", str(out), *args)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["model"] == family and result["steps"] == 3 and result["base_model"]["name"] == f"{family}-animals"
    assert result["train_mask"] == train_mask and result["sampling_steps"] == int(sampling)
    if train_mask == "random":  # the family's default, said in the notes
        assert "fresh random mask every step" in result["notes"][0]
    assert 0 <= result["original"]["forget"]["probe_acc"] <= 1
    assert (out / "model" / weights).exists()
    r = cli("evaluate", "--model", family, "--checkpoint", str(out / "model"), *args)
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout.strip().splitlines()[-1])
    assert ev["noise_cos_encoder"] == f"{family}-animals" and ev["sampling_steps"] == int(sampling)
    assert ev["forget"]["probe_acc"] == pytest.approx(result["unlearned"]["forget"]["probe_acc"])
    # a folder of this family given as an MAE is named as such
    r = cli("evaluate", "--model", "mae", "--checkpoint", str(out / "model"), *args)
    assert r.returncode == 2 and f"holds a {title}" in r.stderr


@pytest.mark.slow
def test_sampling_steps_are_checked_before_any_work():
    base = ["--forget", "builtin:cat", "--retain", "builtin:dog"]
    r = cli("evaluate", "--mask", "random", *base)
    assert r.returncode == 2 and "random is a training mask" in r.stderr
    r = cli("evaluate", "--model", "mae", "--sampling-steps", "4", *base)
    assert r.returncode == 2 and "one pass" in r.stderr
    r = cli("evaluate", "--model", "vqgan", "--sampling-steps", "65", *base)
    assert r.returncode == 2 and "from 1 to 64" in r.stderr


def _rgb_class_folders(root, per_class: int = 12) -> None:
    """A small user dataset: class subfolders of RGB images (red discs vs blue squares, nested
    one level deeper for one class, as people's folders are)."""
    from PIL import ImageDraw

    for name, colour, shape in (("a", (220, 40, 40), "disc"), ("b", (40, 60, 220), "square")):
        for i in range(per_class):
            folder = root / name / ("more" if name == "a" and i % 3 == 0 else "")
            folder.mkdir(parents=True, exist_ok=True)
            im = Image.new("RGB", (80, 70), (20 + 5 * i, 20, 20))
            d, r = ImageDraw.Draw(im), 14 + i
            box = (40 - r, 35 - r, 40 + r, 35 + r)
            d.ellipse(box, fill=colour) if shape == "disc" else d.rectangle(box, fill=colour)
            im.save(folder / f"{i}.png")


@pytest.mark.slow
def test_train_on_your_folder_then_unlearn_its_classes(tmp_path):
    data = tmp_path / "data"
    _rgb_class_folders(data)
    model = tmp_path / "mine"
    r = cli("train", "--model", "mae", "--preset", "tiny", "--data", str(data), "--size", "64", "--channels", "3",
            "--steps", "6", "--batch-size", "8", "--out", str(model))  # fmt: skip
    assert r.returncode == 0, r.stderr
    config = json.loads((model / "config.json").read_text())
    assert (config["image_size"], config["num_channels"], config["patch_size"]) == (64, 3, 8)
    meta = json.loads((model / "unlearn_meta.json").read_text())
    assert meta["training"]["steps"] == 6 and "--size 64" in meta["training"]["command"]
    out = tmp_path / "run"
    r = cli("unlearn", "--checkpoint", str(model), "--forget", str(data / "a"), "--retain", str(data / "b"), "--mask", "center50",
            "--steps", "3", "--batch-size", "4", "--eval-masks", "", "--no-fid", "--out", str(out), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["forget_set"]["train"] + result["forget_set"]["test"] == 12  # the nested subfolder counted
    assert result["unlearned"]["forget"]["n"] > 0 and result["base_model"]["name"] == "mine"
    with Image.open(out / "compare.png") as grid:
        assert grid.mode == "RGB"
        assert np.asarray(grid).std(axis=2).max() > 30  # colour survives, not grey


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "60"], "multiple of 8"),
        (["--size", "8"], "between 16 and 512"),
        (["--channels", "2"], "invalid choice"),
    ],
)
def test_train_size_mistakes_are_one_line_errors(tmp_path, args, message):
    r = cli("train", "--model", "mae", "--preset", "tiny", "--steps", "1", "--out", str(tmp_path / "m"), *args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.slow
def test_train_reports_its_plateau_and_resumes_only_when_asked(tmp_path):
    """`train` records the held-out loss curve and says whether it reached a plateau; a state left by
    an interrupted run is neither overwritten nor silently ignored."""
    out = tmp_path / "m"
    args = ("train", "--model", "mae", "--preset", "tiny", "--data", "builtin:cat", "--steps", "4", "--batch-size", "8", "--out", str(out))
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert re.search(r"held-out loss fell -?\d+\.\d+% over the last fifth of the steps: plateau (reached|NOT reached)", r.stderr), r.stderr
    training = json.loads((out / "unlearn_meta.json").read_text())["training"]
    assert [step for step, _ in training["held_out"]] == [1, 2, 3, 4] and "state" not in training and "--resume" not in training["command"]
    assert not (out / "training-state.pt").exists()  # removed once training ended
    r = cli(*args, "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr, r.stderr
    (out / "training-state.pt").write_bytes(b"left by an interrupted run")
    r = cli(*args)
    assert r.returncode == 2 and "add --resume to go on from it" in r.stderr, r.stderr


def _tiny_rgb_vitmae(folder) -> None:
    """A ViTMAE as real checkpoints come (224x224 RGB, patch 16), at a tiny width."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    cfg = ViTMAEConfig(image_size=224, patch_size=16, num_channels=3, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                       decoder_intermediate_size=64)  # fmt: skip
    ViTMAEForPreTraining(cfg).save_pretrained(folder)


def _offline_hub_cache(cache, repo: str) -> Path:
    """The local Hugging Face cache layout for model `repo` (what a download leaves behind):
    models--owner--name/refs/main -> snapshots/<commit>/."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    return root / "snapshots" / commit


@pytest.mark.slow
def test_real_rgb_vitmae_from_the_hub_cache_and_from_a_folder(tmp_path):
    data = tmp_path / "data"
    _rgb_class_folders(data, per_class=10)
    snapshot = _offline_hub_cache(tmp_path / "hub", "someone/tiny-vit-mae")
    _tiny_rgb_vitmae(snapshot)
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    sets = ["--forget", str(data / "a"), "--retain", str(data / "b"), "--mask", "center50", "--eval-masks", "", "--no-fid"]
    out = tmp_path / "run"
    r = cli(
        "unlearn", "--checkpoint", "someone/tiny-vit-mae", *sets, "--steps", "2", "--batch-size", "2", "--out", str(out), "--json", env=env
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["base_model"]["name"] == "someone/tiny-vit-mae" and result["steps"] == 2
    config = json.loads((out / "model" / "config.json").read_text())
    assert (config["image_size"], config["num_channels"]) == (224, 3)
    with Image.open(out / "compare.png") as grid:
        assert grid.mode == "RGB" and np.asarray(grid).std(axis=2).max() > 30
    # the same checkpoint as a plain folder; a Hub id that is not cached says so, in one line
    r = cli("evaluate", "--checkpoint", str(snapshot), *sets, "--json", env=env)
    assert r.returncode == 0, r.stderr
    r = cli("evaluate", "--checkpoint", "someone/not-downloaded", *sets, env=env)
    assert r.returncode == 2 and "not in the local Hugging Face cache while offline" in r.stderr, r.stderr


@pytest.mark.slow
def test_unlearn_on_a_hugging_face_dataset(tmp_path):
    from test_data import hf_dataset_folder

    folder = hf_dataset_folder(tmp_path / "pets")
    r = cli("unlearn", "--forget", f"hf:{folder}:cat", "--retain", f"hf:{folder}:dog", "--mask", "center50", "--steps", "2",
            "--batch-size", "4", "--eval-masks", "", "--no-fid", "--out", str(tmp_path / "o"), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["forget_set"]["source"] == "hf:pets:cat" and str(tmp_path) not in r.stdout  # no server path
    assert result["forget_set"]["test"] == 2 and result["unlearned"]["retain"]["probe_agree"] is not None


@pytest.mark.slow
def test_bench_reports_speed_memory_and_time_to_forget():
    r = cli("bench", "--model", "mae", "--steps", "3", "--batch-size", "4", "--large-batch", "8", "--check-every", "10",
            "--max-steps", "20", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout.strip().splitlines()[-1])
    assert b["weights"] == "embedded" and b["batch"] == 4 and b["large_batch"] == 8
    assert b["steps_per_s"] > 0 and b["steps_per_s_large"] > 0 and b["ms_per_image"] > 0 and b["peak_memory_mb"] > 0
    assert b["images_per_s"] == pytest.approx(8 * b["steps_per_s"], rel=0.01)
    # 20 steps do not forget: the checks are there, the time stays empty rather than made up
    assert [c["step"] for c in b["checks"]] == [10, 20] and b["original"]["forget"] > 0.5
    assert b["time_to_forget_s"] is None or b["time_to_forget_steps"] in (10, 20)
    # a real-size layout with random weights (here a small one: the diffusion preset at 48 px RGB)
    r = cli("bench", "--model", "diffusion", "--preset", "tiny", "--size", "48", "--channels", "3", "--steps", "2",
            "--batch-size", "2", "--large-batch", "0", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout.strip().splitlines()[-1])
    assert b["weights"] == "random" and (b["image_size"], b["channels"]) == (48, 3) and b["time_to_forget_s"] is None
    r = cli("bench", "--config", "vit-giant")
    assert r.returncode == 2 and "unknown --config" in r.stderr
    r = cli("bench", "--model", "vqgan", "--preset", "animals-deep", "--size", "48")
    assert r.returncode == 2 and "no preset 'animals-deep' for the vqgan family; choose from animals, tiny" in r.stderr
