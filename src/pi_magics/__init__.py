"""The notebook face of pi-kernel: ``%load_ext pi_magics`` gives ``%%pi`` and ``%pi``."""

from __future__ import annotations

import atexit
from typing import Any

from .magics import PiMagics

__all__ = ["PiMagics", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register one ``PiMagics`` for this shell; it starts Pi in the background."""
    if "PiMagics" in ipython.magics_manager.registry:
        return
    magics = PiMagics(shell=ipython)
    ipython.register_magics(magics)
    atexit.register(magics.close)  # the kernel may exit without unloading the extension


def unload_ipython_extension(ipython: Any) -> None:
    """Stop this shell's Pi and forget the magics."""
    magics = ipython.magics_manager.registry.pop("PiMagics", None)
    if magics is None:
        return
    atexit.unregister(magics.close)
    magics.close()
    for kind in ("cell", "line"):
        ipython.magics_manager.magics[kind].pop("pi", None)
