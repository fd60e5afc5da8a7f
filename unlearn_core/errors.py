"""Errors the user can fix: the CLI prints them as one line, the app shows them as a message."""


class UserInputError(ValueError):
    """Bad input from the user (a file, a set name, a setting); the message names what is wrong."""


class RunFailed(RuntimeError):
    """An unlearning or training run could not go on (for example its loss became NaN)."""
