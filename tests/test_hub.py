"""Sharing on the Hub: the model card, what is uploaded, the refusals; against a stand-in HfApi."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from unlearn_core.errors import UserInputError
from unlearn_core.run.engine import UnlearnConfig
from unlearn_core.run.pipeline import RunSpec, run, write_outputs
from unlearn_core.serving import hub


class StandInApi:
    """Records what `huggingface_hub.HfApi` would have been asked to do, and keeps a copy of the
    uploaded folder (the real one reads it during the call)."""

    def __init__(self, into: Path):
        self.into, self.calls = into, []

    def create_repo(self, repo_id, private=False, exist_ok=False, repo_type=None):
        self.calls.append(("create_repo", repo_id, private, exist_ok, repo_type))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, folder_path, repo_id, repo_type=None, commit_message=None):
        self.calls.append(("upload_folder", repo_id, repo_type))
        shutil.copytree(folder_path, self.into)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    spec = RunSpec(mask="center50", config=UnlearnConfig(steps=3, batch_size=4), eval_masks=[], image_metrics=False)
    return write_outputs(run(spec), tmp_path_factory.mktemp("run"))


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored login either
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))


@pytest.mark.slow
def test_push_uploads_a_loadable_model_with_its_card(run_dir, tmp_path):
    api = StandInApi(tmp_path / "uploaded")
    url = hub.push_run(run_dir, "someone/cats-forgotten", private=True, api=api)
    assert url == "https://huggingface.co/someone/cats-forgotten"
    assert api.calls[0] == ("create_repo", "someone/cats-forgotten", True, True, "model")
    up = tmp_path / "uploaded"
    # the model at the repository's root, so that `--checkpoint someone/cats-forgotten` loads it
    assert {"config.json", "model.safetensors", "unlearn_meta.json", "README.md", "metrics.json", "compare.png"} <= {
        p.name for p in up.iterdir()
    }
    card = (up / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: i2i-unlearning-studio") and "- machine-unlearning" in card
    assert "mae-animals" in card and "Ours (Li et al., ICLR 2024)" in card and "builtin:cat" in card
    meta_sha = __import__("json").loads((up / "unlearn_meta.json").read_text())["forget_set"]["sha256"]
    assert meta_sha in card  # the forget set by hash, never its images
    assert "| forget | probe_acc |" in card and "steps 3" in card
    from unlearn_core.models.mae import MAEModel

    assert MAEModel.load(up).image_size == 32


def test_push_refuses_bad_ids_missing_runs_and_missing_tokens(run_dir, tmp_path, no_token):
    api = StandInApi(tmp_path / "x")
    for repo in ("noslash", "a/b/c", "owner/name@main", ""):
        with pytest.raises(UserInputError, match="owner/name"):
            hub.push_run(run_dir, repo, api=api)
    with pytest.raises(UserInputError, match="no unlearned model"):
        hub.push_run(tmp_path, "someone/x", api=api)
    with pytest.raises(UserInputError, match="no Hugging Face token"):
        hub.push_run(run_dir, "someone/x")
    assert api.calls == []


@pytest.mark.slow
def test_cli_checks_the_token_before_any_work(tmp_path, no_token):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(
        [sys.executable, "-m", "unlearn_core", "unlearn", "--forget", "builtin:cat", "--retain", "builtin:dog",
         "--out", str(tmp_path / "o"), "--push-to-hub", "someone/x"],
        capture_output=True, text=True, cwd=root, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip() == "error: no Hugging Face token: set HF_TOKEN or run `huggingface-cli login` first"
    assert not (tmp_path / "o").exists()


def test_app_push_button_only_with_a_token_and_within_the_owner(run_dir, tmp_path, monkeypatch, no_token):
    import huggingface_hub

    import app

    def push_accordion(demo):
        return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "push")

    assert push_accordion(app.build_demo()).visible is False
    monkeypatch.setenv("HF_TOKEN", "hf_standin")
    assert push_accordion(app.build_demo()).visible is True
    session = app.Session()
    assert app.push_model("someone/x", True, session) == "Run an unlearning first."
    session.output = object()  # a finished run: its files are in the session's folder
    shutil.copytree(run_dir, Path(session.tmp) / "run")
    uploaded = tmp_path / "up"
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: StandInApi(uploaded))
    monkeypatch.setattr(app, "PUSH_OWNER", "lab")
    assert "only to repositories of lab" in app.push_model("someone/x", True, session)
    assert app.push_model("lab/cats-forgotten", True, session) == "Pushed: https://huggingface.co/lab/cats-forgotten"
    assert (uploaded / "README.md").exists()
    session.cleanup()
