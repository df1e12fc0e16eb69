"""``%pi``'s subcommands, written once, and the ``%pi help`` page.

The usage line, the ``%pi`` part of ``%pi help``, the Pi kernel's banner and its completion
all come from ``SUBCOMMANDS``; ``PiMagics`` runs each one with its ``_pi_<name>`` method (a
test checks that every name has one, and nothing else does).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

HELP_COLUMN = 20
"""Where a help line's description starts."""
HELP_WIDTH = 90


@dataclass(frozen=True)
class Subcommand:
    name: str
    summary: str
    """What it does, for ``%pi help``."""
    arguments: str = ""
    """What it takes, as the usage line shows it; empty when it takes nothing."""

    @property
    def form(self) -> str:
        """``record PATH | off``: the name and what it takes."""
        return f"{self.name} {self.arguments}".strip()

    def help_lines(self) -> list[str]:
        """``%pi FORM`` and the summary from column ``HELP_COLUMN`` (below it when the form
        is too long to leave room)."""
        head = f"%pi {self.form}"
        lines = textwrap.wrap(self.summary, HELP_WIDTH - HELP_COLUMN)
        indent = " " * HELP_COLUMN
        if len(head) + 2 > HELP_COLUMN:
            return [head, *(indent + line for line in lines)]
        first = head.ljust(HELP_COLUMN) + lines[0]
        return [first, *(indent + line for line in lines[1:])]


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("status", "which Pi, its session, model, thinking level, cwd, last turn"),
    Subcommand("models", "the models Pi offers (* marks the current one)"),
    Subcommand("picker", "choose this notebook's model and thinking level from dropdowns"),
    Subcommand("new", "start a fresh Pi conversation"),
    Subcommand(
        "tree",
        "the prompts of Pi's session as a tree, by cell: a cell asked again starts a branch "
        "where it was first asked; * marks the conversation as it stands",
    ),
    Subcommand("abort", "ask Pi to stop what it is doing"),
    Subcommand("restart", "stop this notebook's Pi and start a new one"),
    Subcommand(
        "budget",
        "what this kernel's Pi has spent, and its limits; LIMIT sets one: $0.50 (dollars), "
        "200k tokens, or off (none)",
        "[LIMIT]",
    ),
    Subcommand(
        "record",
        "write every following Pi turn to a cassette (JSON lines); off stops",
        "PATH | off",
    ),
    Subcommand(
        "replay",
        "answer %%pi cells from a cassette instead of Pi, in order; a cell that differs from "
        "the recording is an error (with --live-on-miss, Pi answers it); off stops",
        "PATH [--live-on-miss] | off",
    ),
    Subcommand(
        "resume",
        "continue an earlier Pi session (after a kernel restart): the last one this kernel "
        "used, else the newest of this directory; or an id/file",
        "[SESSION]",
    ),
    Subcommand(
        "export",
        "this kernel's turns as .md or .jsonl, or Pi's own .html of the session; a file "
        "pi-kernel did not write is replaced only with --replace",
        "PATH [--replace]",
    ),
    Subcommand("help", "this text"),
)
NAMES: tuple[str, ...] = tuple(subcommand.name for subcommand in SUBCOMMANDS)
BY_NAME: dict[str, Subcommand] = {subcommand.name: subcommand for subcommand in SUBCOMMANDS}

USAGE = "Usage: %pi " + " | ".join(
    subcommand.form.removesuffix(" | off") for subcommand in SUBCOMMANDS
)
"""One line naming every subcommand, for an error that needs to show them all."""


def usage_of(name: str) -> str:
    """``Usage: %pi record PATH | off``: one subcommand's forms."""
    return f"Usage: %pi {BY_NAME[name].form}"


def help_text() -> str:
    """The ``%pi`` lines of ``%pi help``."""
    return "\n".join(line for subcommand in SUBCOMMANDS for line in subcommand.help_lines())


HELP = """\
%%pi [options]      send the cell to Pi; the answer streams into the cell
  --model P/ID      use this model for this cell (see %pi models)
  --thinking LEVEL  use this thinking level for this cell
  --new             start a fresh Pi conversation first
  --out NAME        store the answer text in the Python variable NAME
  --quiet           show only the final answer, no streaming
  --interpolate     replace {name} in the prompt with Python variables ({{ for a brace)
  --image X         send an image with the prompt: a file, or a variable holding a figure
                    or image (repeatable; the model must take images)
  --tools POLICY    what Pi may do in this kernel for this cell: all, read or off
  --ask TOOLS       ask before these tools run in this cell (comma-separated, * for all)

{subcommands}

In the Pi kernel every cell is a prompt unless it starts with % or !; a first line %%py
makes the rest of the cell Python.

When a Pi extension asks a question (select, confirm, input), it appears in the cell and
is answered at Jupyter's input prompt; an empty answer cancels.  A frontend that takes no
input (nbclient, papermill) gets the dialog cancelled with a notice.

Pi works in this kernel with its tools notebook_python (runs Python in your namespace, in
the running cell), notebook_history, notebook_variables and notebook_propose_cell.  With
PiMagics.ask_before = ["notebook_python", "bash"] (or "*"), each such call waits for your
y (yes), n (no, with a reason for Pi) or a (always for that tool, until the kernel restarts)
at the input prompt, its code or command shown; no answer (no frontend input, or
PiMagics.ask_timeout seconds) is a no.

A budget caps what this kernel's Pi spends: %pi budget $0.50 or %pi budget 200k tokens
(also PiMagics.budget_usd / budget_tokens, and PI_KERNEL_BUDGET_USD / PI_KERNEL_BUDGET_TOKENS
for a whole deployment).  At the limit a new turn is refused, and a running turn that
crosses it is stopped.

To record or replay a whole notebook unedited (CI, papermill), set PI_KERNEL_RECORD or
PI_KERNEL_REPLAY to a cassette path (relative to the notebook) before the kernel starts.

Settings: %config PiMagics.pi_path = "/path/to/pi" (or the PI_KERNEL_PI_PATH environment
variable), PiMagics.pi_args = ["--no-session"], PiMagics.interpolate = True,
PiMagics.discovery_timeout = 15 (seconds the picker waits for Pi),
PiMagics.kernel_tools = "all" | "read" | "off" (what Pi may do in this kernel),
PiMagics.conversation = "notebook" (a cell run again is asked where it was first asked, after
the latest answer of the cell it followed) | "linear" (every cell asked at the end),
PiMagics.idle_stop = 600 (seconds without a turn after which Pi stops, to start again on the
same session at the next cell; 0: never).""".replace("{subcommands}", help_text())
