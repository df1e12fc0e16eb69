"""Pi's agent directory: where it is for a given environment, and keeping the user's global
settings there as they were.

Some Pi versions save every model or thinking-level change as the new global default in
``settings.json`` in the agent directory (0.73 does, 0.87 does not).  A notebook choosing a
model for itself must not change what ``pi`` in a terminal starts with tomorrow, so every
setter the session sends runs inside ``settings_kept``: whatever Pi wrote there is put back.
Pi writes before it answers, and merges into the file as it is on disk, so putting the old
bytes back right after the answer is enough.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

AGENT_DIR_ENV = "PI_CODING_AGENT_DIR"
"""The variable that moves Pi's agent directory away from ``~/.pi/agent``."""


def agent_dir(env: Mapping[str, str]) -> Path:
    """Pi's agent directory for a Pi started with ``env``: ``$PI_CODING_AGENT_DIR`` or
    ``~/.pi/agent``, with ``~`` meaning that environment's ``HOME``."""
    home = env.get("HOME") or os.path.expanduser("~")
    configured = env.get(AGENT_DIR_ENV)
    if configured:
        if configured == "~" or configured.startswith("~/"):
            configured = home + configured[1:]
        return Path(configured)
    return Path(home) / ".pi" / "agent"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@contextmanager
def settings_kept(path: Path) -> Iterator[None]:
    """Put ``path`` back as it was (or remove it, if it did not exist) after the block."""
    before = _read(path)
    try:
        yield
    finally:
        if _read(path) != before:
            if before is None:
                path.unlink(missing_ok=True)
            else:
                # Write beside it and rename, so a reader never sees half a file.
                spare = path.with_name(f".{path.name}.pi-kernel")
                spare.write_bytes(before)
                with suppress(FileNotFoundError):
                    shutil.copymode(path, spare)
                spare.replace(path)
