"""The notebook face of pi-kernel: ``%load_ext pi_magics`` gives ``%%pi`` and ``%pi``."""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING, Any

from pi_kernel import early

from .connection import connection_file

if TYPE_CHECKING:
    from .magics import PiMagics

__all__ = ["PiMagics", "load_ipython_extension", "loaded_magics", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    if name == "PiMagics":  # imported when asked for: Pi may be started first
        from .magics import PiMagics

        return PiMagics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """Register one ``PiMagics`` for this shell; it starts Pi in the background (before the
    magics' own imports, which then run beside Pi's start)."""
    if "PiMagics" in ipython.magics_manager.registry:
        return
    prewarm = ipython.config.PiMagics.get("prewarm", True) if hasattr(ipython, "config") else True
    if prewarm and not early.pending():
        # As the Pi kernel does: Pi started as the environment says (the magics compare it
        # with the notebook's configuration, and start another when they differ).
        early.start(connection_file())
    from .magics import PiMagics

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
    from .magics import PiMagics

    magics = ipython.magics_manager.registry["PiMagics"]
    assert isinstance(magics, PiMagics)
    return magics
