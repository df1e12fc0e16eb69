"""Every environment variable pi-kernel reads or sets, in one table.

Each is a constant named after the variable without its ``PI_KERNEL_`` prefix (``PI_PATH`` is
``PI_KERNEL_PI_PATH``); ``VARIABLES`` says who sets it and what it does, so the docs can be
made from it.  Read them with ``read``, here, never with ``os.environ`` elsewhere.  This
module imports nothing of pi-kernel: every floor, the Pi client included, may use it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Who = Literal["you", "pi-kernel", "Pi", "the system"]
"""Who sets it: you (a user or a deployment), pi-kernel for its own processes, Pi's own, or
the operating system's."""


@dataclass(frozen=True)
class Variable:
    name: str
    who: Who
    meaning: str


PI_PATH = "PI_KERNEL_PI_PATH"
PI_RECORDED = "PI_KERNEL_PI_RECORDED"
HIDE_ENV = "PI_KERNEL_HIDE_ENV"
HIDE_NAMES = "PI_KERNEL_HIDE_NAMES"
LOG = "PI_KERNEL_LOG"
RECORD = "PI_KERNEL_RECORD"
REPLAY = "PI_KERNEL_REPLAY"
STATE_DIR = "PI_KERNEL_STATE_DIR"
BACKEND_PROBLEM = "PI_KERNEL_BACKEND_PROBLEM"
TOOLLESS_MODELS = "PI_KERNEL_TOOLLESS_MODELS"
MAIN = "PI_KERNEL_MAIN"
OWNER = "PI_KERNEL_OWNER"
LOCAL_KEY = "PI_KERNEL_LOCAL_KEY"
BUDGET_USD = "PI_KERNEL_BUDGET_USD"
BUDGET_TOKENS = "PI_KERNEL_BUDGET_TOKENS"
SANDBOX = "PI_KERNEL_SANDBOX"
IDLE_STOP = "PI_KERNEL_IDLE_STOP"
TOOLS_SOCKET = "PI_KERNEL_TOOLS_SOCKET"
TOOLS_SECRET_FILE = "PI_KERNEL_TOOLS_SECRET_FILE"
AGENT_DIR = "PI_CODING_AGENT_DIR"
PI_OFFLINE = "PI_OFFLINE"
HOME = "HOME"
TMPDIR = "TMPDIR"
NODE_COMPILE_CACHE = "NODE_COMPILE_CACHE"
XDG_RUNTIME_DIR = "XDG_RUNTIME_DIR"
XDG_STATE_HOME = "XDG_STATE_HOME"

VARIABLES = (
    Variable(
        PI_PATH, "you", "The Pi to run (a path to its `pi`), before the checkout's and PATH's."
    ),
    Variable(
        PI_RECORDED,
        "pi-kernel",
        "Set beside PI_KERNEL_PI_PATH by `python -m pi_kernel install --pi`, so that status "
        "can say the kernelspec recorded it.",
    ),
    Variable(
        HIDE_ENV,
        "you",
        "More variables Pi's process must not get (names or shell patterns, spaces or "
        "commas), besides the notebook server's credentials it never gets.",
    ),
    Variable(
        HIDE_NAMES,
        "you",
        "More credential-like Python names (shell patterns, spaces or commas) whose values "
        "notebook_variables and notebook_history keep from Pi: PiMagics.hidden_names' default.",
    ),
    Variable(LOG, "you", "`debug` or `info`: pi-kernel's log on stderr, for a bug report."),
    Variable(RECORD, "you", "A cassette every %%pi cell of the kernel records to."),
    Variable(REPLAY, "you", "A cassette every %%pi cell of the kernel is answered from."),
    Variable(
        STATE_DIR,
        "you",
        "pi-kernel's own folder (the main command's agent dir and notebooks); else "
        "$XDG_STATE_HOME/pi-kernel.",
    ),
    Variable(
        BACKEND_PROBLEM,
        "pi-kernel",
        "Why the main command could not give Pi a model, for the notebook's no-models hint.",
    ),
    Variable(
        TOOLLESS_MODELS,
        "pi-kernel",
        "Models (`provider/id`, spaces or commas) that cannot call tools, such as the main "
        "command's local demo model: each answer of theirs says it read and ran nothing.",
    ),
    Variable(
        BUDGET_USD,
        "you",
        "What each kernel's Pi may spend, in dollars (`0.50`): %pi budget and "
        "PiMagics.budget_usd change it in a notebook.",
    ),
    Variable(
        BUDGET_TOKENS,
        "you",
        "What each kernel's Pi may spend, in tokens (`200000`, `200k`): for local models, "
        "which cost nothing.",
    ),
    Variable(
        SANDBOX,
        "you",
        "`1`: each kernel's Pi runs inside bubblewrap (PiMagics.sandbox): for shared servers.",
    ),
    Variable(
        IDLE_STOP,
        "you",
        "Seconds without a turn after which each kernel's Pi stops, to start again on the "
        "same session at the next cell (PiMagics.idle_stop; 0: never): for shared servers.",
    ),
    Variable(MAIN, "pi-kernel", "Marks the main command's processes, to stop them all."),
    Variable(OWNER, "pi-kernel", "Marks a Pi's processes, to stop them all with it."),
    Variable(LOCAL_KEY, "pi-kernel", "The local model server's key, given to it alone."),
    Variable(TOOLS_SOCKET, "pi-kernel", "The kernel tools' socket, for pi-kernel's extension."),
    Variable(
        TOOLS_SECRET_FILE,
        "pi-kernel",
        "A file holding the kernel tools' secret, which pi-kernel's extension reads and removes.",
    ),
    Variable(AGENT_DIR, "Pi", "Pi's configuration folder (models, keys, sessions); ~/.pi/agent."),
    Variable(
        PI_OFFLINE,
        "Pi",
        "Set by the main command for the local demo model: Pi then fetches nothing online.",
    ),
    Variable(HOME, "the system", "Where ~ is for Pi's agent dir and pi-kernel's state."),
    Variable(
        XDG_RUNTIME_DIR,
        "the system",
        "Where the kernel tools' socket and the session claims live (else the temp folder).",
    ),
    Variable(
        NODE_COMPILE_CACHE,
        "the system",
        "Where Node keeps compiled code (else in the temp folder): read-only in Pi's sandbox.",
    ),
    Variable(TMPDIR, "the system", "The temporary folder; inside Pi's sandbox, an empty one."),
    Variable(XDG_STATE_HOME, "the system", "The base of pi-kernel's state folder."),
)
"""The table, in the order the docs list it."""

_NAMES = frozenset(variable.name for variable in VARIABLES)


def read(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """``name``'s value in ``env`` (default: this process's environment); empty is unset."""
    assert name in _NAMES, f"{name} is not in the table"
    return (os.environ if env is None else env).get(name) or None
