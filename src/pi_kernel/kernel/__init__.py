"""The Pi kernel: a Jupyter kernel whose cells are Pi prompts.

``pikernel`` holds ``PiKernel`` (IPython's kernel with prompts routed to ``%%pi``),
``routing`` the pure decisions of which cell goes where and what completion completes, and
``kernelspec`` installing it where Jupyter finds it.  ``python -m pi_kernel.kernel`` runs it
(the kernelspec's argv).  Importing this package does not import ipykernel: the main command
installs the kernelspec without loading a kernel.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "PiKernel":  # ``from pi_kernel.kernel import PiKernel``, as before the split
        from .pikernel import PiKernel

        return PiKernel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
