"""A web-app visitor's session and the server's temporary folders, in plain Python (no gradio).

Every visitor's files live in one temporary folder per process (`workspace`), removed when the
process exits; folders of processes that died without cleaning up are removed at the next start
(`remove_stale_workspaces`). Each session has a folder of its own there, which goes when the
session ends (`delete_session`), when it sits idle too long, or, oldest first, when all of them
together take too much disk (`sweep_sessions`); a folder whose run is still going is kept.

This module imports only the standard library: the app imports it before gradio, to point
gradio's own cache into the workspace.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

WORKSPACE_PREFIX = "unlearn-studio-"
RUNNING: set[str] = set()  # folders of this process's sessions whose run is going on

_workspace: str | None = None


def workspace() -> str:
    """This process's temporary folder (made on the first call, removed at exit)."""
    global _workspace
    if _workspace is None:
        _workspace = tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{os.getpid()}-")
        atexit.register(shutil.rmtree, _workspace, ignore_errors=True)
    return _workspace


def remove_stale_workspaces() -> list[str]:
    """Remove the temporary folders of app processes that are gone (killed before cleaning up)."""
    removed = []
    for d in Path(tempfile.gettempdir()).glob(f"{WORKSPACE_PREFIX}*-*"):
        pid = d.name.removeprefix(WORKSPACE_PREFIX).split("-")[0]
        if not pid.isdigit() or not d.is_dir() or d.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
        except PermissionError:
            pass
    return removed


@dataclass
class Session:
    """One visitor's run: whether one is running, the finished output, and its temp folder.

    Stop works through a file in that folder (`stop_file`), which the run checks every step: on a
    ZeroGPU Space the run goes on in another process, which shares the disk but not the memory."""

    running: bool = False
    auditing: bool = False  # the Audit attacks the finished run (serving/auditing.py)
    kept: object | None = None  # the finished run's folder in the visitor's history (serving/history.py)
    waiting: bool = False  # Unlearn pressed while another visitor's run went on: queued
    cancelled: bool = False  # Stop pressed while waiting: the queued run must not start
    output: object | None = None  # the finished run's `pipeline.RunOutput`
    pressed: float | None = None  # time.monotonic() when Unlearn was last pressed: how long the visitor waited
    tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="session-", dir=workspace()))

    @property
    def stop_file(self) -> Path:
        return Path(self.tmp) / "stop"

    def request_stop(self) -> None:
        if Path(self.tmp).is_dir():
            self.stop_file.touch()

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def own_folders(session: Session | None) -> list[str]:
    """Server folders this visitor may name besides the embedded checkpoints: their own runs."""
    return [session.tmp] if session is not None else []


def delete_session(session: Session | None) -> None:
    """The end of a session (gradio's delete callback): its folder goes, and a run still going
    stops too, as its stop file's folder is gone."""
    if session is not None:
        session.request_stop()
        session.cleanup()


def announce_run(session: Session | None) -> tuple[str, Session]:
    """The status the moment Unlearn is pressed, before the queued run starts: runs go one at a
    time, and the run's own status has no queue position. A run that waits can be stopped before
    it starts (`stop_run`)."""
    session = session or Session()
    if session.running:  # pressed again during its own run: Stop still stops the one that runs
        return "Your run is still going; this one starts when it ends.", session
    session.pressed = time.monotonic()
    session.waiting, session.cancelled = bool(RUNNING), False
    if session.waiting:
        return "Waiting: another visitor's run is going on; yours starts when the runs ahead of it end (**Stop** cancels it).", session
    return "Preparing the run...", session


def stop_run(session: Session | None) -> str:
    """Stop: cancels a run still waiting in the queue, or stops the running one after its step."""
    if session is not None and session.waiting and not session.running:
        session.cancelled = True
        return "Cancelled: your run will not start."
    if session is not None and session.auditing:
        session.request_stop()
        return "Stopping the audit after its current part..."
    if session is None or not session.running:
        return "Nothing is running."
    session.request_stop()
    return "Stopping after the current step..."


@contextmanager
def running(session: Session, max_age: float, max_mb: float) -> Iterator[None]:
    """The span of a session's run: marked running (its folder is never swept meanwhile), the
    other folders swept first, a fresh stop file. If the span ends early (the page went away,
    gradio closed the run's generator) the run is told to stop too."""
    session.output, session.running = None, True
    RUNNING.add(session.tmp)
    sweep_sessions(max_age, max_mb)
    Path(session.tmp).mkdir(parents=True, exist_ok=True)  # swept while idle: the visitor starts afresh
    session.stop_file.unlink(missing_ok=True)
    finished = False
    try:
        yield
        finished = True
    finally:
        session.running = False
        RUNNING.discard(session.tmp)
        if not finished:
            session.request_stop()


def _folder_stats(d: Path) -> tuple[float, int]:
    """(newest modification time, total bytes) of a folder and what it holds."""
    newest, size = d.stat().st_mtime, 0
    for f in d.rglob("*"):
        try:
            st = f.lstat()
        except FileNotFoundError:
            continue
        newest, size = max(newest, st.st_mtime), size + (st.st_size if f.is_file() else 0)
    return newest, size


def start_sweeping(max_age: float, max_mb: float, every: float = 600) -> threading.Thread:
    """A daemon thread that sweeps the session folders (`sweep_sessions`) every `every` seconds,
    for as long as the server runs."""

    def sweep_forever() -> None:
        while True:
            time.sleep(every)
            sweep_sessions(max_age, max_mb)

    thread = threading.Thread(target=sweep_forever, name="sweep-sessions", daemon=True)
    thread.start()
    return thread


def sweep_sessions(max_age: float, max_mb: float, now: float | None = None) -> list[str]:
    """Remove the session folders idle for longer than `max_age` seconds and then, while all of
    them together (running ones included) exceed `max_mb`, the oldest; a folder whose run is going
    on is kept. Returns what was removed."""
    now = time.time() if now is None else now
    folders = [(d, *_folder_stats(d)) for d in Path(workspace()).glob("session-*") if d.is_dir() and str(d) not in RUNNING]
    removed = []
    for d, newest, _ in folders:
        if now - newest > max_age:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    kept = sorted((f for f in folders if str(f[0]) not in removed), key=lambda f: f[1])  # oldest first
    total = sum(size for _, _, size in kept) + sum(_folder_stats(Path(r))[1] for r in RUNNING if Path(r).is_dir())
    for d, _, size in kept:
        if total <= max_mb * 2**20:
            break
        shutil.rmtree(d, ignore_errors=True)
        removed.append(str(d))
        total -= size
    return removed
