"""Pi started first: a new Pi kernel starts its Pi before it imports IPython and ipykernel.

A cold Pi kernel used to pay twice, one after the other: the kernel process importing
IPython, ipykernel and the engine, and only then Pi's own start (Node loading Pi).  They
need not wait for each other.  ``start`` runs first thing in the kernel process (it needs
only the engine): it opens the bridge thread and a ``PiSession`` there, and starts Pi in the
background as the notebook's settings in the environment say (``PI_KERNEL_PI_PATH`` or the
recorded install, ``PI_KERNEL_SANDBOX``).  The magics, once loaded, ``take`` what was
started: they lend it their tools and dialogs (until then nothing is asked of Pi: no cell
runs before the magics exist), and when the notebook's configuration asks for another Pi
than the one started, they stop it and start that one instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bridge import Bridge
from .kernel_tools.catalog import EVERY_TOOL, KernelToolCall, ToolReply, Verdict
from .kernel_tools.channel import ToolHandler
from .rpc.client import UIHandler, cancel_dialog
from .rpc.protocol import ExtensionUIRequest
from .rpc.usage import UsageTally
from .sandbox import kernel_sandbox, wanted_by_environment
from .session import PiSession

logger = logging.getLogger(__name__)

NOT_YET = "the notebook is not ready yet"
PI_PATH_HINT = "In a notebook: %config PiMagics.pi_path = '/path/to/pi'."
"""How a notebook sets the Pi to run, for the error when none can."""


@dataclass
class Lent:
    """The notebook's tools and dialogs, lent to a Pi started before the notebook existed
    (a ``ToolHandler`` and a ``UIHandler``): until they are, nothing runs and every dialog
    is cancelled."""

    tools: ToolHandler | None = None
    dialogs: UIHandler = field(default=cancel_dialog)

    async def ui(self, request: ExtensionUIRequest) -> Mapping[str, Any]:
        return await self.dialogs(request)

    def offered(self) -> Sequence[str]:
        return self.tools.offered() if self.tools is not None else []

    def asked(self) -> Sequence[str]:
        return self.tools.asked() if self.tools is not None else [EVERY_TOOL]

    async def approve(self, call: KernelToolCall) -> Verdict:
        if self.tools is None:
            return Verdict(False, f"Not run: {NOT_YET}.")
        return await self.tools.approve(call)

    def budgeted(self) -> bool:
        return self.tools.budgeted() if self.tools is not None else False

    def budget_stop(self, run_usage: UsageTally) -> str | None:
        return self.tools.budget_stop(run_usage) if self.tools is not None else None

    async def call(self, call: KernelToolCall) -> ToolReply:
        if self.tools is None:
            return ToolReply(f"Not run: {NOT_YET}.", is_error=True)
        return await self.tools.call(call)


@dataclass
class EarlyPi:
    """What ``start`` began: the bridge, the session on it (its supervisor holds the Pi
    settings it started with), and what it lends."""

    bridge: Bridge
    session: PiSession
    lent: Lent


_started: EarlyPi | None = None


def start(connection_file: Path | None) -> None:
    """Start this process's Pi in the background, as the defaults and the environment say
    (the sandbox when ``PI_KERNEL_SANDBOX`` asks for it, hiding ``connection_file``)."""
    global _started
    bridge = Bridge()
    lent = Lent()
    session = bridge.enter(PiSession(tools=lent, ui_handler=lent.ui, pi_path_hint=PI_PATH_HINT))
    if wanted_by_environment():
        session.pi.sandbox = kernel_sandbox([], connection_file)
    bridge.submit(session.prewarm)
    _started = EarlyPi(bridge, session, lent)
    logger.debug("Pi started before the kernel's imports")


def pending() -> bool:
    """Whether a Pi started early waits to be taken."""
    return _started is not None


def take() -> EarlyPi | None:
    """What ``start`` began in this process, once (None: nothing was started early)."""
    global _started
    taken, _started = _started, None
    return taken


def connection_file(argv: Sequence[str]) -> Path | None:
    """The kernel's connection file, from its command line (``-f FILE``)."""
    for index, word in enumerate(argv):
        if word == "-f" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if word.startswith("--f="):
            return Path(word.removeprefix("--f="))
    return None
