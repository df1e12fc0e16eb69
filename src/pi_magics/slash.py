"""Pi's terminal commands typed as a prompt (``/compact``, ``/model P/ID``, ``/quit``...).

Pi's RPC mode has none of its terminal program's built-in slash commands: sent as a prompt,
``/compact`` would reach the model as text, and be billed.  A prompt that starts with one of
them is done here with the RPC command Pi has for it, or answered with what to do in a
notebook.  A name Pi itself lists (an extension, prompt template or skill command) still goes
to Pi as a prompt.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pi_kernel.bridge import Bridge
from pi_kernel.session import PiSession

COMPACT_TIMEOUT = 300.0
"""Seconds for ``/compact``: Pi asks the model for a summary of the whole conversation."""

DONE_HERE = ("new", "compact", "model", "thinking")
"""Terminal commands a notebook does with Pi's RPC commands."""
INSTEAD = {
    "quit": "stops Pi's terminal program; here %pi restart starts a new Pi, and shutting "
    "down the kernel stops it",
    "exit": "stops Pi's terminal program; here %pi restart starts a new Pi, and shutting "
    "down the kernel stops it",
    "session": "shows the session in Pi's terminal program; here: %pi status",
    "resume": "picks a session in Pi's terminal program; here: %pi resume [SESSION]",
    "export": "exports from Pi's terminal program; here: %pi export PATH (.md, .jsonl, .html)",
    "settings": "opens Pi's settings screen; here: %pi picker, %config PiMagics",
}
"""Terminal commands with a notebook equivalent."""
TERMINAL_ONLY = (
    "scoped-models", "login", "logout", "llama", "name", "tree", "fork", "clone", "import",
    "copy", "share", "bug", "trust", "mcp", "reload", "hotkeys", "changelog",
)  # fmt: skip
"""Terminal commands without one: they need Pi's own terminal program."""


class TerminalCommand(NamedTuple):
    name: str
    argument: str


def terminal_command(prompt: str) -> TerminalCommand | None:
    """The terminal command a prompt is (``/name rest``), if it is one."""
    if not prompt.startswith("/"):
        return None
    name, _, argument = prompt[1:].partition(" ")
    name = name.strip()
    if name in DONE_HERE or name in INSTEAD or name in TERMINAL_ONLY:
        return TerminalCommand(name, argument.strip())
    return None


def run(command: TerminalCommand, session: PiSession, bridge: Bridge) -> str:
    """Do ``command`` in the notebook; the line to show."""
    name, argument = command
    if name == "new":
        bridge.call(session.new_session)
        return "Started a fresh Pi conversation."
    if name == "compact":
        data = bridge.call(_compact, session, argument)
        before, after = data.get("tokensBefore"), data.get("estimatedTokensAfter")
        sizes = f": {before:,} tokens before" if isinstance(before, int) else ""
        if sizes and isinstance(after, int):
            sizes += f", about {after:,} after"
        return f"Compacted the conversation{sizes}."
    if name == "model":
        if not argument:
            return "Write /model provider/id, or choose with %pi picker (%pi models lists them)."
        chosen = bridge.call(session.set_notebook_model, argument)
        return f"This notebook's model is now {chosen.model_ref} (thinking {chosen.level})."
    if name == "thinking":
        if not argument:
            choices = bridge.call(session.choices)
            offered = ", ".join(choices.levels)
            return f"Thinking is {choices.level}; {choices.model_ref} offers {offered}."
        chosen = bridge.call(session.set_notebook_thinking_level, argument)
        return f"This notebook's thinking level is now {chosen.level}."
    if name in INSTEAD:
        return f"/{name} {INSTEAD[name]}. Nothing was sent to the model."
    return (
        f"/{name} is a command of Pi's terminal program, which a notebook's Pi (RPC mode) does "
        "not have: run it in `pi` in a terminal. Nothing was sent to the model."
    )


async def _compact(session: PiSession, instructions: str) -> dict[str, Any]:
    client = await session.client()
    fields = {"customInstructions": instructions} if instructions else {}
    data = await client.request("compact", timeout=COMPACT_TIMEOUT, **fields)
    return data if isinstance(data, dict) else {}
