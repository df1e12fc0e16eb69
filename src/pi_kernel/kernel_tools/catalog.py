"""The kernel tools Pi is offered, the policies that choose among them, and what a call and
its reply hold.

The tools themselves (their descriptions and parameters, as Pi shows them to the model) are
declared in ``extension.js``, the Pi extension that forwards each call to the kernel; the
names here must match it (a test reads both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

PYTHON = "notebook_python"
"""Run Python in the user's namespace, on the kernel's main thread."""
HISTORY = "notebook_history"
"""The code of the cells run in this kernel, their results and errors."""
VARIABLES = "notebook_variables"
"""The user's variables: name, type and a cheap summary."""
PROPOSE_CELL = "notebook_propose_cell"
"""Code put into a new cell below the running one, not run."""

TOOL_NAMES = (PYTHON, HISTORY, VARIABLES, PROPOSE_CELL)

Policy = Literal["all", "read", "off"]
POLICIES: tuple[Policy, ...] = get_args(Policy)
OFFERED: dict[Policy, tuple[str, ...]] = {
    "all": TOOL_NAMES,
    "read": (HISTORY, VARIABLES),
    "off": (),
}
"""Which tools each policy offers Pi: "read" looks at the kernel and changes nothing."""

EVERY_TOOL = "*"
"""In a list of tools to ask before (``PiMagics.ask_before``): every tool, Pi's own too."""

EXTENSION = Path(__file__).with_name("extension.js")
"""The Pi extension (``pi -e``) that offers the tools and forwards their calls."""
BRANCH_COMMAND = "pi-kernel-branch"
"""The extension's command that moves the conversation or labels an entry (``extension.js``
has the same name): the kernel's, not offered to the user."""
OFFER_COMMAND = "pi-kernel-offer"
"""The extension's command that gives the next run its tools, approvals and budget flag,
sent before the kernel's prompt: the kernel's, not offered to the user."""
KERNEL_COMMANDS = (BRANCH_COMMAND, OFFER_COMMAND)


def check_policy(value: str) -> Policy:
    """``value`` as a policy, or a ValueError saying which ones exist."""
    for policy in POLICIES:
        if value == policy:
            return policy
    raise ValueError(f"{value!r} is not a kernel tools policy: use one of {', '.join(POLICIES)}.")


@dataclass(frozen=True)
class KernelToolCall:
    """One call of a kernel tool, as Pi's extension forwarded it."""

    tool: str
    call_id: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Image:
    """An image for Pi (base64 data, as Pi's image content takes it)."""

    data: str
    mime_type: str


@dataclass
class ToolReply:
    """What goes back to Pi: text, images when the model takes them, and whether it failed
    (Pi then shows the text as the tool's error)."""

    text: str
    images: list[Image] = field(default_factory=list)
    is_error: bool = False

    def wire(self) -> dict[str, Any]:
        content: list[dict[str, str]] = [{"type": "text", "text": self.text}]
        content += [{"type": "image", "data": i.data, "mimeType": i.mime_type} for i in self.images]
        return {"ok": True, "content": content, "isError": self.is_error}


@dataclass(frozen=True)
class Verdict:
    """The user's answer to a call that waited for approval: run it or not, why not (in
    the cell's words, and in a sentence for Pi), and whether to stop asking about this tool
    until the kernel restarts."""

    allowed: bool
    reason: str = ""
    """What Pi reads when the call does not run."""
    why: str = ""
    """Why it does not run, as its block says: the user's reason, or what kept the answer."""
    always: bool = False

    def wire(self) -> dict[str, Any]:
        return {"ok": True, "allowed": self.allowed, "reason": self.reason}
