"""The settings of the magics (``%config PiMagics.<name> = ...``), each checked as it is set:
a wrong value is one sentence saying what is allowed, and the setting keeps its value."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.magic import Magics
from traitlets import Bool, Float, Int, List, TraitError, Unicode, default, observe, validate

from pi_kernel import variables
from pi_kernel.kernel_tools.catalog import check_policy
from pi_kernel.sandbox import wanted_by_environment
from pi_kernel.session import DISCOVERY_TIMEOUT

from . import budget
from .credentials import split_patterns
from .render import HEARTBEAT

_N = TypeVar("_N", int, float)

ZERO_MEANS = {"ask_timeout": "no limit", "idle_stop": "never"}
"""What 0 means for each setting in seconds that may be 0."""
NOTEBOOK, LINEAR = "notebook", "linear"
"""What ``PiMagics.conversation`` may be."""


def _is_seconds(value: float) -> bool:
    """Whether ``value`` is a number of seconds, 0 or more."""
    return math.isfinite(value) and value >= 0


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

    hidden_names = List(
        Unicode(),
        help="More credential-like names (shell patterns such as '*_pin', matched without "
        "regard to case) whose values notebook_variables and notebook_history never send to "
        "Pi, besides names saying key, token, secret, passw, credential or auth; the default "
        "comes from PI_KERNEL_HIDE_NAMES.",
    ).tag(config=True)

    @default("hidden_names")
    def _hidden_names_from_environment(self) -> list[str]:
        return split_patterns(variables.read(variables.HIDE_NAMES) or "")

    ask_before = List(
        Unicode(),
        default_value=[],
        help="Tools whose calls wait for your yes in the cell, with the code or command "
        "shown: kernel tools (notebook_python, ...) and Pi's own (bash, edit, write, ...), "
        "or '*' for every tool. A cell can add some with %%pi --ask.",
    ).tag(config=True)
    ask_timeout = Float(
        0.0,
        help="Seconds a question about a call waits for your answer before it counts as "
        "no; 0 waits as long as it takes.",
    ).tag(config=True)

    @validate("ask_timeout", "idle_stop")
    def _seconds_or_zero(self, proposal: Any) -> float:
        seconds = float(proposal["value"])
        if not _is_seconds(seconds):
            name = proposal["trait"].name
            raise TraitError(
                f"PiMagics.{name} is seconds, 0 or more (0: {ZERO_MEANS[name]}), "
                f"not {proposal['value']!r}."
            )
        return seconds

    budget_usd = Float(
        None,
        allow_none=True,
        help="What this kernel's Pi may spend, in dollars (None: no limit); the default "
        "comes from PI_KERNEL_BUDGET_USD. Also %pi budget $0.50.",
    ).tag(config=True)
    budget_tokens = Int(
        None,
        allow_none=True,
        help="What this kernel's Pi may spend, in tokens (None: no limit); the default "
        "comes from PI_KERNEL_BUDGET_TOKENS. Also %pi budget 200k tokens.",
    ).tag(config=True)

    @property
    def budget_limits(self) -> budget.Limits:
        """``budget_usd`` and ``budget_tokens`` together."""
        return budget.Limits(self.budget_usd, self.budget_tokens)

    budget_problem: str | None = None
    """What is wrong with a budget the environment gave: until a budget is set here, no
    turn starts (a deployment's limit that cannot be read must not become no limit)."""

    @default("budget_usd")
    def _usd_from_environment(self) -> float | None:
        return self._from_environment(variables.BUDGET_USD, budget.dollars)

    @default("budget_tokens")
    def _tokens_from_environment(self) -> int | None:
        return self._from_environment(variables.BUDGET_TOKENS, budget.tokens)

    def _from_environment(self, name: str, read: Callable[[str], _N]) -> _N | None:
        text = (variables.read(name) or "").strip()
        if not text:
            return None
        try:
            return read(text)
        except ValueError as exc:
            self.budget_problem = (
                f"{name} in this kernel's environment is unusable: {exc} Fix it in the "
                "kernelspec's env, or set a budget here with %pi budget."
            )
            return None

    @validate("budget_usd", "budget_tokens")
    def _not_negative(self, proposal: Any) -> float | int | None:
        value: float | int | None = proposal["value"]
        if value is not None and (not math.isfinite(value) or value < 0):
            name = proposal["trait"].name
            raise TraitError(f"PiMagics.{name} is 0 or more (None: no limit), not {value!r}.")
        return value

    @observe("budget_usd", "budget_tokens")
    def _budget_set(self, change: Any) -> None:
        self.budget_problem = None  # a budget set here replaces what the environment said

    sandbox = Bool(
        help="Run Pi, and every command it runs, inside bubblewrap: its own processes only, "
        "the filesystem read-only but for the notebook's folder and Pi's agent folder, no "
        "Jupyter runtime files nor other kernels' sockets. The default comes from "
        "PI_KERNEL_SANDBOX (any value but 0, false, no or off is on).",
    ).tag(config=True)
    sandbox_writable = List(
        Unicode(),
        default_value=[],
        help="More folders Pi may write inside the sandbox (the notebook's folder and Pi's "
        "agent folder always are).",
    ).tag(config=True)

    @default("sandbox")
    def _sandbox_from_environment(self) -> bool:
        return wanted_by_environment()

    conversation = Unicode(
        NOTEBOOK,
        help="'notebook': the conversation follows the notebook's cells (a cell run again is "
        "asked where it was first asked, after the latest answer of the cell it followed; "
        "the earlier answers stay in Pi's session as branches); 'linear': every cell is "
        "asked at the end of one conversation.",
    ).tag(config=True)

    @validate("conversation")
    def _known_conversation(self, proposal: Any) -> str:
        value = proposal["value"]
        if value not in (NOTEBOOK, LINEAR):
            raise TraitError(f"PiMagics.conversation is 'notebook' or 'linear', not {value!r}.")
        return str(value)

    idle_stop = Float(
        help="Seconds without a turn after which Pi stops (its memory and its cache warming "
        "with it); the next cell starts it again on the same session, conversation, model "
        "and level intact. 0: never. The default comes from PI_KERNEL_IDLE_STOP.",
    ).tag(config=True)
    idle_stop_problem: str | None = None
    """Why PI_KERNEL_IDLE_STOP could not be read (Pi then never stops), for %pi status."""

    @default("idle_stop")
    def _idle_stop_from_environment(self) -> float:
        text = (variables.read(variables.IDLE_STOP) or "").strip()
        try:
            seconds = float(text) if text else 0.0
        except ValueError:
            seconds = math.nan
        if not _is_seconds(seconds):
            self.idle_stop_problem = (
                f"{variables.IDLE_STOP}={text!r} is not a number of seconds (0 or more): "
                "Pi never stops for being idle."
            )
            return 0.0
        return seconds

    @observe("idle_stop")
    def _idle_stop_set(self, change: Any) -> None:
        self.idle_stop_problem = None  # a value set here replaces what the environment said

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
