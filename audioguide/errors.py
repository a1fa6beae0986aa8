"""The project's own error types.

Every error a user can cause derives from :class:`AudioguideError`, a
``click.ClickException``: the CLI shows its one-paragraph message and exits
non-zero, with no traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import click


class AudioguideError(click.ClickException):
    """A problem the user can fix; its message says what and how."""

    exit_code = 2

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take other arguments than their message; rebuild from the state, so
        # an error crosses a process boundary (a week's workers) with its type intact.
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[AudioguideError], state: dict[str, Any]) -> AudioguideError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


def named(error: AudioguideError, what: str) -> AudioguideError:
    """The same error (same type, same exit code), its message prefixed with ``what``."""
    state = dict(error.__dict__, message=f"{what}: {error.message}")
    return _rebuild(type(error), state)


class BatchError(AudioguideError):
    """Some listeners' weeks of a batch could not be built (the others were)."""

    exit_code = 1


class RequestError(AudioguideError):
    """A request field (an option or argument) has a value that is not accepted."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class TooShortError(RequestError):
    """The requested length cannot hold the script's speech and shortest pauses."""

    def __init__(self, requested_s: float, minimum_s: float, what: str) -> None:
        self.minimum_s = minimum_s
        super().__init__(
            "--minutes",
            f"{requested_s / 60:g} minutes is too short for {what}; "
            f"these settings need at least {_ceil_tenth(minimum_s / 60):g} minutes.",
        )


class TooLongError(RequestError):
    """The script cannot stretch to the requested length without over-long silences."""

    def __init__(self, requested_s: float, maximum_s: float, what: str) -> None:
        self.maximum_s = maximum_s
        super().__init__(
            "--minutes",
            f"{requested_s / 60:g} minutes is longer than {what} can fill without "
            f"silences beyond its limits (at most {maximum_s / 60:.1f} minutes with these "
            "settings). Choose a shorter length, or give the template's longer pauses a "
            "higher maximum.",
        )


class TemplateError(AudioguideError):
    """A template could not be rendered or its markup could not be parsed."""


class ToolMissingError(AudioguideError):
    """A system program or library the build needs is not installed."""

    exit_code = 3


class EngineError(AudioguideError):
    """The speech engine failed to render a phrase (never replaced by silence)."""

    exit_code = 4


class EncodeError(AudioguideError):
    """ffmpeg could not measure or encode the audio."""

    exit_code = 4


def _ceil_tenth(x: float) -> float:
    """Round up to one decimal place, so a stated minimum always works."""
    import math

    return math.ceil(x * 10 - 1e-9) / 10
