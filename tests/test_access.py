"""Server folders a visitor may name: the embedded checkpoints, their own runs, and the operator's list."""

import os

import pytest

from unlearn_core.errors import UserInputError
from unlearn_core.models.checkpoints import CHECKPOINTS
from unlearn_core.serving.access import ALLOWED_ENV, allowed_roots, check_server_path


@pytest.fixture(autouse=True)
def no_operator_folders(monkeypatch):
    monkeypatch.delenv(ALLOWED_ENV, raising=False)


def test_embedded_checkpoints_and_own_folders_are_allowed(tmp_path):
    assert check_server_path(CHECKPOINTS / "mae-animals") == (CHECKPOINTS / "mae-animals").resolve()
    own = tmp_path / "session"
    own.mkdir()
    assert check_server_path(own / "run" / "model", extra=[own]) == (own / "run" / "model").resolve()


@pytest.mark.parametrize("path", ["/etc", "/etc/passwd", "/proc/self/environ", "~", "", "checkpoints/../README.md"])
def test_everything_else_is_refused_alike(path):
    with pytest.raises(UserInputError, match="only reads the embedded checkpoints") as e:
        check_server_path(path)
    assert "exist" not in str(e.value)  # the same words whether or not the path exists


def test_dot_dot_and_links_cannot_leave_an_allowed_folder(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    secret = tmp_path / "secret"
    secret.mkdir()
    (own / "link").symlink_to(secret)
    for path in (own / ".." / "secret", own / "link", own / "link" / "x.png"):
        with pytest.raises(UserInputError):
            check_server_path(path, extra=[own])
    with pytest.raises(UserInputError, match="NUL"):
        check_server_path(f"{own}/a\x00b", extra=[own])


def test_operator_names_folders_in_the_environment(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    monkeypatch.setenv(ALLOWED_ENV, f"{a}{os.pathsep}{b}{os.pathsep}")
    assert {a.resolve(), b.resolve()} <= set(allowed_roots())
    assert check_server_path(b / "images") == (b / "images").resolve()
    with pytest.raises(UserInputError):
        check_server_path(tmp_path / "c")
