"""The notebook face of pi-kernel: ``%load_ext pi_magics`` gives ``%%pi`` and ``%pi``."""

from __future__ import annotations

import atexit
from typing import Any

from .magics import PiMagics

__all__ = ["PiMagics", "load_ipython_extension", "loaded_magics", "unload_ipython_extension"]


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


def loaded_magics(ipython: Any) -> PiMagics:
    """This shell's ``PiMagics``, loading the extension first as ``%load_ext pi_magics`` would
    (so a later ``%load_ext`` finds it loaded).  The Pi kernel drives the magics through it."""
    ipython.extension_manager.load_extension(__name__)
    magics = ipython.magics_manager.registry["PiMagics"]
    assert isinstance(magics, PiMagics)
    return magics
