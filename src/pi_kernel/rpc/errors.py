"""The errors of the Pi RPC client: one small hierarchy, each with a sentence for people.

Every error carries ``hint`` (what to do about it).  ``_render_traceback_`` is the hook
IPython uses to show an exception; defining it needs no IPython import, and it turns an
expected failure into a few readable lines instead of a traceback wall.
"""

from __future__ import annotations

from collections.abc import Sequence


class PiError(Exception):
    """Base class: something about Pi failed, and the message says what."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        """The message and the hint, as lines for a person."""
        out = [f"{type(self).__name__}: {self.message}"]
        if self.hint:
            out.append(self.hint)
        return out

    def _render_traceback_(self) -> list[str]:
        return self.lines()


class PiNotFound(PiError):
    """The Pi executable is missing or cannot be run; ``path`` is what was tried."""

    def __init__(self, path: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"Pi could not be started from {path}: {reason}", hint=hint)
        self.path = path
        self.reason = reason


class PiExited(PiError):
    """The Pi process ended (or was found dead) while something still needed it."""

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None = None,
        stderr_tail: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.returncode = returncode
        self.stderr_tail = list(stderr_tail)


class PiTimeout(PiError):
    """Pi did not answer within the time we allow for it."""

    def __init__(self, what: str, seconds: float, *, hint: str | None = None) -> None:
        super().__init__(f"Pi did not answer {what} within {seconds:g} s", hint=hint)
        self.what = what
        self.seconds = seconds


class PiProtocolError(PiError):
    """Pi wrote something that is not a protocol record we can read."""


class PiCommandError(PiError):
    """Pi answered a command with ``success: false``; ``message`` is Pi's own text."""

    def __init__(self, command: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"Pi rejected {command}: {message}", hint=hint)
        self.command = command
        self.pi_message = message
