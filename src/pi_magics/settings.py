"""The settings of the magics (``%config PiMagics.<name> = ...``), each checked as it is set:
a wrong value is one sentence saying what is allowed, and the setting keeps its value."""

from __future__ import annotations

import math
from typing import Any

from IPython.core.magic import Magics
from traitlets import Bool, Float, List, TraitError, Unicode, validate

from pi_kernel.kernel_tools.catalog import check_policy
from pi_kernel.session import DISCOVERY_TIMEOUT

from .render import HEARTBEAT


class PiSettings(Magics):
    """``PiMagics``' configurable traits (the magics react to changes themselves)."""

    pi_path = Unicode(
        None,
        allow_none=True,
        help="The Pi executable; when unset, PI_KERNEL_PI_PATH, then the project's npm "
        "install, then `pi` on PATH.",
    ).tag(config=True)
    pi_args = List(
        Unicode(),
        default_value=[],
        help="Extra arguments for `pi --mode rpc`, e.g. ['--no-session'].",
    ).tag(config=True)
    interpolate = Bool(
        False, help="Replace {name} in prompts with Python variables in every cell."
    ).tag(config=True)
    prewarm = Bool(True, help="Start Pi when the extension loads.").tag(config=True)
    kernel_tools = Unicode(
        "all",
        help="What Pi may do in this kernel: 'all' (run Python in the notebook's namespace, "
        "read its history and variables, propose cells), 'read' (history and variables "
        "only) or 'off'. A cell can choose with %%pi --tools.",
    ).tag(config=True)

    @validate("kernel_tools")
    def _known_policy(self, proposal: Any) -> str:
        try:
            return check_policy(proposal["value"])
        except ValueError as exc:
            raise TraitError(f"PiMagics.kernel_tools: {exc}") from None

    discovery_timeout = Float(
        DISCOVERY_TIMEOUT, help="Seconds the picker waits for Pi's models and levels."
    ).tag(config=True)
    heartbeat = Float(
        HEARTBEAT,
        help="Seconds a running cell may show nothing new before it shows how long Pi has "
        "been working (a running tool's time): output that idle culling counts as activity.",
    ).tag(config=True)

    @validate("discovery_timeout", "heartbeat")
    def _positive_seconds(self, proposal: Any) -> float:
        seconds = float(proposal["value"])
        if not math.isfinite(seconds) or seconds <= 0:
            name = proposal["trait"].name
            raise TraitError(
                f"PiMagics.{name} is seconds above 0, not {seconds}: "
                f"the default is {proposal['trait'].default_value:g}."
            )
        return seconds
