"""This kernel's connection file, which a sandboxed Pi must not see (it leads into the kernel)."""

from __future__ import annotations

from pathlib import Path


def connection_file() -> Path | None:
    """The running ipykernel's connection file; None outside one (a terminal IPython)."""
    from ipykernel.connect import get_connection_file

    try:
        return Path(get_connection_file())
    except RuntimeError:  # no kernel application: nothing to hide
        return None
