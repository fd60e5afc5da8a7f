"""Sharing an unlearned model on the Hugging Face Hub, with a generated model card.

`push_run(run_dir, repo)` uploads a run folder's model (weights, config, `unlearn_meta.json`) to
the root of model repository `repo`, so that `--checkpoint owner/name` loads it back, with
`metrics.json`, the comparison picture and a `README.md` model card: the base model, the method
and its settings, the forget and retain sets (names, sizes, SHA-256 of their images, never the
images) and the metrics before and after. The token is the one huggingface_hub finds (`HF_TOKEN`,
or `huggingface-cli login`); nothing is uploaded without one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from unlearn_core.errors import UserInputError
from unlearn_core.serving.report import metrics_rows


def token() -> str | None:
    """The Hugging Face token this process would upload with, if any."""
    from huggingface_hub import get_token

    return get_token()


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))


def model_card(meta: dict, metrics: dict) -> str:
    """A model card (README.md with Hub metadata) for an unlearned model."""
    from unlearn_core.methods import get_method
    from unlearn_core.models import family_names, get_family

    family, base = meta.get("family", "?"), meta.get("base_model") or {}
    base_name = base.get("name", "?") if isinstance(base, dict) else str(base)
    front = ["---", "library_name: i2i-unlearning-studio", "tags:", "- machine-unlearning", "- image-to-image", f"- {family}"]
    if "/" in base_name:  # a Hub id: the Hub links the two models
        front.append(f"base_model: {base_name}")
    front.append("---")
    settings = meta.get("settings", {})
    sets = [(k, meta.get(f"{k}_set") or {}) for k in ("forget", "retain")]
    lines = [
        *front,
        "",
        f"# {base_name}, unlearned",
        "",
        f"A {get_family(family).label if family in family_names() else family} model made to **forget** the set `{sets[0][1].get('name', '?')}` while keeping "
        f"`{sets[1][1].get('name', '?')}`, with the method {get_method(meta.get('method', 'ours')).title}, by "
        f"I2I Unlearning Studio {meta.get('library_version', '')}, an implementation of Li et al., *Machine Unlearning "
        "for Image-to-Image Generative Models* (ICLR 2024).",
        "",
        f"- Base model: `{base_name}` (weights SHA-256 `{base.get('sha256', '?') if isinstance(base, dict) else '?'}`)",
        f"- Mask the results are measured with: `{meta.get('mask')}`; unlearned with: `{meta.get('train_mask')}`",
        "- Settings: " + ", ".join(f"{k} {_fmt(v)}" for k, v in settings.items()),
    ]
    for kind, s in sets:
        lines.append(
            f"- {kind.capitalize()} set: `{s.get('name', '?')}`, {s.get('train', '?')} images unlearned on, {s.get('test', '?')} held out; "
            f"SHA-256 of its images `{s.get('sha256', '?')}`"
        )
    lines += ["", "## Results on held-out images", "", "| set | metric | original | unlearned | change |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in metrics_rows(metrics)]
    lines += [
        "",
        "Forgetting shows as the forget set's scores falling (probe accuracy, PSNR in the generated region) while the "
        "retain set's stay. `compare.png` shows masked inputs, the original's and this model's outputs, and the truth.",
        "",
        "## Use",
        "",
        "```bash",
        f"python -m unlearn_core evaluate --model {family} --checkpoint <this repo id> --forget ... --retain ...",
        "```",
        "",
    ]
    return "\n".join(lines)


def check_push(repo: str, need_token: bool = True) -> None:
    """Refuse a push that cannot work, before any work: a malformed repository id, no token."""
    from unlearn_core.models.checkpoints import HUB_ID

    if not HUB_ID.match(repo) or "@" in repo:
        raise UserInputError(f"a Hub repository id is owner/name; got {repo!r}")
    if need_token and token() is None:
        raise UserInputError("no Hugging Face token: set HF_TOKEN or run `huggingface-cli login` first")


def push_run(run_dir: str | Path, repo: str, *, private: bool = False, api=None) -> str:
    """Upload run folder `run_dir` (as `write_outputs` leaves it) to Hub model repo `repo`; returns
    the repository's URL. `api`: a `huggingface_hub.HfApi` (made here when None)."""
    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    if not (model_dir / "unlearn_meta.json").exists():
        raise UserInputError(f"{run_dir}: no unlearned model to push (model/unlearn_meta.json is missing)")
    check_push(repo, need_token=api is None)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    meta = json.loads((model_dir / "unlearn_meta.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with tempfile.TemporaryDirectory(prefix="unlearn-push-") as tmp:
        stage = Path(tmp) / "repo"
        shutil.copytree(model_dir, stage)
        for name in ("metrics.json", "compare.png", "embedding.png", "losses.csv"):
            if (run_dir / name).exists():
                shutil.copy2(run_dir / name, stage / name)
        (stage / "README.md").write_text(model_card(meta, metrics))
        try:
            url = api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(folder_path=str(stage), repo_id=repo, repo_type="model", commit_message="Upload unlearned model")
        except Exception as e:  # network, permissions, a name taken: say which, in one line
            raise UserInputError(f"pushing to {repo} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    return str(url)
