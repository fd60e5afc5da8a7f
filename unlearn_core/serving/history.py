"""A visitor's run history: every finished run kept as a folder (the unlearned model, metrics.json
with the command that reproduces it and any audit, the comparison pictures), listed in the app's
Runs tab and compared two at a time (`audit.compare`). Without a runs folder the history lives in
the session's temporary folder and goes with it; with one (UNLEARN_RUNS_DIR) it lives there under
the visitor's own key, which only their browser holds, and survives a restart of the app."""

from __future__ import annotations

import re
import secrets
import shutil
import time
from pathlib import Path

import pandas as pd

from unlearn_core.audit.compare import Comparison, compare_runs, run_row
from unlearn_core.audit.folder import read_metrics
from unlearn_core.errors import UserInputError
from unlearn_core.run.pipeline import RunOutput, write_outputs
from unlearn_core.serving.session import Session

MAX_RUNS = 20  # runs kept per visitor; the oldest go first
HEADERS = ["run", "family", "method", "mask", "alpha", "steps", "seconds", "forget", "retain", "audited"]
FIGURE_HEADERS = ["figure", "A", "B", "B - A"]
RUNS_NOTE = (
    "Every run of this browser session, newest first (forget / retain: probe accuracy of the original -> the unlearned "
    "model under the run's own mask). Pick two and press **Compare** to see both unlearned models on the same held-out "
    "images, mask and seed, and the differences of their figures; each run's metrics.json holds the command that "
    "reproduces it."
)
_KEY = re.compile(r"^[0-9a-f]{32}$")


def new_key(key: str | None) -> str:
    """The visitor's key: the one their browser holds, or a new random one."""
    return key if isinstance(key, str) and _KEY.match(key) else secrets.token_hex(16)


def root(session: Session | None, runs_dir: str | None, key: str | None) -> Path | None:
    """Where this visitor's runs are kept (None: nowhere yet, no session and no runs folder)."""
    if runs_dir and isinstance(key, str) and _KEY.match(key):
        return Path(runs_dir) / key
    return None if session is None else Path(session.tmp) / "history"


def keep(out: RunOutput, folder: Path) -> Path:
    """Keep a finished run in the history `folder` (named by its time, to the millisecond, and its
    configuration hash, so that names sort by time);
    beyond MAX_RUNS the oldest go. Returns the run's folder."""
    now = time.time()
    name = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}{int(now * 1000) % 1000:03d}-{out.metrics.get('config_hash', 'run')}"
    n = 1
    while (folder / (f"{name}-{n}" if n > 1 else name)).exists():  # the same settings again within a second
        n += 1
    path = write_outputs(out, folder / (f"{name}-{n}" if n > 1 else name))
    for old in sorted(runs(folder))[:-MAX_RUNS]:
        shutil.rmtree(folder / old, ignore_errors=True)
    return path


def runs(folder: Path) -> dict[str, dict]:
    """name -> metrics of every run kept in `folder` (a damaged one is left out)."""
    found = {}
    for d in sorted(folder.glob("*")) if folder.is_dir() else []:
        try:
            found[d.name] = read_metrics(d)
        except (UserInputError, OSError):  # damaged, or removed while listed (another tab pruned it)
            continue
    return found


def table(kept: dict[str, dict]) -> pd.DataFrame:
    """The Runs tab's table of the runs `runs` found, newest first."""
    rows = [[name, *run_row(m).values()] for name, m in sorted(kept.items(), reverse=True)]
    return pd.DataFrame(rows, columns=HEADERS)


def browser_secret(runs_dir: str | None) -> str | None:
    """The secret the visitor's key is kept with in their browser: with a runs folder, one kept in
    it (made on first use), so that keys stay readable after a restart; else a fresh one."""
    if not runs_dir:
        return None
    f = Path(runs_dir) / ".browser-secret"
    if not f.is_file():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(secrets.token_hex(16))
        f.chmod(0o600)
    return f.read_text().strip()


def label(name: str, metrics: dict) -> str:
    """How a picker shows a kept run: its time, what ran, its name's hash."""
    when = f"{name[9:11]}:{name[11:13]}:{name[13:15]}" if re.match(r"^\d{8}-\d{9}-", name) else name
    alpha = "" if metrics.get("alpha") is None else f" alpha {metrics['alpha']:g}"
    return f"{when} · {metrics['model']} {metrics['method']}{alpha} · {metrics['mask']} · {metrics['steps']} steps · {name[-12:]}"


def listing(session: Session | None, runs_dir: str | None, key: str | None) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The Runs tab's table and its pickers' choices, (label, name), newest first."""
    folder = root(session, runs_dir, key)
    if folder is None:
        return pd.DataFrame([], columns=HEADERS), []
    kept = runs(folder)
    return table(kept), [(label(name, kept[name]), name) for name in sorted(kept, reverse=True)]


def compare_view(session: Session | None, runs_dir: str | None, key: str | None, a: str | None, b: str | None):
    """(note, picture, figures) of two kept runs, or an error in the note."""
    try:
        folder = root(session, runs_dir, key)
        if folder is None:
            raise UserInputError("no runs yet: run an unlearning first")
        c = compare(folder, a, b)
    except UserInputError as e:
        return f"**Error:** {e}", None, None
    return c.note, c.picture, pd.DataFrame(c.figures, columns=FIGURE_HEADERS)


def compare(folder: Path, a: str | None, b: str | None) -> Comparison:
    """Two kept runs compared; a clear error if either is not there (and only names of the folder's
    own runs are taken: no path reaches outside it)."""
    kept = {d.name for d in folder.iterdir() if d.is_dir()} if folder.is_dir() else set()
    if not a or not b:
        raise UserInputError("pick two runs to compare")
    for name in (a, b):
        if name not in kept:
            raise UserInputError(f"no run {name!r} in this session's history")
    return compare_runs(folder / a, folder / b, "cpu")
