"""Where a tool channel's socket lives: a fresh private folder whose path fits a Unix socket,
held by its kernel for its life, and removed by the next kernel when that one died.

A socket's path may have at most 107 bytes (``sun_path``), and a long ``TMPDIR`` or
``XDG_RUNTIME_DIR`` leaves too few: then the folder is made in ``/tmp`` (or ``/var/tmp``)
instead (sockets are never shared between kernels, so any private folder will do;
``mkdtemp`` makes it 0700 with a name nobody can guess or take first).  A kernel killed
outright cannot remove its folder: each folder holds an ``flock``ed file while its kernel
lives, and a new channel removes the folders whose lock it can take.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..agent_dir import runtime_dir
from ..errors import PiError

logger = logging.getLogger(__name__)

SOCKET_NAME = "kernel.sock"
SOCKET_PATH_MAX = 107
"""Bytes of a Unix socket's path (``sun_path`` less its closing NUL)."""
SHORT_BASES = (Path("/tmp"), Path("/var/tmp"))
"""Where a folder goes when the runtime folder cannot hold one (its path too long for a
socket, or no folder can be made there)."""
LOCK_NAME = "owner.lock"
YOUNG_SECONDS = 60.0
"""A folder this new may still be being made (its lock not yet taken): it is left alone."""


def _prefix() -> str:
    return f"pi-kernel-{os.getuid()}-tools-"


def make_folder() -> tuple[Path, IO[bytes]]:
    """A new private folder for one channel's socket, and its lock (held until closed)."""
    problems: list[str] = []
    for base, prefix in _places(problems):
        if len(os.fsencode(base)) + len(prefix) + 10 + len(SOCKET_NAME) > SOCKET_PATH_MAX:
            problems.append(f"{base} is too long for a Unix socket's path")
            continue  # mkdtemp adds 8 characters and a slash
        try:
            folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        except OSError as exc:
            problems.append(f"{base}: {exc.strerror or exc}")
            continue
        lock = (folder / LOCK_NAME).open("wb")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _remove_dead(base, prefix, keep=folder)
        return folder, lock
    raise PiError(
        f"There is no folder for the kernel tools' socket ({'; '.join(problems)}).",
        hint="Set XDG_RUNTIME_DIR to a short folder you can write, or turn the kernel tools "
        "off with %config PiMagics.kernel_tools = 'off'.",
    )


def _places(problems: list[str]) -> Iterator[tuple[Path, str]]:
    """Where a channel's folder may go, best first, each with the prefix of its name."""
    try:
        yield runtime_dir(), "tools-"
    except (OSError, PiError) as exc:
        problems.append(f"no runtime folder: {exc}")
    for base in SHORT_BASES:
        yield base, _prefix()


def _remove_dead(base: Path, prefix: str, *, keep: Path) -> None:
    """Remove this user's folders in ``base`` whose kernel is gone (their lock is free)."""
    for folder in _candidates(base, prefix):
        if folder == keep:
            continue
        try:
            with (folder / LOCK_NAME).open("rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except FileNotFoundError:
            pass  # made by an older pi-kernel, or not yet locked: only the age tells
        except OSError:
            continue  # locked: its kernel is alive
        shutil.rmtree(folder, ignore_errors=True)
        logger.info("removed %s, left by a kernel that is gone", folder)


def _candidates(base: Path, prefix: str) -> Iterator[Path]:
    now = time.time()
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for folder in entries:
        if not folder.name.startswith(prefix):
            continue
        try:
            found = folder.lstat()
        except OSError:
            continue
        mine = found.st_uid == os.getuid() and stat.S_ISDIR(found.st_mode)
        if mine and now - found.st_mtime > YOUNG_SECONDS:
            yield folder
