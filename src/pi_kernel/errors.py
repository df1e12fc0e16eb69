"""Every failure pi-kernel shows to people, in one hierarchy under ``PiError``.

Each carries a message (what went wrong) and a ``hint`` (what to do), both set where the
error is made; IPython shows one as those few lines (``_render_traceback_``), a terminal
command prints them.  The client's own errors (Pi not found, exited, timed out, an answer it
could not read, a command it refused) live in ``rpc.errors``, since ``rpc`` stands on its own,
and are named here too, so that this module is the whole list::

    PiError
    ├── PiNotFound, PiExited, PiTimeout, PiProtocolError, PiCommandError   (Pi and its client)
    ├── PiNoModels, PiChoiceError, PiSessionNotFound                       (the session)
    ├── CassetteError, FileRefused                                         (records)
    ├── ImageError                                                         (a prompt's image)
    └── LocalModelError, StartError                                        (the main command)
"""

from __future__ import annotations

from .rpc.errors import (
    PiCommandError,
    PiError,
    PiExited,
    PiNotFound,
    PiProtocolError,
    PiTimeout,
)

__all__ = [
    "CassetteError",
    "FileRefused",
    "ImageError",
    "LocalModelError",
    "PiChoiceError",
    "PiCommandError",
    "PiError",
    "PiExited",
    "PiNoModels",
    "PiNotFound",
    "PiProtocolError",
    "PiSessionNotFound",
    "PiTimeout",
    "StartError",
]


class PiNoModels(PiError):
    """Pi runs, but offers no model: no provider has credentials."""


class PiChoiceError(PiError):
    """A model or thinking level that Pi does not offer; the message lists what it does."""


class PiSessionNotFound(PiError):
    """A session to resume that does not exist (nothing was created or switched)."""


class CassetteError(PiError):
    """A cassette that cannot be read, or a request it does not hold."""


class FileRefused(PiError):
    """A file pi-kernel will not write; the message says why and what to do."""


class ImageError(PiError):
    """An ``--image`` that cannot be sent; the message says why and what to do."""


class LocalModelError(PiError):
    """The local demo model is not installed, or its server could not start."""


class StartError(PiError):
    """An expected failure of the main command: one sentence for the terminal."""
