"""A visitor's session and the server's temporary folders (`serving.session`), without a browser:
the stop file, Unlearn and Stop while runs wait their turn, the span of a run, the disk sweep and
the folders of app processes that died."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import session_with

from unlearn_core.serving import session as sessions
from unlearn_core.serving.session import Session


@pytest.fixture(autouse=True)
def own_workspace(tmp_path, monkeypatch):
    """Each test's sessions in a workspace of its own, and no other runs going on."""
    root = tmp_path / "workspace"
    root.mkdir()
    monkeypatch.setattr(sessions, "_workspace", str(root))
    monkeypatch.setattr(sessions, "RUNNING", set())
    return root


def test_a_session_has_its_own_folder_and_stop_file(own_workspace):
    a, b = Session(), Session()
    assert a.tmp != b.tmp and Path(a.tmp).parent == Path(b.tmp).parent == own_workspace
    assert sessions.own_folders(a) == [a.tmp] and sessions.own_folders(None) == []
    a.request_stop()
    assert a.stop_file.exists() and not b.stop_file.exists()
    sessions.delete_session(b)  # the session's time is up: its folder goes
    assert not Path(b.tmp).exists()
    b.request_stop()  # a run still going sees its folder gone; asking again writes nothing back
    assert not Path(b.tmp).exists()
    sessions.delete_session(None)


def test_the_workspace_is_one_folder_per_process(monkeypatch, tmp_path):
    monkeypatch.setattr(sessions, "_workspace", None)
    monkeypatch.setattr(sessions.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sessions.atexit, "register", lambda *a, **k: None)  # this test's folder goes with tmp_path
    first = sessions.workspace()
    assert sessions.workspace() == first and Path(first).is_dir() and Path(first).parent == tmp_path
    assert Path(first).name.startswith(f"{sessions.WORKSPACE_PREFIX}{os.getpid()}-")


def test_a_run_that_waits_says_so_and_can_be_cancelled():
    """Pressing Unlearn while another visitor's run goes on says so at once; Stop then cancels the
    queued run before it starts, and the next press runs as usual."""
    text, session = sessions.announce_run(None)
    assert text == "Preparing the run..." and not session.waiting and isinstance(session, Session)
    assert sessions.stop_run(session) == "Nothing is running." and not session.cancelled
    sessions.RUNNING.add("/another/visitor")
    text, same = sessions.announce_run(session)
    assert same is session and text.startswith("Waiting: another visitor's run") and session.waiting
    session.running = True  # pressed again during its own run
    assert sessions.announce_run(session)[0] == "Your run is still going; this one starts when it ends." and session.waiting
    session.running = False
    assert sessions.stop_run(session) == "Cancelled: your run will not start." and session.cancelled
    sessions.RUNNING.clear()
    assert sessions.announce_run(session)[0] == "Preparing the run..."
    assert not session.waiting and not session.cancelled  # pressing again undoes the cancel


def test_stop_during_a_run_writes_the_stop_file():
    session = Session(running=True)
    assert sessions.stop_run(session) == "Stopping after the current step..." and session.stop_file.exists()
    assert sessions.stop_run(None) == "Nothing is running."


def test_the_span_of_a_run(own_workspace):
    """While a run goes on its folder counts as running and is never swept; a stale stop file is
    gone at the start; idle folders of others go; an early end tells the run to stop."""
    session = session_with(10, age=3 * 3600)  # idle for hours: only its run keeps it
    idle = session_with(10, age=2 * 3600)
    session.request_stop()  # left from a stopped run before
    session.output = "the last run's output"
    with sessions.running(session, max_age=3600, max_mb=100):
        assert session.running and sessions.RUNNING == {session.tmp} and session.output is None
        assert Path(session.tmp).is_dir() and not session.stop_file.exists()
        assert not Path(idle.tmp).exists()
        assert sessions.sweep_sessions(max_age=0, max_mb=0) == []  # the running folder stays, whatever the limits
    assert not session.running and sessions.RUNNING == set() and not session.stop_file.exists()

    def closed_early():
        with sessions.running(session, max_age=3600, max_mb=100):
            yield "first update"
            yield "second update"

    gen = closed_early()
    next(gen)
    gen.close()  # the page went away: gradio closes the handler's generator
    assert not session.running and sessions.RUNNING == set() and session.stop_file.exists()
    session.stop_file.unlink()
    with pytest.raises(RuntimeError), sessions.running(session, max_age=3600, max_mb=100):
        raise RuntimeError("the run failed")  # a failure ends the span early too
    assert not session.running and session.stop_file.exists()


def test_idle_sessions_and_the_oldest_over_the_cap_are_removed():
    stale = session_with(1000, age=2 * 3600)
    running = session_with(1000, age=3 * 3600)
    sessions.RUNNING.add(running.tmp)
    old, middle, new = (session_with(400_000, age=a) for a in (1800, 900, 60))
    removed = set(sessions.sweep_sessions(max_age=3600, max_mb=1))
    # idle for two hours: gone; a running session is never swept, however old
    assert stale.tmp in removed and running.tmp not in removed and Path(running.tmp).exists()
    # 1.2 MB of outputs against a 1 MB cap: the oldest goes, the newer stay
    assert removed == {stale.tmp, old.tmp} and Path(middle.tmp).exists() and Path(new.tmp).exists()
    # `now` is the clock the ages are measured against
    assert set(sessions.sweep_sessions(max_age=3600, max_mb=1, now=time.time() + 3600)) == {middle.tmp, new.tmp}
    assert not Path(middle.tmp).exists() and not Path(new.tmp).exists() and Path(running.tmp).exists()


def test_stale_workspaces_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(sessions.tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"{sessions.WORKSPACE_PREFIX}{dead}-abc"
    (stale / "session-x").mkdir(parents=True)
    alive = tmp_path / f"{sessions.WORKSPACE_PREFIX}{os.getpid()}-def"
    alive.mkdir()
    other = tmp_path / f"{sessions.WORKSPACE_PREFIX}notapid-ghi"
    other.mkdir()
    assert sessions.remove_stale_workspaces() == [str(stale)]
    assert not stale.exists() and alive.exists() and other.exists()
